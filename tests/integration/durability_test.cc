// State that survives crashes, restarts and rebalances, exactly once (issue
// 8, SPEC §5 and §10), on a real Apache Kafka cluster (3 KRaft brokers, the
// shared CTest fixture): instances of one group are SIGKILLed, SIGTERMed,
// restarted, joined and removed mid-stream while loadgen produces traffic
// with disorder; afterwards a read_committed consumer of the sessions topic
// holds exactly the sessions a batch computation over all produced events
// gives (none missing, none twice, none split), and the KPI counters of the
// fleet (each process's last scrape, summed) equal the batch totals.
#include <signal.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kafka/consumer.h"
#include "kafka/group.h"
#include "kafka/producer.h"
#include "kafka/topic_reader.h"
#include "librdkafka/rdkafka.h"
#include "tests/integration/fleet.h"
#include "tests/integration/kafka_cluster.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

constexpr int kPartitions = 6;

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

  FleetOptions Options() const {
    FleetOptions o;
    o.bootstrap = bootstrap_;
    o.group = group_;
    o.input = input_;
    o.sessions = sessions_;
    return o;
  }

  // loadgen traffic with disorder (within max_out_of_orderness), repeats and
  // bots, event time 100x the wall clock; in the background.
  std::unique_ptr<Subprocess> Loadgen(int events, const std::string& key) {
    return StartLoadgen(bootstrap_, input_, events, key);
  }

  void EndOfInput() {
    ::kpistream::testing::EndOfInput(bootstrap_, input_, kPartitions);
  }

  // loadgen: `events` JSON events, event time 20 per second from
  // 2026-01-01, as fast as it can; the records it produced.
  double Produce(int events, int seed) {
    CommandResult r = RunCommand(
        {KpistreamBinary(), "loadgen", "--brokers", bootstrap_, "--topic",
         input_, "--format", "json", "--rate", "0", "--events",
         absl::StrCat(events), "--event-rate", "20", "--seed",
         absl::StrCat(seed), "--start-time", "2026-01-01T00:00:00Z"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return RecordsProduced(r.out + r.err);
  }

  // Instance "a" of `fleet` reads `events` events of Produce() (seed 1),
  // counts every record, and stops (SIGTERM).
  void ReadThenStop(Fleet& fleet, int events) {
    Lifetime* a = fleet.Start("a");
    const double records = Produce(events, 1);
    ASSERT_GT(records, 0);
    ASSERT_TRUE(
        WaitFor([&] { return Consumed(a) == records; }, absl::Seconds(60)))
        << Consumed(a) << " of " << records << fleet.Logs();
    ASSERT_EQ(fleet.Stop(a), 0) << fleet.Logs();
  }

  // The group's offsets of the input set to 0 by hand (kafka-consumer-groups
  // --reset-offsets --to-earliest), once the stopped static member's session
  // (6 s here) no longer refuses it.
  void ResetOffsetsToTheStart() {
    absl::Status reset;
    ASSERT_TRUE(WaitFor(
        [&] {
          reset = ResetKafkaGroupOffsets(bootstrap_, group_, input_,
                                         kPartitions, 0);
          return reset.ok();
        },
        absl::Seconds(30)))
        << reset;
  }

  // Waits up to 60 s until `life` logged `text`.
  static void ExpectLogged(Lifetime* life, const std::string& text) {
    EXPECT_TRUE(WaitFor(
        [&] { return absl::StrContains(life->process->Stderr(), text); },
        absl::Seconds(60)))
        << text << " not in:\n"
        << life->process->Stderr();
  }

  // kpistream_events_consumed_total of `life` (-1: no page).
  static double Consumed(Lifetime* life) {
    auto page = HttpGet(life->port, "/metrics");
    return page.ok() ? MetricValue(*page, "kpistream_events_consumed_total")
                     : -1;
  }

  // Waits until `life` logged that it replaced its fenced Kafka client
  // (`client` begins the log line's subject).
  static void ExpectReplaced(Fleet& fleet, Lifetime* life,
                             const std::string& client) {
    EXPECT_TRUE(WaitFor(
        [&] {
          const std::string log = life->process->Stderr();
          return absl::StrContains(log, client) &&
                 absl::StrContains(log, "cannot go on") &&
                 absl::StrContains(log, "replacing it");
        },
        absl::Seconds(30)))
        << fleet.Logs();
  }

  // `life` lived on; the input ends; the result is the batch's.
  void FinishExactly(Fleet& fleet, Lifetime* life, Subprocess& loadgen) {
    EXPECT_TRUE(life->process->Running()) << fleet.Logs();
    EXPECT_EQ(loadgen.Stop(0, absl::Seconds(120)), 0) << loadgen.Stderr();
    EndOfInput();
    ExpectExactlyTheLoadgenBatch(fleet);
  }

  std::string bootstrap_, group_, input_, sessions_;
};

// Two instances; one SIGKILLed mid-stream and restarted, the other
// SIGTERMed and restarted. The config has the default key: any, so the hop
// through the repartition topic is inside the crash too; the input is keyed
// by visitor_id, or has null keys (one visitor's events in every
// partition): the same exact sessions either way.
class CrashTest : public DurabilityTest,
                  public ::testing::WithParamInterface<std::string> {};

TEST_P(CrashTest, CrashAndRestartsAreExactlyOnce) {
  Fleet fleet(Options());
  ExpectCrashAndRestartsExactlyOnce(fleet, GetParam(), kPartitions);
}

INSTANTIATE_TEST_SUITE_P(Keys, CrashTest, ::testing::Values("visitor", "none"),
                         LoadgenKeyName);

// The same with sessions.session_source: client and loadgen's client session
// ids: the sessions' ids are checkpointed with them, and the restored
// instances split exactly where the batch does.
TEST_F(DurabilityTest, ClientSessionsCrashAndRestartsAreExactlyOnce) {
  FleetOptions options = Options();
  options.client_sessions = true;
  Fleet fleet(options);
  ExpectCrashAndRestartsExactlyOnce(fleet, "visitor", kPartitions);
}

// processing.threads changed between lifetimes, as an operator scaling an
// instance up or down does: a, with two threads, is SIGKILLed (one thread's
// transaction is likely open: the kill follows the other's commit) and comes
// back with one, so the second thread's transactional id is never
// initialised again and its open transaction must end by the brokers'
// timeout; b goes from one thread to three. Re-keyed input, so the hop is
// inside it too. The result is still exactly the batch's.
TEST_F(DurabilityTest, AThreadCountChangedBetweenLifetimesChangesNothing) {
  Fleet fleet(Options());
  Lifetime* a = fleet.Start("a", 2);
  Lifetime* b = fleet.Start("b", 1);
  auto loadgen = Loadgen(30000, "visitor");
  // a is killed once it holds open sessions, b stopped once it has read
  // records (fixed waits often came before either had any).
  EXPECT_EQ(fleet.WaitForSessions({a}), a);
  fleet.Kill(a);
  a = fleet.Start("a", 1);
  EXPECT_TRUE(fleet.WaitForRecords(b)) << fleet.Logs();
  EXPECT_EQ(fleet.Stop(b), 0) << fleet.Logs();
  b = fleet.Start("b", 3);
  FinishExactly(fleet, a, *loadgen);
  EXPECT_GT(fleet.RestoredState(), 0) << fleet.Logs();
}

// A third instance joins mid-stream and leaves (SIGTERM, for good). The
// input is keyed by visitor_id and declared so: no hop.
TEST_F(DurabilityTest, AnInstanceJoiningAndLeavingChangesNothing) {
  FleetOptions options = Options();
  options.input_key = "visitor_id";
  Fleet fleet(options);
  fleet.Start("a");
  fleet.Start("b");
  auto loadgen = Loadgen(30000, "visitor");
  absl::SleepFor(absl::Seconds(2));
  Lifetime* c = fleet.Start("c");
  // c leaves once it holds open sessions, which a and b then restore.
  EXPECT_EQ(fleet.WaitForSessions({c}), c);
  EXPECT_EQ(fleet.Stop(c), 0) << fleet.Logs();
  EXPECT_EQ(loadgen->Stop(0, absl::Seconds(120)), 0) << loadgen->Stderr();
  EndOfInput();
  ExpectExactlyTheLoadgenBatch(fleet);
  EXPECT_GT(fleet.RestoredState(), 0) << fleet.Logs();
}

// A static member killed between the two rounds of a cooperative rebalance
// and restarted within the session timeout takes back the first round's
// assignment, and no second round follows: the partitions it was giving up
// are nobody's (README, "Partitions no member owns"). The member here is
// static_member, which kills itself inside its revocation when instance a
// joins. a's group watch must make the group rebalance, so that every
// partition is owned again while that member is still in the group (its
// leaving would make the group rebalance anyway); then it leaves and the
// result is the batch's.
TEST_F(DurabilityTest, PartitionsACrashMidRebalanceLeftToNoMemberAreAssigned) {
  FleetOptions options = Options();
  options.input_key = "visitor_id";
  Fleet fleet(options);
  auto member = [&](bool die_on_revoke) {
    std::vector<std::string> argv = {KPISTREAM_STATIC_MEMBER, bootstrap_,
                                     group_, "h", input_};
    if (die_on_revoke) argv.push_back("--die-on-revoke");
    return std::make_unique<Subprocess>(argv);
  };
  auto first = member(true);
  auto line = first->ReadLine(absl::Seconds(60));
  ASSERT_TRUE(line.ok()) << line.status() << first->Stderr();
  ASSERT_EQ(*line, absl::StrCat("assigned ", kPartitions));
  Lifetime* a = fleet.Start("a");
  line = first->ReadLine(absl::Seconds(60));
  ASSERT_TRUE(line.ok()) << line.status() << first->Stderr() << fleet.Logs();
  ASSERT_TRUE(absl::StartsWith(*line, "dying")) << *line;
  EXPECT_EQ(first->Stop(SIGTERM, absl::Seconds(10)), 128 + SIGKILL);
  auto second = member(false);  // the same group.instance.id, at once
  line = second->ReadLine(absl::Seconds(60));
  ASSERT_TRUE(line.ok()) << line.status() << second->Stderr();
  int kept = 0;  // the first round's share
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripPrefix(*line, "assigned "), &kept))
      << *line;
  ASSERT_GT(kept, 0);
  ASSERT_LT(kept, kPartitions);
  auto loadgen = Loadgen(30000, "visitor");

  auto admin =
      kafka::GroupAdmin::Create(bootstrap_, {}, "durability-test", group_);
  ASSERT_TRUE(admin.ok()) << admin.status();
  std::string seen;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto group = (*admin)->Describe(absl::Seconds(10));
        if (!group.ok()) {
          seen = group.status().ToString();
          return false;
        }
        std::set<int32_t> owned;
        bool h = false;
        for (const kafka::GroupMember& m : group->members) {
          h = h || m.client_id == "static_member";
          for (const TopicPartition& tp : m.assignment) {
            if (tp.topic == input_) owned.insert(tp.partition);
          }
        }
        seen = absl::StrCat(group->state, ", ", owned.size(), " of ",
                            kPartitions, " owned, h ", h ? "a member" : "gone");
        return group->stable() && h &&
               owned.size() == static_cast<size_t>(kPartitions);
      },
      absl::Seconds(120)))
      << seen << "\n"
      << fleet.Logs();
  EXPECT_TRUE(absl::StrContains(a->process->Stderr(), "owned by no member for"))
      << fleet.Logs();
  EXPECT_EQ(second->Stop(SIGTERM, absl::Seconds(30)), 0) << second->Stderr();
  FinishExactly(fleet, a, *loadgen);
}

