#include "engine/commit_schedule.h"

#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

absl::Time At(int64_t ms) { return kT0 + absl::Milliseconds(ms); }

TEST(CommitScheduleTest, TheFirstCommitIsDueAtOnce) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100), absl::Seconds(4));
  EXPECT_TRUE(s.Due(kT0, /*caught_up=*/false, /*pending=*/false));
}

TEST(CommitScheduleTest, WithABacklogEveryInterval) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100), absl::Seconds(4));
  s.Committed(At(0), At(10));  // the first: nothing to be behind since
  EXPECT_FALSE(s.Due(At(500), /*caught_up=*/false, /*pending=*/true));
  EXPECT_FALSE(s.Due(At(999), false, true));
  EXPECT_TRUE(s.Due(At(1000), false, true));
  // Nothing to commit changes nothing at the interval either.
  EXPECT_TRUE(s.Due(At(1000), false, false));
}

TEST(CommitScheduleTest, CaughtUpWithWorkPendingAfterTheMinimum) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100), absl::Seconds(4));
  s.Committed(At(0), At(10));
  EXPECT_FALSE(s.Due(At(99), /*caught_up=*/true, /*pending=*/true));
  EXPECT_TRUE(s.Due(At(100), true, true));
  // Nothing processed since the last commit: only at the interval.
  EXPECT_FALSE(s.Due(At(500), true, false));
}

TEST(CommitScheduleTest, ASlowCommitIsFollowedByAPauseAsLong) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100), absl::Seconds(4));
  s.Committed(At(0), At(300));  // took 300 ms
  EXPECT_FALSE(s.Due(At(599), /*caught_up=*/true, /*pending=*/true));
  EXPECT_TRUE(s.Due(At(600), true, true));
  // The interval holds whatever the last commit took.
  s.Committed(At(1000), At(1900));
  EXPECT_FALSE(s.Due(At(1999), true, true));
  EXPECT_TRUE(s.Due(At(2000), false, false));
}

// A thread that stays behind a deep backlog commits less and less often, up
// to the maximum; the first poll that catches up brings the interval back.
TEST(CommitScheduleTest, BehindADeepBacklogTheIntervalDoublesUpToTheMaximum) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100), absl::Seconds(4));
  s.Committed(At(0), At(10), /*deep_backlog=*/true);  // the first: as set
  EXPECT_EQ(s.current_interval(), absl::Seconds(1));
  EXPECT_FALSE(s.Due(At(999), /*caught_up=*/false, /*pending=*/true));
  ASSERT_TRUE(s.Due(At(1000), false, true));
  s.Committed(At(1000), At(1100), true);  // behind since the last: 2 s
  EXPECT_EQ(s.current_interval(), absl::Seconds(2));
  EXPECT_FALSE(s.Due(At(2999), false, true));
  ASSERT_TRUE(s.Due(At(3000), false, true));
  s.Committed(At(3000), At(3100), true);
  EXPECT_EQ(s.current_interval(), absl::Seconds(4));
  EXPECT_FALSE(s.Due(At(6999), false, true));
  ASSERT_TRUE(s.Due(At(7000), false, true));
  s.Committed(At(7000), At(7100), true);
  EXPECT_EQ(s.current_interval(), absl::Seconds(4));  // the maximum
  EXPECT_FALSE(s.Due(At(7999), false, true));
  // A poll that catches up: back to the interval, due at once here.
  EXPECT_TRUE(s.Due(At(8000), /*caught_up=*/true, /*pending=*/false));
  EXPECT_EQ(s.current_interval(), absl::Seconds(1));
  s.Committed(At(8000), At(8100), true);
  EXPECT_EQ(s.current_interval(), absl::Seconds(1));
  EXPECT_FALSE(s.Due(At(8999), false, true));
  EXPECT_TRUE(s.Due(At(9000), false, true));
}

// Behind at every poll, but with no more left than an interval's work (a
// burst): the interval stays; so it does after one poll that caught up.
TEST(CommitScheduleTest, ABurstOrACaughtUpPollKeepsTheInterval) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100), absl::Seconds(4));
  s.Committed(At(0), At(10), true);
  ASSERT_TRUE(s.Due(At(1000), /*caught_up=*/false, /*pending=*/true));
  s.Committed(At(1000), At(1100), /*deep_backlog=*/false);
  EXPECT_EQ(s.current_interval(), absl::Seconds(1));
  EXPECT_FALSE(s.Due(At(1400), /*caught_up=*/true, /*pending=*/false));
  EXPECT_FALSE(s.Due(At(1500), /*caught_up=*/false, /*pending=*/true));
  ASSERT_TRUE(s.Due(At(2000), false, true));
  s.Committed(At(2000), At(2100), /*deep_backlog=*/true);
  EXPECT_EQ(s.current_interval(), absl::Seconds(1));
  // A deep backlog after a stretch that shrinks to a burst: back to 1 s.
  ASSERT_TRUE(s.Due(At(3000), false, true));
  s.Committed(At(3000), At(3100), true);
  EXPECT_EQ(s.current_interval(), absl::Seconds(2));
  ASSERT_TRUE(s.Due(At(5000), false, true));
  s.Committed(At(5000), At(5100), false);
  EXPECT_EQ(s.current_interval(), absl::Seconds(1));
}

// max_interval equal to the interval (or below it): a fixed interval.
TEST(CommitScheduleTest, AMaximumAtTheIntervalKeepsItFixed) {
  CommitSchedule s(absl::Seconds(1), absl::Milliseconds(100),
                   absl::Milliseconds(500));
  EXPECT_EQ(s.max_interval(), absl::Seconds(1));
  s.Committed(At(0), At(10), true);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(s.Due(At(i * 1000), /*caught_up=*/false, /*pending=*/true));
    s.Committed(At(i * 1000), At(i * 1000 + 10), true);
    EXPECT_EQ(s.current_interval(), absl::Seconds(1));
  }
}

TEST(CommitScheduleTest, AMinimumAboveTheIntervalIsTheInterval) {
  CommitSchedule s(absl::Milliseconds(50), absl::Milliseconds(100),
                   absl::Milliseconds(50));
  EXPECT_EQ(s.min_interval(), absl::Milliseconds(50));
  s.Committed(At(0), At(1));
  EXPECT_TRUE(s.Due(At(50), false, false));
}

}  // namespace
}  // namespace kpistream
