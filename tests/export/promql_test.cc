#include "export/promql.h"

#include <string>

#include "export/rule_file.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace kpistream {
namespace {

TEST(PromqlTest, StringsEscapeWhatPromqlStringsNeed) {
  EXPECT_EQ(PromqlString("shop"), "\"shop\"");
  EXPECT_EQ(PromqlString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(PromqlString("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(PromqlString(std::string("x\x01y\x7f", 4)), "\"x\\x01y\\x7f\"");
  EXPECT_EQ(PromqlString("売上 ✓ {x}"), "\"売上 ✓ {x}\"");  // UTF-8 as is
}

TEST(PromqlTest, SelectorsEscapeEveryValue) {
  EXPECT_EQ(Selector("up").str(), "up");
  EXPECT_EQ(Selector("web_orders_total")
                .Equal("site", "sh\"op")
                .Regex("channel", "E.*")
                .str(),
            "web_orders_total{site=\"sh\\\"op\",channel=~\"E.*\"}");
  EXPECT_EQ(Selector("").Regex("__name__", "a|b").Equal("job", "k").str(),
            "{__name__=~\"a|b\",job=\"k\"}");
  EXPECT_EQ(Selector("x").NotEqual("reason", "not_\"pv").str(),
            "x{reason!=\"not_\\\"pv\"}");
}

TEST(PromqlTest, Durations) {
  EXPECT_EQ(PromqlDuration(absl::Hours(48)), "2d");
  EXPECT_EQ(PromqlDuration(absl::Hours(6)), "6h");
  EXPECT_EQ(PromqlDuration(absl::Minutes(90)), "90m");
  EXPECT_EQ(PromqlDuration(absl::Seconds(45)), "45s");
  EXPECT_EQ(PromqlDuration(absl::ZeroDuration()), "0m");
  // Not whole seconds: milliseconds, Prometheus' smallest unit (was "0s").
  EXPECT_EQ(PromqlDuration(absl::Milliseconds(250)), "250ms");
  EXPECT_EQ(PromqlDuration(absl::Milliseconds(1500)), "1500ms");
  EXPECT_EQ(PromqlDuration(absl::Microseconds(1001)), "2ms");
}

// User text stays literal in Go-templated labels and annotations.
TEST(AlertTextTest, KeepsUserTextLiteral) {
  AlertText text;
  text.Text("a {{ $value }} \"b\"")
      .Text(" on ")
      .Label("instance")
      .Text(": ")
      .Value();
  EXPECT_EQ(text.Template(),
            "{{ \"a {{ $value }} \\\"b\\\"\" }} on {{ $labels.instance }}: "
            "{{ if or (ge $value 9999.5) (le $value -9999.5) }}"
            "{{ printf \"%.0f\" $value }}{{ else }}"
            "{{ printf \"%.4g\" $value }}{{ end }}");
  EXPECT_EQ(text.Render({{"instance", "x:1"}}, 0.125),
            "a {{ $value }} \"b\" on x:1: 0.125");
  EXPECT_EQ(AlertText("plain").Template(), "plain");
  EXPECT_EQ(AlertText().ValuePercent().Render({}, 0.5), "50%");
}

// Rule files read back as written, whatever the text holds.
TEST(RuleFileTest, EmittedYamlReadsBack) {
  Rule rule;
  rule.alert = "A";
  rule.expr = "x{a=\"y\"} > 1";
  rule.for_duration = absl::Minutes(5);
  rule.labels = {{"severity", "page"},
                 {"target", "yes"},
                 {"n", "1.5"},
                 {"t", "2026-10-01"},
                 {"q", "a: b # c"}};
  rule.annotations = {{"summary", "ü \"q\" \\ {x}"}};
  const YAML::Node file = YAML::Load(
      RuleFileYaml("comment", {{"g", absl::ZeroDuration(), {rule}}}));
  const YAML::Node r = file["groups"][0]["rules"][0];
  EXPECT_EQ(r["alert"].as<std::string>(), "A");
  EXPECT_EQ(r["expr"].as<std::string>(), rule.expr);
  EXPECT_EQ(r["for"].as<std::string>(), "5m");
  for (const auto& [key, value] : rule.labels) {
    EXPECT_EQ(r["labels"][key].as<std::string>(), value);
    // YAML 1.1 readers (Python's) would turn these into bools, numbers or
    // dates unless quoted.
    if (key != "severity") {
      EXPECT_EQ(r["labels"][key].Tag(), "!") << key;
    }
  }
  EXPECT_EQ(r["annotations"]["summary"].as<std::string>(), "ü \"q\" \\ {x}");
  EXPECT_EQ(YAML::Load(RuleFileYaml("none", {}))["groups"].size(), 0u);
}

TEST(PromqlNumberTest, TenSignificantDigitsAsPromqlReadsThem) {
  EXPECT_EQ(PromqlNumber(0.05), "0.05");
  EXPECT_EQ(PromqlNumber(1500), "1500");
  EXPECT_EQ(PromqlNumber(0.95 * 100), "95");
  EXPECT_EQ(PromqlNumber(1.0 / 3), "0.3333333333");
  EXPECT_EQ(PromqlNumber(1.5e12), "1.5e+12");
  EXPECT_EQ(PromqlNumber(-2.25), "-2.25");
}

}  // namespace
}  // namespace kpistream
