// A real Apache Kafka cluster for tests: 1 or 3 (any n ≥ 1) KRaft nodes, each
// a `java … kafka.Kafka` process that is broker and controller at once (no
// ZooKeeper), on free 127.0.0.1 ports, with small heaps and settings made for
// tests (see KafkaCluster::Start). The broker's jars come from
// .ci/fetch-kafka (run by .ci/setup), found through KafkaLibs().
//
// Two ways to get one:
//  * SharedKafka("kafka3"): the 3-node cluster that a CTest fixture starts once
//    for every test that declares FIXTURES_REQUIRED kafka3 (see
//    tests/integration/CMakeLists.txt, kafka_cluster_daemon.cc). Cheap, but
//    shared: tests must use their own topics (UniqueKafkaName) and groups and
//    must never stop, restart or reconfigure its brokers.
//  * KafkaCluster::Start(): a private cluster owned by the test, for tests
//    that break brokers (outages, restarts) or need other broker settings.
//    It costs ~5-15 s and ~300 MB per node.
//
// Nothing here is thread-safe; call it from the test's main thread (the
// node processes die with the thread that started them).
#ifndef KPISTREAM_TESTS_INTEGRATION_KAFKA_CLUSTER_H_
#define KPISTREAM_TESTS_INTEGRATION_KAFKA_CLUSTER_H_

#include <librdkafka/rdkafka.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {

// The directory with the Kafka broker's jars: $KPISTREAM_KAFKA_LIBS, else
// the one CMake's KPISTREAM_KAFKA_LIBS named at configure time.
std::string KafkaLibs();

// The bootstrap address of the cluster that CTest fixture `fixture` ("kafka3")
// runs. An error saying how to get it when the fixture is not running (e.g.
// the test binary was started by hand: run it through ctest, or start the
// fixture with `ctest -R KafkaFixture.kafka3.start`).
absl::StatusOr<std::string> SharedKafka(absl::string_view fixture = "kafka3");

// `prefix` plus this process's id and a counter: topic and group names that
// no other test (or earlier run against the same cluster) uses.
std::string UniqueKafkaName(absl::string_view prefix);

// Creates `name` through librdkafka's Admin API and waits until every
// partition has a leader. `configs` are topic configs, e.g.
// {{"cleanup.policy", "compact"}}. The error names the topic and the cause
// (TOPIC_ALREADY_EXISTS included).
absl::Status CreateKafkaTopic(
    const std::string& bootstrap, const std::string& name, int partitions,
    int replication, const std::map<std::string, std::string>& configs = {});

// Sets `topic`'s configs to `configs` (the Admin API's AlterConfigs: the
// configs not given go back to the broker's defaults). The error names the
// topic and the cause.
absl::Status AlterKafkaTopicConfig(
    const std::string& bootstrap, const std::string& topic,
    const std::map<std::string, std::string>& configs);

// Deletes `topic` (the Admin API's DeleteTopics). The error names the topic
// and the cause.
absl::Status DeleteKafkaTopic(const std::string& bootstrap,
                              const std::string& topic);

// Deletes every record of `topic`'s partitions 0..partitions-1 (the Admin
// API's DeleteRecords up to each end): what retention does to records older
// than retention.ms. The error names the topic, the partition and the cause.
absl::Status DeleteKafkaRecords(const std::string& bootstrap,
                                const std::string& topic, int partitions);
// The same up to (before) the given offset of each partition named.
absl::Status DeleteKafkaRecordsBefore(const std::string& bootstrap,
                                      const std::string& topic,
                                      const std::map<int32_t, int64_t>& before);

// Sets group `group`'s committed offset of `topic`'s partitions
// 0..partitions-1 to `offset` (the Admin API's AlterConsumerGroupOffsets, as
// kafka-consumer-groups --reset-offsets does; the group must be empty).
absl::Status ResetKafkaGroupOffsets(const std::string& bootstrap,
                                    const std::string& group,
                                    const std::string& topic, int partitions,
                                    int64_t offset);

