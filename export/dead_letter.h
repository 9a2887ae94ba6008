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
//   value_truncated_from, key_truncated_from  only on a dead letter whose
//                     value (key) is the first bytes of the record's
//                     (FitDeadLetter): its whole size; the source_* headers
//                     find the record in full
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

// Room kept for librdkafka's framing of a record and of its headers, which
// takes far less (rd_kafka_msg_max_wire_size), when the engine sizes a
// record against the producer's message.max.bytes.
inline constexpr size_t kRecordFramingBytes = 1024;

// Fits a dead letter into a record of at most `max_record_bytes` (key,
// value, headers and framing; the producer's message.max.bytes): a record
// larger than the engine's producer takes must not stop the engine (SPEC
// §10), and its input may allow more. When the key and value do not fit,
// the value is cut to its first bytes and a header value_truncated_from
// (its whole size) is appended to *headers; when the key alone does not,
// it is cut too (key_truncated_from) and the value left empty.
void FitDeadLetter(size_t max_record_bytes, absl::string_view* key,
                   absl::string_view* value, KafkaHeaders* headers);

// What the engine's own reasons mean ("" for others).
absl::string_view DefaultDetail(absl::string_view reason);

// `text` made fit for a header or a log line: invalid UTF-8 bytes become
// U+FFFD, control characters spaces; cut at a character boundary to at most
// `max_bytes` bytes (>= 3), the cut marked by "...".
std::string SanitizeDetail(absl::string_view text, size_t max_bytes);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_DEAD_LETTER_H_
