// `kpistream rules` output is valid for promtool, and the recorded ratios
// compute what they claim from series shaped like the engine's counters.
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

constexpr char kPromtoolTest[] = R"(rule_files:
  - kpistream-recording.rules.yml
evaluation_interval: 1m
tests:
  # Per-minute increments are multiples of 60, so every rate and ratio is
  # exact in floating point (promtool compares exactly).
  - interval: 1m
    input_series:
      - series: 'web_sessions_bounced_total{site="shop",channel="Direct",device="desktop",country="DE"}'
        values: '0+180x20'
      - series: 'web_sessions_bounced_total{site="shop",channel="Email",device="mobile",country="FR"}'
        values: '0+60x20'
      - series: 'web_sessions_closed_total{site="shop",channel="Direct",device="desktop",country="DE"}'
        values: '0+360x20'
      - series: 'web_sessions_closed_total{site="shop",channel="Email",device="mobile",country="FR"}'
        values: '0+120x20'
      - series: 'web_sessions_converted_total{site="shop",goal="signup",channel="Direct"}'
        values: '0+60x20'
      - series: 'web_revenue_total{site="shop",channel="Email",currency="EUR"}'
        values: '0+4500x20'
      - series: 'web_orders_total{site="shop",channel="Email"}'
        values: '0+60x20'
      - series: 'web_ad_cost_total{site="shop",channel="Email",campaign="winter",currency="EUR"}'
        values: '0+1500x20'
      - series: 'web_session_pageviews_sum{site="shop"}'
        values: '0+1440x20'
      - series: 'web_session_pageviews_count{site="shop"}'
        values: '0+480x20'
    promql_expr_test:
      - expr: site:web_bounce_rate:ratio_rate5m
        eval_time: 15m
        exp_samples:
          - labels: 'site:web_bounce_rate:ratio_rate5m{site="shop"}'
            value: 0.5
      - expr: site:web_engagement_rate:ratio_rate1h
        eval_time: 15m
        exp_samples: []
      - expr: site_goal:web_conversion_rate:ratio_rate5m
        eval_time: 15m
        exp_samples:
          - labels: 'site_goal:web_conversion_rate:ratio_rate5m{site="shop",goal="signup"}'
            value: 0.125
      - expr: site_currency:web_average_order_value:ratio_rate5m
        eval_time: 15m
        exp_samples:
          - labels: 'site_currency:web_average_order_value:ratio_rate5m{site="shop",currency="EUR"}'
            value: 75
      - expr: site_channel_currency:web_roas:ratio_rate5m
        eval_time: 15m
        exp_samples:
          - labels: 'site_channel_currency:web_roas:ratio_rate5m{site="shop",channel="Email",currency="EUR"}'
            value: 3
      - expr: site:web_pageviews_per_session:ratio_rate5m
        eval_time: 15m
        exp_samples:
          - labels: 'site:web_pageviews_per_session:ratio_rate5m{site="shop"}'
            value: 3
)";

TEST(RulesTest, GeneratedRecordingRulesPassPromtoolCheckAndTest) {
  TempDir dir;
  CommandResult rules = RunCommand(
      {KpistreamBinary(), "rules", "--config",
       SourceDir() + "/config/examples/kpistream.yaml", "--out", dir.path()});
  ASSERT_EQ(rules.exit_code, 0) << rules.err;
  const std::string file = dir.path() + "/kpistream-recording.rules.yml";
  CommandResult check = RunCommand({"promtool", "check", "rules", file});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_TRUE(absl::StrContains(check.out, "SUCCESS: 27 rules found"))
      << check.out;
  const std::string test =
      dir.Write("kpistream-recording.test.yml", kPromtoolTest);
  CommandResult run = RunCommand({"promtool", "test", "rules", test});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
}

// Counts the occurrences of `needle` in `text`.
int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST(RulesTest, TargetAlertsAndTheirGeneratedTestsPassPromtool) {
  TempDir dir;
  CommandResult rules = RunCommand(
      {KpistreamBinary(), "rules", "--config",
       SourceDir() + "/config/examples/kpistream.yaml", "--out", dir.path()});
  ASSERT_EQ(rules.exit_code, 0) << rules.err;
  const std::string alerts = dir.path() + "/kpistream-alerts.rules.yml";
  CommandResult check = RunCommand({"promtool", "check", "rules", alerts});
  ASSERT_EQ(check.exit_code, 0) << check.out << check.err;
  // The example's rolling conversion-rate target: off target plus the two
  // multiwindow alerts (its cumulative target has none yet).
  EXPECT_TRUE(absl::StrContains(check.out, "SUCCESS: 3 rules found"))
      << check.out;
  CommandResult test = RunCommand(
      {"promtool", "test", "rules", dir.path() + "/kpistream-alerts.test.yml"});
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
  // Every alert is driven to firing and to not firing.
  CommandResult rule_text = RunCommand({"cat", alerts});
  CommandResult test_text =
      RunCommand({"cat", dir.path() + "/kpistream-alerts.test.yml"});
  const int alert_count = Count(rule_text.out, "- alert: ");
  EXPECT_EQ(alert_count, 3);
  EXPECT_EQ(Count(test_text.out, "alertname: "), 2 * alert_count);
  EXPECT_EQ(Count(test_text.out, "exp_alerts: []"), alert_count);
}

TEST(RulesTest, BadConfigExitsTwo) {
  TempDir dir;
  const std::string bad = dir.Write("bad.yaml", "inputs: []\nbogus: 1\n");
  EXPECT_EQ(RunCommand({KpistreamBinary(), "rules", "--config", bad, "--out",
                        dir.path()})
                .exit_code,
            2);
}

}  // namespace
}  // namespace kpistream::testing