// The node id of the leader of `topic`'s `partition` (KafkaCluster's node
// ids are its indexes 0..size()-1).
absl::StatusOr<int> KafkaPartitionLeader(const std::string& bootstrap,
                                         const std::string& topic,
                                         int partition);

struct KafkaRecord {
  std::string key;
  std::string value;
  int32_t partition = 0;
  int64_t offset = 0;
};

// An idempotent librdkafka producer (acks=all, message.timeout.ms=60000)
// that lives across calls, e.g. through a broker outage.
class TestProducer {
 public:
  // `config` overrides librdkafka settings; the error names the bad one.
  static absl::StatusOr<std::unique_ptr<TestProducer>> Create(
      const std::string& bootstrap,
      const std::map<std::string, std::string>& config = {});
  ~TestProducer();
  TestProducer(const TestProducer&) = delete;
  TestProducer& operator=(const TestProducer&) = delete;

  // Produces one record per value (key "k<index>" unless `keys`, of the same
  // size, is given) and waits until every one is delivered or failed. The
  // error names the topic and the first failed delivery.
  absl::Status Produce(const std::string& topic,
                       const std::vector<std::string>& values,
                       const std::vector<std::string>& keys = {});

 private:
  struct Deliveries {
    size_t delivered = 0;
    size_t failed = 0;
    std::string first_error;
  };
  TestProducer() = default;
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* message,
                         void* opaque);

  rd_kafka_t* rk_ = nullptr;
  std::string bootstrap_;
  Deliveries deliveries_;
};

// A librdkafka consumer assigned every partition of one topic from the
// beginning (assigned, not subscribed: it commits nothing).
class TestConsumer {
 public:
  // read_committed hides aborted records and stops at the first open
  // transaction. The error names the topic if it does not exist.
  static absl::StatusOr<std::unique_ptr<TestConsumer>> Create(
      const std::string& bootstrap, const std::string& topic,
      bool read_committed);
  ~TestConsumer();
  TestConsumer(const TestConsumer&) = delete;
  TestConsumer& operator=(const TestConsumer&) = delete;

  // The next records, in arrival order (offset order within a partition),
  // until `count` arrived or `timeout` passed (then fewer).
  std::vector<KafkaRecord> Read(size_t count, absl::Duration timeout);

 private:
  TestConsumer() = default;
  rd_kafka_t* rk_ = nullptr;
};

// One-shot TestProducer::Produce with a new producer.
absl::Status ProduceToKafka(
    const std::string& bootstrap, const std::string& topic,
    const std::vector<std::string>& values,
    const std::vector<std::string>& keys = {},
    const std::map<std::string, std::string>& config = {});

// Reads `topic` from the beginning with a new TestConsumer until `count`
// records or `timeout`; the records sorted by partition, then offset.
absl::StatusOr<std::vector<KafkaRecord>> ConsumeFromKafka(
    const std::string& bootstrap, const std::string& topic, size_t count,
    absl::Duration timeout, bool read_committed);

struct KafkaClusterOptions {
  int nodes = 1;
  // Where the nodes keep their config, data and logs (node-<i>/); empty: a
  // fresh temporary directory removed with the cluster. A given directory is
  // left in place.
  std::string dir;
  // Extra or overriding server.properties for every node.
  std::map<std::string, std::string> broker_config;
  int heap_mb = 384;  // -Xmx of each node
  // The JVM of each node. false (tests): started fast and small, the serial
  // collector and the C1 compiler only (-XX:TieredStopAtLevel=1), which
  // starts the broker sooner but runs its hot paths (record validation,
  // CRCs, transaction markers) slower. true (benchmarks): the settings
  // Kafka's own scripts give a broker (kafka-run-class.sh: G1 with 20 ms
  // pauses, both compilers), and -Xms equal to -Xmx as kafka-server-start.sh.
  bool production_jvm = false;
  // How long Start() (and StartBroker) waits for every broker to serve.
  absl::Duration start_timeout = absl::Seconds(120);
};

