#include "export/engine_alerts.h"

#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "export/alert_rules.h"
#include "export/grafana_dashboard.h"
#include "export/promql.h"

namespace kpistream {
namespace {

// Above this many messages behind, a growing lag is worth a ticket.
constexpr int kLagFloor = 1000;
// The instance of the test series.
constexpr char kInstance[] = "kpistream-1:9464";

struct EngineAlert : Alert {
  // The labels the alert has besides severity (job, instance, topic).
  std::vector<std::string> labels;
};

// `metric` of the engine's job.
std::string Of(const Config& config, const char* metric) {
  return Selector(metric).Equal("job", config.rules.job).str();
}

std::vector<EngineAlert> EngineAlerts(const Config& config) {
  const std::string& job = config.rules.job;
  // Records rejected per second: each counter summed on its own. One
  // selector of the counters' names (as before) failed to evaluate
  // wherever two of them had the same labels, the late and duplicate
  // counters always ("vector cannot contain metrics with the same
  // labelset": rate() drops the names), so the alert never fired. A
  // counter with no series (not yet scraped, or no reason but
  // not_pageview) counts 0, not "no answer" for the whole sum.
  const std::string consumed_rate =
      absl::StrCat("sum by (job) (rate(",
                   Of(config, "kpistream_events_consumed_total"), "[15m]))");
  auto rate_or_zero = [&](const std::string& selector) {
    return absl::StrCat("(sum by (job) (rate(", selector, "[15m])) or ",
                        consumed_rate, " * 0)");
  };
  const std::string rejected = absl::StrJoin(
      {rate_or_zero(Selector("kpistream_events_invalid_total")
                        .Equal("job", job)
                        // An access log's lines that are no page view
                        // (assets, POSTs, 404s: most of its lines) are input
                        // the engine reads as meant, not rejected input
                        // (review: on a plain access log the alert never
                        // stopped).
                        .NotEqual("reason", "not_pageview")
                        .str()),
       rate_or_zero(Of(config, "kpistream_events_late_total")),
       rate_or_zero(Of(config, "kpistream_events_duplicate_total"))},
      " + ");
  // Bots are not counted: a site's share of them is its traffic, not a
  // fault (16 % of the lines of the real access log in ../shared/data,
  // which kept the alert firing at its 10 %).
  const std::string deleted =
      Of(config, "kpistream_input_records_deleted_total");
  std::vector<EngineAlert> alerts;
  alerts.push_back(
      {"KpistreamInstanceDown",
       absl::StrCat(Of(config, "up"), " == 0"),
       absl::Minutes(5),
       "page",
       AlertText("kpistream instance ").Label("instance").Text(" is down"),
       AlertText("Prometheus has not scraped ")
           .Label("instance")
           .Text(absl::StrCat(
               " (job ", job,
               ") for 5 minutes: the process is gone or hung, or its "
               "metrics port is unreachable. Its partitions move to the "
               "other instances of the consumer group; with none left, no "
               "KPI moves.")),
       {"job", "instance"}});
  alerts.push_back(
      {"KpistreamAbsent",
       absl::StrCat("absent(", Of(config, "up"), ")"),
       absl::Minutes(10),
       "page",
       AlertText(
           absl::StrCat("No kpistream instance is scraped (job ", job, ")")),
       AlertText(absl::StrCat(
           "Prometheus has had no scrape target of job ", job,
           " for 10 minutes: the engine is not deployed, or service "
           "discovery or the job name (rules.job in kpistream's config) "
           "does not match. No KPI, target or engine alert is evaluated.")),
       {"job"}});
  alerts.push_back(
      {"KpistreamNotReady",
       absl::StrCat(Of(config, "kpistream_ready"), " == 0"),
       absl::Minutes(10),
       "page",
       AlertText("kpistream instance ").Label("instance").Text(" is not ready"),
       AlertText("kpistream instance ")
           .Label("instance")
           .Text(
               " has reported kpistream_ready 0 for 10 minutes: it is not "
               "connected to Kafka, has not restored its partitions' state or "
               "makes no progress. /readyz says why."),
       {"job", "instance"}});
  alerts.push_back(
      {"KpistreamRestoreFailing",
       absl::StrCat("sum by (job, instance) (increase(",
                    Of(config, "kpistream_restore_failures_total"),
                    "[15m])) > 0"),
       absl::Minutes(5),
       "page",
       AlertText("kpistream instance ")
           .Label("instance")
           .Text(" fails to restore its target state"),
       AlertText("kpistream instance ")
           .Label("instance")
           .Text(absl::StrCat(
               " failed to restore the targets' state from the changelog "
               "topic (",
               config.changelog_output.topic,
               ") in the last 15 minutes. It does not process partitions "
               "it could not restore, so their KPIs stand still.")),
       {"job", "instance"}});
  alerts.push_back(
      {"KpistreamConsumerLagGrowing",
       absl::StrCat("deriv(sum by (job, topic) (",
                    Of(config, "kpistream_consumer_lag_messages"),
                    ")[15m:1m]) > 0 and sum by (job, topic) (",
                    Of(config, "kpistream_consumer_lag_messages"), ") > ",
                    kLagFloor),
       absl::Minutes(15),
       "ticket",
       AlertText("kpistream falls behind on topic ").Label("topic"),
       AlertText("The consumer lag of job ")
           .Label("job")
           .Text(" on topic ")
           .Label("topic")
           .Text(absl::StrCat(
               " is above ", kLagFloor,
               " messages and has grown for 15 minutes: the instances "
               "consume slower than the topic is written. KPIs are late by "
               "as much.")),
       {"job", "topic"}});
  alerts.push_back(
      {"KpistreamWatermarkStalled",
       absl::StrCat(
           "deriv(", Of(config, "kpistream_watermark_lag_seconds"),
           "[10m]) > 0.5 and ", Of(config, "kpistream_watermark_lag_seconds"),
           " > 300 and on (job, instance) sum by (job, instance) "
           "(rate(",
           Of(config, "kpistream_events_consumed_total"), "[10m])) > 0"),
       absl::Minutes(10),
       "ticket",
       AlertText("The event-time watermark of ")
           .Label("instance")
           .Text(" is stalled"),
       AlertText("kpistream instance ")
           .Label("instance")
           .Text(" consumes records but its watermark lag is above 5 minutes "
                 "and grows at more than half the speed of the clock: sessions "
                 "stop closing, so closed-session KPIs and targets stand "
                 "still."),
       {"job", "instance"}});
  alerts.push_back(
      {"KpistreamDeadLetterRateHigh",
       absl::StrCat("(", rejected, ") / ", consumed_rate, " > ",
                    PromqlNumber(config.rules.dead_letter_ratio)),
       absl::Minutes(15),
       "ticket",
       AlertText("kpistream rejects ").ValuePercent().Text(" of its input"),
       AlertText("Over the last 15 minutes ")
           .ValuePercent()
           .Text(absl::StrCat(
               " of the records job ", job,
               " consumed were invalid, late or duplicates (more than ",
               PromqlNumber(config.rules.dead_letter_ratio * 100),
               " %); they are on the dead-letter topic ",
               config.deadletter_output.topic,
               " with a reason header and are not in the KPIs.")),
       {"job"}});
  alerts.push_back(
      // Not increase() alone: the count often comes at a restart, about a
      // second after /metrics is up, so its series rarely has a 0 sample
      // first (the process before it was gone for longer than the hour):
      // also above 0 with no sample an hour ago. increase() handles a count
      // while running and a restart of the same instance (a counter reset;
      // review).
      {"KpistreamInputRecordsDeleted",
       absl::StrCat("sum by (job, topic) (increase(", deleted, "[1h]) > 0 or (",
                    deleted, " > 0 unless ", deleted, " offset 1h)) > 0"),
       absl::Minutes(1),
       "ticket",
       AlertText("kpistream lost input records of topic ")
           .Label("topic")
           .Text(" to retention"),
       AlertText("In the last hour job ")
           .Label("job")
           .Text(" found records of topic ")
           .Label("topic")
           .Text(" deleted by retention before it read them (it was down or "
                 "behind for longer than the topic keeps records): they are "
                 "lost, in no KPI and on no dead-letter topic. The engine's "
                 "ERROR log names the partitions and offsets."),
       {"job", "topic"}});
  return alerts;
}

// The README's runbook section of the alert.
std::string RunbookUrl(const Config& config, const EngineAlert& a) {
  return absl::StrCat(config.rules.runbook_base_url, "#",
                      absl::AsciiStrToLower(a.name));
}

std::string DashboardUrl(const Config& config) {
  return absl::StrCat(config.rules.grafana_url, DashboardPath());
}

}  // namespace

std::vector<RuleGroup> EngineAlertRuleGroups(const Config& config) {
  RuleGroup group;
  group.name = "kpistream-engine";
  for (const EngineAlert& a : EngineAlerts(config)) {
    group.rules.push_back(a.ToRule(
        {}, {{"runbook_url", AlertText(RunbookUrl(config, a)).Template()},
             {"dashboard", AlertText(DashboardUrl(config)).Template()}}));
  }
  return {std::move(group)};
}

std::string EngineAlertRulesYaml(const Config& config) {
  return RuleFileYaml(
      "Generated by `kpistream rules`: alerts on kpistream itself. Do not "
      "edit.",
      EngineAlertRuleGroups(config));
}

namespace {

// `metric` of the engine's job at instance kInstance with `labels`.
std::string Series(const Config& config, const char* metric,
                   const std::vector<std::string>& values) {
  Selector selector(metric);
  selector.Equal("job", config.rules.job).Equal("instance", kInstance);
  const absl::Span<const absl::string_view> labels = MetricLabels(metric);
  for (size_t i = 0; i < labels.size(); ++i) {
    selector.Equal(labels[i], values.at(i));
  }
  return selector.str();
}

}  // namespace

std::string EngineAlertRulesTestYaml(const Config& config,
                                     const std::string& rule_file) {
  const std::string topic =
      config.inputs.empty() ? "web.events" : config.inputs[0].topic;
  const double threshold = config.rules.dead_letter_ratio;
  // Rejected shares that are exact in floating point, so that the
  // annotation's percentage is too: above and below the threshold.
  const double bad_share = threshold < 0.5 ? 0.5 : 1.0;
  const double good_share = threshold / 2;
  const std::string up = Series(config, "up", {});
  const std::string ready = Series(config, "kpistream_ready", {});
  const std::string restores =
      Series(config, "kpistream_restore_failures_total", {});
  const std::string lag =
      Series(config, "kpistream_consumer_lag_messages", {topic, "0"});
  const std::string watermark =
      Series(config, "kpistream_watermark_lag_seconds", {});
  const std::string consumed =
      Series(config, "kpistream_events_consumed_total", {topic});
  const std::string invalid =
      Series(config, "kpistream_events_invalid_total", {"malformed"});
  // Exported from the start, as the engine exports them (at 0).
  const std::string late = Series(config, "kpistream_events_late_total", {});
  const std::string duplicate =
      Series(config, "kpistream_events_duplicate_total", {});
  const std::string deleted =
      Series(config, "kpistream_input_records_deleted_total", {topic});
  const std::string consumed_values = "0+600x40";
  const absl::Duration eval = absl::Minutes(30);

  // The cause of each alert (in EngineAlerts' order), the series the other
  // alerts need to stay quiet are in the healthy case.
  const std::map<std::string, std::vector<InputSeries>> broken = {
      {"KpistreamInstanceDown", {{up, "1 1 0x40"}}},
      {"KpistreamAbsent",
       {{Selector("up")
             .Equal("job", config.rules.job + "-other")
             .Equal("instance", kInstance)
             .str(),
         "1x40"}}},
      {"KpistreamNotReady", {{up, "1x40"}, {ready, "0x40"}}},
      {"KpistreamRestoreFailing", {{up, "1x40"}, {restores, "0 0+1x40"}}},
      {"KpistreamConsumerLagGrowing", {{up, "1x40"}, {lag, "1000+100x40"}}},
      {"KpistreamWatermarkStalled",
       {{up, "1x40"}, {watermark, "60+60x40"}, {consumed, consumed_values}}},
      {"KpistreamDeadLetterRateHigh",
       {{up, "1x40"},
        {consumed, consumed_values},
        {invalid, absl::StrCat("0+", PromqlNumber(600 * bad_share), "x40")},
        {late, "0x40"},
        {duplicate, "0x40"}}},
      {"KpistreamInputRecordsDeleted", {{up, "1x40"}, {deleted, "0 0+5x40"}}},
  };
  const std::vector<InputSeries> healthy = {
      {up, "1x40"},
      {ready, "1x40"},
      {restores, "0x40"},
      {lag, "500x40"},
      {watermark, "30x40"},
      {consumed, consumed_values},
      {invalid, absl::StrCat("0+", PromqlNumber(600 * good_share), "x40")},
      {late, "0x40"},
      {duplicate, "0x40"},
      {deleted, "0x40"}};

  const std::vector<EngineAlert> alerts = EngineAlerts(config);
  std::vector<RuleTest> tests;
  RuleTest quiet{"kpistream healthy: no engine alert", healthy, {}};
  for (const EngineAlert& a : alerts)
    quiet.alert_tests.push_back({eval, a.name, {}});
  tests.push_back(std::move(quiet));
  const std::map<std::string, std::string> label_values = {
      {"job", config.rules.job}, {"instance", kInstance}, {"topic", topic}};
  for (size_t i = 0; i < alerts.size(); ++i) {
    const EngineAlert& a = alerts[i];
    std::map<std::string, std::string> labels;
    ExpectedAlert expected;
    expected.labels = {{"severity", a.severity}};
    for (const std::string& label : a.labels) {
      labels[label] = label_values.at(label);
      expected.labels.emplace_back(label, label_values.at(label));
    }
    expected.annotations = {
        {"summary", a.summary.Render(labels, bad_share)},
        {"description", a.description.Render(labels, bad_share)},
        {"runbook_url", RunbookUrl(config, a)},
        {"dashboard", DashboardUrl(config)}};
    tests.push_back({a.name, broken.at(a.name), {{eval, a.name, {expected}}}});
  }
  return RuleTestFileYaml(
      "Generated by `kpistream rules`: drives every engine alert to firing\n"
      "and, in a healthy case, none. Run: promtool test rules <this file>",
      {rule_file}, tests);
}

}  // namespace kpistream
