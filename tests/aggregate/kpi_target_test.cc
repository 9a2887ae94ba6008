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
