// UnownedPartitions: when partitions no member of the group owns make this
// instance rejoin (engine/group_watch.h).
#include "engine/group_watch.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);
const absl::Duration kGrace = absl::Seconds(30);

kafka::GroupMember Member(const std::string& instance,
                          std::vector<int32_t> partitions,
                          const std::string& topic = "events") {
  kafka::GroupMember m;
  m.member_id = instance + "-member";
  m.client_id = "kpistream-" + instance;
  for (int32_t p : partitions) m.assignment.push_back({topic, p});
  return m;
}

kafka::GroupDescription Stable(std::vector<kafka::GroupMember> members) {
  kafka::GroupDescription g;
  g.state = "Stable";
  g.members = std::move(members);
  return g;
}

std::vector<TopicPartition> Events(std::vector<int32_t> partitions) {
  std::vector<TopicPartition> out;
  for (int32_t p : partitions) out.push_back({"events", p});
  return out;
}

TEST(UnownedPartitionsTest, PartitionsUnownedForTheGraceAreHealedOnce) {
  UnownedPartitions watch({{"events", 6}}, {"kpistream-a-0"}, kGrace);
  // a owns half; the other half is nobody's (its owner died mid-rebalance).
  const auto group = Stable({Member("a-0", {0, 1, 2}), Member("b-0", {})});
  EXPECT_TRUE(watch.Observe(group, kT0).empty());
  EXPECT_EQ(watch.unowned(), 3u);
  EXPECT_TRUE(watch.Observe(group, kT0 + kGrace - absl::Seconds(1)).empty());
  EXPECT_EQ(watch.Observe(group, kT0 + kGrace), Events({3, 4, 5}));
  // Acted on: the time starts again, no second rejoin at the next look.
  EXPECT_TRUE(watch.Observe(group, kT0 + kGrace + absl::Seconds(5)).empty());
  EXPECT_EQ(watch.Observe(group, kT0 + 2 * kGrace), Events({3, 4, 5}));
}

TEST(UnownedPartitionsTest, AGroupThatOwnsEverythingOrRebalancesOwesNothing) {
  UnownedPartitions watch({{"events", 4}, {"repartition", 2}},
                          {"kpistream-a-0"}, kGrace);
  auto all = Stable(
      {Member("a-0", {0, 1, 2, 3}), Member("b-0", {0, 1}, "repartition")});
  EXPECT_TRUE(watch.Observe(all, kT0).empty());
  EXPECT_EQ(watch.unowned(), 0u);
  // Between the two rounds of a cooperative rebalance a partition is
  // nobody's for a moment; a rebalance in progress starts the time again.
  auto gap =
      Stable({Member("a-0", {0, 1}), Member("b-0", {0, 1}, "repartition")});
  EXPECT_TRUE(watch.Observe(gap, kT0).empty());
  kafka::GroupDescription rebalancing = gap;
  rebalancing.state = "PreparingRebalance";
  EXPECT_TRUE(watch.Observe(rebalancing, kT0 + kGrace / 2).empty());
  EXPECT_EQ(watch.unowned(), 0u);
  EXPECT_TRUE(watch.Observe(gap, kT0 + kGrace).empty());
  // A partition owned again is forgotten.
  EXPECT_TRUE(watch.Observe(all, kT0 + kGrace + kGrace / 2).empty());
  EXPECT_TRUE(watch.Observe(gap, kT0 + 2 * kGrace).empty());
  EXPECT_EQ(watch.Observe(gap, kT0 + 3 * kGrace), Events({2, 3}));
}

TEST(UnownedPartitionsTest, TheFirstKpistreamInstanceActsThenAnyone) {
  const auto group =
      Stable({Member("b-0", {0}), Member("a-1", {1}), Member("c-0", {})});
  UnownedPartitions a({{"events", 3}}, {"kpistream-a-0", "kpistream-a-1"},
                      kGrace);
  UnownedPartitions b({{"events", 3}}, {"kpistream-b-0"}, kGrace);
  for (UnownedPartitions* w : {&a, &b}) w->Observe(group, kT0);
  EXPECT_EQ(a.Observe(group, kT0 + kGrace), Events({2}));
  EXPECT_TRUE(b.Observe(group, kT0 + kGrace).empty());
  EXPECT_EQ(b.unowned(), 1u);
  // a could not heal them (or runs without the watch): after 3 x the
  // grace, every instance acts.
  EXPECT_TRUE(b.Observe(group, kT0 + 3 * kGrace - absl::Seconds(1)).empty());
  EXPECT_EQ(b.Observe(group, kT0 + 3 * kGrace), Events({2}));

  // Members that are not kpistream's, or the short-lived consumer that
  // rejoins, are not candidates.
  kafka::GroupMember other = Member("0-other", {});
  other.client_id = "0-someone-else";
  kafka::GroupMember rejoin = Member("", {});
  rejoin.client_id = "kpistream-a-watch-rejoin";
  UnownedPartitions c({{"events", 3}}, {"kpistream-b-0"}, kGrace);
  auto without_a = Stable({other, rejoin, Member("b-0", {0, 1})});
  c.Observe(without_a, kT0);
  EXPECT_EQ(c.Observe(without_a, kT0 + kGrace), Events({2}));
  // An instance that is not (yet) a member does not act first.
  UnownedPartitions d({{"events", 3}}, {"kpistream-d-0"}, kGrace);
  d.Observe(without_a, kT0);
  EXPECT_TRUE(d.Observe(without_a, kT0 + kGrace).empty());
  // Members whose client.id kafka.properties changed are no candidates:
  // with none, everyone acts after 3 x the grace.
  kafka::GroupMember renamed = Member("e-0", {0, 1});
  renamed.client_id = "web-kpi";
  UnownedPartitions e({{"events", 3}}, {"kpistream-e-0"}, kGrace);
  e.Observe(Stable({renamed}), kT0);
  EXPECT_TRUE(e.Observe(Stable({renamed}), kT0 + kGrace).empty());
  EXPECT_EQ(e.Observe(Stable({renamed}), kT0 + 3 * kGrace), Events({2}));
}

}  // namespace
}  // namespace kpistream
