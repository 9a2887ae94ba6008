#include "export/grafana_dashboard.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "aggregate/kpi_catalog.h"
#include "aggregate/kpi_target.h"
#include "export/alert_rules.h"
#include "export/promql.h"
#include "export/rules_generator.h"
#include "nlohmann/json.hpp"

namespace kpistream {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kGridWidth = 24;
// `metric` of the sites the dashboard's `site` variable selects.
std::string Site(absl::string_view metric) {
  return Selector(metric).Regex("site", "$site").str();
}

// The recorded ratio of catalog KPI `kpi` over `window`, of those sites.
std::string Recorded(absl::string_view kpi, absl::string_view window) {
  return Site(RecordedRatioName(KpiNamed(kpi), window));
}

Json Datasource() { return {{"type", "prometheus"}, {"uid", "${datasource}"}}; }

// Stat and bar gauge panels show each series' last value.
Json LastValue() {
  return {{"calcs", Json::array({"lastNotNull"})},
          {"fields", ""},
          {"values", false}};
}

struct Query {
  std::string expr;
  std::string legend;  // legendFormat; "" = automatic
};

// Lays panels out left to right, wrapping at the grid's width, and numbers
// them.
class Layout {
 public:
  explicit Layout(Json* panels) : panels_(panels) {}

  void Row(const std::string& title) {
    NewLine();
    Json row = {{"id", next_id_++},
                {"type", "row"},
                {"title", title},
                {"collapsed", false},
                {"gridPos", {{"h", 1}, {"w", kGridWidth}, {"x", 0}, {"y", y_}}},
                {"panels", Json::array()}};
    panels_->push_back(std::move(row));
    y_ += 1;
  }

  // A panel of `type` and size w x h; `unit` for its values.
  Json& Add(const std::string& type, const std::string& title,
            const std::string& description, int w, int h,
            const std::vector<Query>& queries, const std::string& unit) {
    if (x_ + w > kGridWidth) NewLine();
    Json targets = Json::array();
    char ref = 'A';
    for (const Query& q : queries) {
      Json target = {{"datasource", Datasource()},
                     {"refId", std::string(1, ref++)},
                     {"expr", q.expr}};
      if (!q.legend.empty()) target["legendFormat"] = q.legend;
      targets.push_back(std::move(target));
    }
    Json panel = {
        {"id", next_id_++},
        {"type", type},
        {"title", title},
        {"description", description},
        {"datasource", Datasource()},
        {"gridPos", {{"h", h}, {"w", w}, {"x", x_}, {"y", y_}}},
        {"targets", std::move(targets)},
        {"fieldConfig",
         {{"defaults",
           {{"unit", unit},
            {"thresholds",
             {{"mode", "absolute"},
              {"steps",
               Json::array({{{"color", "green"}, {"value", nullptr}}})}}}}},
          {"overrides", Json::array()}}},
        {"options", Json::object()}};
    if (type == "timeseries") {
      panel["options"] = {{"legend",
                           {{"displayMode", "list"},
                            {"placement", "bottom"},
                            {"showLegend", true}}},
                          {"tooltip", {{"mode", "multi"}, {"sort", "desc"}}}};
    } else if (type == "stat") {
      panel["options"] = {
          {"reduceOptions", LastValue()}, {"colorMode", "background"},
          {"graphMode", "area"},          {"textMode", "auto"},
          {"orientation", "auto"},        {"justifyMode", "auto"}};
    } else if (type == "bargauge") {
      panel["options"] = {{"reduceOptions", LastValue()},
                          {"orientation", "horizontal"},
                          {"displayMode", "gradient"},
                          {"showUnfilled", true}};
      // Bars from 0: left out, Grafana takes the smallest value shown for
      // the empty bar (a funnel's last step drew nothing).
      panel["fieldConfig"]["defaults"]["min"] = 0;
    }
    panels_->push_back(std::move(panel));
    x_ += w;
    row_height_ = std::max(row_height_, h);
    return panels_->back();
  }

 private:
  void NewLine() {
    y_ += row_height_;
    x_ = 0;
    row_height_ = 0;
  }

