#include "aggregate/visitor_recency.h"

#include <algorithm>

namespace kpistream {

int32_t UnixDay(absl::Time t) {
  const int64_t s = absl::ToUnixSeconds(t);
  return static_cast<int32_t>(s >= 0 ? s / 86400 : -((-s + 86399) / 86400));
}

void DayRetention::SeeDay(int32_t day) {
  if (day <= newest_day_) return;
  newest_day_ = day;
  store_->ExpireBefore(day - retention_days_);
}

void DayRetention::Remember(uint64_t key, int32_t day) {
  if (newest_day_ != INT32_MIN && day < newest_day_ - retention_days_) return;
  store_->Put(key, day);
}

void DayRetention::Restore(const v1::FingerprintMap& in, int32_t newest_day) {
  if (FingerprintStore* memory = store_->memory()) {
    memory->Restore(in);
  } else {
    const int n = std::min(in.keys_size(), in.values_size());
    for (int i = 0; i < n; ++i) store_->Put(in.keys(i), in.values(i));
  }
  if (newest_day != 0) newest_day_ = std::max(newest_day_, newest_day);
}

bool VisitorRecency::StartSession(uint64_t visitor, absl::Time t,
                                  uint32_t session_number) {
  const int32_t day = UnixDay(t);
  const std::optional<int32_t> previous = days_.store().Get(visitor);
  days_.SeeDay(day);
  days_.Remember(visitor, std::max(previous.value_or(day), day));
  const bool seen =
      previous.has_value() && day - *previous <= days_.retention_days();
  return session_number <= 1 && !seen;
}

bool OrderOnce::Count(uint64_t order, absl::Time t) {
  const int32_t day = UnixDay(t);
  const std::optional<int32_t> previous = days_.store().Get(order);
  if (previous.has_value() && day - *previous <= kRetentionDays) return false;
  days_.SeeDay(day);
  days_.Remember(order, day);
  return true;
}

}  // namespace kpistream
