// kafka::DescribeTopic: the cluster's id and each partition's end, which a
// restore compares with the local store's (engine/stream_thread.cc,
// ReadState: a store of another cluster is rebuilt). Against the embedded
// broker; the cluster id it should give is asked of a separate client that
// has fetched the cluster's metadata itself. (That it asks for the metadata
// rather than waiting a second for it is the benchmark's to show: run RS.)
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cmd/embedded_broker.h"
#include "gtest/gtest.h"
#include "kafka/producer.h"
#include "kafka/topic_reader.h"

namespace kpistream {
namespace {

// The cluster id as a client that fetched all the metadata sees it.
std::string ClusterIdSeenBy(const std::string& brokers) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err,
                        sizeof(err)) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return "conf: " + std::string(err);
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) return "client: " + std::string(err);
  std::string id;
  const rd_kafka_metadata_t* metadata = nullptr;
  if (rd_kafka_metadata(rk, 1, nullptr, &metadata, 10000) ==
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_metadata_destroy(metadata);
    if (char* c = rd_kafka_clusterid(rk, 10000)) {
      id = c;
      rd_kafka_mem_free(rk, c);
    }
  }
  rd_kafka_destroy(rk);
  return id;
}

TEST(DescribeTopicTest, GivesTheClusterIdAndEachPartitionsEnd) {
  auto broker = EmbeddedBroker::Start(1, {{"described", 3}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string brokers = (*broker)->bootstrap_servers();

  kafka::Producer::Options options;
  options.brokers = brokers;
  options.client_id = "describe-topic-test";
  auto producer = kafka::Producer::Create(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  // 2 records in partition 0, none in 1, 5 in 2.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE((*producer)->Produce("described", "k", "v", {}, 0).ok());
  }
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE((*producer)->Produce("described", "k", "v", {}, 2).ok());
  }
  ASSERT_TRUE((*producer)->Flush().ok());

  const std::string cluster_id = ClusterIdSeenBy(brokers);
  ASSERT_FALSE(cluster_id.empty());

  kafka::TopicReadOptions read;
  read.brokers = brokers;
  read.topic = "described";
  read.timeout = absl::Seconds(30);
  read.partitions = {0, 1, 2};
  absl::StatusOr<kafka::TopicEnds> ends = kafka::DescribeTopic(read);
  ASSERT_TRUE(ends.ok()) << ends.status();
  EXPECT_EQ(ends->cluster_id, cluster_id);
  EXPECT_EQ(ends->ends, (std::map<int32_t, int64_t>{{0, 2}, {1, 0}, {2, 5}}));

  // Asked for no partition: the cluster's id all the same.
  read.partitions.clear();
  ends = kafka::DescribeTopic(read);
  ASSERT_TRUE(ends.ok()) << ends.status();
  EXPECT_EQ(ends->cluster_id, cluster_id);
  EXPECT_TRUE(ends->ends.empty());
}

// ReadTopic's timeout is for a stall, not for the whole read: a restore of
// a large changelog takes as long as it takes (one that outlasted the
// timeout failed on every retry, from the start each time). Here each
// record takes a twelfth of the timeout to apply, the read 1.67 timeouts.
// The timeout leaves the first fetch (a new client's connection and
// metadata) seconds on a loaded machine: with 1 s, CI once timed out
// before the first record.
TEST(ReadTopicTest, ALongReadThatNeverStallsFinishes) {
  auto broker = EmbeddedBroker::Start(1, {{"slow", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  kafka::Producer::Options options;
  options.brokers = (*broker)->bootstrap_servers();
  options.client_id = "read-topic-test";
  auto producer = kafka::Producer::Create(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*producer)->Produce("slow", "k", "v", {}, 0).ok());
  }
  ASSERT_TRUE((*producer)->Flush().ok());

  kafka::TopicReadOptions read;
  read.brokers = (*broker)->bootstrap_servers();
  read.topic = "slow";
  read.partitions = {0};
  read.timeout = absl::Seconds(3);
  int n = 0;
  const absl::Time start = absl::Now();
  const absl::Status status =
      kafka::ReadTopic(read, [&](const kafka::ReadRecord&) {
        ++n;
        absl::SleepFor(absl::Milliseconds(250));
      });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(n, 20);
  EXPECT_GT(absl::Now() - start, read.timeout);  // it did outlast it

  // A stop request ends it at once.
  read.stop_requested = [] { return true; };
  EXPECT_TRUE(absl::IsCancelled(
      kafka::ReadTopic(read, [](const kafka::ReadRecord&) {})));
}

}  // namespace
}  // namespace kpistream
