#include "aggregate/active_visitors.h"

#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time T0 = absl::FromUnixSeconds(1767225600);

TEST(ActiveVisitorsTest, DistinctVisitorsInFiveAndThirtyMinutes) {
  ActiveVisitors active;
  active.Observe("shop", "a", T0);
  active.Observe("shop", "a", T0 + absl::Minutes(1));  // same visitor again
  active.Observe("shop", "b", T0 + absl::Minutes(2));
  active.Observe("blog", "a", T0 + absl::Minutes(2));  // another site
  auto counts = active.CountsAt(T0 + absl::Minutes(3));
  EXPECT_EQ(counts["shop"].last_5m, 2);
  EXPECT_EQ(counts["shop"].last_30m, 2);
  EXPECT_EQ(counts["blog"].last_5m, 1);

  // a last seen at 1:00, b at 2:00: at 6:30 only b is within 5 minutes.
  counts = active.CountsAt(T0 + absl::Minutes(6) + absl::Seconds(30));
  EXPECT_EQ(counts["shop"].last_5m, 1);
  EXPECT_EQ(counts["shop"].last_30m, 2);

  // a comes back: in the 5 minute window again, still one of two in 30.
  active.Observe("shop", "a", T0 + absl::Minutes(10));
  counts = active.CountsAt(T0 + absl::Minutes(10));
  EXPECT_EQ(counts["shop"].last_5m, 1);
  EXPECT_EQ(counts["shop"].last_30m, 2);

  // b leaves the 30 minute window at 32:00; a at 40:00.
  counts = active.CountsAt(T0 + absl::Minutes(33));
  EXPECT_EQ(counts["shop"].last_30m, 1);
  EXPECT_EQ(counts["shop"].last_5m, 0);
  counts = active.CountsAt(T0 + absl::Minutes(41));
  EXPECT_EQ(counts.count("shop"), 0u);
  EXPECT_EQ(counts.count("blog"), 0u);
}

TEST(ActiveVisitorsTest, ManyVisitorsMatchABruteForceCount) {
  ActiveVisitors active;
  std::map<std::string, absl::Time> last;
  absl::Time now = T0;
  for (int i = 0; i < 20000; ++i) {
    now += absl::Milliseconds(200);
    const std::string v = "v" + std::to_string((i * 7919) % 3000);
    active.Observe("shop", v, now);
    last[v] = now;
    if (i % 997 == 0) {
      int64_t want5 = 0, want30 = 0;
      for (const auto& [visitor, at] : last) {
        if (at >= now - absl::Minutes(5)) ++want5;
        if (at >= now - absl::Minutes(30)) ++want30;
      }
      auto counts = active.CountsAt(now);
      EXPECT_EQ(counts["shop"].last_5m, want5) << i;
      EXPECT_EQ(counts["shop"].last_30m, want30) << i;
    }
  }
}

}  // namespace
}  // namespace kpistream
