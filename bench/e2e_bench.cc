// e2e_bench: the end-to-end benchmark of issue 9. It drives the real
// binaries on loopback and reports what `kpistream run` achieves next to
// what librdkafka alone can consume from the same topic, in the same run.
//
//   build/bench/e2e_bench --events 1000000 --rounds 3
//   build/bench/e2e_bench --events 1000000 --rounds 3 --kafka   # real Kafka
//
// 1. Starts `kpistream broker` (or, with --kafka, a one-node Apache Kafka
//    cluster from tests/integration/kafka_cluster.h, its JVM started as
//    Kafka's own scripts start a broker unless --kafka-jvm test, its data
//    in /dev/shm unless --kafka-dir says) with one input topic per format
//    (--partitions each, enough for the embedded broker's ~5 MB per
//    partition) and the output topics.
// 2. `kpistream loadgen` fills each input topic with --events events of
//    --visitors visitors (browser user agents, channels, conversions), in
//    event time at --event-rate, delivered out of order by up to
//    --disorder, with 1 % duplicates and 0.5 % late copies (1 h old). The
//    topic's record count (events + duplicates + late copies) is read from
//    the brokers' watermarks; a topic the broker trimmed is an error.
// 3. For each round and format: (a) bench/raw_consumer, a bare librdkafka
//    batch consumer that only counts (new group, read_committed); then (b)
//    `kpistream run` once per --guarantees, with the full KPI set (goals, a
//    funnel, two targets), sessions, KPI windows and dead letters as Kafka
//    outputs, a fresh group_id (so a fresh changelog) and
//    `processing.threads: --threads`, once per --keys (inputs[].key: any
//    re-keys through <group_id>-repartition, so each event is decoded
//    twice and produced once more; visitor_id processes records where
//    loadgen's visitor keys put them), and with --baseline the same again
//    with another kpistream binary right after. /metrics is polled every
//    100 ms until kpistream_events_consumed_total equals the record count.
// 4. Optionally (--latency-seconds > 0) the latency probe: with an engine
//    running on an empty topic, loadgen produces at --latency-rate events
//    per second of wall clock (event time = wall clock); /metrics is polled
//    every 50 ms. Afterwards the topic is read back for every record's
//    producer timestamp (CreateTime, set when loadgen calls produce). The
//    k-th record (by produce time) counts as visible at the first poll
//    that shows kpistream_events_consumed_total >= k; its latency is that
//    poll's answer time minus its CreateTime. Reported: percentiles over
//    the records produced after --latency-warmup.
//
// Per run it reports:
//  * total: wall time from spawning the process until every record is
//    counted (for the engine: visible on /metrics, i.e. committed; up to one
//    commit interval (1 s by default) plus a publish after it was processed;
//    for the raw consumer: from its main() to its last batch).
//  * startup: spawn until the consumer has its partitions (raw: its
//    rebalance callback; engine: the first "restored N partition(s)" log
//    line, i.e. config, changelog topic, group join and restore).
//  * events/s = records / (total - startup); the ratio engine / raw uses
//    these, per round (same round, same topic); min/median/max over rounds.
//  * peak RSS (VmHWM), and CPU seconds (utime + stime) and minor page faults
//    per million records, from /proc/<pid> just before the process is
//    stopped; and the CPU the broker process(es) used over the same span
//    (the embedded broker's, or the Kafka JVM's, JIT and GC included), since
//    on two cores the broker's work for a consumer competes with the
//    consumer for the same CPUs.
//  * for the engine also: the state gauges at the end (kpistream_state_bytes,
//    open sessions, reorder buffer) and a /metrics scrape's time and size.
//
// Diagnostics (see --help): --kafka-property sets the engine's librdkafka
// properties; --perf and --heaptrack profile the engine runs of round 1
// (--heaptrack the baseline's too);
// --logs keeps every engine log.
//
// Benchmarks, not tests: nothing here asserts a target. Exit code 0 when
// every run finished, 1 when one failed (its log tail is printed).
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "export/process_metrics.h"
#include "tests/integration/kafka_cluster.h"
#include "tests/integration/test_support.h"

namespace kpistream::bench {
namespace {

using testing::HttpGet;
using testing::MetricValue;
using testing::Subprocess;
using testing::TempDir;
namespace fs = std::filesystem;

struct Options {
  int64_t events = 1'000'000;
  int rounds = 3;
  // Engine runs before round 1, not measured (a fresh Kafka JVM compiles
  // its transaction and produce paths during the first).
  int warmup = 0;
  int partitions = 128;
  int64_t visitors = 200'000;
  double event_rate = 200;
  std::string disorder = "20s";
  std::vector<std::string> formats = {"json", "protobuf"};
  std::vector<std::string> guarantees = {"exactly_once", "at_least_once"};
  // inputs[].key: any (re-keyed through <group_id>-repartition) and/or
  // visitor_id (loadgen keys every record by its visitor_id).
  std::vector<std::string> keys = {"any", "visitor_id"};
  // processing.commit_interval, min_commit_interval and max_commit_interval
  // of the engine under test (empty: not set).
  std::string commit_interval;
  std::string min_commit_interval;
  std::string max_commit_interval;
  // Another kpistream binary (e.g. a build of main) run right after the
  // engine under test in every round, with the same config (without the
  // three intervals): its baseline in the same run.
  std::string baseline;
  int threads = 2;
  bool kafka = false;
  // The Kafka node's JVM: "production" (Kafka's own settings) or "test"
  // (the test suite's quick-starting one: serial GC, C1 compiler only).
  std::string kafka_jvm = "production";
  // The directory in which the Kafka node's data directory is made (and
  // removed at the end); empty: /dev/shm where there is one, else TMPDIR.
  std::string kafka_dir;
  double latency_rate = 50'000;
  double latency_seconds = 20;
  double latency_warmup = 3;
  std::vector<std::string> latency_formats = {"json", "protobuf"};
  std::vector<std::string> kafka_properties;  // "key=value", engine only
  std::string perf_prefix;       // perf record the engine runs of round 1
  std::string log_level;         // the engines' --log-level; empty: theirs
  std::string heaptrack_prefix;  // heaptrack the engine runs of round 1
  std::string logs;              // keep every engine log here
  double timeout = 900;          // per run
  std::string raw_consumer = KPISTREAM_RAW_CONSUMER;
};

// ---------------------------------------------------------------------------
// Small helpers: /proc, statistics, the machine.

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct ProcStats {
  double cpu_seconds = 0;    // utime + stime
  int64_t hwm_kb = 0;        // VmHWM: peak resident set
  int64_t rss_kb = 0;        // VmRSS: now
  int64_t minor_faults = 0;  // minflt: pages faulted in without a read
};

// CPU and RSS as the engine's own process_* metrics read them, plus the
// peak (VmHWM), which only /proc/<pid>/status has. Zeros once the process
// has exited.
ProcStats ReadProc(pid_t pid) {
  ProcStats stats;
  auto process = ReadProcessStats("/proc", absl::StrCat(pid));
  if (!process.ok()) return stats;
  stats.cpu_seconds = process->cpu_seconds;
  stats.rss_kb = static_cast<int64_t>(process->resident_memory_bytes / 1024);
  for (absl::string_view line :
       absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/status")), '\n')) {
    if (absl::ConsumePrefix(&line, "VmHWM:")) {
      line = absl::StripAsciiWhitespace(line);
      (void)absl::SimpleAtoi(line.substr(0, line.find(' ')), &stats.hwm_kb);
    }
  }
  // /proc/<pid>/stat: minflt is the 10th field, the 8th after the command
  // (in parentheses, and it may hold spaces).
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (const size_t close = stat.rfind(')'); close != std::string::npos) {
    std::vector<absl::string_view> f = absl::StrSplit(
        absl::string_view(stat).substr(close + 1), ' ', absl::SkipEmpty());
    if (f.size() > 7) (void)absl::SimpleAtoi(f[7], &stats.minor_faults);
  }
  return stats;
}

std::string LoadAverage() {
  std::vector<std::string> f = absl::StrSplit(ReadFile("/proc/loadavg"), ' ');
  if (f.size() < 3) return "?";
  return absl::StrCat(f[0], " ", f[1], " ", f[2]);
}

struct Spread {
  double min = 0, median = 0, max = 0;
};

Spread SpreadOf(std::vector<double> values) {
  Spread s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.min = values.front();
  s.max = values.back();
  const size_t n = values.size();
  s.median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return s;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1,
                            static_cast<size_t>(p / 100.0 * sorted.size()));
  return sorted[i];
}

std::string Machine() {
  std::string model = "?";
  for (absl::string_view line :
       absl::StrSplit(ReadFile("/proc/cpuinfo"), '\n')) {
    if (absl::StartsWith(line, "model name")) {
      model = std::string(
          absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
      break;
    }
  }
  int64_t mem_kb = 0;
  for (absl::string_view line :
       absl::StrSplit(ReadFile("/proc/meminfo"), '\n')) {
    if (absl::ConsumePrefix(&line, "MemTotal:")) {
      line = absl::StripAsciiWhitespace(line);
      (void)absl::SimpleAtoi(line.substr(0, line.find(' ')), &mem_kb);
    }
  }
  utsname u{};
  uname(&u);
  return absl::StrFormat("%ld cores (nproc), %s, %.1f GiB RAM, %s %s",
                         sysconf(_SC_NPROCESSORS_ONLN), model,
                         mem_kb / 1048576.0, u.sysname, u.release);
}

std::string Commit() {
  testing::CommandResult head = testing::RunCommand(
      {"git", "-C", testing::SourceDir(), "rev-parse", "--short=12", "HEAD"});
  testing::CommandResult dirty =
      testing::RunCommand({"git", "-C", testing::SourceDir(), "status",
                           "--porcelain", "--untracked-files=no"});
  std::string commit(absl::StripAsciiWhitespace(head.out));
  if (commit.empty()) return "unknown";
  if (!absl::StripAsciiWhitespace(dirty.out).empty()) commit += "+dirty";
  return commit;
}

// Log lines start with an RFC 3339 UTC time, e.g. "2026-11-28T09:07:35.617Z".
std::optional<absl::Time> LogTime(absl::string_view line) {
  absl::Time t;
  std::string error;
  if (absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ",
                      std::string(line.substr(0, line.find(' '))), &t,
                      &error)) {
    return t;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Kafka: record counts and producer timestamps.

rd_kafka_t* NewClient(rd_kafka_type_t type, const std::string& bootstrap,
                      const std::map<std::string, std::string>& settings) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err,
                    sizeof(err));
  for (const auto& [key, value] : settings) {
    rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err));
  }
  return rd_kafka_new(type, conf, err, sizeof(err));
}

