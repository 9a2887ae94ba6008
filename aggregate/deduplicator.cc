#include "aggregate/deduplicator.h"

#include "absl/hash/hash.h"

namespace kpistream {

bool Deduplicator::SeenBefore(absl::string_view site,
                              absl::string_view event_id,
                              absl::Time event_time) {
  if (event_id.empty() || horizon_ <= absl::ZeroDuration()) return false;
  const uint64_t fingerprint = absl::HashOf(site, event_id);
  if (!seen_.insert(fingerprint).second) return true;
  by_minute_[absl::ToUnixSeconds(event_time) / 60].push_back(fingerprint);
  return false;
}

void Deduplicator::Expire(absl::Time watermark) {
  if (watermark == absl::InfinitePast()) return;
  const int64_t keep_from = absl::ToUnixSeconds(watermark - horizon_) / 60;
  while (!by_minute_.empty() && by_minute_.begin()->first < keep_from) {
    for (uint64_t f : by_minute_.begin()->second) seen_.erase(f);
    by_minute_.erase(by_minute_.begin());
  }
}

size_t Deduplicator::ApproximateBytes() const {
  return seen_.capacity() * (sizeof(uint64_t) + 1) +
         seen_.size() * sizeof(uint64_t) + by_minute_.size() * 64;
}

}  // namespace kpistream