  Json* panels_;
  int next_id_ = 1;
  int x_ = 0;
  int y_ = 0;
  int row_height_ = 0;
};

// Grafana colours a step from its value on (value >= step): an at-most
// target's steps start just above the target and the limit, which are
// themselves on target and within the tolerance, as the alerts judge (an
// audit: the limit itself read red).
double JustAbove(double v) {
  return std::nextafter(v, std::numeric_limits<double>::infinity());
}

// Red / yellow / green steps around a rolling target's value: off target
// beyond the tolerance is red, within it yellow, at or past the target
// green.
Json TargetThresholds(const TargetConfig& t) {
  const bool at_least = t.direction == TargetDirection::kAtLeast;
  if (at_least) {
    return Json::array({{{"color", "red"}, {"value", nullptr}},
                        {{"color", "yellow"},
                         {"value", ToleranceLimit(true, t.value, t.tolerance)}},
                        {{"color", "green"}, {"value", t.value}}});
  }
  return Json::array(
      {{{"color", "green"}, {"value", nullptr}},
       {{"color", "yellow"}, {"value", JustAbove(t.value)}},
       {{"color", "red"},
        {"value", JustAbove(ToleranceLimit(false, t.value, t.tolerance))}}});
}

std::string KpiUnit(const std::string& kpi) {
  return std::string(KpiNamed(kpi).unit);
}

// `prefix` and the labels that tell a target's series apart, as a legend.
std::string TargetLegend(const TargetConfig& t, const std::string& prefix) {
  std::string legend = prefix;
  for (const std::string& label : TargetValueLabels(t)) {
    absl::StrAppend(&legend, legend.empty() ? "" : " ", "{{", label, "}}");
  }
  return legend;
}

// A period target's stat: its actual to date (in a neutral colour) and its
// pace, coloured red / yellow / green at the pace's tolerance and at 1, so
// that a target on pace is green all period long, not red until its final
// value is reached. The pace is the projection at the deadline over the
// target (a linear projection of the actual to date).
void PeriodTargetPanel(const TargetConfig& t, Layout* layout) {
  const bool at_least = t.direction == TargetDirection::kAtLeast;
  Json& panel = layout->Add(
      "stat", t.name,
      absl::StrCat(
          t.objective.empty() ? "" : t.objective + ". ", t.kpi,
          " to date in its period (summed over instances) and its pace: the "
          "actual to date over the linearly expected value to date, i.e. the "
          "projection at the deadline over the target ",
          at_least ? "at least " : "at most ", PromqlNumber(t.value),
          ". Coloured by "
          "pace: green on pace, yellow within the tolerance (",
          PromqlNumber(t.tolerance * 100), " %), red ",
          at_least ? "behind" : "over", " pace beyond it."),
      6, 5, {{TargetValueExpr(t), "to date"}, {TargetPaceExpr(t), "pace"}},
      "percentunit");
  Json& defaults = panel["fieldConfig"]["defaults"];
  defaults["thresholds"]["steps"] =
      at_least ? Json::array({{{"color", "red"}, {"value", nullptr}},
                              {{"color", "yellow"}, {"value", 1 - t.tolerance}},
                              {{"color", "green"}, {"value", 1}}})
               : Json::array({{{"color", "green"}, {"value", nullptr}},
                              {{"color", "yellow"}, {"value", JustAbove(1)}},
                              {{"color", "red"},
                               {"value", JustAbove(1 + t.tolerance)}}});
  defaults["color"] = {{"mode", "thresholds"}};
  panel["fieldConfig"]["overrides"] = Json::array(
      {{{"matcher", {{"id", "byFrameRefID"}, {"options", "A"}}},
        {"properties",
         Json::array(
             {{{"id", "unit"}, {"value", KpiUnit(t.kpi)}},
              {{"id", "color"},
               {"value", {{"mode", "fixed"}, {"fixedColor", "blue"}}}}})}}});
  panel["options"]["textMode"] = "value_and_name";
}

void TargetPanels(const Config& config, Layout* layout) {
  layout->Row("Targets");
  for (const TargetConfig& t : config.targets) {
    if (t.cumulative()) {
      PeriodTargetPanel(t, layout);
      continue;
    }
    const bool at_least = t.direction == TargetDirection::kAtLeast;
    Json& panel = layout->Add(
        "stat", t.name,
        absl::StrCat(t.objective.empty() ? "" : t.objective + ". ", t.kpi,
                     " over its rolling window; target ",
                     at_least ? "at least " : "at most ", PromqlNumber(t.value),
                     " (tolerance ", PromqlNumber(t.tolerance * 100),
                     " %). Green: met; yellow: within tolerance; red: off "
                     "target."),
        6, 5,
        {{TargetValueExpr(t),
          TargetValueLabels(t).empty() ? t.kpi : TargetLegend(t, "")}},
        KpiUnit(t.kpi));
    panel["fieldConfig"]["defaults"]["thresholds"]["steps"] =
        TargetThresholds(t);
  }
  if (config.targets.empty()) return;
  std::vector<Query> attainment, on_track;
  for (const TargetConfig& t : config.targets) {
    attainment.push_back({TargetAttainmentExpr(t), TargetLegend(t, t.name)});
    on_track.push_back({TargetOnTrackExpr(t), TargetLegend(t, t.name)});
  }
  layout->Add("timeseries", "Attainment",
              "actual / target (target / actual for at-most KPIs) per target, "
              "over all instances; 1 = target met.",
              12, 8, attainment, "percentunit");
  layout->Add("stat", "On track",
              "Per target, over all instances: yes when within its tolerance "
              "(a period target: its projection to the deadline).",
              12, 8, on_track,
              "bool_yes_no")["fieldConfig"]["defaults"]["thresholds"]["steps"] =
      Json::array({{{"color", "red"}, {"value", nullptr}},
                   {{"color", "green"}, {"value", 1}}});
  bool periods = false;
  for (const TargetConfig& t : config.targets) periods |= t.cumulative();
  if (!periods) return;
  // A period's actual is NaN on an instance whose money is of several
  // currencies; the sums of pace and projection leave NaN out (an instance
  // before the start), so the others' part alone was shown (an audit).
  static constexpr absl::string_view kUnlessMixed =
      " and on(target) (sum by (target) (kpi_actual_value) == sum by "
      "(target) (kpi_actual_value))";
  layout->Add(
      "timeseries", "Pace of period targets",
      "Actual to date / the linearly expected value to date, summed "
      "over instances (an instance whose clock has not reached the "
      "period's start has none; none while an instance's period holds "
      "money of several currencies); below 1 is behind pace (at-least "
      "targets).",
      12, 8,
      {{absl::StrCat("sum by (target) (kpi_pace_ratio == kpi_pace_ratio)",
                     kUnlessMixed),
        "{{target}}"}},
      "percentunit");
  layout->Add("timeseries", "Projected at the deadline",
              "Actual to date projected linearly to the end of the period, "
              "summed over instances, against the target.",
              12, 8,
              {{absl::StrCat("sum by (target) (kpi_projected_value == "
                             "kpi_projected_value)",
                             kUnlessMixed),
                "projected {{target}}"},
               {"max by (target) (kpi_target_value) and on(target) "
                "kpi_pace_ratio",
                "target {{target}}"}},
              "short");
}

void TrafficPanels(const Config& config, Layout* layout) {
  layout->Row("Traffic and engagement");
  layout->Add("timeseries", "Sessions started / min",
              "Sessions opened per minute, by site.", 8, 8,
              {{absl::StrCat("sum by (site) (rate(",
                             Site("web_sessions_started_total"), "[5m])) * 60"),
                "{{site}}"}},
              "short");
  layout->Add("timeseries", "Page views / min", "Page views per minute.", 8, 8,
              {{absl::StrCat("sum by (site) (rate(",
                             Site("web_pageviews_total"), "[5m])) * 60"),
                "{{site}}"}},
              "short");
  // The thresholds as configured (an audit: "10 s or 2 page views" was
  // written here whatever sessions.engaged_min_* said).
  layout->Add(
      "timeseries", "Engagement and bounce rate (1h)",
      absl::StrCat("Engaged = at least ",
                   absl::FormatDuration(config.sessions.engaged_min_duration),
                   " long, or ", config.sessions.engaged_min_pageviews,
                   " page views, or a conversion (GA4's rule, "
                   "sessions.engaged_min_*); bounce = not engaged. "
                   "Single page = the UA / Plausible bounce."),
      8, 8,
      {{Recorded("engagement_rate", "1h"), "engaged {{site}}"},
       {Recorded("bounce_rate", "1h"), "bounced {{site}}"},
       {Recorded("single_page_rate", "1h"), "single page {{site}}"}},
      "percentunit");
  layout->Add("stat", "Average session duration (1h)",
              "Last event - first event of closed sessions.", 6, 5,
              {{Recorded("avg_session_duration", "1h"), "{{site}}"}}, "s");
  layout->Add("stat", "Pages per session (1h)", "Page views / closed sessions.",
              6, 5, {{Recorded("pageviews_per_session", "1h"), "{{site}}"}},
              "short");
  layout->Add("stat", "New visitors (1h)",
              "Share of sessions that are a visitor's first.", 6, 5,
              {{Recorded("new_visitor_share", "1h"), "{{site}}"}},
              "percentunit");
  layout->Add(
      "timeseries", "Session duration p50 / p90 (1h)",
      "From the duration histogram's buckets.", 6, 5,
      {{absl::StrCat("histogram_quantile(0.5, sum by (le) "
                     "(rate(",
                     Site("web_session_duration_seconds_bucket"), "[1h])))"),
        "p50"},
       {absl::StrCat("histogram_quantile(0.9, sum by (le) "
                     "(rate(",
                     Site("web_session_duration_seconds_bucket"), "[1h])))"),
        "p90"}},
      "s");
  // The KPIs with a panel of their own in the catalog.
  for (const KpiDef& kpi : KpiCatalog()) {
    if (kpi.panel_title.empty()) continue;
    layout->Add(
        "stat", absl::StrCat(kpi.panel_title, " (1h)"), std::string(kpi.help),
        6, 5, {{Recorded(kpi.name, "1h"), "{{site}}"}}, std::string(kpi.unit));
  }
}

void ConversionPanels(Layout* layout) {
  layout->Row("Conversions and revenue");
  layout->Add("timeseries", "Conversion rate per goal (1h)",
              "Closed sessions with at least one conversion of the goal / "
              "closed sessions; (any) = any goal.",
              8, 8, {{Recorded("conversion_rate", "1h"), "{{goal}} {{site}}"}},
              "percentunit");
  layout->Add("timeseries", "Conversions / h",
              "Conversion events per hour "
              "(an order counted once).",
              8, 8,
              {{absl::StrCat("sum by (goal) (rate(",
                             Site("web_conversions_total"), "[1h])) * 3600"),
                "{{goal}}"}},
              "short");
  layout->Add("stat", "Revenue (24h)",
              "Sum of conversion values, per currency.", 8, 8,
              {{absl::StrCat("sum by (currency) (increase(",
                             Site("web_revenue_total"), "[1d]))"),
                "{{currency}}"}},
              "short");
  layout->Add(
      "timeseries", "Average order value (1d)",
      "Revenue / distinct orders, per currency.", 12, 8,
      {{Recorded("average_order_value", "1d"), "{{currency}} {{site}}"}},
      "short");
  layout->Add("timeseries", "ROAS (1d)",
              "Revenue / ad cost per site, channel and currency, where the "
              "channel had ad cost (0: cost, no revenue).",
              12, 8,
              {{Recorded("roas", "1d"), "{{channel}} {{currency}} {{site}}"}},
              "x");
}

void ChannelPanels(Layout* layout) {
  layout->Row("Channels");
  // Closed sessions, as the `sessions` KPI, its targets and the panel
  // beside it count them: a session's channel can still change while it is
  // open (a late first event), and the started counter keeps the first.
  layout->Add(
      "bargauge", "Sessions by channel (24h)",
      "Closed sessions per GA4 default channel grouping of the "
      "session's first event.",
      8, 9,
      {{absl::StrCat("sort_desc(sum by (channel) "
                     "(increase(",
                     Site(KpiNamed("sessions").numerator.name()), "[1d])))"),
        "{{channel}}"}},
      "short");
  layout->Add("bargauge", "Bounce rate by channel (24h)",
              "Bounced / closed sessions per channel.", 8, 9,
              {{absl::StrCat("sum by (channel) (increase(",
                             Site("web_sessions_bounced_total"),
                             "[1d])) / sum by (channel) "
                             "(increase(",
                             Site("web_sessions_closed_total"), "[1d]))"),
                "{{channel}}"}},
              "percentunit");
  layout->Add("bargauge", "Top campaigns by sessions (24h)",
              "Campaigns beyond the label limit are counted as (other).", 8, 9,
              {{absl::StrCat("topk(10, sum by (campaign) "
                             "(increase(",
                             Site("web_campaign_sessions_total"), "[1d])))"),
                "{{campaign}}"}},
              "short");
}

void FunnelPanels(const Config& config, Layout* layout) {
  if (config.funnels.empty()) return;
  layout->Row("Funnels");
  for (const FunnelConfig& f : config.funnels) {
    std::vector<Query> steps;
    for (const FunnelStepConfig& step : f.steps) {
      steps.push_back({absl::StrCat("sum(increase(",
                                    Selector("web_funnel_step_sessions_total")
                                        .Regex("site", "$site")
                                        .Equal("funnel", f.name)
                                        .Equal("step", step.name)
                                        .str(),
                                    "[1d])) or vector(0)"),
                       step.name});
    }
    layout->Add("bargauge", absl::StrCat("Funnel ", f.name, " (24h)"),
                "Sessions that reached each step in order, within one "
                "session; the bars shrink step by step (a step no session "
                "reached yet: 0).",
                12, 2 + 2 * static_cast<int>(f.steps.size()), steps, "short");
  }
}

void RealtimePanels(Layout* layout) {
  layout->Row("Realtime");
  layout->Add("stat", "Active visitors (5 min)",
              "Distinct visitors with an event in the last 5 minutes "
              "(processing time).",
              8, 5,
              {{absl::StrCat("sum(",
                             Selector("web_active_visitors")
                                 .Regex("site", "$site")
                                 .Equal("window", "5m")
                                 .str(),
                             ")"),
                ""}},
              "short");
  layout->Add("stat", "Active visitors (30 min)",
              "Distinct visitors with an event in the last 30 minutes.", 8, 5,
              {{absl::StrCat("sum(",
                             Selector("web_active_visitors")
                                 .Regex("site", "$site")
                                 .Equal("window", "30m")
                                 .str(),
                             ")"),
                ""}},
              "short");
  layout->Add("stat", "Open sessions", "Sessions not closed yet.", 8, 5,
              {{absl::StrCat("sum(", Site("web_open_sessions"), ")"), ""}},
              "short");
}

void EnginePanels(const Config& config, Layout* layout) {
  layout->Row("Engine health");
  layout->Add("timeseries", "Input / s",
              "consumed = accepted + invalid + late + duplicate + bot (+ "
              "accepted ad cost records), always.",
              8, 8,
              {{"sum(rate(kpistream_events_consumed_total[5m]))", "consumed"},
               {"sum(rate(web_events_total[5m]))", "accepted"},
               {"sum(rate(kpistream_events_invalid_total[5m]))", "invalid"},
               {"sum(rate(kpistream_events_late_total[5m]))", "late"},
               {"sum(rate(kpistream_events_duplicate_total[5m]))", "duplicate"},
               {"sum(rate(kpistream_bot_events_total[5m]))", "bot"},
               {"sum(rate(kpistream_ad_cost_records_total[5m]))", "ad cost"}},
              "short");
  layout->Add("timeseries", "Invalid events by reason / s",
              "Each is in the dead-letter topic with its reason header.", 8, 8,
              {{"sum by (reason) (rate(kpistream_events_invalid_total[5m]))",
                "{{reason}}"}},
              "short");
  layout->Add(
      "timeseries", "Watermark lag",
      "Processing time - event-time watermark, per instance.", 8, 8,
      {{"max by (instance) (kpistream_watermark_lag_seconds)", "{{instance}}"}},
      "s");
  layout->Add("timeseries", "Consumer lag",
              "Messages behind the end of each input partition.", 8, 8,
              {{"sum by (topic, partition) (kpistream_consumer_lag_messages)",
                "{{topic}}[{{partition}}]"}},
              "short");
  layout->Add(
      "timeseries", "State",
      "Open sessions and approximate state bytes per instance.", 8, 8,
      {{"sum by (instance) (kpistream_state_sessions)",
        "sessions {{instance}}"},
       {"sum by (instance) (kpistream_state_bytes)", "bytes {{instance}}"}},
      "short");
  layout->Add("timeseries", "Label overflow / s",
              "Values beyond a label's limit, counted as (other).", 8, 8,
              {{"sum by (label) (rate(kpistream_label_overflow_total[5m]))",
                "{{label}}"}},
              "short");
  layout->Add(
      "stat", "Instances up",
      absl::StrCat("Scraped instances of job ", config.rules.job,
                   " (rules.job) that are up."),
      8, 5,
      {{absl::StrCat("sum(",
                     Selector("up").Equal("job", config.rules.job).str(), ")"),
        ""}},
      "short");
  layout->Add("stat", "Partitions assigned",
              "Partitions owned (input and repartition), in all.", 8, 5,
              {{"sum(kpistream_assigned_partitions)", ""}}, "short");
  layout->Add("stat", "Events buffered", "Events waiting in reorder buffers.",
              8, 5, {{"sum(kpistream_reorder_buffer_events)", ""}}, "short");
}

}  // namespace

