// Looking a topic up (its partition count, or its ends as a restore does)
// on brokers that auto-create topics (Apache Kafka's default,
// auto.create.topics.enable=true) must not create it: the engine's
// changelog would get the brokers' defaults (one partition, deleted by
// retention) instead of compaction. On a private 1-node cluster, since the
// shared fixture does not auto-create. There loadgen's topic and the
// engine's output topics are created on their producers' request.
#include <csignal>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kafka/topic_reader.h"
#include "tests/integration/kafka_cluster.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

TEST(TopicMetadataTest, AMissingTopicIsNotAutoCreatedByLookingItUp) {
  KafkaClusterOptions options;
  options.broker_config["auto.create.topics.enable"] = "true";
  absl::StatusOr<std::unique_ptr<KafkaCluster>> started =
      KafkaCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  // With the user's kafka.properties silent, and asking for auto-creation.
  for (const kafka::Properties& user :
       {kafka::Properties{},
        kafka::Properties{{"allow.auto.create.topics", "true"}}}) {
    SCOPED_TRACE(user.empty() ? "no user properties"
                              : "allow.auto.create.topics=true");
    kafka::TopicReadOptions read;
    read.brokers = (*started)->bootstrap();
    read.properties = user;
    read.topic = UniqueKafkaName("changelog");
    read.timeout = absl::Seconds(30);
    absl::StatusOr<int> count = kafka::PartitionCount(read);
    EXPECT_TRUE(absl::IsNotFound(count.status())) << count.status();
    // The restore's look at the changelog's ends asks for its metadata too.
    kafka::TopicReadOptions ends = read;
    ends.partitions = {0};
    ends.timeout = absl::Seconds(5);
    EXPECT_FALSE(kafka::DescribeTopic(ends).ok());
    // A topic created on request would show up in the metadata a moment
    // later.
    absl::SleepFor(absl::Seconds(2));
    count = kafka::PartitionCount(read);
    EXPECT_TRUE(absl::IsNotFound(count.status())) << count.status();
    count = kafka::EnsureTopic(read, 3, {{"cleanup.policy", "compact"}});
    ASSERT_TRUE(count.ok()) << count.status();
    EXPECT_EQ(*count, 3);
    absl::StatusOr<std::string> policy =
        kafka::TopicConfig(read, "cleanup.policy");
    ASSERT_TRUE(policy.ok()) << policy.status();
    EXPECT_EQ(*policy, "compact");
  }

  // loadgen writes to a topic such brokers create on its request (review:
  // their first answer, "Unknown topic or partition", made it exit 1 with
  // "create it", the topic created).
  const std::string topic = UniqueKafkaName("loadgen");
  const CommandResult r = RunCommand(
      {KpistreamBinary(), "loadgen", "--brokers", (*started)->bootstrap(),
       "--topic", topic, "--events", "50", "--rate", "0"},
      "", absl::Seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("produced 50 events")) << r.err;
  kafka::TopicReadOptions written;
  written.brokers = (*started)->bootstrap();
  written.topic = topic;
  written.timeout = absl::Seconds(30);
  absl::StatusOr<int> count = kafka::PartitionCount(written);
  EXPECT_TRUE(count.ok()) << count.status();

  // The engine's output topics likewise: created on its producer's request,
  // written without a warning that they are unknown (before 2026-12-05 one
  // per output, "no input is read until it can be written", and its input
  // held back until the next look 2 s later).
  TempDir dir;
  const int port = FreePort();
  const std::string config = dir.Write(
      "c.yaml",
      absl::StrCat(
          "kafka: {brokers: '", (*started)->bootstrap(),
          "', group_id: ", UniqueKafkaName("group"), "}\n",
          "inputs: [{topic: ", topic, ", key: visitor_id}]\n",
          "outputs:\n  sessions: {topic: ", UniqueKafkaName("sessions"),
          "}\n  kpi: {topic: ", UniqueKafkaName("kpi"),
          "}\n  deadletter: {topic: ", UniqueKafkaName("deadletter"),
          "}\nprocessing: {state_dir: '", dir.path(),
          "/state'}\nmetrics: {listen: '127.0.0.1:", port, "'}\n"));
  Subprocess engine({KpistreamBinary(), "run", "--config", config});
  EXPECT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::string> page = HttpGet(port, "/metrics");
        return page.ok() &&
               MetricValue(*page, "kpistream_events_consumed_total") >= 50;
      },
      absl::Seconds(60)))
      << engine.Stderr();
  EXPECT_EQ(engine.Stop(SIGTERM, absl::Seconds(30)), 0) << engine.Stderr();
  EXPECT_THAT(engine.Stderr(),
              ::testing::Not(::testing::HasSubstr("cannot learn where")));
}

}  // namespace
}  // namespace kpistream::testing
