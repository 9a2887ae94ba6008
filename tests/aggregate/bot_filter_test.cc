#include "aggregate/bot_filter.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

TEST(BotFilterTest, BuiltInList) {
  BotFilter filter;
  struct Case {
    const char* ua;
    bool bot;
  };
  const Case cases[] = {
      {"Mozilla/5.0 (compatible; Googlebot/2.1; "
       "+http://www.google.com/bot.html)",
       true},
      {"Mozilla/5.0 (compatible; bingbot/2.0; "
       "+http://www.bing.com/bingbot.htm)",
       true},
      {"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
       true},
      {"Mozilla/5.0 (compatible; Yahoo! Slurp; "
       "http://help.yahoo.com/help/us/ysearch/slurp)",
       true},
      {"Baiduspider+(+http://www.baidu.com/search/spider.htm)", true},
      {"facebookexternalhit/1.1 "
       "(+http://www.facebook.com/externalhit_uatext.php)",
       true},
      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
       "HeadlessChrome/120.0 Safari/537.36",
       true},
      {"python-requests/2.31.0", true},
      {"curl/8.0.1", true},
      {"Wget/1.21.3", true},
      {"Mozilla/5.0 (compatible; SemrushCrawler)", true},
      {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
       "like Gecko) "
       "Chrome/120.0.0.0 Safari/537.36",
       false},
      {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
       "AppleWebKit/605.1.15 "
       "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
       false},
      {"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
       false},
  };
  for (const Case& c : cases) EXPECT_EQ(filter.IsBot(c.ua), c.bot) << c.ua;
}

// Beyond SPEC's list: the clients that fill a public access log without
// being visitors (health checks every few seconds, scanners from a new
// address each time, a link's previews fetched by thousands of Mastodon
// servers, feed readers) made Direct bounced sessions of every request.
// A CUBOT phone's browser has "bot" in its name and is a visitor.
TEST(BotFilterTest, InfrastructureScannersPreviewsAndFeedReadersAreBots) {
  BotFilter filter;
  for (const char* ua :
       {"kube-probe/1.28",
        "ELB-HealthChecker/2.0",
        "GoogleHC/1.0",
        "Go-http-client/1.1",
        "Python-urllib/3.11",
        "okhttp/4.9.0",
        "Java/17.0.2",
        "Apache-HttpClient/4.5.13 (Java/17.0.2)",
        "LWP::Simple/5.827 libwww-perl/5.833",
        "node-fetch/1.0",
        "axios/1.6.0",
        "PostmanRuntime/7.36.0",
        "Prometheus/2.53.0",
        "Blackbox Exporter/0.25.0",
        "Pingdom.com_bot_version_1.4",
        "Uptime-Kuma/1.23.11",
        "Mozilla/5.0 (compatible; CensysInspect/1.1; "
        "+https://about.censys.io/)",
        "Mozilla/5.0 zgrab/0.x",
        "Mastodon/4.2.0 (http.rb/5.1.1; +https://mastodon.social/) Bot",
        "Mastodon/4.2.0 (http.rb/5.1.1; +https://mastodon.social/)",
        "WhatsApp/2.23.20.0 A",
        "Mediapartners-Google",
        "Mozilla/5.0 (compatible; Google-InspectionTool/1.0)",
        "Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 22 "
        "subscribers; feed-id=8321906634162087507)",
        "UniversalFeedParser/4.2-pre-314-svn +http://feedparser.org/",
        "Tiny Tiny RSS/1.11 (http://tt-rss.org/)",
        "Feedbin - 1 subscribers",
        "Embedly +support@embed.ly"}) {
    EXPECT_TRUE(filter.IsBot(ua)) << ua;
  }
  for (const char* ua :
       {"Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 12; CUBOT KINGKONG 7) "
        "AppleWebKit/537.36 Chrome/118.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/290.0.591403541 "
        "Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.73.11 "
        "(KHTML, like Gecko) Version/7.0.1 Safari/537.73.11"}) {
    EXPECT_FALSE(filter.IsBot(ua)) << ua;
  }
  // A crawler on such a phone is still one.
  EXPECT_TRUE(filter.IsBot("CUBOT_X30 Googlebot/2.1"));
}

