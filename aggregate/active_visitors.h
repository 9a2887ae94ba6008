// ActiveVisitors: realtime visitors (SPEC §3): distinct visitors with an
// accepted event in the last 5 and in the last 30 minutes of processing time,
// per site. Exact: one entry per visitor seen in the last 30 minutes (not
// per event: memory follows the distinct visitors, whatever the event
// rate), in a list ordered by their last event, so that an event and the
// expiry are O(1) each.
//
// Time is passed in. Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_ACTIVE_VISITORS_H_
#define KPISTREAM_AGGREGATE_ACTIVE_VISITORS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

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
  static constexpr uint32_t kNone = UINT32_MAX;
  // A visitor (absl::Hash of its id: 64 bits, within a process only) and
  // its last event, linked in order of the last event.
  struct Node {
    uint64_t id;
    int64_t last_us;
    uint32_t prev;
    uint32_t next;
  };
  struct Site {
    absl::flat_hash_map<uint64_t, uint32_t> index;  // visitor -> node
    std::vector<Node> nodes;                        // reused through `free`
    std::vector<uint32_t> free;
    uint32_t head = kNone;  // least recent
    uint32_t tail = kNone;  // most recent
    // The first node inside the 5 minute window (kNone: none is); those
    // before it are outside.
    uint32_t short_start = kNone;
    int64_t in_short = 0;
  };
  static void Unlink(Site& s, uint32_t n);
  static void Append(Site& s, uint32_t n);
  void Expire(Site& site, int64_t now_us);

  absl::flat_hash_map<std::string, Site> sites_;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_ACTIVE_VISITORS_H_
