// PartitionState: all aggregation state of one input partition — the
// ReorderBuffer that restores event-time order inside the watermark's
// out-of-orderness, and the Sessionizer behind it. State lives per partition
// so that it can later be checkpointed and moved with the partition.
//
// Admission of an event, given the current (global) watermark W:
//   time <  W - allowed_lateness  -> kLate (caller counts and dead-letters it)
//   time <  W                     -> straight to the Sessionizer, which may
//                                    still refuse it as late
//   otherwise                     -> buffered until the watermark passes it
// Advance(W) releases buffered events with time < W in (time, event_id)
// order, then closes sessions up to W - allowed_lateness.
//
// Not thread-safe: owned by the thread of its shard.
#ifndef KPISTREAM_AGGREGATE_PARTITION_STATE_H_
#define KPISTREAM_AGGREGATE_PARTITION_STATE_H_

#include <cstddef>

#include "absl/time/time.h"
#include "aggregate/deduplicator.h"
#include "aggregate/event.h"
#include "aggregate/reorder_buffer.h"
#include "aggregate/sessionizer.h"

namespace kpistream {

class PartitionState {
 public:
  enum class Admit { kAccepted, kLate, kDuplicate };

  // `dedup_horizon` zero: no duplicate detection.
  PartitionState(SessionRules rules, absl::Duration allowed_lateness,
                 SessionObserver* observer,
                 const SessionAttribution* attribution = nullptr,
                 absl::Duration dedup_horizon = absl::ZeroDuration());

  // Offers one validated event. `watermark` is the current watermark. On
  // kLate and kDuplicate (same site + event_id within the dedup horizon) the
  // event is left unchanged (the caller dead-letters the original).
  Admit Offer(Event&& event, absl::Time watermark);

  // Releases buffered events older than `watermark` and closes sessions that
  // can no longer change. Returns the number of sessions closed.
  size_t Advance(absl::Time watermark);

  // Releases every buffered event and closes every open session (end of a
  // bounded input, tests).
  size_t Drain();

  size_t open_sessions() const { return sessionizer_.open_sessions(); }
  size_t buffered_events() const { return buffer_.size(); }
  size_t ApproximateBytes() const;

 private:
  void Release(absl::Time watermark);

  absl::Duration allowed_lateness_;
  Sessionizer sessionizer_;
  ReorderBuffer buffer_;
  Deduplicator dedup_;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_PARTITION_STATE_H_
