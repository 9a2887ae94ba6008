#include "ingest/watermark.h"

#include <algorithm>

namespace kpistream {

WatermarkTracker::WatermarkTracker(absl::Duration max_out_of_orderness,
                                   absl::Duration idle_timeout)
    : max_out_of_orderness_(max_out_of_orderness),
      idle_timeout_(idle_timeout) {}

void WatermarkTracker::Assign(int32_t partition, absl::Time now,
                              absl::Time max_event_time, absl::Time frontier,
                              bool external, absl::Time last_event_at) {
  PartitionClock& clock = partitions_[partition];
  clock.external = clock.external || external;
  clock.last_event_at = last_event_at == absl::InfinitePast()
                            ? now
                            : std::min(last_event_at, now);
  clock.max_event_time = std::max(clock.max_event_time, max_event_time);
  clock.watermark = std::max({clock.watermark, frontier, Own(clock)});
}

absl::Time WatermarkTracker::LastEventAt(int32_t partition) const {
  auto it = partitions_.find(partition);
  return it == partitions_.end() ? absl::InfinitePast()
                                 : it->second.last_event_at;
}

void WatermarkTracker::Revoke(int32_t partition) {
  partitions_.erase(partition);
}

void WatermarkTracker::SetBacklog(int32_t partition, bool backlog) {
  auto it = partitions_.find(partition);
  if (it != partitions_.end()) it->second.backlog = backlog;
}

void WatermarkTracker::CaughtUp(int32_t partition, absl::Time checked_at) {
  auto it = partitions_.find(partition);
  if (it != partitions_.end()) {
    it->second.caught_up_at = std::max(it->second.caught_up_at, checked_at);
  }
}

void WatermarkTracker::Uncaught(int32_t partition) {
  auto it = partitions_.find(partition);
  if (it != partitions_.end()) {
    it->second.caught_up_at = absl::InfinitePast();
    it->second.backlog = true;
  }
}

bool WatermarkTracker::Quiet(int32_t partition, absl::Time now) const {
  auto it = partitions_.find(partition);
  return it != partitions_.end() && Quiet(it->second, now);
}

bool WatermarkTracker::Idle(int32_t partition, absl::Time now) const {
  auto it = partitions_.find(partition);
  return it != partitions_.end() && Idle(it->second, now);
}

void WatermarkTracker::Observe(int32_t partition, absl::Time event_time,
                               absl::Time now) {
  PartitionClock& clock = partitions_[partition];
  clock.last_event_at = now;
  if (event_time > clock.max_event_time) clock.max_event_time = event_time;
}

void WatermarkTracker::SetExternal(int32_t partition, absl::Time watermark) {
  PartitionClock& clock = partitions_[partition];
  clock.external = true;
  clock.watermark = std::max(clock.watermark, watermark);
}

bool WatermarkTracker::NoEventTime(absl::Time now) const {
  for (const auto& [partition, clock] : partitions_) {
    if (!Idle(clock, now) ||
        std::max(Own(clock), clock.watermark) != absl::InfinitePast()) {
      return false;
    }
  }
  return true;
}

absl::Time WatermarkTracker::Basis(absl::Time now, bool with_external,
                                   bool* any_active_out) const {
  absl::Time active_min = absl::InfiniteFuture();
  absl::Time idle_max = absl::InfinitePast();
  bool any_active = false;
  for (const auto& [partition, clock] : partitions_) {
    if (clock.external && !with_external) continue;
    const absl::Time own = std::max(Own(clock), clock.watermark);
    if (Idle(clock, now)) {
      idle_max = std::max(idle_max, own);
    } else {
      any_active = true;
      active_min = std::min(active_min, own);
    }
  }
  if (any_active_out != nullptr) *any_active_out = any_active;
  return any_active ? active_min : idle_max;
}

bool WatermarkTracker::AllIdle(absl::Time now) const {
  for (const auto& [partition, clock] : partitions_) {
    if (!Idle(clock, now)) return false;
  }
  return !partitions_.empty();
}

absl::Time WatermarkTracker::Current(absl::Time now) {
  const absl::Time basis = Basis(now, /*with_external=*/true);
  if (basis != absl::InfinitePast()) watermark_ = std::max(watermark_, basis);
  return watermark_;
}

absl::Time WatermarkTracker::AdoptionBasis(absl::Time now,
                                           absl::Time instance) const {
  bool any_active = false;
  const absl::Time basis = Basis(now, /*with_external=*/false, &any_active);
  return any_active ? basis : std::max(basis, instance);
}

absl::Time WatermarkTracker::Of(int32_t partition, absl::Time now,
                                absl::Time thread) {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return thread;
  PartitionClock& clock = it->second;
  absl::Time w = Own(clock);
  if (Idle(clock, now)) w = std::max(w, thread);
  clock.watermark = std::max(clock.watermark, w);
  return clock.watermark;
}

}  // namespace kpistream
