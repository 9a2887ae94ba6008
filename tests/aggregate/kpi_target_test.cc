#include "aggregate/kpi_target.h"

#include <cmath>

#include "gtest/gtest.h"

namespace kpistream {
namespace {

TEST(KpiTargetTest, RollingAtLeastWithTolerance) {
  // Target 10 %, tolerance 2 % relative: met from 9.8 %.
  TargetStatus s =
      EvaluateRolling(Direction::kAtLeast, 0.10, 0.02, 0.098, 500, 100);
  EXPECT_TRUE(s.on_track);
  EXPECT_DOUBLE_EQ(s.attainment, 0.98);
  s = EvaluateRolling(Direction::kAtLeast, 0.10, 0.02, 0.097, 500, 100);
  EXPECT_FALSE(s.on_track);
  EXPECT_TRUE(std::isnan(s.pace));
  EXPECT_TRUE(std::isnan(s.projected));
}

// A value exactly at the tolerance's limit is within it (SPEC §6), as the
// generated alert judges it: 0.1 x 0.9 is 0.09000000000000001 in binary,
// and 9 conversions in 100 sessions read off target.
TEST(KpiTargetTest, AValueExactlyAtTheLimitIsWithinTheTolerance) {
  struct Case {
    Direction direction;
    double target, tolerance, actual;
  };
  for (const Case& c : {Case{Direction::kAtLeast, 0.10, 0.1, 9.0 / 100},
                        Case{Direction::kAtLeast, 0.2, 0.1, 0.18},
                        Case{Direction::kAtLeast, 0.4, 0.2, 0.32},
                        Case{Direction::kAtLeast, 0.05, 0.2, 0.04},
                        Case{Direction::kAtMost, 0.2, 0.15, 0.23},
                        Case{Direction::kAtMost, 100, 0.15, 115}}) {
    EXPECT_TRUE(
        EvaluateRolling(c.direction, c.target, c.tolerance, c.actual, 500, 100)
            .on_track)
        << c.target << " " << c.tolerance << " " << c.actual;
    // Just beyond it is not.
    const double beyond = c.direction == Direction::kAtLeast
                              ? c.actual * (1 - 1e-9)
                              : c.actual * (1 + 1e-9);
    EXPECT_FALSE(
        EvaluateRolling(c.direction, c.target, c.tolerance, beyond, 500, 100)
            .on_track)
        << c.target << " " << c.tolerance << " " << beyond;
  }
  // A period judged by its projection likewise.
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  EXPECT_TRUE(EvaluateCumulative(Direction::kAtMost, 100, 0.15, 115, start,
                                 start + absl::Hours(1), start + absl::Hours(2))
                  .on_track);
  EXPECT_DOUBLE_EQ(ToleranceLimit(true, 0.1, 0.1), 0.09);
  EXPECT_DOUBLE_EQ(ToleranceLimit(false, 0.45, 0.05), 0.4725);
}

TEST(KpiTargetTest, RollingAtMostInvertsAttainment) {
  // Bounce rate at most 40 %: 50 % is off target, attainment 0.8.
  TargetStatus s =
      EvaluateRolling(Direction::kAtMost, 0.40, 0.0, 0.50, 500, 100);
  EXPECT_FALSE(s.on_track);
  EXPECT_DOUBLE_EQ(s.attainment, 0.8);
  s = EvaluateRolling(Direction::kAtMost, 0.40, 0.05, 0.42, 500, 100);
  EXPECT_TRUE(s.on_track);  // 0.42 <= 0.40 * 1.05
  // Zero actual for an at-most KPI: infinitely attained, on track.
  s = EvaluateRolling(Direction::kAtMost, 0.40, 0.0, 0.0, 500, 100);
  EXPECT_TRUE(std::isinf(s.attainment));
  EXPECT_TRUE(s.on_track);
}

TEST(KpiTargetTest, SmallSampleIsNeverOffTarget) {
  // A quiet night: 12 sessions, none converted.
  TargetStatus s =
      EvaluateRolling(Direction::kAtLeast, 0.10, 0.0, 0.0, 12, 100);
  EXPECT_TRUE(s.on_track);
  EXPECT_EQ(s.attainment, 0);
}

const absl::Time kStart = absl::FromUnixSeconds(1790812800);  // 2026-10-01
const absl::Time kEnd = kStart + absl::Hours(24 * 92);        // 2027-01-01

TEST(KpiTargetTest, CumulativePaceAndProjection) {
  // A quarter into the period with 30 of 100: ahead of the linear pace.
  const absl::Time now = kStart + absl::Hours(24 * 23);
  TargetStatus s =
      EvaluateCumulative(Direction::kAtLeast, 100, 0.0, 30, kStart, kEnd, now);
  EXPECT_DOUBLE_EQ(s.pace, 30 / 25.0);
  EXPECT_DOUBLE_EQ(s.projected, 120);
  EXPECT_DOUBLE_EQ(s.attainment, 0.3);
  EXPECT_TRUE(s.on_track);
  // Half way with 40: projected 80, behind.
  s = EvaluateCumulative(Direction::kAtLeast, 100, 0.1, 40, kStart, kEnd,
                         kStart + absl::Hours(24 * 46));
  EXPECT_DOUBLE_EQ(s.projected, 80);
  EXPECT_DOUBLE_EQ(s.pace, 0.8);
  EXPECT_FALSE(s.on_track);
}

TEST(KpiTargetTest, PeriodNotYetStarted) {
  TargetStatus s = EvaluateCumulative(Direction::kAtLeast, 100, 0.0, 0, kStart,
                                      kEnd, kStart - absl::Hours(1));
  EXPECT_TRUE(std::isnan(s.pace));
  EXPECT_TRUE(std::isnan(s.projected));
  EXPECT_TRUE(s.on_track);
}

TEST(KpiTargetTest, PeriodEndedJudgesTheActual) {
  TargetStatus s =
      EvaluateCumulative(Direction::kAtLeast, 100, 0.05, 96, kStart, kEnd,
                         kEnd + absl::Hours(24 * 10));
  EXPECT_DOUBLE_EQ(s.projected, 96);
  EXPECT_DOUBLE_EQ(s.pace, 0.96);
  EXPECT_TRUE(s.on_track);  // within 5 %
  s = EvaluateCumulative(Direction::kAtLeast, 100, 0.0, 96, kStart, kEnd, kEnd);
  EXPECT_FALSE(s.on_track);
}

TEST(KpiTargetTest, CumulativeAtMost) {
  // Spend at most 1000 in the period: 600 half way projects 1200, off track.
  TargetStatus s =
      EvaluateCumulative(Direction::kAtMost, 1000, 0.0, 600, kStart, kEnd,
                         kStart + absl::Hours(24 * 46));
  EXPECT_DOUBLE_EQ(s.projected, 1200);
  EXPECT_FALSE(s.on_track);
  EXPECT_DOUBLE_EQ(s.attainment, 1000.0 / 600);
}

TEST(KpiTargetTest, ZeroTarget) {
  TargetStatus s = EvaluateRolling(Direction::kAtLeast, 0, 0.0, 0, 500, 100);
  EXPECT_EQ(s.attainment, 1);
  EXPECT_TRUE(s.on_track);
}

}  // namespace
}  // namespace kpistream
