#include "aggregate/partition_state.h"

namespace kpistream {

PartitionState::PartitionState(SessionRules rules,
                               absl::Duration allowed_lateness,
                               SessionObserver* observer,
                               const SessionAttribution* attribution,
                               absl::Duration dedup_horizon)
    : allowed_lateness_(allowed_lateness),
      sessionizer_(rules, observer, attribution),
      dedup_(dedup_horizon) {}

PartitionState::Admit PartitionState::Offer(Event&& event,
                                            absl::Time watermark) {
  if (watermark != absl::InfinitePast() &&
      event.time < watermark - allowed_lateness_) {
    return Admit::kLate;
  }
  if (dedup_.SeenBefore(event.site_id, event.event_id, event.time)) {
    return Admit::kDuplicate;
  }
  if (watermark != absl::InfinitePast()) {
    if (event.time < watermark) {
      // Behind the watermark but within the allowed lateness. Everything
      // buffered before the watermark goes first, so that the sessionizer
      // still sees buffered events in order after this one.
      Release(watermark);
      return sessionizer_.Add(std::move(event)) ==
                     Sessionizer::AddResult::kApplied
                 ? Admit::kAccepted
                 : Admit::kLate;
    }
  }
  buffer_.Push(std::move(event));
  return Admit::kAccepted;
}

size_t PartitionState::Advance(absl::Time watermark) {
  if (watermark == absl::InfinitePast()) return 0;
  Release(watermark);
  dedup_.Expire(watermark);
  return sessionizer_.CloseUpTo(watermark - allowed_lateness_);
}

void PartitionState::Release(absl::Time watermark) {
  // Released events are in order and no later than any event applied
  // directly (see Offer), so the sessionizer never refuses them.
  buffer_.ReleaseBefore(watermark,
                        [this](Event&& e) { sessionizer_.Add(std::move(e)); });
}

size_t PartitionState::Drain() {
  buffer_.ReleaseAll([this](Event&& e) { sessionizer_.Add(std::move(e)); });
  return sessionizer_.CloseAll();
}

size_t PartitionState::ApproximateBytes() const {
  return sessionizer_.ApproximateBytes() + buffer_.ApproximateBytes() +
         dedup_.ApproximateBytes();
}

}  // namespace kpistream
