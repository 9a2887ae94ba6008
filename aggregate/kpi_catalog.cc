#include "aggregate/kpi_catalog.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aggregate/label_values.h"
#include "aggregate/saturating.h"

namespace kpistream {
namespace {

using namespace families;  // NOLINT: the families the KPIs are made of

constexpr Direction kAtLeast = Direction::kAtLeast;
constexpr Direction kAtMost = Direction::kAtMost;

// Whether a session's `currency` ("" when it had none) is the selected one
// (a selection says "(not set)" for none, as /metrics does).
bool Selected(const KpiSelection& k, absl::string_view currency) {
  return k.currency == nullptr || *k.currency == OrNotSet(currency);
}

// Revenue in currency units, of the selected currency (or all).
double Revenue(const ClosedSession& s, const KpiSelection& k) {
  int64_t micros = 0;
  for (const auto& [currency, m] : s.revenue) {
    if (Selected(k, currency)) {
      micros = SaturatingAdd(micros, m);
    }
  }
  return static_cast<double>(micros) / 1e6;
}

// Distinct orders in the selected currency (or all).
double Orders(const ClosedSession& s, const KpiSelection& k) {
  if (k.currency == nullptr) return s.orders;
  uint32_t n = 0;
  for (const auto& [currency, count] : s.orders_by_currency) {
    if (Selected(k, currency)) n += count;
  }
  return n;
}

// Conversions of the selected goal (or of any goal).
double Conversions(const ClosedSession& s, const KpiSelection& k) {
  uint32_t n = 0;
  for (const auto& [goal, count] : s.conversions) {
    if (k.goal == nullptr || *k.goal == goal) n += count;
  }
  return n;
}

double Converted(const ClosedSession& s, const KpiSelection& k) {
  return Conversions(s, k) > 0 ? 1 : 0;
}
double One(const ClosedSession&, const KpiSelection&) { return 1; }
double Bounced(const ClosedSession& s, const KpiSelection&) {
  return s.bounced;
}
double Engaged(const ClosedSession& s, const KpiSelection&) {
  return s.engaged;
}
double SinglePage(const ClosedSession& s, const KpiSelection&) {
  return s.single_page;
}
double LongSession(const ClosedSession& s, const KpiSelection&) {
  return s.long_session;
}
double NewVisitor(const ClosedSession& s, const KpiSelection&) {
  return s.new_visitor;
}
double Pageviews(const ClosedSession& s, const KpiSelection&) {
  return s.pageviews;
}
double DurationSeconds(const ClosedSession& s, const KpiSelection&) {
  return absl::ToDoubleSeconds(s.duration());
}

// Rows, in the order of the recording rules: rates, means, counts and sums.
// Each row: name, kind, numerator, denominator, default direction, unit;
// session numerator, per session, session denominator; record, record_by,
// record_denominator_by; panel title; help.
// clang-format off
const KpiDef kCatalog[] = {
    {"bounce_rate", KpiKind::kRate,
     {&kSessionsBounced}, {&kSessionsClosed}, kAtMost, "percentunit",
     Bounced, true, nullptr,
     "web_bounce_rate", "site", "",
     "",
     "Closed sessions that bounced (GA4: not engaged) / closed sessions."},
    {"engagement_rate", KpiKind::kRate,
     {&kSessionsEngaged}, {&kSessionsClosed}, kAtLeast, "percentunit",
     Engaged, true, nullptr,
     "web_engagement_rate", "site", "",
     "",
     "Engaged sessions / closed sessions."},
    {"single_page_rate", KpiKind::kRate,
     {&kSessionsSinglePage}, {&kSessionsClosed}, kAtMost, "percentunit",
     SinglePage, true, nullptr,
     "web_single_page_rate", "site", "",
     "",
     "Closed sessions with one page view and no other event (the UA / "
     "Plausible bounce) / closed sessions."},
    {"long_session_rate", KpiKind::kRate,
     {&kSessionsLong}, {&kSessionsClosed}, kAtLeast, "percentunit",
     LongSession, true, nullptr,
     "web_long_session_rate", "site", "",
     "Long sessions",
     "Closed sessions lasting at least sessions.long_min_duration (3 min by "
     "default) / closed sessions: visitors who stay, before they convert."},
    {"new_visitor_share", KpiKind::kRate,
     {&kSessionsNewVisitor}, {&kSessionsStarted}, kAtLeast, "percentunit",
     NewVisitor, true, nullptr,
     "web_new_visitor_share", "site", "",
     "",
     "Sessions of new visitors / sessions started (the engine: / closed "
     "sessions)."},
    {"conversion_rate", KpiKind::kRate,
     {&kSessionsConverted}, {&kSessionsClosed}, kAtLeast, "percentunit",
     Converted, true, nullptr,
     "web_conversion_rate", "site, goal", "site",
     "",
     "Closed sessions with a conversion of the goal / closed sessions."},
    {"pageviews_per_session", KpiKind::kMean,
     {&kSessionPageviews, "_sum"}, {&kSessionPageviews, "_count"}, kAtLeast,
     "short",
     Pageviews, true, nullptr,
     "web_pageviews_per_session", "site", "",
     "",
     "Page views of closed sessions / closed sessions."},
    {"avg_session_duration", KpiKind::kMean,
     {&kSessionDuration, "_sum"}, {&kSessionDuration, "_count"}, kAtLeast,
     "s",
     DurationSeconds, true, nullptr,
     "web_session_duration_seconds_avg", "site", "",
     "",
     "Mean duration of closed sessions (last event - first), seconds."},
    {"average_order_value", KpiKind::kMean,
     {&kRevenue}, {&kOrders}, kAtLeast, "short",
     Revenue, false, Orders,
     "web_average_order_value", "site, currency", "",
     "",
     "Revenue / distinct orders, per currency."},
    {"roas", KpiKind::kMean,
     {&kRevenue}, {&kAdCost}, kAtLeast, "x",
     Revenue, false, nullptr,
     "web_roas", "site, channel, currency", "",
     "",
     "Revenue / ad cost, per currency (return on ad spend)."},
    {"sessions", KpiKind::kCount,
     {&kSessionsClosed}, {}, kAtLeast, "short",
     One, false, nullptr,
     "", "", "",
     "",
     "Closed sessions."},
    {"engaged_sessions", KpiKind::kCount,
     {&kSessionsEngaged}, {}, kAtLeast, "short",
     Engaged, false, nullptr,
     "", "", "",
     "",
     "Engaged sessions."},
    {"pageviews", KpiKind::kCount,
     {&kPageviews}, {}, kAtLeast, "short",
     Pageviews, false, nullptr,
     "", "", "",
     "",
     "Page views (the engine: of closed sessions)."},
    {"conversions", KpiKind::kCount,
     {&kConversions}, {}, kAtLeast, "short",
     Conversions, false, nullptr,
     "", "", "",
     "",
     "Conversions of the goal (an order_id once)."},
    {"orders", KpiKind::kCount,
     {&kOrders}, {}, kAtLeast, "short",
     Orders, false, nullptr,
     "", "", "",
     "",
     "Distinct orders."},
    {"revenue", KpiKind::kSum,
     {&kRevenue}, {}, kAtLeast, "short",
     Revenue, false, nullptr,
     "", "", "",
     "",
     "Conversion value in currency units."},
};
// clang-format on

bool HasLabel(const MetricFamilyDef* family, absl::string_view label) {
  return family != nullptr &&
         std::find(family->labels.begin(), family->labels.end(), label) !=
             family->labels.end();
}

}  // namespace

std::string KpiSeries::name() const {
  return family == nullptr ? std::string() : absl::StrCat(family->name, suffix);
}

bool KpiDef::has_any_goal() const {
  return numerator.family == &kSessionsConverted;
}

bool KpiDef::per_currency() const {
  return (kind == KpiKind::kMean || kind == KpiKind::kSum) &&
         HasLabel(numerator.family, "currency");
}

bool KpiDef::money() const { return numerator.family == &kRevenue; }

bool KpiDef::session_denominator_family() const {
  // A closed-session histogram's _count counts closed sessions too.
  return denominator.family == &kSessionsClosed ||
         denominator.family == &kSessionsStarted ||
         (denominator.suffix == absl::string_view("_count") &&
          (denominator.family == &kSessionPageviews ||
           denominator.family == &kSessionDuration));
}

absl::Span<const KpiDef> KpiCatalog() { return kCatalog; }

const KpiDef* FindKpi(absl::string_view name) {
  for (const KpiDef& kpi : kCatalog) {
    if (kpi.name == name) return &kpi;
  }
  return nullptr;
}

const KpiDef& KpiNamed(absl::string_view name) {
  const KpiDef* kpi = FindKpi(name);
  if (kpi == nullptr) {
    std::fprintf(stderr, "not a KPI of the catalog: %.*s\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return *kpi;
}

std::string KpiNames() {
  return absl::StrJoin(kCatalog, ", ", [](std::string* out, const KpiDef& k) {
    out->append(k.name.data(), k.name.size());
  });
}

}  // namespace kpistream