// An audit of the real public access log: crawlers, link checkers and
// fetchers without "bot" in their names made 9 % of its page views and 13 of
// its 297 engaged sessions. A user agent naming a web address is a program's
// (a smart TV's excepted); one that is only a language's name too.
TEST(BotFilterTest, CrawlersLinkCheckersAndAddressesAreBots) {
  BotFilter filter;
  for (const char* ua :
       {"Mozilla/5.0 (compatible; Ezooms/1.0; help@moz.com)",
        "Mozilla/5.0 (compatible; SiteExplorer/1.0b; "
        "+http://siteexplorer.info/)",
        "FlipboardProxy/1.1; +http://flipboard.com/browserproxy",
        "distilator/0.1 (http://people.freebsd.org/~ehaupt/distilator/)",
        "Xenu Link Sleuth/1.3.8", "eZ Publish Link Validator",
        "W3C-checklink/4.81 libwww-perl/6.68",
        "AppEngine-Google; "
        "(+http://code.google.com/appengine; appid: s~x)",
        "Mozilla/5.0 (en-us) AppleWebKit/534.14 (KHTML, like Gecko; Google "
        "Web Preview) Chrome/9.0.597 Safari/534.14",
        "binlar_2.6.3 test@mgmt.mic",
        "Genieo/1.0 http://www.genieo.com/webfilter.html", "portscout/0.8.1",
        "Chef Client/10.18.2 (ruby-1.9.3-p327; "
        "ohai-6.16.0; x86_64-linux; +http://opscode.com)",
        "LiveJournal.com (webmaster@livejournal.com; for "
        "http://www.livejournal.com/users/x/; 8 readers)",
        "WordPress/6.4.2; https://example.org",
        "Mozilla/5.0 (compatible; Let's Encrypt validation server; "
        "+https://www.letsencrypt.org)",
        "Chrome Privacy Preserving Prefetch Proxy", "IrssiUrlLog/0.2",
        // Found in the real log by an audit.
        "nutch-1.4/Nutch-1.4", "Reeder/2.1.1 CFNetwork/672.0.8 Darwin/14.0.0",
        "theoldreader.com", "Robosourcer/1.0",
        "Mozilla/3.0 (compatible; Indy Library)", "Ruby", " java ",
        "Mozilla/5.0 (compatible; "
        "SomeNewCrawler/0.1; +https://crawler.example/about)"}) {
    EXPECT_TRUE(filter.IsBot(ua)) << ua;
  }
  for (const char* ua :
       {"Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/538.1 (KHTML, "
        "like Gecko) Version/6.0 TV Safari/538.1",
        "Mozilla/5.0 (Linux; Tizen 2.3) AppleWebKit/538.1 (KHTML, like Gecko)"
        "Version/2.3 TV Safari/538.1 HbbTV/1.2.1 (+DRM; Samsung; SmartTV2015; "
        "T-HKM6DEUC-1490.3; ; urn:samsungtv:familyname:2015:hbbtv) "
        "https://www.samsung.com",
        "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; HTC_Ruby_1.23) "
        "AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile "
        "Safari/534.30",
        "Opera/9.80 (X11; Linux x86_64) Presto/2.12.388 Version/12.16",
        // Addresses that browsers do name: a smart TV's, IE's EmbeddedWB.
        "Mozilla/5.0 (Linux; U; Android 9; SmartTV Build/PI) "
        "AppleWebKit/537.36 Chrome/87.0 Safari/537.36 (+https://tv.example/)",
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 Chrome/79.0 "
        "Safari/537.36 Smart-TV https://www.lg.com/",
        "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; "
        "Embedded Web Browser from: http://bsalsa.com/; .NET CLR "
        "2.0.50727)"}) {
    EXPECT_FALSE(filter.IsBot(ua)) << ua;
  }
}

// SPEC §9: an empty user agent alone is not a bot (server-side collectors
// send none) unless the filter is told so (access logs, or
// bots.empty_user_agent: bot).
TEST(BotFilterTest, EmptyUserAgentIsABotOnlyWhenConfigured) {
  EXPECT_FALSE(BotFilter().IsBot(""));
  EXPECT_FALSE(BotFilter().IsBot("   "));
  EXPECT_TRUE(BotFilter({}, /*empty_is_bot=*/true).IsBot(""));
  EXPECT_TRUE(BotFilter({}, /*empty_is_bot=*/true).IsBot(" \t"));
  EXPECT_FALSE(BotFilter({}, /*empty_is_bot=*/true).IsBot("Mozilla/5.0"));
}

TEST(BotFilterTest, ExtraPatternsFromConfig) {
  BotFilter filter({"UptimeMonitor"});
  EXPECT_TRUE(filter.IsBot("Mozilla/5.0 uptimemonitor/1.0"));
  EXPECT_FALSE(BotFilter().IsBot("Mozilla/5.0 uptimemonitor/1.0"));
}

// Verdicts are remembered per user agent: asking again, past the number of
// remembered ones (when they are forgotten), and for user agents too long to
// remember gives the same answers, and the cases that differ only in a
// pattern or in case are not confused.
TEST(BotFilterTest, RememberedVerdictsStayRight) {
  BotFilter filter({}, /*empty_is_bot=*/true);
  auto ua = [](int i) {
    return absl::StrCat(
        i % 3 == 0 ? "Mozilla/5.0 (compatible; Bot " : "Mozilla/5.0 (X11; ", i,
        ")");
  };
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 10000; ++i) {
      ASSERT_EQ(filter.IsBot(ua(i)), i % 3 == 0) << ua(i) << " round " << round;
    }
  }
  const std::string long_human(2000, 'a');
  const std::string long_bot = long_human + "Crawler";
  for (int round = 0; round < 2; ++round) {
    EXPECT_FALSE(filter.IsBot(long_human));
    EXPECT_TRUE(filter.IsBot(long_bot));
    EXPECT_TRUE(filter.IsBot(""));
    EXPECT_TRUE(filter.IsBot("  "));
    EXPECT_FALSE(filter.IsBot("Mozilla/5.0 (compatible; Bo t)"));
    EXPECT_TRUE(filter.IsBot("Mozilla/5.0 (compatible; BOT)"));
  }
}

}  // namespace
}  // namespace kpistream
