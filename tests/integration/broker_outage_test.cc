// A broker outage under a running fleet (issue 8, SPEC §10), on a private
// 3-node Apache Kafka cluster (never the shared fixture: a broker is
// stopped): while 2 instances consume loadgen traffic with disorder, the
// broker that leads some input partitions and some partitions of the
// sessions topic crashes (SIGKILL), stays down for 10 s and comes back.
// Afterwards a read_committed consumer of the sessions topic holds exactly
// the batch computation's sessions and the fleet's counters equal the batch
// totals; each instance's /readyz (polled in the background) went unready
// during the outage and ready again after it.
#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kafka/topic_reader.h"
#include "tests/integration/fleet.h"
#include "tests/integration/kafka_cluster.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

constexpr int kInputPartitions = 6;
constexpr int kSessionPartitions = 3;

// How many of `topic`'s partitions node `node` leads.
int Leads(const KafkaCluster& cluster, const std::string& topic, int partitions,
          int node) {
  int n = 0;
  for (int p = 0; p < partitions; ++p) {
    auto leader = cluster.LeaderOf(topic, p);
    n += leader.ok() && *leader == node;
  }
  return n;
}

// A private 3-node cluster (never the shared fixture: a broker is stopped).
absl::StatusOr<std::unique_ptr<KafkaCluster>> StartThreeNodes() {
  KafkaClusterOptions options;
  options.nodes = 3;
  return KafkaCluster::Start(options);
}

// A fleet's topics on `cluster`, named after `name` and made unique.
FleetOptions FleetOn(const KafkaCluster& cluster, const std::string& name) {
  FleetOptions o;
  o.bootstrap = cluster.bootstrap();
  o.group = UniqueKafkaName(name);
  o.input = o.group + "-events";
  o.sessions = o.group + "-sessions";
  return o;
}

TEST(BrokerOutageTest, LeaderDownForTenSecondsChangesNothing) {
  absl::StatusOr<std::unique_ptr<KafkaCluster>> started = StartThreeNodes();
  ASSERT_TRUE(started.ok()) << started.status();
  KafkaCluster& cluster = **started;
  FleetOptions o = FleetOn(cluster, "outage");
  o.watch_readiness = true;
  // Every topic survives one broker of three: replicated 3 times, writable
  // with 2 in sync.
  const std::map<std::string, std::string> two_in_sync = {
      {"min.insync.replicas", "2"}};
  ASSERT_TRUE(
      cluster.CreateTopic(o.input, kInputPartitions, 3, two_in_sync).ok());
  ASSERT_TRUE(
      cluster.CreateTopic(o.sessions, kSessionPartitions, 3, two_in_sync).ok());
  ASSERT_TRUE(cluster.CreateTopic(o.input + "-dead", 1, 3, two_in_sync).ok());
  ASSERT_TRUE(cluster
                  .CreateTopic(o.group + "-changelog", kInputPartitions, 3,
                               {{"cleanup.policy", "compact"},
                                {"min.insync.replicas", "2"}})
                  .ok());

  Fleet fleet(o);
  Lifetime* a = fleet.Start("a");
  Lifetime* b = fleet.Start("b");
  ASSERT_TRUE(WaitFor(
      [&] {
        return HttpGet(a->port, "/readyz").ok() &&
               HttpGet(b->port, "/readyz").ok();
      },
      absl::Seconds(60)))
      << fleet.Logs();
  // 60,000 events in about 20 s.
  auto loadgen = StartLoadgen(o.bootstrap, o.input, 60000, "visitor");
  absl::SleepFor(absl::Seconds(4));

  // The node that leads input and session partitions both.
  int node = -1;
  for (int n = 0; n < cluster.size() && node < 0; ++n) {
    if (Leads(cluster, o.input, kInputPartitions, n) > 0 &&
        Leads(cluster, o.sessions, kSessionPartitions, n) > 0) {
      node = n;
    }
  }
  ASSERT_GE(node, 0) << "no node leads both input and session partitions";
  std::cout << "node " << node << " leads "
            << Leads(cluster, o.input, kInputPartitions, node) << " input and "
            << Leads(cluster, o.sessions, kSessionPartitions, node)
            << " session partition(s); killing it for 10 s\n";
  const absl::Time down = absl::Now();
  ASSERT_TRUE(cluster.StopBroker(node, KafkaCluster::StopMode::kKill).ok());
  absl::SleepFor(absl::Seconds(10) - (absl::Now() - down));
  const absl::Time restart = absl::Now();
  const absl::Status back = cluster.StartBroker(node);
  ASSERT_TRUE(back.ok()) << back << "\n" << cluster.LogTail(node);
  std::cout << "node " << node << " back in the ISR after "
            << absl::FormatDuration(absl::Now() - restart) << "\n";

  EXPECT_EQ(loadgen->Stop(0, absl::Seconds(180)), 0) << loadgen->Stderr();
  EndOfInput(o.bootstrap, o.input, kInputPartitions);
  const Batch batch = ExpectExactlyTheBatch(fleet);
  EXPECT_GT(batch.sessions.size(), 1000u);
  EXPECT_GT(batch.bots, 0);
  EXPECT_GT(batch.duplicates, 0);

  // Both instances lived through it (an engine that gave up on a broker
  // error would exit 1 and leave its partitions to the other).
  for (Lifetime* life : {a, b}) {
    EXPECT_TRUE(life->process->Running()) << life->instance << " exited:\n"
                                          << life->process->Stderr();
  }

  // /readyz: each instance went unready during the outage and ready again.
  for (Lifetime* life : {a, b}) {
    const std::vector<Lifetime::Readiness> changes = fleet.Readiness(life);
    // Unready during the outage: from a change after the kill, or already
    // when it began (e.g. still restoring after the start's rebalance).
    size_t unready = changes.size();
    for (size_t i = 0; i < changes.size(); ++i) {
      const bool last_before =
          changes[i].at < down &&
          (i + 1 == changes.size() || changes[i + 1].at >= down);
      if (changes[i].code != 200 && (changes[i].at >= down || last_before)) {
        unready = i;
        break;
      }
    }
    std::string seen;
    for (const Lifetime::Readiness& r : changes) {
      absl::StrAppend(&seen, "  +", absl::FormatDuration(r.at - down), " ",
                      r.code, " ", r.reason, "\n");
    }
    std::cout << "instance " << life->instance << " /readyz since the outage "
              << "(+time since the kill):\n"
              << seen;
    ASSERT_LT(unready, changes.size()) << life->instance << " never unready:\n"
                                       << seen;
    bool ready_again = false;
    for (size_t i = unready + 1; i < changes.size(); ++i) {
      ready_again |= changes[i].code == 200;
    }
    EXPECT_TRUE(ready_again) << life->instance << ":\n" << seen;
  }
}

