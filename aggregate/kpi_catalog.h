// The KPI catalog (SPEC §3, aggregate/KPIS.md): every KPI a target may name,
// described once as data. One KpiDef per KPI says what it is (kind,
// numerator and denominator series of the families in
// aggregate/metric_families.h, default direction, unit, help) and how the
// engine values one closed session for it; everything that knows KPIs reads
// it:
//
//   config validation  known names, filter labels (the numerator family's),
//                      rate bounds, default direction, period KPIs;
//   TargetTracker      the per-session numerator and denominator;
//   alert rules        the PromQL of a target's value (numerator /
//                      denominator series, per currency or not);
//   recording rules    the ratios recorded by site over 5m, 1h and 1d;
//   dashboard          units, recorded names and the KPIs' own panels;
//   KPIS.md            its test checks that the page documents every row.
//
// Adding a KPI is one row of the table in kpi_catalog.cc plus the code that
// counts its numerator (a family in metric_families.{h,cc} counted by
// KpiCounters, and what the Sessionizer decides about a closed session).
//
// Plain constant data, safe to read from any thread.
#ifndef KPISTREAM_AGGREGATE_KPI_CATALOG_H_
#define KPISTREAM_AGGREGATE_KPI_CATALOG_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "aggregate/kpi_target.h"
#include "aggregate/metric_families.h"
#include "aggregate/session.h"

namespace kpistream {

enum class KpiKind {
  kRate,   // a share of sessions, in [0, 1]: numerator / denominator
  kMean,   // a ratio that is not a share: per session, per order, per cost
  kCount,  // a count over the window or period
  kSum,    // a sum (money) over the window or period
};

// One series of a family: a counter itself, or a histogram's _sum or
// _count.
struct KpiSeries {
  const MetricFamilyDef* family = nullptr;  // nullptr: none
  absl::string_view suffix;                 // "", "_sum" or "_count"

  std::string name() const;  // e.g. "web_session_pageviews_sum"
};

// What selects inside a closed session for a target: the filter's goal
// (conversions) and currency (revenue, orders); nullptr: any.
struct KpiSelection {
  const std::string* goal = nullptr;
  const std::string* currency = nullptr;
};

// A KPI's value of one closed session under a selection.
using SessionValue = double (*)(const ClosedSession&, const KpiSelection&);

struct KpiDef {
  absl::string_view name;  // the targets' `kpi`, e.g. "bounce_rate"
  KpiKind kind = KpiKind::kCount;
  KpiSeries numerator;
  KpiSeries denominator;                      // none for counts and sums
  Direction direction = Direction::kAtLeast;  // a target's default
  absl::string_view unit;  // Grafana's: percentunit, s, x, short

  // The engine's value (TargetTracker): the sum over closed sessions of
  // `session_numerator`, divided by the number of sessions (`per_session`:
  // rates and per-session means, guarded by a target's min_sessions) or by
  // the sum of `session_denominator` (nullptr: none; a denominator of ad
  // cost comes from the ad cost input).
  SessionValue session_numerator = nullptr;
  bool per_session = false;
  SessionValue session_denominator = nullptr;

  // Recording rules (ratios): `record` by `record_by` is recorded as
  // <record_by joined by _>:<record>:ratio_rate<window>, e.g.
  // site:web_bounce_rate:ratio_rate5m. `record_denominator_by` when the
  // denominator has fewer labels (divided "on (...) group_left"). Empty
  // `record`: no recording rule.
  absl::string_view record;
  absl::string_view record_by;
  absl::string_view record_denominator_by;

  // A stat panel of its own in the dashboard's traffic row, titled so and
  // " (1h)" (its 1h recording rule by site, described by `help`); empty:
  // none, or one of the dashboard's composite panels shows it.
  absl::string_view panel_title;

  absl::string_view help;  // one sentence, for people

  // Labels a target's filter may use: the numerator family's, so that the
  // engine's value and the generated PromQL select the same thing.
  absl::Span<const absl::string_view> filter_labels() const {
    return numerator.family->labels;
  }
  bool cumulative() const {
    return kind == KpiKind::kCount || kind == KpiKind::kSum;
  }
  // Money by currency (revenue, AOV, ROAS): one value per currency, never
  // revenue of one currency added to, or over orders or cost of, another.
  bool per_currency() const;
  // Whether its numerator is money (revenue, AOV, ROAS): a currency's.
  bool money() const;
  // Whether its numerator counts every goal together too, goal="(any)"
  // (sessions converted: a session once, whatever its goals; conversions
  // are counted per goal only).
  bool has_any_goal() const;
  // Whether the denominator counts sessions (closed or started, or a
  // closed-session histogram's _count), so that a target's min_sessions
  // applies to the PromQL too.
  bool session_denominator_family() const;
  // Whether the ad cost input is the denominator (ROAS).
  bool ad_cost_denominator() const {
    return denominator.family == &families::kAdCost;
  }
};

// Every KPI, in the catalog's order (the order of the recording rules).
absl::Span<const KpiDef> KpiCatalog();

// The KPI named `name`; nullptr when the catalog has none.
const KpiDef* FindKpi(absl::string_view name);

// The KPI named `name`, which must be in the catalog (a name the code
// writes, or a validated config's); aborts otherwise.
const KpiDef& KpiNamed(absl::string_view name);

// The catalog's names joined by ", " (for messages).
std::string KpiNames();

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_KPI_CATALOG_H_
