// kafka::Producer::Options::topic_properties: a topic's own librdkafka
// properties over the client's (the engine writes its internal topics
// uncompressed, config ProducerTopicProperties). Seen where it matters: in
// the batches the producer sends, as its debug log reports each one
// ("<topic> [<partition>]: Produce MessageSet with <n> message(s) (<bytes>
// bytes, ...)"), against the embedded broker.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cmd/embedded_broker.h"
#include "gtest/gtest.h"
#include "kafka/log.h"
#include "kafka/producer.h"
#include "kafka/topic_reader.h"

namespace kpistream {
namespace {

std::mutex produce_lines_mu;
std::vector<std::string>* produce_lines = nullptr;

void KeepProduceLines(int, absl::string_view, absl::string_view facility,
                      absl::string_view message) {
  std::lock_guard<std::mutex> lock(produce_lines_mu);
  if (produce_lines != nullptr && facility == "PRODUCE") {
    produce_lines->emplace_back(message);
  }
}

// Bytes of the message sets sent per topic, from the debug lines.
std::map<std::string, int64_t> BytesSent(
    const std::vector<std::string>& lines) {
  static const std::regex kLine(
      R"(([A-Za-z0-9._-]+) \[\d+\]: Produce MessageSet with \d+ )"
      R"(message\(s\) \((\d+) bytes)");
  std::map<std::string, int64_t> sent;
  for (const std::string& line : lines) {
    std::smatch m;
    if (!std::regex_search(line, m, kLine)) continue;
    int64_t bytes = 0;
    if (absl::SimpleAtoi(m[2].str(), &bytes)) sent[m[1].str()] += bytes;
  }
  return sent;
}

TEST(ProducerTopicPropertiesTest, ATopicsOwnCompressionIsWhatItSends) {
  auto broker = EmbeddedBroker::Start(1, {{"plain", 1}, {"packed", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  std::vector<std::string> lines;
  {
    std::lock_guard<std::mutex> lock(produce_lines_mu);
    produce_lines = &lines;
  }
  SetKafkaLogHandler(&KeepProduceLines);
  kafka::Producer::Options options;
  options.brokers = (*broker)->bootstrap_servers();
  options.client_id = "topic-properties-test";
  options.properties = {{"debug", "msg"}};
  options.topic_properties["plain"] = {{"compression.type", "none"}};
  auto producer = kafka::Producer::Create(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  const std::string value(10000, 'x');  // LZ4 makes ~50 bytes of it
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE((*producer)->Produce("plain", "k", value).ok());
    ASSERT_TRUE((*producer)->Produce("packed", "k", value).ok());
  }
  ASSERT_TRUE((*producer)->Flush().ok());
  producer->reset();
  SetKafkaLogHandler(nullptr);
  std::map<std::string, int64_t> sent;
  {
    std::lock_guard<std::mutex> lock(produce_lines_mu);
    produce_lines = nullptr;
    sent = BytesSent(lines);
  }
  ASSERT_EQ(sent.size(), 2u)
      << "no batch reported for a topic; lines: " << lines.size();
  EXPECT_GE(sent["plain"], 10 * 10000);  // as produced
  EXPECT_LT(sent["packed"], 10000);      // the client's default: LZ4

  // Both read back as produced.
  for (const char* topic : {"plain", "packed"}) {
    kafka::TopicReadOptions read;
    read.brokers = (*broker)->bootstrap_servers();
    read.topic = topic;
    read.partitions = {0};
    int n = 0;
    ASSERT_TRUE(kafka::ReadTopic(read, [&](const kafka::ReadRecord& r) {
                  EXPECT_EQ(r.value, value);
                  ++n;
                }).ok());
    EXPECT_EQ(n, 10) << topic;
  }
}

// A topic given properties of its own keeps the user's topic-level ones
// (here `partitioner`): it started from librdkafka's defaults, and the
// same keys went to other partitions of it than of the other topics.
TEST(ProducerTopicPropertiesTest, ATopicsOwnKeepTheUsersTopicLevelOnes) {
  auto broker = EmbeddedBroker::Start(1, {{"plain", 8}, {"packed", 8}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  kafka::Producer::Options options;
  options.brokers = (*broker)->bootstrap_servers();
  options.client_id = "topic-properties-test";
  options.properties = {{"partitioner", "murmur2_random"}};
  options.topic_properties["plain"] = {{"compression.type", "none"}};
  auto producer = kafka::Producer::Create(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int i = 0; i < 20; ++i) {
    const std::string key = absl::StrCat("visitor-", i);
    ASSERT_TRUE((*producer)->Produce("plain", key, "v").ok());
    ASSERT_TRUE((*producer)->Produce("packed", key, "v").ok());
  }
  ASSERT_TRUE((*producer)->Flush().ok());
  producer->reset();
  std::map<std::string, std::map<std::string, int32_t>> partition_of;
  for (const char* topic : {"plain", "packed"}) {
    kafka::TopicReadOptions read;
    read.brokers = (*broker)->bootstrap_servers();
    read.topic = topic;
    read.partitions = {0, 1, 2, 3, 4, 5, 6, 7};
    ASSERT_TRUE(kafka::ReadTopic(read, [&](const kafka::ReadRecord& r) {
                  partition_of[topic][std::string(r.key)] = r.partition;
                }).ok());
  }
  ASSERT_EQ(partition_of["plain"].size(), 20u);
  EXPECT_EQ(partition_of["plain"], partition_of["packed"]);
}

TEST(ProducerTopicPropertiesTest, ABadOneIsAnErrorNamingTheTopicAndProperty) {
  kafka::Producer::Options options;
  options.brokers = "127.0.0.1:1";
  options.topic_properties["internal"] = {{"compression.type", "brotli"}};
  auto producer = kafka::Producer::Create(options);
  ASSERT_FALSE(producer.ok());
  EXPECT_EQ(producer.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(producer.status().message());
  EXPECT_NE(message.find("\"compression.type\""), std::string::npos) << message;
  EXPECT_NE(message.find("\"internal\""), std::string::npos) << message;
}

}  // namespace
}  // namespace kpistream
