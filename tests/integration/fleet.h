// A fleet of `kpistream run` processes of one consumer group, and the batch
// reference they are held to (issue 8, SPEC §5 and §10): the tests of
// crashes, restarts, rebalances and broker outages (durability_test,
// broker_outage_test, restart_test) start, kill, stop and restart instances
// while loadgen produces, then compare what a read_committed consumer of the
// sessions topic holds, and the fleet's summed counters, with a batch
// computation over every produced event.
//
// Works against any bootstrap address: the shared Kafka fixture, a private
// KafkaCluster, or the embedded broker (`kpistream broker`).
#ifndef KPISTREAM_TESTS_INTEGRATION_FLEET_H_
#define KPISTREAM_TESTS_INTEGRATION_FLEET_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "kpistream/v1/session_record.pb.h"
#include "tests/integration/kafka_cluster.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {

// ---- The batch reference ---------------------------------------------------

struct Batch {
  std::map<std::string, v1::SessionRecord> sessions;  // by session_id
  double records = 0, accepted = 0, bots = 0, duplicates = 0, invalid = 0;
  double pageviews = 0, orders = 0;
};

// Every input record (JSON WebEvents), decoded, bots and repeats out, sorted
// by event time, sessionized in one pass with the default session rules (no
// watermark, no reordering needed), every session closed at the end. With
// `client_sessions`, sessions also split on the events' session_id
// (sessions.session_source: client).
Batch ComputeBatch(const std::vector<KafkaRecord>& input,
                   bool client_sessions = false);

// ---- The fleet -------------------------------------------------------------

// One `kpistream run` process. Its /metrics are scraped in the background
// and the page of its latest commit is kept after it is gone; with
// FleetOptions::watch_readiness its /readyz answers are polled too and
// every change is recorded.
struct Lifetime {
  struct Readiness {
    absl::Time at;
    int code = 0;        // 200, 503; 0: no answer
    std::string reason;  // the body
  };
  std::string instance;
  int port = 0;
  std::unique_ptr<Subprocess> process;
  std::string best_page;  // the scraped page with the most commits
  double best_commits = -1;
  std::vector<Readiness> readiness;  // changes only, oldest first
  std::atomic<bool> gone{false};     // stopped or killed: not scraped
};

struct FleetOptions {
  std::string bootstrap;
  std::string group;
  std::string input;     // JSON WebEvents
  std::string sessions;  // JSON SessionRecords
  // Deadletter: <input>-dead; changelog: <group>-changelog.
  // Merged into kafka.properties (session.timeout.ms 6000 and
  // heartbeat.interval.ms 500 unless given).
  std::map<std::string, std::string> kafka_properties;
  std::string guarantee = "exactly_once";
  bool watch_readiness = false;
  // The input's inputs[].key: "any" (re-keyed through <group>-repartition)
  // or "visitor_id" (processed where the records land).
  std::string input_key = "any";
  // sessions.session_source: client (and StartLoadgen's traffic with
  // --session-ids in ExpectCrashAndRestartsExactlyOnce).
  bool client_sessions = false;
};

