// State that survives crashes, restarts and rebalances, exactly once (issue
// 8, SPEC §5 and §10), on a real Apache Kafka cluster (3 KRaft brokers, the
// shared CTest fixture): instances of one group are SIGKILLed, SIGTERMed,
// restarted, joined and removed mid-stream while loadgen produces traffic
// with disorder; afterwards a read_committed consumer of the sessions topic
// holds exactly the sessions a batch computation over all produced events
// gives (none missing, none twice, none split), and the KPI counters of the
// fleet (each process's last scrape, summed) equal the batch totals.
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "aggregate/bot_filter.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/sessionizer.h"
#include "export/session_record_codec.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "ingest/event_decoder.h"
#include "kpistream/v1/session_record.pb.h"
#include "kafka/producer.h"
#include "kafka/topic_reader.h"
#include "tests/integration/kafka_cluster.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

constexpr int kPartitions = 6;

// ---- The batch reference ---------------------------------------------------

struct Batch {
  std::map<std::string, v1::SessionRecord> sessions;  // by session_id
  double records = 0, accepted = 0, bots = 0, duplicates = 0, invalid = 0;
  double pageviews = 0, orders = 0;
};

class Collect : public SessionObserver {
 public:
  void OnSessionStarted(const SessionAttributes&, const EventView&) override {}
  void OnEvent(const SessionAttributes&, const EventView&) override {}
  void OnSessionClosed(const ClosedSession& s) override {
    v1::SessionRecord r;
    ToSessionRecord(s, &r);
    sessions[r.session_id()] = r;
  }
  std::map<std::string, v1::SessionRecord> sessions;
};

// Every input record, decoded, bots and repeats out, sorted by event time,
// sessionized in one pass (no watermark, no reordering needed).
Batch Compute(const std::vector<KafkaRecord>& input) {
  Batch b;
  EventDecoder decoder(InputFormat::kJson, absl::Hours(24 * 3650));
  BotFilter bots;
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<Event> events;
  const absl::Time now = absl::Now() + absl::Hours(24 * 3650);
  for (const KafkaRecord& r : input) {
    ++b.records;
    Event e;
    if (!decoder.Decode(r.value, now, &e).ok) {
      ++b.invalid;
      continue;
    }
    if (bots.IsBot(e.user_agent)) {
      ++b.bots;
      continue;
    }
    if (!seen.insert({e.site_id, e.event_id}).second) {
      ++b.duplicates;
      continue;
    }
    ++b.accepted;
    b.pageviews += e.type == EventType::kPageView;
    events.push_back(std::move(e));
  }
  std::sort(events.begin(), events.end(), [](const Event& x, const Event& y) {
    return std::tie(x.time, x.event_id) < std::tie(y.time, y.event_id);
  });
  Collect collect;
  ChannelClassifier channels;
  Sessionizer sessionizer(SessionRules{}, &collect, &channels);
  for (const Event& e : events) sessionizer.Add(e);
  sessionizer.CloseAll();
  b.sessions = std::move(collect.sessions);
  for (const auto& [id, s] : b.sessions) b.orders += s.orders();
  return b;
}

// ---- The fleet ---------------------------------------------------------------

// One `kpistream run` process; its metrics are scraped in the background
// and the page of its latest commit is kept after it is gone.
struct Lifetime {
  std::string instance;
  int port = 0;
  std::unique_ptr<Subprocess> process;
  std::string best_page;  // the scraped page with the most commits
  double best_commits = -1;
};

class Fleet {
 public:
  Fleet(std::string bootstrap, std::string group, std::string input,
        std::string sessions)
      : bootstrap_(std::move(bootstrap)),
        group_(std::move(group)),
        input_(std::move(input)),
        sessions_(std::move(sessions)) {
    scraper_ = std::thread([this] {
      while (!stop_) {
        std::vector<std::pair<Lifetime*, int>> ports;
        {
          std::lock_guard<std::mutex> lock(mu_);
          for (auto& l : lifetimes_) ports.push_back({l.get(), l->port});
        }
        for (auto [life, port] : ports) Scrape(life, port);
        absl::SleepFor(absl::Milliseconds(100));
      }
    });
  }
  ~Fleet() {
    stop_ = true;
    scraper_.join();
  }

