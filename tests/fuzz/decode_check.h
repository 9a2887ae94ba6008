// What the event decoder fuzz targets (json_event, protobuf_event,
// combined_log) check of every input first.
#ifndef KPISTREAM_TESTS_FUZZ_DECODE_CHECK_H_
#define KPISTREAM_TESTS_FUZZ_DECODE_CHECK_H_

#include <string>

#include "aggregate/event.h"
#include "ingest/event_decoder.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/ingest/json_differential.h"

namespace kpistream {
namespace fuzz {

// Decodes `input` with `decoder` into `*event` at kNow and checks the
// decoder's contract (CheckDecodeContract), and that a second decode of the
// same input gives the same verdict, reason, time and event (the decoder
// reuses its buffers between records).
inline DecodeResult DecodeAndCheck(EventDecoder* decoder,
                                   const std::string& input, Event* event) {
  const DecodeResult r = decoder->Decode(input, kNow, event);
  CheckDecodeContract(r, *event, input);
  Event second;
  const DecodeResult again = decoder->Decode(input, kNow, &second);
  KPISTREAM_FUZZ_CHECK(
      again.ok == r.ok && again.reason == r.reason && again.time == r.time &&
          (!r.ok || json_differential::SameEvent(*event, second)),
      "a second decode of the same input differs");
  return r;
}

}  // namespace fuzz
}  // namespace kpistream

#endif  // KPISTREAM_TESTS_FUZZ_DECODE_CHECK_H_
