// ReorderBuffer: holds events until the watermark passes them, then hands
// them out in event-time order (ties broken by event_id), so that the
// Sessionizer sees each visitor's events in order whenever the input's
// disorder stays within the watermark's max out-of-orderness.
//
// Events are kept in one bucket per second of event time, so Push is O(1)
// and a release sorts only the buckets it empties.
// Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_REORDER_BUFFER_H_
#define KPISTREAM_AGGREGATE_REORDER_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "aggregate/event.h"

namespace kpistream {

class ReorderBuffer {
 public:
  void Push(Event&& event);

  // Calls `sink` for every buffered event with time < `watermark`, in
  // (time, event_id) order, and forgets them.
  void ReleaseBefore(absl::Time watermark,
                     absl::FunctionRef<void(Event&&)> sink);

  // Releases everything, in order.
  void ReleaseAll(absl::FunctionRef<void(Event&&)> sink);

  size_t size() const { return size_; }
  size_t ApproximateBytes() const;

 private:
  std::map<int64_t, std::vector<Event>> buckets_;  // key: floor(unix seconds)
  size_t size_ = 0;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_REORDER_BUFFER_H_
