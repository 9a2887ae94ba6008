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
  // Partition 0 quiet for 30 s and found caught up: idle, only partition 1
  // counts.
  w.CaughtUp(0, kNow + absl::Seconds(30));
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
  w.CaughtUp(0, kNow + absl::Seconds(5));
  w.CaughtUp(1, kNow + absl::Seconds(5));
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
  // Quiet ever since and caught up: idle, no longer holding it back.
  w.CaughtUp(1, kNow + absl::Seconds(8));
  EXPECT_EQ(w.Current(kNow + absl::Seconds(8)),
            T0 + absl::Hours(2) - absl::Seconds(10));

  WatermarkTracker never(absl::Seconds(10), absl::Seconds(5));
  never.Assign(0, kNow);
  never.Assign(1, kNow);
  never.Observe(0, T0, kNow + absl::Seconds(1));
  EXPECT_EQ(never.Current(kNow + absl::Seconds(4)), absl::InfinitePast());
  never.CaughtUp(1, kNow + absl::Seconds(5));
  EXPECT_EQ(never.Current(kNow + absl::Seconds(5)), T0 - absl::Seconds(10));
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

const absl::Time kT = absl::FromUnixSeconds(1767225600);

// A partition's own watermark depends on its own events: a lagging
// partition (e.g. moved after a crash) finds none of its events late however
// far the others are.
TEST(PartitionWatermarkTest, OwnEventsOnlyWhileActive) {
  WatermarkTracker w(absl::Seconds(30), absl::Seconds(5));
  const absl::Time now = kT;
  w.Assign(1, now);
  w.Assign(2, now);
  w.Observe(1, kT + absl::Hours(2), now);
  w.Observe(2, kT, now);
  const absl::Time thread = w.Current(now);
  EXPECT_EQ(thread, kT - absl::Seconds(30));
  EXPECT_EQ(w.Of(1, now, thread), kT + absl::Hours(2) - absl::Seconds(30));
  EXPECT_EQ(w.Of(2, now, thread), kT - absl::Seconds(30));
}

// An idle partition (quiet, nothing waiting) adopts the thread's watermark
// so that its sessions close; one with records waiting does not.
TEST(PartitionWatermarkTest, IdleAdoptsTheThreadsWatermark) {
  WatermarkTracker w(absl::Seconds(30), absl::Seconds(5));
  w.Assign(1, kT);
  w.Assign(2, kT);
  w.Observe(1, kT, kT);
  w.Observe(2, kT + absl::Hours(1), kT);
  const absl::Time later = kT + absl::Seconds(10);
  w.SetBacklog(1, true);
  w.Observe(2, kT + absl::Hours(1), later);  // 2 stays active
  absl::Time thread = w.Current(later);
  EXPECT_EQ(w.Of(1, later, thread), kT - absl::Seconds(30));  // waiting
  w.SetBacklog(1, false);
  w.CaughtUp(1, later);
  thread = w.Current(later);
  EXPECT_EQ(thread, kT + absl::Hours(1) - absl::Seconds(30));
  EXPECT_EQ(w.Of(1, later, thread), thread);  // idle: adopts it
  // Never backwards, even when partition 1 is active again.
  w.Observe(1, kT + absl::Seconds(1), later);
  EXPECT_EQ(w.Of(1, later, w.Current(later)),
            kT + absl::Hours(1) - absl::Seconds(30));
}

// A thread whose partitions are all idle: they adopt the instance's
// watermark (its other threads' active partitions') where that is higher
// than theirs; a thread with an active partition goes by its own.
TEST(PartitionWatermarkTest, AllIdleAdoptsTheInstancesWatermark) {
  WatermarkTracker w(absl::Seconds(30), absl::Seconds(5));
  w.Assign(1, kT);
  w.Observe(1, kT, kT);
  const absl::Time later = kT + absl::Seconds(10);
  const absl::Time instance = kT + absl::Hours(1);
  EXPECT_FALSE(w.AllIdle(later));  // not found caught up yet: active
  EXPECT_EQ(w.AdoptionBasis(later, instance), kT - absl::Seconds(30));
  w.CaughtUp(1, later);
  EXPECT_TRUE(w.AllIdle(later));
  const absl::Time basis = w.AdoptionBasis(later, instance);
  EXPECT_EQ(basis, instance);
  EXPECT_EQ(w.Of(1, later, basis), instance);
  EXPECT_EQ(w.Current(later), instance);
  // The instance's lower than its own: its own.
  EXPECT_EQ(w.AdoptionBasis(later, kT - absl::Hours(1)), instance);
  // An active partition beside it: the thread goes by that one.
  w.Assign(2, later);
  w.Observe(2, kT + absl::Minutes(2), later);
  EXPECT_FALSE(w.AllIdle(later));
  EXPECT_EQ(w.AdoptionBasis(later, kT + absl::Hours(2)),
            kT + absl::Minutes(2) - absl::Seconds(30));
}

