#include "export/alert_rules.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kpistream {
namespace {

// Labels of each counter the engine exports (SPEC §4).
const std::map<std::string, std::vector<std::string>>& MetricLabels() {
  static const auto* labels = new std::map<std::string,
                                           std::vector<std::string>>{
      {"web_sessions_closed_total", {"site", "channel", "device", "country"}},
      {"web_sessions_started_total", {"site", "channel", "device", "country"}},
      {"web_sessions_bounced_total", {"site", "channel", "device", "country"}},
      {"web_sessions_engaged_total", {"site", "channel", "device", "country"}},
      {"web_sessions_single_page_total",
       {"site", "channel", "device", "country"}},
      {"web_sessions_converted_total", {"site", "goal", "channel"}},
      {"web_sessions_new_visitor_total", {"site", "channel"}},
      {"web_session_pageviews_sum", {"site"}},
      {"web_session_pageviews_count", {"site"}},
      {"web_session_duration_seconds_sum", {"site", "channel"}},
      {"web_session_duration_seconds_count", {"site", "channel"}},
      {"web_revenue_total", {"site", "channel", "currency"}},
      {"web_orders_total", {"site", "channel", "currency"}},
      {"web_ad_cost_total", {"site", "channel", "campaign", "currency"}},
      {"web_pageviews_total", {"site", "channel", "device"}},
      {"web_conversions_total", {"site", "goal", "channel"}},
  };
  return *labels;
}

// How a KPI is computed: numerator / denominator (or a count when the
// denominator is empty).
struct KpiFormula {
  std::string numerator;
  std::string denominator;
  bool rate = false;  // a ratio in [0, 1]
  // Money over money or orders (AOV, ROAS): a ratio of sums by currency,
  // never revenue of one currency over orders or cost of all.
  bool per_currency = false;
};

KpiFormula FormulaOf(const std::string& kpi) {
  if (kpi == "bounce_rate")
    return {"web_sessions_bounced_total", "web_sessions_closed_total", true};
  if (kpi == "engagement_rate")
    return {"web_sessions_engaged_total", "web_sessions_closed_total", true};
  if (kpi == "single_page_rate")
    return {"web_sessions_single_page_total", "web_sessions_closed_total",
            true};
  if (kpi == "conversion_rate")
    return {"web_sessions_converted_total", "web_sessions_closed_total", true};
  if (kpi == "new_visitor_share")
    return {"web_sessions_new_visitor_total", "web_sessions_started_total",
            true};
  if (kpi == "pageviews_per_session")
    return {"web_session_pageviews_sum", "web_session_pageviews_count"};
  if (kpi == "avg_session_duration")
    return {"web_session_duration_seconds_sum",
            "web_session_duration_seconds_count"};
  if (kpi == "average_order_value")
    return {"web_revenue_total", "web_orders_total", false, true};
  if (kpi == "roas")
    return {"web_revenue_total", "web_ad_cost_total", false, true};
  if (kpi == "sessions") return {"web_sessions_closed_total", ""};
  if (kpi == "engaged_sessions") return {"web_sessions_engaged_total", ""};
  if (kpi == "pageviews") return {"web_pageviews_total", ""};
  if (kpi == "conversions") return {"web_conversions_total", ""};
  if (kpi == "orders") return {"web_orders_total", ""};
  return {"web_revenue_total", ""};  // revenue
}

bool SessionDenominator(const KpiFormula& f) {
  return f.denominator == "web_sessions_closed_total" ||
         f.denominator == "web_sessions_started_total";
}

// `metric{label="value",...}` with the filter's labels that the metric has.
std::string Selector(const std::string& metric,
                     const std::map<std::string, std::string>& filter) {
  std::vector<std::string> matchers;
  for (const std::string& label : MetricLabels().at(metric)) {
    auto it = filter.find(label);
    if (it != filter.end())
      matchers.push_back(absl::StrCat(label, "=\"", it->second, "\""));
  }
  return absl::StrCat(metric, "{", absl::StrJoin(matchers, ","), "}");
}

std::string Value(const TargetConfig& t, const KpiFormula& f,
                  const std::string& window) {
  const char* sum = f.per_currency ? "sum by (currency) (" : "sum(";
  const std::string num = absl::StrCat(
      sum, "increase(", Selector(f.numerator, t.filter), "[", window, "]))");
  if (f.denominator.empty()) return num;
  return absl::StrCat("(", num, " / ", sum, "increase(",
                      Selector(f.denominator, t.filter), "[", window, "])))");
}

std::string Threshold(const TargetConfig& t) {
  return absl::StrFormat("%.10g", t.direction == TargetDirection::kAtLeast
                                      ? t.value * (1 - t.tolerance)
                                      : t.value * (1 + t.tolerance));
}

// PromQL that has a value (the KPI) only while the target is off target
// over `window`.
std::string OffTarget(const TargetConfig& t, const std::string& window) {
  const KpiFormula f = FormulaOf(t.kpi);
  std::string expr = absl::StrCat(
      Value(t, f, window),
      t.direction == TargetDirection::kAtLeast ? " < " : " > ", Threshold(t));
  if (SessionDenominator(f) && t.min_sessions > 0) {
    absl::StrAppend(&expr, " and on() sum(increase(",
                    Selector(f.denominator, t.filter), "[", window,
                    "])) >= ", t.min_sessions);
  }
  return expr;
}

std::string DurationText(absl::Duration d) {
  if (d % absl::Hours(24) == absl::ZeroDuration() && d > absl::ZeroDuration()) {
    return absl::StrCat(d / absl::Hours(24), "d");
  }
  if (d % absl::Hours(1) == absl::ZeroDuration() && d > absl::ZeroDuration()) {
    return absl::StrCat(d / absl::Hours(1), "h");
  }
  if (d % absl::Minutes(1) == absl::ZeroDuration())
    return absl::StrCat(d / absl::Minutes(1), "m");
  return absl::StrCat(absl::ToInt64Seconds(d), "s");
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

struct Alert {
  std::string name;
  std::string expr;
  absl::Duration for_duration;
  std::string severity;
  std::string summary;
  std::string description;
};

std::string Direction(const TargetConfig& t) {
  return t.direction == TargetDirection::kAtLeast ? "at least" : "at most";
}

std::string TargetSelector(const TargetConfig& t, const char* metric) {
  return absl::StrCat(metric, "{target=", Quote(t.name), "}");
}

// Cumulative (period) targets, from the engine's own kpi_* gauges summed
// over instances (a period's actual, pace and projection add up across the
// instances' partitions):
//   KpiBehindPace     actual to date off the linear pace beyond tolerance;
//   KpiProjectedMiss  actual to date plus the last day's rate (from the
//                     counters) until the deadline misses the target.
// Neither fires before the period starts (pace is NaN then) or after its end.
std::vector<Alert> PeriodAlertsOf(const TargetConfig& t) {
  const KpiFormula f = FormulaOf(t.kpi);
  const bool at_least = t.direction == TargetDirection::kAtLeast;
  const std::string target = absl::StrFormat("%.10g", t.value);
  const std::string objective = t.objective.empty() ? t.name : t.objective;
  const std::string end = absl::StrCat(absl::ToUnixSeconds(t.period_end));
  const std::string deadline =
      absl::FormatTime("%Y-%m-%d", t.period_end - absl::Hours(24),
                       absl::UTCTimeZone());
  const std::string pace_limit = absl::StrFormat(
      "%.10g", at_least ? 1 - t.tolerance : 1 + t.tolerance);
  const std::string started =
      absl::StrCat(" and on() ", TargetPaceExpr(t),
                   " >= 0 and on() vector(time()) < ", end);
  std::vector<Alert> alerts;
  alerts.push_back(
      {"KpiBehindPace",
       absl::StrCat(TargetPaceExpr(t), at_least ? " < " : " > ", pace_limit,
                    started),
       t.for_duration, t.severity,
       absl::StrCat(t.name, ": ", t.kpi, " is at {{ $value | printf \"%.4g\" }}",
                    " of the linear pace to ", Direction(t), " ", target,
                    " by ", deadline),
       absl::StrCat("Objective: ", objective, ". ", t.kpi,
                    " to date is {{ $value | printf \"%.4g\" }} times what a "
                    "linear path to ",
                    Direction(t), " ", target, " by ", deadline,
                    " expects now (tolerance ",
                    absl::StrFormat("%.4g", t.tolerance * 100), " %).")});
  alerts.push_back(
      {"KpiProjectedMiss",
       absl::StrCat("(sum(", TargetSelector(t, "kpi_actual_value"),
                    ") + (sum(rate(", Selector(f.numerator, t.filter),
                    "[1d])) or vector(0)) * (", end, " - time())) ",
                    at_least ? "< " : "> ", Threshold(t), started),
       t.for_duration, t.severity,
       absl::StrCat(t.name, ": ", t.kpi,
                    " is projected to {{ $value | printf \"%.4g\" }} by ",
                    deadline, ", target ", Direction(t), " ", target),
       absl::StrCat("Objective: ", objective, ". At the last day's rate ",
                    t.kpi, " reaches {{ $value | printf \"%.4g\" }} by ",
                    deadline, "; the target is ", Direction(t), " ", target,
                    " (tolerance ", absl::StrFormat("%.4g", t.tolerance * 100),
                    " %).")});
  return alerts;
}

std::vector<Alert> RollingAlertsOf(const TargetConfig& t) {
  std::vector<Alert> alerts;
  const KpiFormula f = FormulaOf(t.kpi);
  const std::string window = DurationText(t.window);
  const std::string target = absl::StrFormat("%.10g", t.value);
  const std::string objective = t.objective.empty() ? t.name : t.objective;
  alerts.push_back(
      {"KpiOffTarget", OffTarget(t, window), t.for_duration, t.severity,
       absl::StrCat(t.name, ": ", t.kpi,
                    " is {{ $value | printf \"%.4g\" }}, target ", Direction(t),
                    " ", target),
       absl::StrCat("Objective: ", objective, ". Over the last ", window, " ",
                    t.kpi, " is {{ $value | printf \"%.4g\" }}; the target is ",
                    Direction(t), " ", target, " (tolerance ",
                    absl::StrFormat("%.4g", t.tolerance * 100), " %).")});
  if (f.rate) {
    const std::pair<const char*, const char*> fast = {"1h", "5m"},
                                              slow = {"6h", "30m"};
    for (const auto& [name, windows, for_d, severity] : std::vector<
             std::tuple<std::string, std::pair<const char*, const char*>,
                        absl::Duration, std::string>>{
             {"KpiFastBurn", fast, absl::Minutes(2), "page"},
             {"KpiSlowBurn", slow, absl::Minutes(15), "ticket"}}) {
      alerts.push_back(
          {name,
           absl::StrCat("(", OffTarget(t, windows.first), ") and on() (",
                        OffTarget(t, windows.second), ")"),
           for_d, severity,
           absl::StrCat(t.name, ": ", t.kpi, " off target over both ",
                        windows.first, " and ", windows.second),
           absl::StrCat("Objective: ", objective, ". ", t.kpi,
                        " is {{ $value | printf \"%.4g\" }} over the last ",
                        windows.first, " and also off target over ",
                        windows.second, "; the target is ", Direction(t), " ",
                        target, ".")});
    }
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

}  // namespace

std::string TargetValueExpr(const TargetConfig& t) {
  if (t.cumulative()) {
    return absl::StrCat("sum(", TargetSelector(t, "kpi_actual_value"), ")");
  }
  return Value(t, FormulaOf(t.kpi), DurationText(t.window));
}

std::string TargetPaceExpr(const TargetConfig& t) {
  return absl::StrCat("sum(", TargetSelector(t, "kpi_pace_ratio"), ")");
}

std::vector<std::string> TargetValueLabels(const TargetConfig& t) {
  if (!t.cumulative() && FormulaOf(t.kpi).per_currency) return {"currency"};
  return {};
}

std::string TargetAttainmentExpr(const TargetConfig& t) {
  const std::string target = absl::StrFormat("%.10g", t.value);
  return t.direction == TargetDirection::kAtLeast
             ? absl::StrCat(TargetValueExpr(t), " / ", target)
             : absl::StrCat(target, " / ", TargetValueExpr(t));
}

std::string TargetOnTrackExpr(const TargetConfig& t) {
  const std::string subject =
      t.cumulative()
          ? absl::StrCat("sum(", TargetSelector(t, "kpi_projected_value"), ")")
          : TargetValueExpr(t);
  return absl::StrCat(subject,
                      t.direction == TargetDirection::kAtLeast ? " >= bool "
                                                               : " <= bool ",
                      Threshold(t));
}

std::string AlertRulesYaml(const Config& config) {
  std::string out =
      "# Generated by `kpistream rules` from the config's targets. Do not "
      "edit.\n"
      "groups:\n  - name: kpistream-targets\n    rules:\n";
  bool any = false;
  for (const TargetConfig& t : config.targets) {
    for (const Alert& a : AlertsOf(t)) {
      any = true;
      absl::StrAppend(
          &out, "      - alert: ", a.name, "\n        expr: ", Quote(a.expr),
          "\n        for: ", DurationText(a.for_duration),
          "\n        labels:\n          severity: ", a.severity,
          "\n          target: ", t.name, "\n          kpi: ", t.kpi,
          "\n        annotations:\n          summary: ", Quote(a.summary),
          "\n          description: ", Quote(a.description), "\n");
    }
  }
  if (!any) absl::StrAppend(&out, "      []\n");
  return any ? out
             : "# Generated by `kpistream rules`: no targets.\ngroups: []\n";
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

std::string Series(const std::string& metric,
                   const std::map<std::string, std::string>& filter,
                   double per_minute, int samples) {
  std::vector<std::string> labels;
  for (const std::string& label : MetricLabels().at(metric)) {
    labels.push_back(
        absl::StrCat(label, "=\"", LabelValue(filter, label), "\""));
  }
  return absl::StrCat("      - series: '", metric, "{",
                      absl::StrJoin(labels, ","), "}'\n        values: '0+",
                      absl::StrFormat("%.10g", per_minute), "x", samples,
                      "'\n");
}

// Replaces the {{ $value | printf "%.4g" }} template by its rendering.
std::string Render(std::string text, double value) {
  const std::string tmpl = "{{ $value | printf \"%.4g\" }}";
  const std::string rendered = absl::StrFormat("%.4g", value);
  for (size_t at = text.find(tmpl); at != std::string::npos;
       at = text.find(tmpl, at)) {
    text.replace(at, tmpl.size(), rendered);
    at += rendered.size();
  }
  return text;
}

// The alert_rule_test part: each alert at `eval_min`, firing (with its
// annotations rendered for values[i]) or not.
std::string ExpectedAlerts(const TargetConfig& t,
                           const std::vector<Alert>& alerts,
                           const std::vector<double>& values,
                           const std::vector<bool>& firing, int64_t eval_min) {
  // The labels the expression keeps: the test series' currency.
  std::string series_labels;
  if (!t.cumulative()) {
    for (const std::string& label : TargetValueLabels(t)) {
      absl::StrAppend(&series_labels, "\n              ", label, ": ",
                      LabelValue(t.filter, label));
    }
  }
  std::string out = "    alert_rule_test:\n";
  for (size_t i = 0; i < alerts.size(); ++i) {
    const Alert& a = alerts[i];
    absl::StrAppend(&out, "      - eval_time: ", eval_min,
                    "m\n        alertname: ", a.name, "\n        exp_alerts:");
    if (!firing[i]) {
      absl::StrAppend(&out, " []\n");
      continue;
    }
    absl::StrAppend(
        &out, "\n          - exp_labels:\n              severity: ",
        a.severity, "\n              target: ", t.name,
        "\n              kpi: ", t.kpi, series_labels,
        "\n            exp_annotations:\n              summary: ",
        Quote(Render(a.summary, values[i])),
        "\n              description: ", Quote(Render(a.description, values[i])),
        "\n");
  }
  return out;
}

// A period target's gauges as two instances export them (half each: they
// add up) and its counter, in three cases:
//   off pace and projected to miss (the counter is flat);
//   on pace with the target reached: neither fires;
//   at_least: behind pace but the last day's rate reaches the target by the
//     deadline; at_most: over pace but under the budget with a flat counter:
//     only KpiBehindPace fires.
std::string PeriodTests(const TargetConfig& t,
                        const std::vector<Alert>& alerts) {
  const KpiFormula f = FormulaOf(t.kpi);
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
    double pace;
    double actual;
    double per_minute;
    bool behind, miss;
  };
  const double behind_pace = at_least ? (1 - t.tolerance) * 0.5 : 2.0;
  const double good_pace = at_least ? 1.2 : 0.5;
  const std::vector<Case> cases = {
      {" off pace", behind_pace, t.value * behind_pace, 0, true, true},
      {" on pace", good_pace, t.value * good_pace, 0, false, false},
      at_least ? Case{" behind pace, catching up", behind_pace,
                      t.value * behind_pace, catch_up, true, false}
               : Case{" over pace, under budget", behind_pace, t.value * 0.5,
                      0, true, false}};
  std::string out;
  for (const Case& c : cases) {
    absl::StrAppend(&out, "  - name: ", Quote(absl::StrCat(t.name, c.name)),
                    "\n    interval: 1m\n    input_series:\n");
    for (const char* instance : {"a", "b"}) {
      for (const auto& [metric, value] :
           std::vector<std::pair<const char*, double>>{
               {"kpi_pace_ratio", c.pace / 2},
               {"kpi_actual_value", c.actual / 2}}) {
        absl::StrAppend(&out, "      - series: '", metric, "{target=\"", t.name,
                        "\",instance=\"", instance, "\"}'\n        values: '",
                        absl::StrFormat("%.10g", value), "x", samples, "'\n");
      }
    }
    absl::StrAppend(&out, Series(f.numerator, t.filter, c.per_minute, samples));
    absl::StrAppend(&out, ExpectedAlerts(t, alerts, {c.pace, c.actual},
                                         {c.behind, c.miss}, eval_min));
  }
  return out;
}

}  // namespace

std::string AlertRulesTestYaml(const Config& config,
                               const std::string& rule_file) {
  std::string out = absl::StrCat(
      "# Generated by `kpistream rules`: drives every target alert to firing\n"
      "# and to not firing. Run: promtool test rules <this file>\n"
      "rule_files:\n  - ",
      rule_file, "\nevaluation_interval: 1m\ntests:\n");
  bool any = false;
  for (const TargetConfig& t : config.targets) {
    const std::vector<Alert> alerts = AlertsOf(t);
    if (alerts.empty()) continue;
    if (t.cumulative()) {
      absl::StrAppend(&out, PeriodTests(t, alerts));
      any = true;
      continue;
    }
    const KpiFormula f = FormulaOf(t.kpi);
    const bool at_least = t.direction == TargetDirection::kAtLeast;
    const double limit =
        at_least ? t.value * (1 - t.tolerance) : t.value * (1 + t.tolerance);
    double good, bad;
    if (f.rate) {
      good = at_least ? std::min(1.0, t.value * 1.2) : t.value * 0.8;
      bad = at_least ? limit * 0.5 : std::min(1.0, limit * 1.5);
      if (!at_least && limit >= 1) continue;  // a rate can never exceed it
    } else {
      good = at_least ? t.value * 1.2 : t.value * 0.8;
      bad = at_least ? limit * 0.4 : limit * 2;
    }
    // A count needs its whole window of input; a ratio of two linear
    // series is the same over any part of its window, so rates need only
    // the slow burn pair's 6h (keeps promtool fast on 1d windows).
    int64_t window_min = 30;
    if (f.rate) window_min = 360;
    if (f.denominator.empty()) window_min = t.window / absl::Minutes(1);
    const int64_t eval_min =
        window_min + LongestFor(alerts) / absl::Minutes(1) + 20;
    const int samples = static_cast<int>(eval_min + 5);
    // Sessions per minute: enough for min_sessions even in a 5 minute window.
    const double per_minute =
        std::max<double>(60, static_cast<double>(t.min_sessions));
    for (bool firing : {true, false}) {
      const double r = firing ? bad : good;
      absl::StrAppend(
          &out, "  - name: ",
          Quote(absl::StrCat(t.name, firing ? " off target" : " on target")),
          "\n    interval: 1m\n    input_series:\n");
      if (f.denominator.empty()) {
        // A count: `r` over the window.
        absl::StrAppend(
            &out, Series(f.numerator, t.filter,
                         r / static_cast<double>(t.window / absl::Minutes(1)),
                         samples));
      } else {
        absl::StrAppend(&out,
                        Series(f.numerator, t.filter, r * per_minute, samples),
                        Series(f.denominator, t.filter, per_minute, samples));
      }
      absl::StrAppend(
          &out, ExpectedAlerts(t, alerts, std::vector<double>(alerts.size(), r),
                               std::vector<bool>(alerts.size(), firing),
                               eval_min));
      any = true;
    }
  }
  if (!any) absl::StrAppend(&out, "  []\n");
  return out;
}

}  // namespace kpistream
