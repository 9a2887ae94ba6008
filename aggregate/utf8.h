// UTF-8 as the outputs need it (Prometheus label values, protobuf string
// fields, JSON): valid sequences only, none overlong, no surrogate, nothing
// beyond U+10FFFF. One decoder for the config's label values, page URLs
// and dead-letter details.
#ifndef KPISTREAM_AGGREGATE_UTF8_H_
#define KPISTREAM_AGGREGATE_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace kpistream {

// Length of the valid UTF-8 sequence at the start of `s` (1 to 4), or 0
// (none, or `s` is empty).
size_t Utf8SequenceLength(absl::string_view s);

bool IsValidUtf8(absl::string_view s);

// Valid UTF-8 holding no control character (C0, DEL, C1).
bool IsPrintableUtf8(absl::string_view s);

// `s`'s first `max_bytes` bytes at most, cut before a character that would
// not fit whole (`s` is UTF-8): a prefix of `s`.
absl::string_view CutUtf8(absl::string_view s, size_t max_bytes);

// `s` with every byte that does not belong to a valid sequence written as
// %XX (upper-case hex), as a URL escapes it: valid UTF-8, and `s` itself
// when it is valid already. For text read from sources that promise no
// encoding (access-log lines).
std::string EscapeInvalidUtf8(absl::string_view s);

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_UTF8_H_
