#include "aggregate/fingerprint_store.h"

#include <algorithm>

namespace kpistream {

void FingerprintStore::ExpireBefore(int32_t threshold) {
  absl::erase_if(map_, [threshold](const auto& entry) {
    return entry.second < threshold;
  });
}

size_t FingerprintStore::Checkpoint(
    bool full, absl::FunctionRef<void(uint64_t, int32_t)> write) {
  size_t written = 0;
  if (full) {
    for (const auto& [key, value] : map_) {
      write(key, value);
      ++written;
    }
  } else {
    std::sort(changed_.begin(), changed_.end());
    changed_.erase(std::unique(changed_.begin(), changed_.end()),
                   changed_.end());
    for (uint64_t key : changed_) {
      auto it = map_.find(key);
      if (it == map_.end()) continue;  // expired since
      write(key, it->second);
      ++written;
    }
  }
  changed_.clear();
  return written;
}

void FingerprintStore::Restore(const v1::FingerprintMap& in) {
  const int n = std::min(in.keys_size(), in.values_size());
  map_.reserve(map_.size() + static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) map_[in.keys(i)] = in.values(i);
}

}  // namespace kpistream
