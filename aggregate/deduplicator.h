// Deduplicator: drops repeats of an event (same site + visitor + event_id)
// whose event time lies within the dedup horizon behind the watermark. Per
// partition: the events of one visitor, and so their repeats, share a
// partition. The visitor is part of the key so that what counts as a repeat
// does not depend on how visitors fall on partitions: an event_id reused by
// another visitor (in the same partition or not) is another event, as GA4
// deduplicates a transaction id per user (an audit: kept on one partition,
// dropped on another).
//
// Memory: one StableHash fingerprint and its minute per remembered event
// (FingerprintStore); fingerprints older than watermark - horizon are
// forgotten on Expire(). Checkpointed with the partition's state.
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
  explicit Deduplicator(absl::Duration horizon) : horizon_(horizon) {}

  // True if (site, visitor, event_id) was seen before (and is remembered);
  // otherwise remembers it. An empty event_id is never a duplicate.
  bool SeenBefore(absl::string_view site, absl::string_view visitor,
                  absl::string_view event_id, absl::Time event_time);

  // Forgets events older than watermark - horizon.
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
  FingerprintStore seen_;  // fingerprint -> minute of its event time
  // Entries with a minute before this are forgotten (logically at once;
  // physically by a scan every horizon / 8).
  int32_t keep_from_ = INT32_MIN;
  int32_t scanned_at_ = INT32_MIN;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_DEDUPLICATOR_H_
