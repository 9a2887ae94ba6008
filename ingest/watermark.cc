#include "ingest/watermark.h"

#include <algorithm>

namespace kpistream {

WatermarkTracker::WatermarkTracker(absl::Duration max_out_of_orderness,
                                   absl::Duration idle_timeout)
    : max_out_of_orderness_(max_out_of_orderness),
      idle_timeout_(idle_timeout) {}

void WatermarkTracker::Assign(int32_t partition, absl::Time now,
                              absl::Time max_event_time) {
  // A new partition holds the watermark back until it delivers an event or
  // stays quiet for the idle timeout: one fast partition must not race ahead
  // of the others right after an assignment.
  PartitionClock& clock = partitions_[partition];
  clock.last_event_at = now;
  clock.max_event_time = std::max(clock.max_event_time, max_event_time);
  max_event_time_ = std::max(max_event_time_, max_event_time);
}

void WatermarkTracker::Revoke(int32_t partition) {
  partitions_.erase(partition);
}

void WatermarkTracker::SetBacklog(int32_t partition, bool backlog) {
  auto it = partitions_.find(partition);
  if (it != partitions_.end()) it->second.backlog = backlog;
}

void WatermarkTracker::Observe(int32_t partition, absl::Time event_time,
                               absl::Time now) {
  PartitionClock& clock = partitions_[partition];
  clock.last_event_at = now;
  if (event_time > clock.max_event_time) clock.max_event_time = event_time;
  if (event_time > max_event_time_) max_event_time_ = event_time;
}

absl::Time WatermarkTracker::Current(absl::Time now) {
  absl::Time active_min = absl::InfiniteFuture();
  absl::Time idle_max = absl::InfinitePast();
  bool any_active = false;
  for (const auto& [partition, clock] : partitions_) {
    if (!clock.backlog && now - clock.last_event_at >= idle_timeout_) {
      idle_max = std::max(idle_max, clock.max_event_time);
    } else {
      any_active = true;
      active_min = std::min(active_min, clock.max_event_time);
    }
  }
  const absl::Time basis = any_active ? active_min : idle_max;
  if (basis != absl::InfinitePast()) {
    watermark_ = std::max(watermark_, basis - max_out_of_orderness_);
  }
  return watermark_;
}

}  // namespace kpistream
