// Broker outages on a private 3-node Apache Kafka cluster (never on the
// shared fixture, which other tests use at the same time): one producer and
// one consumer live through a leader's crash and restart and a leader's
// graceful stop, and read every record exactly once, in order. Also what a
// cluster that cannot start reports.
#include <signal.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/kafka_cluster.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

std::vector<std::string> Numbered(const std::string& prefix, int count) {
  std::vector<std::string> values;
  for (int i = 0; i < count; ++i) values.push_back(absl::StrCat(prefix, i));
  return values;
}

std::vector<std::string> Values(const std::vector<KafkaRecord>& records) {
  std::vector<std::string> values;
  for (const KafkaRecord& r : records) values.push_back(r.value);
  return values;
}

TEST(KafkaOutageTest, ProducerAndConsumerLiveThroughBrokerRestarts) {
  KafkaClusterOptions options;
  options.nodes = 3;
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<KafkaCluster>> started =
      KafkaCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  KafkaCluster& cluster = **started;
  std::cout << "private 3-node cluster serving after "
            << absl::FormatDuration(absl::Now() - start) << "\n";

  const std::string topic = UniqueKafkaName("outage");
  const absl::Status created =
      cluster.CreateTopic(topic, 1, 3, {{"min.insync.replicas", "2"}});
  ASSERT_TRUE(created.ok()) << created;
  absl::StatusOr<std::unique_ptr<TestProducer>> producer =
      TestProducer::Create(cluster.bootstrap());
  ASSERT_TRUE(producer.ok()) << producer.status();
  absl::StatusOr<std::unique_ptr<TestConsumer>> consumer =
      TestConsumer::Create(cluster.bootstrap(), topic, /*read_committed=*/true);
  ASSERT_TRUE(consumer.ok()) << consumer.status();

  // Each phase: produce a batch through the one producer, read it back
  // through the one consumer, exactly (no loss, no duplicate, in order).
  auto phase = [&](const std::string& name) {
    const absl::Time phase_start = absl::Now();
    const std::vector<std::string> batch = Numbered(name + "-", 100);
    const absl::Status produced = (*producer)->Produce(topic, batch);
    EXPECT_TRUE(produced.ok()) << name << ": " << produced;
    EXPECT_EQ(Values((*consumer)->Read(batch.size(), absl::Seconds(60))), batch)
        << name;
    std::cout << name << ": 100 records produced and read in "
              << absl::FormatDuration(absl::Now() - phase_start) << "\n";
  };

  phase("before");
  absl::StatusOr<int> leader = cluster.LeaderOf(topic, 0);
  ASSERT_TRUE(leader.ok()) << leader.status();

  // A crash: the leader is fenced after broker.session.timeout.ms and a
  // replica in the ISR takes over.
  ASSERT_TRUE(cluster.StopBroker(*leader, KafkaCluster::StopMode::kKill).ok());
  phase("leader-killed");
  absl::StatusOr<int> next_leader = cluster.LeaderOf(topic, 0);
  ASSERT_TRUE(next_leader.ok()) << next_leader.status();
  EXPECT_NE(*next_leader, *leader);
  absl::Time restart = absl::Now();
  absl::Status restarted = cluster.StartBroker(*leader);
  ASSERT_TRUE(restarted.ok()) << restarted;
  std::cout << "killed node " << *leader << " back in the ISR after "
            << absl::FormatDuration(absl::Now() - restart) << "\n";

  // A graceful stop of the new leader: leadership moves before it exits.
  ASSERT_TRUE(cluster.StopBroker(*next_leader).ok());
  phase("leader-stopped");
  restart = absl::Now();
  restarted = cluster.StartBroker(*next_leader);
  ASSERT_TRUE(restarted.ok()) << restarted;
  std::cout << "stopped node " << *next_leader << " back in the ISR after "
            << absl::FormatDuration(absl::Now() - restart) << "\n";
  phase("all-back");

  // Nothing more arrives, and the log holds each record once.
  EXPECT_TRUE((*consumer)->Read(1, absl::Seconds(2)).empty());
  absl::StatusOr<std::vector<KafkaRecord>> all =
      ConsumeFromKafka(cluster.bootstrap(), topic, 400, absl::Seconds(30),
                       /*read_committed=*/false);
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> want;
  for (const char* name :
       {"before", "leader-killed", "leader-stopped", "all-back"}) {
    for (const std::string& v : Numbered(absl::StrCat(name, "-"), 100)) {
      want.push_back(v);
    }
  }
  EXPECT_EQ(Values(*all), want);
}

// A node that cannot start says why: Start's error carries its log tail.
TEST(KafkaOutageTest, StartFailureCarriesTheNodesLog) {
  KafkaClusterOptions options;
  options.broker_config = {{"num.io.threads", "not-a-number"}};
  absl::StatusOr<std::unique_ptr<KafkaCluster>> cluster =
      KafkaCluster::Start(options);
  ASSERT_FALSE(cluster.ok());
  std::cout << "the error, as a test sees it:\n" << cluster.status() << "\n";
  EXPECT_TRUE(absl::StrContains(cluster.status().message(), "kafka node 0"))
      << cluster.status();
  EXPECT_TRUE(absl::StrContains(cluster.status().message(), "num.io.threads"))
      << cluster.status();
}

// A one-broker cluster whose transaction state topic wants 3 replicas (the
// brokers' default) never creates it, and no transaction can start: the
// engine says so, with the config to change, 5 s into its start (it said
// nothing for 60 s, then blamed the broker's support for transactions),
// and a SIGTERM while it waits stops it at once (exit 0: nothing started).
TEST(KafkaOutageTest, TransactionsTheClusterCannotServeAreExplained) {
  KafkaClusterOptions options;
  options.broker_config = {{"transaction.state.log.replication.factor", "3"},
                           {"transaction.state.log.min.isr", "2"}};
  absl::StatusOr<std::unique_ptr<KafkaCluster>> started =
      KafkaCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  KafkaCluster& cluster = **started;
  const std::string input = UniqueKafkaName("txn-input");
  for (const std::string& topic :
       {input, std::string("web.sessions"), std::string("web.kpi"),
        std::string("web.deadletter")}) {
    ASSERT_TRUE(cluster.CreateTopic(topic, 1, 1).ok()) << topic;
  }
  TempDir dir;
  const std::string config = dir.Write(
      "c.yaml",
      absl::StrCat("kafka: {brokers: '", cluster.bootstrap(), "', group_id: ",
                   UniqueKafkaName("txn-group"), "}\ninputs: [{topic: ", input,
                   ", key: visitor_id}]\nprocessing: {state_dir: '", dir.path(),
                   "/state'}\nmetrics: {listen: '127.0.0.1:", FreePort(),
                   "'}\n"));
  Subprocess engine({KpistreamBinary(), "run", "--config", config});
  const std::string said =
      "its transaction.state.log.replication.factor is 3 and the cluster has "
      "1 broker(s)";
  EXPECT_TRUE(WaitFor([&] { return absl::StrContains(engine.Stderr(), said); },
                      absl::Seconds(30)))
      << engine.Stderr();
  EXPECT_EQ(engine.Stop(SIGTERM, absl::Seconds(20)), 0) << engine.Stderr();
  EXPECT_TRUE(absl::StrContains(engine.Stderr(), "stopped before it started"))
      << engine.Stderr();
}

}  // namespace
}  // namespace kpistream::testing
