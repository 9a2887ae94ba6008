// The per-goal and per-currency sums of a session or a KPI window as the v1
// messages carry them (GoalCount, Revenue): written once for the state
// checkpoints (aggregate/) and the session and KPI records (export/).
#ifndef KPISTREAM_AGGREGATE_PROTO_SUMS_H_
#define KPISTREAM_AGGREGATE_PROTO_SUMS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "aggregate/saturating.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "kpistream/v1/session_record.pb.h"

namespace kpistream {

// Appends a GoalCount per (goal, conversions) pair of `conversions`, in
// its order.
template <typename Conversions>
void AddGoalCounts(const Conversions& conversions,
                   google::protobuf::RepeatedPtrField<v1::GoalCount>* out) {
  for (const auto& [goal, n] : conversions) {
    v1::GoalCount* g = out->Add();
    g->set_goal(goal);
    g->set_conversions(n);
  }
}

// Appends one Revenue per currency with revenue or orders, sorted by
// currency: `revenue` holds (currency, micros) pairs (summed, saturating,
// where a currency repeats), `orders` (currency, orders) pairs.
template <typename Revenues, typename Orders>
void AddRevenues(const Revenues& revenue, const Orders& orders,
                 google::protobuf::RepeatedPtrField<v1::Revenue>* out) {
  std::map<std::string, std::pair<int64_t, uint32_t>> by_currency;
  for (const auto& [currency, micros] : revenue) {
    int64_t& sum = by_currency[currency].first;
    sum = SaturatingAdd(sum, micros);
  }
  for (const auto& [currency, n] : orders) by_currency[currency].second += n;
  for (const auto& [currency, totals] : by_currency) {
    v1::Revenue* v = out->Add();
    v->set_currency(currency);
    v->set_value_micros(totals.first);
    v->set_orders(totals.second);
  }
}

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_PROTO_SUMS_H_
