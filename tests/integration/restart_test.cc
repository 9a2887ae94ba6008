// Restart does not split (issue 8, SPEC §5): a session whose events straddle
// a stop and a restart of the instance is ONE SessionRecord, equal to the
// batch computation's, and the restarted instance reads on where its
// predecessor stopped (the fleet's counters equal the batch totals: nothing
// read twice).
//
// Built twice from this file: restart_test runs it on the embedded broker
// (`kpistream broker`, librdkafka's mock cluster, which does not store
// transactional offset commits: the engine resumes from the input positions
// kept in its changelog), restart_kafka_test on the shared 3-node Apache
// Kafka cluster (CTest fixture kafka3).
//
// Before the stop, visitor v1's session is open (10:00:00 in the
// sessionizer) and its 10:05:00 page view still waits in the reorder buffer
// (the watermark is 10:04:40); after the restart v1 comes back at 10:20 and
// 10:21 (a conversion), then event time moves two days on and every session
// closes. Stops: SIGTERM (the engine commits and exits 0) and SIGKILL right
// after a commit.
#include <signal.h>

#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/fleet.h"
#include "tests/integration/kafka_cluster.h"
#include "tests/integration/test_support.h"

#ifndef KPISTREAM_RESTART_ON_KAFKA
#define KPISTREAM_RESTART_ON_KAFKA 0
#endif

namespace kpistream::testing {
namespace {

constexpr int kPartitions = 2;

std::string Event(const std::string& visitor, const std::string& id,
                  const std::string& time, const std::string& type,
                  const std::string& page, const std::string& extra = "") {
  return absl::StrCat(
      "{\"eventId\":\"", id, "\",\"eventTime\":\"2026-01-01T", time,
      "Z\",\"siteId\":\"shop\",\"visitorId\":\"", visitor, "\",\"type\":\"",
      type, "\",\"pageUrl\":\"https://shop.example", page,
      "\",\"referrer\":\"https://www.google.com/\",\"userAgent\":"
      "\"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Firefox/120.0\"",
      extra, "}");
}

// v1's purchase at 10:21, the last event of its session.
std::string V1Purchase() {
  return Event("v1", "a4", "10:21:00", "CONVERSION", "/thanks",
               ",\"conversion\":{\"goal\":\"purchase\","
               "\"valueMicros\":\"25500000\",\"currency\":\"EUR\","
               "\"orderId\":\"o-1\"}");
}

// `got` holds one session of v1's: from 10:00 to its purchase at 10:21,
// last on /checkout (a conversion is not a page view), with `events`
// events and `pageviews` page views.
void ExpectOneV1Session(const std::map<std::string, v1::SessionRecord>& got,
                        int events, int pageviews) {
  int v1_sessions = 0;
  for (const auto& [id, s] : got) {
    if (s.visitor_id() != "v1") continue;
    ++v1_sessions;
    EXPECT_EQ(s.events(), events) << s.DebugString();
    EXPECT_EQ(s.pageviews(), pageviews) << s.DebugString();
    EXPECT_EQ(s.duration_seconds(), 21 * 60) << s.DebugString();
    EXPECT_EQ(s.exit_page(), "https://shop.example/checkout")
        << s.DebugString();
    EXPECT_EQ(s.orders(), 1) << s.DebugString();
  }
  EXPECT_EQ(v1_sessions, 1);
}

class RestartTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    const std::string group = UniqueKafkaName("restart");
    options_.group = group;
    options_.input = group + "-events";
    options_.sessions = group + "-sessions";
#if KPISTREAM_RESTART_ON_KAFKA
    auto bootstrap = SharedKafka();
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    options_.bootstrap = *bootstrap;
    ASSERT_TRUE(
        CreateKafkaTopic(*bootstrap, options_.input, kPartitions, 3).ok());
    ASSERT_TRUE(CreateKafkaTopic(*bootstrap, options_.sessions, 1, 3).ok());
    ASSERT_TRUE(
        CreateKafkaTopic(*bootstrap, options_.input + "-dead", 1, 3).ok());
    // The changelog topic is left to the engine: it creates it compacted.
#else
    broker_ = std::make_unique<BrokerProcess>(std::vector<std::string>{
        absl::StrCat(options_.input, ":", kPartitions),
        options_.sessions + ":1", options_.input + "-dead:1",
        absl::StrCat(group, "-changelog:", kPartitions)});
    ASSERT_FALSE(broker_->bootstrap().empty()) << broker_->process().Stderr();
    options_.bootstrap = broker_->bootstrap();
#endif
  }

