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
#include <set>
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
    // The memory this consumer may hold in fetched messages not yet
    // polled (FetchBufferProperties); 0: librdkafka's defaults.
    int64_t fetch_buffer = 0;
    // fetch.wait.max.ms unless the user's properties set it; zero:
    // librdkafka's default (500 ms). How long a broker may hold a Fetch
    // that finds no new records. Kafka answers on the first record that
    // comes; the embedded broker holds the Fetch for all of it whatever
    // comes meanwhile, so records that arrive just after it was sent wait
    // that long (at 50,000 events/s with 500 ms, they came in bursts of
    // half a second and p50 produce -> /metrics doubled).
    absl::Duration max_fetch_wait = absl::ZeroDuration();
    // Subscribes to `topics` at once; false: at Subscribe(), so that
    // several consumers of one process join their group together.
    bool subscribe = true;
    // Newly assigned partitions are paused until Resume(): a stream
    // thread's until its restore seeks them. What the consumer fetched
    // before the seek was dropped and fetched again, and held up to the
    // fetch buffer meanwhile (a restart's peak: ~300 MB of 551-631 MB with
    // the 512 MiB default, an audit).
    bool pause_new_partitions = false;
  };

  // `listener` must outlive the consumer.
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(
      const Options& options, Listener* listener);
  ~Consumer();

  // Subscribes to the options' topics (Options::subscribe false): the
  // group's join starts.
  absl::Status Subscribe();

  // Up to `max` messages (possibly none) into `*out` (emptied first: a
  // vector kept from poll to poll does not allocate once its capacity is
  // there), waiting at most `timeout`. Errors are not messages: the latest
  // is kept (last_error()).
  void Poll(size_t max, absl::Duration timeout, std::vector<Message>* out);

  // Messages between each offset (negative: none read yet, so the
  // partition's low watermark) and its partition's high watermark, as last
  // seen by the fetcher, into `(*lags)[i]` for `positions[i]`; -1 where the
  // partition's end is not known yet.
  // Where a partition was read to its end since its last seek (Sought():
  // a PARTITION_EOF event polled), reading counts from there if that is
  // further: the offsets between are transaction markers, which librdkafka
  // skips (a commit marker after an exactly-once producer's last record
  // was one message of lag for good).
  void Lag(const Offsets& positions, std::vector<int64_t>* lags);
  // The partitions were sought to `positions` (rd_kafka_seek_partitions):
  // ends reached before are forgotten; from now on every record handed out
  // is processed, so an end reached says so. Until a partition's first
  // seek since its assignment its ends are not kept.
  void Sought(const Offsets& positions);
  // Before a seek: its partitions' ends are not kept until Sought().
  void ForgetEnds(const Offsets& positions);
  // The end the partition was last read to since its last seek (every
  // record before it handed out); -1: none since (or not sought).
  int64_t ReachedEnd(const TopicPartition& tp) const {
    auto it = ends_.find(tp);
    return it == ends_.end() ? -1 : it->second;
  }
  // The partition's first retained offset as its last fetch response said
  // (the log start offset; no request); -1: not known.
  int64_t FirstRetained(const TopicPartition& tp) const;

  // Commits `offsets` (next offsets to read) and waits for the answer, at
  // most `timeout`: DeadlineExceededError then (the commit may still go
  // through). rd_kafka_commit()'s own wait has no end: in an outage of the
  // embedded broker a stream thread waited in it for 10 minutes and more
  // (an audit), where it failed with "Waiting for coordinator" other times.
  absl::Status CommitSync(const Offsets& offsets,
                          absl::Duration timeout = absl::Seconds(10));

  void Pause(const std::vector<TopicPartition>& partitions);
  void Resume(const std::vector<TopicPartition>& partitions);

  // The latest consumer error (e.g. "127.0.0.1:9092/bootstrap: Connect to
  // ipv4#127.0.0.1:9092 failed: Connection refused") and when it happened;
  // empty when none.
  const std::string& last_error() const { return last_error_; }
  absl::Time last_error_at() const { return last_error_at_; }

  // Leaves the group (a static member does not: it only stops) and closes.
  // Rebalance events still waiting in the consumer's queue are served first,
  // and partitions they assign are not reported to the listener (nor their
  // revocation by the close): librdkafka 2.0's close can hang forever when
  // it begins with an assignment not yet served (its issue #4527, fixed in
  // 2.4). Messages still waiting are dropped (their offsets are not
  // committed: the engine commits what it processed).
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
  std::vector<std::string> topics_;
  Listener* listener_ = nullptr;
  bool closed_ = false;  // set as Close() begins: assignments then are not
                         // reported
  std::set<TopicPartition> unreported_;  // assigned within Close()
  // The group's rebalance protocol, as librdkafka last said it (it says
  // nothing, NULL, while the consumer closes): the configured strategy's
  // until then.
  bool cooperative_ = true;
  bool pause_new_partitions_ = false;  // Options
  // Per partition sought since its assignment, the offset of its last
  // PARTITION_EOF event since (-1: none yet).
  std::map<TopicPartition, int64_t> ends_;
  std::string last_error_;
  absl::Time last_error_at_ = absl::InfinitePast();
};