struct TopicCount {
  int partitions = 0;
  int64_t records = 0;
  int64_t trimmed = 0;  // records before the low watermarks (dropped)
};

absl::StatusOr<TopicCount> CountRecords(const std::string& bootstrap,
                                        const std::string& topic) {
  rd_kafka_t* rk = NewClient(RD_KAFKA_PRODUCER, bootstrap, {});
  if (rk == nullptr) return absl::InternalError("rd_kafka_new failed");
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 30000);
  TopicCount count;
  absl::Status status;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
      md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::UnavailableError(
        absl::StrCat("metadata of ", topic, ": ",
                     rd_kafka_err2str(err ? err : md->topics[0].err)));
  } else {
    count.partitions = md->topics[0].partition_cnt;
    for (int p = 0; p < count.partitions && status.ok(); ++p) {
      int64_t low = 0, high = 0;
      err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high,
                                             30000);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = absl::UnavailableError(absl::StrCat(
            "watermarks of ", topic, "[", p, "]: ", rd_kafka_err2str(err)));
      }
      count.records += high - low;
      count.trimmed += low;
    }
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  if (!status.ok()) return status;
  return count;
}

// Every record's producer timestamp (ms since the epoch), sorted.
absl::StatusOr<std::vector<int64_t>> ProduceTimes(const std::string& bootstrap,
                                                  const std::string& topic,
                                                  int partitions,
                                                  int64_t records) {
  rd_kafka_t* rk = NewClient(RD_KAFKA_CONSUMER, bootstrap,
                             {{"group.id", "kpistream-bench-timestamps"},
                              {"enable.auto.commit", "false"},
                              {"enable.partition.eof", "false"}});
  if (rk == nullptr) return absl::InternalError("rd_kafka_new failed");
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::vector<int64_t> times;
  times.reserve(records);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  std::vector<rd_kafka_message_t*> batch(10000);
  const absl::Time deadline = absl::Now() + absl::Minutes(5);
  while (static_cast<int64_t>(times.size()) < records &&
         absl::Now() < deadline) {
    const ssize_t n =
        rd_kafka_consume_batch_queue(queue, 100, batch.data(), batch.size());
    for (ssize_t i = 0; i < n; ++i) {
      if (batch[i]->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        times.push_back(rd_kafka_message_timestamp(batch[i], nullptr));
      }
      rd_kafka_message_destroy(batch[i]);
    }
  }
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (static_cast<int64_t>(times.size()) < records) {
    return absl::DeadlineExceededError(absl::StrCat(
        "read ", times.size(), " of ", records, " records of ", topic));
  }
  std::sort(times.begin(), times.end());
  return times;
}

// ---------------------------------------------------------------------------
// The cluster: the embedded broker or a real one.

class Cluster {
 public:
  static absl::StatusOr<std::unique_ptr<Cluster>> Start(
      bool kafka, bool production_jvm, const std::string& kafka_dir,
      const std::vector<std::pair<std::string, int>>& topics) {
    auto cluster = std::unique_ptr<Cluster>(new Cluster());
    if (kafka) {
      testing::KafkaClusterOptions options;
      options.nodes = 1;
      // The node's data in memory unless --kafka-dir says: on an ext4 disk
      // (this machine's, Linux 6.18) the broker's request threads spent
      // most of their CPU zeroing memory in page faults on the segments'
      // index files (sparse files Kafka writes through mmap) once a few
      // engine runs had written to it, 4-6x the CPU per event of the first
      // runs, and the engine's ratios followed the broker's (BENCHMARKS.md,
      // run DY). The raw consumer, which only reads, was not slowed.
      std::string parent = kafka_dir;
      std::error_code ignored;
      if (parent.empty()) {
        parent = fs::is_directory("/dev/shm", ignored)
                     ? "/dev/shm"
                     : fs::temp_directory_path().string();
      }
      RemoveAbandonedDataDirs(parent);
      std::string pattern = parent + "/" + kDataDirPrefix + "XXXXXX";
      if (mkdtemp(pattern.data()) == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot make a directory in --kafka-dir \"", parent,
                         "\": ", std::strerror(errno)));
      }
      cluster->data_dir_ = pattern;
      options.dir = pattern;
      // By default a broker as Kafka's own scripts start one (1 GiB heap,
      // G1, both JIT compilers), not the tests' quick-starting C1-only JVM.
      options.heap_mb = production_jvm ? 1024 : 768;
      options.production_jvm = production_jvm;
      // Kafka's own default, as a production broker has it (the tests' 0
      // lets the first stream thread's consumer take every partition, and
      // the second's join a few seconds later rebalances them all).
      options.broker_config["group.initial.rebalance.delay.ms"] = "3000";
      auto real = testing::KafkaCluster::Start(options);
      if (!real.ok()) return real.status();
      cluster->kafka_ = *std::move(real);
      // (Written once the node runs: its start empties the directory.)
      std::ofstream(cluster->data_dir_ + "/owner.pid") << getpid() << "\n";
      cluster->bootstrap_ = cluster->kafka_->bootstrap();
      for (const auto& [name, partitions] : topics) {
        absl::Status s = cluster->kafka_->CreateTopic(name, partitions, 1);
        if (!s.ok()) return s;
      }
      cluster->name_ = absl::StrCat(
          "Apache Kafka (1 KRaft node, tests/integration/kafka_cluster.h; "
          "JVM: ",
          production_jvm ? "production (G1, both JIT compilers, 1 GiB heap)"
                         : "test (serial GC, C1 only, 768 MiB heap)",
          "; data in ", cluster->data_dir_, ")");
      return cluster;
    }
    std::vector<std::string> argv = {testing::KpistreamBinary(), "broker"};
    for (const auto& [name, partitions] : topics) {
      argv.push_back("--topic");
      argv.push_back(absl::StrCat(name, ":", partitions));
    }
    cluster->broker_ = std::make_unique<Subprocess>(argv);
    auto line = cluster->broker_->ReadLine(absl::Seconds(30));
    if (!line.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "kpistream broker did not start: ", cluster->broker_->Stderr()));
    }
    cluster->bootstrap_ = *line;
    cluster->name_ = "embedded broker (kpistream broker, librdkafka mock)";
    return cluster;
  }

  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& name() const { return name_; }
  // The broker process (embedded broker only), for its memory.
  pid_t broker_pid() const { return broker_ ? broker_->pid() : -1; }
  // CPU seconds (user + system) the broker processes have used so far:
  // the embedded broker's, or each Kafka node's JVM.
  double BrokerCpuSeconds() const {
    double seconds = 0;
    if (broker_) seconds += ReadProc(broker_->pid()).cpu_seconds;
    if (kafka_) {
      for (int i = 0; i < kafka_->size(); ++i) {
        if (kafka_->Pid(i) > 0) seconds += ReadProc(kafka_->Pid(i)).cpu_seconds;
      }
    }
    return seconds;
  }

  ~Cluster() {
    kafka_.reset();  // stops the node before its data is removed
    std::error_code ignored;
    if (!data_dir_.empty()) fs::remove_all(data_dir_, ignored);
  }

 private:
  static constexpr const char* kDataDirPrefix = "kpistream-e2e-kafka-";

  // The data of runs that were stopped before they could remove it (Ctrl-C:
  // in /dev/shm it holds memory until a reboot): each directory names its
  // run's process in owner.pid; one whose process is gone is removed.
  static void RemoveAbandonedDataDirs(const std::string& parent) {
    std::error_code ignored;
    for (const fs::directory_entry& entry :
         fs::directory_iterator(parent, ignored)) {
      const std::string name = entry.path().filename().string();
      if (!absl::StartsWith(name, kDataDirPrefix)) continue;
      std::ifstream owner(entry.path() / "owner.pid");
      pid_t pid = 0;
      if (!(owner >> pid) || pid <= 0) continue;
      if (kill(pid, 0) == 0 || errno != ESRCH) continue;
      fs::remove_all(entry.path(), ignored);
      std::printf(
          "removed %s, the Kafka data of a run that was stopped "
          "(process %d is gone)\n",
          entry.path().c_str(), static_cast<int>(pid));
    }
  }

  Cluster() = default;
  std::unique_ptr<Subprocess> broker_;
  std::unique_ptr<testing::KafkaCluster> kafka_;
  std::string data_dir_;  // the Kafka node's (made here, removed here)
  std::string bootstrap_;
  std::string name_;
};