// Quiet is not idle: a partition whose records are slow to arrive (a new
// owner restoring, a stalled fetch) while the consumer's cached end says
// nothing is waiting keeps its own watermark until a look at its end, made
// while it is quiet, finds it caught up.
TEST(PartitionWatermarkTest, QuietIsIdleOnlyOnceFoundCaughtUp) {
  WatermarkTracker w(absl::Seconds(30), absl::Seconds(5));
  w.Assign(1, kT);
  w.Assign(2, kT);
  w.SetBacklog(1, false);                // stale: nothing fetched yet
  w.CaughtUp(1, kT + absl::Seconds(1));  // before it was quiet: no proof
  const absl::Time later = kT + absl::Seconds(10);
  w.Observe(2, kT + absl::Hours(1), later);
  EXPECT_TRUE(w.Quiet(1, later));
  EXPECT_FALSE(w.Idle(1, later));
  EXPECT_EQ(w.Current(later), absl::InfinitePast());  // 1 holds it back
  EXPECT_EQ(w.Of(1, later, w.Current(later)), absl::InfinitePast());
  w.CaughtUp(1, later);
  EXPECT_TRUE(w.Idle(1, later));
  const absl::Time thread = w.Current(later);
  EXPECT_EQ(thread, kT + absl::Hours(1) - absl::Seconds(30));
  EXPECT_EQ(w.Of(1, later, thread), thread);
  // Records waiting, as the consumer sees them, end the idleness.
  WatermarkTracker v(absl::Seconds(30), absl::Seconds(5));
  v.Assign(1, kT);
  v.CaughtUp(1, later);
  v.SetBacklog(1, true);
  EXPECT_FALSE(v.Idle(1, later));
}

// Restored from a checkpoint: starts at its frontier, never below.
TEST(PartitionWatermarkTest, StartsAtTheRestoredFrontier) {
  WatermarkTracker w(absl::Seconds(30), absl::Seconds(5));
  w.Assign(7, kT, kT + absl::Minutes(10), kT + absl::Minutes(20));
  EXPECT_EQ(w.Of(7, kT, w.Current(kT)), kT + absl::Minutes(20));
  w.Observe(7, kT + absl::Minutes(11), kT);
  EXPECT_EQ(w.Of(7, kT, w.Current(kT)), kT + absl::Minutes(20));
}

// A repartition partition's watermark is given by its sources: from its
// assignment on, neither its own events (a fast source's, ahead of a slow
// one's) nor idleness move it; only SetExternal does, and its restored
// frontier is kept.
TEST(PartitionWatermarkTest, ExternalIsOnlyEverGiven) {
  WatermarkTracker w(absl::Seconds(30), absl::Seconds(5));
  w.Assign(1, kT);
  w.Assign(9, kT, kT + absl::Hours(2), kT + absl::Minutes(5),
           /*external=*/true);
  w.Observe(1, kT + absl::Hours(1), kT);
  w.Observe(9, kT + absl::Hours(3), kT);
  const absl::Time later = kT + absl::Minutes(1);  // 9 quiet, caught up
  w.CaughtUp(9, later);
  w.Observe(1, kT + absl::Hours(1), later);
  EXPECT_FALSE(w.Idle(9, later));
  const absl::Time basis = w.AdoptionBasis(later);
  EXPECT_EQ(basis, kT + absl::Hours(1) - absl::Seconds(30));
  EXPECT_EQ(w.Of(9, later, basis), kT + absl::Minutes(5));
  w.SetExternal(9, kT + absl::Minutes(7));
  EXPECT_EQ(w.Of(9, later, w.AdoptionBasis(later)), kT + absl::Minutes(7));
  w.SetExternal(9, kT + absl::Minutes(6));  // never backwards
  EXPECT_EQ(w.Of(9, later, w.AdoptionBasis(later)), kT + absl::Minutes(7));
}

}  // namespace
}  // namespace kpistream
