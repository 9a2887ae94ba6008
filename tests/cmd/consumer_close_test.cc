// What a consumer closed with a group assignment it was never polled for
// does (an engine whose start fails after its consumers joined, e.g. on a
// busy metrics port): closing serves the assignment and then its
// revocation, through the listener. The engine's teardown relies on it
// (~StreamThread ignores both, ~KafkaStreamInput closes first); the crashes
// that path had are covered by CliTest.BusyMetricsPortIsARuntimeError...,
// whose failed start goes through it on the embedded broker. Against the
// embedded broker.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "cmd/embedded_broker.h"
#include "gtest/gtest.h"
#include "kafka/consumer.h"

namespace kpistream {
namespace {

class Recorder : public kafka::Consumer::Listener {
 public:
  std::map<TopicPartition, int64_t> OnAssigned(
      const std::vector<TopicPartition>& partitions) override {
    calls.push_back("assigned " + std::to_string(partitions.size()));
    return {};
  }
  void OnRevoked(const std::vector<TopicPartition>& partitions) override {
    calls.push_back("revoked " + std::to_string(partitions.size()));
  }
  void OnLost(const std::vector<TopicPartition>& partitions) override {
    calls.push_back("lost " + std::to_string(partitions.size()));
  }
  std::vector<std::string> calls;
};

TEST(ConsumerCloseTest, AnAssignmentNeverPolledForIsServedAndGivenBack) {
  auto broker = EmbeddedBroker::Start(1, {{"events", 2}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  Recorder recorder;
  kafka::Consumer::Options options;
  options.brokers = (*broker)->bootstrap_servers();
  options.group_id = "close-test";
  options.topics = {"events"};
  auto consumer = kafka::Consumer::Create(options, &recorder);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  // Not polled: the group's assignment waits in the consumer's queue.
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer((*consumer)->handle());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (rd_kafka_queue_length(queue) == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const bool pending = rd_kafka_queue_length(queue) > 0;
  rd_kafka_queue_destroy(queue);
  ASSERT_TRUE(pending) << "the group gave no assignment within 30 s";
  consumer->reset();  // closes
  EXPECT_EQ(recorder.calls,
            (std::vector<std::string>{"assigned 2", "revoked 2"}));
}

}  // namespace
}  // namespace kpistream
