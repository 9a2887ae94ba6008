// ActiveVisitors: realtime visitors (SPEC §3): distinct visitors with an
// accepted event in the last 5 and in the last 30 minutes of processing time,
// per site. Exact: one entry per visitor seen in the last 30 minutes (not
// per event: memory follows the distinct visitors, whatever the event
// rate). An event updates its visitor's entry only; each visitor also waits
// once in a queue of one-second buckets per window, and is looked at again
// when its bucket leaves the window (expired, or queued again at its last
// event): one lookup per event, one per visitor and window length.
//
// The lookups of a few events in a row are made together: Observe() keeps
// the visitor's hash, and every `batch` of them the table slots of all are
// fetched from memory before any is used (a busy site's table does not fit
// in the caches; one miss at a time, the lookup was ~4 % of the engine's
// samples). CountsAt() applies what waits first: nothing it says is late.
//
// Time is passed in. Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_ACTIVE_VISITORS_H_
#define KPISTREAM_AGGREGATE_ACTIVE_VISITORS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kpistream {

class ActiveVisitors {
 public:
  static constexpr size_t kDefaultBatch = 16;
  // `batch`: how many Observe() calls wait to be applied together (1: each
  // at once).
  explicit ActiveVisitors(size_t batch = kDefaultBatch)
      : batch_(batch > 0 ? batch : 1) {}
  ActiveVisitors(const ActiveVisitors&) = delete;  // last_ points inside
  ActiveVisitors& operator=(const ActiveVisitors&) = delete;

  static constexpr absl::Duration kShort = absl::Minutes(5);
  static constexpr absl::Duration kLong = absl::Minutes(30);

  // `owner`: what the event came through (OwnerOf), so that Forget() can
  // drop the visitors of a partition that moves to another thread or
  // instance; a visitor belongs to the owner of its last event.
  // `visitor_site`: where `site` is a label value that stands for several
  // sites ("(other)"), the event's own site, which tells a visitor id on
  // one site from the same id on another; empty: `site` is the site.
  void Observe(absl::string_view site, absl::string_view visitor,
               absl::Time now, uint32_t owner = 0,
               absl::string_view visitor_site = {});

  // A small id (not 0) for a partition's events, the same for the
  // object's life.
  uint32_t OwnerOf(absl::string_view topic, int32_t partition);

  // Forgets the visitors whose last event came through one of `owners` (a
  // partition revoked: its new owner counts them from their next event;
  // kept here, a visitor was counted by both for up to 30 minutes).
  void Forget(const std::vector<uint32_t>& owners);

  struct Counts {
    int64_t last_5m = 0;
    int64_t last_30m = 0;
  };
  // Expires what fell out of the windows at `now` and returns the counts of
  // every site that has any visitor in the last 30 minutes.
  std::map<std::string, Counts> CountsAt(absl::Time now);

  size_t ApproximateBytes() const;

 private:
  struct Visitor {
    int64_t last_us = 0;
    uint32_t owner = 0;     // of its last event (Observe)
    bool in_short = false;  // queued in the 5 minute window's buckets
  };
  // Visitor ids (absl::Hash of the id: 64 bits, within a process only) in
  // buckets of one second, oldest first.
  struct Buckets {
    std::deque<std::vector<uint64_t>> seconds;
    int64_t first = 0;  // the second of seconds.front()
    void Push(int64_t second, uint64_t id);
    // Takes out the buckets before `second`, oldest first, and calls
    // `each` with every id in them (which may Push again).
    template <typename Each>
    void PopBefore(int64_t second, Each each);
  };
  struct Site {
    absl::flat_hash_map<uint64_t, Visitor> visitors;  // the last 30 minutes
    Buckets in_long;                                  // every visitor once
    Buckets in_short;  // every visitor with in_short once
    int64_t short_count = 0;
    int64_t newest_us = INT64_MIN;
  };
  // Takes out visitors whose bucket is before the windows' first second
  // (a visitor in that second itself is counted out by CountsAt).
  static void Expire(Site& site, int64_t now_us);
  // Applies the waiting observations (all of the site last_ points to), in
  // their order.
  void Apply();

  struct Waiting {
    uint64_t id;
    int64_t now_us;
    uint32_t owner;
  };
  size_t batch_;
  std::vector<Waiting> waiting_;

  absl::flat_hash_map<std::string, Site> sites_;
  // OwnerOf()'s ids, by topic and partition (only grows: a thread's
  // partitions).
  std::map<std::pair<std::string, int32_t>, uint32_t> owners_;
  // Observe()'s last site, found again without hashing its name: most
  // events in a row are of one site. Reset by CountsAt(), which erases
  // sites (an insert by Observe() moves the others, not the one it made).
  std::string last_name_;
  Site* last_ = nullptr;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_ACTIVE_VISITORS_H_
