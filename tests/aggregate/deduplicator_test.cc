#include "aggregate/deduplicator.h"

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "aggregate/fingerprint_store.h"
#include "aggregate/partition_state.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time T0 = absl::FromUnixSeconds(1767261600);

TEST(DeduplicatorTest, SameSiteVisitorAndIdInsideTheHorizonIsADuplicate) {
  Deduplicator d(absl::Hours(1));
  EXPECT_FALSE(d.SeenBefore("shop", "v1", "e1", T0));
  EXPECT_TRUE(d.SeenBefore("shop", "v1", "e1", T0 + absl::Minutes(5)));
  EXPECT_FALSE(d.SeenBefore("blog", "v1", "e1", T0));  // another site
  // Another visitor's event with that id is another event: whether it
  // shares the partition (here) or not, it counts (an audit: dropped when it
  // shared the partition, counted when not).
  EXPECT_FALSE(d.SeenBefore("shop", "v2", "e1", T0));
  EXPECT_TRUE(d.SeenBefore("shop", "v2", "e1", T0));
  EXPECT_FALSE(d.SeenBefore("shop", "v1", "", T0));  // no id: never
  EXPECT_FALSE(d.SeenBefore("shop", "v1", "", T0));
  // The parts are not run together: ("ab", "c") is not ("a", "bc").
  EXPECT_FALSE(d.SeenBefore("shop", "v1e", "1", T0));
}

TEST(DeduplicatorTest, ForgetsBeyondTheHorizon) {
  Deduplicator d(absl::Hours(1));
  d.SeenBefore("shop", "v1", "e1", T0);
  d.Expire(T0 + absl::Minutes(59));
  EXPECT_TRUE(d.SeenBefore("shop", "v1", "e1", T0));
  d.Expire(T0 + absl::Hours(1) + absl::Minutes(2));
  // Forgotten at once (a repeat now is new), memory freed by the next scan.
  EXPECT_FALSE(d.SeenBefore("shop", "v1", "e1", T0 + absl::Hours(2)));
  d.Expire(T0 + absl::Hours(3) + absl::Minutes(10));
  EXPECT_EQ(d.size(), 0u);
}

// Whether an event is a repeat depends on the two copies' times, not on
// when the watermark moved: the same events, with the copies forgotten
// after every event or only once at the end, give the same answers (an
// audit: a repeat hours after its first copy was dropped or not as the
// poll batches fell, two runs over one input counting 942 and 877).
TEST(DeduplicatorTest, RepeatsDoNotDependOnWhenTheWatermarkMoved) {
  const absl::Duration horizon = absl::Hours(1);
  const absl::Duration lateness = absl::Minutes(5);
  const absl::Duration out_of_order = absl::Seconds(30);
  struct Sent {
    std::string id;
    absl::Time time;
  };
  // A run of 600 events a minute apart, then the same run again 2 h 50 min
  // later (a producer replaying its log), then repeats seconds apart.
  std::vector<Sent> sent;
  for (int i = 0; i < 600; ++i) {
    sent.push_back({absl::StrCat("e", i), T0 + absl::Minutes(i)});
  }
  for (int i = 0; i < 600; ++i) {
    sent.push_back(
        {absl::StrCat("e", i), T0 + absl::Minutes(170) + absl::Minutes(i)});
  }
  for (int i = 0; i < 50; ++i) {
    const absl::Time t = T0 + absl::Minutes(800 + i);
    sent.push_back({absl::StrCat("r", i), t});
    sent.push_back({absl::StrCat("r", i), t + absl::Seconds(20)});
  }
  auto run = [&](int expire_every) {
    Deduplicator d(horizon, lateness);
    std::vector<bool> answers;
    absl::Time highest = absl::InfinitePast();
    for (size_t i = 0; i < sent.size(); ++i) {
      answers.push_back(d.SeenBefore("shop", "v1", sent[i].id, sent[i].time));
      highest = std::max(highest, sent[i].time);
      if (expire_every > 0 && i % expire_every == 0) {
        d.Expire(highest - out_of_order);
      }
    }
    return answers;
  };
  const std::vector<bool> every = run(1);
  EXPECT_EQ(run(0), every);
  EXPECT_EQ(run(7), every);
  EXPECT_EQ(run(250), every);
  // The replay 2 h 50 min later is new events; the repeats 20 s apart are
  // repeats.
  EXPECT_EQ(std::count(every.begin(), every.end(), true), 50);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(every[1200 + 2 * i + 1]) << i;
}

class NullObserver : public SessionObserver {
  void OnSessionStarted(const SessionAttributes&, const EventView&) override {}
  void OnEvent(const SessionAttributes&, const EventView&) override {}
  void OnSessionClosed(const ClosedSession&) override {}
};

