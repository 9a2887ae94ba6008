// Watermark: the event time up to which the input is taken to be complete.
//
//   W = min over assigned, non-idle partitions of (max event time seen -
//   max_out_of_orderness)
//
// A partition that has had no event for `idle_timeout` of processing time,
// and has no records waiting to be read (its backlog, as the consumer last
// saw it), is idle and does not hold W back; when every partition is idle, W is the max
// over them. A newly assigned partition without events holds W back until it
// has been quiet for `idle_timeout` since its assignment. W never goes
// backwards. Before any event, W is absl::InfinitePast().
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

  // `max_event_time`: the partition's max event time restored from its
  // checkpoint (InfinitePast: none yet).
  void Assign(int32_t partition, absl::Time now,
              absl::Time max_event_time = absl::InfinitePast());
  void Revoke(int32_t partition);
  // Whether the partition has records waiting to be read (or its end is
  // not known yet): such a partition is never idle, so that a partition
  // whose events come later (a restart, a slow fetch) does not find them
  // late because another one raced ahead.
  void SetBacklog(int32_t partition, bool backlog);
  void Observe(int32_t partition, absl::Time event_time, absl::Time now);

  // Current watermark; recomputed from partition state at `now`.
  absl::Time Current(absl::Time now);

  // Highest event time seen on any partition (InfinitePast before any).
  absl::Time max_event_time() const { return max_event_time_; }

 private:
  struct PartitionClock {
    absl::Time max_event_time = absl::InfinitePast();
    absl::Time last_event_at = absl::InfinitePast();  // processing time
    bool backlog = false;
  };
  absl::Duration max_out_of_orderness_;
  absl::Duration idle_timeout_;
  absl::flat_hash_map<int32_t, PartitionClock> partitions_;
  absl::Time max_event_time_ = absl::InfinitePast();
  absl::Time watermark_ = absl::InfinitePast();
};

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_WATERMARK_H_