  void Produce(const std::vector<std::pair<std::string, std::string>>& events) {
    std::vector<std::string> keys, values;
    for (const auto& [key, value] : events) {
      keys.push_back(key);
      values.push_back(value);
    }
    const absl::Status produced =
        ProduceToKafka(options_.bootstrap, options_.input, values, keys);
    ASSERT_TRUE(produced.ok()) << produced;
  }

  // Waits until `life` has committed `records` consumed records.
  bool Committed(Fleet& fleet, Lifetime* life, double records) {
    return WaitFor(
        [&] {
          auto page = HttpGet(life->port, "/metrics");
          return page.ok() &&
                 MetricValue(*page, "kpistream_events_consumed_total") ==
                     records;
        },
        absl::Seconds(60));
  }

  // kpistream_input_records_deleted_total of the input topic (-1: no page).
  double DeletedTotal(Lifetime* life) {
    auto page = HttpGet(life->port, "/metrics");
    return page.ok()
               ? MetricValue(*page, "kpistream_input_records_deleted_total",
                             {{"topic", options_.input}})
               : -1;
  }

  // Starts instance "a" again: its restore finds no records deleted
  // before they were read (its position is past those it counted).
  void ExpectNoDeletedRecordsAtTheNextStart(Fleet& fleet) {
    Lifetime* a = fleet.Start("a");
    ASSERT_TRUE(Ready(a)) << a->process->Stderr();
    // (Said at the restore, before ready; counted at the next commit.)
    absl::SleepFor(absl::Seconds(2));
    EXPECT_FALSE(absl::StrContains(a->process->Stderr(), "were deleted from"))
        << a->process->Stderr();
    EXPECT_EQ(DeletedTotal(a), 0) << a->process->Stderr();
  }

  // RecordsDeletedWhileAnInstanceLagged...: e1 read; e2, e3 (and with
  // `record_after` e4) written while the instance is frozen, and every
  // record before e3's end (e4's offset) deleted before it thaws.
  void DeleteWhileFrozen(bool record_after) {
    options_.input_key = "visitor_id";
    // Frozen for some seconds, it stays in the group (review: with the
    // fleet's 6 s its partitions could be lost, and the restore's check,
    // which says the same, counted them instead).
    options_.kafka_properties["session.timeout.ms"] = "45000";
    Fleet fleet(options_);
    Lifetime* a = fleet.Start("a");
    ASSERT_TRUE(Ready(a)) << a->process->Stderr();
    Produce({{"v1", Event("v1", "e1", "10:00:00", "PAGE_VIEW", "/")}});
    ASSERT_TRUE(Committed(fleet, a, 1)) << fleet.Logs();
    auto restores = [&] {
      const std::string err = a->process->Stderr();
      const std::vector<absl::string_view> parts =
          absl::StrSplit(err, " from changelog ");
      return parts.size() - 1;
    };
    const size_t restores_before = restores();
    ASSERT_GT(restores_before, 0u) << a->process->Stderr();
    ASSERT_EQ(kill(a->process->pid(), SIGSTOP), 0);
    // Its fetch in flight is answered (empty) meanwhile: the records below
    // are not in it.
    absl::SleepFor(absl::Seconds(2));
    std::vector<std::pair<std::string, std::string>> written = {
        {"v1", Event("v1", "e2", "10:01:00", "PAGE_VIEW", "/a")},
        {"v1", Event("v1", "e3", "10:02:00", "PAGE_VIEW", "/b")}};
    if (record_after) {
      written.push_back(
          {"v1", Event("v1", "e4", "10:03:00", "PAGE_VIEW", "/c")});
    }
    Produce(written);
    absl::StatusOr<std::vector<KafkaRecord>> records = ConsumeFromKafka(
        options_.bootstrap, options_.input,
        1 + static_cast<int>(written.size()), absl::Seconds(30), false);
    if (!records.ok()) kill(a->process->pid(), SIGCONT);
    ASSERT_TRUE(records.ok()) << records.status();
    std::map<int32_t, int64_t> cut;
    int64_t e1 = -1;
    for (const KafkaRecord& r : *records) {
      if (absl::StrContains(r.value, "\"e3\"") && !record_after) {
        cut[r.partition] = r.offset + 1;
      }
      if (absl::StrContains(r.value, "\"e4\"")) cut[r.partition] = r.offset;
      if (absl::StrContains(r.value, "\"e1\"")) e1 = r.offset;
    }
    const absl::Status deleted_status =
        DeleteKafkaRecordsBefore(options_.bootstrap, options_.input, cut);
    ASSERT_EQ(kill(a->process->pid(), SIGCONT), 0);
    ASSERT_TRUE(deleted_status.ok()) << deleted_status;
    ASSERT_EQ(cut.size(), 1u);
    const int64_t deleted = cut.begin()->second - (e1 + 1);
    ASSERT_GE(deleted, 2);

    EXPECT_TRUE(
        WaitFor([&] { return DeletedTotal(a) == deleted; }, absl::Seconds(60)))
        << a->process->Stderr();
    EXPECT_TRUE(absl::StrContains(
        a->process->Stderr(),
        absl::StrCat("were deleted from the topic (retention) before they "
                     "were read: ",
                     deleted, " input record(s) lost")))
        << a->process->Stderr();
    // Found while it ran, not by a restore.
    EXPECT_EQ(restores(), restores_before) << a->process->Stderr();
    // Reading goes on after them.
    if (!record_after) {
      Produce({{"v1", Event("v1", "e4", "10:03:00", "PAGE_VIEW", "/c")}});
    }
    ASSERT_TRUE(Committed(fleet, a, 2)) << fleet.Logs();
    EXPECT_EQ(DeletedTotal(a), deleted);
    ASSERT_EQ(fleet.Stop(a), 0) << fleet.Logs();

    ExpectNoDeletedRecordsAtTheNextStart(fleet);
  }

