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
