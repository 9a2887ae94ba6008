#include "engine/commit_schedule.h"

#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

absl::Time At(int64_t ms) { return kT0 + absl::Milliseconds(ms); }

TEST(CommitScheduleTest, TheFirstCommitIsDueAtOnce) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100));
  EXPECT_TRUE(s.Due(kT0, /*caught_up=*/false, /*pending=*/false));
}

TEST(CommitScheduleTest, WithABacklogEveryInterval) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100));
  s.Committed(At(0), At(10));
  EXPECT_FALSE(s.Due(At(500), /*caught_up=*/false, /*pending=*/true));
  EXPECT_FALSE(s.Due(At(999), false, true));
  EXPECT_TRUE(s.Due(At(1000), false, true));
  // Nothing to commit changes nothing at the interval either.
  EXPECT_TRUE(s.Due(At(1000), false, false));
}

TEST(CommitScheduleTest, CaughtUpWithWorkPendingAfterTheMinimum) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100));
  s.Committed(At(0), At(10));
  EXPECT_FALSE(s.Due(At(99), /*caught_up=*/true, /*pending=*/true));
  EXPECT_TRUE(s.Due(At(100), true, true));
  // Nothing processed since the last commit: only at the interval.
  EXPECT_FALSE(s.Due(At(500), true, false));
}

TEST(CommitScheduleTest, ASlowCommitIsFollowedByAPauseAsLong) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100));
  s.Committed(At(0), At(300));  // took 300 ms
  EXPECT_FALSE(s.Due(At(599), /*caught_up=*/true, /*pending=*/true));
  EXPECT_TRUE(s.Due(At(600), true, true));
  // The interval holds whatever the last commit took.
  s.Committed(At(1000), At(1900));
  EXPECT_FALSE(s.Due(At(1999), true, true));
  EXPECT_TRUE(s.Due(At(2000), false, false));
}

TEST(CommitScheduleTest, AMinimumAboveTheIntervalIsTheInterval) {
  CommitSchedule s(absl::Milliseconds(50), absl::Milliseconds(100));
  EXPECT_EQ(s.min_interval(), absl::Milliseconds(50));
  s.Committed(At(0), At(1));
  EXPECT_TRUE(s.Due(At(50), false, false));
}

}  // namespace
}  // namespace kpistream