  bool Ready(Lifetime* life) {
    return WaitFor(
        [&] {
          auto page = HttpGet(life->port, "/metrics");
          return page.ok() && MetricValue(*page, "kpistream_ready") == 1;
        },
        absl::Seconds(60));
  }

  // v1's first page view has left the reorder buffer (both partitions'
  // watermarks, or the idle one's timeout, passed it), and two commits
  // later it is in the committed state for sure.
  bool OpenSessionCommitted(Lifetime* life) {
    double commits = 0;
    return WaitFor(
               [&] {
                 auto page = HttpGet(life->port, "/metrics");
                 if (!page.ok() ||
                     MetricValue(*page, "web_open_sessions") < 1) {
                   return false;
                 }
                 commits = MetricValue(*page, "kpistream_commits_total");
                 return true;
               },
               absl::Seconds(30)) &&
           WaitFor(
               [&] {
                 auto page = HttpGet(life->port, "/metrics");
                 return page.ok() &&
                        MetricValue(*page, "kpistream_commits_total") >=
                            commits + 2;
               },
               absl::Seconds(30));
  }

  std::unique_ptr<BrokerProcess> broker_;
  FleetOptions options_;
};

TEST_P(RestartTest, ASessionAcrossARestartIsOneRecord) {
  const int signal = GetParam();
  Fleet fleet(options_);
  Lifetime* a = fleet.Start("a");
  Produce({{"v1", Event("v1", "a1", "10:00:00", "PAGE_VIEW", "/")},
           {"v1", Event("v1", "a2", "10:05:00", "PAGE_VIEW", "/shoes")},
           {"v2", Event("v2", "b1", "10:05:10", "PAGE_VIEW", "/")}});
  ASSERT_TRUE(Committed(fleet, a, 3)) << fleet.Logs();
  ASSERT_TRUE(OpenSessionCommitted(a)) << fleet.Logs();
  if (signal == SIGKILL) {
    fleet.Kill(a);
  } else {
    ASSERT_EQ(fleet.Stop(a), 0) << fleet.Logs();
  }
  // Nothing of v1 was written before the restart.
  int duplicates = 0;
  EXPECT_EQ(
      CommittedSessions(options_.bootstrap, options_.sessions, 0, &duplicates)
          .size(),
      0u);

  a = fleet.Start("a");
  Produce({{"v1", Event("v1", "a3", "10:20:00", "PAGE_VIEW", "/checkout")},
           {"v1", V1Purchase()}});
  EndOfInput(options_.bootstrap, options_.input, kPartitions);
  const Batch batch = ExpectExactlyTheBatch(fleet, absl::Seconds(90));

  // The batch's v1 session holds all four events, and so does the record.
  std::map<std::string, v1::SessionRecord> got =
      CommittedSessions(options_.bootstrap, options_.sessions, 2, &duplicates);
  ExpectOneV1Session(got, /*events=*/4, /*pageviews=*/3);
  EXPECT_EQ(batch.sessions.size(), 2u);
  // The restarted instance restored the open session and the buffered page
  // view from the changelog, and read on from the positions there.
  bool restored_open = false;
  for (absl::string_view line : absl::StrSplit(a->process->Stderr(), '\n')) {
    restored_open |= absl::StrContains(line, "restored ") &&
                     absl::StrContains(line, "open session(s)") &&
                     !absl::StrContains(line, "; 0 open session(s)");
  }
  EXPECT_TRUE(restored_open) << a->process->Stderr();
  // ... from its local store (engine/local_store.h): after a SIGTERM (whose
  // last commit the store holds, flushed at the stop) the restart read the
  // checkpoints from it and not one record from the changelog. After a
  // SIGKILL the store holds its last flush only (it keeps no write-ahead
  // log), here nothing: the changelog has the rest.
  const std::regex counts(
      R"(restored .*: (\d+) record\(s\), \d+ bytes from the changelog, (\d+) )"
      R"(record\(s\), \d+ bytes from the local store)");
  int from_changelog = 0, from_store = 0, restores = 0;
  for (const std::string& line :
       std::vector<std::string>(absl::StrSplit(a->process->Stderr(), '\n'))) {
    std::smatch m;
    if (!std::regex_search(line, m, counts)) continue;
    ++restores;
    from_changelog += std::stoi(m[1].str());
    from_store += std::stoi(m[2].str());
  }
  EXPECT_GT(restores, 0) << a->process->Stderr();
  if (signal == SIGTERM) {
    EXPECT_GT(from_store, 0) << a->process->Stderr();
    EXPECT_EQ(from_changelog, 0) << a->process->Stderr();
  } else {
    EXPECT_GT(from_changelog, 0) << a->process->Stderr();
  }
#if KPISTREAM_RESTART_ON_KAFKA
  // Read to their ends, the partitions' consumer lag is 0. The repartition
  // topic is written in the engine's transactions (a watermark record a
  // partition at every commit): its last offset is a commit marker, which
  // librdkafka skips and no record stands for, and the lag was 1 for good.
  // On Kafka only: the embedded broker writes no markers (its offsets have
  // no gaps), and its lag stays 1 for a reason not examined.
  std::string page;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto got = HttpGet(a->port, "/metrics");
        if (!got.ok()) return false;
        page = *std::move(got);
        return MetricValue(page, "kpistream_consumer_lag_messages") == 0 &&
               MetricValue(page, "kpistream_consumer_lag_messages",
                           {{"topic", options_.group + "-repartition"}}) == 0;
      },
      absl::Seconds(30)))
      << page;
