// A closed session as the Sessionizer hands it out: the input of the sessions
// output topic and of the per-session KPI counters.
#ifndef KPISTREAM_AGGREGATE_SESSION_H_
#define KPISTREAM_AGGREGATE_SESSION_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace kpistream {

struct ClosedSession {
  std::string site_id;
  std::string visitor_id;
  std::string user_id;
  absl::Time start;  // time of the first event
  absl::Time end;    // time of the last event
  uint32_t pageviews = 0;
  uint32_t events = 0;
  bool engaged = false;
  bool bounced = false;       // GA4: not engaged
  bool single_page = false;   // one page view, no other event
  bool long_session = false;  // lasted at least long_min_duration
  bool new_visitor = false;
  // sessions.session_source: client: the client's session id (the first its
  // events carried); empty otherwise.
  std::string client_session_id;
  // How many of the visitor's sessions before this one started in its
  // millisecond (a campaign or client session split with no time between);
  // 0 almost always. Its record's session_id then ends in "-<n + 1>".
  uint32_t start_repeat = 0;
  std::string channel;
  std::string source;
  std::string medium;
  std::string campaign;
  std::string landing_page;
  std::string exit_page;
  std::string device_category;
  std::string country;
  // (goal, conversions) for goals with at least one conversion, sorted by goal.
  std::vector<std::pair<std::string, uint32_t>> conversions;
  // (currency, micros), sorted by currency.
  std::vector<std::pair<std::string, int64_t>> revenue;
  uint32_t orders = 0;  // distinct order_ids, of every currency
  // (currency, distinct orders), sorted by currency; "" for orders sent
  // without one. AOV per currency = revenue / orders of that currency.
  std::vector<std::pair<std::string, uint32_t>> orders_by_currency;
  // Per configured funnel (in config order): how many of its steps the
  // session reached in order.
  std::vector<uint8_t> funnel_steps;

  absl::Duration duration() const { return end - start; }
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_SESSION_H_
