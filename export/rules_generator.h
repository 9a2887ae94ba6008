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
#include "config/config.h"

namespace kpistream {

// One recording rule: the recorded name and its PromQL.
struct RecordingRule {
  std::string record;
  std::string expr;
};

// The ratio KPIs of SPEC §3 for every window in {5m, 1h, 1d}.
std::vector<RecordingRule> RatioRecordingRules();

// The rule file (Prometheus YAML) holding RatioRecordingRules().
std::string RecordingRulesYaml();

// Writes the rule files for `config` into `dir` (created if missing):
// kpistream-recording.rules.yml. The error names the file at fault.
absl::Status WriteRules(const Config& config, const std::string& dir);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_RULES_GENERATOR_H_