// ---------------------------------------------------------------------------
// The two consumers.

struct RunResult {
  bool ok = false;
  std::string error;
  double total_s = 0;    // spawn (raw: main) -> every record counted
  double startup_s = 0;  // spawn (raw: main) -> partitions assigned, restored
  double cpu_s = 0;
  // CPU the broker(s) used over the same span as cpu_s (from the spawn to
  // the last record counted): serving this consumer, and on Kafka whatever
  // its JVM does besides (JIT, GC, the log cleaner).
  double broker_cpu_s = 0;
  int64_t hwm_kb = 0;
  int64_t minor_faults = 0;
  double rate() const { return ok ? records / (total_s - startup_s) : 0; }
  double rate_total() const { return ok ? records / total_s : 0; }
  int64_t records = 0;
  std::string load;  // /proc/loadavg before the run
  // Engine only.
  double init_s = 0;         // spawn -> "engine: instance ... consuming" logged
  int64_t start_rss_kb = 0;  // VmRSS at the first /metrics answer
  double state_bytes = 0, open_sessions = 0, reorder_events = 0;
  double closed_sessions = 0, duplicates = 0, late = 0, invalid = 0;
  double commits = 0, aborts = 0;
  double scrape_ms = 0;
  size_t scrape_bytes = 0, scrape_series = 0;
  double stop_s = 0;
  int exit_code = 0;
  double last_restored_s = 0;  // the last thread's partitions restored
};

// bench/raw_consumer on `topic` until it has counted `records`. It exits by
// itself: its /proc figures are sampled every 10 ms while it runs.
RunResult RunRaw(const Options& options, const Cluster& cluster,
                 const std::string& topic, int64_t records,
                 const std::string& group) {
  const std::string& bootstrap = cluster.bootstrap();
  RunResult r;
  r.records = records;
  r.load = LoadAverage();
  const double broker_cpu = cluster.BrokerCpuSeconds();
  const absl::Time start = absl::Now();
  Subprocess process({options.raw_consumer, "--brokers", bootstrap, "--topic",
                      topic, "--group", group, "--expect",
                      absl::StrCat(records), "--timeout",
                      absl::StrCat(options.timeout)});
  ProcStats last;
  while (process.Running()) {
    ProcStats now = ReadProc(process.pid());
    if (now.hwm_kb > 0) last = now;  // zero once it became a zombie
    absl::SleepFor(absl::Milliseconds(10));
  }
  r.total_s = absl::ToDoubleSeconds(absl::Now() - start);
  r.broker_cpu_s = cluster.BrokerCpuSeconds() - broker_cpu;
  auto line = process.ReadLine(absl::Seconds(1));
  const int code = process.Stop(SIGKILL, absl::Seconds(1));
  r.cpu_s = last.cpu_seconds;
  r.hwm_kb = last.hwm_kb;
  r.minor_faults = last.minor_faults;
  std::map<std::string, double> values;
  if (line.ok()) {
    for (absl::string_view kv : absl::StrSplit(*line, ' ')) {
      std::pair<std::string, std::string> p = absl::StrSplit(kv, '=');
      (void)absl::SimpleAtod(p.second, &values[p.first]);
    }
  }
  if (code != 0 || values["records"] < records) {
    r.error = absl::StrCat("raw_consumer exit ", code, ": ",
                           line.ok() ? *line : "", " ", process.Stderr());
    return r;
  }
  // Times since the consumer's main(); the exec before it (a few ms) and
  // its consumer_close() after the last record are left out.
  r.total_s = values["last"];
  r.startup_s = values["assigned"];
  r.ok = true;
  return r;
}

// The processing settings of the engine under test (not of the baseline),
// as lines to append to the config's `processing:`.
std::string UnderTestProcessing(const Options& options) {
  std::string out;
  if (!options.commit_interval.empty()) {
    absl::StrAppend(&out, "\n  commit_interval: ", options.commit_interval);
  }
  if (!options.min_commit_interval.empty()) {
    absl::StrAppend(&out,
                    "\n  min_commit_interval: ", options.min_commit_interval);
  }
  if (!options.max_commit_interval.empty()) {
    absl::StrAppend(&out,
                    "\n  max_commit_interval: ", options.max_commit_interval);
  }
  return out;
}

// The engines' kafka.properties: --kafka-property, and on the embedded
// broker a session timeout of 6 s unless given there. That broker completes
// a rebalance only when a member's session times out: a stream thread that
// joined after the other got every partition waited out librdkafka's 45 s
// default, which stalled about one run in ten (a REBALANCE STALL below).
std::map<std::string, std::string> EngineKafkaProperties(
    const Options& options) {
  std::map<std::string, std::string> set;
  for (const std::string& kv : options.kafka_properties) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, '=');
    set[p.first] = p.second;
  }
  if (!options.kafka) set.emplace("session.timeout.ms", "6000");
  return set;
}

// `processing`: lines appended to the config's `processing:`.
std::string EngineConfig(const Options& options, const std::string& bootstrap,
                         const std::string& topic, const std::string& format,
                         const std::string& key, const std::string& guarantee,
                         const std::string& processing,
                         const std::string& group, int port) {
  std::string properties;
  for (const auto& [name, value] : EngineKafkaProperties(options)) {
    absl::StrAppend(&properties, properties.empty() ? "" : ", ", "'", name,
                    "': '", value, "'");
  }
  return absl::StrFormat(R"(kafka:
  brokers: %s
  group_id: %s
  properties: {%s}
inputs:
  - topic: %s
    format: %s
    key: %s
outputs:
  sessions:   {topic: bench.sessions, format: protobuf}
  kpi:        {topic: bench.kpi, format: protobuf, window: 1m}
  deadletter: {topic: bench.deadletter}
processing:
  guarantee: %s
  threads: %d%s
metrics:
  listen: 127.0.0.1:%d
goals: [signup, lead, purchase]
funnels:
  - name: checkout
    steps: [{page: '/products/*'}, {page: /cart}, {goal: purchase}]
targets:
  - name: signup_conversion
    kpi: conversion_rate
    filter: {site: shop, goal: signup, channel: Email}
    direction: at_least
    value: 0.10
    tolerance: 0.02
    window: 1d
    for: 15m
    min_sessions: 100
  - name: q4_orders
    kpi: orders
    filter: {site: shop}
    value: 5000
    period: {start: 2025-10-01, end: 2026-12-31}
)",
                         bootstrap, group, properties, topic, format, key,
                         guarantee, options.threads, processing, port);
}