// A static member fenced by the coordinator (here a foreign consumer that
// joins with the instance's group.instance.id, as librdkafka 2.0 itself does
// when it rejoins after a session timeout in a broker outage): the engine
// replaces its consumer, the new one takes the id back, and the result is
// still exact.
TEST_F(DurabilityTest, AFencedConsumerIsReplaced) {
  Fleet fleet(Options());
  Lifetime* a = fleet.Start("a");
  auto loadgen = Loadgen(20000, "visitor");
  // The intruder comes once a reads records: a member of the group with its
  // producer's transactional.id initialised (an intruder first would be
  // fenced by a instead).
  ASSERT_TRUE(fleet.WaitForRecords(a)) << fleet.Logs();
  {
    // Same group, same static id as instance a's stream thread 0, the same
    // assignor; it only joins (and is fenced in turn).
    Subprocess intruder(
        {"kcat", "-b", bootstrap_, "-G", group_, "-q", "-o", "end", "-X",
         absl::StrCat("group.instance.id=", "a-0"), "-X",
         "partition.assignment.strategy=cooperative-sticky", "-X",
         "session.timeout.ms=6000", "-X", "enable.auto.commit=false", input_});
    ExpectReplaced(fleet, a, "the consumer of group");
  }  // the intruder is killed
  FinishExactly(fleet, a, *loadgen);
}

