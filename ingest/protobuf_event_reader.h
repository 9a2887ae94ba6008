// ReadProtobufEvent: reads one binary protobuf WebEvent (SPEC §2, the default
// `format: protobuf`) straight into an EventView of its bytes, without a
// libprotobuf message or a copy,
// and holds itself to what libprotobuf 3.21's WebEvent::ParseFromArray
// accepts and rejects:
//
//  - a field of a number the .proto does not declare, or of a declared
//    number with another wire type than its own, is unknown and skipped:
//    varints, fixed32/64, length-delimited, groups (nested at most 100 deep,
//    each closed by its own end-group tag);
//  - malformed: wire types 6 and 7; field number 0; a tag 0 or an end-group
//    tag where no group is open; a tag longer than 5 bytes, a varint longer
//    than 10, a length longer than 5 or of 2^31 or more; anything that runs
//    past the end of the record (or of the nested message it is in);
//  - every string field the .proto declares must be valid UTF-8 (proto3),
//    in every occurrence, including those Event has no place for
//    (session_id, page_title, utm_term, utm_content);
//  - a repeated field's last occurrence wins; event_time and conversion
//    merge over their occurrences, and are present once they occur, even
//    empty;
//  - type, session_number and Timestamp.nanos keep a varint's low 32 bits.
//
// tests/ingest/protobuf_differential_test.cc and the protobuf_event fuzz
// target hold it to libprotobuf's results.
//
// On success *event views the fields as sent in `bytes` (valid while they
// are; not validated or normalized: EventDecoder does that) and *header
// holds what validation needs besides. On failure their contents are
// unspecified, and *detail says where and why in one short line. Allocates
// nothing (but *detail's text on failure).
#ifndef KPISTREAM_INGEST_PROTOBUF_EVENT_READER_H_
#define KPISTREAM_INGEST_PROTOBUF_EVENT_READER_H_

#include <string>

#include "absl/strings/string_view.h"
#include "aggregate/event.h"
#include "ingest/json_event_reader.h"

namespace kpistream {

bool ReadProtobufEvent(absl::string_view bytes, EventView* event,
                       WebEventHeader* header, std::string* detail);

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_PROTOBUF_EVENT_READER_H_