std::string DashboardPath() { return absl::StrCat("/d/", kDashboardUid); }

std::string GrafanaDashboardJson(const Config& config) {
  Json panels = Json::array();
  Layout layout(&panels);
  TargetPanels(config, &layout);
  TrafficPanels(config, &layout);
  ConversionPanels(&layout);
  ChannelPanels(&layout);
  FunnelPanels(config, &layout);
  RealtimePanels(&layout);
  EnginePanels(config, &layout);
  Json dashboard = {
      {"uid", kDashboardUid},
      {"title", "kpistream: web KPIs and targets"},
      {"description",
       "Generated by `kpistream rules` from the config. Do not edit: "
       "regenerate."},
      {"tags", Json::array({"kpistream", "web", "kpi"})},
      {"timezone", "browser"},
      {"editable", true},
      {"graphTooltip", 1},
      {"schemaVersion", 39},
      {"version", 1},
      {"refresh", "30s"},
      {"time", {{"from", "now-6h"}, {"to", "now"}}},
      {"annotations",
       {{"list",
         Json::array(
             {{{"builtIn", 1},
               {"datasource", {{"type", "grafana"}, {"uid", "-- Grafana --"}}},
               {"enable", true},
               {"hide", true},
               {"iconColor", "rgba(0, 211, 255, 1)"},
               {"name", "Annotations & Alerts"},
               {"type", "dashboard"}}})}}},
      {"templating",
       {{"list",
         Json::array(
             {{{"name", "datasource"},
               {"label", "Data source"},
               {"type", "datasource"},
               {"query", "prometheus"},
               {"current", Json::object()},
               {"hide", 0}},
              {{"name", "site"},
               {"label", "Site"},
               {"type", "query"},
               {"datasource", Datasource()},
               {"query",
                {{"query", "label_values(web_sessions_started_total, site)"},
                 {"refId", "site"}}},
               {"definition", "label_values(web_sessions_started_total, site)"},
               {"refresh", 2},
               {"multi", true},
               {"includeAll", true},
               {"allValue", ".*"},
               {"current", Json::object()},
               {"sort", 1},
               {"hide", 0}}})}}},
      {"panels", std::move(panels)}};
  // Config values are printable UTF-8 (config.cc); one that is not anyway
  // is written with U+FFFD, not thrown (which ended `rules` with SIGABRT).
  return dashboard.dump(2, ' ', false,
                        nlohmann::json::error_handler_t::replace) +
         "\n";
}

}  // namespace kpistream