class KafkaCluster {
 public:
  // Formats each node's storage (kafka.tools.StorageTool) with one new
  // cluster id and static `controller.quorum.voters`, starts the nodes and
  // waits until every broker is in the metadata and a topic replicated on all
  // of them has a full ISR. The nodes run with, besides the KRaft listeners:
  // offsets/transaction-state replication = n, transaction.state.log.min.isr
  // = min(n, 2), auto.create.topics.enable=false,
  // group.initial.rebalance.delay.ms=0, timed-out transactions aborted within
  // about a second of transaction.timeout.ms, the log cleaner on
  // (log.cleaner.backoff.ms=1000: compaction with a topic's segment.ms and
  // min.cleanable.dirty.ratio), a dead broker fenced after 6 s.
  // On failure (a node exits, or the timeout passes) the error carries every
  // node's log tail. Ports that turned out to be taken are retried.
  static absl::StatusOr<std::unique_ptr<KafkaCluster>> Start(
      KafkaClusterOptions options);

  // Kills every node (SIGKILL) and waits until they are gone; a temporary
  // directory is removed.
  ~KafkaCluster();
  KafkaCluster(const KafkaCluster&) = delete;
  KafkaCluster& operator=(const KafkaCluster&) = delete;

  // "127.0.0.1:p0,127.0.0.1:p1,…": every node's PLAINTEXT listener.
  const std::string& bootstrap() const { return bootstrap_; }
  int size() const { return static_cast<int>(nodes_.size()); }
  const std::string& dir() const { return dir_; }

  absl::Status CreateTopic(
      const std::string& name, int partitions, int replication,
      const std::map<std::string, std::string>& configs = {}) const;
  // The index (= node id) of the partition's leader.
  absl::StatusOr<int> LeaderOf(const std::string& topic, int partition) const;

  enum class StopMode {
    kGraceful,  // SIGTERM: controlled shutdown, leadership moves first
    kKill,      // SIGKILL: a crash; the controller notices after 6 s
  };
  // Stops node `i` and waits until its process is gone (a graceful stop that
  // takes over 60 s is finished with SIGKILL). Its data stays.
  absl::Status StopBroker(int i, StopMode mode = StopMode::kGraceful);
  // Starts stopped node `i` again with the same id, ports and data, and waits
  // until it is back in the metadata and in the ISR of every partition it
  // holds a replica of (so it has caught up).
  absl::Status StartBroker(int i);
  // Whether node `i`'s process is alive (one that exited is reaped).
  bool Running(int i);
  // Node `i`'s process (its JVM), -1 while it is stopped: e.g. for a
  // benchmark that reads the broker's CPU time from /proc.
  pid_t Pid(int i) const { return nodes_.at(i).pid; }

  // The last `lines` lines of node `i`'s server.log and of its stdout/stderr.
  std::string LogTail(int i, int lines = 30) const;

 private:
  struct Node {
    int id = 0;
    int port = 0;
    int controller_port = 0;
    std::string dir;
    pid_t pid = -1;
  };

  KafkaCluster() = default;
  absl::Status Format(const std::string& cluster_id);
  absl::Status Spawn(Node& node);
  absl::Status WaitUntilServing(const std::vector<int>& nodes,
                                absl::Duration timeout);
  // Waits up to `timeout` for node `i`'s process to end; false if it runs on.
  bool Reap(int i, absl::Duration timeout);
  std::string AllLogTails() const;

  std::unique_ptr<TempDir> owned_dir_;
  std::string dir_;
  std::string bootstrap_;
  KafkaClusterOptions options_;
  std::vector<Node> nodes_;
};

}  // namespace kpistream::testing

#endif  // KPISTREAM_TESTS_INTEGRATION_KAFKA_CLUSTER_H_