// The instance's producer fenced (here by a foreign producer initialising
// its transactional.id, as the broker's abort of a transaction that timed
// out in an outage fences it too): the engine replaces its producer, which
// fences the intruder in turn, restores and re-reads the partitions, and the
// result is still exact.
TEST_F(DurabilityTest, AFencedProducerIsReplaced) {
  const std::string scratch = group_ + "-scratch";
  ASSERT_TRUE(CreateKafkaTopic(bootstrap_, scratch, 1, 3).ok());
  Fleet fleet(Options());
  Lifetime* a = fleet.Start("a");
  auto loadgen = Loadgen(20000, "visitor");
  // The intruder comes once a reads records: a member of the group with its
  // producer's transactional.id initialised (an intruder first would be
  // fenced by a instead).
  ASSERT_TRUE(fleet.WaitForRecords(a)) << fleet.Logs();
  {
    // The engine's transactional.id: <group_id>-<instance_id>-<thread>.
    Subprocess intruder({KPISTREAM_OPEN_TRANSACTION_PRODUCER, bootstrap_,
                         scratch, absl::StrCat(group_, "-a-0"), "1", "10000"});
    auto line = intruder.ReadLine(absl::Seconds(60));
    EXPECT_TRUE(line.ok() && *line == "open") << intruder.Stderr();
    ExpectReplaced(fleet, a, "the producer (transactional.id");
  }  // the intruder is killed
  FinishExactly(fleet, a, *loadgen);
}

