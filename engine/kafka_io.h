// The Kafka implementations of a StreamThread's input, output and changelog
// (engine/stream_io.h), over kafka/.
#ifndef KPISTREAM_ENGINE_KAFKA_IO_H_
#define KPISTREAM_ENGINE_KAFKA_IO_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/stream_io.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/topic_reader.h"

namespace kpistream {

// How often a fenced Kafka client may be replaced: kMax times within
// kWindow; more is a misconfiguration (two processes with one
// processing.instance_id fencing each other), not a broker fault. A fence
// that a broker fault explains (a producer whose transaction outlived
// processing.transaction_timeout: its coordinator aborted it and bumped the
// epoch, as it does while an output partition's leader is down) is excused:
// not counted (an audit: a 3-node cluster's only replica of an output
// partition down for 80 s stopped the engine, "fenced 4 times within 5m:
// is another process running with the same processing.instance_id?").
class RenewalBudget {
 public:
  static constexpr int kMax = 3;
  static constexpr absl::Duration kWindow = absl::Minutes(5);
  // Counts a renewal at `now`, unless `excused`; false (and not counted)
  // when kMax were spent within kWindow before it. An excused one is
  // always allowed.
  bool Spend(absl::Time now, bool excused = false);
  // Renewals within the window, this one included, when Spend was refused.
  int refused_count() const { return static_cast<int>(spent_.size()) + 1; }
  // How long to wait before making the replacement Spend() just counted:
  // kFirstBackoff, doubled for each earlier renewal within the window.
  // Whoever fenced the client may still be initialising: librdkafka retries
  // a transactional InitProducerId every 500 ms while the coordinator
  // aborts the transaction in its way, and each retry fences the newest
  // holder of the id. Replaced at once, three replacements in a row were
  // fenced within 2 s, most likely so (DurabilityTest, once under load).
  static constexpr absl::Duration kFirstBackoff = absl::Seconds(1);
  absl::Duration Backoff() const;

 private:
  std::vector<absl::Time> spent_;
};

class KafkaStreamInput : public StreamInput, private kafka::Consumer::Listener {
 public:
  // `listener` outlives the input.
  static absl::StatusOr<std::unique_ptr<KafkaStreamInput>> Create(
      const kafka::Consumer::Options& options, StreamInput::Listener* listener);
  // Closes the consumer while the members its last callbacks reach are
  // still there (consumer_ would otherwise go after them).
  ~KafkaStreamInput() override;

  void Poll(size_t max, absl::Duration timeout,
            absl::FunctionRef<void(const kafka::Record&)> sink) override;
  absl::StatusOr<Offsets> Seek(const Offsets& offsets) override;
  void Pause(const std::vector<TopicPartition>& partitions) override {
    consumer_->Pause(partitions);
  }
  absl::Status CommitSync(const Offsets& offsets) override {
    return consumer_->CommitSync(offsets);
  }
  void Lag(const Offsets& positions, std::vector<int64_t>* lags) override {
    consumer_->Lag(positions, lags);
  }
  absl::StatusOr<Offsets> EndOffsets(
      const std::vector<TopicPartition>& partitions,
      absl::Duration timeout) override;
  absl::StatusOr<Offsets> StartOffsets(
      const std::vector<TopicPartition>& partitions,
      absl::Duration timeout) override;
  int64_t FirstRetained(const TopicPartition& tp) const override {
    return consumer_->FirstRetained(tp);
  }
  int64_t ReachedEnd(const TopicPartition& tp) const override {
    return consumer_->ReachedEnd(tp);
  }
  std::string last_error() const override { return consumer_->last_error(); }
  absl::Time last_error_at() const override {
    return consumer_->last_error_at();
  }
  void Close() override { consumer_->Close(); }
  absl::Status fatal() const override { return fatal_; }
  int64_t GroupOffset(const TopicPartition& tp) const override {
    auto it = group_offsets_.find(tp);
    return it == group_offsets_.end() ? -1 : it->second.offset;
  }
  bool GroupOffsetHasState(const TopicPartition& tp) const override {
    auto it = group_offsets_.find(tp);
    return it != group_offsets_.end() && it->second.with_state;
  }

