// Fuzz target: the binary protobuf WebEvent decoder (EventDecoder, format
// protobuf: ReadProtobufEvent). Asserts, for any bytes:
//  - the decoder's contract (fuzz_check.h);
//  - the same outcome and Event when the same decoder decodes the input
//    again;
//  - libprotobuf's verdict: bytes WebEvent::ParseFromString rejects are
//    malformed, and bytes it parses decode (EventDecoder::DecodeMessage) to
//    the same outcome, time and Event;
//  - that both wire formats agree: when the bytes are a WebEvent that
//    libprotobuf prints as proto3 JSON, the JSON decoder (JsonEventReader)
//    reads that JSON to the same outcome, time and Event. The bytes' length
//    picks the field names (lowerCamelCase or as in the .proto).
#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/json_util.h"
#include "ingest/event_decoder.h"
#include "kpistream/v1/web_event.pb.h"
#include "tests/fuzz/decode_check.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/ingest/json_differential.h"

namespace kpistream {
namespace {

void Run(const std::string& input) {
  static auto* decoder = new EventDecoder(InputFormat::kProtobuf, fuzz::kSkew);
  static auto* json_decoder = new EventDecoder(InputFormat::kJson, fuzz::kSkew);
  Event first;
  const DecodeResult r = fuzz::DecodeAndCheck(decoder, input, &first);

  v1::WebEvent message;
  if (!message.ParseFromString(input)) {
    KPISTREAM_FUZZ_CHECK(!r.ok && r.reason == "malformed",
                         "bytes libprotobuf cannot parse were accepted");
    return;
  }
  {
    // The reader (ReadProtobufEvent) against libprotobuf's parse, validated
    // alike: the same verdict, reason, time and Event.
    static auto* reference =
        new EventDecoder(InputFormat::kProtobuf, fuzz::kSkew);
    v1::WebEvent copy = message;
    json_differential::Decoded via_message;
    via_message.result =
        reference->DecodeMessage(&copy, fuzz::kNow, &via_message.event);
    json_differential::Decoded direct{r, first};
    KPISTREAM_FUZZ_CHECK(
        via_message.result.ok == r.ok &&
            via_message.result.reason == r.reason &&
            via_message.result.time == r.time &&
            (!r.ok || json_differential::SameEvent(first, via_message.event)),
        absl::StrCat(
            "libprotobuf's parse decodes otherwise",
            "\n  reader:      ", json_differential::Describe(direct),
            "\n  libprotobuf: ", json_differential::Describe(via_message)));
  }
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = input.size() % 2 == 1;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return;  // e.g. an event_time beyond the Timestamp range
  }
  json_differential::Decoded via_json;
  via_json.result = json_decoder->Decode(json, fuzz::kNow, &via_json.event);
  json_differential::Decoded direct{r, first};
  KPISTREAM_FUZZ_CHECK(
      via_json.result.ok == r.ok && via_json.result.reason == r.reason &&
          via_json.result.time == r.time &&
          (!r.ok || json_differential::SameEvent(first, via_json.event)),
      absl::StrCat("the JSON of a WebEvent decodes otherwise: ", json,
                   "\n  protobuf: ", json_differential::Describe(direct),
                   "\n  json:     ", json_differential::Describe(via_json)));
}

}  // namespace
}  // namespace kpistream

KPISTREAM_FUZZ_QUIET_PROTOBUF()
KPISTREAM_FUZZ_TARGET(kpistream::Run)
