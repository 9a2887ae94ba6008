#include "aggregate/time_text.h"

#include <cstdint>
#include <random>

#include "absl/time/time.h"
#include "aggregate/event.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

std::string Absl(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

TEST(TimeTextTest, WritesWhatAbslWrites) {
  EXPECT_EQ(TimeText(absl::FromUnixSeconds(1767261600)),
            "2026-01-01T10:00:00+00:00");
  EXPECT_EQ(TimeText(absl::FromUnixMillis(1767261600250)),
            "2026-01-01T10:00:00.25+00:00");
  EXPECT_EQ(TimeText(absl::FromUnixNanos(1767261600000000001)),
            "2026-01-01T10:00:00.000000001+00:00");
  // The edges of what events may carry, the infinities, years of other than
  // four digits, a quarter nanosecond: absl's own output.
  for (absl::Time t :
       {absl::FromUnixSeconds(kMinEventTimeSeconds),
        absl::FromUnixSeconds(kMaxEventTimeSeconds) +
            absl::Nanoseconds(999999999),
        absl::InfiniteFuture(), absl::InfinitePast(),
        absl::FromUnixSeconds(-62135596800 - 86400),  // year 0
        absl::FromUnixSeconds(253402300800),          // year 10000
        absl::FromUnixSeconds(0) - absl::Nanoseconds(1),
        absl::FromUnixSeconds(1767261600) + absl::Nanoseconds(1) / 4}) {
    EXPECT_EQ(TimeText(t), Absl(t));
  }
}

TEST(TimeTextTest, MatchesAbslOverTheEventTimeRange) {
  std::mt19937_64 rng(5);
  const int64_t span = kMaxEventTimeSeconds - kMinEventTimeSeconds + 1;
  for (int i = 0; i < 200000; ++i) {
    const int64_t seconds =
        kMinEventTimeSeconds + static_cast<int64_t>(rng() % span);
    // Whole seconds, milli-, micro- and nanosecond fractions.
    constexpr int64_t kGrains[] = {1000000000, 1000000, 1000, 1};
    const int64_t grain = kGrains[rng() % 4];
    const int64_t nanos = static_cast<int64_t>(rng() % 1000000000);
    const absl::Time t = absl::FromUnixSeconds(seconds) +
                         absl::Nanoseconds(nanos / grain * grain);
    ASSERT_EQ(TimeText(t), Absl(t)) << i;
  }
}

}  // namespace
}  // namespace kpistream
