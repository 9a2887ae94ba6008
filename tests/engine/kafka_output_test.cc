// KafkaStreamOutput, exactly-once: a record the producer cannot deliver
// aborts the transaction at the next commit and the stream thread reads its
// input again (SPEC §10: an output that cannot be written pauses, nothing is
// dropped, the engine lives on); it does not stop the thread. Against
// librdkafka's mock cluster, which refuses a Produce request on request.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "engine/kafka_io.h"
#include "gtest/gtest.h"
#include "kafka/topic_reader.h"

namespace kpistream {
namespace {

constexpr int16_t kProduceApiKey = 0;  // Kafka protocol: Produce

// A mock cluster of one broker with `topics` (one partition each).
class MockCluster {
 public:
  explicit MockCluster(const std::vector<std::string>& topics) {
    char error[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", error, sizeof(error));
    owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
    if (owner_ == nullptr) return;
    cluster_ = rd_kafka_mock_cluster_new(owner_, 1);
    if (cluster_ == nullptr) return;
    for (const std::string& topic : topics) {
      rd_kafka_mock_topic_create(cluster_, topic.c_str(), 1, 1);
    }
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  }
  ~MockCluster() {
    if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
    if (owner_ != nullptr) rd_kafka_destroy(owner_);
  }
  rd_kafka_mock_cluster_t* get() { return cluster_; }
  const std::string& bootstrap() const { return bootstrap_; }

 private:
  rd_kafka_t* owner_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
};

class NoListener : public StreamInput::Listener {
 public:
  void OnAssigned(const std::vector<TopicPartition>&) override {}
  void OnRevoked(const std::vector<TopicPartition>&) override {}
  void OnLost(const std::vector<TopicPartition>&) override {}
};

std::vector<std::string> CommittedValues(const std::string& bootstrap,
                                         const std::string& topic) {
  kafka::TopicReadOptions read;
  read.brokers = bootstrap;
  read.topic = topic;
  read.partitions = {0};
  read.timeout = absl::Seconds(30);
  std::vector<std::string> values;
  absl::Status s = kafka::ReadTopic(
      read, [&](const kafka::ReadRecord& r) { values.emplace_back(r.value); });
  EXPECT_TRUE(s.ok()) << s;
  return values;
}

// A transactional KafkaStreamOutput (and the input whose group it commits
// for) on `cluster`, writing "out".
struct Io {
  explicit Io(MockCluster* cluster) {
    kafka::Consumer::Options in;
    in.brokers = cluster->bootstrap();
    in.group_id = "output-test";
    in.topics = {"in"};
    auto made_input = KafkaStreamInput::Create(in, &listener);
    EXPECT_TRUE(made_input.ok()) << made_input.status();
    if (!made_input.ok()) return;
    input = *std::move(made_input);
    kafka::Producer::Options out;
    out.brokers = cluster->bootstrap();
    out.client_id = "output-test";
    out.transactional_id = "output-test-0";
    // One record in the queue at a time: the second Produce() waits for
    // the first one's delivery report, so a failure surfaces there.
    out.properties = {{"queue.buffering.max.messages", "1"}};
    auto made_output = KafkaStreamOutput::Create(
        out, input.get(), {{"outputs.sessions.topic", "out"}});
    EXPECT_TRUE(made_output.ok()) << made_output.status();
    if (made_output.ok()) output = *std::move(made_output);
  }
  NoListener listener;
  std::unique_ptr<KafkaStreamInput> input;
  std::unique_ptr<KafkaStreamOutput> output;
};

TEST(KafkaStreamOutputTest, AnUndeliveredRecordAbortsTheTransactionAtCommit) {
  MockCluster cluster({"in", "out"});
  ASSERT_NE(cluster.get(), nullptr);
  Io io(&cluster);
  ASSERT_NE(io.output, nullptr);
  KafkaStreamOutput& o = *io.output;
  ASSERT_TRUE(o.transactional());

  // The broker refuses the first Produce request for good (as its record
  // validation would): that record is not delivered. (A refused write
  // permission would do too, but librdkafka then forgets the topic's
  // partitions until its next metadata refresh.)
  rd_kafka_mock_push_request_errors(cluster.get(), kProduceApiKey, 1,
                                    RD_KAFKA_RESP_ERR_INVALID_RECORD);
  for (const char* value : {"a", "b", "c"}) {
    EXPECT_TRUE(o.Produce("out", "k", value, {}, -1).ok()) << value;
  }
  absl::Status commit = o.Commit({});
  EXPECT_TRUE(absl::IsAborted(commit)) << commit;
  EXPECT_TRUE(absl::StrContains(commit.message(), "\"out\"")) << commit;
  EXPECT_TRUE(
      absl::StrContains(commit.message(), "the transaction was aborted"))
      << commit;

  // Made again, as the stream thread does after an abort, the records go
  // through; nothing of an aborted transaction is seen. (The refused record
  // took a sequence number that the broker never wrote, so the first
  // transaction after it may be aborted too, until librdkafka bumps the
  // producer's epoch.)
  int attempts = 0;
  do {
    ++attempts;
    for (const char* value : {"d", "e"}) {
      EXPECT_TRUE(o.Produce("out", "k", value, {}, -1).ok()) << value;
    }
    commit = o.Commit({});
    EXPECT_TRUE(commit.ok() || absl::IsAborted(commit)) << commit;
  } while (absl::IsAborted(commit) && attempts < 5);
  EXPECT_TRUE(commit.ok()) << commit << " after " << attempts << " attempts";
  EXPECT_EQ(CommittedValues(cluster.bootstrap(), "out"),
            (std::vector<std::string>{"d", "e"}));
}

// A record refused for what would fail every time it is redone (here a
// partition the topic does not have) is an error, as before: an abort and
// a re-read would only loop.
TEST(KafkaStreamOutputTest, ARecordRefusedForItselfIsAnError) {
  MockCluster cluster({"in", "out"});
  ASSERT_NE(cluster.get(), nullptr);
  Io io(&cluster);
  ASSERT_NE(io.output, nullptr);
  absl::Status s = io.output->Produce("out", "k", "x", {}, 7);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "\"out\"")) << s;
}

}  // namespace
}  // namespace kpistream