// An instance frozen (SIGSTOP: as a long stop-the-world pause or a stalled
// VM stops it) past its group session, then woken: the other instance takes
// its partitions and restores them from the changelog meanwhile, and the
// woken one must not commit the work it held (its offsets are refused for
// its old generation, or the broker has timed its transaction out and fenced
// its producer). Frozen for 8 s (past session.timeout.ms, 6 s here, within
// transaction.timeout.ms, 10 s: its transaction is still open when it
// wakes) or 16 s (past both). The result is the batch's, exactly.
class FrozenTest : public DurabilityTest,
                   public ::testing::WithParamInterface<int> {};

TEST_P(FrozenTest, AFrozenInstanceThatWakesCommitsNothingTwice) {
  Fleet fleet(Options());
  Lifetime* a = fleet.Start("a");
  fleet.Start("b");
  auto loadgen = Loadgen(30000, "visitor");
  // Frozen once it holds open sessions, so that it has partitions to lose (a
  // fixed 3 s wait in a loaded CI run could freeze it before the group had
  // given it any: it would lose none, and fail the log assertion below).
  ASSERT_EQ(fleet.WaitForSessions({a}), a);
  ASSERT_EQ(kill(a->process->pid(), SIGSTOP), 0);
  absl::SleepFor(absl::Seconds(GetParam()));
  ASSERT_EQ(kill(a->process->pid(), SIGCONT), 0);
  FinishExactly(fleet, a, *loadgen);
  // It was frozen long enough to lose its partitions: reported lost, or
  // revoked after its fenced producer's transaction was aborted (seen once
  // in 16 s: the exact result the same), or revoked after the group refused
  // its commit's input offsets, having moved on without it (seen in full
  // suite runs, the exact result the same: "Unknown member" at 8 s, "Static
  // consumer fenced" at 16 s after its producer's transaction timed out), or
  // revoked after its transaction was aborted because its producer, woken
  // with records timed out, could not go on and was replaced (seen at 16 s in
  // a full suite run beside an audit's load, the exact result the same).
  const std::string log = a->process->Stderr();
  // `then` logged after `first` (a revocation after the cause, not the one
  // of b's joining at the start).
  auto after = [&](const char* first, const char* then) {
    const size_t at = log.find(first);
    return at != std::string::npos && log.find(then, at) != std::string::npos;
  };
  const bool lost =
      absl::StrContains(log, "lost without a commit (the group moved on)");
  const bool fenced =
      absl::StrContains(log, "fenced by a newer instance") &&
      absl::StrContains(log, "the revoked partitions' new owner re-reads");
  const bool refused = after("cannot add the input offsets to the transaction",
                             "engine: revoked ");
  const bool aborted = after("the transaction was aborted", "engine: revoked ");
  EXPECT_TRUE(lost || fenced || refused || aborted) << fleet.Logs();
}

INSTANTIATE_TEST_SUITE_P(Seconds, FrozenTest, ::testing::Values(8, 16));

