#include "export/alert_rules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "aggregate/kpi_catalog.h"
#include "aggregate/kpi_target.h"
#include "aggregate/metric_families.h"
#include "export/promql.h"

namespace kpistream {
namespace {

// The catalog's row of a validated target's KPI.
const KpiDef& KpiOf(const TargetConfig& t) { return KpiNamed(t.kpi); }

// `metric` selected by the filter's labels that it has.
std::string FilterSelector(const std::string& metric,
                           const std::map<std::string, std::string>& filter) {
  Selector selector(metric);
  for (const absl::string_view label : MetricLabels(metric)) {
    auto it = filter.find(std::string(label));
    if (it != filter.end()) selector.Equal(label, it->second);
  }
  return selector.str();
}

std::string TargetSelector(const TargetConfig& t, const char* metric) {
  return Selector(metric).Equal("target", t.name).str();
}

// A money target without filter.currency: nothing while an instance's
// period holds money of more than one currency (its kpi_actual_value, and
// so their sum, is NaN then). Its pace and projection are NaN too, which
// the sums below leave out as an instance's before the period's start:
// the others' part alone fired KpiBehindPace (an audit).
std::string UnlessMixed(const TargetConfig& t) {
  if (!KpiOf(t).money() || t.filter.count("currency") > 0) return "";
  const std::string sum =
      absl::StrCat("sum(", TargetSelector(t, "kpi_actual_value"), ")");
  return absl::StrCat(" and on() (", sum, " == ", sum, ")");
}

// The instances' linear projections of a period target summed, those that
// are numbers (an instance before the period's start projects NaN).
std::string ProjectionExpr(const TargetConfig& t) {
  const std::string p = TargetSelector(t, "kpi_projected_value");
  const std::string mixed = UnlessMixed(t);
  const std::string sum = absl::StrCat("sum(", p, " == ", p, ")");
  return mixed.empty() ? sum : absl::StrCat("(", sum, mixed, ")");
}

// The increase of one of the KPI's series over `window`, summed as the KPI
// is (per currency for money per order or per ad cost).
std::string Increase(const TargetConfig& t, const KpiDef& f,
                     const KpiSeries& series, const std::string& window) {
  return absl::StrCat(f.per_currency() ? "sum by (currency) (" : "sum(",
                      "increase(", FilterSelector(series.name(), t.filter), "[",
                      window, "]))");
}

// The KPI's numerator over `window`: ROAS without a channel filter counts
// the revenue of channels with ad cost in the window only (SPEC §3: "per
// campaign/channel where both are known"), not Direct's or Organic
// Search's, as the engine does (TargetSums::channels).
std::string Numerator(const TargetConfig& t, const KpiDef& f,
                      const std::string& window) {
  if (!f.ad_cost_denominator() || t.filter.count("channel") != 0) {
    return Increase(t, f, f.numerator, window);
  }
  return absl::StrCat("sum by (currency) (increase(",
                      FilterSelector(f.numerator.name(), t.filter), "[", window,
                      "]) and on (site, channel, currency) increase(",
                      FilterSelector(f.denominator.name(), t.filter), "[",
                      window, "]) > 0)");
}

// The KPI over `window`. A numerator's series appear with its first count
// (a goal's first conversion, the first revenue of a currency): without
// them the KPI is 0, not missing, wherever its denominator has counted
// (or, for a count, at all). A missing value fired no alert, so a target
// that fell to nothing, the worst case, went silent.
std::string Value(const TargetConfig& t, const KpiDef& f,
                  const std::string& window) {
  const std::string num = Numerator(t, f, window);
  if (f.denominator.family == nullptr) {
    if (!f.per_currency()) return absl::StrCat("(", num, " or vector(0))");
    // By currency (revenue), the 0 only where no currency has any: "or"
    // alone matches label sets, and {} is none of {currency="EUR"}'s. A
    // target of one currency gets it on its 0 too (an audit: the alert
    // lost its currency label, and the generated test failed).
    auto it = t.filter.find("currency");
    if (it == t.filter.end())
      return absl::StrCat("(", num, " or on() vector(0))");
    return absl::StrCat("(", num,
                        " or on() label_replace(vector(0), \"currency\", ",
                        PromqlString(it->second), ", \"\", \"\"))");
  }
  // x / 0 is NaN, as 0 / 0 (an audit: revenue without an order id over no
  // order made an average order value target's stat and attainment +Inf,
  // above every threshold); both are on track (TargetOnTrackExpr).
  const std::string den = Increase(t, f, f.denominator, window);
  return absl::StrCat("((", num, " or ", den, " * 0) / ",
                      NonZeroDenominator(den), ")");
}

// The sessions a session-denominated KPI counted over `window`.
std::string Sessions(const TargetConfig& t, const KpiDef& f,
                     const std::string& window) {
  return absl::StrCat("sum(increase(",
                      FilterSelector(f.denominator.name(), t.filter), "[",
                      window, "]))");
}

std::string Threshold(const TargetConfig& t) {
  return PromqlNumber(ToleranceLimit(t.direction == TargetDirection::kAtLeast,
                                     t.value, t.tolerance));
}

// PromQL that has a value (the KPI) only while the target is off target
// over `window`, with at least `min_sessions` sessions in it.
std::string OffTarget(const TargetConfig& t, const std::string& window,
                      int64_t min_sessions) {
  const KpiDef& f = KpiOf(t);
  std::string expr = absl::StrCat(
      Value(t, f, window),
      t.direction == TargetDirection::kAtLeast ? " < " : " > ", Threshold(t));
  if (f.session_denominator_family() && min_sessions > 0) {
    absl::StrAppend(&expr, " and on() ", Sessions(t, f, window),
                    " >= ", min_sessions);
  } else if (f.denominator.family != nullptr) {
    // Nothing to divide by over the window: on track, as the engine's
    // kpi_on_track and the dashboard say. The value is NaN then, or +Inf
    // where the numerator grew alone (revenue of conversions without an
    // order id, no order), which fired an at_most target (review).
    absl::StrAppend(&expr, " and ", Increase(t, f, f.denominator, window),
                    " > 0");
  }
  return expr;
}

std::string Direction(const TargetConfig& t) {
  return t.direction == TargetDirection::kAtLeast ? "at least" : "at most";
}

std::string Percent(double ratio) {
  return absl::StrFormat("%.4g", ratio * 100);
}

// "<name>: <kpi> " and, for money ratios, "in <currency> ".
AlertText Subject(const TargetConfig& t) {
  AlertText text(absl::StrCat(t.name, ": ", t.kpi, " "));
  // A money KPI's 0 where no currency has any (a target of no one
  // currency) has no currency.
  if (!TargetValueLabels(t).empty()) text.LabelIfAny("in ", "currency", " ");
  return text;
}

// Cumulative (period) targets, from the engine's own kpi_* gauges summed
// over instances (a period's actual, pace and projection add up across the
// instances' partitions):
//   KpiBehindPace     actual to date off the linear pace beyond tolerance;
//   KpiProjectedMiss  actual to date plus the last day's rate (from the
//                     counters) until the deadline misses the target.
// Neither fires before the period starts (pace is NaN then) or after its end.
std::vector<Alert> PeriodAlertsOf(const TargetConfig& t) {
  const KpiDef& f = KpiOf(t);
  const bool at_least = t.direction == TargetDirection::kAtLeast;
  const std::string target = PromqlNumber(t.value);
  const std::string objective = t.objective.empty() ? t.name : t.objective;
  const std::string end = absl::StrCat(absl::ToUnixSeconds(t.period_end));
  const std::string deadline = absl::FormatCivilTime(t.period_last_day);
  const std::string pace_limit =
      PromqlNumber(at_least ? 1 - t.tolerance : 1 + t.tolerance);
  const std::string started = absl::StrCat(
      " and on() ", TargetPaceExpr(t), " >= 0 and on() vector(time()) < ", end);
  std::vector<Alert> alerts;
  alerts.push_back({"KpiBehindPace",
                    absl::StrCat(TargetPaceExpr(t), at_least ? " < " : " > ",
                                 pace_limit, started),
                    t.for_duration, t.severity,
                    Subject(t).Text("is at ").Value().Text(
                        absl::StrCat(" of the linear pace to ", Direction(t),
                                     " ", target, " by ", deadline)),
                    AlertText(absl::StrCat("Objective: ", objective, ". ",
                                           t.kpi, " to date is "))
                        .Value()
                        .Text(absl::StrCat(" times what a linear path to ",
                                           Direction(t), " ", target, " by ",
                                           deadline, " expects now (tolerance ",
                                           Percent(t.tolerance), " %)."))});
  // At least: the engine's linear projection (the period's rate so far)
  // must miss too. rate() over [1d] of a counter younger than a day (a new
  // Prometheus, a new filter's series) reads the rate that much too low:
  // the alert fired through the first day on a target that the engine and
  // the dashboard showed on track (an audit). At most, a rate read low
  // cannot make it fire.
  const std::string linear_too =
      at_least
          ? absl::StrCat(" and on() ", ProjectionExpr(t), " < ", Threshold(t))
          : std::string();
  alerts.push_back(
      {"KpiProjectedMiss",
       absl::StrCat("(", TargetValueExpr(t), " + (sum(rate(",
                    FilterSelector(f.numerator.name(), t.filter),
                    "[1d])) or vector(0)) * (", end, " - time())) ",
                    at_least ? "< " : "> ", Threshold(t), linear_too, started),
       t.for_duration, t.severity,
       Subject(t)
           .Text("at the last day's rate is projected to ")
           .Value()
           .Text(absl::StrCat(" by ", deadline, ", target ", Direction(t), " ",
                              target)),
       AlertText(absl::StrCat("Objective: ", objective,
                              ". At the last day's rate ", t.kpi, " reaches "))
           .Value()
           .Text(absl::StrCat(" by ", deadline, "; the target is ",
                              Direction(t), " ", target, " (tolerance ",
                              Percent(t.tolerance), " %)."))});
  return alerts;
}

// Rolling targets:
//   KpiOffTarget  the KPI over the window beyond the tolerance;
//   KpiFastBurn   rate KPIs: off target over both 1h and 5m (page, 2m);
//   KpiSlowBurn   rate KPIs: off target over both 6h and 30m (ticket, 15m).
// A burn pair's short window is this share of its long one (1h/5m,
// 6h/30m), and asks for this share of min_sessions.
constexpr int64_t kBurnShortShare = 12;

std::vector<Alert> RollingAlertsOf(const TargetConfig& t) {
  std::vector<Alert> alerts;
  const KpiDef& f = KpiOf(t);
  const std::string window = PromqlDuration(t.window);
  const std::string target = PromqlNumber(t.value);
  const std::string objective = t.objective.empty() ? t.name : t.objective;
  alerts.push_back(
      {"KpiOffTarget", OffTarget(t, window, t.min_sessions), t.for_duration,
       t.severity,
       Subject(t).Text("is ").Value().Text(
           absl::StrCat(", target ", Direction(t), " ", target)),
       AlertText(absl::StrCat("Objective: ", objective, ". Over the last ",
                              window, " ", t.kpi, " is "))
           .Value()
           .Text(absl::StrCat("; the target is ", Direction(t), " ", target,
                              " (tolerance ", Percent(t.tolerance), " %)."))});
  if (f.kind != KpiKind::kRate) return alerts;
  struct Burn {
    const char* name;
    const char* long_window;
    const char* short_window;
    int64_t short_share;  // of the long window
    absl::Duration for_duration;
    const char* severity;
  };
  for (const Burn& burn : {Burn{"KpiFastBurn", "1h", "5m", kBurnShortShare,
                                absl::Minutes(2), "page"},
                           Burn{"KpiSlowBurn", "6h", "30m", kBurnShortShare,
                                absl::Minutes(15), "ticket"}}) {
    // min_sessions over the long window, its share over the short one: the
    // short window only confirms that it still burns (review: 100 sessions
    // in 5 minutes, 28,800 a day, kept the pair silent on most sites).
    const int64_t short_min =
        (t.min_sessions + burn.short_share - 1) / burn.short_share;
    alerts.push_back(
        {burn.name,
         absl::StrCat("(", OffTarget(t, burn.long_window, t.min_sessions),
                      ") and on() (",
                      OffTarget(t, burn.short_window, short_min), ")"),
         burn.for_duration, burn.severity,
         Subject(t).Text(absl::StrCat("off target over both ", burn.long_window,
                                      " and ", burn.short_window)),
         AlertText(absl::StrCat("Objective: ", objective, ". ", t.kpi, " is "))
             .Value()
             .Text(absl::StrCat(" over the last ", burn.long_window,
                                " and also off target over ", burn.short_window,
                                "; the target is ", Direction(t), " ", target,
                                "."))});
  }
  return alerts;
}

// Alert severities from the most to the least urgent.
int Urgency(const std::string& severity) {
  if (severity == "page") return 2;
  if (severity == "ticket") return 1;
  return 0;  // info
}

// Every alert of a target: its severity capped by the target's (a `ticket`
// target's fast burn is a ticket, an `info` target never pages nor opens a
// ticket), its `for` at least the target's.
std::vector<Alert> AlertsOf(const TargetConfig& t) {
  std::vector<Alert> alerts =
      t.cumulative() ? PeriodAlertsOf(t) : RollingAlertsOf(t);
  for (Alert& a : alerts) {
    if (Urgency(a.severity) > Urgency(t.severity)) a.severity = t.severity;
    a.for_duration = std::max(a.for_duration, t.for_duration);
  }
  return alerts;
}

// The longest `for` of `alerts`.
absl::Duration LongestFor(const std::vector<Alert>& alerts) {
  absl::Duration longest = absl::ZeroDuration();
  for (const Alert& a : alerts) longest = std::max(longest, a.for_duration);
  return longest;
}

Rule RuleOf(const TargetConfig& t, const Alert& a) {
  return a.ToRule({{"target", AlertText(t.name).Template()}, {"kpi", t.kpi}},
                  {});
}

}  // namespace

absl::Span<const absl::string_view> MetricLabels(absl::string_view series) {
  if (series == "up") return {};  // Prometheus' own, per scrape target
  const MetricFamilyDef* family = FamilyOfSeries(series);
  if (family == nullptr) {
    // A generator names a series kpistream does not export: a bug here.
    std::fprintf(stderr, "not a series of kpistream: %.*s\n",
                 static_cast<int>(series.size()), series.data());
    std::abort();
  }
  return family->labels;
}

std::string TargetValueExpr(const TargetConfig& t) {
  if (t.cumulative()) {
    return absl::StrCat("sum(", TargetSelector(t, "kpi_actual_value"), ")");
  }
  return Value(t, KpiOf(t), PromqlDuration(t.window));
}

// Summed without the NaN of an instance whose clock has not reached the
// period's start (NaN in a sum made the whole pace NaN: KpiBehindPace could
// not fire while one instance lagged: an audit), as ProjectionExpr().
std::string TargetPaceExpr(const TargetConfig& t) {
  const std::string p = TargetSelector(t, "kpi_pace_ratio");
  const std::string mixed = UnlessMixed(t);
  const std::string sum = absl::StrCat("sum(", p, " == ", p, ")");
  return mixed.empty() ? sum : absl::StrCat("(", sum, mixed, ")");
}

std::vector<std::string> TargetValueLabels(const TargetConfig& t) {
  if (!t.cumulative() && KpiOf(t).per_currency()) return {"currency"};
  return {};
}

std::string TargetAttainmentExpr(const TargetConfig& t) {
  const std::string target = PromqlNumber(t.value);
  return t.direction == TargetDirection::kAtLeast
             ? absl::StrCat(TargetValueExpr(t), " / ", target)
             : absl::StrCat(target, " / ", TargetValueExpr(t));
}

std::string TargetOnTrackExpr(const TargetConfig& t) {
  // Before the period starts the engine projects nothing (NaN) and says on
  // track (review: the panel said No from the deploy until the period's
  // start). The instances' projections that are numbers (P == P) judge;
  // only when none is, on track (review: one instance still before the
  // start made the sum NaN, on track, whatever the others projected).
  // So is a money target's while an instance's period holds several
  // currencies (ProjectionExpr has nothing then), as the engine says.
  const std::string p = TargetSelector(t, "kpi_projected_value");
  const std::string on_track = absl::StrCat(
      t.cumulative() ? ProjectionExpr(t) : TargetValueExpr(t),
      t.direction == TargetDirection::kAtLeast ? " >= bool " : " <= bool ",
      Threshold(t));
  if (t.cumulative()) {
    return absl::StrCat("(", on_track, ") or ((count(", p,
                        ") > bool 0) unless on() ", ProjectionExpr(t), ")");
  }
  const KpiDef& f = KpiOf(t);
  if (f.denominator.family == nullptr) return on_track;
  const std::string window = PromqlDuration(t.window);
  if (f.session_denominator_family() && t.min_sessions > 0) {
    // Too few sessions to judge: on track, as the alerts hold (OffTarget).
    return absl::StrCat("((", on_track, ") + (", Sessions(t, f, window),
                        " < bool ", t.min_sessions, ")) > bool 0");
  }
  // Nothing to divide by over the window (the KPI is NaN): on track, as the
  // engine's kpi_on_track says and no alert fires (review: the panel said
  // No).
  return absl::StrCat("((", on_track, ") + (",
                      Increase(t, f, f.denominator, window),
                      " == bool 0)) > bool 0");
}

std::vector<RuleGroup> TargetAlertRuleGroups(const Config& config) {
  RuleGroup group;
  group.name = "kpistream-targets";
  for (const TargetConfig& t : config.targets) {
    for (const Alert& a : AlertsOf(t)) group.rules.push_back(RuleOf(t, a));
  }
  if (group.rules.empty()) return {};
  return {std::move(group)};
}

std::string AlertRulesYaml(const Config& config) {
  return RuleFileYaml(
      config.targets.empty()
          ? "Generated by `kpistream rules`: no targets."
          : "Generated by `kpistream rules` from the config's targets. Do not "
            "edit.",
      TargetAlertRuleGroups(config));
}

namespace {

// The value of each label in the test series: the filter's, else a default.
std::string LabelValue(const std::map<std::string, std::string>& filter,
                       const std::string& label) {
  auto it = filter.find(label);
  if (it != filter.end()) return it->second;
  static const std::map<std::string, std::string> kDefaults = {
      {"site", "shop"},  {"channel", "Direct"}, {"device", "desktop"},
      {"country", "DE"}, {"goal", "signup"},    {"currency", "EUR"},
      {"campaign", "c1"}};
  return kDefaults.at(label);
}

// A test's counter: `metric` with every label the engine exports (the
// filter's values, else defaults), growing from 0 by `per_minute`.
struct Counter {
  std::string metric;
  std::map<std::string, std::string> labels;
  double per_minute = 0;
};

Counter CounterOf(const std::string& metric,
                  const std::map<std::string, std::string>& filter,
                  double per_minute) {
  // As the test file writes it (Num), so that what the alerts are expected
  // to read is what promtool reads.
  double written = per_minute;
  (void)absl::SimpleAtod(PromqlNumber(per_minute), &written);
  Counter c{metric, {}, written};
  for (const absl::string_view label : MetricLabels(metric)) {
    c.labels[std::string(label)] = LabelValue(filter, std::string(label));
  }
  return c;
}

// `c` over `samples` samples `step_minutes` apart.
InputSeries Series(const Counter& c, int samples, int step_minutes = 1) {
  Selector selector(c.metric);
  for (const absl::string_view label : MetricLabels(c.metric)) {
    selector.Equal(label, c.labels.at(std::string(label)));
  }
  return {selector.str(),
          absl::StrCat("0+", PromqlNumber(c.per_minute * step_minutes), "x",
                       samples)};
}

// The labels a target's alerts keep from the series they read (the
// currency of money ratios).
std::map<std::string, std::string> KeptLabels(
    const TargetConfig& t, const std::map<std::string, std::string>& series) {
  std::map<std::string, std::string> kept;
  for (const std::string& label : TargetValueLabels(t)) {
    // Without the series, the rule's 0 carries the filter's value, or no
    // label where the filter names none (Value()).
    if (auto it = series.find(label); it != series.end()) {
      kept[label] = it->second;
    } else if (auto f = t.filter.find(label); f != t.filter.end()) {
      kept[label] = f->second;
    }
  }
  return kept;
}

// Each alert at `eval`, firing (with its annotations rendered for
// values[i] and the series' `labels`) or not.
std::vector<AlertTest> ExpectedAlerts(
    const TargetConfig& t, const std::vector<Alert>& alerts,
    const std::vector<double>& values, const std::vector<bool>& firing,
    absl::Duration eval, const std::map<std::string, std::string>& labels) {
  const std::map<std::string, std::string> series_labels =
      KeptLabels(t, labels);
  std::vector<AlertTest> tests;
  for (size_t i = 0; i < alerts.size(); ++i) {
    const Alert& a = alerts[i];
    AlertTest test{eval, a.name, {}};
    if (firing[i]) {
      ExpectedAlert expected;
      expected.labels = {
          {"severity", a.severity}, {"target", t.name}, {"kpi", t.kpi}};
      for (const auto& [label, value] : series_labels) {
        expected.labels.emplace_back(label, value);
      }
      expected.annotations = {
          {"summary", a.summary.Render(series_labels, values[i])},
          {"description", a.description.Render(series_labels, values[i])}};
      test.firing.push_back(std::move(expected));
    }
    tests.push_back(std::move(test));
  }
  return tests;
}

// What another rolling target `u` reads from a test's counters: the growth
// per minute of its numerator and of its denominator as its rules select
// them (FilterSelector: filter labels its metric has), and the numerator's
// labels. None when a family it divides or counts has no series there (its
// expressions then have no value: it cannot fire).
struct Reading {
  double numerator = 0;
  double denominator = 0;
  std::map<std::string, std::string> labels;
};

std::optional<Reading> ReadingOf(const TargetConfig& u,
                                 const std::vector<Counter>& counters) {
  const KpiDef& f = KpiOf(u);
  auto sum = [&](const std::string& metric, Reading* r, double* into) {
    bool any = false;
    for (const Counter& c : counters) {
      if (c.metric != metric) continue;
      bool selected = true;
      for (const absl::string_view label : MetricLabels(metric)) {
        auto it = u.filter.find(std::string(label));
        if (it != u.filter.end() &&
            it->second != c.labels.at(std::string(label))) {
          selected = false;
        }
      }
      if (!selected) continue;
      *into += c.per_minute;
      if (!any && r != nullptr) r->labels = c.labels;
      any = true;
    }
    return any;
  };
  // As Value() reads them: a numerator without series counts 0 (its
  // labels then the denominator's), a denominator without any leaves no
  // value.
  Reading r;
  const bool numerator = sum(f.numerator.name(), &r, &r.numerator);
  if (f.denominator.family != nullptr &&
      !sum(f.denominator.name(), numerator ? nullptr : &r, &r.denominator)) {
    return std::nullopt;
  }
  return r;
}

// `u`'s KPI over the last `window` minutes at minute `at` of a test whose
// counters start at 0 (increase() covers min(window, at) minutes of them);
// a ratio has no value before two samples or over no sessions.
std::optional<double> ValueAt(const TargetConfig& u, const Reading& r,
                              double window, double at) {
  // A count reads 0 before its second sample too (Value(): or vector(0)).
  if (KpiOf(u).denominator.family == nullptr) {
    return at < 1 ? 0 : r.numerator * std::min(window, at);
  }
  if (at < 1 || r.denominator == 0) return std::nullopt;
  return r.numerator / r.denominator;
}

// Whether `u` is off target there, `min_sessions` met.
bool OffTargetAt(const TargetConfig& u, const Reading& r, double window,
                 double at, int64_t min_sessions) {
  const std::optional<double> v = ValueAt(u, r, window, at);
  if (!v.has_value()) return false;
  const bool at_least = u.direction == TargetDirection::kAtLeast;
  const double limit = ToleranceLimit(at_least, u.value, u.tolerance);
  const bool off = at_least ? *v < limit : *v > limit;
  const KpiDef& f = KpiOf(u);
  if (f.session_denominator_family() && min_sessions > 0 &&
      r.denominator * std::min(window, at) <
          static_cast<double>(min_sessions)) {
    return false;
  }
  return off;
}

// The min_sessions of window `w` of alert `alert` of a rolling target, in
// AlertWindows' order: a burn pair's short window asks for its share only
// (RollingAlertsOf; an audit: taken as the whole, another target's burn
// alerts were not expected where promtool had them fire).
int64_t MinSessionsOf(const TargetConfig& u, size_t alert, size_t w) {
  if (alert == 0 || w == 0) return u.min_sessions;
  return (u.min_sessions + kBurnShortShare - 1) / kBurnShortShare;
}

// The windows (minutes) of each of a rolling target's alerts, in
// RollingAlertsOf's order: the target's own, then both of each burn.
std::vector<std::vector<double>> AlertWindows(const TargetConfig& u,
                                              size_t alerts) {
  std::vector<std::vector<double>> windows = {
      {absl::ToDoubleMinutes(u.window)}, {60, 5}, {360, 30}};
  windows.resize(std::min(alerts, windows.size()));
  return windows;
}

// Whether another rolling target reads `counters` within a millionth of its
// threshold (or of its min_sessions, or of a value its annotation would
// print rounded either way) over a window of one of its alerts, at
// an evaluation its `for` looks back on up to minute `eval`: there its
// verdict would hang on rounding (a count over a window longer than the
// test so far grows every minute).
bool NearAnotherThreshold(const Config& config, const TargetConfig& t,
                          const std::vector<Counter>& counters, double eval) {
  auto near = [](double v, double limit) {
    return std::abs(v - limit) <= 1e-6 * std::abs(limit);
  };
  // A value its alert's annotation prints (FormatAlertValue) near a
  // half-way point: the expected text and promtool's could round apart
  // (1586 for 1587).
  auto half_way = [](double v) {
    if (!(v != 0) || !std::isfinite(v)) return false;
    const double x = std::abs(v) / AlertValueLastDigit(v);
    // (Within 1e-4 of a last digit: the series are written to 10 digits.)
    return std::abs(x - std::floor(x) - 0.5) < 1e-4;
  };
  for (const TargetConfig& u : config.targets) {
    if (&u == &t || u.cumulative()) continue;
    const std::optional<Reading> r = ReadingOf(u, counters);
    if (!r.has_value()) continue;
    const double threshold = ToleranceLimit(
        u.direction == TargetDirection::kAtLeast, u.value, u.tolerance);
    const std::vector<Alert> alerts = AlertsOf(u);
    const std::vector<std::vector<double>> windows =
        AlertWindows(u, alerts.size());
    for (size_t i = 0; i < windows.size(); ++i) {
      const double hold = absl::ToDoubleMinutes(alerts[i].for_duration);
      const std::optional<double> printed = ValueAt(u, *r, windows[i][0], eval);
      if (printed.has_value() && half_way(*printed)) return true;
      for (double at = std::max(1.0, eval - hold); at <= eval; at += 1) {
        for (size_t j = 0; j < windows[i].size(); ++j) {
          const double w = windows[i][j];
          const int64_t min_sessions = MinSessionsOf(u, i, j);
          const std::optional<double> v = ValueAt(u, *r, w, at);
          if (v.has_value() && near(*v, threshold)) return true;
          if (KpiOf(u).session_denominator_family() && min_sessions > 0 &&
              near(r->denominator * std::min(w, at),
                   static_cast<double>(min_sessions))) {
            return true;
          }
        }
      }
    }
  }
  return false;
}

// Adds to `tests` (one per alert name at one eval time) the alerts of every
// other rolling target of `config` that the test's `counters` drive to
// firing: two targets of one KPI and filter (a warning and a critical
// threshold), or one whose filter selects the other's series, read the same
// counters, and promtool expects every alert of a name that fires. Each
// alert fires when its condition held at every evaluation (each minute) of
// its `for` up to the eval time. Period targets read their own kpi_*
// gauges and never fire on another's test.
void AddOtherTargetsAlerts(const Config& config, const TargetConfig& t,
                           const std::vector<Counter>& counters,
                           std::vector<AlertTest>* tests) {
  for (const TargetConfig& u : config.targets) {
    if (&u == &t || u.cumulative()) continue;
    const std::optional<Reading> r = ReadingOf(u, counters);
    if (!r.has_value()) continue;
    const std::vector<Alert> alerts = AlertsOf(u);
    const std::vector<std::vector<double>> windows =
        AlertWindows(u, alerts.size());
    for (AlertTest& test : *tests) {
      for (size_t i = 0; i < alerts.size(); ++i) {
        if (alerts[i].name != test.alertname) continue;
        const double eval = absl::ToDoubleMinutes(test.eval_time);
        const double hold = absl::ToDoubleMinutes(alerts[i].for_duration);
        // Pending from the first evaluation (minute 0) at the earliest: a
        // `for` longer than the test so far has not fired (an audit).
        bool firing = eval - hold >= 0;
        for (double at = eval - hold; at <= eval && firing; at += 1) {
          for (size_t j = 0; j < windows[i].size(); ++j) {
            firing &=
                OffTargetAt(u, *r, windows[i][j], at, MinSessionsOf(u, i, j));
          }
        }
        if (!firing) continue;
        const double value = *ValueAt(u, *r, windows[i][0], eval);
        const std::map<std::string, std::string> kept =
            KeptLabels(u, r->labels);
        ExpectedAlert expected;
        expected.labels = {{"severity", alerts[i].severity},
                           {"target", u.name},
                           {"kpi", u.kpi}};
        for (const auto& [label, v] : kept) {
          expected.labels.emplace_back(label, v);
        }
        expected.annotations = {
            {"summary", alerts[i].summary.Render(kept, value)},
            {"description", alerts[i].description.Render(kept, value)}};
        test.firing.push_back(std::move(expected));
      }
    }
  }
}

// `v` to `digits` significant digits, at most 4: the alerts' annotations
// print 4 (FormatAlertValue; more from 10,000 on), and promtool's value,
// computed from the written series, is `v` within a few ulps: with a 5th digit
// it printed one way near a half-way point, and the expected text the other (an
// audit: 0.4669 for 0.467 in 1 of 10 configs). 3 where the value need not be
// finer.
double Digits(double v, int digits) {
  double out = v;
  (void)absl::SimpleAtod(absl::StrFormat("%.*g", digits, v), &out);
  return out;
}

// A period target's gauges as two instances export them (half each: they
// add up) and its counter, in these cases:
//   off pace and projected to miss (the counter is flat);
//   on pace with the target reached: neither fires;
//   at_least: behind pace but the last day's rate reaches the target by the
//     deadline; at_most: over pace but under the budget with a flat counter:
//     only KpiBehindPace fires;
//   at_least: on pace halfway, the counter flat (younger than a day, its
//     rate over [1d] reads low): the engine's projection reaches the
//     target, neither fires.
//   a fifth of a percent behind and ahead of the pace's limit (the
//     target reached: only KpiBehindPace may fire), and of the target's
//     (behind pace: KpiProjectedMiss fires or not by its threshold);
//   off pace, as the first case, with instance b's clock before the
//     period's start (its pace and projection NaN, a has it all): both fire;
//   a money target without filter.currency: off pace, as the first case,
//     with b's money in two currencies (its actual, pace and projection
//     NaN, a has half): neither fires (there is no amount to judge).
std::vector<RuleTest> PeriodTests(const TargetConfig& t,
                                  const std::vector<Alert>& alerts) {
  const KpiDef& f = KpiOf(t);
  const bool at_least = t.direction == TargetDirection::kAtLeast;
  const int64_t eval_min = LongestFor(alerts) / absl::Minutes(1) + 10;
  const int samples = static_cast<int>(eval_min + 5);
  // promtool's clock starts at 0: this much per minute reaches twice the
  // target by the deadline even as rate() over [1d] of only `samples`
  // minutes of input (at most 1440 times less than the true rate).
  const double catch_up =
      1440 * 2 * t.value /
      (absl::ToDoubleSeconds(t.period_end - absl::UnixEpoch()) / 60);
  struct Case {
    const char* name;
    double pace;  // the engine's linear projection is pace x the target
    double actual;
    double per_minute;
    bool behind, miss;
    bool b_before_start = false;  // b: NaN pace and projection, a has all
    bool b_mixed = false;  // b: NaN actual, pace and projection, a has half
  };
  const double behind_pace =
      Digits(at_least ? (1 - t.tolerance) * 0.5 : 2.0, 3);
  const double good_pace = at_least ? 1.2 : 0.5;
  const double behind = Digits(t.value * behind_pace, 3);
  const double good = Digits(t.value * good_pace, 3);
  const double half = Digits(t.value * 0.5, 3);
  std::vector<Case> cases = {
      {" off pace", behind_pace, behind, 0, true, true},
      {" on pace", good_pace, good, 0, false, false},
      at_least ? Case{" behind pace, catching up", behind_pace, behind,
                      catch_up, true, false}
               : Case{" over pace, under budget", behind_pace, half, 0, true,
                      false}};
  if (at_least) {
    cases.push_back({" on pace, the last day's rate read low", good_pace, half,
                     0, false, false});
  }
  // A fifth of a percent either side of each alert's limit (the pace less
  // or plus the tolerance; the target less or plus it), so that a rule with
  // the tolerance left out or misread fails its test, as the rolling
  // targets' do (an audit: KpiBehindPace's `< 1 - tolerance` edited to
  // `< 0.55`, and KpiProjectedMiss's threshold to 60 % of it, passed).
  const double pace_limit = at_least ? 1 - t.tolerance : 1 + t.tolerance;
  const double limit = ToleranceLimit(at_least, t.value, t.tolerance);
  const double off = at_least ? 0.998 : 1.002;
  const double on = at_least ? 1.002 : 0.998;
  cases.push_back(
      {" just behind pace", Digits(pace_limit * off, 4), good, 0, true, false});
  cases.push_back(
      {" just on pace", Digits(pace_limit * on, 4), good, 0, false, false});
  cases.push_back({" projected just to miss", behind_pace,
                   Digits(limit * off, 4), 0, true, true});
  cases.push_back({" projected just to make it", behind_pace,
                   Digits(limit * on, 4), 0, true, false});
  cases.push_back({" off pace, one instance before the start", behind_pace,
                   behind, 0, true, true, true});
  if (f.money() && t.filter.count("currency") == 0) {
    cases.push_back({" off pace, one instance's money in two currencies",
                     behind_pace, behind, 0, false, false, false, true});
  }
  std::vector<RuleTest> tests;
  for (const Case& c : cases) {
    RuleTest test;
    test.name = absl::StrCat(t.name, c.name);
    for (const char* instance : {"a", "b"}) {
      const bool a = instance == std::string("a");
      const double share = c.b_before_start ? (a ? 1.0 : 0.0) : 0.5;
      const bool nan = (c.b_before_start || c.b_mixed) && !a;
      for (const auto& [metric, value] :
           std::vector<std::pair<const char*, double>>{
               {"kpi_pace_ratio", c.pace * share},
               {"kpi_actual_value", c.actual * share},
               {"kpi_projected_value", c.pace * t.value * share}}) {
        // promtool takes NaN as a value, not in "NaNxN": one a sample.
        const bool gauge_nan =
            nan && (c.b_mixed || metric != std::string("kpi_actual_value"));
        test.input_series.push_back(
            {Selector(metric)
                 .Equal("target", t.name)
                 .Equal("instance", instance)
                 .str(),
             gauge_nan
                 ? absl::StrJoin(std::vector<std::string>(
                                     static_cast<size_t>(samples) + 1, "NaN"),
                                 " ")
                 : absl::StrCat(PromqlNumber(value), "x", samples)});
      }
    }
    const Counter numerator =
        CounterOf(f.numerator.name(), t.filter, c.per_minute);
    test.input_series.push_back(Series(numerator, samples));
    test.alert_tests =
        ExpectedAlerts(t, alerts, {c.pace, c.actual}, {c.behind, c.miss},
                       absl::Minutes(eval_min), numerator.labels);
    tests.push_back(std::move(test));
  }
  return tests;
}

// A rolling target's counters, constant in time, off target and on target.
std::vector<RuleTest> RollingTests(const Config& config, const TargetConfig& t,
                                   const std::vector<Alert>& alerts) {
  const KpiDef& f = KpiOf(t);
  const bool rate = f.kind == KpiKind::kRate;
  const bool count = f.denominator.family == nullptr;
  const bool at_least = t.direction == TargetDirection::kAtLeast;
  const double limit = ToleranceLimit(at_least, t.value, t.tolerance);
  double good, bad;
  if (rate) {
    if (!at_least && limit >= 1) return {};  // a rate can never exceed it
    good = at_least ? std::min(1.0, t.value * 1.2) : t.value * 0.8;
    bad = at_least ? limit * 0.5 : std::min(1.0, limit * 1.5);
  } else {
    good = at_least ? t.value * 1.2 : t.value * 0.8;
    bad = at_least ? limit * 0.4 : limit * 2;
  }
  // A count needs its whole window of input; a ratio of two linear series
  // is the same over any part of its window, so rates need only the slow
  // burn pair's 6h (keeps promtool fast on 1d windows).
  int64_t window_min = 30;
  if (rate) window_min = 360;
  // (Whole minutes of input for a window of a part of one: its increase()
  // is extrapolated to the window, as the count's rate is spread below.)
  if (count) {
    window_min =
        static_cast<int64_t>(std::ceil(absl::ToDoubleMinutes(t.window)));
  }
  const int64_t eval_min =
      window_min + LongestFor(alerts) / absl::Minutes(1) + 20;
  // promtool refuses a query of more than about 10,000 samples: a count's
  // window of a week in 1 minute samples (10,080) could not be tested (an
  // audit); longer windows get sparser samples.
  const int long_step = static_cast<int>((window_min + 4999) / 5000);
  // Sessions per minute: enough for min_sessions even in a 5 minute window.
  const double per_minute =
      std::max<double>(60, static_cast<double>(t.min_sessions));
  auto counters_of = [&](double r) {
    std::vector<Counter> counters;
    if (count) {
      // A count: `r` over the window (an audit: a window of 90 s was read
      // as 1 minute's, and the generated test expected 2 where promtool
      // counts 3).
      counters.push_back(CounterOf(f.numerator.name(), t.filter,
                                   r / absl::ToDoubleMinutes(t.window)));
    } else {
      counters.push_back(
          CounterOf(f.numerator.name(), t.filter, r * per_minute));
      counters.push_back(CounterOf(f.denominator.name(), t.filter, per_minute));
    }
    return counters;
  };
  // Far off and well on target, then a fifth of a percent either side of
  // the limit (the target less or plus its tolerance), so that a rule with
  // the tolerance left out or misread fails its test (an audit: the values
  // far from the limit passed such rules). 4 significant digits there (see
  // Digits).
  struct Case {
    const char* name;
    double r;
    bool firing;
    bool at_limit;
  };
  const double below = Digits(limit * 0.998, 4);
  const double above = Digits(limit * 1.002, 4);
  std::vector<Case> cases = {{" off target", Digits(bad, 3), true, false},
                             {" on target", Digits(good, 3), false, false}};
  if (limit > 0 && !(rate && above > 1)) {
    cases.push_back({" just off target", at_least ? below : above, true, true});
    cases.push_back({" just on target", at_least ? above : below, false, true});
  }
  std::vector<RuleTest> tests;
  for (const Case& c : cases) {
    const bool firing = c.firing;
    double r = c.r;
    std::vector<Counter> counters = counters_of(r);
    // Another target reading these counters at exactly its threshold would
    // fire or not by the last bit of promtool's arithmetic: the value moves
    // a few percent further from this target's own threshold instead (a
    // case at the limit cannot move: left out).
    const bool up = firing != at_least;
    bool near = NearAnotherThreshold(config, t, counters, eval_min);
    if (near && c.at_limit) continue;
    for (int tries = 0; tries < 8 && near; ++tries) {
      r = Digits(up ? r * 1.03 : r * 0.97, 3);
      if (rate) r = std::min(1.0, r);
      counters = counters_of(r);
      near = NearAnotherThreshold(config, t, counters, eval_min);
    }
    // Sparse samples leave another target reading these counters over a
    // window shorter than two of them with one sample or none, and its
    // increase() empty: 0 for a count (review: a 4m target beside a 7d one
    // fired in every case). At most half its shortest window apart; a case
    // that needs more samples than promtool reads is not written.
    int step = long_step;
    for (const TargetConfig& u : config.targets) {
      if (step == 1) break;
      if (&u == &t || u.cumulative() || !ReadingOf(u, counters).has_value()) {
        continue;
      }
      for (const std::vector<double>& ws :
           AlertWindows(u, AlertsOf(u).size())) {
        for (double w : ws) {
          step = std::min(step, std::max(1, static_cast<int>(w / 2)));
        }
      }
    }
    const int samples = static_cast<int>((eval_min + 5 + step - 1) / step);
    if (samples > 9000) continue;
    RuleTest test;
    test.name = absl::StrCat(t.name, c.name);
    if (step > 1) test.interval = absl::Minutes(step);
    for (const Counter& c : counters) {
      test.input_series.push_back(Series(c, samples, step));
    }
    test.alert_tests =
        ExpectedAlerts(t, alerts, std::vector<double>(alerts.size(), r),
                       std::vector<bool>(alerts.size(), firing),
                       absl::Minutes(eval_min), counters.front().labels);
    AddOtherTargetsAlerts(config, t, counters, &test.alert_tests);
    tests.push_back(std::move(test));
  }
  return tests;
}

}  // namespace

std::string AlertRulesTestYaml(const Config& config,
                               const std::string& rule_file) {
  std::vector<RuleTest> tests;
  for (const TargetConfig& t : config.targets) {
    const std::vector<Alert> alerts = AlertsOf(t);
    for (RuleTest& test : t.cumulative() ? PeriodTests(t, alerts)
                                         : RollingTests(config, t, alerts)) {
      tests.push_back(std::move(test));
    }
  }
  return RuleTestFileYaml(
      "Generated by `kpistream rules`: drives every target alert to firing\n"
      "and to not firing. Run: promtool test rules <this file>",
      {rule_file}, tests);
}

}  // namespace kpistream
