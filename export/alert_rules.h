// Alerting rules for KPI targets (SPEC §6), computed in PromQL from the
// engine's counters so that they hold across any number of instances:
//
//   KpiOffTarget      the KPI over the target's rolling window is off target
//                     (beyond its tolerance) for `for`, with at least
//                     `min_sessions` sessions in the window;
//   KpiFastBurn       rate KPIs: off target over both 1h and 5m (page, 2m);
//   KpiSlowBurn       rate KPIs: off target over both 6h and 30m (ticket,
//                     15m);
//   KpiBehindPace     period targets: the summed pace off the linear pace
//                     beyond the tolerance;
//   KpiProjectedMiss  period targets: the actual to date plus the last
//                     day's rate until the deadline misses the target.
//
// A target's `severity` caps every alert generated for it (page > ticket >
// info) and its `for` is the floor of every alert's `for`. Labels:
// severity, target, kpi (and currency for AOV and ROAS, one series per
// currency). Annotations quote the objective, the actual value and the
// target; the target's name and objective are literal text in them, braces
// included. A promtool unit-test file drives every alert to firing and to
// not firing.
#ifndef KPISTREAM_EXPORT_ALERT_RULES_H_
#define KPISTREAM_EXPORT_ALERT_RULES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "config/config.h"
#include "export/rule_file.h"

namespace kpistream {

// The labels the engine exports series `series` with (its family's in
// aggregate/metric_families.h; besides Prometheus' job and instance), for
// every series the generated rules and their tests read; none for `up`.
// Aborts for a series kpistream does not export.
absl::Span<const absl::string_view> MetricLabels(absl::string_view series);

// PromQL for a target's current value, for all instances: a rolling
// target's KPI over its window from the counters; a period target's actual
// to date, the sum of the instances' kpi_actual_value.
std::string TargetValueExpr(const TargetConfig& target);

// The labels that tell TargetValueExpr's series apart: {"currency"} for
// money ratios (AOV, ROAS: one series per currency, each judged against the
// target), else none (one series).
std::vector<std::string> TargetValueLabels(const TargetConfig& target);

// PromQL for all instances: a period target's pace, actual to date over
// the linearly expected value to date (the sum of the instances'
// kpi_pace_ratio: each divides its share by the whole expectation).
std::string TargetPaceExpr(const TargetConfig& target);

// PromQL for all instances: the target's attainment (value / target, or
// target / value for at-most), and 1 when it is on track (within tolerance;
// a period: its summed projection), else 0.
std::string TargetAttainmentExpr(const TargetConfig& target);
std::string TargetOnTrackExpr(const TargetConfig& target);

// The group of the alerts of every target in `config` (none without
// targets).
std::vector<RuleGroup> TargetAlertRuleGroups(const Config& config);

// Prometheus rule file with TargetAlertRuleGroups(config).
std::string AlertRulesYaml(const Config& config);

// promtool test file for AlertRulesYaml(config), reading it from
// `rule_file` (a path relative to the test file).
std::string AlertRulesTestYaml(const Config& config,
                               const std::string& rule_file);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_ALERT_RULES_H_
