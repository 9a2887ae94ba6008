// kafka::NewConf: the user's `kafka.properties` reach each client type they
// belong to, and only those (librdkafka warns about the others at every
// client's start).
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/kafka_io.h"
#include "gtest/gtest.h"
#include "kafka/client.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "librdkafka/rdkafka_mock.h"

namespace kpistream::kafka {
namespace {

std::string Get(rd_kafka_conf_t* conf, const char* name) {
  char value[256];
  size_t size = sizeof(value);
  if (rd_kafka_conf_get(conf, name, value, &size) != RD_KAFKA_CONF_OK) {
    return "(unknown)";
  }
  return value;
}

ClientSettings Settings(rd_kafka_type_t type) {
  ClientSettings settings;
  settings.type = type;
  settings.brokers = "127.0.0.1:9";
  settings.user = {{"session.timeout.ms", "6001"},
                   {"linger.ms", "17"},
                   {"socket.timeout.ms", "12345"}};
  return settings;
}

TEST(NewConfTest, AProducerLeavesOutConsumerOnlyProperties) {
  auto conf = NewConf(Settings(RD_KAFKA_PRODUCER));
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(Get(conf->get(), "session.timeout.ms"), "45000");  // default
  EXPECT_EQ(Get(conf->get(), "linger.ms"), "17");
  EXPECT_EQ(Get(conf->get(), "socket.timeout.ms"), "12345");
}

TEST(NewConfTest, AConsumerLeavesOutProducerOnlyProperties) {
  auto conf = NewConf(Settings(RD_KAFKA_CONSUMER));
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(Get(conf->get(), "session.timeout.ms"), "6001");
  EXPECT_EQ(Get(conf->get(), "linger.ms"), "5");  // default
  EXPECT_EQ(Get(conf->get(), "socket.timeout.ms"), "12345");
}

TEST(NewConfTest, AnUnknownPropertyIsAnErrorNamingIt) {
  ClientSettings settings = Settings(RD_KAFKA_CONSUMER);
  settings.user["no.such.property"] = "1";
  auto conf = NewConf(settings);
  ASSERT_FALSE(conf.ok());
  EXPECT_NE(std::string(conf.status().message()).find("no.such.property"),
            std::string::npos)
      << conf.status();
}

// A consumer's share of processing.input_buffer: a quarter queued, a
// sixteenth per Fetch response (kafka/consumer.h says why).
TEST(FetchBufferPropertiesTest, AShareOfTheBudget) {
  const Properties p = FetchBufferProperties(int64_t{128} << 20, {});
  EXPECT_EQ(p, (Properties{{"queued.max.messages.kbytes", "32768"},
                           {"queued.min.messages", "131072"},
                           {"fetch.max.bytes", "8388608"}}));
}

TEST(FetchBufferPropertiesTest, LibrdkafkasLimitsHold) {
  // fetch.max.bytes must be >= message.max.bytes (1000000 by default, or the
  // user's); the kbytes and count within librdkafka's ranges.
  Properties p = FetchBufferProperties(int64_t{4} << 20, {});
  EXPECT_EQ(p["queued.max.messages.kbytes"], "1024");
  EXPECT_EQ(p["queued.min.messages"], "4096");
  EXPECT_EQ(p["fetch.max.bytes"], "1000000");
  p = FetchBufferProperties(int64_t{1} << 20,
                            {{"message.max.bytes", "2000000"}});
  EXPECT_EQ(p["queued.min.messages"], "1024");
  EXPECT_EQ(p["fetch.max.bytes"], "2000000");
  p = FetchBufferProperties(int64_t{1} << 40, {});
  EXPECT_EQ(p["queued.max.messages.kbytes"], "2097151");
  EXPECT_EQ(p["queued.min.messages"], "8388604");
  EXPECT_EQ(p["fetch.max.bytes"], "2147483135");
  // A message.max.bytes beyond fetch.max.bytes' range (librdkafka rejects
  // it later, naming it) still gives a value in range.
  p = FetchBufferProperties(int64_t{1} << 20,
                            {{"message.max.bytes", "99999999999"}});
  EXPECT_EQ(p["fetch.max.bytes"], "2147483135");
}

TEST(FetchBufferPropertiesTest, TheUsersPropertiesWin) {
  const Properties p = FetchBufferProperties(
      int64_t{128} << 20,
      {{"queued.max.messages.kbytes", "1000"}, {"security.protocol", "SSL"}});
  EXPECT_EQ(p, (Properties{{"queued.min.messages", "131072"},
                           {"fetch.max.bytes", "8388608"}}));
}

struct NoListener : Consumer::Listener {
  std::map<TopicPartition, int64_t> OnAssigned(
      const std::vector<TopicPartition>&) override {
    return {};
  }
  void OnRevoked(const std::vector<TopicPartition>&) override {}
  void OnLost(const std::vector<TopicPartition>&) override {}
};

// A consumer of web.events that is never polled (the broker is never
// reached), for reading its configuration.
Consumer::Options UnpolledConsumer(const std::string& group_id) {
  Consumer::Options options;
  options.brokers = "127.0.0.1:9";
  options.group_id = group_id;
  options.topics = {"web.events"};
  return options;
}

// What a consumer's librdkafka handle was configured with.
std::string ConfValue(Consumer& consumer, const char* name) {
  char value[64];
  size_t size = sizeof(value);
  EXPECT_EQ(
      rd_kafka_conf_get(rd_kafka_conf(consumer.handle()), name, value, &size),
      RD_KAFKA_CONF_OK)
      << name;
  return std::string(value);
}

// The engine's split: processing.input_buffer / processing.threads per
// consumer, whatever the number of partitions (the bound is per consumer
// queue); what the consumer's librdkafka handle was configured with.
TEST(ConsumerTest, GetsTheDerivedPropertiesUnlessTheUserSetsThem) {
  NoListener listener;
  Consumer::Options options = UnpolledConsumer("fetch-buffer-test");
  options.properties = {{"fetch.max.bytes", "5000000"}};
  // Not 256 MiB: its quarter would be librdkafka's own default (65536).
  options.fetch_buffer = int64_t{128} << 20;
  auto consumer = Consumer::Create(options, &listener);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto get = [&](const char* name) { return ConfValue(**consumer, name); };
  EXPECT_EQ(get("queued.max.messages.kbytes"), "32768");
  EXPECT_EQ(get("queued.min.messages"), "131072");
  EXPECT_EQ(get("fetch.max.bytes"), "5000000");  // the user's
  (*consumer)->Close();
}

// A stream thread restores partitions between two polls, for minutes when
// a lost local store is rebuilt: an hour between polls, unless the user's
// properties say otherwise.
TEST(ConsumerTest, MaxPollIntervalIsAnHourUnlessTheUserSetsIt) {
  NoListener listener;
  Consumer::Options options = UnpolledConsumer("max-poll-test");
  for (const auto& [user, expected] :
       std::vector<std::pair<Properties, std::string>>{
           {{}, "3600000"}, {{{"max.poll.interval.ms", "600000"}}, "600000"}}) {
    options.properties = user;
    auto consumer = Consumer::Create(options, &listener);
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    EXPECT_EQ(ConfValue(**consumer, "max.poll.interval.ms"), expected);
    (*consumer)->Close();
  }
}

// Partitions added to an input topic are seen within 30 s (librdkafka's
// metadata refresh: 5 minutes), unless the user's properties say otherwise.
TEST(ConsumerTest, MetadataIsRefreshedEvery30sUnlessTheUserSaysOtherwise) {
  NoListener listener;
  Consumer::Options options = UnpolledConsumer("metadata-refresh-test");
  for (const auto& [user, expected] :
       std::vector<std::pair<Properties, std::string>>{
           {{}, "30000"},
           {{{"topic.metadata.refresh.interval.ms", "300000"}}, "300000"}}) {
    options.properties = user;
    auto consumer = Consumer::Create(options, &listener);
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    EXPECT_EQ(ConfValue(**consumer, "topic.metadata.refresh.interval.ms"),
              expected);
    (*consumer)->Close();
  }
}

TEST(MaxFetchWaitForTest, AFifthOfTheIntervalWithinBounds) {
  EXPECT_EQ(MaxFetchWaitFor(absl::Seconds(1)), absl::Milliseconds(200));
  EXPECT_EQ(MaxFetchWaitFor(absl::Milliseconds(250)), absl::Milliseconds(50));
  EXPECT_EQ(MaxFetchWaitFor(absl::Milliseconds(10)), absl::Milliseconds(10));
  EXPECT_EQ(MaxFetchWaitFor(absl::Seconds(5)), absl::Milliseconds(500));
}

// fetch.wait.max.ms: the engine's (a fifth of its min_commit_interval), unless
// the user's properties set it; librdkafka's 500 ms without either.
TEST(ConsumerTest, FetchWaitIsTheEnginesUnlessTheUserSetsIt) {
  NoListener listener;
  Consumer::Options options = UnpolledConsumer("fetch-wait-test");
  const struct {
    absl::Duration wait;
    Properties user;
    const char* expected;
  } cases[] = {{absl::Milliseconds(50), {}, "50"},
               {absl::Milliseconds(50), {{"fetch.wait.max.ms", "300"}}, "300"},
               {absl::ZeroDuration(), {}, "500"}};
  for (const auto& c : cases) {
    options.max_fetch_wait = c.wait;
    options.properties = c.user;
    auto consumer = Consumer::Create(options, &listener);
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    EXPECT_EQ(ConfValue(**consumer, "fetch.wait.max.ms"), c.expected);
    (*consumer)->Close();
  }
}

// With Options::pause_new_partitions (a stream thread's input) a newly
// assigned partition fetches nothing until it is resumed, and then reads
// from where it was sought meanwhile, not from the group's offset (a
// restore seeks it: what was fetched before the seek was dropped and
// fetched again, held up to processing.input_buffer, ~300 MB of a
// restart's peak). librdkafka's mock cluster.
TEST(ConsumerTest, ANewPartitionWaitsPausedForItsSeek) {
  char error[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", error,
                              sizeof(error)),
            RD_KAFKA_CONF_OK)
      << error;
  rd_kafka_t* producer =
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  ASSERT_NE(producer, nullptr) << error;
  rd_kafka_mock_cluster_t* cluster = rd_kafka_handle_mock_cluster(producer);
  ASSERT_NE(cluster, nullptr);
  ASSERT_EQ(rd_kafka_mock_topic_create(cluster, "paused", 1, 1),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  for (int i = 0; i < 10; ++i) {
    const std::string value = std::to_string(i);
    ASSERT_EQ(
        rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC("paused"), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  struct Assigned : NoListener {
    std::map<TopicPartition, int64_t> OnAssigned(
        const std::vector<TopicPartition>& partitions) override {
      assigned += static_cast<int>(partitions.size());
      return {};
    }
    int assigned = 0;
  } listener;
  Consumer::Options options;
  options.brokers = rd_kafka_mock_cluster_bootstraps(cluster);
  options.group_id = "paused-group";
  options.topics = {"paused"};
  options.properties = {{"auto.offset.reset", "earliest"}};
  options.pause_new_partitions = true;
  auto consumer = Consumer::Create(options, &listener);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  std::vector<Message> polled;
  std::vector<int64_t> offsets;
  auto poll_for = [&](absl::Duration d) {
    const absl::Time until = absl::Now() + d;
    while (absl::Now() < until) {
      (*consumer)->Poll(100, absl::Milliseconds(100), &polled);
      for (const Message& m : polled) {
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) offsets.push_back(m->offset);
      }
    }
  };
  const absl::Time joining = absl::Now();
  while (listener.assigned == 0 && absl::Now() - joining < absl::Seconds(30)) {
    poll_for(absl::Milliseconds(100));
  }
  ASSERT_EQ(listener.assigned, 1);
  poll_for(absl::Seconds(2));  // fetched, it would be read by now
  EXPECT_TRUE(offsets.empty()) << offsets.size() << " record(s) read";
  const TopicPartition tp{"paused", 0};
  rd_kafka_topic_partition_list_t* list = ToPartitionList({{tp, 4}});
  rd_kafka_error_t* sought =
      rd_kafka_seek_partitions((*consumer)->handle(), list, 10000);
  rd_kafka_topic_partition_list_destroy(list);
  ASSERT_EQ(sought, nullptr) << rd_kafka_error_string(sought);
  (*consumer)->Resume({tp});
  const absl::Time reading = absl::Now();
  while (offsets.size() < 6 && absl::Now() - reading < absl::Seconds(30)) {
    poll_for(absl::Milliseconds(100));
  }
  EXPECT_EQ(offsets, (std::vector<int64_t>{4, 5, 6, 7, 8, 9}));
  (*consumer)->Close();
  consumer->reset();
  rd_kafka_destroy(producer);
}

}  // namespace
// Replacing a fenced client is allowed kMax times within the window; the
// window slides.
// A producer replacing a fenced one waits for the transaction coordinator
// for as long as it answers CONCURRENT_TRANSACTIONS (it is completing the
// fenced producer's transaction, which waits for every output partition
// to be in sync again: an audit's process exited 35 s after a broker came
// back, at a fixed 60 s), telling its waiter between attempts; a first
// start still gives up at its init_timeout. On librdkafka's mock cluster.
TEST(ProducerTest, AReplacementWaitsOutConcurrentTransactions) {
  constexpr int16_t kInitProducerId = 22;  // the Kafka protocol's API key
  char error[256];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), error,
                                sizeof(error));
  ASSERT_NE(rk, nullptr) << error;
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, 1);
  ASSERT_NE(cluster, nullptr);
  // Each init_transactions attempt is 5 s; librdkafka retries the request
  // within it every ~0.5 s or more: this many errors outlast an attempt.
  const std::vector<rd_kafka_resp_err_t> busy(
      15, RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS);
  kafka::Producer::Options options;
  options.brokers = rd_kafka_mock_cluster_bootstraps(cluster);
  options.transactional_id = "replacing";
  options.init_timeout = absl::InfiniteDuration();
  int waits = 0;
  options.on_wait = [&] { ++waits; };
  rd_kafka_mock_push_request_errors_array(cluster, kInitProducerId, busy.size(),
                                          busy.data());
  {
    auto replacing = kafka::Producer::Create(options);
    ASSERT_TRUE(replacing.ok()) << replacing.status();
    EXPECT_GT(waits, 0);
  }
  options.transactional_id = "starting";
  options.init_timeout = absl::Seconds(1);  // one attempt
  rd_kafka_mock_push_request_errors_array(cluster, kInitProducerId, busy.size(),
                                          busy.data());
  {
    auto starting = kafka::Producer::Create(options);
    EXPECT_FALSE(starting.ok());
  }
  rd_kafka_mock_clear_request_errors(cluster, kInitProducerId);
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
}

