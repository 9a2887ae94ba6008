// Smoke tests of the shared 3-node Apache Kafka cluster (CTest fixture
// kafka3): what the embedded mock broker cannot do, proved on a real one.
// Produce and consume across brokers, transactions with read_committed, a
// crashed transactional producer fenced by its successor or aborted by the
// broker after its transaction.timeout.ms, and a compacted topic.
#include "tests/integration/kafka_cluster.h"

#include <signal.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kafka/topic_reader.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

std::vector<std::string> Values(const std::vector<KafkaRecord>& records) {
  std::vector<std::string> values;
  for (const KafkaRecord& r : records) values.push_back(r.value);
  return values;
}

std::vector<std::string> Numbered(const std::string& prefix, int count) {
  std::vector<std::string> values;
  for (int i = 0; i < count; ++i) values.push_back(absl::StrCat(prefix, i));
  return values;
}

// A transactional librdkafka producer; every call waits for the broker.
class TransactionalProducer {
 public:
  TransactionalProducer(const std::string& bootstrap,
                        const std::string& transactional_id) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char errstr[512];
    for (const auto& [key, value] : std::map<std::string, std::string>{
             {"bootstrap.servers", bootstrap},
             {"transactional.id", transactional_id},
             {"linger.ms", "0"}}) {
      rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr,
                        sizeof(errstr));
    }
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk_ == nullptr) ADD_FAILURE() << "transactional producer: " << errstr;
  }
  ~TransactionalProducer() {
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
  }

  absl::Status Init() {
    return Check("init_transactions", rd_kafka_init_transactions(rk_, 60000));
  }
  absl::Status Begin() {
    return Check("begin_transaction", rd_kafka_begin_transaction(rk_));
  }
  absl::Status Send(const std::string& topic, const std::string& value) {
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic.c_str()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
    return absl::InternalError(
        absl::StrCat("produce to ", topic, ": ", rd_kafka_err2name(err)));
  }
  // Waits until the broker has every record sent so far (an abort drops
  // records still queued in the client, so they would never be written).
  absl::Status Flush() {
    const rd_kafka_resp_err_t err = rd_kafka_flush(rk_, 60000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("flush: ", rd_kafka_err2name(err)));
  }
  absl::Status Commit() {
    return Check("commit_transaction", rd_kafka_commit_transaction(rk_, 60000));
  }
  absl::Status Abort() {
    return Check("abort_transaction", rd_kafka_abort_transaction(rk_, 60000));
  }

 private:
  static absl::Status Check(const char* what, rd_kafka_error_t* error) {
    if (error == nullptr) return absl::OkStatus();
    absl::Status status = absl::InternalError(
        absl::StrCat(what, ": ", rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
    return status;
  }

  rd_kafka_t* rk_ = nullptr;
};

class KafkaClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> bootstrap = SharedKafka("kafka3");
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    bootstrap_ = *bootstrap;
  }

  // A topic of 1 partition replicated on all 3 brokers.
  std::string NewTopic(const std::string& prefix,
                       const std::map<std::string, std::string>& configs = {}) {
    const std::string topic = UniqueKafkaName(prefix);
    const absl::Status created =
        CreateKafkaTopic(bootstrap_, topic, 1, 3, configs);
    EXPECT_TRUE(created.ok()) << created;
    return topic;
  }

  // Starts open_transaction_producer and waits until its transaction holds
  // `count` records.
  std::unique_ptr<Subprocess> StartOpenTransaction(
      const std::string& topic, const std::string& transactional_id, int count,
      absl::Duration transaction_timeout) {
    auto child = std::make_unique<Subprocess>(std::vector<std::string>{
        KPISTREAM_OPEN_TRANSACTION_PRODUCER, bootstrap_, topic,
        transactional_id, absl::StrCat(count),
        absl::StrCat(absl::ToInt64Milliseconds(transaction_timeout))});
    absl::StatusOr<std::string> line = child->ReadLine(absl::Seconds(60));
    EXPECT_TRUE(line.ok() && *line == "open")
        << "open_transaction_producer: " << line.status() << "\n"
        << child->Stderr();
    return child;
  }

  std::string bootstrap_;
};

