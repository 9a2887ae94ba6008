#include "aggregate/active_visitors.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace kpistream {

// Invariants per site: the list from head to tail holds every visitor of
// the last 30 min once, in order of last_us (ties in arrival order); the
// index finds its node. Nodes before short_start have last_us < now - 5 min,
// and in_short counts the nodes from short_start to the tail.

void ActiveVisitors::Unlink(Site& s, uint32_t n) {
  Node& node = s.nodes[n];
  if (node.prev != kNone) s.nodes[node.prev].next = node.next;
  else s.head = node.next;
  if (node.next != kNone) s.nodes[node.next].prev = node.prev;
  else s.tail = node.prev;
  if (s.short_start == n) s.short_start = node.next;
}

void ActiveVisitors::Append(Site& s, uint32_t n) {
  Node& node = s.nodes[n];
  node.prev = s.tail;
  node.next = kNone;
  if (s.tail != kNone) s.nodes[s.tail].next = n;
  else s.head = n;
  s.tail = n;
  if (s.short_start == kNone) s.short_start = n;
}

void ActiveVisitors::Observe(absl::string_view site, absl::string_view visitor,
                             absl::Time now) {
  Site& s = sites_[site];
  int64_t now_us = absl::ToUnixMicros(now);
  // The list stays in order if the clock steps back.
  if (s.tail != kNone) now_us = std::max(now_us, s.nodes[s.tail].last_us);
  Expire(s, now_us);
  const uint64_t id = absl::HashOf(visitor);
  auto [it, inserted] = s.index.try_emplace(id, kNone);
  uint32_t n;
  if (inserted) {
    if (!s.free.empty()) {
      n = s.free.back();
      s.free.pop_back();
    } else {
      n = static_cast<uint32_t>(s.nodes.size());
      s.nodes.emplace_back();
    }
    it->second = n;
    s.nodes[n].id = id;
    ++s.in_short;  // enters both windows
  } else {
    n = it->second;
    if (s.nodes[n].last_us < now_us - absl::ToInt64Microseconds(kShort)) {
      ++s.in_short;  // enters the 5 min window again
    }
    Unlink(s, n);
  }
  s.nodes[n].last_us = now_us;
  Append(s, n);
}

void ActiveVisitors::Expire(Site& s, int64_t now_us) {
  const int64_t short_from = now_us - absl::ToInt64Microseconds(kShort);
  const int64_t long_from = now_us - absl::ToInt64Microseconds(kLong);
  // Leaving the 5 minute window.
  while (s.short_start != kNone && s.nodes[s.short_start].last_us < short_from) {
    --s.in_short;
    s.short_start = s.nodes[s.short_start].next;
  }
  // Leaving the 30 minute window (all before short_start, as long_from <
  // short_from).
  while (s.head != kNone && s.nodes[s.head].last_us < long_from) {
    const uint32_t n = s.head;
    s.index.erase(s.nodes[n].id);
    Unlink(s, n);
    s.free.push_back(n);
  }
}

std::map<std::string, ActiveVisitors::Counts> ActiveVisitors::CountsAt(
    absl::Time now) {
  std::map<std::string, Counts> out;
  const int64_t now_us = absl::ToUnixMicros(now);
  for (auto it = sites_.begin(); it != sites_.end();) {
    Expire(it->second, now_us);
    if (it->second.head == kNone) {
      sites_.erase(it++);
      continue;
    }
    out[it->first] = {it->second.in_short,
                      static_cast<int64_t>(it->second.index.size())};
    ++it;
  }
  return out;
}

size_t ActiveVisitors::ApproximateBytes() const {
  size_t bytes = 0;
  for (const auto& [name, s] : sites_) {
    bytes += s.index.capacity() * (sizeof(uint64_t) + sizeof(uint32_t) + 1) +
             s.nodes.capacity() * sizeof(Node) +
             s.free.capacity() * sizeof(uint32_t) + 64;
  }
  return bytes;
}

}  // namespace kpistream