// PutUnlessAtLeast is Get, then Put when the entry is missing or below the
// threshold, in one lookup: the same answers, entries and checkpoints.
TEST(FingerprintStoreTest, PutUnlessAtLeastIsGetThenPut) {
  FingerprintStore one, two;
  std::mt19937_64 rng(7);
  auto checkpoint = [](FingerprintStore& s) {
    std::vector<std::pair<uint64_t, int32_t>> out;
    s.Checkpoint(false, [&](uint64_t k, int32_t v) { out.push_back({k, v}); });
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  int held = 0;
  for (int i = 0; i < 20000; ++i) {
    const uint64_t key = rng() % 500;
    const int32_t value = static_cast<int32_t>(rng() % 40);
    const int32_t at_least = static_cast<int32_t>(rng() % 40);
    const std::optional<int32_t> got = two.Get(key);
    const bool expected = got.has_value() && *got >= at_least;
    if (!expected) two.Put(key, value);
    ASSERT_EQ(one.PutUnlessAtLeast(key, value, at_least), expected) << i;
    held += expected;
    if (i % 1000 == 999) {
      ASSERT_EQ(checkpoint(one), checkpoint(two)) << i;
      one.ExpireBefore(i % 7);
      two.ExpireBefore(i % 7);
    }
  }
  EXPECT_GT(held, 1000);
  EXPECT_EQ(one.size(), two.size());
  for (uint64_t key = 0; key < 500; ++key)
    EXPECT_EQ(one.Get(key), two.Get(key));
}

// Incremental checkpoints (keys in the order they changed, a key changed
// twice written twice) restored in order give the entries the store holds,
// once both forget what the highest threshold expired. Values change as
// the engine's do: up, or anyhow once below the highest threshold so far
// (PutUnlessAtLeast with the Deduplicator's keep_from); expiries come
// between and across checkpoints.
TEST(FingerprintStoreTest, IncrementalCheckpointsRestoreTheEntries) {
  FingerprintStore live;
  std::vector<v1::FingerprintMap> checkpoints;
  auto checkpoint = [&](bool full) {
    v1::FingerprintMap m;
    live.Checkpoint(full, [&](uint64_t k, int32_t v) {
      m.add_keys(k);
      m.add_values(v);
    });
    checkpoints.push_back(std::move(m));
  };
  std::mt19937_64 rng(11);
  int32_t highest = INT32_MIN;
  size_t repeats = 0;
  for (int i = 0; i < 30000; ++i) {
    const uint64_t key = rng() % 2000;
    const int32_t value = static_cast<int32_t>(rng() % 100);
    if (rng() % 2 == 0) {
      live.Put(key, std::max(value, live.Get(key).value_or(INT32_MIN)));
    } else {
      live.PutUnlessAtLeast(key, value, highest);
    }
    if (i % 997 == 996) {
      const int32_t threshold = static_cast<int32_t>(rng() % 20);
      highest = std::max(highest, threshold);
      live.ExpireBefore(threshold);
    }
    if (i == 5000) checkpoint(/*full=*/true);
    if (i > 5000 && i % 1500 == 0) {
      checkpoint(/*full=*/false);
      std::vector<uint64_t> keys(checkpoints.back().keys().begin(),
                                 checkpoints.back().keys().end());
      std::sort(keys.begin(), keys.end());
      repeats += static_cast<size_t>(keys.end() -
                                     std::unique(keys.begin(), keys.end()));
    }
  }
  checkpoint(/*full=*/false);
  FingerprintStore restored;
  for (const v1::FingerprintMap& m : checkpoints) restored.Restore(m);
  live.ExpireBefore(highest);
  restored.ExpireBefore(highest);
  EXPECT_GT(live.size(), 1000u);
  EXPECT_GT(repeats, 0u);  // the case of a key written twice came up
  EXPECT_EQ(restored.size(), live.size());
  for (uint64_t key = 0; key < 2000; ++key) {
    ASSERT_EQ(restored.Get(key), live.Get(key)) << key;
  }
}

TEST(DeduplicatorTest, PartitionStateRefusesDuplicates) {
  NullObserver observer;
  PartitionState state(SessionRules{}, absl::Minutes(5), &observer, nullptr,
                       absl::Hours(1));
  Event e;
  e.site_id = "shop";
  e.visitor_id = "v";
  e.event_id = "e1";
  e.time = T0;
  Event copy = e;
  EXPECT_EQ(state.Offer(std::move(e), T0), PartitionState::Admit::kAccepted);
  EXPECT_EQ(state.Offer(std::move(copy), T0),
            PartitionState::Admit::kDuplicate);
}

}  // namespace
}  // namespace kpistream
