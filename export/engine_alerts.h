// Alerts on kpistream itself (issue 10 item 10), the group kpistream-engine
// of kpistream-engine.rules.yml. They select the engine's series by the
// Prometheus job `rules.job` (default "kpistream"):
//
//   KpistreamInstanceDown        up == 0 for 5m (page);
//   KpistreamAbsent              no `up` series of the job for 10m (page);
//   KpistreamNotReady            kpistream_ready == 0 for 10m (page);
//   KpistreamRestoreFailing      kpistream_restore_failures_total grew in
//                                the last 15m, for 5m (page);
//   KpistreamConsumerLagGrowing  the group's lag on a topic
//                                (kpistream_consumer_lag_messages summed by
//                                topic) above 1000 messages and growing
//                                over 15m, for 15m (ticket);
//   KpistreamWatermarkStalled    an instance consumes but its watermark lag
//                                is above 5m and grows at more than half
//                                the wall clock's speed, for 10m (ticket);
//   KpistreamDeadLetterRateHigh  invalid + late + duplicate + bot records
//                                over consumed records above
//                                `rules.dead_letter_ratio` for 15m (ticket).
//
// Every alert has the annotations summary, description, runbook_url
// (`rules.runbook_base_url` + "#" + the alert's name in lower case: the
// README's runbook section of that name) and dashboard (`rules.grafana_url`
// + the dashboard's path). A promtool test file drives every alert to
// firing and, in one healthy case, none.
#ifndef KPISTREAM_EXPORT_ENGINE_ALERTS_H_
#define KPISTREAM_EXPORT_ENGINE_ALERTS_H_

#include <string>
#include <vector>

#include "config/config.h"
#include "export/rule_file.h"

namespace kpistream {

// The kpistream-engine group.
std::vector<RuleGroup> EngineAlertRuleGroups(const Config& config);

// The rule file holding EngineAlertRuleGroups(config).
std::string EngineAlertRulesYaml(const Config& config);

// promtool test file for EngineAlertRulesYaml(config), reading it from
// `rule_file` (a path relative to the test file).
std::string EngineAlertRulesTestYaml(const Config& config,
                                     const std::string& rule_file);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_ENGINE_ALERTS_H_
