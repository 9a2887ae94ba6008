// KafkaSource: the engine's consumer-group member (librdkafka). Reads the
// input topics in batches with manual offset management: offsets are only
// committed by the engine, after the outputs that depend on them are durable
// (KafkaSink::CommitTransaction or CommitSync).
//
// Partition assignment changes are reported through the Listener on the
// thread that calls Poll(); for a revocation the engine must finish and
// commit the revoked partitions' work before the callback returns.
#ifndef KPISTREAM_INGEST_KAFKA_SOURCE_H_
#define KPISTREAM_INGEST_KAFKA_SOURCE_H_

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

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
};

// Owns one consumed message.
struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using KafkaMessage = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

class KafkaSource {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnAssigned(const std::vector<TopicPartition>& partitions) = 0;
    // Called before the partitions are given up.
    virtual void OnRevoked(const std::vector<TopicPartition>& partitions) = 0;
  };

  struct Options {
    std::string brokers;
    std::string group_id;
    std::vector<std::string> topics;
    std::map<std::string, std::string> properties;  // librdkafka, as-is
  };

  // `listener` must outlive the source.
  static absl::StatusOr<std::unique_ptr<KafkaSource>> Create(
      const Options& options, Listener* listener);
  ~KafkaSource();

  // Returns up to `max` messages (possibly none) waiting at most `timeout`.
  // Error events (not messages) are logged and skipped.
  std::vector<KafkaMessage> Poll(size_t max, absl::Duration timeout);

  // Next offset to read for each assigned partition (only partitions that
  // have a valid position).
  std::vector<std::pair<TopicPartition, int64_t>> Positions();

  // Messages between the position and the high watermark, per partition.
  std::vector<std::pair<TopicPartition, int64_t>> Lag();

  // Synchronously commits `offsets` (next offsets to read).
  absl::Status CommitSync(
      const std::vector<std::pair<TopicPartition, int64_t>>& offsets);

  // Leaves the group (revokes through the Listener) and closes.
  void Close();

  rd_kafka_t* handle() { return rk_; }

 private:
  KafkaSource() = default;
  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions,
                                void* opaque);
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;
  Listener* listener_ = nullptr;
  bool closed_ = false;
};

// Builds a librdkafka partition list from (partition, offset) pairs.
rd_kafka_topic_partition_list_t* ToPartitionList(
    const std::vector<std::pair<TopicPartition, int64_t>>& offsets);

// Applies `properties` to `conf`; the error names the property (never its
// value, which may be a secret).
absl::Status ApplyKafkaProperties(
    rd_kafka_conf_t* conf,
    const std::map<std::string, std::string>& properties);

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_KAFKA_SOURCE_H_