#endif
}

#if KPISTREAM_RESTART_ON_KAFKA
// Retention ran out while the instance was down (here the Admin API deletes
// every input record): v1's 10:05 page view, which waited in the reorder
// buffer and was checkpointed as a reference to its record, is lost, and
// the restart says so at once. It reads on from where the input starts now:
// seeking to the deleted record instead would leave the decision to the
// consumer's reset policy, and `latest` would skip v1's 10:20 page view,
// produced while the instance was down.
TEST_F(RestartTest, BufferedEventsOfDeletedRecordsAreLostAndNothingElse) {
  options_.input_key = "visitor_id";  // references to input records
  options_.kafka_properties["auto.offset.reset"] = "latest";
  Fleet fleet(options_);
  Lifetime* a = fleet.Start("a");
  // Ready: the input sought (to its end: a new group, reset policy latest)
  // before anything is produced.
  ASSERT_TRUE(Ready(a)) << a->process->Stderr();
  Produce({{"v1", Event("v1", "a1", "10:00:00", "PAGE_VIEW", "/")},
           {"v1", Event("v1", "a2", "10:05:00", "PAGE_VIEW", "/shoes")}});
  ASSERT_TRUE(Committed(fleet, a, 2)) << fleet.Logs();
  ASSERT_TRUE(OpenSessionCommitted(a)) << fleet.Logs();
  ASSERT_EQ(fleet.Stop(a), 0) << fleet.Logs();
  const absl::Status deleted =
      DeleteKafkaRecords(options_.bootstrap, options_.input, kPartitions);
  ASSERT_TRUE(deleted.ok()) << deleted;
  Produce({{"v1", Event("v1", "a3", "10:20:00", "PAGE_VIEW", "/checkout")}});

  a = fleet.Start("a");
  ASSERT_TRUE(Ready(a)) << a->process->Stderr();
  // Said at once, not when the next record comes.
  EXPECT_TRUE(absl::StrContains(
      a->process->Stderr(),
      "1 buffered event(s) of the checkpoint could not be read again"))
      << a->process->Stderr();
  Produce({{"v1", V1Purchase()}});
  EndOfInput(options_.bootstrap, options_.input, kPartitions);
  int duplicates = 0;
  std::map<std::string, v1::SessionRecord> got;
  ASSERT_TRUE(WaitFor(
      [&] {
        got = CommittedSessions(options_.bootstrap, options_.sessions, 1,
                                &duplicates);
        for (const auto& [id, s] : got) {
          if (s.visitor_id() == "v1") return true;
        }
        return false;
      },
      absl::Seconds(90)))
      << fleet.Logs();
  EXPECT_EQ(duplicates, 0);
  // 10:00 (restored), 10:20 (read although produced while down), 10:21;
  // not 10:05 (deleted).
  ExpectOneV1Session(got, /*events=*/3, /*pageviews=*/2);
}

