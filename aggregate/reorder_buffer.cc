#include "aggregate/reorder_buffer.h"

#include <algorithm>
#include <numeric>

namespace kpistream {
namespace {

int64_t BucketOf(absl::Time t) {
  return absl::ToUnixSeconds(t);  // floor
}

// Emits `events` in (time, event_id) order without moving the large Event
// structs during the sort.
void EmitSorted(std::vector<Event>& events, size_t count,
                absl::FunctionRef<void(Event&&)> sink) {
  std::vector<uint32_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return events[a].time != events[b].time
               ? events[a].time < events[b].time
               : events[a].event_id < events[b].event_id;
  });
  for (uint32_t i : order) sink(std::move(events[i]));
}

}  // namespace

void ReorderBuffer::Push(Event&& event) {
  buckets_[BucketOf(event.time)].push_back(std::move(event));
  ++size_;
}

void ReorderBuffer::ReleaseBefore(absl::Time watermark,
                                  absl::FunctionRef<void(Event&&)> sink) {
  if (watermark == absl::InfinitePast()) return;
  if (watermark == absl::InfiniteFuture()) return ReleaseAll(sink);
  const int64_t last = BucketOf(watermark);
  while (!buckets_.empty() && buckets_.begin()->first <= last) {
    auto bucket = buckets_.begin();
    std::vector<Event>& events = bucket->second;
    if (bucket->first < last) {
      size_ -= events.size();
      EmitSorted(events, events.size(), sink);
      buckets_.erase(bucket);
      continue;
    }
    // The watermark's own second: release only what is strictly before it.
    auto keep =
        std::partition(events.begin(), events.end(),
                       [&](const Event& e) { return e.time < watermark; });
    const size_t n = static_cast<size_t>(keep - events.begin());
    if (n == 0) break;
    size_ -= n;
    EmitSorted(events, n, sink);
    events.erase(events.begin(), keep);
    if (events.empty()) buckets_.erase(bucket);
    break;
  }
}

void ReorderBuffer::ReleaseAll(absl::FunctionRef<void(Event&&)> sink) {
  for (auto& [second, events] : buckets_)
    EmitSorted(events, events.size(), sink);
  buckets_.clear();
  size_ = 0;
}

size_t ReorderBuffer::ApproximateBytes() const {
  size_t bytes = buckets_.size() * 64;
  for (const auto& [second, events] : buckets_) {
    bytes += events.capacity() * sizeof(Event);
    for (const Event& e : events) {
      for (const std::string* s :
           {&e.event_id, &e.site_id, &e.visitor_id, &e.user_id, &e.page_url,
            &e.referrer, &e.utm_source, &e.utm_medium, &e.utm_campaign,
            &e.click_id, &e.device_category, &e.country, &e.user_agent, &e.goal,
            &e.currency, &e.order_id}) {
        if (s->capacity() > 15) bytes += s->capacity() + 1;
      }
    }
  }
  return bytes;
}

}  // namespace kpistream