// The sessions topic does not exist yet when the engine starts. Its
// producers ask the brokers where every output topic's partitions are before
// the first record: the engine names the missing one in a warning and on
// /readyz, and reads nothing until it exists (a record for it would wait in
// the producer's queue and hold the transaction until the broker timed it
// out and fenced the producer: measured, four fencings in a minute, then the
// engine stopped, while /readyz said ready). Once the topic is created,
// every session reaches it exactly once (SPEC §10: an output that cannot be
// written pauses; nothing is dropped).
TEST_F(DurabilityTest, AnOutputTopicCreatedLateIsNamedThenWrittenExactly) {
  FleetOptions options = Options();
  options.sessions = group_ + "-sessions-late";
  options.input_key = "visitor_id";
  options.watch_readiness = true;
  Fleet fleet(options);
  Lifetime* a = fleet.Start("a");
  const std::string warning = "cannot learn where the partitions of ";
  EXPECT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(
            a->process->Stderr(),
            absl::StrCat(warning, "outputs.sessions.topic are: topic \"",
                         options.sessions, "\""));
      },
      absl::Seconds(60)))
      << fleet.Logs();
  // The topics that exist are learned without a word.
  EXPECT_FALSE(absl::StrContains(a->process->Stderr(),
                                 absl::StrCat(warning, "outputs.deadletter")))
      << fleet.Logs();
  EXPECT_FALSE(absl::StrContains(a->process->Stderr(),
                                 absl::StrCat(warning, "outputs.changelog")))
      << fleet.Logs();
  auto loadgen = Loadgen(20000, "visitor");
  absl::SleepFor(absl::Seconds(3));
  // Not ready, with the topic as the reason, and nothing read. Asked here:
  // the fleet records code changes only, so its record keeps the reason of
  // the first 503, which may be the start's "joining the consumer group"
  // (once in a clean-clone CI run).
  const std::vector<Lifetime::Readiness> paused = fleet.Readiness(a);
  ASSERT_FALSE(paused.empty()) << fleet.Logs();
  EXPECT_EQ(paused.back().code, 503) << fleet.Logs();
  auto now = HttpGetResponse(a->port, "/readyz");
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->code, 503) << now->body;
  EXPECT_TRUE(absl::StrContains(
      now->body,
      absl::StrCat("outputs.sessions.topic: topic \"", options.sessions, "\"")))
      << now->body;
  EXPECT_EQ(fleet.Total("kpistream_events_consumed_total"), 0) << fleet.Logs();
  ASSERT_TRUE(CreateKafkaTopic(bootstrap_, options.sessions, 3, 3).ok());
  FinishExactly(fleet, a, *loadgen);
  EXPECT_TRUE(absl::StrContains(a->process->Stderr(),
                                "every output topic can be written: reading "
                                "resumes"))
      << fleet.Logs();
}

// The sessions topic is deleted while the engine runs, before the first
// session closes, and created again a while later: the engine, whose
// producer knew the topic, pauses its reading with the topic as /readyz's
// reason (it stopped within a second: "cannot produce to topic ...: Local:
// Unknown topic", exit 1), redoes the work once the topic is back, and every
// session reaches it exactly once.
TEST_F(DurabilityTest, AnOutputTopicDeletedMidStreamPausesThenWritesExactly) {
  FleetOptions options = Options();
  options.input_key = "visitor_id";
  options.watch_readiness = true;
  Fleet fleet(options);
  Lifetime* a = fleet.Start("a");
  auto loadgen = Loadgen(20000, "visitor");
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(DeleteKafkaTopic(bootstrap_, options.sessions).ok());
  // Sessions close once event time moves on past the traffic.
  EXPECT_EQ(loadgen->Stop(0, absl::Seconds(120)), 0) << loadgen->Stderr();
  EndOfInput();
  const std::string topic = absl::StrCat("\"", options.sessions, "\"");
  std::string said;  // /readyz, asked itself (the fleet keeps code changes)
  EXPECT_TRUE(WaitFor(
      [&] {
        auto r = HttpGetResponse(a->port, "/readyz");
        if (!r.ok()) return false;
        said = r->body;
        return r->code == 503 && absl::StrContains(said, "reading is paused") &&
               absl::StrContains(said, "outputs.sessions.topic") &&
               absl::StrContains(said, topic);
      },
      absl::Seconds(90)))
      << said << fleet.Logs();
  EXPECT_TRUE(a->process->Running()) << fleet.Logs();
  // Topic deletion completes in the background: created again once it can.
  absl::Status created;
  EXPECT_TRUE(WaitFor(
      [&] {
        created = CreateKafkaTopic(bootstrap_, options.sessions, 3, 3);
        return created.ok();
      },
      absl::Seconds(30)))
      << created;
  ExpectExactlyTheLoadgenBatch(fleet);
  EXPECT_TRUE(a->process->Running()) << fleet.Logs();
}

// The input topic deleted and created again while the engine is stopped
// (its offsets start at 0 again, and end before the checkpoint's positions):
// the restart reads the new topic from its start and counts each of its
// records once. Before, it sought to the buffered events' old offsets and
// took the new records up to the old position for theirs: skipped, counted
// nowhere (by hand on Kafka 4.4, the first 36,969 records of a re-created
// four-partition topic).
TEST_F(DurabilityTest, AnInputTopicCreatedAgainIsReadFromItsStart) {
  FleetOptions options = Options();
  options.input_key = "visitor_id";
  Fleet fleet(options);
  ASSERT_NO_FATAL_FAILURE(ReadThenStop(fleet, 6000));
  ASSERT_TRUE(DeleteKafkaTopic(bootstrap_, input_).ok());
  absl::Status created;
  ASSERT_TRUE(WaitFor(
      [&] {
        created = CreateKafkaTopic(bootstrap_, input_, kPartitions, 3);
        return created.ok();
      },
      absl::Seconds(30)))
      << created;
  const double second = Produce(1500, 2);  // ends before the old positions
  ASSERT_GT(second, 0);
  Lifetime* a = fleet.Start("a");
  EXPECT_TRUE(WaitFor([&] { return Consumed(a) == second; }, absl::Seconds(60)))
      << Consumed(a) << " of " << second << fleet.Logs();
  EXPECT_TRUE(absl::StrContains(a->process->Stderr(),
                                "before the checkpoint's position"))
      << a->process->Stderr();
}

