// Fuzz target: the combined_log decoder (ingest/combined_log.h, through
// EventDecoder). The input is one access-log line; its length picks whether
// the input has a `host` (page URLs then absolute). Asserts, for any bytes:
//  - the decoder's contract (fuzz_check.h);
//  - an accepted line is a PAGE_VIEW of the configured site with the
//    visitor_id "h-" and the event_id "l-" followed by 16 hex digits, and,
//    with a host, a page URL on that host;
//  - the same outcome and Event when the same decoder decodes it again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "ingest/event_decoder.h"
#include "tests/fuzz/decode_check.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/ingest/json_differential.h"

namespace kpistream {
namespace {

bool IsStableId(absl::string_view id, absl::string_view prefix) {
  if (id.size() != prefix.size() + 16 || !absl::StartsWith(id, prefix)) {
    return false;
  }
  for (char c : id.substr(prefix.size())) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) return false;
  }
  return true;
}

void Run(const std::string& input) {
  static auto* with_host = new EventDecoder(
      InputFormat::kCombinedLog, fuzz::kSkew, "www", "www.example.com");
  static auto* without_host =
      new EventDecoder(InputFormat::kCombinedLog, fuzz::kSkew, "www");
  const bool host = input.size() % 2 == 0;
  EventDecoder* decoder = host ? with_host : without_host;
  Event first;
  const DecodeResult r = fuzz::DecodeAndCheck(decoder, input, &first);
  if (!r.ok) return;
  const std::string where =
      absl::StrCat("line \"", absl::CHexEscape(input), "\"");
  KPISTREAM_FUZZ_CHECK(first.type == EventType::kPageView, where);
  KPISTREAM_FUZZ_CHECK(first.site_id == "www", where);
  KPISTREAM_FUZZ_CHECK(IsStableId(first.visitor_id, "h-"), where);
  KPISTREAM_FUZZ_CHECK(IsStableId(first.event_id, "l-"), where);
  if (host) {
    KPISTREAM_FUZZ_CHECK(
        absl::StartsWith(first.page_url, "https://www.example.com"), where);
  }
}

}  // namespace
}  // namespace kpistream

KPISTREAM_FUZZ_TARGET(kpistream::Run)