class Fleet {
 public:
  explicit Fleet(FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // The YAML config of instance `instance` serving on `port` with
  // `threads` stream threads.
  std::string Config(const std::string& instance, int port,
                     int threads = 1) const;

  // Starts instance `name` (a new lifetime, --log-level debug) with
  // `threads` stream threads and waits until it serves /metrics.
  Lifetime* Start(const std::string& name, int threads = 1);

  // SIGKILL right after a commit, so that the last scrape has all that the
  // process committed (what it did since is redone by its successor); one
  // after which it holds open sessions, if one comes within 30 s, and while
  // none of its threads is committing (their debug log says).
  void Kill(Lifetime* life);

  // SIGTERM: the engine commits its state and waits for a scrape of it
  // (metrics.final_scrape_wait). Returns the exit code.
  int Stop(Lifetime* life);

  // The first of `lives` seen holding open sessions (kpistream_state_sessions
  // > 0) within 60 s; nullptr (and a test failure) if none does.
  Lifetime* WaitForSessions(const std::vector<Lifetime*>& lives);

  // Whether `life` counts consumed records within 60 s.
  bool WaitForRecords(const Lifetime* life);

  // The open sessions and buffered events every lifetime's restores logged,
  // summed: a crash or stop test whose successors restored neither tested
  // no restore of state. (A thread killed right after another thread's
  // commit may have committed its events still buffered, not yet sessions.)
  int RestoredState();

  // Sum of `name` over every lifetime's best page.
  double Total(const std::string& name,
               const std::map<std::string, std::string>& labels = {});

  // A copy of `life`'s readiness changes so far.
  std::vector<Lifetime::Readiness> Readiness(const Lifetime* life);

  // Every lifetime's stderr, the health lines of its last page and its
  // readiness changes.
  std::string Logs();

  const FleetOptions& options() const { return options_; }

 private:
  void ScrapeLoop();
  void Keep(Lifetime* life, const std::string& page);

  FleetOptions options_;
  TempDir dir_;
  std::mutex mu_;       // lifetimes_
  std::mutex keep_mu_;  // best pages, readiness
  std::vector<std::unique_ptr<Lifetime>> lifetimes_;
  std::atomic<bool> stop_{false};
  std::thread scraper_;
};

// ---- Traffic and checks
// ------------------------------------------------------

// loadgen traffic in the background: JSON, keyed by `key`, with disorder
// (20 s, within the fleet's max_out_of_orderness), 2 % repeats and 2 % bots,
// 3000 visitors, event time from 2026-01-01T00:00:00Z running 100 times
// faster than the wall clock (`rate` events per second of wall clock,
// `rate`/100 per second of event time).
// `session_ids`: loadgen --session-ids.
std::unique_ptr<Subprocess> StartLoadgen(const std::string& bootstrap,
                                         const std::string& topic, int events,
                                         const std::string& key,
                                         int rate = 3000, int seed = 8,
                                         bool session_ids = false);

// Ends the bounded input of StartLoadgen: event time moves two days past
// its start on every partition (AdvanceEventTime), so every session closes.
void EndOfInput(const std::string& bootstrap, const std::string& topic,
                int partitions);

// The sessions a read_committed consumer of `topic` holds, by session id;
// `duplicates` counts ids seen more than once.
std::map<std::string, v1::SessionRecord> CommittedSessions(
    const std::string& bootstrap, const std::string& topic, size_t expected,
    int* duplicates);

// Reads the whole input, computes the batch, waits until the fleet has
// committed every session of it, then checks (gtest failures) that the
// sessions topic holds exactly the batch's sessions (none missing, none
// twice, none split, each equal field by field) and that the fleet's summed
// counters equal the batch totals. Returns the batch.
Batch ExpectExactlyTheBatch(Fleet& fleet,
                            absl::Duration wait = absl::Seconds(120));

// ExpectExactlyTheBatch for StartLoadgen's traffic, which also checks that
// the batch holds what loadgen makes: over 500 sessions, bots and repeats.
Batch ExpectExactlyTheLoadgenBatch(Fleet& fleet);

// The crash test (durability_test's CrashTest on Apache Kafka, crash_test on
// the embedded broker): instances a and b start, loadgen produces 30000
// events keyed by `key` ("visitor" or "none"), the instance that holds open
// sessions first is SIGKILLed (right after a commit) and restarted, the
// other SIGTERMed once it has committed work and restarted; then the input
// ends on each of its `partitions` partitions and the result must be exactly
// the batch's (ExpectExactlyTheLoadgenBatch), and the successors' logs must
// show state restored (RestoredState).
void ExpectCrashAndRestartsExactlyOnce(Fleet& fleet, const std::string& key,
                                       int partitions);

// The test name of a StartLoadgen `key` parameter: "Visitor", "Null".
std::string LoadgenKeyName(const ::testing::TestParamInfo<std::string>& info);

}  // namespace kpistream::testing

#endif  // KPISTREAM_TESTS_INTEGRATION_FLEET_H_
