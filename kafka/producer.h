// Producer: the engine's producer for every output (sessions, KPI
// snapshots, dead letters, the state changelog, the repartition topic).
//
// Exactly-once (a transactional.id is given): every record produced between
// BeginTransaction() and CommitTransaction() becomes visible to
// read_committed consumers atomically with the input offsets passed to
// CommitTransaction(); a crash before the commit aborts both. The
// transactional.id is stable per instance (and stream thread), so a
// restarted instance fences its predecessor and aborts its open transaction
// at once; a dead instance's transaction is aborted by the broker after
// `transaction.timeout.ms` (10 s by default here, as Kafka Streams sets it).
//
// At-least-once: Flush() waits for every record to be acknowledged, after
// which the caller commits the input offsets.
//
// Memory is bounded: when the local queue is full (a slow or unreachable
// output), Produce() blocks, serving delivery reports, until there is room;
// the caller stops consuming meanwhile.
//
// Delivery failures are remembered; the next Produce()/Flush()/
// CommitTransaction() returns the first one (naming the topic; see
// IsDeliveryFailure()).
// Not thread-safe: one owner.
#ifndef KPISTREAM_KAFKA_PRODUCER_H_
#define KPISTREAM_KAFKA_PRODUCER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kafka/client.h"
#include "kafka/consumer.h"

namespace kpistream::kafka {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Whether `status` (from Produce(), Flush() or CommitTransaction()) is a
// record's failed delivery (its delivery report's error: given up after
// message.timeout.ms, or refused by the broker), not a refusal of the call
// itself. Purged records (DropQueued(), an aborted transaction) are none.
bool IsDeliveryFailure(const absl::Status& status);

// librdkafka's message.max.bytes where the user's kafka.properties set none.
inline constexpr size_t kDefaultMessageMaxBytes = 1000000;

// The partition of `partitions` (> 0) that librdkafka's default partitioner
// (consistent_random) sends a non-empty `key` to: CRC32 of the key modulo
// the count. For records whose partition must not depend on the producer's
// settings (the repartition topic: a `partitioner` in kafka.properties
// reached it only where the engine set no compression of its own).
int32_t KeyPartition(absl::string_view key, int32_t partitions);

class Producer {
 public:
  struct Options {
    std::string brokers;
    std::string client_id = "kpistream";
    Properties properties;         // the user's, as-is
    std::string transactional_id;  // empty: at-least-once
    absl::Duration transaction_timeout = absl::Seconds(10);
    // A commit the brokers do not confirm is waited for in attempts this
    // long (librdkafka resumes it at each), the wait callback called
    // between them, at most commit_timeout in all.
    absl::Duration commit_attempt_timeout = absl::Seconds(5);
    absl::Duration commit_timeout = absl::Minutes(2);
    // Asked between the attempts to initialise transactions: true (a stop
    // requested) gives up.
    std::function<bool()> give_up;
    // Transactions are initialised within this long (retriable errors
    // retried), else Create() fails. A replacement of a fenced producer
    // waits on (InfiniteDuration) while the coordinator still completes the
    // old one's transaction (CONCURRENT_TRANSACTIONS for as long as an
    // output partition is below min.insync.replicas: an audit's process
    // exited 35 s after a broker came back), calling `on_wait` between
    // attempts.
    absl::Duration init_timeout = absl::Seconds(60);
    std::function<void()> on_wait;
    // The records of this topic acknowledged since the last
    // TakeDeliveredOffsets() are tracked (the state changelog: the local
    // store remembers how far it mirrors it).
    std::string tracked_topic;
    // librdkafka topic-level properties (e.g. compression.type) of some
    // topics, over what the client's properties give every topic.
    std::map<std::string, Properties> topic_properties;
  };

  static absl::StatusOr<std::unique_ptr<Producer>> Create(
      const Options& options);
  ~Producer();

  bool transactional() const { return transactional_; }
  // The producer is in librdkafka's fatal state (e.g. fenced: the broker
  // aborted its transaction after transaction.timeout.ms, or another
  // producer with its transactional.id started): it can do nothing more; a
  // new one must be created. Empty when not.
  std::string FatalError() const;

  // Waits (at most `timeout`) until the brokers have told the producer
  // where `topic`'s partitions are: a record produced before that waits in
  // the producer's queue meanwhile (loadgen paces from here). NotFound when
  // the brokers answer that they do not know it, after asking again for
  // `creation_wait`: brokers that create a topic on request (Apache Kafka's
  // default, auto.create.topics.enable=true; librdkafka's producer asks for
  // it) answer the request that creates it "Unknown topic or partition".
  absl::Status AwaitTopic(absl::string_view topic, absl::Duration timeout,
                          absl::Duration creation_wait = absl::ZeroDuration());

  // Queues one record (copied). A null `value` (data() == nullptr) is a
  // tombstone; `partition` -1 lets the partitioner choose. Opens the
  // transaction first when none is open. OutOfRangeError: the record is
  // larger than max_message_bytes() (nothing queued; the producer goes on).
  // NotFoundError: the brokers said the topic does not exist (deleted).
  absl::Status Produce(absl::string_view topic, absl::string_view key,
                       absl::string_view value, const Headers& headers = {},
                       int32_t partition = -1);

