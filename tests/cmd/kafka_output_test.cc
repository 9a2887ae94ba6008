// KafkaStreamOutput: a record the producer cannot deliver aborts the
// transaction at the next commit (at-least-once: fails the next flush) and
// the stream thread reads its input again (SPEC §10: an output that cannot
// be written pauses, nothing is dropped, the engine lives on); it does not
// stop the thread. Against
// the embedded broker (librdkafka's mock cluster), which refuses a Produce
// request on request.
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "cmd/embedded_broker.h"
#include "engine/kafka_io.h"
#include "gtest/gtest.h"
#include "kafka/topic_reader.h"

namespace kpistream {
namespace {

constexpr int16_t kProduceApiKey = 0;  // Kafka protocol: Produce
constexpr int16_t kEndTxnApiKey = 26;  // Kafka protocol: EndTxn (a commit)

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

// A KafkaStreamOutput, transactional unless said otherwise (and the input
// whose group it commits for) on `broker`, writing "out".
struct Io {
  explicit Io(const EmbeddedBroker& broker, bool transactional = true,
              kafka::Properties more = {},
              absl::Duration commit_attempt_timeout = absl::Seconds(5),
              absl::Duration commit_timeout = absl::Minutes(2),
              absl::Duration transaction_timeout = absl::Seconds(10)) {
    kafka::Consumer::Options in;
    in.brokers = broker.bootstrap_servers();
    in.group_id = "output-test";
    in.topics = {"in"};
    auto made_input = KafkaStreamInput::Create(in, &listener);
    EXPECT_TRUE(made_input.ok()) << made_input.status();
    if (!made_input.ok()) return;
    input = *std::move(made_input);
    kafka::Producer::Options out;
    out.brokers = broker.bootstrap_servers();
    out.client_id = "output-test";
    if (transactional) out.transactional_id = "output-test-0";
    // One record in the queue at a time: the second Produce() waits for
    // the first one's delivery report, so a failure surfaces there.
    out.properties = {{"queue.buffering.max.messages", "1"}};
    for (auto& [key, value] : more) out.properties[key] = value;
    out.commit_attempt_timeout = commit_attempt_timeout;
    out.commit_timeout = commit_timeout;
    out.transaction_timeout = transaction_timeout;
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
  auto broker = EmbeddedBroker::Start(1, {{"in", 1}, {"out", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  Io io(**broker);
  ASSERT_NE(io.output, nullptr);
  KafkaStreamOutput& o = *io.output;
  ASSERT_TRUE(o.transactional());

  // The broker refuses the first Produce request for good (as its record
  // validation would): that record is not delivered. (A refused write
  // permission would do too, but librdkafka then forgets the topic's
  // partitions until its next metadata refresh.)
  (*broker)->RefuseNextRequest(kProduceApiKey,
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
  EXPECT_EQ(CommittedValues((*broker)->bootstrap_servers(), "out"),
            (std::vector<std::string>{"d", "e"}));
}

// A record whose delivery fails while the commit flushes it: librdkafka says
// "1 message(s) failed delivery (see individual delivery reports)", which
// names no topic; the abort's message names the first report's topic and
// partition (an audit: in an output partition's outage no line did).
TEST(KafkaStreamOutputTest, ACommitsFailedDeliveryNamesTheTopic) {
  auto broker = EmbeddedBroker::Start(1, {{"in", 1}, {"out", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  Io io(**broker);
  ASSERT_NE(io.output, nullptr);
  (*broker)->RefuseNextRequest(kProduceApiKey,
                               RD_KAFKA_RESP_ERR_INVALID_RECORD);
  ASSERT_TRUE(io.output->Produce("out", "k", "a", {}, -1).ok());
  const absl::Status commit = io.output->Commit({});
  EXPECT_TRUE(absl::IsAborted(commit)) << commit;
  EXPECT_TRUE(absl::StrContains(commit.message(),
                                "delivery to topic \"out\" partition 0"))
      << commit;
}

// A commit the transaction coordinator confirms late (a slow or failing-over
// broker) is waited for: librdkafka goes on with it in the background and
// refuses an abort meanwhile (the attempt to abort it failed and stopped
// the engine). Between attempts the wait callback keeps the thread alive.
TEST(KafkaStreamOutputTest, ACommitConfirmedLateIsWaitedFor) {
  auto broker = EmbeddedBroker::Start(1, {{"in", 1}, {"out", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  Io io(**broker, /*transactional=*/true, {},
        /*commit_attempt_timeout=*/absl::Milliseconds(300));
  ASSERT_NE(io.output, nullptr);
  KafkaStreamOutput& o = *io.output;
  int waits = 0;
  o.SetWaitCallback([&waits] { ++waits; });
  for (const char* value : {"a", "b"}) {
    EXPECT_TRUE(o.Produce("out", "k", value, {}, -1).ok()) << value;
  }
  (*broker)->DelayNextResponse(1, kEndTxnApiKey, absl::Seconds(2));
  const absl::Status commit = o.Commit({});
  EXPECT_TRUE(commit.ok()) << commit;
  EXPECT_GE(waits, 2);  // attempts of 300 ms over 2 s
  EXPECT_EQ(CommittedValues((*broker)->bootstrap_servers(), "out"),
            (std::vector<std::string>{"a", "b"}));
}

// Past the commit timeout the commit is a failure that names the cause and
// says it is resolved when the transactional.id starts again. (One Io per
// broker, as in the other tests: a second consumer of the group made on
// the same broker at once tripped an assertion inside librdkafka's sticky
// assignor at its destruction.)
TEST(KafkaStreamOutputTest, ACommitNotConfirmedInTimeIsAnErrorThatSaysSo) {
  auto broker = EmbeddedBroker::Start(1, {{"in", 1}, {"out", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  Io io(**broker, /*transactional=*/true, {},
        /*commit_attempt_timeout=*/absl::Milliseconds(200),
        /*commit_timeout=*/absl::Seconds(1));
  ASSERT_NE(io.output, nullptr);
  KafkaStreamOutput& o = *io.output;
  EXPECT_TRUE(o.Produce("out", "k", "c", {}, -1).ok());
  (*broker)->DelayNextResponse(1, kEndTxnApiKey, absl::Seconds(4));
  const absl::Status commit = o.Commit({});
  EXPECT_TRUE(absl::IsUnavailable(commit)) << commit;
  EXPECT_TRUE(absl::StrContains(commit.message(),
                                "not confirmed by the "
                                "brokers within 1s"))
      << commit;
}

// At-least-once likewise: a record not delivered (refused by the broker,
// or given up after message.timeout.ms) drops the records after it, the
// next Flush() says so (AbortedError: the stream thread reads again from
// its last checkpoint, SPEC §10) whether the failure surfaced there or in
// a later Produce(), and after Restart() records go through again.
TEST(KafkaStreamOutputTest, AtLeastOnceAnUndeliveredRecordIsReportedAtFlush) {
  auto broker = EmbeddedBroker::Start(1, {{"in", 1}, {"out", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  Io io(**broker, /*transactional=*/false);
  ASSERT_NE(io.output, nullptr);
  KafkaStreamOutput& o = *io.output;
  ASSERT_FALSE(o.transactional());

  for (const std::vector<std::string>& values :
       {std::vector<std::string>{"a"},               // seen by Flush()
        std::vector<std::string>{"b", "c", "x"}}) {  // by the second Produce
    SCOPED_TRACE(values.front());
    (*broker)->RefuseNextRequest(kProduceApiKey,
                                 RD_KAFKA_RESP_ERR_INVALID_RECORD);
    for (const std::string& value : values) {
      EXPECT_TRUE(o.Produce("out", "k", value, {}, -1).ok()) << value;
    }
    absl::Status flushed = o.Flush();
    EXPECT_TRUE(absl::IsAborted(flushed)) << flushed;
    EXPECT_TRUE(absl::StrContains(flushed.message(), "\"out\"")) << flushed;
    absl::Status restarted = o.Restart();
    ASSERT_TRUE(restarted.ok()) << restarted;
  }
  for (const char* value : {"d", "e"}) {
    EXPECT_TRUE(o.Produce("out", "k", value, {}, -1).ok()) << value;
  }
  absl::Status flushed = o.Flush();
  EXPECT_TRUE(flushed.ok()) << flushed;
  EXPECT_EQ(CommittedValues((*broker)->bootstrap_servers(), "out"),
            (std::vector<std::string>{"d", "e"}));
}

// A full queue (here one record, whose first send the broker refuses with
// a retriable error, retried after 500 ms) makes Produce() wait, calling
// the output's wait callback meanwhile (the stream thread's heartbeat).
TEST(KafkaStreamOutputTest, AProduceWaitingForRoomCallsTheWaitCallback) {
  auto broker = EmbeddedBroker::Start(1, {{"in", 1}, {"out", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  Io io(**broker, /*transactional=*/false, {{"retry.backoff.ms", "500"}});
  ASSERT_NE(io.output, nullptr);
  KafkaStreamOutput& o = *io.output;
  int waits = 0;
  o.SetWaitCallback([&] { ++waits; });
  (*broker)->RefuseNextRequest(kProduceApiKey,
                               RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  EXPECT_TRUE(o.Produce("out", "k", "a", {}, -1).ok());
  EXPECT_EQ(waits, 0);
  EXPECT_TRUE(o.Produce("out", "k", "b", {}, -1).ok());  // waits for "a"
  EXPECT_GT(waits, 0);
  absl::Status flushed = o.Flush();
  EXPECT_TRUE(flushed.ok()) << flushed;
  // A replaced producer calls it too (at-least-once, Abort() restarts).
  ASSERT_TRUE(o.Abort().ok());
  const int before = waits;
  (*broker)->RefuseNextRequest(kProduceApiKey,
                               RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  EXPECT_TRUE(o.Produce("out", "k", "c", {}, -1).ok());
  EXPECT_TRUE(o.Produce("out", "k", "d", {}, -1).ok());  // waits for "c"
  EXPECT_GT(waits, before);
  flushed = o.Flush();
  EXPECT_TRUE(flushed.ok()) << flushed;
  EXPECT_EQ(CommittedValues((*broker)->bootstrap_servers(), "out"),
            (std::vector<std::string>{"a", "b", "c", "d"}));
}

// A record refused for what would fail every time it is redone (here a
// partition the topic does not have) is an error, as before: an abort and
// a re-read would only loop.
TEST(KafkaStreamOutputTest, ARecordRefusedForItselfIsAnError) {
  auto broker = EmbeddedBroker::Start(1, {{"in", 1}, {"out", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  Io io(**broker);
  ASSERT_NE(io.output, nullptr);
  absl::Status s = io.output->Produce("out", "k", "x", {}, 7);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "\"out\"")) << s;
}

// A producer fenced because its transaction outlived the transaction
// timeout (the brokers abort it: an output partition's leader down longer
// than that, every transaction) is replaced however often; one fenced while
// its transaction is young (another process with the same instance id) at
// most RenewalBudget::kMax times within its window, then it is an error
// that says so. An audit's engine stopped after an 80 s outage of one
// output partition, "fenced 4 times within 5m". EndTxn refused with
// PRODUCER_FENCED stands for both: librdkafka makes it fatal either way.
TEST(KafkaStreamOutputTest, AFenceAfterTheTransactionTimeoutIsNoIntruder) {
  auto broker = EmbeddedBroker::Start(1, {{"in", 1}, {"out", 1}});
  ASSERT_TRUE(broker.ok()) << broker.status();
  // Long enough that a young transaction's produce and commit never take
  // it on a loaded machine (the review of this test: 1 s might).
  constexpr absl::Duration kTimeout = absl::Seconds(3);
  Io io(**broker, /*transactional=*/true, {}, absl::Seconds(5),
        absl::Minutes(2), kTimeout);
  ASSERT_NE(io.output, nullptr);
  KafkaStreamOutput& o = *io.output;
  auto fenced_commit = [&](absl::Duration age) {
    EXPECT_TRUE(o.Produce("out", "k", "x", {}, -1).ok());
    absl::SleepFor(age);
    (*broker)->RefuseNextRequest(kEndTxnApiKey,
                                 RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    return o.Commit({});
  };
  for (int i = 0; i < RenewalBudget::kMax + 1; ++i) {
    const absl::Status s = fenced_commit(kTimeout + absl::Milliseconds(200));
    EXPECT_TRUE(absl::IsAborted(s)) << i << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "producer was replaced"))
        << i << ": " << s;
  }
  for (int i = 0; i < RenewalBudget::kMax; ++i) {
    const absl::Status s = fenced_commit(absl::ZeroDuration());
    EXPECT_TRUE(absl::IsAborted(s)) << i << ": " << s;
  }
  const absl::Status refused = fenced_commit(absl::ZeroDuration());
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_TRUE(
      absl::StrContains(refused.message(), "same processing.instance_id"))
      << refused;
}

}  // namespace
}  // namespace kpistream
