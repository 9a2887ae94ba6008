// TcpForwarder: accepts TCP connections on a fixed local address and relays
// each one, both ways, to a target address.
//
// `kpistream broker --port N` puts one in front of the embedded broker:
// librdkafka 2.0.2's mock cluster binds its listeners to ephemeral loopback
// ports and has no option to choose one (rd_kafka_mock_cluster_new() takes a
// broker count only), so 127.0.0.1:N is a fixed *bootstrap* address. As with
// any Kafka cluster, a client then connects to the brokers' advertised
// addresses from the Metadata response: the mock brokers' own 127.0.0.1
// ports. That works for clients on the same host; it does not make the
// broker reachable through a port mapping (e.g. into a container).
#ifndef KPISTREAM_CMD_TCP_FORWARDER_H_
#define KPISTREAM_CMD_TCP_FORWARDER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace kpistream {

class TcpForwarder {
 public:
  // Listens on `listen` ("host:port", IPv4; port 0 picks a free one) and
  // forwards every connection to `target` ("host:port", IPv4). A busy or
  // invalid address is an error naming it. A connection the target refuses
  // is closed at once.
  static absl::StatusOr<std::unique_ptr<TcpForwarder>> Start(
      const std::string& listen, const std::string& target);
  // Stops accepting, closes every connection and waits for its threads.
  ~TcpForwarder();

  // The bound port (useful with port 0).
  int port() const;

 private:
  TcpForwarder() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpistream

#endif  // KPISTREAM_CMD_TCP_FORWARDER_H_