// Retention took only some of the buffered events' records: those are lost
// and said so at once; the rest are read again. The loss was said only when
// the others' reading ended, at the partition's next record, which an idle
// partition may not get for long (an audit: 436 events lost, said 106 s
// later).
TEST_F(RestartTest, BufferedEventsPartlyDeletedAreSaidLostAtOnce) {
  options_.input_key = "visitor_id";  // references to input records
  Fleet fleet(options_);
  Lifetime* a = fleet.Start("a");
  ASSERT_TRUE(Ready(a)) << a->process->Stderr();
  Produce({{"v1", Event("v1", "b1", "10:00:00", "PAGE_VIEW", "/")},
           {"v1", Event("v1", "b2", "10:05:00", "PAGE_VIEW", "/shoes")},
           {"v1", Event("v1", "b3", "10:05:10", "PAGE_VIEW", "/socks")}});
  ASSERT_TRUE(Committed(fleet, a, 3)) << fleet.Logs();
  ASSERT_TRUE(OpenSessionCommitted(a)) << fleet.Logs();
  ASSERT_EQ(fleet.Stop(a), 0) << fleet.Logs();
  // Every record before b3's: b2's (buffered) and b1's (applied) go.
  absl::StatusOr<std::vector<KafkaRecord>> records = ConsumeFromKafka(
      options_.bootstrap, options_.input, 3, absl::Seconds(30), false);
  ASSERT_TRUE(records.ok()) << records.status();
  std::map<int32_t, int64_t> before;
  for (const KafkaRecord& r : *records) {
    if (absl::StrContains(r.value, "\"b3\"")) before[r.partition] = r.offset;
  }
  ASSERT_EQ(before.size(), 1u);
  const absl::Status deleted =
      DeleteKafkaRecordsBefore(options_.bootstrap, options_.input, before);
  ASSERT_TRUE(deleted.ok()) << deleted;

  a = fleet.Start("a");
  ASSERT_TRUE(Ready(a)) << a->process->Stderr();
  // Said at once, with no record produced since.
  EXPECT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(
            a->process->Stderr(),
            "1 buffered event(s) of the checkpoint could not be read again");
      },
      absl::Seconds(10)))
      << a->process->Stderr();
  EXPECT_TRUE(
      absl::StrContains(a->process->Stderr(), "the other 1 are read again"))
      << a->process->Stderr();
}

