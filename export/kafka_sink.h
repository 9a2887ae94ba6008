// KafkaSink: the engine's producer for the output topics (sessions, kpi,
// dead letters).
//
// With exactly-once (a transactional.id is given), every record produced
// between BeginTransaction() and CommitTransaction() becomes visible to
// read_committed consumers atomically with the input offsets passed to
// CommitTransaction(): a crash before the commit aborts both. With
// at-least-once, Flush() waits for every record to be acknowledged so the
// caller can then commit input offsets.
//
// Delivery failures are remembered; the next Flush()/CommitTransaction()
// returns the first one (naming the topic) and the caller stops.
// Not thread-safe: one owner.
#ifndef KPISTREAM_EXPORT_KAFKA_SINK_H_
#define KPISTREAM_EXPORT_KAFKA_SINK_H_

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ingest/kafka_source.h"

namespace kpistream {

class KafkaSink {
 public:
  struct Options {
    std::string brokers;
    std::map<std::string, std::string> properties;  // librdkafka, as-is
    std::string transactional_id;                   // empty: at-least-once
  };

  static absl::StatusOr<std::unique_ptr<KafkaSink>> Create(
      const Options& options);
  ~KafkaSink();

  bool transactional() const { return transactional_; }

  // Queues one record. Blocks (polling) while the local queue is full. A
  // value with data() == nullptr is a tombstone (null value); `partition`
  // -1 lets the partitioner choose.
  absl::Status Produce(
      absl::string_view topic, absl::string_view key, absl::string_view value,
      const std::vector<std::pair<std::string, std::string>>& headers = {},
      int32_t partition = -1);

  absl::Status BeginTransaction();
  // Commits the open transaction together with the consumer's `offsets`
  // (next offsets to read) for the group of `consumer`. When the broker
  // refuses it in a way that allows aborting (a group rebalance, a timeout),
  // the transaction is aborted and AbortedError returned: nothing of it is
  // visible and its input will be read again from the committed offsets.
  absl::Status CommitTransaction(
      rd_kafka_t* consumer,
      const std::vector<std::pair<TopicPartition, int64_t>>& offsets);

  // Waits until every queued record is acknowledged.
  absl::Status Flush();

  // Records acknowledged by the broker so far.
  uint64_t delivered() const { return delivered_; }

 private:
  KafkaSink() = default;
  static void DeliveryCallback(rd_kafka_t* rk, const rd_kafka_message_t* m,
                               void* opaque);
  absl::Status TakeDeliveryError();
  // Aborts the transaction when `error` allows it (AbortedError), else
  // returns it as a failure. Takes ownership of `error`.
  absl::Status AbortOrFail(absl::string_view what, rd_kafka_error_t* error);

  rd_kafka_t* rk_ = nullptr;
  bool transactional_ = false;
  bool in_transaction_ = false;
  uint64_t delivered_ = 0;
  std::string delivery_error_;
};

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_KAFKA_SINK_H_
