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
//   value_truncated_from  only on a dead letter whose value is the first
//                     bytes of the record's (FitDeadLetterValue): the whole
//                     value's size; the source_* headers find it in full
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

// What of `value` a dead letter can carry in a record of at most
// `max_record_bytes` (key, value, headers and framing; the producer's
// message.max.bytes): all of it when it fits, else its first bytes, and
// then a header value_truncated_from (the whole value's size) is appended
// to *headers. A record larger than the engine's producer takes must not
// stop the engine (SPEC §10): its input may allow more than that.
absl::string_view FitDeadLetterValue(absl::string_view key,
                                     absl::string_view value,
                                     size_t max_record_bytes,
                                     KafkaHeaders* headers);

// What the engine's own reasons mean ("" for others).
absl::string_view DefaultDetail(absl::string_view reason);

// `text` made fit for a header or a log line: invalid UTF-8 bytes become
// U+FFFD, control characters spaces; cut at a character boundary to at most
// `max_bytes` bytes (>= 3), the cut marked by "...".
std::string SanitizeDetail(absl::string_view text, size_t max_bytes);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_DEAD_LETTER_H_
