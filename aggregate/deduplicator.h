// Deduplicator: drops repeats of an event (same site + visitor + event_id)
// whose event time is at most the dedup horizon after the copy remembered
// (by the minute: up to a minute more), or before it. Whether an event is a
// repeat depends on the two copies' times only, not on how far the
// watermark had moved when the repeat came (it did: a repeat hours after
// its first copy was dropped or not as the poll batches fell, because
// copies were forgotten once per batch; an audit). Per
// partition: the events of one visitor, and so their repeats, share a
// partition. The visitor is part of the key so that what counts as a repeat
// does not depend on how visitors fall on partitions: an event_id reused by
// another visitor (in the same partition or not) is another event, as GA4
// deduplicates a transaction id per user (an audit: kept on one partition,
// dropped on another).
//
// Memory: one StableHash fingerprint and its minute per remembered event
// (FingerprintStore); fingerprints older than watermark - horizon -
// allowed lateness are forgotten on Expire(): no event that is not late
// (not older than watermark - allowed lateness) can be their repeat.
// Checkpointed with the partition's state.
// Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_DEDUPLICATOR_H_
#define KPISTREAM_AGGREGATE_DEDUPLICATOR_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "aggregate/fingerprint_store.h"

namespace kpistream {

class Deduplicator {
 public:
  // `lateness`: the allowed lateness, how far behind the watermark an event
  // may be and still reach SeenBefore().
  explicit Deduplicator(absl::Duration horizon,
                        absl::Duration lateness = absl::ZeroDuration())
      : horizon_(horizon), lateness_(lateness) {}

  // True if (site, visitor, event_id) was seen before (and is remembered);
  // otherwise remembers it. An empty event_id is never a duplicate.
  bool SeenBefore(absl::string_view site, absl::string_view visitor,
                  absl::string_view event_id, absl::Time event_time);

  // Forgets events older than watermark - horizon - lateness.
  void Expire(absl::Time watermark);

  size_t Checkpoint(bool full,
                    absl::FunctionRef<void(uint64_t, int32_t)> write) {
    return seen_.Checkpoint(full, write);
  }
  // Adds remembered events from a checkpoint; call Expire() after the last.
  void Restore(const v1::FingerprintMap& in) { seen_.Restore(in); }

  size_t size() const { return seen_.size(); }
  size_t ApproximateBytes() const { return seen_.ApproximateBytes(); }

 private:
  absl::Duration horizon_;
  absl::Duration lateness_;
  FingerprintStore seen_;  // fingerprint -> minute of its event time
  // Entries with a minute before this are forgotten (logically at once;
  // physically by a scan every horizon / 8).
  int32_t keep_from_ = INT32_MIN;
  int32_t scanned_at_ = INT32_MIN;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_DEDUPLICATOR_H_
