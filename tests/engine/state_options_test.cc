// engine/state_options.h: the config's defaults are the aggregation core's
// (both are SPEC §8's), and every config field reaches the core.
#include "engine/state_options.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

TEST(StateOptionsTest, TheConfigsSessionDefaultsAreTheCores) {
  const SessionRules from_config = SessionRulesFrom(Config());
  const SessionRules core;
  EXPECT_EQ(from_config.inactivity_timeout, core.inactivity_timeout);
  EXPECT_EQ(from_config.max_length, core.max_length);
  EXPECT_EQ(from_config.engaged_min_duration, core.engaged_min_duration);
  EXPECT_EQ(from_config.engaged_min_pageviews, core.engaged_min_pageviews);
  EXPECT_EQ(from_config.long_min_duration, core.long_min_duration);
  EXPECT_EQ(from_config.visitor_retention, core.visitor_retention);
  EXPECT_EQ(from_config.split_at_midnight, core.split_at_midnight);
  EXPECT_EQ(from_config.split_on_campaign_change,
            core.split_on_campaign_change);
  EXPECT_EQ(from_config.split_on_session_id, core.split_on_session_id);
  EXPECT_EQ(from_config.timezone, core.timezone);
  EXPECT_TRUE(from_config.funnels.empty());
}

TEST(StateOptionsTest, SessionsAndTargetsReachTheCore) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "sessions: {inactivity_timeout: 10m, max_length: 2h,\n"
      "           engaged_min_duration: 5s, engaged_min_pageviews: 3,\n"
      "           long_min_duration: 4m, visitor_retention: 30d,\n"
      "           split_at_midnight: true, split_on_campaign_change: true,\n"
      "           session_source: client, timezone: Europe/Berlin}\n"
      "funnels: [{name: f, steps: [{page: /cart}, {name: paid, goal: "
      "purchase}]}]\n"
      "targets:\n"
      "  - {name: t, kpi: bounce_rate, filter: {channel: Email}, value: 0.4,\n"
      "     tolerance: 0.05, window: 1h, min_sessions: 7}\n"
      "  - {name: p, kpi: revenue, value: 100,\n"
      "     period: {start: 2026-01-01, end: 2026-01-31}}\n");
  ASSERT_TRUE(r.ok()) << r.errors[0].ToString("cfg.yaml");
  const SessionRules rules = SessionRulesFrom(r.config);
  EXPECT_EQ(rules.inactivity_timeout, absl::Minutes(10));
  EXPECT_EQ(rules.max_length, absl::Hours(2));
  EXPECT_EQ(rules.engaged_min_duration, absl::Seconds(5));
  EXPECT_EQ(rules.engaged_min_pageviews, 3);
  EXPECT_EQ(rules.long_min_duration, absl::Minutes(4));
  EXPECT_EQ(rules.visitor_retention, absl::Hours(24 * 30));
  EXPECT_TRUE(rules.split_at_midnight);
  EXPECT_TRUE(rules.split_on_campaign_change);
  EXPECT_TRUE(rules.split_on_session_id);
  EXPECT_EQ(rules.timezone.name(), "Europe/Berlin");
  ASSERT_EQ(rules.funnels.size(), 1u);
  ASSERT_EQ(rules.funnels[0].steps.size(), 2u);
  EXPECT_EQ(rules.funnels[0].steps[0].name, "/cart");
  EXPECT_EQ(rules.funnels[0].steps[1].name, "paid");
  EXPECT_EQ(rules.funnels[0].steps[1].goal, "purchase");

  const std::vector<TargetSpec> specs = TargetSpecsFrom(r.config);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "t");
  EXPECT_EQ(specs[0].kpi, "bounce_rate");
  EXPECT_EQ(specs[0].filter.at("channel"), "Email");
  EXPECT_EQ(specs[0].direction, Direction::kAtMost);  // bounce: lower is better
  EXPECT_EQ(specs[0].value, 0.4);
  EXPECT_EQ(specs[0].tolerance, 0.05);
  EXPECT_EQ(specs[0].window, absl::Hours(1));
  EXPECT_EQ(specs[0].min_sample, 7);
  EXPECT_TRUE(specs[0].rolling());
  EXPECT_FALSE(specs[1].rolling());
  // Days of sessions.timezone (Berlin's midnights).
  EXPECT_EQ(specs[1].period_start,
            absl::FromCivil(absl::CivilDay(2026, 1, 1), rules.timezone));
  EXPECT_EQ(specs[1].period_end,
            absl::FromCivil(absl::CivilDay(2026, 2, 1), rules.timezone));
  EXPECT_EQ(specs[1].period_start,
            absl::FromCivil(absl::CivilDay(2026, 1, 1), absl::UTCTimeZone()) -
                absl::Hours(1));
  // The targets' filter values are reserved in the counters' labels.
  const KpiCounters::Options counters = CounterOptionsFrom(r.config);
  EXPECT_EQ(counters.reserved.at("channel"), std::vector<std::string>{"Email"});
  EXPECT_EQ(counters.reserved.count("goal"), 0u);
}

// A `key: visitor_id` events input keeps its sessions apart from the other
// inputs': with two or more events inputs, the engine warns at start,
// naming them and the fix. Only `key: any` inputs (sessionized together
// through the repartition topic), or a single input: no warning.
TEST(StateOptionsTest, AnInputKeyedByVisitorBesideAnotherIsWarnedAbout) {
  for (const char* second : {"key: visitor_id", "key: any"}) {
    ConfigResult two =
        ParseConfig(absl::StrCat("inputs:\n"
                                 "  - {topic: web.events, key: visitor_id}\n"
                                 "  - {topic: web.orders, ",
                                 second,
                                 "}\n"
                                 "  - {topic: web.cost, kind: ad_cost}\n"));
    ASSERT_TRUE(two.ok()) << two.errors.front().ToString("c");
    const std::string warning = SeparatelySessionizedInputs(two.config);
    EXPECT_NE(warning.find("\"web.events\", \"web.orders\""), std::string::npos)
        << second << ": " << warning;
    EXPECT_EQ(warning.find("web.cost"), std::string::npos) << warning;
    EXPECT_NE(warning.find("key: any on all of them"), std::string::npos)
        << warning;
  }
  for (const char* inputs :
       {"  - {topic: web.events}\n  - {topic: web.orders}\n",
        "  - {topic: web.events, key: visitor_id}\n"
        "  - {topic: web.cost, kind: ad_cost}\n"}) {
    ConfigResult quiet = ParseConfig(absl::StrCat("inputs:\n", inputs));
    ASSERT_TRUE(quiet.ok()) << quiet.errors.front().ToString("c");
    EXPECT_EQ(SeparatelySessionizedInputs(quiet.config), "") << inputs;
  }
}

}  // namespace
}  // namespace kpistream
