// What a StreamThread reads from and writes to, as interfaces, so that the
// commit cycle, rebalances and restores are tested without a broker
// (engine/kafka_io.h has the Kafka implementation).
#ifndef KPISTREAM_ENGINE_STREAM_IO_H_
#define KPISTREAM_ENGINE_STREAM_IO_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kafka/record.h"

namespace kpistream {

using Offsets = std::vector<std::pair<TopicPartition, int64_t>>;
using Headers = std::vector<std::pair<std::string, std::string>>;

// The consumer-group side. Assignment changes are reported to the
// Listener from within Poll().
class StreamInput {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnAssigned(const std::vector<TopicPartition>& partitions) = 0;
    // Before the partitions are given up: commit their work now.
    virtual void OnRevoked(const std::vector<TopicPartition>& partitions) = 0;
    // Taken away without a chance to commit.
    virtual void OnLost(const std::vector<TopicPartition>& partitions) = 0;
  };
  virtual ~StreamInput() = default;

  // Passes up to `max` records to `sink` (views valid during the call),
  // waiting at most `timeout` for the first.
  virtual void Poll(size_t max, absl::Duration timeout,
                    absl::FunctionRef<void(const kafka::Record&)> sink) = 0;
  // Where each partition's next read starts: `offsets` (a negative offset:
  // the group's committed offset, or the reset policy without one).
  // Returns the offsets it resolved and sought to. A partition is read from
  // its assignment on only once sought (the Kafka input pauses it until
  // then).
  virtual absl::StatusOr<Offsets> Seek(const Offsets& offsets) = 0;
  // Reads none of `partitions` until they are sought again: a restore that
  // failed after its seek.
  virtual void Pause(const std::vector<TopicPartition>& /*partitions*/) {}
  // At-least-once: commits the offsets (next offsets to read).
  virtual absl::Status CommitSync(const Offsets& offsets) = 0;
  // Messages between each position and the partition's end, as the
  // consumer last saw it (cheap; stale while nothing is fetched), into
  // `(*lags)[i]` for `positions[i]`; -1 where the end is not known yet.
  virtual void Lag(const Offsets& positions, std::vector<int64_t>* lags) = 0;
  // The partitions' ends as the brokers say now (one request, at most
  // `timeout`): the offset after the last readable record. Partitions
  // whose leader did not answer are left out.
  virtual absl::StatusOr<Offsets> EndOffsets(
      const std::vector<TopicPartition>& partitions,
      absl::Duration timeout) = 0;
  // The partitions' first retained offsets as the brokers say now (one
  // request, at most `timeout`): records before them were deleted
  // (retention, DeleteRecords). Partitions whose leader did not answer are
  // left out.
  virtual absl::StatusOr<Offsets> StartOffsets(
      const std::vector<TopicPartition>& partitions,
      absl::Duration timeout) = 0;
  // The partition's first retained offset as the consumer last heard it
  // (from its fetch responses: no request); -1: not known. Records before it
  // were deleted (retention, DeleteRecords).
  virtual int64_t FirstRetained(const TopicPartition&) const { return -1; }
  // Where the consumer last reached the partition's end since its last
  // seek: every record before that offset was handed out (-1: not since).
  virtual int64_t ReachedEnd(const TopicPartition&) const { return -1; }
  // The latest client error and when, for readiness and logs.
  virtual std::string last_error() const = 0;
  virtual absl::Time last_error_at() const = 0;
  // Stops consuming (revokes through the Listener).
  virtual void Close() = 0;
  // Not OK once the input cannot go on (the thread stops with it).
  virtual absl::Status fatal() const { return absl::OkStatus(); }
  // The group's committed offset of `tp` as read when it was assigned (-1:
  // none, or not known).
  virtual int64_t GroupOffset(const TopicPartition&) const { return -1; }
  // Whether the engine committed that offset, with the partition's state
  // checkpointed in the changelog (kafka::kCommitMetadata), rather than
  // someone setting it by hand.
  virtual bool GroupOffsetHasState(const TopicPartition&) const {
    return false;
  }
};