TEST_F(KafkaClusterTest, ProducesAndConsumesAcrossThreeBrokers) {
  ASSERT_EQ(std::vector<std::string>(absl::StrSplit(bootstrap_, ',')).size(),
            3u)
      << bootstrap_;
  const std::string topic = UniqueKafkaName("smoke");
  ASSERT_TRUE(CreateKafkaTopic(bootstrap_, topic, 6, 3).ok());
  std::set<int> leaders;
  for (int p = 0; p < 6; ++p) {
    // A broker may not know a topic the controller just created (seen once:
    // UNKNOWN_TOPIC_OR_PART right after CreateTopics answered).
    absl::StatusOr<int> leader;
    WaitFor(
        [&] {
          leader = KafkaPartitionLeader(bootstrap_, topic, p);
          return leader.ok();
        },
        absl::Seconds(10));
    ASSERT_TRUE(leader.ok()) << leader.status();
    leaders.insert(*leader);
  }
  EXPECT_EQ(leaders.size(), 3u) << "6 partitions led by fewer than 3 brokers";

  const std::vector<std::string> sent = Numbered("v", 600);
  ASSERT_TRUE(ProduceToKafka(bootstrap_, topic, sent).ok());
  absl::StatusOr<std::vector<KafkaRecord>> got =
      ConsumeFromKafka(bootstrap_, topic, sent.size(), absl::Seconds(60),
                       /*read_committed=*/false);
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> values = Values(*got);
  std::sort(values.begin(), values.end());
  std::vector<std::string> want = sent;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(values, want);

  // A second read of the same topic sees the same records: nothing lost.
  absl::StatusOr<std::vector<KafkaRecord>> again =
      ConsumeFromKafka(bootstrap_, topic, sent.size() + 1, absl::Seconds(3),
                       /*read_committed=*/false);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->size(), sent.size());
  // Records of one key stay in one partition.
  std::map<std::string, int32_t> partition_of_key;
  for (const KafkaRecord& r : *got) {
    EXPECT_TRUE(partition_of_key.emplace(r.key, r.partition).second ||
                partition_of_key[r.key] == r.partition);
  }
}

TEST_F(KafkaClusterTest, ReadCommittedSeesCommittedTransactionsOnly) {
  const std::string topic = NewTopic("txn");
  TransactionalProducer producer(bootstrap_, UniqueKafkaName("txn-id"));
  ASSERT_TRUE(producer.Init().ok());
  ASSERT_TRUE(producer.Begin().ok());
  ASSERT_TRUE(producer.Send(topic, "committed-1").ok());
  ASSERT_TRUE(producer.Send(topic, "committed-2").ok());
  ASSERT_TRUE(producer.Commit().ok());
  ASSERT_TRUE(producer.Begin().ok());
  ASSERT_TRUE(producer.Send(topic, "aborted-1").ok());
  ASSERT_TRUE(producer.Send(topic, "aborted-2").ok());
  ASSERT_TRUE(producer.Flush().ok());
  const absl::Status aborted = producer.Abort();
  ASSERT_TRUE(aborted.ok()) << aborted;
  ASSERT_TRUE(producer.Begin().ok());
  ASSERT_TRUE(producer.Send(topic, "committed-3").ok());
  ASSERT_TRUE(producer.Commit().ok());

  absl::StatusOr<std::vector<KafkaRecord>> committed = ConsumeFromKafka(
      bootstrap_, topic, 4, absl::Seconds(5), /*read_committed=*/true);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(
      Values(*committed),
      (std::vector<std::string>{"committed-1", "committed-2", "committed-3"}));
  // The aborted records are in the log: read_uncommitted shows them.
  absl::StatusOr<std::vector<KafkaRecord>> everything = ConsumeFromKafka(
      bootstrap_, topic, 5, absl::Seconds(30), /*read_committed=*/false);
  ASSERT_TRUE(everything.ok()) << everything.status();
  EXPECT_EQ(Values(*everything),
            (std::vector<std::string>{"committed-1", "committed-2", "aborted-1",
                                      "aborted-2", "committed-3"}));
}