// The librdkafka properties that bound a consumer's fetched-but-unpolled
// messages to about `bytes`, leaving out those `user` sets (the user wins).
//
// What librdkafka 2.0.2 holds, and so what these bound: a high-level
// consumer forwards every partition's fetch queue to its one consumer queue,
// and before each Fetch request it skips a partition while that queue holds
// queued.min.messages messages or queued.max.messages.kbytes of message
// payload (rd_kafka_toppar_fetch_decide; rd_kafka_q_len and rd_kafka_q_size
// follow the forwarding): the check is per consumer, whatever its number of
// partitions. One Fetch per broker connection is in flight, of at most
// fetch.max.bytes (compressed, decompressed on arrival; the broker returns
// one oversized batch when the first is larger); so a consumer holds at most
// the queue bound plus one response per broker leading its partitions,
// plus an op per message (~45 % on top of 437 B JSON events). Its share of
// `bytes`:
//   queued.max.messages.kbytes  bytes / 4  (payload waiting to be polled)
//   queued.min.messages         bytes / 4 / 256 B (the count binds for
//                               messages under 256 B, whose overhead
//                               outweighs them)
//   fetch.max.bytes             bytes / 16 (LZ4 JSON decompresses 4-8x),
//                               at least message.max.bytes as librdkafka
//                               requires
// max.partition.fetch.bytes is left at 1 MiB: fetch.max.bytes caps the
// response whatever the partition count.
//
// Also the rate: when a queue bound is reached, librdkafka 2.0.2's fetcher
// sleeps up to 1 s before it checks again (its broker thread's serve
// timeout; 2.2.0 added fetch.queue.backoff.ms for it), so a consumer reads
// at most about its queue bound per second: bytes / 4 must hold a second of
// input at the rate wanted (the embedded broker returns one batch per
// partition per Fetch, so there only the queue bound matters).
Properties FetchBufferProperties(int64_t bytes, const Properties& user);

// The engine's Options::max_fetch_wait for the shortest time between its
// commits (processing.min_commit_interval): a fifth of it, between 10 and
// 500 ms (librdkafka's default), so that a record waits in the broker a
// small part of what it waits for its commit.
absl::Duration MaxFetchWaitFor(absl::Duration min_commit_interval);

// A librdkafka partition list from (partition, offset) pairs; the caller
// destroys it.
rd_kafka_topic_partition_list_t* ToPartitionList(const Offsets& offsets);

// The metadata the engine commits its input offsets with. Its commits
// follow (at-least-once) or go with (exactly-once) the partitions'
// checkpoints in the changelog: an offset committed with it and no
// checkpoint to go with it means that the changelog lost the state; an
// offset set by hand (kafka-consumer-groups) carries none.
inline constexpr char kCommitMetadata[] = "kpistream";
// ToPartitionList, each partition with kCommitMetadata.
rd_kafka_topic_partition_list_t* ToCommitList(const Offsets& offsets);
// Whether a committed offset carries kCommitMetadata.
bool HasCommitMetadata(const rd_kafka_topic_partition_t& committed);

// Each partition's offset at `which` (RD_KAFKA_OFFSET_END: the end as `rk`'s
// isolation.level sees it, read_committed: the last stable offset;
// RD_KAFKA_OFFSET_BEGINNING: the first retained), in one ListOffsets request
// per leader. A partition whose answer is an error is left out; `failure`,
// when given, then names the first one and its error ("topic[p]: error").
// An error of the whole request is UnavailableError.
absl::StatusOr<Offsets> ListOffsets(rd_kafka_t* rk,
                                    const std::vector<TopicPartition>& tps,
                                    int64_t which, absl::Duration timeout,
                                    std::string* failure = nullptr);

}  // namespace kpistream::kafka

#endif  // KPISTREAM_KAFKA_CONSUMER_H_
