// ActiveVisitors: realtime visitors (SPEC §3): distinct visitors with an
// accepted event in the last 5 and in the last 30 minutes of processing time,
// per site. Exact: one entry per visitor seen in the last 30 minutes, kept
// in arrival order so that expiry is O(1) per event.
//
// Time is passed in. Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_ACTIVE_VISITORS_H_
#define KPISTREAM_AGGREGATE_ACTIVE_VISITORS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kpistream {

class ActiveVisitors {
 public:
  static constexpr absl::Duration kShort = absl::Minutes(5);
  static constexpr absl::Duration kLong = absl::Minutes(30);

  void Observe(absl::string_view site, absl::string_view visitor,
               absl::Time now);

  struct Counts {
    int64_t last_5m = 0;
    int64_t last_30m = 0;
  };
  // Expires what fell out of the windows at `now` and returns the counts of
  // every site that has any visitor in the last 30 minutes.
  std::map<std::string, Counts> CountsAt(absl::Time now);

  size_t ApproximateBytes() const;

 private:
  struct Site {
    absl::flat_hash_map<uint64_t, int64_t> last_seen_us;  // visitor -> time
    std::deque<std::pair<int64_t, uint64_t>> arrivals;    // (time, visitor)
    size_t short_start = 0;  // first arrival inside the 5 min window
    int64_t in_short = 0;
  };
  void Expire(Site& site, int64_t now_us);

  absl::flat_hash_map<std::string, Site> sites_;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_ACTIVE_VISITORS_H_