// An operator resets the group's offsets while the engine is stopped
// (kafka-consumer-groups --reset-offsets --to-earliest, to read the input
// again): the restart resumes at its checkpoints' positions, which its state
// is of, reads nothing twice, and says why the reset moved nothing.
TEST_F(DurabilityTest, AGroupOffsetResetIsSaidToMoveNothing) {
  FleetOptions options = Options();
  options.input_key = "visitor_id";
  Fleet fleet(options);
  ASSERT_NO_FATAL_FAILURE(ReadThenStop(fleet, 2000));
  ASSERT_NO_FATAL_FAILURE(ResetOffsetsToTheStart());
  Lifetime* a = fleet.Start("a");
  ExpectLogged(a, "the group's committed offsets differ");
  EXPECT_TRUE(absl::StrContains(a->process->Stderr(), "new kafka.group_id"));
  absl::SleepFor(absl::Seconds(3));  // it would have read them by now
  EXPECT_EQ(Consumed(a), 0) << a->process->Stderr();
}

// The changelog topic deleted (and created again) while the engine is
// stopped, its state directory kept: the engine's offsets say that
// the partitions had state, the changelog holds none. The restart does not
// go on from nothing (an audit: it did, ready, its open sessions and
// buffered events lost, returning visitors new): the restore fails, names
// the partition and what to do, and reads nothing. Once an operator resets
// the group's offsets (by hand: no state), it reads from there.
TEST_F(DurabilityTest,
       AChangelogDeletedWhileStoppedIsAnErrorUntilOffsetsAreSet) {
  FleetOptions options = Options();
  options.input_key = "visitor_id";
  Fleet fleet(options);
  ASSERT_NO_FATAL_FAILURE(ReadThenStop(fleet, 2000));
  const std::string changelog = group_ + "-changelog";
  ASSERT_TRUE(DeleteKafkaTopic(bootstrap_, changelog).ok());
  absl::Status created;
  ASSERT_TRUE(WaitFor(
      [&] {
        created = CreateKafkaTopic(bootstrap_, changelog, kPartitions, 3,
                                   {{"cleanup.policy", "compact"}});
        return created.ok();
      },
      absl::Seconds(30)))
      << created;
  Lifetime* a = fleet.Start("a");
  ExpectLogged(a, "that state is lost (the changelog topic was deleted");
  EXPECT_TRUE(absl::StrContains(a->process->Stderr(), "--reset-offsets"));
  auto ready = HttpGetResponse(a->port, "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->code, 503);
  EXPECT_TRUE(absl::StrContains(ready->body, "state is lost")) << ready->body;
  EXPECT_EQ(Consumed(a), 0) << a->process->Stderr();
  ASSERT_EQ(fleet.Stop(a), 0) << fleet.Logs();

  // Read again from the start, on purpose.
  ASSERT_NO_FATAL_FAILURE(ResetOffsetsToTheStart());
  Lifetime* b = fleet.Start("a");
  EXPECT_TRUE(WaitFor([&] { return Consumed(b) > 0; }, absl::Seconds(60)))
      << b->process->Stderr();
  EXPECT_TRUE(WaitFor([&] { return HttpGet(b->port, "/readyz").ok(); },
                      absl::Seconds(30)))
      << b->process->Stderr();
}

// The sessions topic refuses every record (its max.message.bytes is below
// a session record's size, as a broker's limit or record validation would
// refuse them) until an operator fixes it. The engine does not stop (SPEC
// §10): each transaction holding a session is aborted, and its input read
// again, until the topic takes them; then every session reaches it exactly
// once.
TEST_F(DurabilityTest, AnOutputTopicThatRefusesRecordsPausesThenWritesExactly) {
  FleetOptions options = Options();
  options.sessions = group_ + "-sessions-refusing";
  ASSERT_TRUE(CreateKafkaTopic(bootstrap_, options.sessions, 3, 3,
                               {{"max.message.bytes", "100"}})
                  .ok());
  Fleet fleet(options);
  Lifetime* a = fleet.Start("a");
  auto loadgen = Loadgen(20000, "visitor");
  // Sessions close once event time moves on past the traffic.
  EXPECT_EQ(loadgen->Stop(0, absl::Seconds(120)), 0) << loadgen->Stderr();
  EndOfInput();
  // A transaction aborted for a record of the sessions topic, said on one
  // line.
  EXPECT_TRUE(WaitFor(
      [&] {
        for (absl::string_view line :
             absl::StrSplit(a->process->Stderr(), '\n')) {
          if (absl::StrContains(line, options.sessions) &&
              absl::StrContains(line, "the transaction was aborted")) {
            return true;
          }
        }
        return false;
      },
      absl::Seconds(120)))
      << fleet.Logs();
  // A while of aborted transactions, then the topic is fixed.
  absl::SleepFor(absl::Seconds(5));
  EXPECT_TRUE(a->process->Running()) << fleet.Logs();
  ASSERT_TRUE(AlterKafkaTopicConfig(bootstrap_, options.sessions,
                                    {{"max.message.bytes", "1048588"}})
                  .ok());
  ExpectExactlyTheLoadgenBatch(fleet);
  EXPECT_TRUE(a->process->Running()) << fleet.Logs();
  EXPECT_GT(fleet.Total("kpistream_commit_aborts_total"), 0);
}

}  // namespace
}  // namespace kpistream::testing

