// CheckpointLog: how a partition's state lives in the state changelog topic
// (SPEC §5; proto/kpistream/v1/state.proto).
//
// Records are keyed "s/<topic>/<partition>/<seq>/<chunk>" (seq and chunk in
// fixed-width hex): every key is written once, so compaction never merges
// two checkpoints, and (exactly-once) a checkpoint's chunks are written in
// one transaction.
// A full snapshot is written when the changes since the last one outweigh
// it (or at the first checkpoint); it tombstones every earlier key, so a
// compacted changelog holds one snapshot plus the changes after it: at most
// about twice the state. A checkpoint of nothing (no change, same input
// position, a frontier less than 10 s on) is not written: an idle keyed or
// repartition partition, whose frontier moves with its thread's watermark,
// writes one of a few bytes once its frontier is 10 s on.
//
// CheckpointWriter writes one partition's checkpoints; CheckpointReader
// collects a changelog partition's records and rebuilds partitions' state
// from them: the newest complete full snapshot, then every later checkpoint
// in order. A gap (a later checkpoint missing or incomplete) is data loss
// and an error: the engine does not count on from a state it cannot trust.
// The one exception is the newest checkpoints left incomplete by a writer
// without a transaction (at-least-once) that stopped midway, which say so:
// the state is the one before them, and the next checkpoint is a full
// snapshot under a new seq.
#ifndef KPISTREAM_ENGINE_CHECKPOINT_LOG_H_
#define KPISTREAM_ENGINE_CHECKPOINT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "aggregate/partition_state.h"
#include "kafka/record.h"

namespace kpistream {

std::string CheckpointKey(const TopicPartition& tp, uint64_t seq,
                          uint32_t chunk);
// False for keys that are not checkpoint keys.
bool ParseCheckpointKey(absl::string_view key, TopicPartition* tp,
                        uint64_t* seq, uint32_t* chunk);

// The persistent day stores (engine/local_store.h) write one changelog
// record per entry: key "v/<topic>/<partition>/<kind>/<fingerprint>" (kind
// 'v' visitors, 'o' orders; the fingerprint in 16 hex digits), value the
// day in decimal, a tombstone when the entry expired. Compaction keeps the
// newest record of each entry.
std::string DayKey(const TopicPartition& tp, char kind, uint64_t fingerprint);
// False for keys that are not day keys.
bool ParseDayKey(absl::string_view key, TopicPartition* tp, char* kind,
                 uint64_t* fingerprint);
// The day of a day record; false when it is not a day in range.
bool ParseDayValue(absl::string_view value, int32_t* day);

struct ChangelogRecord {
  std::string key;
  std::optional<std::string> value;  // nullopt: a tombstone
};

// Where a partition's checkpoints stand, as restored or as written.
struct CheckpointPosition {
  uint64_t next_seq = 0;
  int64_t next_offset = -1;  // the input position of the state; -1: none
  absl::Time max_event_time = absl::InfinitePast();
  // PartitionCheckpoint.last_event_at_us (InfinitePast: unknown).
  absl::Time last_event_at = absl::InfinitePast();
  int64_t frontier_us = 0;  // as written (PartitionCheckpoint.frontier_us)
  // A repartition partition's source partitions' watermarks (empty for
  // other partitions).
  std::map<TopicPartition, absl::Time> upstream;
  size_t full_bytes = 0;   // size of the newest full snapshot
  size_t delta_bytes = 0;  // written since it
  // Keys in the changelog since (and including) the newest full snapshot.
  std::vector<std::pair<uint64_t, uint32_t>> live;
  // The newest checkpoints were incomplete and skipped (see
  // CheckpointReader): how many; the next one written is a full snapshot.
  size_t skipped = 0;
  bool needs_full = false;
  // The state's lineage (PartitionCheckpoint.lineage); 0 until the first
  // checkpoint of a state that starts from nothing (or of checkpoints
  // written before lineages) gives it one.
  uint64_t lineage = 0;
  // The group whose state it is (PartitionCheckpoint.group_id of the newest
  // checkpoint read that has one); empty: none said.
  std::string group_id;
};

// The lineage of a checkpoint record's value (PartitionCheckpoint.lineage),
// read without parsing the rest; 0 when it has none or cannot be read.
uint64_t CheckpointLineage(absl::string_view value);

// The size at which CheckpointWriter cuts a chunk for a producer that
// takes records of at most `max_record_bytes` (its message.max.bytes): half
// of that, at most 512 KiB (and at least 16 KiB). A chunk is cut once it has
// reached the size, so it holds one element more (a session or a window: at
// most tens of KiB) and the last chunk's clocks; half leaves room for them
// (an audit: with message.max.bytes 200000 a chunk of 532 KB stopped the
// engine at every start).
size_t CheckpointChunkBytes(size_t max_record_bytes);

class CheckpointWriter {
 public:
  // Chunks are cut at about `chunk_bytes` (well under Kafka's default 1 MB
  // message limit); a full snapshot is due once the changes since the last
  // one exceed max(its size, `min_full_interval_bytes`).
  explicit CheckpointWriter(TopicPartition tp, size_t chunk_bytes = 512 << 10,
                            size_t min_full_interval_bytes = 256 << 10);

