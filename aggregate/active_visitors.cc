#include "aggregate/active_visitors.h"

#include "absl/hash/hash.h"

namespace kpistream {

// Invariants per site: `arrivals` holds every Observe() of the last 30 min in
// time order; a visitor is "in" a window when its last_seen is inside it.
// in_short counts visitors whose last_seen >= now - 5 min; arrivals before
// short_start are outside the 5 minute window.

void ActiveVisitors::Observe(absl::string_view site, absl::string_view visitor,
                             absl::Time now) {
  Site& s = sites_[site];
  const int64_t now_us = absl::ToUnixMicros(now);
  Expire(s, now_us);
  const uint64_t id = absl::HashOf(visitor);
  auto [it, inserted] = s.last_seen_us.try_emplace(id, now_us);
  if (inserted || it->second < now_us - absl::ToInt64Microseconds(kShort)) {
    ++s.in_short;  // enters the 5 min window
  }
  it->second = now_us;
  s.arrivals.emplace_back(now_us, id);
}

void ActiveVisitors::Expire(Site& s, int64_t now_us) {
  const int64_t short_from = now_us - absl::ToInt64Microseconds(kShort);
  const int64_t long_from = now_us - absl::ToInt64Microseconds(kLong);
  // Leaving the 5 minute window: only if not seen again since.
  while (s.short_start < s.arrivals.size() &&
         s.arrivals[s.short_start].first < short_from) {
    const auto [at, id] = s.arrivals[s.short_start];
    auto it = s.last_seen_us.find(id);
    if (it != s.last_seen_us.end() && it->second == at) --s.in_short;
    ++s.short_start;
  }
  // Leaving the 30 minute window.
  while (!s.arrivals.empty() && s.arrivals.front().first < long_from) {
    const auto [at, id] = s.arrivals.front();
    auto it = s.last_seen_us.find(id);
    if (it != s.last_seen_us.end() && it->second == at)
      s.last_seen_us.erase(it);
    s.arrivals.pop_front();
    --s.short_start;
  }
}

std::map<std::string, ActiveVisitors::Counts> ActiveVisitors::CountsAt(
    absl::Time now) {
  std::map<std::string, Counts> out;
  const int64_t now_us = absl::ToUnixMicros(now);
  for (auto it = sites_.begin(); it != sites_.end();) {
    Expire(it->second, now_us);
    if (it->second.last_seen_us.empty()) {
      sites_.erase(it++);
      continue;
    }
    out[it->first] = {it->second.in_short,
                      static_cast<int64_t>(it->second.last_seen_us.size())};
    ++it;
  }
  return out;
}

size_t ActiveVisitors::ApproximateBytes() const {
  size_t bytes = 0;
  for (const auto& [name, s] : sites_) {
    bytes += s.last_seen_us.capacity() * 17 + s.arrivals.size() * 16 + 64;
  }
  return bytes;
}

}  // namespace kpistream