  std::string Config(const std::string& instance, int port) const {
    return absl::StrCat(R"(
kafka:
  brokers: )",
                        bootstrap_, R"(
  group_id: )",
                        group_, R"(
  properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"}
inputs: [{topic: )",
                        input_, R"(, format: json}]
outputs:
  sessions: {topic: )",
                        sessions_, R"(, format: json}
  kpi: {enabled: false}
  deadletter: {topic: )",
                        input_, R"(-dead}
  changelog: {topic: )",
                        group_, R"(-changelog}
processing:
  guarantee: exactly_once
  instance_id: )",
                        instance, R"(
  max_out_of_orderness: 30s
  idle_partition_timeout: 2s
metrics:
  listen: 127.0.0.1:)",
                        port, R"(
  final_scrape_wait: 10s
)");
  }

  // Starts instance `name` (a new lifetime) and waits until it serves.
  Lifetime* Start(const std::string& name) {
    auto life = std::make_unique<Lifetime>();
    life->instance = name;
    life->port = FreePort();
    const std::string path =
        dir_.Write(absl::StrCat(name, "-", lifetimes_.size(), ".yaml"),
                   Config(name, life->port));
    life->process = std::make_unique<Subprocess>(
        std::vector<std::string>{KpistreamBinary(), "run", "--config", path,
                                 "--log-level", "debug"});
    Lifetime* raw = life.get();
    EXPECT_TRUE(WaitFor([&] { return HttpGet(raw->port, "/metrics").ok(); },
                        absl::Seconds(60)))
        << raw->process->Stderr();
    std::lock_guard<std::mutex> lock(mu_);
    lifetimes_.push_back(std::move(life));
    return raw;
  }

  // SIGKILL right after a commit, so that the last scrape has all that the
  // process committed (what it did since is redone by its successor).
  void Kill(Lifetime* life) {
    double commits = -1;
    for (int i = 0; i < 200; ++i) {
      auto page = HttpGet(life->port, "/metrics");
      if (!page.ok()) continue;
      const double c = MetricValue(*page, "kpistream_commits_total");
      if (commits >= 0 && c > commits) {
        kill(life->process->pid(), SIGKILL);
        Keep(life, *page);
        break;
      }
      commits = c;
      absl::SleepFor(absl::Milliseconds(10));
    }
    life->process->Stop(SIGKILL, absl::Seconds(10));
  }

  // SIGTERM: the engine commits its state and waits for a scrape of it.
  int Stop(Lifetime* life) {
    return life->process->Stop(SIGTERM, absl::Seconds(60));
  }

  // Sum of `name` over every lifetime's best page.
  double Total(const std::string& name,
               const std::map<std::string, std::string>& labels = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    double total = 0;
    for (const auto& l : lifetimes_) {
      const double v = MetricValue(l->best_page, name, labels);
      if (v > 0) total += v;
    }
    return total;
  }

  std::string Logs() {
    std::string out;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& l : lifetimes_) {
      absl::StrAppend(&out, "---- ", l->instance, " (port ", l->port, ")\n",
                      l->process->Stderr());
      for (absl::string_view line : absl::StrSplit(l->best_page, '\n')) {
        if (absl::StartsWith(line, "kpistream_consumer_lag") ||
            absl::StartsWith(line, "kpistream_events_consumed") ||
            absl::StartsWith(line, "kpistream_commits") ||
            absl::StartsWith(line, "kpistream_reorder") ||
            absl::StartsWith(line, "kpistream_ready") ||
            absl::StartsWith(line, "kpistream_assigned")) {
          absl::StrAppend(&out, "  last page: ", line, "\n");
        }
      }
    }
    return out;
  }

 private:
  void Scrape(Lifetime* life, int port) {
    auto page = HttpGet(port, "/metrics");
    if (page.ok()) Keep(life, *page);
  }
  void Keep(Lifetime* life, const std::string& page) {
    std::lock_guard<std::mutex> lock(keep_mu_);
    const double c = MetricValue(page, "kpistream_commits_total");
    if (c >= life->best_commits) {
      life->best_commits = c;
      life->best_page = page;
    }
  }

  std::string bootstrap_, group_, input_, sessions_;
  TempDir dir_;
  std::mutex mu_;       // lifetimes_
  std::mutex keep_mu_;  // best pages
  std::vector<std::unique_ptr<Lifetime>> lifetimes_;
  std::atomic<bool> stop_{false};
  std::thread scraper_;
};

std::map<std::string, v1::SessionRecord> CommittedSessions(
    const std::string& bootstrap, const std::string& topic, size_t expected,
    int* duplicates) {
  auto records = ConsumeFromKafka(bootstrap, topic, expected + 1000,
                                  absl::Seconds(20), /*read_committed=*/true);
  std::map<std::string, v1::SessionRecord> out;
  *duplicates = 0;
  if (!records.ok()) {
    ADD_FAILURE() << records.status();
    return out;
  }
  for (const KafkaRecord& r : *records) {
    v1::SessionRecord s;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.value, &s).ok())
        << r.value;
    if (!out.emplace(s.session_id(), s).second) ++*duplicates;
  }
  return out;
}

class DurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bootstrap = SharedKafka();
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    bootstrap_ = *bootstrap;
    group_ = UniqueKafkaName("durable");
    input_ = group_ + "-events";
    sessions_ = group_ + "-sessions";
    ASSERT_TRUE(CreateKafkaTopic(bootstrap_, input_, kPartitions, 3).ok());
    ASSERT_TRUE(CreateKafkaTopic(bootstrap_, sessions_, 3, 3).ok());
    ASSERT_TRUE(CreateKafkaTopic(bootstrap_, input_ + "-dead", 1, 3).ok());
    ASSERT_TRUE(CreateKafkaTopic(bootstrap_, group_ + "-changelog", kPartitions,
                                 3, {{"cleanup.policy", "compact"}})
                    .ok());
  }

  // loadgen traffic with disorder (within max_out_of_orderness), repeats and
  // bots, event time 100x the wall clock; in the background.
  std::unique_ptr<Subprocess> Loadgen(int events, const std::string& key) {
    return std::make_unique<Subprocess>(std::vector<std::string>{
        KpistreamBinary(), "loadgen", "--brokers", bootstrap_, "--topic",
        input_, "--format", "json", "--rate", "3000", "--event-rate", "30",
        "--events", absl::StrCat(events), "--visitors", "3000", "--seed", "8",
        "--start-time", "2026-01-01T00:00:00Z", "--disorder", "20s",
        "--duplicates", "0.02", "--bots", "0.02", "--key", key});
  }

  // Ends the bounded input: event time moves a day past it everywhere.
  void EndOfInput() {
    auto advanced = AdvanceEventTime(bootstrap_, input_, kPartitions,
                                     absl::FromUnixSeconds(1767225600 + 86400 * 2),
                                     /*json=*/true);
    ASSERT_TRUE(advanced.ok()) << advanced.status();
  }

  // Waits until the fleet has committed every session of the batch, then
  // checks sessions and counters.
  void ExpectExactlyTheBatch(Fleet& fleet) {
    auto input = ConsumeFromKafka(bootstrap_, input_, 1u << 30,
                                  absl::Seconds(15), false);
    ASSERT_TRUE(input.ok()) << input.status();
    const Batch batch = Compute(*input);
    ASSERT_GT(batch.sessions.size(), 500u);
    ASSERT_GT(batch.bots, 0);
    ASSERT_GT(batch.duplicates, 0);
    std::map<std::string, v1::SessionRecord> got;
    int duplicates = 0;
    EXPECT_TRUE(WaitFor(
        [&] {
          got = CommittedSessions(bootstrap_, sessions_, batch.sessions.size(),
                                  &duplicates);
          return got.size() >= batch.sessions.size();
        },
        absl::Seconds(120)))
        << got.size() << " of " << batch.sessions.size() << " sessions\n"
        << fleet.Logs();
    EXPECT_EQ(duplicates, 0);
    int missing = 0, extra = 0, different = 0;
    for (const auto& [id, want] : batch.sessions) {
      auto it = got.find(id);
      if (it == got.end()) {
        if (++missing <= 5) ADD_FAILURE() << "missing " << want.DebugString();
        continue;
      }
      if (it->second.DebugString() != want.DebugString() && ++different <= 5) {
        ADD_FAILURE() << "got " << it->second.DebugString() << "want "
                      << want.DebugString();
      }
    }
    for (const auto& [id, s] : got) {
      if (!batch.sessions.count(id) && ++extra <= 5) {
        ADD_FAILURE() << "extra (split?) " << s.DebugString();
      }
    }
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(extra, 0);
    EXPECT_EQ(different, 0);
    // The fleet's counters: every process's last scrape, summed.
    EXPECT_TRUE(WaitFor(
        [&] {
          return fleet.Total("kpistream_events_consumed_total") ==
                 batch.records;
        },
        absl::Seconds(30)))
        << fleet.Total("kpistream_events_consumed_total") << " of "
        << batch.records;
    EXPECT_EQ(fleet.Total("web_events_total"), batch.accepted);
    EXPECT_EQ(fleet.Total("kpistream_bot_events_total"), batch.bots);
    EXPECT_EQ(fleet.Total("kpistream_events_duplicate_total"),
              batch.duplicates);
    EXPECT_EQ(fleet.Total("kpistream_events_invalid_total"), batch.invalid);
    EXPECT_EQ(fleet.Total("kpistream_events_late_total"), 0);
    EXPECT_EQ(fleet.Total("web_pageviews_total"), batch.pageviews);
    EXPECT_EQ(fleet.Total("web_sessions_closed_total"),
              static_cast<double>(batch.sessions.size()));
    EXPECT_EQ(fleet.Total("web_sessions_started_total"),
              static_cast<double>(batch.sessions.size()));
    EXPECT_EQ(fleet.Total("web_orders_total"), batch.orders);
    if (HasFailure()) {
      std::cerr << fleet.Logs();
      CommandResult dead = RunCommand(
          {"kcat", "-b", bootstrap_, "-C", "-t", input_ + "-dead", "-e", "-q",
           "-X", "isolation.level=read_committed", "-f", "%h\n"});
      for (absl::string_view line : absl::StrSplit(dead.out, '\n')) {
        if (absl::StrContains(line, "reason=late")) {
          std::cerr << "late: " << line << "\n";
        }
      }
      auto log = ConsumeFromKafka(bootstrap_, group_ + "-changelog", 1u << 20,
                                  absl::Seconds(10), true);
      if (log.ok()) {
        for (const KafkaRecord& r : *log) {
          std::cerr << "changelog p" << r.partition << " @" << r.offset << " "
                    << r.key << " " << r.value.size() << "\n";
        }
      }
    }
  }

  std::string bootstrap_, group_, input_, sessions_;
};