// Starts `kpistream run` on `config`. Profilers, for the runs of round 1:
// with `perf_output` it runs under `perf record` (started first, so that
// every thread is followed: attaching with -p missed the threads made before
// perf attached, the stream threads once the start took 26 ms), which stops
// sampling at the finish line through `perf_control`, a fifo; with
// `heaptrack_output` it runs under heaptrack. With either, `pid` is the
// engine, a child of `process`.
struct Engine {
  std::unique_ptr<Subprocess> process;
  std::string perf_control;
  pid_t pid = -1;
  int port = 0;
  absl::Time spawned;

  // Stops sampling (perf keeps running until the engine exits).
  void StopProfiling() {
    if (perf_control.empty()) return;
    const int fd = open(perf_control.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd < 0) return;
    constexpr absl::string_view kDisable = "disable\n";
    (void)!write(fd, kDisable.data(), kDisable.size());
    close(fd);
  }

  // Stops the engine with SIGTERM and waits for `process` (heaptrack and
  // perf then write their files); returns the engine's exit code, or -1.
  int Stop() {
    // pid -1 (the profiler's child was never seen): kill(-1) would signal
    // every process we may signal.
    if (pid <= 0 || pid == process->pid()) {
      return process->Stop(SIGTERM, absl::Seconds(60));
    }
    kill(pid, SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(300);
    while (process->Running() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    return process->Stop(SIGKILL, absl::Seconds(5));
  }
};

// The first child of `parent` named `comm`, waiting up to 10 s for it.
pid_t ChildNamed(pid_t parent, const std::string& comm) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    for (absl::string_view child :
         absl::StrSplit(ReadFile(absl::StrCat("/proc/", parent, "/task/",
                                              parent, "/children")),
                        ' ', absl::SkipWhitespace())) {
      if (absl::StripAsciiWhitespace(
              ReadFile(absl::StrCat("/proc/", child, "/comm"))) == comm) {
        pid_t pid = -1;
        if (absl::SimpleAtoi(child, &pid)) return pid;
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return -1;
}

Engine SpawnEngine(const std::string& binary, const TempDir& dir,
                   const std::string& name, const std::string& config_text,
                   int port, const std::string& perf_output,
                   const std::string& heaptrack_output,
                   const std::string& log_level) {
  Engine e;
  e.port = port;
  const std::string config = dir.Write(name + ".yaml", config_text);
  std::vector<std::string> argv = {
      binary, "run", "--config", config, "--summary-interval", "0"};
  if (!log_level.empty()) argv.insert(argv.end(), {"--log-level", log_level});
  if (!heaptrack_output.empty()) {
    argv.insert(argv.begin(), {"heaptrack", "-o", heaptrack_output});
  } else if (!perf_output.empty()) {
    e.perf_control = absl::StrCat(dir.path(), "/", name, ".perf-control");
    if (mkfifo(e.perf_control.c_str(), 0600) != 0) e.perf_control.clear();
    std::vector<std::string> perf = {"perf", "record",       "-F",
                                     "499",  "--call-graph", "dwarf,16384",
                                     "-o",   perf_output};
    if (!e.perf_control.empty()) {
      perf.insert(perf.end(), {"--control", "fifo:" + e.perf_control});
    }
    perf.push_back("--");
    argv.insert(argv.begin(), perf.begin(), perf.end());
  }
  e.spawned = absl::Now();
  e.process = std::make_unique<Subprocess>(argv);
  // A process's comm is the first 15 bytes of its file name.
  const std::string comm =
      std::string(absl::string_view(binary).substr(binary.rfind('/') + 1))
          .substr(0, 15);
  e.pid =
      argv[0] == binary ? e.process->pid() : ChildNamed(e.process->pid(), comm);
  return e;
}

// Reads the engine's log for when its init finished and when it first had
// restored partitions, as seconds after `spawned`; `last_restored_s`: when
// the last stream thread to get partitions first had them restored (the
// embedded broker sometimes completes a rebalance only at a member's
// session timeout, and one thread then starts ~45 s after the other).
void StartupFromLog(const std::string& log, absl::Time spawned, double* init_s,
                    double* restored_s, double* last_restored_s) {
  *init_s = *restored_s = *last_restored_s = -1;
  std::map<std::string, double> first_by_thread;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    const bool init = absl::StrContains(line, " INFO  engine: instance ");
    const size_t at = line.find(": restored ");
    const bool restored = at != absl::string_view::npos &&
                          absl::StrContains(line, " partition(s) from");
    if (!init && !restored) continue;
    auto t = LogTime(line);
    if (!t) continue;
    const double s = absl::ToDoubleSeconds(*t - spawned);
    if (init && *init_s < 0) *init_s = s;
    if (!restored) continue;
    if (*restored_s < 0) *restored_s = s;
    // "<time> INFO  engine-1: restored ...": the thread is the word before.
    const absl::string_view head = line.substr(0, at);
    const std::string thread(head.substr(head.rfind(' ') + 1));
    first_by_thread.emplace(thread, s);
  }
  for (const auto& [thread, s] : first_by_thread) {
    *last_restored_s = std::max(*last_restored_s, s);
  }
}

std::string Tail(const std::string& text, size_t lines) {
  std::vector<absl::string_view> all = absl::StrSplit(text, '\n');
  if (all.size() > lines) all.erase(all.begin(), all.end() - lines);
  return absl::StrJoin(all, "\n");
}

// `baseline`: runs options.baseline instead of the engine under test.
RunResult RunEngine(const Options& options, bool baseline, const TempDir& dir,
                    const Cluster& cluster, const std::string& topic,
                    const std::string& format, const std::string& key,
                    const std::string& guarantee, int64_t records,
                    const std::string& group, const std::string& perf_output,
                    const std::string& heaptrack_output) {
  const std::string& bootstrap = cluster.bootstrap();
  RunResult r;
  r.records = records;
  r.load = LoadAverage();
  const double broker_cpu = cluster.BrokerCpuSeconds();
  const int port = testing::FreePort();
  Engine e = SpawnEngine(
      baseline ? options.baseline : testing::KpistreamBinary(), dir, group,
      EngineConfig(options, bootstrap, topic, format, key, guarantee,
                   baseline ? "" : UnderTestProcessing(options), group, port),
      port, perf_output, heaptrack_output, options.log_level);
  Subprocess& process = *e.process;
  if (e.pid <= 0) {
    r.error = absl::StrCat("the profiler (heaptrack or perf, pid ",
                           process.pid(), ") started no engine within 10 s:\n",
                           Tail(process.Stderr(), 30));
    e.Stop();
    return r;
  }
  double consumed = 0, last_consumed = -1;
  absl::Time last_change = absl::Now();
  ProcStats at_done;
  for (;;) {
    const absl::Time tick = absl::Now();
    if (!process.Running()) {
      r.error = absl::StrCat("kpistream run exited early:\n",
                             Tail(process.Stderr(), 30));
      return r;
    }
    auto page = HttpGet(port, "/metrics");
    if (page.ok()) {
      if (r.start_rss_kb == 0) r.start_rss_kb = ReadProc(e.pid).rss_kb;
      consumed =
          std::max(0.0, MetricValue(*page, "kpistream_events_consumed_total"));
      if (consumed >= records) {
        at_done = ReadProc(e.pid);
        r.total_s = absl::ToDoubleSeconds(absl::Now() - e.spawned);
        r.broker_cpu_s = cluster.BrokerCpuSeconds() - broker_cpu;
        break;
      }
    }
    if (consumed != last_consumed) {
      last_consumed = consumed;
      last_change = absl::Now();
    }
    if (absl::Now() - last_change > absl::Seconds(120) ||
        absl::Now() - e.spawned > absl::Seconds(options.timeout)) {
      r.error = absl::StrFormat(
          "kpistream run stuck at %.0f of %d records consumed:\n%s", consumed,
          records, Tail(process.Stderr(), 30));
      return r;
    }
    absl::SleepFor(absl::Milliseconds(100) - (absl::Now() - tick));
  }
  e.StopProfiling();
  r.cpu_s = at_done.cpu_seconds;
  r.hwm_kb = at_done.hwm_kb;
  r.minor_faults = at_done.minor_faults;

  // The state at the end, and what a scrape costs (median of 5).
  std::vector<double> scrapes;
  std::string page;
  for (int i = 0; i < 5; ++i) {
    const absl::Time t = absl::Now();
    auto got = HttpGet(port, "/metrics");
    scrapes.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    if (got.ok()) page = *got;
  }
  r.scrape_ms = SpreadOf(scrapes).median;
  r.scrape_bytes = page.size();
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!line.empty() && line[0] != '#') ++r.scrape_series;
  }
  auto value = [&](const char* name) {
    return std::max(0.0, MetricValue(page, name));
  };
  r.state_bytes = value("kpistream_state_bytes");
  r.open_sessions = value("kpistream_state_sessions");
  r.reorder_events = value("kpistream_reorder_buffer_events");
  r.closed_sessions = value("web_sessions_closed_total");
  r.duplicates = value("kpistream_events_duplicate_total");
  r.late = value("kpistream_events_late_total");
  r.invalid = value("kpistream_events_invalid_total");
  r.commits = value("kpistream_commits_total");
  r.aborts = value("kpistream_commit_aborts_total");