// A start right after a broker died (SIGKILL; the controller fences it only
// after 6 s here, 9 s by Kafka's default) that led partition 0 of the state
// changelog. At the defaults (no session.timeout.ms in kafka.properties) a
// start asks the changelog which cluster it is (the embedded broker gets a
// shorter session); it asked for partition 0's end too, and librdkafka sent
// that to the dead leader until the 30 s timeout: an audit's crash run saw
// the start held 30 s before it opened its local state. Nothing the start
// needs before its threads run is on the dead broker: the local state is
// open (its log line) within 15 s, though the threads' restores may still
// wait for the failover.
TEST(BrokerOutageTest, AStartIsNotHeldByAChangelogLeaderThatJustDied) {
  absl::StatusOr<std::unique_ptr<KafkaCluster>> started = StartThreeNodes();
  ASSERT_TRUE(started.ok()) << started.status();
  KafkaCluster& cluster = **started;
  FleetOptions o = FleetOn(cluster, "deadleader");
  // Every topic the start needs exists (a restart's case); creating one
  // right after a node died: TopicsAreCreatedRightAfterANodeDied.
  o.input_key = "visitor_id";
  ASSERT_TRUE(cluster.CreateTopic(o.input, kInputPartitions, 3).ok());
  ASSERT_TRUE(cluster.CreateTopic(o.sessions, kSessionPartitions, 3).ok());
  ASSERT_TRUE(cluster.CreateTopic(o.input + "-dead", 1, 3).ok());
  const std::string changelog = o.group + "-changelog";
  ASSERT_TRUE(cluster
                  .CreateTopic(changelog, kInputPartitions, 3,
                               {{"cleanup.policy", "compact"}})
                  .ok());
  absl::StatusOr<int> leader = cluster.LeaderOf(changelog, 0);
  ASSERT_TRUE(leader.ok()) << leader.status();
  ASSERT_TRUE(cluster.StopBroker(*leader, KafkaCluster::StopMode::kKill).ok());
  std::cout << "killed node " << *leader << ", the leader of " << changelog
            << "[0]; starting an instance\n";

  // The fleet's config but for kafka.properties: the defaults, as a user's.
  Fleet fleet(o);
  std::string config = fleet.Config("a", FreePort());
  const size_t properties = config.find("  properties: {");
  ASSERT_NE(properties, std::string::npos) << config;
  config.erase(properties, config.find('\n', properties) + 1 - properties);
  TempDir dir;
  Subprocess engine(
      {KpistreamBinary(), "run", "--config", dir.Write("a.yaml", config)});
  EXPECT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(engine.Stderr(), "engine: local state in");
      },
      absl::Seconds(15)))
      << engine.Stderr();
  EXPECT_EQ(engine.Stop(SIGTERM, absl::Seconds(60)), 0) << engine.Stderr();
}

// A topic created right after a node died (a first start's internal
// topics): librdkafka sends the request to the broker the metadata names
// as the controller, in KRaft any live one, and a node just killed stays
// named until it is fenced; librdkafka then waited for it until the
// request timed out (an engine's start exited after 30 s with "no answer
// to creating topic"; 2 of 6 handles by hand). Eight creations, each from
// its own handle, right after the kill: every one succeeds.
TEST(BrokerOutageTest, TopicsAreCreatedRightAfterANodeDied) {
  KafkaClusterOptions options;
  options.nodes = 3;
  // Two live nodes can hold a new topic's replicas once the dead one is
  // fenced (at 3 the creation is refused then, as it should be).
  options.broker_config = {{"default.replication.factor", "2"}};
  absl::StatusOr<std::unique_ptr<KafkaCluster>> started =
      KafkaCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  KafkaCluster& cluster = **started;
  ASSERT_TRUE(cluster.StopBroker(0, KafkaCluster::StopMode::kKill).ok());
  const std::string name = UniqueKafkaName("created");
  std::vector<absl::Status> created(8);
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < created.size(); ++i) {
    threads.emplace_back([&, i] {
      kafka::TopicReadOptions topic;
      topic.brokers = cluster.bootstrap();
      topic.topic = absl::StrCat(name, "-", i);
      topic.timeout = absl::Seconds(30);
      created[i] = kafka::EnsureTopic(topic, 1, {}).status();
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::cout << "8 topics created in " << absl::Now() - start << "\n";
  for (size_t i = 0; i < created.size(); ++i) {
    EXPECT_TRUE(created[i].ok()) << i << ": " << created[i];
  }
}

}  // namespace
}  // namespace kpistream::testing