  absl::Status BeginTransaction();
  // Commits the open transaction together with `offsets` (next offsets to
  // read) for the group of `consumer`. OK when there was nothing to commit.
  // AbortedError: the broker refused in a way that allows aborting (a group
  // rebalance, a timeout); the transaction was aborted, nothing of it is
  // visible, and the caller must redo its work from the last commit.
  // Any other error is fatal (e.g. fenced by a newer instance).
  // A commit with nothing produced since the last one, and no offsets or
  // the offsets of this producer's last successful commit, writes nothing
  // new: it returns OK without a transaction (as Kafka Streams commits
  // only tasks with something to commit): an idle stream thread ran an
  // offsets-only transaction at every commit interval (BENCHMARKS.md, run
  // BO).
  absl::Status CommitTransaction(Consumer* consumer, const Offsets& offsets);
  // Transactions committed so far.
  uint64_t transactions_committed() const { return transactions_committed_; }
  // Aborts the open transaction, if any.
  absl::Status AbortTransaction();

  // Waits until every queued record is acknowledged.
  absl::Status Flush(absl::Duration timeout = absl::Seconds(30));
  // Drops the records not sent to a broker yet (their delivery reports
  // say so; requests in flight are not recalled). Not for a producer that
  // goes on: its idempotent sequence has a gap then.
  void DropQueued() { rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE); }

  // Serves delivery reports without blocking.
  void Poll() { rd_kafka_poll(rk_.get(), 0); }
  // Called about every 50 ms while Produce() waits for room in the full
  // queue (backpressure), so that the caller can say it is alive.
  void set_on_wait(std::function<void()> f) { on_wait_ = std::move(f); }
  // Asked between the attempts of a commit or an abort the brokers do not
  // confirm (a stop requested): true gives up at once, with an error that
  // says the transaction is resolved when the transactional.id starts
  // again.
  void set_give_up(std::function<bool()> f) { give_up_ = std::move(f); }

  // The highest offset acknowledged per partition of the tracked topic
  // since the last call (after a commit or a flush: every record of it).
  std::map<int32_t, int64_t> TakeDeliveredOffsets() {
    return std::exchange(delivered_offsets_, {});
  }

  // message.max.bytes in effect: the most a record may take on the wire,
  // key, value, headers and framing included.
  size_t max_message_bytes() const { return max_message_bytes_; }

  // Records acknowledged by the broker so far.
  uint64_t delivered() const { return delivered_; }
  // Records queued and not yet acknowledged.
  int queued() const { return rd_kafka_outq_len(rk_.get()); }
  bool in_transaction() const { return in_transaction_; }
  // When the open transaction (or, none open, the last one) began;
  // InfinitePast() before the first.
  absl::Time transaction_began_at() const { return transaction_began_at_; }
  // A record of the open transaction failed (its delivery report, or
  // librdkafka refused a record for it): the transaction can only be
  // aborted. Cleared by the abort.
  bool transaction_failed() const { return transaction_failed_; }

  // The client's last error event (e.g. "2/2 brokers are down
  // (_ALL_BROKERS_DOWN)", a broker's "Connection refused (_TRANSPORT)"), as
  // Consumer::last_error(), and when it came; logged as librdkafka logs an
  // error event with no callback. Served while the producer is polled or
  // flushed.
  std::string last_error() const;
  absl::Time last_error_at() const;

 private:
  Producer() = default;
  // AwaitTopic()'s one metadata request.
  absl::Status AskAboutTopic(absl::string_view topic, absl::Duration timeout);
  static void DeliveryCallback(rd_kafka_t* rk, const rd_kafka_message_t* m,
                               void* opaque);
  static void ErrorCallback(rd_kafka_t* rk, int err, const char* reason,
                            void* opaque);
  absl::Status TakeDeliveryError();
  // Aborts the transaction when `error` allows it (AbortedError), else
  // returns it as a failure. Takes ownership of `error`.
  absl::Status AbortOrFail(absl::string_view what, rd_kafka_error_t* error);

  struct TopicDeleter {
    void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
  };
  using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
  // The handle of `topic`, made on first use (with the client's topic
  // properties) unless Create() made it with its own.
  rd_kafka_topic_t* TopicHandle(absl::string_view topic);

  HandlePtr rk_;
  // Declared after rk_: destroyed before it. A handle per topic produced to
  // (a few): rd_kafka_producev() by name looks the topic up on every record.
  std::vector<std::pair<std::string, TopicPtr>> topics_;
  bool transactional_ = false;
  bool in_transaction_ = false;
  absl::Time transaction_began_at_ = absl::InfinitePast();
  // The offsets of the last successful commit (an abort leaves the group's
  // offsets as they were, and so this).
  Offsets committed_offsets_;
  uint64_t transactions_committed_ = 0;
  bool transaction_failed_ = false;
  uint64_t delivered_ = 0;
  size_t max_message_bytes_ = kDefaultMessageMaxBytes;  // until read
  std::string tracked_topic_;
  std::map<int32_t, int64_t> delivered_offsets_;
  std::string delivery_error_;
  mutable std::mutex error_mu_;
  std::string last_error_;                           // guarded by error_mu_
  absl::Time last_error_at_ = absl::InfinitePast();  // guarded by error_mu_
  std::function<void()> on_wait_;
  std::function<bool()> give_up_;
  absl::Duration commit_attempt_timeout_;
  absl::Duration commit_timeout_;
};

}  // namespace kpistream::kafka

#endif  // KPISTREAM_KAFKA_PRODUCER_H_
