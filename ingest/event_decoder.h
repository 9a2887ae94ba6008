// EventDecoder: turns the bytes of one Kafka message into a validated Event,
// or says why it cannot (a stable reason label for
// kpistream_events_invalid_total{reason} and the dead-letter header).
//
// Formats: binary protobuf WebEvent, the canonical proto3 JSON mapping of
// WebEvent (unknown JSON fields are ignored), and combined access-log lines
// (ingest/combined_log.h).
//
// Campaign parameters missing from an event's fields are read from its
// page_url (FillCampaignFromPageUrl, SPEC §2), in every format.
//
// Validation: site_id, visitor_id, event_time and type are required; a
// CONVERSION needs conversion.goal; an event_time further than
// max_future_skew ahead of `now` is invalid (the engine passes when the
// event's record was written, never later than its clock).
//
// Sizes: what an event carries into the state and the outputs is bounded,
// so that no session record or changelog record outgrows what a Kafka
// producer takes (message.max.bytes, 1,000,000 bytes by default) however
// large the input records: page_url and referrer are cut to kMaxUrlBytes
// (at a character boundary; a longer one is kept as its start, as GA4 cuts
// page_location), and an id, campaign parameter, goal, currency or order id
// longer than kMaxEventValueBytes (aggregate/event.h) makes the event
// "malformed" (campaign parameters read from page_url are cut instead), as
// does a conversion's currency that is not three letters (IsCurrencyCode).
//
// Reasons: "malformed", "missing_site_id", "missing_visitor_id",
// "missing_event_time", "missing_type" (unset), "invalid_type" (not a known
// EventType), "missing_goal", "future_event_time", and for access-log lines
// "not_pageview".
//
// Binary protobuf is read by ReadProtobufEvent
// (ingest/protobuf_event_reader.h), held to what libprotobuf 3.21's
// ParseFromArray accepts and rejects. JSON is read by JsonEventReader
// (simdjson), held to what libprotobuf 3.21's
// JsonStringToMessage(ignore_unknown_fields) accepts and rejects; input that is
// not strict JSON (libprotobuf parses a lenient dialect: single quotes, bare
// keys, trailing commas...) is judged by libprotobuf itself. One intended
// difference: in strict JSON nested at most 128 deep (objects and arrays), a
// `type` string that names no EventType is "invalid_type" (libprotobuf drops
// it, which made it "missing_type"; deeper JSON is libprotobuf's to judge).
// "malformed" details are one short line.
//
// Thread-compatible: one decoder per thread (it reuses its parsers and the
// buffers its views may point into).
#ifndef KPISTREAM_INGEST_EVENT_DECODER_H_
#define KPISTREAM_INGEST_EVENT_DECODER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "aggregate/event.h"
#include "config/config.h"

namespace kpistream {

namespace v1 {
class WebEvent;
}  // namespace v1

struct DecodeResult {
  bool ok = false;
  absl::string_view reason;  // static storage; empty when ok
  std::string detail;        // human-readable, for logs; empty when ok
  // The record's event time when it carries a valid one (in range and not
  // beyond the future skew), whether or not the record is accepted: event
  // time advances with every timestamped record (SPEC §3), e.g. an access-log
  // line that is not a page view. InfinitePast() when it has none.
  absl::Time time = absl::InfinitePast();
};

class EventDecoder {
 public:
  // `host`: combined_log only, see ParseCombinedLogLine().
  EventDecoder(InputFormat format, absl::Duration max_future_skew,
               std::string default_site = "", std::string host = "");
  ~EventDecoder();
  // combined_log: a line whose path matches one of these globs
  // (InputConfig::skip_paths) is no page view.
  void SetSkipPaths(std::vector<std::string> globs);

  // Decodes and validates `bytes` into `*event` (overwritten), without
  // copying: its strings view `bytes`, or this decoder's buffers where
  // decoding or normalising changed a value (a JSON escape, a country or
  // currency in lower case, a campaign parameter percent-decoded from the
  // page URL...). Valid while `bytes` is and until this decoder's next call.
  DecodeResult Decode(absl::string_view bytes, absl::Time now,
                      EventView* event);
  // The same into an Event that owns its strings (copied).
  DecodeResult Decode(absl::string_view bytes, absl::Time now, Event* event);

  // For a record that is only routed (re-keyed by visitor_id, then decoded
  // again where it is processed): the same verdict, reason and event time
  // as Decode(), but afterwards only visitor_id, site_id, user_agent and
  // time of `*event` are meaningful. What Decode() does after validating
  // (normalising device, country and currency, campaign parameters from
  // page_url) rejects nothing, and is skipped.
  DecodeResult DecodeForRouting(absl::string_view bytes, absl::Time now,
                                EventView* event);
  DecodeResult DecodeForRouting(absl::string_view bytes, absl::Time now,
                                Event* event);

  // Validates an already parsed WebEvent into `*event` (overwritten), as
  // Decode() does after parsing.
  DecodeResult DecodeMessage(const v1::WebEvent* message, absl::Time now,
                             Event* event);

 private:
  // Decode() without the hint of OtherFormatHint().
  DecodeResult DecodeAsFormat(absl::string_view bytes, absl::Time now,
                              EventView* event);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The detail of a conversion's or an ad cost's currency that is not shaped
// as an ISO 4217 code (IsCurrencyCode), rejected as "malformed": it names
// `field` and the value (escaped, at most 32 bytes of it).
std::string NotACurrencyCode(absl::string_view field,
                             absl::string_view currency);

// The detail of an amount beyond kMaxAmountMicros (either sign), rejected
// as "malformed": it names `field` and the value.
std::string TooLargeAmount(absl::string_view field, int64_t micros);

// For a malformed record's detail: "; the record looks like JSON: is the
// input's format json?" when `bytes` look like another of the input formats
// than `format` (JSON, an access-log line, or binary: protobuf), else "". A
// producer writing one format to a topic read as another is a new user's
// most common mistake, and every record of it is rejected.
std::string OtherFormatHint(absl::string_view bytes, InputFormat format);
// How every such hint starts (a log line's example keeps it whole).
inline constexpr absl::string_view kOtherFormatHintStart =
    "; the record looks like ";

// Every reason a record can be rejected with as invalid (by Decode(), the
// AdCostDecoder or the engine), so that kpistream_events_invalid_total
// exports each at 0 from the start (SPEC §7).
const std::vector<absl::string_view>& InvalidReasons();

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_EVENT_DECODER_H_
