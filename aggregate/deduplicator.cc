#include "aggregate/deduplicator.h"

#include <algorithm>

#include "aggregate/stable_hash.h"

namespace kpistream {
namespace {

int32_t MinuteOf(absl::Time t) {
  const int64_t s = absl::ToUnixSeconds(t);
  return static_cast<int32_t>(s >= 0 ? s / 60 : -((-s + 59) / 60));
}

}  // namespace

bool Deduplicator::SeenBefore(absl::string_view site, absl::string_view visitor,
                              absl::string_view event_id,
                              absl::Time event_time) {
  if (event_id.empty() || horizon_ <= absl::ZeroDuration()) return false;
  const uint64_t fingerprint = StableHash(site, visitor, event_id);
  // A copy remembered from more than the horizon before this one is no
  // longer a reason to drop it (nor is one forgotten already).
  const int32_t at_least =
      std::max(keep_from_, MinuteOf(event_time - horizon_));
  return seen_.PutUnlessAtLeast(fingerprint, MinuteOf(event_time), at_least);
}

void Deduplicator::Expire(absl::Time watermark) {
  if (watermark == absl::InfinitePast() ||
      watermark == absl::InfiniteFuture()) {
    return;
  }
  keep_from_ = std::max(keep_from_, MinuteOf(watermark - horizon_ - lateness_));
  const int32_t scan_every =
      std::max<int32_t>(1, static_cast<int32_t>(horizon_ / absl::Minutes(8)));
  if (scanned_at_ != INT32_MIN && keep_from_ - scanned_at_ < scan_every) {
    return;
  }
  scanned_at_ = keep_from_;
  seen_.ExpireBefore(keep_from_);
}

}  // namespace kpistream
