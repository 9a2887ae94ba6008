// Record: a neutral, read-only view of one consumed Kafka record (topic,
// partition, offset, key, value, headers, timestamp). ingest/ and the
// engine's pipelines see Records, never librdkafka types; aggregate/ sees
// only Events.
#ifndef KPISTREAM_KAFKA_RECORD_H_
#define KPISTREAM_KAFKA_RECORD_H_

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace kpistream {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  bool operator<(const TopicPartition& o) const {
    return topic != o.topic ? topic < o.topic : partition < o.partition;
  }
  bool operator==(const TopicPartition& o) const {
    return topic == o.topic && partition == o.partition;
  }
  template <typename H>
  friend H AbslHashValue(H h, const TopicPartition& tp) {
    return H::combine(std::move(h), tp.topic, tp.partition);
  }
};

namespace kafka {

// Views into the consumed message (or the test's buffers): valid while the
// message lives.
struct Record {
  absl::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  // An absent key (null) and an empty one are told apart.
  bool has_key = false;
  absl::string_view key;
  absl::string_view value;
  int64_t timestamp_ms = -1;  // -1: none
  // The message it views, for its headers; null in tests.
  const rd_kafka_message_t* message = nullptr;

  static Record Of(const rd_kafka_message_t* m) {
    Record r;
    r.topic = rd_kafka_topic_name(m->rkt);
    r.partition = m->partition;
    r.offset = m->offset;
    r.has_key = m->key != nullptr;
    r.key = absl::string_view(static_cast<const char*>(m->key), m->key_len);
    r.value = absl::string_view(static_cast<const char*>(m->payload), m->len);
    rd_kafka_timestamp_type_t type;
    r.timestamp_ms = rd_kafka_message_timestamp(m, &type);
    r.message = m;
    return r;
  }

  // The last header named `name`, if any.
  std::optional<absl::string_view> Header(const char* name) const {
    if (message == nullptr) return std::nullopt;
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(message, &headers) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return std::nullopt;
    }
    const void* value = nullptr;
    size_t size = 0;
    if (rd_kafka_header_get_last(headers, name, &value, &size) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return std::nullopt;
    }
    return absl::string_view(static_cast<const char*>(value), size);
  }
};

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
// Owns one consumed message.
using Message = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

}  // namespace kafka
}  // namespace kpistream

#endif  // KPISTREAM_KAFKA_RECORD_H_