  kafka::Consumer* consumer() { return consumer_.get(); }
  // Created with Options::subscribe false: joins the group now.
  absl::Status Subscribe() { return consumer_->Subscribe(); }

 private:
  // A consumer in librdkafka's fatal state (a static member fenced: after
  // its session timed out in a broker outage, librdkafka 2.0 rejoins under a
  // new member id and the coordinator fences the instance id) is replaced by
  // a new one, as a restarted process would replace it: its partitions are
  // lost to the listener (the thread drops their uncommitted work) and the
  // new member gets them back through a rebalance. Beyond RenewalBudget (two
  // processes with one processing.instance_id) sets fatal().
  void RenewIfFatal();

  KafkaStreamInput() = default;
  // Where each of `partitions` starts without a checkpoint: the group's
  // committed offset, else the reset policy's (auto.offset.reset) offset.
  absl::StatusOr<std::map<TopicPartition, int64_t>> StartsOf(
      const std::vector<TopicPartition>& partitions, absl::Duration timeout);
  // How long OnAssigned() (inside the consumer's poll) waits for StartsOf.
  static constexpr absl::Duration kAssignLookupTimeout = absl::Seconds(10);
  std::map<TopicPartition, int64_t> OnAssigned(
      const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;
  void OnLost(const std::vector<TopicPartition>& partitions) override;

  kafka::Consumer::Options options_;
  std::unique_ptr<kafka::Consumer> consumer_;
  // Poll()'s messages, reused; empty between polls (after consumer_: a
  // message must not outlive its client).
  std::vector<kafka::Message> batch_;
  StreamInput::Listener* listener_ = nullptr;
  std::string reset_policy_ = "earliest";
  std::set<TopicPartition> assigned_;
  // The group's committed offsets StartsOf() read, of assigned partitions,
  // and whether the engine committed each (kafka::kCommitMetadata).
  struct GroupOffsetRead {
    int64_t offset = -1;
    bool with_state = false;
  };
  std::map<TopicPartition, GroupOffsetRead> group_offsets_;
  bool renewing_ = false;  // the old consumer's callbacks are not passed on
  RenewalBudget renewals_;
  absl::Status fatal_;
};

class KafkaStreamOutput : public StreamOutput {
 public:
  // A topic the output writes to, and the config key that names it.
  struct Topic {
    std::string key;  // e.g. "outputs.sessions.topic"
    std::string name;
  };

  // `input` (whose group the offsets are committed for) outlives the output.
  // Before it returns, its producer asks the brokers where `topics`'
  // partitions are (again when a fenced one is replaced, not at Restart()):
  // a record for a topic the producer knows nothing of waits in its queue
  // until it does, and the commit that flushes it waits too. In the latency
  // probe, the commit when the reorder buffer first released events took
  // 0.92-0.95 s in both threads without this, under 30 ms in the commits before
  // it (BENCHMARKS.md run SF). A topic it cannot learn about (missing, not
  // authorized) is a warning naming it, and one of UnknownTopics() until
  // the brokers know it: the stream thread reads nothing meanwhile.
  static absl::StatusOr<std::unique_ptr<KafkaStreamOutput>> Create(
      const kafka::Producer::Options& options, KafkaStreamInput* input,
      std::vector<Topic> topics);