// A transactional producer killed with its transaction open holds back every
// read_committed consumer of the partition (the mock broker never lets go);
// a new producer with the same transactional.id fences it and its open
// transaction is aborted at once.
TEST_F(KafkaClusterTest, CrashedTransactionIsAbortedBySuccessorWithSameId) {
  const std::string topic = NewTopic("fence");
  const std::string id = UniqueKafkaName("fenced-id");
  // A timeout far beyond the bound below: only fencing can explain a pass.
  std::unique_ptr<Subprocess> crashed =
      StartOpenTransaction(topic, id, 5, absl::Seconds(120));
  ASSERT_FALSE(HasFailure());
  const std::vector<std::string> after = Numbered("after-", 3);
  ASSERT_TRUE(ProduceToKafka(bootstrap_, topic, after).ok());
  absl::StatusOr<std::vector<KafkaRecord>> held = ConsumeFromKafka(
      bootstrap_, topic, 1, absl::Seconds(2), /*read_committed=*/true);
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_TRUE(held->empty()) << "read_committed read past an open transaction";

  crashed->Stop(SIGKILL, absl::Seconds(5));
  const absl::Time killed = absl::Now();
  TransactionalProducer successor(bootstrap_, id);
  const absl::Status init = successor.Init();
  ASSERT_TRUE(init.ok()) << init;
  const absl::Duration fenced = absl::Now() - killed;

  absl::StatusOr<std::vector<KafkaRecord>> committed =
      ConsumeFromKafka(bootstrap_, topic, after.size(), absl::Seconds(30),
                       /*read_committed=*/true);
  ASSERT_TRUE(committed.ok()) << committed.status();
  const absl::Duration visible = absl::Now() - killed;
  EXPECT_EQ(Values(*committed), after);
  EXPECT_LT(visible, absl::Seconds(30));
  std::cout << "fencing: init_transactions of the successor took "
            << absl::FormatDuration(fenced)
            << ", read_committed past the crashed transaction "
            << absl::FormatDuration(visible) << " after the kill\n";
  RecordProperty("fence_ms", std::to_string(absl::ToInt64Milliseconds(fenced)));
  RecordProperty("visible_ms",
                 std::to_string(absl::ToInt64Milliseconds(visible)));
}

// Without a successor the broker aborts the crashed producer's transaction
// once transaction.timeout.ms (10 s) has passed since it began.
TEST_F(KafkaClusterTest, CrashedTransactionIsAbortedAfterItsTimeout) {
  const std::string topic = NewTopic("timeout");
  const absl::Time began = absl::Now();
  std::unique_ptr<Subprocess> crashed = StartOpenTransaction(
      topic, UniqueKafkaName("abandoned-id"), 5, absl::Seconds(10));
  ASSERT_FALSE(HasFailure());
  crashed->Stop(SIGKILL, absl::Seconds(5));
  const std::vector<std::string> after = Numbered("after-", 3);
  ASSERT_TRUE(ProduceToKafka(bootstrap_, topic, after).ok());
  // Another producer's transactions go on meanwhile.
  TransactionalProducer other(bootstrap_, UniqueKafkaName("other-id"));
  ASSERT_TRUE(other.Init().ok());
  ASSERT_TRUE(other.Begin().ok());
  ASSERT_TRUE(other.Send(topic, "other").ok());
  ASSERT_TRUE(other.Commit().ok());

  absl::StatusOr<std::vector<KafkaRecord>> committed =
      ConsumeFromKafka(bootstrap_, topic, after.size() + 1, absl::Seconds(45),
                       /*read_committed=*/true);
  ASSERT_TRUE(committed.ok()) << committed.status();
  const absl::Duration visible = absl::Now() - began;
  std::vector<std::string> want = after;
  want.push_back("other");
  EXPECT_EQ(Values(*committed), want);
  EXPECT_LT(visible, absl::Seconds(30));
  std::cout << "timeout abort: read_committed past the crashed transaction "
            << absl::FormatDuration(visible)
            << " after it began (transaction.timeout.ms=10000)\n";
  RecordProperty("visible_ms",
                 std::to_string(absl::ToInt64Milliseconds(visible)));
}

