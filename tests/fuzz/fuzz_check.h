// What the fuzz targets share: a check that stops the run (libFuzzer then
// saves the input as a crash), and the contract of a decoded event
// (ingest/event_decoder.h) that every event decoder target asserts.
#ifndef KPISTREAM_TESTS_FUZZ_FUZZ_CHECK_H_
#define KPISTREAM_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "aggregate/event.h"
#include "aggregate/label_values.h"
#include "google/protobuf/stubs/logging.h"
#include "ingest/event_decoder.h"

// Aborts with the condition, its place and `what` (a std::string or text)
// when `cond` is false.
#define KPISTREAM_FUZZ_CHECK(cond, what)                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      std::fprintf(stderr, "%s:%d: check failed: %s\n  %s\n", __FILE__, \
                   __LINE__, #cond, std::string(what).c_str());         \
      std::abort();                                                     \
    }                                                                   \
  } while (false)

// libFuzzer's entry point for a target whose `run(const std::string&)`
// checks one input.
#define KPISTREAM_FUZZ_TARGET(run)                                          \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    run(std::string(reinterpret_cast<const char*>(data), size));            \
    return 0;                                                               \
  }

// libFuzzer's initialisation for targets that parse protobuf: libprotobuf
// logs every string field that is not UTF-8, thousands of lines.
#define KPISTREAM_FUZZ_QUIET_PROTOBUF()                \
  extern "C" int LLVMFuzzerInitialize(int*, char***) { \
    google::protobuf::SetLogHandler(nullptr);          \
    return 0;                                          \
  }

namespace kpistream {
namespace fuzz {

// Processing time of every decode: 2026-01-01T10:00:00Z.
inline const absl::Time kNow = absl::FromUnixSeconds(1767261600);
inline const absl::Duration kSkew = absl::Minutes(10);

// The range of google.protobuf.Timestamp, which every input format's event
// time must lie in: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
// Written out here rather than calling aggregate/event.h's
// IsEventTimeInRange: the check must not share the code it checks.
inline bool IsTimestampRange(absl::Time t) {
  return t >= absl::FromUnixSeconds(-62135596800) &&
         t < absl::FromUnixSeconds(253402300800);
}

// An event time as DecodeResult::time may carry it: none, or a valid one.
inline bool IsValidRecordTime(absl::Time t) {
  return t == absl::InfinitePast() ||
         (IsTimestampRange(t) && t <= kNow + kSkew);
}

inline bool IsKnownReason(absl::string_view reason) {
  for (absl::string_view r : InvalidReasons()) {
    if (r == reason) return true;
  }
  return false;
}

// The contract of EventDecoder::Decode (ingest/event_decoder.h): an
// accepted event is valid and normalized, a rejected record has a known
// reason and a detail.
inline void CheckDecodeContract(const DecodeResult& r, const Event& e,
                                absl::string_view input) {
  const std::string where = absl::StrCat(
      "input \"", absl::CHexEscape(input.substr(0, 300)), "\", result ",
      r.ok ? "ok" : std::string(r.reason), " (", r.detail, ")");
  KPISTREAM_FUZZ_CHECK(IsValidRecordTime(r.time), where);
  if (!r.ok) {
    KPISTREAM_FUZZ_CHECK(IsKnownReason(r.reason), where);
    KPISTREAM_FUZZ_CHECK(!r.detail.empty(), where);
    return;
  }
  KPISTREAM_FUZZ_CHECK(r.reason.empty() && r.detail.empty(), where);
  KPISTREAM_FUZZ_CHECK(!e.site_id.empty(), where);
  KPISTREAM_FUZZ_CHECK(!e.visitor_id.empty(), where);
  KPISTREAM_FUZZ_CHECK(r.time != absl::InfinitePast() && e.time == r.time,
                       where);
  const int type = static_cast<int>(e.type);
  KPISTREAM_FUZZ_CHECK(type >= 1 && type <= 4, where);
  if (e.type == EventType::kConversion) {
    KPISTREAM_FUZZ_CHECK(!e.goal.empty(), where);
    for (char c : e.currency) {
      KPISTREAM_FUZZ_CHECK(!absl::ascii_islower(c), where);
    }
  } else {
    KPISTREAM_FUZZ_CHECK(e.goal.empty() && e.currency.empty() &&
                             e.order_id.empty() && e.value_micros == 0,
                         where);
  }
  KPISTREAM_FUZZ_CHECK(
      e.device_category == "desktop" || e.device_category == "mobile" ||
          e.device_category == "tablet" || e.device_category == kOther ||
          e.device_category == kNotSet,
      where);
  KPISTREAM_FUZZ_CHECK(
      e.country == kNotSet ||
          (e.country.size() == 2 && absl::ascii_isupper(e.country[0]) &&
           absl::ascii_isupper(e.country[1])),
      where);
}

}  // namespace fuzz
}  // namespace kpistream

#endif  // KPISTREAM_TESTS_FUZZ_FUZZ_CHECK_H_