// Records that retention deleted before the engine read them (it was
// down): lost, and said and counted when the partition resumes from its
// checkpoint; librdkafka's offset reset had said so in a log line of its
// own only (an audit), and with auto.offset.reset=latest skipped the
// retained records as well. Said once: the partition stays idle, and the
// next restart finds its position past them (review: it stayed before
// them, and every restore counted them again).
TEST_F(RestartTest, RecordsDeletedBeforeTheyWereReadAreCountedAsLostOnce) {
  options_.input_key = "visitor_id";
  Fleet fleet(options_);
  Lifetime* a = fleet.Start("a");
  ASSERT_TRUE(Ready(a)) << a->process->Stderr();
  Produce({{"v1", Event("v1", "d1", "10:00:00", "PAGE_VIEW", "/")}});
  ASSERT_TRUE(Committed(fleet, a, 1)) << fleet.Logs();
  ASSERT_EQ(fleet.Stop(a), 0) << fleet.Logs();
  // Written while it is down, and deleted before it is back.
  Produce({{"v1", Event("v1", "d2", "10:01:00", "PAGE_VIEW", "/a")},
           {"v1", Event("v1", "d3", "10:02:00", "PAGE_VIEW", "/b")}});
  absl::StatusOr<std::vector<KafkaRecord>> records = ConsumeFromKafka(
      options_.bootstrap, options_.input, 3, absl::Seconds(30), false);
  ASSERT_TRUE(records.ok()) << records.status();
  std::map<int32_t, int64_t> end;
  int64_t d1 = -1;
  for (const KafkaRecord& r : *records) {
    if (absl::StrContains(r.value, "\"d3\"")) end[r.partition] = r.offset + 1;
    if (absl::StrContains(r.value, "\"d1\"")) d1 = r.offset;
  }
  ASSERT_EQ(end.size(), 1u);
  // From the position after d1 (markers included, if any).
  const int64_t deleted = end.begin()->second - (d1 + 1);
  ASSERT_GE(deleted, 2);
  ASSERT_TRUE(
      DeleteKafkaRecordsBefore(options_.bootstrap, options_.input, end).ok());

  const std::string said = absl::StrCat(
      "were deleted from the topic (retention) before they were "
      "read: ",
      deleted, " input record(s) lost");
  a = fleet.Start("a");
  ASSERT_TRUE(Ready(a)) << a->process->Stderr();
  EXPECT_TRUE(
      WaitFor([&] { return DeletedTotal(a) == deleted; }, absl::Seconds(30)))
      << a->process->Stderr();
  EXPECT_TRUE(absl::StrContains(a->process->Stderr(), said))
      << a->process->Stderr();
  ASSERT_EQ(fleet.Stop(a), 0) << fleet.Logs();

  // Nothing written since: the next start resumes past them, silent.
  ExpectNoDeletedRecordsAtTheNextStart(fleet);
}

// Retention ran past a running instance that lagged behind (here: one
// frozen by SIGSTOP while records are written and deleted). librdkafka's
// offset reset moved on to the first retained offset with a warning of its
// own only (review: not counted); the engine says and counts them too,
// once, and commits the position past them: the next start does not count
// them again. Found at the partition's end (nothing retained after them)
// or at the record after them.
TEST_F(RestartTest, RecordsDeletedWhileAnInstanceLaggedAreCountedAsLostOnce) {
  DeleteWhileFrozen(/*record_after=*/false);
}

TEST_F(RestartTest, RecordsDeletedWhileAnInstanceLaggedAreSaidAtTheNextRecord) {
  DeleteWhileFrozen(/*record_after=*/true);
}

#define KPISTREAM_RESTART_BROKER Kafka
#else
#define KPISTREAM_RESTART_BROKER EmbeddedBroker
#endif
INSTANTIATE_TEST_SUITE_P(KPISTREAM_RESTART_BROKER, RestartTest,
                         ::testing::Values(SIGTERM, SIGKILL),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(
                               info.param == SIGTERM ? "Sigterm" : "Sigkill");
                         });

}  // namespace
}  // namespace kpistream::testing
