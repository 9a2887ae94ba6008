#include "aggregate/time_text.h"

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "absl/time/time.h"
#include "aggregate/event.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

std::string Absl(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

// absl's text with a year of 0 to 999 padded to four digits (RFC 3339).
std::string Rfc3339(absl::Time t) {
  std::string text = Absl(t);
  const size_t dash = text.find('-');
  if (dash != std::string::npos && dash > 0 && dash < 4 &&
      text.find_first_not_of("0123456789") == dash) {
    text.insert(0, 4 - dash, '0');
  }
  return text;
}

TEST(TimeTextTest, WritesWhatAbslWrites) {
  EXPECT_EQ(TimeText(absl::FromUnixSeconds(1767261600)),
            "2026-01-01T10:00:00+00:00");
  EXPECT_EQ(TimeText(absl::FromUnixMillis(1767261600250)),
            "2026-01-01T10:00:00.25+00:00");
  EXPECT_EQ(TimeText(absl::FromUnixNanos(1767261600000000001)),
            "2026-01-01T10:00:00.000000001+00:00");
  // The edges of what events may carry, the infinities, years of other than
  // four digits, a quarter nanosecond: absl's own output, years below 1000
  // padded.
  for (absl::Time t :
       {absl::FromUnixSeconds(kMinEventTimeSeconds),
        absl::FromUnixSeconds(kMaxEventTimeSeconds) +
            absl::Nanoseconds(999999999),
        absl::InfiniteFuture(), absl::InfinitePast(),
        absl::FromUnixSeconds(-62135596800 - 86400),  // year 0
        absl::FromUnixSeconds(253402300800),          // year 10000
        absl::FromUnixSeconds(0) - absl::Nanoseconds(1),
        absl::FromUnixSeconds(1767261600) + absl::Nanoseconds(1) / 4}) {
    EXPECT_EQ(TimeText(t), Rfc3339(t));
  }
  EXPECT_EQ(TimeText(absl::FromUnixSeconds(kMinEventTimeSeconds)),
            "0001-01-01T00:00:00+00:00");
  EXPECT_EQ(TimeText(absl::FromUnixSeconds(-62135596800 - 86400)),
            "0000-12-31T00:00:00+00:00");
  // Before year 0: absl's text, sign and all.
  EXPECT_EQ(TimeText(absl::FromUnixSeconds(-62167219200 - 1)),
            "-1-12-31T23:59:59+00:00");
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
    ASSERT_EQ(TimeText(t), Rfc3339(t)) << i;
  }
}

}  // namespace
}  // namespace kpistream
