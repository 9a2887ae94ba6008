// Generated Prometheus rules (SPEC §6): recording rules for every ratio KPI,
// computed from the exported counters by site over 5m, 1h and 1d, so that
// N instances add up and Grafana panels and alerts read one series each.
//
// Names follow Prometheus' level:metric:operations convention, e.g.
// site:web_bounce_rate:ratio_rate5m.
#ifndef KPISTREAM_EXPORT_RULES_GENERATOR_H_
#define KPISTREAM_EXPORT_RULES_GENERATOR_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "aggregate/kpi_catalog.h"
#include "config/config.h"
#include "export/rule_file.h"

namespace kpistream {

// The recorded name of a ratio KPI of the catalog (one with a `record`)
// over `window`, e.g. site:web_bounce_rate:ratio_rate1h.
std::string RecordedRatioName(const KpiDef& kpi, absl::string_view window);

// One recording rule: the recorded name and its PromQL.
struct RecordingRule {
  std::string record;
  std::string expr;
};

// The ratio KPIs of the catalog (those with a `record`) for every window in
// {5m, 1h, 1d}.
std::vector<RecordingRule> RatioRecordingRules();

// RatioRecordingRules() in one group per window (5m every 30s, 1h and 1d
// every minute).
std::vector<RuleGroup> RecordingRuleGroups();

// The rule file (Prometheus YAML) holding RecordingRuleGroups().
std::string RecordingRulesYaml();

// An example Alertmanager config routing the target and engine alerts by
// severity, with inhibitions between them.
std::string AlertmanagerExampleYaml();

// The recording rules, the targets' alerts and the engine's alerts as one
// prometheus-operator PrometheusRule manifest.
std::string PrometheusRuleYaml(const Config& config);

// Writes into `dir` (created if missing): kpistream-recording.rules.yml,
// kpistream-alerts.rules.yml and kpistream-engine.rules.yml with their
// promtool tests kpistream-alerts.test.yml and kpistream-engine.test.yml,
// kpistream-dashboard.json (Grafana), kpistream-prometheusrule.yaml and
// alertmanager.example.yml. The error names the file at fault.
absl::Status WriteRules(const Config& config, const std::string& dir);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_RULES_GENERATOR_H_
