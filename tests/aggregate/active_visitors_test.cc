#include "aggregate/active_visitors.h"

#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

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

// The engine keeps one table per site label value: sites beyond the label's
// limit all under "(other)" (an audit's 500,000 sites, a table each, took
// the engine to 1,200 events/s). Within it a visitor is told apart by its
// own site: the same id on two sites is two visitors, as it was summed over
// the sites' tables before.
TEST(ActiveVisitorsTest, SitesSharingALabelValueKeepTheirVisitorsApart) {
  ActiveVisitors active;
  for (int i = 0; i < 1000; ++i) {
    active.Observe("(other)", "v", T0, 0, "site-" + std::to_string(i));
  }
  active.Observe("(other)", "v", T0 + absl::Seconds(1), 0, "site-7");
  active.Observe("(other)", "w", T0 + absl::Seconds(1), 0, "site-7");
  active.Observe("shop", "v", T0 + absl::Seconds(1), 0, "shop");
  active.Observe("shop", "v", T0 + absl::Seconds(2));  // the same visitor
  const auto counts = active.CountsAt(T0 + absl::Minutes(1));
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts.at("(other)").last_5m, 1001);
  EXPECT_EQ(counts.at("(other)").last_30m, 1001);
  EXPECT_EQ(counts.at("shop").last_30m, 1);
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

using LastSeen = std::map<std::pair<std::string, std::string>, absl::Time>;

// What ActiveVisitors::CountsAt(at) must say, counted from every (site,
// visitor)'s last event.
std::map<std::string, ActiveVisitors::Counts> BruteForce(const LastSeen& last,
                                                         absl::Time at) {
  std::map<std::string, ActiveVisitors::Counts> want;
  for (const auto& [key, seen] : last) {
    if (seen < at - absl::Minutes(30)) continue;
    ActiveVisitors::Counts& c = want[key.first];
    ++c.last_30m;
    if (seen >= at - absl::Minutes(5)) ++c.last_5m;
  }
  return want;
}

// Whether `active` counts at `at` what the brute force does.
testing::AssertionResult CountsAsBruteForce(ActiveVisitors& active,
                                            const LastSeen& last,
                                            absl::Time at) {
  const auto want = BruteForce(last, at);
  const auto got = active.CountsAt(at);
  if (got.size() != want.size()) {
    return testing::AssertionFailure()
           << got.size() << " sites counted, want " << want.size();
  }
  for (const auto& [site, c] : want) {
    if (got.at(site).last_5m != c.last_5m ||
        got.at(site).last_30m != c.last_30m) {
      return testing::AssertionFailure()
             << site << ": " << got.at(site).last_5m << " / "
             << got.at(site).last_30m << ", want " << c.last_5m << " / "
             << c.last_30m;
    }
  }
  return testing::AssertionSuccess();
}

// Random gaps (0 to 7 minutes, many of them equal times), two sites and
// visitors coming back across both windows' edges, against a brute force
// count at every step.
TEST(ActiveVisitorsTest, RandomArrivalsMatchABruteForceCountAtEveryStep) {
  std::mt19937_64 rng(5);
  ActiveVisitors active;
  LastSeen last;
  absl::Time now = T0;
  for (int i = 0; i < 5000; ++i) {
    const int gap = static_cast<int>(rng() % 100);
    now += gap < 40   ? absl::ZeroDuration()
           : gap < 95 ? absl::Milliseconds(rng() % 20000)
                      : absl::Seconds(rng() % 420);
    const std::string site = rng() % 4 == 0 ? "blog" : "shop";
    const std::string visitor = "v" + std::to_string(rng() % 60);
    active.Observe(site, visitor, now);
    last[{site, visitor}] = now;
    // Counted a little later, as a publish would.
    const absl::Time at = now + absl::Milliseconds(rng() % 3000);
    ASSERT_TRUE(CountsAsBruteForce(active, last, at)) << i;
    now = at;
  }
}

// Visitors come through four partitions; now and then one is revoked
// (Forget): its visitors, those whose last event came through it, are no
// longer counted, and the rest still count exactly (the windows' queues are
// built again), also as visitors come back through another partition.
TEST(ActiveVisitorsTest, ARevokedPartitionsVisitorsAreForgotten) {
  std::mt19937_64 rng(7);
  ActiveVisitors active;
  const uint32_t owners[] = {active.OwnerOf("web", 0), active.OwnerOf("web", 1),
                             active.OwnerOf("web", 2),
                             active.OwnerOf("repartition", 0)};
  EXPECT_EQ(active.OwnerOf("web", 1), owners[1]);
  EXPECT_NE(owners[0], owners[3]);
  LastSeen last;
  std::map<std::pair<std::string, std::string>, uint32_t> owner_of;
  absl::Time now = T0;
  int forgotten = 0;
  for (int i = 0; i < 5000; ++i) {
    now += rng() % 10 == 0 ? absl::Seconds(rng() % 300)
                           : absl::Milliseconds(rng() % 5000);
    const std::string site = rng() % 3 == 0 ? "blog" : "shop";
    const std::pair<std::string, std::string> key{
        site, "v" + std::to_string(rng() % 80)};
    const uint32_t owner = owners[rng() % 4];
    active.Observe(key.first, key.second, now, owner);
    last[key] = now;
    owner_of[key] = owner;
    if (rng() % 200 == 0) {
      const uint32_t revoked = owners[rng() % 4];
      active.Forget({revoked});
      for (auto it = last.begin(); it != last.end();) {
        if (owner_of[it->first] == revoked) {
          it = last.erase(it);
          ++forgotten;
        } else {
          ++it;
        }
      }
    }
    ASSERT_TRUE(CountsAsBruteForce(active, last, now)) << i;
  }
  EXPECT_GT(forgotten, 50);
}