namespace kpistream::testing {
namespace {

// An input topic that does not exist stops the start with an error naming
// it, whatever the input's key or kind (review: a keyed or ad-cost input's
// was subscribed to all the same, never read, and the engine said ready).
// On Apache Kafka, which does not create it on a look (the embedded broker
// creates every topic asked for).
TEST(MissingInputTest, AMissingInputTopicIsNamedAndStopsTheStart) {
  auto bootstrap = SharedKafka();
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  const std::string present = UniqueKafkaName("present");
  ASSERT_TRUE(CreateKafkaTopic(*bootstrap, present, 1, 1).ok());
  const std::string missing = UniqueKafkaName("missing");
  TempDir dir;
  for (const std::string kind :
       {"key: visitor_id", "key: any", "kind: ad_cost"}) {
    const std::string config = dir.Write(
        "c.yaml",
        absl::StrCat("kafka: {brokers: '", *bootstrap,
                     "', group_id: ", UniqueKafkaName("missing-group"),
                     "}\ninputs: [{topic: ", present,
                     ", key: visitor_id}, {topic: ", missing, ", ", kind,
                     "}]\nprocessing: {state_dir: '", dir.path(),
                     "/state'}\nmetrics: {listen: '127.0.0.1:", FreePort(),
                     "'}\n"));
    CommandResult r =
        RunCommand({KpistreamBinary(), "run", "--config", config});
    EXPECT_EQ(r.exit_code, 1) << kind << "\n" << r.err;
    EXPECT_TRUE(absl::StrContains(
        r.err, absl::StrCat("inputs: topic \"", missing, "\"")))
        << kind << "\n"
        << r.err;
  }
}

// loadgen on a cluster that does not create topics on request, to a topic
// that does not exist: an error naming it, at once. It said "producing all
// the same", counted 50,000 events as produced in its progress lines, and
// failed 30 s later, every record dropped.
TEST(MissingInputTest, LoadgenToAMissingTopicSaysSoAtOnce) {
  auto bootstrap = SharedKafka();
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  const std::string missing = UniqueKafkaName("loadgen-missing");
  CommandResult r =
      RunCommand({KpistreamBinary(), "loadgen", "--brokers", *bootstrap,
                  "--topic", missing, "--events", "100"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("topic \"", missing, "\"")))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "no record can be written to it"))
      << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "events produced")) << r.err;
}

// A group whose repartition topic holds records re-keyed an input before:
// the open sessions and buffered events of those records live in the state
// of that topic's partitions. A config without a key: any input (as the
// engine's own hint suggests for input keyed by visitor_id) would never read
// them: the start is refused (exit 2), naming the topic and the ways out.
// Before, the restart restored none of them, without a word.
TEST(MissingInputTest, AConfigLeavingReKeyedStateBehindStopsTheStart) {
  auto bootstrap = SharedKafka();
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  const std::string input = UniqueKafkaName("rekeyed-input");
  ASSERT_TRUE(CreateKafkaTopic(*bootstrap, input, 2, 1).ok());
  const std::string group = UniqueKafkaName("rekeyed-group");
  const std::string repartition = group + "-repartition";
  ASSERT_TRUE(CreateKafkaTopic(*bootstrap, repartition, 2, 1).ok());
  ASSERT_TRUE(
      ProduceToKafka(*bootstrap, repartition, {"a forwarded event"}, {"v1"})
          .ok());
  TempDir dir;
  const std::string config = dir.Write(
      "c.yaml",
      absl::StrCat("kafka: {brokers: '", *bootstrap, "', group_id: ", group,
                   "}\ninputs: [{topic: ", input,
                   ", key: visitor_id}]\nprocessing: {state_dir: '", dir.path(),
                   "/state'}\nmetrics: {listen: '127.0.0.1:", FreePort(),
                   "'}\n"));
  CommandResult r = RunCommand({KpistreamBinary(), "run", "--config", config});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(
      absl::StrContains(r.err, absl::StrCat("repartition topic \"", repartition,
                                            "\" holds 1 record(s)")))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "Keep inputs[].key: any")) << r.err;
}

