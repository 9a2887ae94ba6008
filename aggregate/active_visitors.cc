#include "aggregate/active_visitors.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "absl/hash/hash.h"
#include "aggregate/memory_estimate.h"
#include "aggregate/unix_second.h"

namespace kpistream {

// Invariants per site: `visitors` holds every visitor with an event in the
// last 30 minutes (and some of the second before: see CountsAt), each
// queued once in `in_long`, in the bucket of its last event's second or an
// earlier one; those with in_short are queued once in `in_short` likewise,
// and short_count counts them.

void ActiveVisitors::Buckets::Push(int64_t second, uint64_t id) {
  if (seconds.empty()) first = second;
  // Never before the front: a visitor is queued at its last event's second,
  // which is in the window, and the window's past buckets are gone.
  if (second < first) second = first;
  while (first + static_cast<int64_t>(seconds.size()) <= second) {
    seconds.emplace_back();
  }
  seconds[static_cast<size_t>(second - first)].push_back(id);
}

void ActiveVisitors::Observe(absl::string_view site, absl::string_view visitor,
                             absl::Time now, uint32_t owner,
                             absl::string_view visitor_site) {
  if (last_ == nullptr || site != last_name_) {
    Apply();  // what waits is of the last site
    last_ = &sites_[site];
    last_name_.assign(site.data(), site.size());
  }
  const uint64_t id = visitor_site.empty() || visitor_site == site
                          ? absl::HashOf(visitor)
                          : absl::HashOf(visitor_site, visitor);
  waiting_.push_back({id, absl::ToUnixMicros(now), owner});
  if (waiting_.size() >= batch_) Apply();
}

uint32_t ActiveVisitors::OwnerOf(absl::string_view topic, int32_t partition) {
  // From 1: 0 is Observe()'s default, no partition's.
  auto [it, inserted] =
      owners_.try_emplace({std::string(topic), partition},
                          static_cast<uint32_t>(owners_.size() + 1));
  return it->second;
}

void ActiveVisitors::Forget(const std::vector<uint32_t>& owners) {
  if (owners.empty()) return;
  Apply();
  for (auto& entry : sites_) {
    Site& s = entry.second;
    const size_t before = s.visitors.size();
    absl::erase_if(s.visitors, [&](const auto& visitor) {
      const Visitor& v = visitor.second;
      if (std::find(owners.begin(), owners.end(), v.owner) == owners.end()) {
        return false;
      }
      s.short_count -= v.in_short;
      return true;
    });
    if (s.visitors.size() == before) continue;
    // Queued again from the visitors left, each once at its last event's
    // second, in order (Buckets::Push never goes before its front).
    std::vector<std::tuple<int64_t, uint64_t, bool>> queued;
    queued.reserve(s.visitors.size());
    for (const auto& [id, v] : s.visitors) {
      queued.emplace_back(SecondOf(v.last_us), id, v.in_short);
    }
    std::sort(queued.begin(), queued.end());
    s.in_long = Buckets();
    s.in_short = Buckets();
    for (const auto& [second, id, in_short] : queued) {
      s.in_long.Push(second, id);
      if (in_short) s.in_short.Push(second, id);
    }
  }
}

void ActiveVisitors::Apply() {
  if (waiting_.empty()) return;
  Site& s = *last_;
  // Every slot on its way from memory before the first is used (an insert
  // that grows the table leaves the rest a wasted hint, nothing worse).
  for (const Waiting& w : waiting_) s.visitors.prefetch(w.id);
  for (const Waiting& w : waiting_) {
    // Processing time only moves on, even if the clock steps back.
    const int64_t now_us = std::max(w.now_us, s.newest_us);
    s.newest_us = now_us;
    Expire(s, now_us);
    auto [it, inserted] = s.visitors.try_emplace(w.id);
    Visitor& v = it->second;
    v.last_us = now_us;
    v.owner = w.owner;
    const int64_t second = SecondOf(now_us);
    if (inserted) s.in_long.Push(second, w.id);
    if (!v.in_short) {  // enters the 5 minute window
      v.in_short = true;
      ++s.short_count;
      s.in_short.Push(second, w.id);
    }
  }
  waiting_.clear();
}

template <typename Each>
void ActiveVisitors::Buckets::PopBefore(int64_t second, Each each) {
  while (!seconds.empty() && first < second) {
    std::vector<uint64_t> bucket = std::move(seconds.front());
    seconds.pop_front();
    ++first;
    for (uint64_t id : bucket) each(id);
  }
}

void ActiveVisitors::Expire(Site& s, int64_t now_us) {
  const int64_t short_from = now_us - absl::ToInt64Microseconds(kShort);
  const int64_t long_from = now_us - absl::ToInt64Microseconds(kLong);
  // The 5 minute window first: a visitor leaves it before the 30 minute one.
  s.in_short.PopBefore(SecondOf(short_from), [&](uint64_t id) {
    Visitor& v = s.visitors.find(id)->second;
    if (v.last_us < short_from) {
      v.in_short = false;
      --s.short_count;
    } else {
      s.in_short.Push(SecondOf(v.last_us), id);
    }
  });
  s.in_long.PopBefore(SecondOf(long_from), [&](uint64_t id) {
    auto it = s.visitors.find(id);
    if (it->second.last_us < long_from) {
      s.visitors.erase(it);  // in_short is false: left that window first
    } else {
      s.in_long.Push(SecondOf(it->second.last_us), id);
    }
  });
}

std::map<std::string, ActiveVisitors::Counts> ActiveVisitors::CountsAt(
    absl::Time now) {
  std::map<std::string, Counts> out;
  Apply();
  last_ = nullptr;  // sites may go
  for (auto it = sites_.begin(); it != sites_.end();) {
    Site& s = it->second;
    const int64_t now_us = std::max(absl::ToUnixMicros(now), s.newest_us);
    Expire(s, now_us);
    // Visitors in the windows' first second whose last event is before the
    // window's start are still held: counted out here, exactly.
    const int64_t short_from = now_us - absl::ToInt64Microseconds(kShort);
    const int64_t long_from = now_us - absl::ToInt64Microseconds(kLong);
    Counts c{s.short_count, static_cast<int64_t>(s.visitors.size())};
    if (!s.in_short.seconds.empty()) {
      for (uint64_t id : s.in_short.seconds.front()) {
        c.last_5m -= s.visitors.find(id)->second.last_us < short_from;
      }
    }
    if (!s.in_long.seconds.empty()) {
      for (uint64_t id : s.in_long.seconds.front()) {
        c.last_30m -= s.visitors.find(id)->second.last_us < long_from;
      }
    }
    if (s.visitors.empty()) {
      sites_.erase(it++);
      continue;
    }
    if (c.last_30m > 0) out[it->first] = c;
    ++it;
  }
  return out;
}

size_t ActiveVisitors::ApproximateBytes() const {
  // libstdc++'s deque: a map of at least 8 node pointers and nodes of 512
  // bytes (21 vectors), one at least even when empty.
  constexpr size_t kPerNode = 512 / sizeof(std::vector<uint64_t>);
  auto deque_bytes = [&](size_t n) {
    return MallocBytes(8 * sizeof(void*)) +
           (n / kPerNode + 1) * MallocBytes(512);
  };
  size_t bytes = FlatMapBytes<std::string, Site>(sites_.capacity());
  // Per site, not per bucket: called at every publish, and a site's queues
  // hold up to 1,801 buckets each. The queued ids (every visitor once in
  // in_long, those of the last 5 minutes once in in_short) in vectors that
  // grow by doubling (half full at worst), each non-empty one a block.
  for (const auto& [name, s] : sites_) {
    bytes += StringHeapBytes(name);
    bytes += FlatMapBytes<uint64_t, Visitor>(s.visitors.capacity());
    bytes += deque_bytes(s.in_long.seconds.size()) +
             deque_bytes(s.in_short.seconds.size());
    const size_t ids = s.visitors.size() + static_cast<size_t>(s.short_count);
    const size_t blocks =
        std::min(ids, s.in_long.seconds.size() + s.in_short.seconds.size());
    bytes += 2 * ids * sizeof(uint64_t) + blocks * MallocBytes(0);
  }
  return bytes + waiting_.capacity() * sizeof(Waiting);
}

}  // namespace kpistream
