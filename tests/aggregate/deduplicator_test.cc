#include "aggregate/deduplicator.h"

#include "aggregate/partition_state.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time T0 = absl::FromUnixSeconds(1767261600);

TEST(DeduplicatorTest, SameSiteAndIdInsideTheHorizonIsADuplicate) {
  Deduplicator d(absl::Hours(1));
  EXPECT_FALSE(d.SeenBefore("shop", "e1", T0));
  EXPECT_TRUE(d.SeenBefore("shop", "e1", T0 + absl::Minutes(5)));
  EXPECT_FALSE(d.SeenBefore("blog", "e1", T0));  // another site
  EXPECT_FALSE(d.SeenBefore("shop", "", T0));    // no id: never a duplicate
  EXPECT_FALSE(d.SeenBefore("shop", "", T0));
}

TEST(DeduplicatorTest, ForgetsBeyondTheHorizon) {
  Deduplicator d(absl::Hours(1));
  d.SeenBefore("shop", "e1", T0);
  d.Expire(T0 + absl::Minutes(59));
  EXPECT_TRUE(d.SeenBefore("shop", "e1", T0));
  d.Expire(T0 + absl::Hours(1) + absl::Minutes(2));
  // Forgotten at once (a repeat now is new), memory freed by the next scan.
  EXPECT_FALSE(d.SeenBefore("shop", "e1", T0 + absl::Hours(2)));
  d.Expire(T0 + absl::Hours(3) + absl::Minutes(10));
  EXPECT_EQ(d.size(), 0u);
}

class NullObserver : public SessionObserver {
  void OnSessionStarted(const SessionAttributes&, const EventView&) override {}
  void OnEvent(const SessionAttributes&, const EventView&) override {}
  void OnSessionClosed(const ClosedSession&) override {}
};

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