// Two instances; one SIGKILLed mid-stream and restarted, the other
// SIGTERMed and restarted.
TEST_F(DurabilityTest, CrashAndRestartsAreExactlyOnce) {
  Fleet fleet(bootstrap_, group_, input_, sessions_);
  Lifetime* a = fleet.Start("a");
  Lifetime* b = fleet.Start("b");
  auto loadgen = Loadgen(30000, "visitor");
  absl::SleepFor(absl::Seconds(3));
  fleet.Kill(a);
  a = fleet.Start("a");
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(fleet.Stop(b), 0) << fleet.Logs();
  b = fleet.Start("b");
  EXPECT_EQ(loadgen->Stop(0, absl::Seconds(120)), 0) << loadgen->Stderr();
  EndOfInput();
  ExpectExactlyTheBatch(fleet);
}

// A third instance joins mid-stream and leaves (SIGTERM, for good).
TEST_F(DurabilityTest, AnInstanceJoiningAndLeavingChangesNothing) {
  Fleet fleet(bootstrap_, group_, input_, sessions_);
  fleet.Start("a");
  fleet.Start("b");
  auto loadgen = Loadgen(30000, "visitor");
  absl::SleepFor(absl::Seconds(2));
  Lifetime* c = fleet.Start("c");
  absl::SleepFor(absl::Seconds(8));
  EXPECT_EQ(fleet.Stop(c), 0) << fleet.Logs();
  EXPECT_EQ(loadgen->Stop(0, absl::Seconds(120)), 0) << loadgen->Stderr();
  EndOfInput();
  ExpectExactlyTheBatch(fleet);
}

}  // namespace
}  // namespace kpistream::testing

namespace kpistream::testing {
namespace {

// The restore's reader sees every committed transaction of a changelog
// partition, the latest included, right after its commit returned.
TEST(ChangelogReaderTest, SeesEveryCommittedTransactionAtOnce) {
  auto bootstrap = SharedKafka();
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  const std::string topic = UniqueKafkaName("readback");
  ASSERT_TRUE(CreateKafkaTopic(*bootstrap, topic, 2, 3,
                               {{"cleanup.policy", "compact"}})
                  .ok());
  kafka::Producer::Options options;
  options.brokers = *bootstrap;
  options.transactional_id = topic + "-txn";
  auto producer = kafka::Producer::Create(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int txn = 0; txn < 5; ++txn) {
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE((*producer)
                      ->Produce(topic, absl::StrCat("k", txn, "-", i),
                                absl::StrCat("v", txn), {}, 0)
                      .ok());
    }
    ASSERT_TRUE((*producer)->CommitTransaction(nullptr, {}).ok());
    kafka::TopicReadOptions read;
    read.brokers = *bootstrap;
    read.topic = topic;
    read.partitions = {0, 1};
    int seen = 0;
    ASSERT_TRUE(kafka::ReadTopic(read, [&](const kafka::ReadRecord&) {
                  ++seen;
                }).ok());
    EXPECT_EQ(seen, 3 * (txn + 1)) << "after transaction " << txn;
  }
}

}  // namespace
}  // namespace kpistream::testing
