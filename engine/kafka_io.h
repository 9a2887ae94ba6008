// The Kafka implementations of a StreamThread's input, output and changelog
// (engine/stream_io.h), over kafka/.
#ifndef KPISTREAM_ENGINE_KAFKA_IO_H_
#define KPISTREAM_ENGINE_KAFKA_IO_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/stream_io.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/topic_reader.h"

namespace kpistream {

class KafkaStreamInput : public StreamInput, private kafka::Consumer::Listener {
 public:
  // `listener` outlives the input.
  static absl::StatusOr<std::unique_ptr<KafkaStreamInput>> Create(
      const kafka::Consumer::Options& options, StreamInput::Listener* listener);

  void Poll(size_t max, absl::Duration timeout,
            absl::FunctionRef<void(const kafka::Record&)> sink) override;
  absl::StatusOr<Offsets> Seek(const Offsets& offsets) override;
  absl::Status CommitSync(const Offsets& offsets) override {
    return consumer_->CommitSync(offsets);
  }
  Offsets Lag(const Offsets& positions) override {
    return consumer_->Lag(positions);
  }
  absl::StatusOr<Offsets> EndOffsets(
      const std::vector<TopicPartition>& partitions,
      absl::Duration timeout) override;
  std::string last_error() const override { return consumer_->last_error(); }
  absl::Time last_error_at() const override {
    return consumer_->last_error_at();
  }
  void Close() override { consumer_->Close(); }

  kafka::Consumer* consumer() { return consumer_.get(); }

 private:
  KafkaStreamInput() = default;
  std::map<TopicPartition, int64_t> OnAssigned(
      const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;
  void OnLost(const std::vector<TopicPartition>& partitions) override;

  std::unique_ptr<kafka::Consumer> consumer_;
  StreamInput::Listener* listener_ = nullptr;
  std::string reset_policy_ = "earliest";
};

class KafkaStreamOutput : public StreamOutput {
 public:
  // `input` (whose group the offsets are committed for) outlives the output.
  static absl::StatusOr<std::unique_ptr<KafkaStreamOutput>> Create(
      const kafka::Producer::Options& options, KafkaStreamInput* input);

  bool transactional() const override { return producer_->transactional(); }
  absl::Status Produce(absl::string_view topic, absl::string_view key,
                       std::optional<absl::string_view> value,
                       const Headers& headers, int32_t partition) override {
    return producer_->Produce(topic, key,
                              value ? *value : absl::string_view(), headers,
                              partition);
  }
  absl::Status Commit(const Offsets& offsets) override {
    return producer_->CommitTransaction(input_->consumer(), offsets);
  }
  absl::Status Abort() override { return producer_->AbortTransaction(); }
  absl::Status Flush() override { return producer_->Flush(); }
  int queued() const override { return producer_->queued(); }

 private:
  KafkaStreamOutput() = default;
  std::unique_ptr<kafka::Producer> producer_;
  KafkaStreamInput* input_ = nullptr;
};

class KafkaChangelog : public ChangelogSource {
 public:
  // Looks the topic up (never auto-creating it); when it is missing,
  // creates it compacted with `create_partitions` partitions, as Kafka
  // Streams does with its internal topics. An error names the topic, what
  // failed and what to do.
  static absl::StatusOr<std::unique_ptr<KafkaChangelog>> Open(
      const kafka::TopicReadOptions& options, int create_partitions);

  int partitions() const override { return partitions_; }
  absl::Status Read(
      const std::vector<int32_t>& partitions,
      absl::FunctionRef<void(absl::string_view, absl::string_view, bool)>
          record) override;

 private:
  KafkaChangelog() = default;
  kafka::TopicReadOptions options_;
  int partitions_ = 0;
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_KAFKA_IO_H_