  const absl::Time stop = absl::Now();
  r.exit_code = e.Stop();
  r.stop_s = absl::ToDoubleSeconds(absl::Now() - stop);
  if (!options.logs.empty()) {
    std::ofstream(absl::StrCat(options.logs, "/", group, ".log"))
        << process.Stderr();
  }
  StartupFromLog(process.Stderr(), e.spawned, &r.init_s, &r.startup_s,
                 &r.last_restored_s);
  if (r.startup_s < 0) {
    r.error = "no \"restored\" line in the engine's log";
    return r;
  }
  r.ok = true;
  return r;
}

// ---------------------------------------------------------------------------
// The latency probe.

struct LatencyResult {
  bool ok = false;
  std::string error;
  int64_t records = 0;
  double produce_rate = 0;  // achieved, from the CreateTimes
  size_t measured = 0;      // records after the warm-up
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  double poll_ms = 0;  // median time of one /metrics answer
  // p99 and max of the records produced in each 5 s of the run (from the
  // first record): whether the engine keeps up or falls behind.
  std::vector<std::pair<double, double>> by_slice;
  int64_t hwm_kb = 0;
  double reorder_events = 0;
  std::string load;
};

LatencyResult RunLatency(const Options& options, bool baseline,
                         const TempDir& dir, const std::string& bootstrap,
                         const std::string& topic, const std::string& format,
                         const std::string& key, const std::string& group) {
  LatencyResult r;
  r.load = LoadAverage();
  const int port = testing::FreePort();
  Engine e = SpawnEngine(
      baseline ? options.baseline : testing::KpistreamBinary(), dir, group,
      EngineConfig(options, bootstrap, topic, format, key, "exactly_once",
                   baseline ? "" : UnderTestProcessing(options), group, port),
      port, "", "", options.log_level);
  Subprocess& engine = *e.process;
  // Ready: every input partition assigned and restored, and no rebalance
  // pending (the log shows one "restored" line per thread).
  const bool ready = testing::WaitFor(
      [&] {
        if (!engine.Running()) return false;
        auto page = HttpGet(port, "/metrics");
        if (!page.ok()) return false;
        const std::string log = engine.Stderr();
        size_t restored = 0;
        for (size_t at = 0; (at = log.find(" partition(s) from changelog",
                                           at)) != std::string::npos;
             ++at) {
          ++restored;
        }
        // key: any adds the repartition topic's (as many) partitions.
        return MetricValue(*page, "kpistream_assigned_partitions") ==
                   options.partitions * (key == "any" ? 2 : 1) &&
               MetricValue(*page, "kpistream_ready") == 1 &&
               restored >= static_cast<size_t>(options.threads);
      },
      absl::Seconds(120));
  if (!ready) {
    r.error = absl::StrCat("the engine did not get ready:\n",
                           Tail(engine.Stderr(), 20));
    return r;
  }
  absl::SleepFor(absl::Seconds(2));  // let a late rebalance settle

  Subprocess loadgen(std::vector<std::string>{
      testing::KpistreamBinary(), "loadgen", "--brokers", bootstrap, "--topic",
      topic, "--format", format, "--rate", absl::StrCat(options.latency_rate),
      "--duration", absl::StrCat(options.latency_seconds, "s"), "--visitors",
      absl::StrCat(options.visitors), "--seed", "7"});
  struct Sample {
    absl::Time answered;
    double consumed;
  };
  std::vector<Sample> samples;
  std::vector<double> answer_ms;
  int64_t records = -1;
  absl::Time last_change = absl::Now();
  double last_consumed = -1;
  for (;;) {
    const absl::Time tick = absl::Now();
    auto page = HttpGet(port, "/metrics");
    const absl::Time answered = absl::Now();
    if (page.ok()) {
      const double consumed =
          std::max(0.0, MetricValue(*page, "kpistream_events_consumed_total"));
      samples.push_back({answered, consumed});
      answer_ms.push_back(absl::ToDoubleMilliseconds(answered - tick));
      if (consumed != last_consumed) {
        last_consumed = consumed;
        last_change = answered;
        r.reorder_events =
            std::max(r.reorder_events,
                     MetricValue(*page, "kpistream_reorder_buffer_events"));
      }
    }
    if (records < 0 && !loadgen.Running()) {
      auto count = CountRecords(bootstrap, topic);
      if (!count.ok()) {
        r.error = std::string(count.status().message());
        return r;
      }
      records = count->records;
      if (count->trimmed > 0) {
        r.error = absl::StrCat(topic, ": the broker dropped ", count->trimmed,
                               " records; use more --partitions");
        return r;
      }
    }
    if (records >= 0 && last_consumed >= records) break;
    if (!engine.Running() || absl::Now() - last_change > absl::Seconds(60)) {
      r.error = absl::StrCat("the engine stopped counting at ", last_consumed,
                             ":\n", Tail(engine.Stderr(), 20));
      return r;
    }
    absl::SleepFor(absl::Milliseconds(50) - (absl::Now() - tick));
  }
  r.hwm_kb = ReadProc(engine.pid()).hwm_kb;
  engine.Stop(SIGTERM, absl::Seconds(60));
  if (!options.logs.empty()) {
    std::ofstream(absl::StrCat(options.logs, "/", group, ".log"))
        << engine.Stderr();
  }
  r.records = records;
  auto times = ProduceTimes(bootstrap, topic, options.partitions, records);
  if (!times.ok()) {
    r.error = std::string(times.status().message());
    return r;
  }
  const std::vector<int64_t>& t = *times;
  r.produce_rate =
      (t.size() - 1) * 1000.0 / std::max<int64_t>(1, t.back() - t.front());
  const int64_t warm =
      t.front() + static_cast<int64_t>(options.latency_warmup * 1000);
  std::vector<double> latencies;
  std::vector<std::vector<double>> slices;
  size_t s = 0;
  for (size_t k = 0; k < t.size(); ++k) {
    while (s < samples.size() &&
           samples[s].consumed < static_cast<double>(k + 1)) {
      ++s;
    }
    if (s == samples.size()) break;
    const double latency =
        absl::ToDoubleSeconds(samples[s].answered - absl::FromUnixMillis(t[k]));
    const size_t slice = static_cast<size_t>((t[k] - t.front()) / 5000);
    if (slices.size() <= slice) slices.resize(slice + 1);
    slices[slice].push_back(latency);
    if (t[k] < warm) continue;
    latencies.push_back(latency);
  }
  for (std::vector<double>& slice : slices) {
    std::sort(slice.begin(), slice.end());
    r.by_slice.push_back(
        {Percentile(slice, 99), slice.empty() ? 0 : slice.back()});
  }
  std::sort(latencies.begin(), latencies.end());
  r.measured = latencies.size();
  r.p50 = Percentile(latencies, 50);
  r.p90 = Percentile(latencies, 90);
  r.p99 = Percentile(latencies, 99);
  r.p999 = Percentile(latencies, 99.9);
  r.max = latencies.empty() ? 0 : latencies.back();
  r.poll_ms = SpreadOf(answer_ms).median;
  r.ok = true;
  return r;
}

