#include "export/alert_rules.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "export/rules_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace kpistream {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Config Parse(const std::string& yaml) {
  ConfigResult r = ParseConfig(yaml);
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].message);
  return r.config;
}

// One generated alerting rule, as Prometheus reads it.
struct Rule {
  std::string expr;
  std::string for_duration;
  std::map<std::string, std::string> labels;
};

// The rules of AlertRulesYaml(config) by "target/alertname".
std::map<std::string, Rule> Rules(const Config& config) {
  std::map<std::string, Rule> rules;
  const YAML::Node file = YAML::Load(AlertRulesYaml(config));
  for (const YAML::Node& group : file["groups"]) {
    for (const YAML::Node& node : group["rules"]) {
      Rule rule;
      rule.expr = node["expr"].as<std::string>();
      rule.for_duration = node["for"].as<std::string>();
      for (const auto& label : node["labels"]) {
        rule.labels[label.first.as<std::string>()] =
            label.second.as<std::string>();
      }
      rules[rule.labels.at("target") + "/" + node["alert"].as<std::string>()] =
          rule;
    }
  }
  return rules;
}

// issue 10 item 8: a target's severity caps every alert generated for it
// (page > ticket > info); its `for` is the floor of every alert's `for`.
TEST(AlertRulesTest, TargetSeverityCapsEveryAlertAndItsForIsTheFloor) {
  const std::map<std::string, Rule> rules = Rules(Parse(R"(
inputs: [{topic: web.events}]
targets:
  - {name: paging, kpi: bounce_rate, value: 0.4, window: 1h, for: 1m,
     severity: page}
  - {name: ticketing, kpi: bounce_rate, value: 0.4, window: 1h, for: 5m,
     severity: ticket}
  - {name: quiet, kpi: bounce_rate, value: 0.4, window: 1h, for: 30m,
     severity: info}
  - {name: quiet_period, kpi: orders, value: 500, for: 1h, severity: info,
     period: {start: 2026-10-01, end: 2026-12-31}}
)"));
  ASSERT_EQ(rules.size(), 3u * 3 + 2);
  // A paging target keeps the SRE workbook's burn pair as it is.
  EXPECT_EQ(rules.at("paging/KpiOffTarget").labels.at("severity"), "page");
  EXPECT_EQ(rules.at("paging/KpiOffTarget").for_duration, "1m");
  EXPECT_EQ(rules.at("paging/KpiFastBurn").labels.at("severity"), "page");
  EXPECT_EQ(rules.at("paging/KpiFastBurn").for_duration, "2m");
  EXPECT_EQ(rules.at("paging/KpiSlowBurn").labels.at("severity"), "ticket");
  EXPECT_EQ(rules.at("paging/KpiSlowBurn").for_duration, "15m");
  // A ticket target's fast burn is a ticket.
  EXPECT_EQ(rules.at("ticketing/KpiFastBurn").labels.at("severity"), "ticket");
  EXPECT_EQ(rules.at("ticketing/KpiFastBurn").for_duration, "5m");
  EXPECT_EQ(rules.at("ticketing/KpiSlowBurn").labels.at("severity"), "ticket");
  // An info target never pages nor opens a ticket, and waits its 30m.
  for (const char* alert : {"KpiOffTarget", "KpiFastBurn", "KpiSlowBurn"}) {
    SCOPED_TRACE(alert);
    EXPECT_EQ(rules.at(std::string("quiet/") + alert).labels.at("severity"),
              "info");
    EXPECT_EQ(rules.at(std::string("quiet/") + alert).for_duration, "30m");
  }
  for (const char* alert : {"KpiBehindPace", "KpiProjectedMiss"}) {
    SCOPED_TRACE(alert);
    const Rule& rule = rules.at(std::string("quiet_period/") + alert);
    EXPECT_EQ(rule.labels.at("severity"), "info");
    EXPECT_EQ(rule.for_duration, "1h");
  }
}

// A period's alerts end at the midnight that ends its last day in the
// sessions' time zone, and name that day as the deadline (east of UTC, the
// day before that midnight in UTC was the day before the deadline).
TEST(AlertRulesTest, APeriodEndsAtTheSiteTimeZonesMidnight) {
  const Config config = Parse(R"(inputs: [{topic: a}]
sessions: {timezone: Europe/Berlin}
targets:
  - {name: q4, kpi: orders, value: 500,
     period: {start: 2026-10-01, end: 2026-12-31}}
)");
  const std::map<std::string, Rule> rules = Rules(config);
  // 2026-12-31T23:00:00Z: Berlin's midnight (CET, +1).
  EXPECT_THAT(rules.at("q4/KpiBehindPace").expr,
              HasSubstr("vector(time()) < 1798758000"));
  const std::string yaml = AlertRulesYaml(config);
  EXPECT_THAT(yaml, HasSubstr("by 2026-12-31"));
  EXPECT_THAT(yaml, Not(HasSubstr("2026-12-30")));
}

// issue 10 item 4: AOV divides the revenue of a currency by the orders of
// that currency, with or without a currency filter.
TEST(AlertRulesTest, AverageOrderValueIsPerCurrency) {
  const Config config = Parse(R"(
inputs: [{topic: web.events}]
targets:
  - {name: eur_aov, kpi: average_order_value, filter: {currency: EUR},
     value: 40, window: 1d}
  - {name: any_aov, kpi: average_order_value, filter: {site: shop},
     value: 40, window: 1d}
  - {name: eur_orders, kpi: orders, filter: {currency: EUR}, value: 100,
     period: {start: 2026-10-01, end: 2026-12-31}}
)");
  // A currency with orders but no revenue yet reads 0, not nothing.
  EXPECT_EQ(TargetValueExpr(config.targets[0]),
            "((sum by (currency) (increase(web_revenue_total{currency="
            "\"EUR\"}[1d])) or sum by (currency) (increase(web_orders_total{"
            "currency=\"EUR\"}[1d])) * 0) / (sum by (currency) "
            "(increase(web_orders_total{currency=\"EUR\"}[1d])) > 0 or sum by "
            "(currency) (increase(web_orders_total{currency=\"EUR\"}[1d])) * "
            "NaN))");
  EXPECT_EQ(TargetValueExpr(config.targets[1]),
            "((sum by (currency) (increase(web_revenue_total{site=\"shop\"}"
            "[1d])) or sum by (currency) (increase(web_orders_total{site="
            "\"shop\"}[1d])) * 0) / (sum by (currency) "
            "(increase(web_orders_total{site=\"shop\"}[1d])) > 0 or sum by "
            "(currency) (increase(web_orders_total{site=\"shop\"}[1d])) * "
            "NaN))");
  EXPECT_EQ(TargetValueLabels(config.targets[1]),
            std::vector<std::string>{"currency"});
  EXPECT_TRUE(TargetValueLabels(config.targets[2]).empty());
  const std::map<std::string, Rule> rules = Rules(config);
  // The projection of an order count runs on that currency's orders.
  EXPECT_THAT(rules.at("eur_orders/KpiProjectedMiss").expr,
              HasSubstr("web_orders_total{currency=\"EUR\"}[1d]"));
}

// The dashboard's on-track panel agrees with the alerts: a rate or a mean
// per session over fewer than min_sessions closed sessions is on track (too
// few to judge); a count has no min_sessions.
TEST(AlertRulesTest, OnTrackHoldsMinSessions) {
  const Config config = Parse(R"(inputs: [{topic: a}]
targets:
  - {name: depth, kpi: pageviews_per_session, filter: {site: shop}, value: 3,
     window: 1h, min_sessions: 50}
  - {name: traffic, kpi: sessions, filter: {site: shop}, value: 10,
     window: 1h}
)");
  ASSERT_EQ(config.targets.size(), 2u);
  EXPECT_EQ(TargetOnTrackExpr(config.targets[0]),
            absl::StrCat("((", TargetValueExpr(config.targets[0]),
                         " >= bool 3) + (sum(increase(web_session_pageviews_"
                         "count{site=\"shop\"}[1h])) < bool 50)) > bool 0"));
  EXPECT_EQ(TargetOnTrackExpr(config.targets[1]),
            absl::StrCat(TargetValueExpr(config.targets[1]), " >= bool 10"));
}

// long_session_rate's value: long over closed sessions, both selected by
// the filter; a rate, so it has the burn-rate pair besides KpiOffTarget.
TEST(AlertRulesTest, LongSessionRateIsLongOverClosedSessions) {
  const Config config = Parse(R"(inputs: [{topic: a}]
targets:
  - {name: stay, kpi: long_session_rate, filter: {site: shop, device: mobile},
     value: 0.25, window: 1d}
)");
  ASSERT_EQ(config.targets.size(), 1u);
  EXPECT_EQ(TargetValueExpr(config.targets[0]),
            "((sum(increase(web_sessions_long_total{site=\"shop\",device="
            "\"mobile\"}[1d])) or sum(increase(web_sessions_closed_total{site="
            "\"shop\",device=\"mobile\"}[1d])) * 0) / (sum(increase("
            "web_sessions_closed_total{site=\"shop\",device=\"mobile\"}"
            "[1d])) > 0 or sum(increase(web_sessions_closed_total{site="
            "\"shop\",device=\"mobile\"}[1d])) * NaN))");
  const std::map<std::string, Rule> rules = Rules(config);
  EXPECT_EQ(rules.size(), 3u);
  for (const char* alert : {"KpiOffTarget", "KpiFastBurn", "KpiSlowBurn"}) {
    ASSERT_TRUE(rules.count(std::string("stay/") + alert)) << alert;
    EXPECT_EQ(rules.at(std::string("stay/") + alert).labels.at("kpi"),
              "long_session_rate");
  }
  EXPECT_THAT(rules.at("stay/KpiOffTarget").expr, HasSubstr(" < 0.25"));
}

// A money ratio's alerts are per currency: a fast burn inhibits the slow
// burn and the off-target alert of its own target and currency only (an
// audit: a EUR fast burn silenced USD's off target).
TEST(AlertmanagerExampleTest, AFastBurnInhibitsItsOwnCurrencysAlertsOnly) {
  const YAML::Node am = YAML::Load(AlertmanagerExampleYaml());
  bool found = false;
  for (const YAML::Node& rule : am["inhibit_rules"]) {
    if (rule["source_matchers"][0].as<std::string>() !=
        "alertname=\"KpiFastBurn\"") {
      continue;
    }
    found = true;
    std::vector<std::string> equal;
    for (const YAML::Node& label : rule["equal"]) {
      equal.push_back(label.as<std::string>());
    }
    EXPECT_THAT(equal, ::testing::UnorderedElementsAre("target", "currency"));
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace kpistream