TEST(RenewalBudgetTest, ThreeWithinFiveMinutesThenRefusedUntilOneExpires) {
  RenewalBudget budget;
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  EXPECT_TRUE(budget.Spend(t0));
  EXPECT_TRUE(budget.Spend(t0 + absl::Minutes(1)));
  EXPECT_TRUE(budget.Spend(t0 + absl::Minutes(2)));
  EXPECT_FALSE(budget.Spend(t0 + absl::Minutes(3)));
  EXPECT_EQ(budget.refused_count(), 4);
  EXPECT_TRUE(budget.Spend(t0 + absl::Minutes(5) + absl::Seconds(1)));
}

// A renewal a broker fault explains (excused) is always allowed and takes
// nothing from the budget.
TEST(RenewalBudgetTest, AnExcusedRenewalIsNotCounted) {
  RenewalBudget budget;
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(budget.Spend(t0 + absl::Seconds(i), /*excused=*/true));
  }
  EXPECT_EQ(budget.Backoff(), absl::Seconds(1));
  EXPECT_TRUE(budget.Spend(t0 + absl::Seconds(20)));
  EXPECT_TRUE(budget.Spend(t0 + absl::Seconds(21)));
  EXPECT_TRUE(budget.Spend(t0 + absl::Seconds(22)));
  EXPECT_TRUE(budget.Spend(t0 + absl::Seconds(23), /*excused=*/true));
  EXPECT_FALSE(budget.Spend(t0 + absl::Seconds(24)));
  EXPECT_EQ(budget.refused_count(), 4);
}

// Each replacement within the window waits twice as long as the one before
// (an intruder still initialising fences every replacement made at once);
// once the earlier renewals leave the window, the wait is short again.
TEST(RenewalBudgetTest, EachRenewalWithinTheWindowWaitsTwiceAsLong) {
  RenewalBudget budget;
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  ASSERT_TRUE(budget.Spend(t0));
  EXPECT_EQ(budget.Backoff(), absl::Seconds(1));
  ASSERT_TRUE(budget.Spend(t0 + absl::Seconds(2)));
  EXPECT_EQ(budget.Backoff(), absl::Seconds(2));
  ASSERT_TRUE(budget.Spend(t0 + absl::Seconds(5)));
  EXPECT_EQ(budget.Backoff(), absl::Seconds(4));
  ASSERT_TRUE(budget.Spend(t0 + absl::Minutes(6)));
  EXPECT_EQ(budget.Backoff(), absl::Seconds(1));
}

}  // namespace kpistream::kafka