// Observations wait in batches (ActiveVisitors' batch): counted at random
// moments, between runs of events of one site and of alternating sites, a
// batch of 16 and one of 1 give what a brute force count gives.
TEST(ActiveVisitorsTest, BatchedObservationsCountAsSingleOnes) {
  std::mt19937_64 rng(11);
  ActiveVisitors batched(16);
  ActiveVisitors single(1);
  LastSeen last;
  absl::Time now = T0;
  const char* const sites[] = {"shop", "blog", "docs"};
  for (int i = 0; i < 20000; ++i) {
    now += rng() % 3 == 0 ? absl::ZeroDuration()
                          : absl::Milliseconds(rng() % 2000);
    // Runs of one site, sometimes a different site at every event.
    const std::string site = sites[(i / (1 + rng() % 50)) % 3];
    const std::string visitor = "v" + std::to_string(rng() % 700);
    batched.Observe(site, visitor, now);
    single.Observe(site, visitor, now);
    last[{site, visitor}] = now;
    if (rng() % 40 != 0) continue;
    ASSERT_TRUE(CountsAsBruteForce(batched, last, now)) << i << " batched";
    ASSERT_TRUE(CountsAsBruteForce(single, last, now)) << i << " single";
  }
}

// A site whose visitors all left the windows is forgotten by CountsAt();
// when it comes back it is counted afresh (Observe() keeps the last site
// it saw, which must not outlive it), as is the site seen in between.
TEST(ActiveVisitorsTest, ASiteForgottenAndSeenAgainIsCountedAfresh) {
  ActiveVisitors active;
  active.Observe("shop", "v1", T0);
  active.Observe("shop", "v2", T0);
  EXPECT_EQ(active.CountsAt(T0)["shop"].last_30m, 2);
  EXPECT_TRUE(active.CountsAt(T0 + absl::Minutes(31)).empty());
  active.Observe("shop", "v3", T0 + absl::Minutes(32));
  active.Observe("blog", "v1", T0 + absl::Minutes(32));
  active.Observe("shop", "v4", T0 + absl::Minutes(33));
  auto counts = active.CountsAt(T0 + absl::Minutes(33));
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts["shop"].last_5m, 2);
  EXPECT_EQ(counts["shop"].last_30m, 2);
  EXPECT_EQ(counts["blog"].last_30m, 1);
}

// Memory follows the distinct visitors of the last 30 minutes, not the
// events: 100 visitors sending 1,000,000 events in 10 minutes hold what
// 100 visitors sending one each hold, plus at most the windows' empty
// one-second buckets (1,801 each), not 16 bytes per event.
TEST(ActiveVisitorsTest, MemoryFollowsVisitorsNotEvents) {
  ActiveVisitors few;
  ActiveVisitors many;
  for (int v = 0; v < 100; ++v) {
    few.Observe("shop", "v" + std::to_string(v), T0);
  }
  for (int i = 0; i < 1000000; ++i) {
    many.Observe("shop", "v" + std::to_string(i % 100),
                 T0 + absl::Microseconds(i * 600));
  }
  EXPECT_EQ(many.CountsAt(T0 + absl::Minutes(10))["shop"].last_30m, 100);
  const size_t empty_buckets = 2 * 1801 * sizeof(std::vector<uint64_t>);
  EXPECT_LE(many.ApproximateBytes(), few.ApproximateBytes() + empty_buckets);
}

// Each site seen costs its own tables and queues (two deques of at least a
// 512-byte node each): counted, so that kpistream_state_bytes shows a flood
// of site ids (an audit: ~1.8 KB per site, 100k sites, mostly unseen).
TEST(ActiveVisitorsTest, MemoryCountsEverySite) {
  ActiveVisitors one_site;
  ActiveVisitors many_sites;
  for (int i = 0; i < 10000; ++i) {
    one_site.Observe("shop", "v" + std::to_string(i), T0);
    many_sites.Observe("site-" + std::to_string(i), "v" + std::to_string(i),
                       T0);
  }
  EXPECT_EQ(many_sites.CountsAt(T0).size(), 10000u);
  EXPECT_EQ(one_site.CountsAt(T0)["shop"].last_30m, 10000);
  EXPECT_GE(many_sites.ApproximateBytes(), 10000u * 1024);
  EXPECT_GE(many_sites.ApproximateBytes(), 10 * one_site.ApproximateBytes());
}

}  // namespace
}  // namespace kpistream