// The restore's reader sees every committed transaction of a changelog
// partition, the latest included, right after its commit returned.
TEST(ChangelogReaderTest, SeesEveryCommittedTransactionAtOnce) {
  auto bootstrap = SharedKafka();
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  const std::string topic = UniqueKafkaName("readback");
  ASSERT_TRUE(
      CreateKafkaTopic(*bootstrap, topic, 2, 3, {{"cleanup.policy", "compact"}})
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
    ASSERT_TRUE(
        kafka::ReadTopic(read, [&](const kafka::ReadRecord&) { ++seen; }).ok());
    EXPECT_EQ(seen, 3 * (txn + 1)) << "after transaction " << txn;
  }
}

// A commit with nothing produced since the last one and the offsets of
// the last one writes nothing new and runs no transaction: an idle stream
// thread ran one at every commit interval (BENCHMARKS.md, run BO). Other
// offsets, or records, still commit in a transaction, and the group's
// offsets are those committed last.
TEST(TransactionTest, ACommitWithNothingNewRunsNoTransaction) {
  auto bootstrap = SharedKafka();
  ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
  const std::string topic = UniqueKafkaName("idle-commit");
  ASSERT_TRUE(CreateKafkaTopic(*bootstrap, topic, 1, 3, {}).ok());
  kafka::Consumer::Options consumer_options;
  consumer_options.brokers = *bootstrap;
  consumer_options.group_id = topic + "-group";
  consumer_options.topics = {topic};
  consumer_options.subscribe = false;
  auto consumer = kafka::Consumer::Create(consumer_options, nullptr);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  kafka::Producer::Options options;
  options.brokers = *bootstrap;
  options.transactional_id = topic + "-txn";
  auto producer = kafka::Producer::Create(options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  kafka::Producer& p = **producer;
  // The group's committed offset of the partition (-1: none).
  const auto committed = [&]() -> int64_t {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(), 0);
    const rd_kafka_resp_err_t err =
        rd_kafka_committed((*consumer)->handle(), list, 10000);
    const int64_t offset =
        err == RD_KAFKA_RESP_ERR_NO_ERROR ? list->elems[0].offset : -2;
    rd_kafka_topic_partition_list_destroy(list);
    return offset;
  };
  const kafka::Offsets at3 = {{{topic, 0}, 3}};
  const kafka::Offsets at7 = {{{topic, 0}, 7}};
  ASSERT_TRUE(p.Produce(topic, "k", "v").ok());
  ASSERT_TRUE(p.CommitTransaction(consumer->get(), at3).ok());
  EXPECT_EQ(p.transactions_committed(), 1u);
  EXPECT_EQ(committed(), 3);
  // Nothing produced, the same offsets: nothing to write.
  ASSERT_TRUE(p.CommitTransaction(consumer->get(), at3).ok());
  EXPECT_EQ(p.transactions_committed(), 1u);
  ASSERT_TRUE(p.CommitTransaction(consumer->get(), {}).ok());
  EXPECT_EQ(p.transactions_committed(), 1u);
  // Nothing produced, other offsets: a transaction.
  ASSERT_TRUE(p.CommitTransaction(consumer->get(), at7).ok());
  EXPECT_EQ(p.transactions_committed(), 2u);
  EXPECT_EQ(committed(), 7);
  // A record, the same offsets: a transaction.
  ASSERT_TRUE(p.Produce(topic, "k", "v").ok());
  ASSERT_TRUE(p.CommitTransaction(consumer->get(), at7).ok());
  EXPECT_EQ(p.transactions_committed(), 3u);
  // Older offsets than the last commit's are no repeat of it.
  ASSERT_TRUE(p.CommitTransaction(consumer->get(), at3).ok());
  EXPECT_EQ(p.transactions_committed(), 4u);
  EXPECT_EQ(committed(), 3);
}

}  // namespace
}  // namespace kpistream::testing