// ---------------------------------------------------------------------------
// The report.

std::string Fmt(const Spread& s, const char* format) {
  return absl::StrCat(absl::StrFormat(format, s.min), " / ",
                      absl::StrFormat(format, s.median), " / ",
                      absl::StrFormat(format, s.max));
}

std::string Rounds(const std::vector<double>& values, const char* format) {
  return absl::StrJoin(values, " ", [&](std::string* out, double v) {
    out->append(absl::StrFormat(format, v));
  });
}

// The consumer group of an engine run (of a latency run: round 0); a
// `key: any` run re-keys through "<group>-repartition".
std::string EngineGroup(const std::string& format, const std::string& key,
                        const std::string& guarantee, bool baseline, int round,
                        const std::string& run_id) {
  return absl::StrCat(round == 0 ? "latency-" : "bench-", format, "-",
                      absl::StrReplaceAll(key, {{"_", "-"}}), "-",
                      absl::StrReplaceAll(guarantee, {{"_", "-"}}),
                      baseline ? "-baseline-" : "-", round, "-", run_id);
}

// Each latency run has a topic of its own (a run reads its topic from the
// start).
std::string LatencyTopic(const std::string& format, const std::string& key,
                         bool baseline) {
  return absl::StrCat("bench.latency.", format, ".", key,
                      baseline ? ".baseline" : "");
}

