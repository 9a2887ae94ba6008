// JsonEventReader: reads one WebEvent written in the canonical proto3 JSON
// mapping (SPEC §2, `format: json`) straight into an EventView, with
// simdjson's On-Demand parser, and holds itself to what libprotobuf 3.21's
// JsonStringToMessage(ignore_unknown_fields = true) accepts and rejects:
//
//  - field names in lowerCamelCase or as in the .proto (snake_case); a
//    repeated key is read again (the last value wins, objects merge, as
//    protobuf's binary merge does); `null` leaves a field as it was;
//  - string fields take JSON strings only; int64 (`valueMicros`, Timestamp
//    `seconds`) and uint32 (`sessionNumber`) take numbers (integral, in range)
//    or strings of decimal digits; `type` takes an EventType name, a number,
//    or a number in a string;
//  - `eventTime` is an RFC 3339 string as protobuf parses it (`T` and `Z`
//    upper case, seconds required, any number of fractional digits of which
//    nine count, `Z` or a `+hh:mm`/`-hh:mm` offset), or an object
//    {"seconds", "nanos"} (protobuf reads a Timestamp object as a message);
//  - unknown fields are ignored whatever their value, but must be JSON that
//    protobuf parses; objects nest at most 100 deep; the top level is one
//    object and nothing but whitespace follows it.
//
// One intended difference: a `type` string that is not an EventType name is
// dropped by protobuf (the event then has no type); here the reader says so
// in WebEventHeader::unknown_type_name, so that EventDecoder can reject the
// event as invalid_type rather than missing_type (issue 10, item 14) — in
// documents nested at most 128 deep (objects and arrays): deeper ones, strict
// or not, are kNotStrictJson, libprotobuf's to judge.
//
// Protobuf 3.21 parses a lenient dialect of JSON (single quotes, bare keys,
// trailing commas, any backslash escape, raw control characters, \v and \f as
// whitespace, hex numbers...). The reader does not: for any input that is not
// strict RFC 8259 JSON it returns kNotStrictJson without judging it, and the
// caller asks libprotobuf (EventDecoder does). Inputs the reader reads or
// rejects are judged exactly as libprotobuf judges them
// (tests/ingest/json_differential_test.cc holds it to that).
//
// Thread-compatible: one reader per thread. It reuses its parser and its
// padded copy of the input (made only when the bytes past an input's end may
// not be readable), so a warm reader allocates only when an input is larger
// than any it parsed before, or one it must copy larger than any it copied.
#ifndef KPISTREAM_INGEST_JSON_EVENT_READER_H_
#define KPISTREAM_INGEST_JSON_EVENT_READER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "aggregate/event.h"

namespace kpistream {

// What validation needs of a WebEvent besides the strings Event holds, as any
// wire format carries it (EventDecoder fills it from protobuf messages too).
struct WebEventHeader {
  bool has_event_time = false;  // event_time present, even if all zero
  int64_t event_time_seconds = 0;
  int32_t event_time_nanos = 0;  // as sent: not range-checked here
  int32_t type = 0;              // EventType number as sent (an open enum)
  // The last `type` value was a string that names no EventType (protobuf
  // drops it, leaving `type` as it was).
  bool unknown_type_name = false;
  std::string type_name;  // that string, for the reject detail
};

class JsonEventReader {
 public:
  enum class Status {
    kRead,           // *event and *header hold the fields as sent
    kMalformed,      // libprotobuf rejects it too; *detail says why
    kNotStrictJson,  // not strict JSON: only libprotobuf can judge it
  };

  JsonEventReader();
  ~JsonEventReader();
  JsonEventReader(const JsonEventReader&) = delete;
  JsonEventReader& operator=(const JsonEventReader&) = delete;

  // Reads `json` into *event and *header, both overwritten. On kRead the
  // event's fields view `json` or the reader's copy of it (or, where a string
  // has escapes, the parser's buffer), valid while `json` is and until the
  // next Read(), and are as
  // sent: not validated, not normalized (device, country, currency),
  // conversion fields set whatever the type, no campaign from the page URL:
  // EventDecoder does all that. On other results their contents are
  // unspecified. *detail is set on kMalformed only.
  Status Read(absl::string_view json, EventView* event, WebEventHeader* header,
              std::string* detail);

  // Whether this build reads inputs in place where it can (not under a
  // sanitizer or memory tagging: it copies every input there).
  static bool ReadsInPlace();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_JSON_EVENT_READER_H_
