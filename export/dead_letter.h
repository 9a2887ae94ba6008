// What a dead letter carries besides the original key and bytes (SPEC §5):
// Kafka headers saying why the record was not used and where it came from.
//
//   reason            a kpistream_events_invalid_total reason, or bot, late,
//                     duplicate
//   detail            the decoder's message ("not a valid JSON WebEvent:
//                     ..."), or for bot, late and duplicate what the reason
//                     means; valid UTF-8 on one line, at most
//                     kDeadLetterDetailMaxBytes
//   source_topic, source_partition, source_offset
#ifndef KPISTREAM_EXPORT_DEAD_LETTER_H_
#define KPISTREAM_EXPORT_DEAD_LETTER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace kpistream {

inline constexpr size_t kDeadLetterDetailMaxBytes = 256;

using KafkaHeaders = std::vector<std::pair<std::string, std::string>>;

// The headers above, in that order. An empty `detail` is replaced by
// DefaultDetail(reason).
KafkaHeaders DeadLetterHeaders(absl::string_view reason,
                               absl::string_view detail,
                               absl::string_view source_topic,
                               int32_t source_partition, int64_t source_offset);

// What the engine's own reasons mean ("" for others).
absl::string_view DefaultDetail(absl::string_view reason);

// `text` made fit for a header or a log line: invalid UTF-8 bytes become
// U+FFFD, control characters spaces; cut at a character boundary to at most
// `max_bytes` bytes (>= 3), the cut marked by "...".
std::string SanitizeDetail(absl::string_view text, size_t max_bytes);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_DEAD_LETTER_H_
