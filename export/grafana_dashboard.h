// The Grafana dashboard of `kpistream rules` (SPEC §6): one JSON model
// (Grafana 10/11 schema) generated from the config, so that its target
// panels, thresholds and funnels always match the targets and funnels the
// engine evaluates.
//
// Rows, top to bottom:
//   Targets      per target: a rolling target's value (fleet-wide PromQL:
//                the KPI from the counters) with red/yellow/green thresholds
//                at the target and its tolerance; a period target's summed
//                actual to date and its pace, coloured by the pace (red
//                only when behind it beyond the tolerance); attainment and
//                on-track over time; pace and projection of period targets.
//   Traffic      sessions, page views, engagement and bounce rate, single
//                page rate, duration, pages per session, new visitors.
//   Conversions  conversion rate per goal, conversions, revenue, AOV, ROAS.
//   Channels     sessions and bounce rate by channel, top campaigns.
//   Funnels      one bar gauge per configured funnel, steps in order.
//   Realtime     active visitors (5m, 30m), open sessions.
//   Engine       input accounting, invalid by reason, watermark and
//                consumer lag, state size, label overflow, instances up.
//
// Variables: `datasource` (Prometheus) and `site` (multi, all).
#ifndef KPISTREAM_EXPORT_GRAFANA_DASHBOARD_H_
#define KPISTREAM_EXPORT_GRAFANA_DASHBOARD_H_

#include <string>

#include "config/config.h"

namespace kpistream {

// The dashboard's uid, and its path on a Grafana server (/d/<uid>).
inline constexpr char kDashboardUid[] = "kpistream";
std::string DashboardPath();

// The dashboard JSON model (pretty-printed), for provisioning or import.
// Its queries escape every value from the config (target names, filter
// values, funnel and step names) as PromQL strings.
std::string GrafanaDashboardJson(const Config& config);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_GRAFANA_DASHBOARD_H_
