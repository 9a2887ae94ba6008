// Consumer: the engine's consumer-group member. Reads the input topics in
// batches; offsets are never auto-committed: the engine commits them with
// the outputs they led to (Producer::CommitTransaction, or CommitSync after
// a flush with at-least-once).
//
// Group membership: cooperative-sticky assignment by default (partitions
// move one by one; the others keep being processed) and static membership
// when an instance id is given (`group.instance.id`: a restarted instance
// gets its partitions back without a rebalance).
//
// Assignment changes are reported through the Listener on the thread that
// calls Poll(): OnAssigned() returns where to start each new partition (the
// engine restores its state first); OnRevoked() is called before partitions
// are given up, so their work can be committed; OnLost() when they were
// taken away without that chance (e.g. the session timed out).
// Not thread-safe: one owner.
#ifndef KPISTREAM_KAFKA_CONSUMER_H_
#define KPISTREAM_KAFKA_CONSUMER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kafka/client.h"
#include "kafka/record.h"

namespace kpistream::kafka {

using Offsets = std::vector<std::pair<TopicPartition, int64_t>>;

class Consumer {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // The offset to start each partition at; a partition left out (or a
    // negative offset) starts at the group's committed offset.
    virtual std::map<TopicPartition, int64_t> OnAssigned(
        const std::vector<TopicPartition>& partitions) = 0;
    virtual void OnRevoked(const std::vector<TopicPartition>& partitions) = 0;
    virtual void OnLost(const std::vector<TopicPartition>& partitions) = 0;
  };

  struct Options {
    std::string brokers;
    std::string group_id;
    std::string instance_id;  // static membership; empty: none
    std::string client_id = "kpistream";
    std::vector<std::string> topics;
    Properties properties;  // the user's, as-is
  };

  // `listener` must outlive the consumer.
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(
      const Options& options, Listener* listener);
  ~Consumer();

  // Up to `max` messages (possibly none), waiting at most `timeout`. Errors
  // are not messages: the latest is kept (last_error()).
  std::vector<Message> Poll(size_t max, absl::Duration timeout);

  // Messages between each offset (negative: none read yet, so the
  // partition's low watermark) and its partition's high watermark, as last
  // seen by the fetcher; partitions whose end is not known yet are left out.
  Offsets Lag(const Offsets& positions);

  // Synchronously commits `offsets` (next offsets to read).
  absl::Status CommitSync(const Offsets& offsets);

  void Pause(const std::vector<TopicPartition>& partitions);
  void Resume(const std::vector<TopicPartition>& partitions);

  // The latest consumer error (e.g. "127.0.0.1:9092/bootstrap: Connect to
  // ipv4#127.0.0.1:9092 failed: Connection refused") and when it happened;
  // empty when none.
  const std::string& last_error() const { return last_error_; }
  absl::Time last_error_at() const { return last_error_at_; }

  // Leaves the group (a static member does not: it only stops) and closes.
  void Close();

  rd_kafka_t* handle() { return rk_.get(); }

 private:
  Consumer() = default;
  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions,
                                void* opaque);
  static void ErrorCallback(rd_kafka_t* rk, int err, const char* reason,
                            void* opaque);
  void NoteError(std::string error);

  HandlePtr rk_;
  Listener* listener_ = nullptr;
  bool closed_ = false;
  std::string last_error_;
  absl::Time last_error_at_ = absl::InfinitePast();
};

// A librdkafka partition list from (partition, offset) pairs; the caller
// destroys it.
rd_kafka_topic_partition_list_t* ToPartitionList(const Offsets& offsets);

}  // namespace kpistream::kafka

#endif  // KPISTREAM_KAFKA_CONSUMER_H_
