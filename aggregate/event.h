// The engine's own view of one accepted input event, independent of the wire
// format it arrived in (protobuf, JSON, access-log line). ingest/ builds it;
// aggregate/ consumes it. It owns its strings so that it can wait in the
// ReorderBuffer after the Kafka message it came from is gone.
#ifndef KPISTREAM_AGGREGATE_EVENT_H_
#define KPISTREAM_AGGREGATE_EVENT_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace kpistream {

enum class EventType : uint8_t {
  kPageView = 1,
  kEngagement = 2,
  kConversion = 3,
  kCustom = 4,
};

struct Event {
  absl::Time time;  // event time
  EventType type = EventType::kPageView;
  uint32_t session_number = 0;  // 0: unknown
  int64_t value_micros = 0;     // conversion value
  std::string event_id;
  std::string site_id;
  std::string visitor_id;
  std::string user_id;
  std::string page_url;
  std::string referrer;
  std::string utm_source;
  std::string utm_medium;
  std::string utm_campaign;
  std::string click_id;
  std::string device_category;
  std::string country;
  std::string user_agent;
  std::string goal;      // conversion goal
  std::string currency;  // conversion currency
  std::string order_id;  // conversion order id
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_EVENT_H_