  bool transactional() const override { return producer_->transactional(); }
  // A producer in librdkafka's fatal state (fenced after the broker timed
  // its transaction out, e.g. in a broker outage longer than
  // transaction.timeout.ms) is replaced by a new one with the same
  // transactional.id (SPEC §10: the engine lives through broker faults):
  // records produced meanwhile are dropped and the next Commit() returns
  // AbortedError, so the stream thread restores its partitions and reads
  // them again, as after any aborted transaction. Beyond RenewalBudget (two
  // processes with one processing.instance_id fencing each other) is an error.
  // At-least-once (no transaction to abort), a fatal producer is an error.
  // Exactly-once: a record the producer cannot deliver (a delivery report's
  // error, or refused because the transaction already failed: a missing
  // output topic, no write permission, a message timeout in an outage) does
  // not stop the thread (SPEC §10): the records after it are dropped and the
  // next Commit() aborts the transaction and returns AbortedError, so the
  // stream thread restores its partitions and reads them again, as after a
  // rebalance. Other refusals (a record larger than message.max.bytes, a
  // partition the topic does not have) are errors, as before: they would
  // fail the same way every time the work is redone (refusals librdkafka
  // makes itself; one the broker makes, such as a topic's
  // max.message.bytes or a missing write permission, is a failed delivery,
  // redone after a wait that grows to 30 s until it goes through).
  // At-least-once, a record not delivered (given up after
  // message.timeout.ms, refused by the broker) likewise drops the records
  // after it, and the next Flush() returns AbortedError: the stream thread
  // calls Restart() and reads again from its last checkpoint.
  absl::Status Produce(absl::string_view topic, absl::string_view key,
                       std::optional<absl::string_view> value,
                       const Headers& headers, int32_t partition) override;
  absl::Status Commit(const Offsets& offsets) override;
  // At-least-once: Restart().
  absl::Status Abort() override;
  // A fatal producer's failure names its cause (at-least-once: the thread
  // stops). At-least-once, AbortedError: a record was not delivered (see
  // Produce()).
  absl::Status Flush() override;
  // At-least-once: drops what is queued and replaces the producer (the
  // dropped records leave a gap in the idempotent producer's sequence).
  absl::Status Restart() override;
  void DropQueued() override { producer_->DropQueued(); }
  int queued() const override { return producer_->queued(); }
  void ServeEvents() override { producer_->Poll(); }
  std::string last_error() const override { return producer_->last_error(); }
  absl::Time last_error_at() const override {
    return producer_->last_error_at();
  }
  void SetWaitCallback(std::function<void()> f) override {
    on_wait_ = std::move(f);
    producer_->set_on_wait(on_wait_);
  }
  void SetGiveUpCallback(std::function<bool()> f) override {
    give_up_ = std::move(f);
    producer_->set_give_up(give_up_);
  }
  size_t max_record_bytes() const override {
    return producer_->max_message_bytes();
  }
  std::map<int32_t, int64_t> TakeChangelogOffsets() override {
    return producer_->TakeDeliveredOffsets();
  }
  std::string UnknownTopics(absl::Time now) override;

 private:
  KafkaStreamOutput() = default;
  // After `status` failed: when the producer is fatal, a new one (or the
  // error, when renewing fails or happens too often). OK when not fatal.
  absl::Status RenewIfFatal(const absl::Status& status);
  // Has the producer learn where topics_' partitions are (see Create()).
  void LearnTopics();
  bool IsUnknown(const std::string& name) const;  // in unknown_
  // Adds `topic` to unknown_ unless it is there.
  void MarkUnknown(const Topic& topic, absl::string_view why);
  // Asks the brokers about every topic not in unknown_ yet (1 s each, up
  // to the first they do not answer about), and adds those they say do not
  // exist.
  void AskAboutTopics();

  kafka::Producer::Options options_;
  std::vector<Topic> topics_;
  // The topics LearnTopics() or UnknownTopics() could not learn about, with
  // the brokers' answer, and when they were last asked.
  std::vector<std::pair<Topic, std::string>> unknown_;
  absl::Time unknown_asked_at_ = absl::InfinitePast();
  std::unique_ptr<kafka::Producer> producer_;
  KafkaStreamInput* input_ = nullptr;
  std::string renewed_because_;  // set until the next Commit() reports it
  // Why a record of the open transaction was not delivered (see Produce());
  // set until the next Commit() or Abort() aborts the transaction. At
  // least once: why a record was not delivered, until Restart().
  std::string undelivered_because_;
  RenewalBudget renewals_;
  std::function<void()> on_wait_;  // given to every producer
  std::function<bool()> give_up_;  // likewise
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
  const std::string& topic() const override { return options_.topic; }
  absl::StatusOr<ChangelogEnds> Ends(
      const std::vector<int32_t>& partitions) override;
  absl::Status Read(
      const std::map<int32_t, int64_t>& from,
      absl::FunctionRef<void(const ChangelogEntry&)> record) override;

 private:
  KafkaChangelog() = default;
  kafka::TopicReadOptions options_;
  int partitions_ = 0;
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_KAFKA_IO_H_
