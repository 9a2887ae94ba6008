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
