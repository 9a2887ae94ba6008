// Watermarks: the event time up to which the input is taken to be complete,
// per partition and for the whole of a stream thread.
//
// A partition's own watermark is (its max event time seen -
// max_out_of_orderness): its sessions, lateness and KPI windows depend on its
// own events only, so the result is the same whichever instance owns it and
// however far the other partitions are (a partition that moves after a
// crash, lagging behind, finds none of its events late). When the partition
// is idle, it adopts the thread's watermark (the instance's when none of the
// thread's partitions is active), so that its last sessions close when the
// rest of the stream moves on. Idle: quiet (no event for
// `idle_timeout` of processing time), confirmed caught up by a look at its
// end made while quiet (CaughtUp), and no records waiting as the consumer
// last saw it (SetBacklog). A partition that is quiet only because its
// records are slow to arrive — a new owner still restoring or fetching, a
// stalled fetch — is not idle: its end says so. A partition's watermark never
// goes backwards, not even across a restore (it starts at its checkpointed
// frontier).
//
// The thread's watermark (Current) = min over active partitions of their
// own watermark; when every partition is idle, the max over them. It never
// goes backwards; the KPI targets' clock follows it. Before any event, every
// watermark is absl::InfinitePast().
//
// External partitions (SetExternal: a repartition topic's, whose watermark
// comes from its source partitions) have that watermark as their own and are
// never idle; what an idle partition adopts (AdoptionBasis) leaves them out,
// since their watermark derives from the others'.
//
// Processing time is passed in (`now`); nothing here reads a clock.
// Not thread-safe: one owner.
#ifndef KPISTREAM_INGEST_WATERMARK_H_
#define KPISTREAM_INGEST_WATERMARK_H_

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace kpistream {

class WatermarkTracker {
 public:
  WatermarkTracker(absl::Duration max_out_of_orderness,
                   absl::Duration idle_timeout);

  // A partition becomes ours; `max_event_time`, `frontier` and
  // `last_event_at` (when its last event was read, by any owner) come from
  // its checkpoint (InfinitePast: none). A new partition is not idle until
  // it has been quiet for the idle timeout since `last_event_at` (no later
  // than `now`; unknown: `now`), so that one quiet before a restart is
  // idle again as soon as a look at its end confirms it. An `external` one
  // (see SetExternal) is so from the start: its watermark is never derived
  // from its own events nor adopted while idle, only given.
  void Assign(int32_t partition, absl::Time now,
              absl::Time max_event_time = absl::InfinitePast(),
              absl::Time frontier = absl::InfinitePast(), bool external = false,
              absl::Time last_event_at = absl::InfinitePast());
  void Revoke(int32_t partition);
  // No partition assigned (then Current() has nothing to go by).
  bool empty() const { return partitions_.empty(); }
  // Every partition (none: true) idle at `now` without any event time:
  // none that Current() could go by.
  bool NoEventTime(absl::Time now) const;
  // Whether the partition has records waiting to be read (or its end is
  // not known yet): such a partition is never idle.
  void SetBacklog(int32_t partition, bool backlog);
  // A look at the partition's end at `checked_at` found nothing left to read.
  void CaughtUp(int32_t partition, absl::Time checked_at);
  // A look at the partition's end found records to read: not idle until
  // another look finds it caught up (CaughtUp) after its idle timeout.
  void Uncaught(int32_t partition);
  void Observe(int32_t partition, absl::Time event_time, absl::Time now);

  // When the partition's last event was read (processing time; its
  // assignment's time, or what that restored, if none since).
  // InfinitePast for a partition not assigned.
  absl::Time LastEventAt(int32_t partition) const;
  // No event for the idle timeout (a candidate for a look at its end).
  bool Quiet(int32_t partition, absl::Time now) const;
  bool Idle(int32_t partition, absl::Time now) const;

  // The partition's watermark is given (never backwards) instead of
  // derived from its events.
  void SetExternal(int32_t partition, absl::Time watermark);

  // The thread's watermark at `now` (recomputed from the partitions).
  absl::Time Current(absl::Time now);
  // What an idle partition adopts at `now`: as Current, over the partitions
  // that are not external (not kept: Current never goes backwards, this may);
  // when none of those is active, the highest of the idle ones' and
  // `instance` (the instance's watermark, its other threads' active
  // partitions': a thread whose partitions are all idle goes on with the
  // rest of the instance, as one partition goes on with its thread).
  absl::Time AdoptionBasis(absl::Time now,
                           absl::Time instance = absl::InfinitePast()) const;
  // At least one partition, and every one idle at `now` (none external): the
  // thread then has no say in the instance's watermark while another thread
  // has an active partition.
  bool AllIdle(absl::Time now) const;
  // Partition `partition`'s watermark at `now`, given what an idle one
  // adopts (AdoptionBasis(now)).
  absl::Time Of(int32_t partition, absl::Time now, absl::Time thread);

 private:
  struct PartitionClock {
    absl::Time max_event_time = absl::InfinitePast();
    absl::Time last_event_at = absl::InfinitePast();  // processing time
    absl::Time watermark = absl::InfinitePast();      // never backwards
    absl::Time caught_up_at = absl::InfinitePast();   // processing time
    bool backlog = false;
    bool external = false;
  };
  bool Quiet(const PartitionClock& clock, absl::Time now) const {
    return now - clock.last_event_at >= idle_timeout_;
  }
  bool Idle(const PartitionClock& clock, absl::Time now) const {
    return !clock.external && Quiet(clock, now) && !clock.backlog &&
           clock.caught_up_at >= clock.last_event_at + idle_timeout_;
  }
  absl::Time Own(const PartitionClock& clock) const {
    if (clock.external) return clock.watermark;
    return clock.max_event_time == absl::InfinitePast()
               ? absl::InfinitePast()
               : clock.max_event_time - max_out_of_orderness_;
  }

  absl::Time Basis(absl::Time now, bool with_external,
                   bool* any_active = nullptr) const;

  absl::Duration max_out_of_orderness_;
  absl::Duration idle_timeout_;
  absl::flat_hash_map<int32_t, PartitionClock> partitions_;
  absl::Time watermark_ = absl::InfinitePast();
};

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_WATERMARK_H_