int Main(int argc, char** argv) {
  Options options;
  CLI::App app{
      "End-to-end benchmark of kpistream against a bare librdkafka consumer "
      "(issue 9). See the comment at the top of bench/e2e_bench.cc and "
      "BENCHMARKS.md."};
  app.add_option("--events", options.events, "events per input topic")
      ->capture_default_str();
  app.add_option("--rounds", options.rounds, "rounds (raw, then engine)")
      ->capture_default_str();
  app.add_option("--warmup", options.warmup,
                 "engine runs before round 1, reported but not in the "
                 "summary (key: visitor_id, exactly_once, the first format): "
                 "with --kafka the broker's JVM compiles its produce and "
                 "transaction paths during the first engine run")
      ->capture_default_str()
      ->check(CLI::Range(0, 10));
  app.add_option("--partitions", options.partitions,
                 "partitions of each input topic (the embedded broker keeps "
                 "~5 MB per partition)")
      ->capture_default_str();
  app.add_option("--visitors", options.visitors, "loadgen --visitors")
      ->capture_default_str();
  app.add_option("--event-rate", options.event_rate,
                 "loadgen --event-rate: events per second of event time")
      ->capture_default_str();
  app.add_option("--disorder", options.disorder, "loadgen --disorder")
      ->capture_default_str();
  app.add_option("--formats", options.formats, "json, protobuf")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--guarantees", options.guarantees,
                 "exactly_once, at_least_once")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--threads", options.threads, "processing.threads")
      ->capture_default_str();
  app.add_option("--keys", options.keys,
                 "inputs[].key of the engine runs: any (re-keyed through "
                 "<group_id>-repartition), visitor_id (loadgen keys by it)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--commit-interval", options.commit_interval,
                 "processing.commit_interval of the engine under test, e.g. "
                 "200ms (default: not set, the engine's default)");
  app.add_option("--min-commit-interval", options.min_commit_interval,
                 "processing.min_commit_interval of the engine under test, "
                 "e.g. 1s (default: not set, the engine's default)");
  app.add_option("--max-commit-interval", options.max_commit_interval,
                 "processing.max_commit_interval of the engine under test, "
                 "e.g. 1s for a fixed interval (default: not set, the "
                 "engine's default)");
  app.add_option("--baseline", options.baseline,
                 "another kpistream binary (e.g. a build of main) run after "
                 "the engine under test in every round and latency probe, "
                 "same config without the commit intervals set above; the "
                 "summary adds events/s and CPU of the engine under test "
                 "over it");
  app.add_flag("--kafka", options.kafka,
               "a real Apache Kafka node instead of the embedded broker");
  app.add_option("--kafka-jvm", options.kafka_jvm,
                 "with --kafka, the broker's JVM: production (as Kafka's own "
                 "scripts start it: G1, both JIT compilers, 1 GiB heap) or "
                 "test (the test suite's: serial GC, C1 compiler only; "
                 "starts sooner, runs slower)")
      ->check(CLI::IsMember({"production", "test"}))
      ->capture_default_str();
  app.add_option("--kafka-dir", options.kafka_dir,
                 "with --kafka, the directory in which the node's data "
                 "directory is made (removed at the end; one that a stopped "
                 "run left there, by the next run); default /dev/shm "
                 "(memory) where there is one, else TMPDIR: on a disk this "
                 "machine's kernel made the broker's index writes cost it "
                 "4-6x the CPU after a few runs (BENCHMARKS.md, run DY); "
                 "--kafka-dir /tmp measures that")
      ->check(CLI::ExistingDirectory);
  app.add_option("--latency-rate", options.latency_rate,
                 "latency probe: loadgen --rate")
      ->capture_default_str();
  app.add_option("--latency-seconds", options.latency_seconds,
                 "latency probe: how long loadgen produces (0: no probe)")
      ->capture_default_str();
  app.add_option("--latency-warmup", options.latency_warmup,
                 "latency probe: seconds of records not measured")
      ->capture_default_str();
  app.add_option("--latency-formats", options.latency_formats,
                 "latency probe formats")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--kafka-property", options.kafka_properties,
                 "KEY=VALUE for the engine's kafka.properties (repeatable), "
                 "e.g. queued.max.messages.kbytes=8192; on the embedded "
                 "broker session.timeout.ms is 6000 unless set here");
  app.add_option("--perf", options.perf_prefix,
                 "perf record each engine run of round 1 into "
                 "PREFIX-<format>-<key>-<guarantee>.data");
  app.add_option("--heaptrack", options.heaptrack_prefix,
                 "run each engine run of round 1 under heaptrack, into "
                 "PREFIX-<format>-<key>-<guarantee>[-baseline].zst (the "
                 "baseline's too; their times and RSS are then heaptrack's)");
  app.add_option("--log-level", options.log_level,
                 "the engines' --log-level (e.g. debug: each commit with the "
                 "time of its parts; see --logs)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--logs", options.logs,
                 "keep each engine run's log as DIR/<group_id>.log");
  app.add_option("--timeout", options.timeout, "seconds per run")
      ->capture_default_str();
  app.add_option("--raw-consumer", options.raw_consumer,
                 "the raw_consumer binary")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::printf("kpistream e2e_bench: commit %s, %s\n", Commit().c_str(),
              absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::Now(),
                               absl::UTCTimeZone())
                  .c_str());
  std::printf("machine: %s; load average %s\n", Machine().c_str(),
              LoadAverage().c_str());
  std::printf(
      "workload: %lld events per format, %d partitions, %lld visitors, "
      "event time %.0f events/s, disorder %s, 1%% duplicates, 0.5%% late; "
      "%d round(s); processing.threads %d; engine kafka.properties {%s}; "
      "engine under test's processing {%s}\n",
      static_cast<long long>(options.events), options.partitions,
      static_cast<long long>(options.visitors), options.event_rate,
      options.disorder.c_str(), options.rounds, options.threads,
      absl::StrJoin(EngineKafkaProperties(options), ", ",
                    absl::PairFormatter("="))
          .c_str(),
      absl::StrReplaceAll(UnderTestProcessing(options), {{"\n  ", " "}})
          .c_str());
  std::fflush(stdout);

  std::vector<std::pair<std::string, int>> topics;
  for (const std::string& f : options.formats) {
    topics.push_back({"bench." + f, options.partitions});
  }
  if (options.latency_seconds > 0) {
    for (const std::string& f : options.latency_formats) {
      for (const std::string& key : options.keys) {
        for (const bool baseline : {false, true}) {
          if (baseline && options.baseline.empty()) continue;
          topics.push_back(
              {LatencyTopic(f, key, baseline), options.partitions});
        }
      }
    }
  }
  for (const char* out : {"bench.sessions", "bench.kpi", "bench.deadletter"}) {
    topics.push_back({out, 8});
  }
  // The engine creates a key: any run's repartition topic itself, but the
  // embedded broker makes every topic it did not start with 4 partitions,
  // each keeping ~5 MB: they are made here, as many as the input's.
  const std::string run_id =
      absl::StrCat(getpid(), "-", absl::ToUnixSeconds(absl::Now()));
  for (const std::string& key : options.keys) {
    if (key != "any") continue;
    for (bool baseline : {false, true}) {
      if (baseline && options.baseline.empty()) continue;
      for (const std::string& f : options.formats) {
        for (const std::string& g : options.guarantees) {
          for (int round = 1; round <= options.rounds; ++round) {
            topics.push_back({EngineGroup(f, key, g, baseline, round, run_id) +
                                  "-repartition",
                              options.partitions});
          }
        }
      }
      if (options.latency_seconds <= 0) continue;
      for (const std::string& f : options.latency_formats) {
        topics.push_back(
            {EngineGroup(f, key, "exactly_once", baseline, 0, run_id) +
                 "-repartition",
             options.partitions});
      }
    }
  }
  auto cluster =
      Cluster::Start(options.kafka, options.kafka_jvm == "production",
                     options.kafka_dir, topics);
  if (!cluster.ok()) {
    std::fprintf(stderr, "e2e_bench: %s\n",
                 std::string(cluster.status().message()).c_str());
    return 1;
  }
  const std::string& bootstrap = (*cluster)->bootstrap();
  std::printf("brokers: %s at %s\n", (*cluster)->name().c_str(),
              bootstrap.c_str());

  // Fill the input topics.
  std::map<std::string, int64_t> records;
  for (const std::string& format : options.formats) {
    const std::string topic = "bench." + format;
    const absl::Time start = absl::Now();
    testing::CommandResult fill =
        testing::RunCommand({testing::KpistreamBinary(),
                             "loadgen",
                             "--brokers",
                             bootstrap,
                             "--topic",
                             topic,
                             "--format",
                             format,
                             "--rate",
                             "0",
                             "--events",
                             absl::StrCat(options.events),
                             "--visitors",
                             absl::StrCat(options.visitors),
                             "--event-rate",
                             absl::StrCat(options.event_rate),
                             "--start-time",
                             "2026-01-01T00:00:00Z",
                             "--seed",
                             "1",
                             "--disorder",
                             options.disorder,
                             "--duplicates",
                             "0.01",
                             "--late",
                             "0.005"},
                            "", absl::Minutes(10));
    if (fill.exit_code != 0) {
      std::fprintf(stderr, "e2e_bench: loadgen failed:\n%s\n%s\n",
                   fill.out.c_str(), fill.err.c_str());
      return 1;
    }
    auto count = CountRecords(bootstrap, topic);
    if (!count.ok()) {
      std::fprintf(stderr, "e2e_bench: %s\n",
                   std::string(count.status().message()).c_str());
      return 1;
    }
    if (count->trimmed > 0) {
      std::fprintf(stderr,
                   "e2e_bench: the broker dropped %lld records of %s (it "
                   "keeps ~5 MB per partition): use more --partitions\n",
                   static_cast<long long>(count->trimmed), topic.c_str());
      return 1;
    }
    records[format] = count->records;
    std::printf("filled %s in %.1f s: %lld records, %s", topic.c_str(),
                absl::ToDoubleSeconds(absl::Now() - start),
                static_cast<long long>(count->records), fill.out.c_str());
    std::fflush(stdout);
  }

  // The rounds.
  TempDir dir;
  std::map<std::string, std::vector<RunResult>> raw;  // by format
  // By (format, key, guarantee, baseline?).
  using EngineRun = std::tuple<std::string, std::string, std::string, bool>;
  std::map<EngineRun, std::vector<RunResult>> engine;
  std::vector<bool> which = {false};
  if (!options.baseline.empty()) which.push_back(true);
  bool failed = false;
  auto report = [](const char* what, const RunResult& r) {
    if (!r.ok) {
      std::printf("  %-40s FAILED: %s\n", what, r.error.c_str());
    } else {
      std::printf(
          "  %-40s %9.0f events/s (%.0f incl. startup) | total %6.2f s, "
          "startup %5.2f s | CPU %5.2f s/M, broker's %5.2f s/M | page "
          "faults %.0f k/M | peak RSS %4.0f MB | load %s\n",
          what, r.rate(), r.rate_total(), r.total_s, r.startup_s,
          r.cpu_s / (r.records / 1e6), r.broker_cpu_s / (r.records / 1e6),
          r.minor_faults / 1e3 / (r.records / 1e6), r.hwm_kb / 1024.0,
          r.load.c_str());
    }
    std::fflush(stdout);
  };
  auto label = [](const std::string& key, const std::string& guarantee,
                  bool baseline) {
    return absl::StrCat(baseline ? "baseline" : "kpistream", " key:", key, " ",
                        guarantee);
  };
  for (int i = 1; i <= options.warmup; ++i) {
    const std::string& format = options.formats.front();
    RunResult w = RunEngine(options, /*baseline=*/false, dir, **cluster,
                            "bench." + format, format, "visitor_id",
                            "exactly_once", records[format],
                            absl::StrCat("warmup-", i, "-", run_id), "", "");
    report(absl::StrCat("warm-up ", i, ": ", format, " ",
                        label("visitor_id", "exactly_once", false))
               .c_str(),
           w);
  }
  for (int round = 1; round <= options.rounds; ++round) {
    std::printf("round %d\n", round);
    for (const std::string& format : options.formats) {
      const std::string topic = "bench." + format;
      RunResult a =
          RunRaw(options, **cluster, topic, records[format],
                 absl::StrCat("raw-", format, "-", round, "-", run_id));
      report(absl::StrCat(format, " raw consumer").c_str(), a);
      failed |= !a.ok;
      raw[format].push_back(a);
      for (const std::string& key : options.keys) {
        for (const std::string& guarantee : options.guarantees) {
          for (const bool baseline : which) {
            const std::string suffix = absl::StrCat(
                format, "-", key, "-", guarantee, baseline ? "-baseline" : "");
            const bool profiled = round == 1 && !baseline;
            const std::string perf =
                profiled && !options.perf_prefix.empty()
                    ? absl::StrCat(options.perf_prefix, "-", suffix, ".data")
                    : "";
            // The baseline's heap too, to compare the two in one round.
            const std::string heaptrack =
                round == 1 && !options.heaptrack_prefix.empty()
                    ? absl::StrCat(options.heaptrack_prefix, "-", suffix)
                    : "";
            RunResult b = RunEngine(
                options, baseline, dir, **cluster, topic, format, key,
                guarantee, records[format],
                EngineGroup(format, key, guarantee, baseline, round, run_id),
                perf, heaptrack);
            report(absl::StrCat(format, " ", label(key, guarantee, baseline))
                       .c_str(),
                   b);
            if (b.ok) {
              std::printf(
                  "      init %.2f s, every thread's partitions restored "
                  "%.2f s after the first's, stop %.2f s (exit %d), start "
                  "RSS %.0f "
                  "MB; end state: %.0f MB state_bytes, %.0f open sessions, "
                  "%.0f closed, %.0f in reorder buffer, %.0f duplicates, %.0f "
                  "late, %.0f invalid; %.0f commits, %.0f aborted; /metrics "
                  "%zu series, %zu bytes, %.1f ms\n",
                  b.init_s, b.last_restored_s - b.startup_s, b.stop_s,
                  b.exit_code, b.start_rss_kb / 1024.0,
                  b.state_bytes / 1048576.0, b.open_sessions, b.closed_sessions,
                  b.reorder_events, b.duplicates, b.late, b.invalid, b.commits,
                  b.aborts, b.scrape_series, b.scrape_bytes, b.scrape_ms);
              // A stall counts in this round's rate and CPU: say so.
              if (b.last_restored_s - b.startup_s > 10) {
                std::printf(
                    "      REBALANCE STALL: the last stream thread got its "
                    "partitions %.1f s after the first (the embedded "
                    "broker completes a rebalance at a session timeout); "
                    "this round's rate and CPU include the wait\n",
                    b.last_restored_s - b.startup_s);
              }
            }
            failed |= !b.ok;
            engine[{format, key, guarantee, baseline}].push_back(b);
          }
        }
      }
    }
  }

  // The summary: per format, key and guarantee, the round values and spreads.
  std::printf(
      "\nsummary (min / median / max over %d round(s); events/s "
      "exclude startup; values per round in brackets)\n",
      options.rounds);
  for (const std::string& format : options.formats) {
    std::vector<double> raw_rate, raw_cpu, raw_broker_cpu, raw_rss;
    for (const RunResult& a : raw[format]) {
      raw_rate.push_back(a.rate());
      raw_cpu.push_back(a.cpu_s / (a.records / 1e6));
      raw_broker_cpu.push_back(a.broker_cpu_s / (a.records / 1e6));
      raw_rss.push_back(a.hwm_kb / 1024.0);
    }
    std::printf("%s, %lld records:\n", format.c_str(),
                static_cast<long long>(records[format]));
    std::printf("  raw consumer events/s   %s  [%s]\n",
                Fmt(SpreadOf(raw_rate), "%.0f").c_str(),
                Rounds(raw_rate, "%.0f").c_str());
    std::printf("  raw CPU s per M         %s  [%s]\n",
                Fmt(SpreadOf(raw_cpu), "%.2f").c_str(),
                Rounds(raw_cpu, "%.2f").c_str());
    std::printf("  raw broker's CPU s/M    %s  [%s]\n",
                Fmt(SpreadOf(raw_broker_cpu), "%.2f").c_str(),
                Rounds(raw_broker_cpu, "%.2f").c_str());
    std::printf("  raw peak RSS MB         %s  [%s]\n",
                Fmt(SpreadOf(raw_rss), "%.0f").c_str(),
                Rounds(raw_rss, "%.0f").c_str());
    for (const std::string& key : options.keys) {
      for (const std::string& guarantee : options.guarantees) {
        for (const bool baseline : which) {
          std::vector<double> rate, rate_total, ratio, ratio_total, cpu,
              broker_cpu, rss, faults, startup, vs_rate, vs_cpu;
          const auto& runs = engine[{format, key, guarantee, baseline}];
          const auto& base = engine[{format, key, guarantee, true}];
          for (size_t i = 0; i < runs.size(); ++i) {
            const RunResult& b = runs[i];
            const RunResult& a = raw[format][i];
            rate.push_back(b.rate());
            rate_total.push_back(b.rate_total());
            ratio.push_back(a.ok && b.ok ? b.rate() / a.rate() : 0);
            ratio_total.push_back(a.ok && b.ok ? b.rate_total() / a.rate_total()
                                               : 0);
            cpu.push_back(b.cpu_s / (b.records / 1e6));
            broker_cpu.push_back(b.broker_cpu_s / (b.records / 1e6));
            rss.push_back(b.hwm_kb / 1024.0);
            faults.push_back(b.minor_faults / 1e3 / (b.records / 1e6));
            startup.push_back(b.startup_s);
            if (!baseline && i < base.size()) {
              const RunResult& c = base[i];
              vs_rate.push_back(b.ok && c.ok ? b.rate() / c.rate() : 0);
              vs_cpu.push_back(b.ok && c.ok && c.cpu_s > 0 ? b.cpu_s / c.cpu_s
                                                           : 0);
            }
          }
          std::printf("  %s:\n", label(key, guarantee, baseline).c_str());
          std::printf("    events/s              %s  [%s]\n",
                      Fmt(SpreadOf(rate), "%.0f").c_str(),
                      Rounds(rate, "%.0f").c_str());
          std::printf("    ratio to raw          %s  [%s]\n",
                      Fmt(SpreadOf(ratio), "%.3f").c_str(),
                      Rounds(ratio, "%.3f").c_str());
          std::printf("    incl. startup: events/s %s, ratio %s  [%s]\n",
                      Fmt(SpreadOf(rate_total), "%.0f").c_str(),
                      Fmt(SpreadOf(ratio_total), "%.3f").c_str(),
                      Rounds(ratio_total, "%.3f").c_str());
          std::printf("    startup s             %s  [%s]\n",
                      Fmt(SpreadOf(startup), "%.2f").c_str(),
                      Rounds(startup, "%.2f").c_str());
          std::printf("    CPU s per M events    %s  [%s]\n",
                      Fmt(SpreadOf(cpu), "%.2f").c_str(),
                      Rounds(cpu, "%.2f").c_str());
          std::printf("    broker's CPU s per M  %s  [%s]\n",
                      Fmt(SpreadOf(broker_cpu), "%.2f").c_str(),
                      Rounds(broker_cpu, "%.2f").c_str());
          std::printf("    peak RSS MB           %s  [%s]\n",
                      Fmt(SpreadOf(rss), "%.0f").c_str(),
                      Rounds(rss, "%.0f").c_str());
          std::printf("    page faults k per M   %s  [%s]\n",
                      Fmt(SpreadOf(faults), "%.0f").c_str(),
                      Rounds(faults, "%.0f").c_str());
          if (!vs_rate.empty()) {
            std::printf("    events/s / baseline's %s  [%s]\n",
                        Fmt(SpreadOf(vs_rate), "%.3f").c_str(),
                        Rounds(vs_rate, "%.3f").c_str());
            std::printf("    CPU s / baseline's    %s  [%s]\n",
                        Fmt(SpreadOf(vs_cpu), "%.3f").c_str(),
                        Rounds(vs_cpu, "%.3f").c_str());
          }
        }
      }
    }
  }
  std::fflush(stdout);

  if (options.latency_seconds > 0) {
    std::printf(
        "\nlatency probe: loadgen --rate %.0f for %.0f s (event time = wall "
        "clock), exactly_once, produce (CreateTime) -> "
        "kpistream_events_consumed_total on /metrics polled every 50 ms; "
        "first %.0f s not measured\n",
        options.latency_rate, options.latency_seconds, options.latency_warmup);
    for (const std::string& format : options.latency_formats) {
      for (const std::string& key : options.keys) {
        for (const bool baseline : which) {
          const std::string what = absl::StrCat(
              format, " ", baseline ? "baseline" : "kpistream", " key:", key);
          LatencyResult l = RunLatency(
              options, baseline, dir, bootstrap,
              LatencyTopic(format, key, baseline), format, key,
              EngineGroup(format, key, "exactly_once", baseline, 0, run_id));
          if (!l.ok) {
            std::printf("  %s: FAILED: %s\n", what.c_str(), l.error.c_str());
            failed = true;
            continue;
          }
          std::printf(
              "  %s: %lld records at %.0f/s produced; latency over %zu: p50 "
              "%.3f s, p90 %.3f s, p99 %.3f s, p99.9 %.3f s, max %.3f s | "
              "/metrics answers in %.1f ms | peak RSS %.0f MB, reorder "
              "buffer up to %.0f events | load %s\n",
              what.c_str(), static_cast<long long>(l.records), l.produce_rate,
              l.measured, l.p50, l.p90, l.p99, l.p999, l.max, l.poll_ms,
              l.hwm_kb / 1024.0, l.reorder_events, l.load.c_str());
          std::printf("           p99 / max by 5 s of produce time: %s\n",
                      absl::StrJoin(l.by_slice, ", ",
                                    [](std::string* out,
                                       const std::pair<double, double>& v) {
                                      absl::StrAppendFormat(out, "%.2f/%.2f s",
                                                            v.first, v.second);
                                    })
                          .c_str());
          std::fflush(stdout);
        }
      }
    }
  }
  if ((*cluster)->broker_pid() > 0) {
    std::printf("\nembedded broker peak RSS %.0f MB\n",
                ReadProc((*cluster)->broker_pid()).hwm_kb / 1024.0);
  }
  std::printf("load average at the end %s\n", LoadAverage().c_str());
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace kpistream::bench

int main(int argc, char** argv) { return kpistream::bench::Main(argc, argv); }
