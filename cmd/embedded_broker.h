// EmbeddedBroker: a Kafka-protocol broker inside this process, for
// development, tests and the demo. It is librdkafka's mock cluster: it speaks
// the Kafka protocol on ephemeral loopback ports, supports consumer groups and
// transactions, and keeps only ~5 MB per partition (older data is dropped).
// Production users run real Kafka; nothing else in the engine depends on it.
#ifndef KPISTREAM_CMD_EMBEDDED_BROKER_H_
#define KPISTREAM_CMD_EMBEDDED_BROKER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kpistream {

struct TopicSpec {
  std::string name;
  int partitions = 1;
};

// Parses "NAME:PARTITIONS" (or "NAME", 1 partition).
absl::StatusOr<TopicSpec> ParseTopicSpec(const std::string& text);

class EmbeddedBroker {
 public:
  // `port` > 0: the bootstrap address is 127.0.0.1:`port`, a TcpForwarder
  // to the first broker (the mock cluster cannot choose its own ports, see
  // cmd/tcp_forwarder.h); clients then talk to the brokers' own ports. A
  // busy port is an UnavailableError naming it.
  static absl::StatusOr<std::unique_ptr<EmbeddedBroker>> Start(
      int brokers, const std::vector<TopicSpec>& topics, int port = 0);
  ~EmbeddedBroker();

  // Comma-separated host:port list for bootstrap.servers.
  const std::string& bootstrap_servers() const { return bootstraps_; }

  absl::Status CreateTopic(const TopicSpec& topic);

  // The next request of Kafka API `api_key` (0: Produce) is answered with
  // `error` (a librdkafka rd_kafka_resp_err_t), as a broker refusing it
  // would: for tests of the engine's failure paths.
  void RefuseNextRequest(int16_t api_key, int error);
  // The next request of Kafka API `api_key` that broker `broker_id` (1 to
  // the broker count) receives is answered, successfully, `delay` late: a
  // slow broker, for tests.
  void DelayNextResponse(int32_t broker_id, int16_t api_key,
                         absl::Duration delay);

 private:
  EmbeddedBroker() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string bootstraps_;
};

}  // namespace kpistream

#endif  // KPISTREAM_CMD_EMBEDDED_BROKER_H_
