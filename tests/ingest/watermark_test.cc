#include "ingest/watermark.h"

#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time T0 = absl::FromUnixSeconds(1767261600);
const absl::Time kNow = absl::FromUnixSeconds(2000000000);

TEST(WatermarkTest, InfinitePastBeforeAnyEvent) {
  WatermarkTracker w(absl::Seconds(30), absl::Seconds(30));
  w.Assign(0, kNow);
  EXPECT_EQ(w.Current(kNow), absl::InfinitePast());
}

TEST(WatermarkTest, SinglePartitionIsMaxMinusOutOfOrderness) {
  WatermarkTracker w(absl::Seconds(30), absl::Seconds(30));
  w.Observe(0, T0 + absl::Minutes(5), kNow);
  w.Observe(0, T0 + absl::Minutes(1), kNow);
  EXPECT_EQ(w.Current(kNow), T0 + absl::Minutes(5) - absl::Seconds(30));
}

TEST(WatermarkTest, MinimumOverActivePartitions) {
  WatermarkTracker w(absl::Seconds(10), absl::Seconds(30));
  w.Observe(0, T0 + absl::Minutes(5), kNow);
  w.Observe(1, T0 + absl::Minutes(2), kNow);
  EXPECT_EQ(w.Current(kNow), T0 + absl::Minutes(2) - absl::Seconds(10));
}

TEST(WatermarkTest, IdlePartitionDoesNotHoldItBack) {
  WatermarkTracker w(absl::Seconds(10), absl::Seconds(30));
  w.Observe(0, T0 + absl::Minutes(2), kNow);
  w.Observe(1, T0 + absl::Minutes(5), kNow + absl::Seconds(20));
  EXPECT_EQ(w.Current(kNow + absl::Seconds(29)),
            T0 + absl::Minutes(2) - absl::Seconds(10));
  // Partition 0 idle for 30 s: only partition 1 counts.
  EXPECT_EQ(w.Current(kNow + absl::Seconds(30)),
            T0 + absl::Minutes(5) - absl::Seconds(10));
  // It comes back with an event: active again, but W never goes backwards.
  w.Observe(0, T0 + absl::Minutes(3), kNow + absl::Seconds(31));
  EXPECT_EQ(w.Current(kNow + absl::Seconds(31)),
            T0 + absl::Minutes(5) - absl::Seconds(10));
  w.Observe(0, T0 + absl::Minutes(9), kNow + absl::Seconds(32));
  w.Observe(1, T0 + absl::Minutes(8), kNow + absl::Seconds(32));
  EXPECT_EQ(w.Current(kNow + absl::Seconds(32)),
            T0 + absl::Minutes(8) - absl::Seconds(10));
}

TEST(WatermarkTest, AllIdleUsesTheMaximum) {
  WatermarkTracker w(absl::Seconds(10), absl::Seconds(1));
  w.Observe(0, T0, kNow);
  w.Observe(1, T0 + absl::Hours(1), kNow);
  EXPECT_EQ(w.Current(kNow + absl::Seconds(5)),
            T0 + absl::Hours(1) - absl::Seconds(10));
}

TEST(WatermarkTest, RevokedPartitionNoLongerCounts) {
  WatermarkTracker w(absl::Seconds(10), absl::Minutes(1));
  w.Observe(0, T0, kNow);
  w.Observe(1, T0 + absl::Hours(1), kNow);
  EXPECT_EQ(w.Current(kNow), T0 - absl::Seconds(10));
  w.Revoke(0);
  EXPECT_EQ(w.Current(kNow), T0 + absl::Hours(1) - absl::Seconds(10));
}

TEST(WatermarkTest, NewlyAssignedPartitionHoldsItBackUntilIdle) {
  WatermarkTracker w(absl::Seconds(10), absl::Seconds(5));
  w.Assign(0, kNow);
  w.Assign(1, kNow);
  w.Observe(0, T0 + absl::Hours(2), kNow + absl::Seconds(1));
  // Partition 1 has delivered nothing yet: it may still have older events.
  EXPECT_EQ(w.Current(kNow + absl::Seconds(2)), absl::InfinitePast());
  w.Observe(1, T0, kNow + absl::Seconds(3));
  EXPECT_EQ(w.Current(kNow + absl::Seconds(3)), T0 - absl::Seconds(10));
  // Quiet ever since: idle, no longer holding it back.
  EXPECT_EQ(w.Current(kNow + absl::Seconds(8)),
            T0 + absl::Hours(2) - absl::Seconds(10));

  WatermarkTracker never(absl::Seconds(10), absl::Seconds(5));
  never.Assign(0, kNow);
  never.Assign(1, kNow);
  never.Observe(0, T0, kNow + absl::Seconds(1));
  EXPECT_EQ(never.Current(kNow + absl::Seconds(4)), absl::InfinitePast());
  EXPECT_EQ(never.Current(kNow + absl::Seconds(5)), T0 - absl::Seconds(10));
}

}  // namespace
}  // namespace kpistream
