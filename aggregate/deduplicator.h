// Deduplicator: drops repeats of an event (same site + event_id) whose event
// time lies within the dedup horizon behind the watermark. Per partition (the
// events of one visitor, and so their repeats, share a partition).
//
// Memory: one 64-bit fingerprint and its time bucket per remembered event;
// fingerprints older than watermark - horizon are forgotten on Expire().
// Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_DEDUPLICATOR_H_
#define KPISTREAM_AGGREGATE_DEDUPLICATOR_H_

#include <cstdint>
#include <map>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kpistream {

class Deduplicator {
 public:
  explicit Deduplicator(absl::Duration horizon) : horizon_(horizon) {}

  // True if (site, event_id) was seen before (and is remembered); otherwise
  // remembers it. An empty event_id is never a duplicate.
  bool SeenBefore(absl::string_view site, absl::string_view event_id,
                  absl::Time event_time);

  // Forgets events older than watermark - horizon.
  void Expire(absl::Time watermark);

  size_t size() const { return seen_.size(); }
  size_t ApproximateBytes() const;

 private:
  absl::Duration horizon_;
  absl::flat_hash_set<uint64_t> seen_;
  std::map<int64_t, std::vector<uint64_t>> by_minute_;  // for expiry
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_DEDUPLICATOR_H_
