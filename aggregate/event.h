// The engine's own view of one accepted input event, independent of the wire
// format it arrived in (protobuf, JSON, access-log line).
//
//   Event      owns its strings: what a decoder fills (reused from event to
//              event, so that decoding does not allocate once warm).
//   EventView  the same fields as string views: what flows through aggregate/
//              (the ReorderBuffer packs the bytes it keeps; the Sessionizer
//              and the observers read views). Valid as long as the storage it
//              views.
#ifndef KPISTREAM_AGGREGATE_EVENT_H_
#define KPISTREAM_AGGREGATE_EVENT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kpistream {

// The event times an input may carry: google.protobuf.Timestamp's range,
// 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. Decoders reject
// anything else, and checkpoints holding anything else are corrupt: the
// aggregation core counts event times in int64 microseconds and relies on
// the margin this range leaves.
inline constexpr int64_t kMinEventTimeSeconds = -62135596800;  // 0001-01-01
inline constexpr int64_t kMaxEventTimeSeconds = 253402300799;  // 9999-12-31
inline bool IsEventTimeInRange(absl::Time t) {
  return t >= absl::FromUnixSeconds(kMinEventTimeSeconds) &&
         t < absl::FromUnixSeconds(kMaxEventTimeSeconds + 1);
}
// The same for a time in unix microseconds.
inline bool IsEventTimeInRange(int64_t unix_micros) {
  return unix_micros >= kMinEventTimeSeconds * 1000000 &&
         unix_micros < (kMaxEventTimeSeconds + 1) * 1000000;
}
// The unix days of event times in range.
inline bool IsDayInRange(int64_t day) {
  return day >= kMinEventTimeSeconds / 86400 &&
         day <= kMaxEventTimeSeconds / 86400;
}

// What one event may carry into the state and the outputs, so that no
// session record or changelog record outgrows what a Kafka producer takes
// (message.max.bytes, 1,000,000 bytes by default) however large its input
// record: page_url and referrer are cut to kMaxUrlBytes, and the decoders
// refuse an id, goal, currency or order id longer than kMaxEventValueBytes
// (campaign parameters read from page_url are cut to it).
inline constexpr size_t kMaxUrlBytes = 8192;
inline constexpr size_t kMaxEventValueBytes = 1024;

// The largest amount one conversion's value_micros or one ad cost record's
// cost_micros may carry, either sign: 1e17 micros, a hundred billion of the
// currency's units (a B2B order in a currency of small units stays far
// below). Beyond it a record is refused (malformed) as a unit mix-up: sums
// are kept in int64 micros (9.2e18), and one such record saturated a
// session's value and the revenue counter for good, silently (an audit).
inline constexpr int64_t kMaxAmountMicros = 100'000'000'000'000'000;

// A currency as SPEC §2 gives it, an ISO 4217 code: three ASCII letters
// (either case; the decoders write it in capitals). The list of codes is
// not checked (new ones come), their shape is: a conversion or an ad cost
// with another currency is "malformed" (review: "€€€" and "US Dollar"
// became label values of revenue and ROAS that no target could name).
inline bool IsCurrencyCode(absl::string_view currency) {
  return currency.size() == 3 && absl::ascii_isalpha(currency[0]) &&
         absl::ascii_isalpha(currency[1]) && absl::ascii_isalpha(currency[2]);
}

enum class EventType : uint8_t {
  kPageView = 1,
  kEngagement = 2,
  kConversion = 3,
  kCustom = 4,
};

// Applies `F` to every string member of an Event/EventView pair, in one
// fixed order (the ReorderBuffer's packing and the checkpoints rely on it).
// Formatted by hand: clang-format 14 changes this list on every pass.
// clang-format off
#define KPISTREAM_EVENT_STRING_FIELDS(X)                                   \
  X(event_id) X(site_id) X(visitor_id) X(user_id) X(page_url) X(referrer) \
  X(utm_source) X(utm_medium) X(utm_campaign) X(click_id)                 \
  X(device_category) X(country) X(goal) X(currency) X(order_id)           \
  X(session_id)
// clang-format on

struct EventView {
  absl::Time time;  // event time
  EventType type = EventType::kPageView;
  uint32_t session_number = 0;  // 0: unknown
  int64_t value_micros = 0;     // conversion value
  // The offset of the Kafka record it was read from, in the partition whose
  // state holds it; -1: unknown. A buffered event with an offset is
  // checkpointed as (offset, time) and read again from its record on
  // restore (PartitionState).
  int64_t record_offset = -1;
  absl::string_view event_id;
  absl::string_view site_id;
  absl::string_view visitor_id;
  absl::string_view user_id;
  absl::string_view page_url;
  absl::string_view referrer;
  absl::string_view utm_source;
  absl::string_view utm_medium;
  absl::string_view utm_campaign;
  absl::string_view click_id;
  absl::string_view device_category;
  absl::string_view country;
  absl::string_view goal;      // conversion goal
  absl::string_view currency;  // conversion currency
  absl::string_view order_id;  // conversion order id
  // The client's session id (cut to kMaxEventValueBytes): sessions split
  // where it changes with `sessions.session_source: client`.
  absl::string_view session_id;
  // Not kept after admission (the bot filter reads it before).
  absl::string_view user_agent;
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
  std::string session_id;

  // Views of this event's fields, valid while it lives and is unchanged.
  operator EventView() const { return view(); }  // NOLINT: a view of it
  EventView view() const {
    EventView v;
    v.time = time;
    v.type = type;
    v.session_number = session_number;
    v.value_micros = value_micros;
#define KPISTREAM_VIEW_FIELD(f) v.f = f;
    KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_VIEW_FIELD)
#undef KPISTREAM_VIEW_FIELD
    v.user_agent = user_agent;
    return v;
  }
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_EVENT_H_
