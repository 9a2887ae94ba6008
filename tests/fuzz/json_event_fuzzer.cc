// Fuzz target: the JSON WebEvent decoder (EventDecoder, format json:
// JsonEventReader on simdjson, libprotobuf for input that is not strict
// JSON). Asserts, for any bytes:
//  - the decoder's contract (fuzz_check.h: an accepted event is valid and
//    normalized, a rejected one has a known reason and a detail);
//  - the same outcome and Event when the same decoder decodes the input
//    again (it reuses buffers between records);
//  - the differential property of tests/ingest/json_differential.h: the
//    same outcome, time and Event as libprotobuf's JSON parser followed by
//    the same validation.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ingest/event_decoder.h"
#include "tests/fuzz/decode_check.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/ingest/json_differential.h"

namespace kpistream {
namespace {

void Run(const std::string& input) {
  static auto* decoder = new EventDecoder(InputFormat::kJson, fuzz::kSkew);
  static auto* diff = new json_differential::Differential();
  Event first;
  const DecodeResult r = fuzz::DecodeAndCheck(decoder, input, &first);
  const std::string difference = diff->Check(input);
  KPISTREAM_FUZZ_CHECK(difference.empty(), difference);
}

}  // namespace
}  // namespace kpistream

KPISTREAM_FUZZ_TARGET(kpistream::Run)