  // Continues after a restore (or, without one, starts at seq 0).
  void Resume(CheckpointPosition position) { position_ = std::move(position); }
  // Checkpoints written without a transaction (at-least-once) say so: the
  // newest may be left incomplete (v1::PartitionCheckpoint).
  void set_without_transaction(bool w) { without_transaction_ = w; }
  // The consumer group written into every chunk (PartitionCheckpoint).
  void set_group_id(std::string g) { group_id_ = std::move(g); }
  // Whether a frontier moved by kFrontierStepUs or more is reason enough to
  // write a checkpoint: for partitions whose events are judged against it
  // (not an ad-cost partition's, nor a forwarding one's).
  void set_frontier_judges(bool j) { frontier_judges_ = j; }
  static constexpr int64_t kFrontierStepUs = 10'000'000;

  // The records of a checkpoint of `state` at input position `next_offset`
  // (none when nothing changed). `force_full` writes a full snapshot.
  // `upstream`: a repartition partition's source watermarks (written whole
  // when they changed). `last_event_at`: when the partition's last event
  // was read (processing time; InfinitePast: unknown).
  std::vector<ChangelogRecord> Write(
      PartitionState& state, int64_t next_offset, absl::Time max_event_time,
      bool force_full = false,
      const std::map<TopicPartition, absl::Time>& upstream = {},
      absl::Time last_event_at = absl::InfinitePast());

  const CheckpointPosition& position() const { return position_; }

 private:
  TopicPartition tp_;
  size_t chunk_bytes_;
  size_t min_full_interval_bytes_;
  bool without_transaction_ = false;
  std::string group_id_;
  bool frontier_judges_ = true;
  CheckpointPosition position_;
};

class CheckpointReader {
 public:
  // Takes one changelog record (in offset order); keys that are not
  // checkpoint keys are ignored, tombstones delete.
  void Add(absl::string_view key, absl::string_view value, bool tombstone);

  // Rebuilds `tp`'s state into `state` (new, empty) and returns where its
  // checkpoints stand; a partition without checkpoints restores nothing and
  // returns the zero position.
  absl::StatusOr<CheckpointPosition> RestoreInto(const TopicPartition& tp,
                                                 PartitionState* state) const;

  // The partition's checkpoint records still live (not tombstoned), in
  // (seq, chunk) order.
  void ForEachLive(
      const TopicPartition& tp,
      absl::FunctionRef<void(const std::string& key, const std::string& value)>
          record) const;

  // Frees `tp`'s records (once its state is restored and mirrored): a
  // restore holds every partition's of the thread only until each is done.
  void Release(const TopicPartition& tp);

  size_t records() const { return records_; }
  size_t bytes() const { return bytes_; }

 private:
  // (seq, chunk) -> serialized PartitionCheckpoint
  std::map<TopicPartition, std::map<std::pair<uint64_t, uint32_t>, std::string>>
      chunks_;
  size_t records_ = 0;
  size_t bytes_ = 0;
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_CHECKPOINT_LOG_H_