// kafka::DescribeTopic gives a partition's log end, not its last stable
// offset: a restore compares the local store's position with it, and one
// past an LSO that another producer's open transaction holds back made the
// store look "ahead of the changelog" and had it rebuilt in full.
TEST_F(KafkaClusterTest, DescribeTopicGivesTheLogEndPastAnOpenTransaction) {
  const std::string topic = NewTopic("ends");
  ASSERT_TRUE(ProduceToKafka(bootstrap_, topic, Numbered("before-", 2)).ok());
  std::unique_ptr<Subprocess> open = StartOpenTransaction(
      topic, UniqueKafkaName("open-id"), 5, absl::Seconds(60));
  ASSERT_FALSE(HasFailure());
  kafka::TopicReadOptions read;
  read.brokers = bootstrap_;
  read.topic = topic;
  read.partitions = {0};
  read.timeout = absl::Seconds(30);
  absl::StatusOr<kafka::TopicEnds> ends = kafka::DescribeTopic(read);
  ASSERT_TRUE(ends.ok()) << ends.status();
  EXPECT_EQ(ends->ends, (std::map<int32_t, int64_t>{{0, 7}}));
  open->Stop(SIGKILL, absl::Seconds(5));
}

// The mock broker does not compact; a real one keeps the last value per key.
TEST_F(KafkaClusterTest, CompactedTopicKeepsTheLastValuePerKey) {
  const std::string topic =
      NewTopic("compacted", {{"cleanup.policy", "compact"},
                             {"segment.ms", "100"},
                             {"min.cleanable.dirty.ratio", "0.01"}});
  const std::vector<std::string> keys = Numbered("key-", 10);
  ASSERT_TRUE(
      ProduceToKafka(bootstrap_, topic, Numbered("old-", 10), keys).ok());
  absl::SleepFor(absl::Milliseconds(300));  // the next append rolls a segment
  ASSERT_TRUE(
      ProduceToKafka(bootstrap_, topic, Numbered("new-", 10), keys).ok());
  absl::SleepFor(absl::Milliseconds(300));
  // The active segment is never cleaned: this one closes the "new-" segment.
  ASSERT_TRUE(ProduceToKafka(bootstrap_, topic, {"last"}, {"roll"}).ok());

  std::vector<KafkaRecord> records;
  auto last_values = [&] {
    std::map<std::string, std::string> last;
    for (const KafkaRecord& r : records) last[r.key] = r.value;
    return last;
  };
  absl::StatusOr<std::vector<KafkaRecord>> read = ConsumeFromKafka(
      bootstrap_, topic, 21, absl::Seconds(5), /*read_committed=*/false);
  ASSERT_TRUE(read.ok()) << read.status();
  records = *read;
  std::map<std::string, std::string> want;
  for (int i = 0; i < 10; ++i) want[keys[i]] = absl::StrCat("new-", i);
  want["roll"] = "last";
  EXPECT_EQ(last_values(), want);

  const absl::Time start = absl::Now();
  const bool compacted = WaitFor(
      [&] {
        absl::StatusOr<std::vector<KafkaRecord>> now = ConsumeFromKafka(
            bootstrap_, topic, 21, absl::Seconds(2), /*read_committed=*/false);
        if (!now.ok()) return false;
        records = *now;
        return records.size() == want.size();
      },
      absl::Seconds(60));
  EXPECT_TRUE(compacted) << records.size() << " records, not " << want.size()
                         << ": the log cleaner did not compact in 60 s";
  EXPECT_EQ(last_values(), want);
  std::cout << "compaction: old values gone "
            << absl::FormatDuration(absl::Now() - start) << " after writing\n";
}