// The producer side: outputs and changelog, committed with the input
// offsets (exactly-once) or flushed before them (at-least-once).
class StreamOutput {
 public:
  virtual ~StreamOutput() = default;
  virtual bool transactional() const = 0;
  // A nullopt value is a tombstone; partition -1: the partitioner's choice.
  virtual absl::Status Produce(absl::string_view topic, absl::string_view key,
                               std::optional<absl::string_view> value,
                               const Headers& headers, int32_t partition) = 0;
  // Commits everything produced since the last commit with `offsets`.
  // AbortedError: aborted, nothing of it visible; any other error is fatal.
  virtual absl::Status Commit(const Offsets& offsets) = 0;
  virtual absl::Status Abort() = 0;
  // At-least-once: waits until what was produced is acknowledged.
  // DeadlineExceededError: not yet, still queued; AbortedError: a record
  // was not delivered (Restart()); any other error is fatal.
  virtual absl::Status Flush() = 0;
  // At-least-once: drops the records not sent yet (a thread that failed,
  // or a stop after a flush that timed out), before the partitions go to
  // another owner, who makes them again from the last checkpoint. The output is
  // not used after it (the thread stops or closes: the idempotent producer's
  // sequence has a gap).
  virtual void DropQueued() {}
  // At-least-once, after Flush() returned AbortedError (a record was not
  // delivered): drops what is queued and starts afresh (the stream thread
  // then reads again from its last checkpoint). An error is fatal.
  virtual absl::Status Restart() {
    DropQueued();
    return absl::OkStatus();
  }
  virtual int queued() const = 0;
  // Serves what the output's client has to report (errors, delivery
  // reports) without waiting: called by an idle thread too.
  virtual void ServeEvents() {}
  // The producer's last error event and when it came (InfinitePast: none),
  // as StreamInput::last_error(): in an outage the producer tells first
  // (the consumer, idle or caught up, may say nothing for seconds).
  virtual std::string last_error() const { return {}; }
  virtual absl::Time last_error_at() const { return absl::InfinitePast(); }
  // Called about every 50 ms while Produce() waits for room in a full
  // queue (a slow or unavailable output: reading pauses meanwhile).
  virtual void SetWaitCallback(std::function<void()>) {}
  // Asked between the attempts of a commit or an abort the brokers do not
  // confirm: true (a stop requested) gives up waiting.
  virtual void SetGiveUpCallback(std::function<bool()>) {}
  // The most a record (key, value, headers and framing) may take: Produce()
  // refuses a larger one with OutOfRangeError. SIZE_MAX: no limit.
  virtual size_t max_record_bytes() const { return SIZE_MAX; }
  // After a successful Commit() or Flush(): the highest offset of each
  // state changelog partition written since the last call.
  virtual std::map<int32_t, int64_t> TakeChangelogOffsets() = 0;
  // The output topics the brokers do not know (missing, not authorized, or
  // their metadata unreadable), each with its config key and the brokers'
  // answer, asked again when `now` is kUnknownTopicRecheck past the last
  // asking; empty once every one can be written. The stream thread reads
  // no input meanwhile (SPEC §10: an output that cannot be written pauses
  // consumption): a record for such a topic would wait in the producer's
  // queue and hold its transaction until the broker timed it out and
  // fenced the producer, again and again (measured on Kafka 4.4: four
  // fencings in a minute, then the engine stopped blaming another
  // instance, while /readyz said ready).
  static constexpr absl::Duration kUnknownTopicRecheck = absl::Seconds(2);
  virtual std::string UnknownTopics(absl::Time /*now*/) { return {}; }
};

// One record of the state changelog.
struct ChangelogEntry {
  int32_t partition = 0;
  int64_t offset = 0;
  absl::string_view key;
  absl::string_view value;
  bool tombstone = false;
};

// The changelog's cluster and its partitions' ends now.
struct ChangelogEnds {
  std::string cluster_id;
  std::map<int32_t, int64_t> ends;
};

// Reads the state changelog.
class ChangelogSource {
 public:
  virtual ~ChangelogSource() = default;
  virtual int partitions() const = 0;
  virtual const std::string& topic() const = 0;
  virtual absl::StatusOr<ChangelogEnds> Ends(
      const std::vector<int32_t>& partitions) = 0;
  // Every committed record of the changelog partitions (the keys of
  // `from`), from the offset given (0: the beginning) to their end as of the
  // call, in offset order per partition.
  virtual absl::Status Read(
      const std::map<int32_t, int64_t>& from,
      absl::FunctionRef<void(const ChangelogEntry&)> record) = 0;
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_STREAM_IO_H_
