// The one place for librdkafka client settings (issue 11): the defaults every
// kpistream client starts from, the user's `kafka.properties` applied on top
// (passed as-is; security.protocol, sasl.*, ssl.* ...), and the settings the
// engine's guarantees depend on applied last, so a property cannot break
// them. Errors name the property, never its value (it may be a secret).
#ifndef KPISTREAM_KAFKA_CLIENT_H_
#define KPISTREAM_KAFKA_CLIENT_H_

#include <librdkafka/rdkafka.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kpistream::kafka {

using Properties = std::map<std::string, std::string>;

// Applies `properties` to `conf` (plugin.library.paths first: the properties
// its plugins register are unknown before); the error names the property.
absl::Status ApplyProperties(rd_kafka_conf_t* conf,
                             const Properties& properties);

// What a client is made of: the defaults, the user's properties, the fixed
// settings, in that order of precedence (last wins).
struct ClientSettings {
  ClientSettings() = default;
  ClientSettings(rd_kafka_type_t type, std::string brokers,
                 std::string client_id, Properties user)
      : type(type),
        brokers(std::move(brokers)),
        client_id(std::move(client_id)),
        user(std::move(user)) {}

  // The client it configures: `user` properties librdkafka defines for the
  // other type only (session.timeout.ms for a producer, linger.ms for a
  // consumer) are left out instead of warned about by every client.
  rd_kafka_type_t type = RD_KAFKA_CONSUMER;
  std::string brokers;
  std::string client_id = "kpistream";
  Properties defaults;
  Properties user;   // config `kafka.properties`
  Properties fixed;  // what the engine's guarantees need
  // Installs the owner's callbacks (rebalance, error, delivery) and their
  // opaque on the configuration; may be empty.
  std::function<void(rd_kafka_conf_t*)> callbacks;
};

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
// An owned librdkafka client handle.
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;

// Why librdkafka refuses the property `name` = `value` ("" when it takes it):
// an unknown name or a value it cannot parse, as a client would be told.
// Not for configs with plugin.library.paths (their plugins' properties are
// known once loaded; the config check leaves those alone).
std::string PropertyError(const std::string& name, const std::string& value);

// A configuration with every setting applied, and the client-wide hooks
// (the log callback) installed.
absl::StatusOr<ConfPtr> NewConf(const ClientSettings& settings);

// The timeout argument of rd_kafka_seek_partitions() that waits `timeout`:
// librdkafka before 2.1.0 reads it in microseconds (its issue #4230).
int SeekTimeoutArgument(absl::Duration timeout);

// Creates a client of `type` from `conf` (which it takes over). `what`
// names it in the error ("consumer").
absl::StatusOr<HandlePtr> NewClient(rd_kafka_type_t type, ConfPtr conf,
                                    const std::string& what);

// NewConf(settings) with settings.callbacks installed, then NewClient.
absl::StatusOr<HandlePtr> NewClient(const ClientSettings& settings,
                                    const std::string& what);

}  // namespace kpistream::kafka

#endif  // KPISTREAM_KAFKA_CLIENT_H_