// An output topic that takes smaller records than the engine's producer
// (its max.message.bytes under the producer's message.max.bytes) is said
// at the start: a record between the two limits would be refused by the
// brokers and the work that made it redone, refused again each time (an
// audit: a large dead letter stalled its thread for good, unexplained).
// Dead letters, which carry their input whatever its size, are cut to the
// dead-letter topic's limit once the brokers have said it.
TEST_F(KafkaClusterTest, DeadLettersFitTheDeadLetterTopicsSmallerLimit) {
  const std::string input = NewTopic("limits-in");
  const std::string dead =
      NewTopic("limits-dead", {{"max.message.bytes", "100000"}});
  const std::string sessions = NewTopic("limits-sessions");
  const std::string kpi = NewTopic("limits-kpi");
  TempDir dir;
  const int port = FreePort();
  const std::string config = dir.Write(
      "c.yaml",
      absl::StrCat("kafka: {brokers: '", bootstrap_,
                   "', group_id: ", UniqueKafkaName("limits"), "}\n",
                   "inputs: [{topic: ", input, ", key: visitor_id}]\n",
                   "outputs:\n  deadletter: {topic: ", dead,
                   "}\n  sessions: {topic: ", sessions, "}\n  kpi: {topic: ",
                   kpi, "}\n", "processing: {state_dir: '", dir.path(),
                   "/state'}\nmetrics: {listen: '127.0.0.1:", port, "'}\n"));
  Subprocess engine({KpistreamBinary(), "run", "--config", config});
  const std::string said = absl::StrCat(
      "the output topic \"", dead,
      "\" takes records of at most 100000 bytes (its max.message.bytes), "
      "fewer than the producer's 1000000");
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(engine.Stderr(), said); },
                      absl::Seconds(60)))
      << engine.Stderr();
  // A record of 300 kB that is no event, and does not compress (the
  // brokers' limit is of the compressed batch): its dead letter is cut to
  // fit; whole, the brokers refused it, and its work was redone for good.
  std::string garbage(300000, '\0');
  uint64_t x = 88172645463325252ull;
  for (char& c : garbage) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  ASSERT_TRUE(ProduceToKafka(bootstrap_, input, {garbage}, {"v1"}).ok());
  absl::StatusOr<std::vector<KafkaRecord>> letters =
      ConsumeFromKafka(bootstrap_, dead, 1, absl::Seconds(60),
                       /*read_committed=*/true);
  ASSERT_TRUE(letters.ok()) << letters.status();
  ASSERT_EQ(letters->size(), 1u) << engine.Stderr();
  EXPECT_EQ((*letters)[0].key, "v1");
  EXPECT_LT((*letters)[0].value.size(), 100000u);
  EXPECT_GT((*letters)[0].value.size(), 90000u);
  EXPECT_EQ((*letters)[0].value, garbage.substr(0, (*letters)[0].value.size()));
  EXPECT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::string> page = HttpGet(port, "/metrics");
        return page.ok() &&
               MetricValue(*page, "kpistream_events_invalid_total") >= 1;
      },
      absl::Seconds(30)));
  EXPECT_EQ(engine.Stop(SIGTERM, absl::Seconds(30)), 0) << engine.Stderr();
  // The topics the config left at the brokers' default are not named.
  const std::string log = engine.Stderr();
  size_t times = 0;
  for (size_t at = log.find("takes records of at most");
       at != std::string::npos;
       at = log.find("takes records of at most", at + 1)) {
    ++times;
  }
  EXPECT_EQ(times, 1u) << log;
  EXPECT_EQ(log.find("transaction was aborted"), std::string::npos) << log;
}

}  // namespace
}  // namespace kpistream::testing
