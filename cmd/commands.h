// The subcommands of the kpistream binary. Each returns the process exit
// code: 0 success, 2 bad usage or config, 1 runtime failure (SPEC §7).
#ifndef KPISTREAM_CMD_COMMANDS_H_
#define KPISTREAM_CMD_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace kpistream {

struct BrokerCommandOptions {
  int brokers = 1;
  std::vector<std::string> topics;  // "NAME:PARTITIONS"
  int port = 0;  // a fixed bootstrap port on 127.0.0.1; 0: ephemeral
};
int RunBrokerCommand(const BrokerCommandOptions& options);

struct LoadgenCommandOptions {
  std::string brokers;
  std::string topic;
  std::string format = "protobuf";  // protobuf | json
  double rate = 1000;  // events per second (wall clock); 0: as fast as possible
  // The visitor population; 0: derived from the event-time rate, so that a
  // visitor returns about every 4 h of event time (10,000 to 1,000,000).
  int64_t visitors = 0;
  int64_t events = 0;    // stop after this many (0: use duration)
  std::string duration;  // e.g. "30s"; empty with events==0: until stopped
  uint64_t seed = 1;
  std::string start_time;  // RFC 3339 event-time start; empty: now
  double event_rate =
      0;  // events per second of event time; 0: = rate (or 1000)
  // Hostile traffic, each a share of generated events (0..1):
  double duplicates = 0;  // the same record sent again
  double late =
      0;  // an extra copy with event time 1 h in the past, new event_id
  double bots = 0;     // the event's user agent replaced by a crawler's
  double garbage = 0;  // an extra record of random bytes
  // Arrival disorder: each event is produced up to this much event time
  // after its turn (e.g. "20s"); empty or 0: in event-time order.
  std::string disorder;
  // The record key: "visitor" (its visitor_id, as SPEC §2 asks), "none"
  // (null keys: round-robin / sticky partitioning) or "random".
  std::string key = "visitor";
  // The traffic's shape (TrafficOptions): events without a user agent, and
  // landing pages' campaign parameters only in their page URL.
  bool no_user_agent = false;
  bool campaign_in_url = false;
  bool session_ids = false;
};
int RunLoadgenCommand(const LoadgenCommandOptions& options);

// The config checks `run` and `check-config` share beyond the config's own:
// kafka.properties as librdkafka takes them (ConfigChecks).
const ConfigChecks& KpistreamConfigChecks();

int RunCheckConfigCommand(const std::string& path);

// Writes the generated Prometheus rules for the config into `out_dir`.
int RunRulesCommand(const std::string& config_path, const std::string& out_dir);

struct RunCommandOptions {
  std::string config_path;
  // How often a one-line summary is logged: a duration ("30s"), "0": never.
  std::string summary_interval = "30s";
};
int RunEngineCommand(const RunCommandOptions& options);

struct DemoCommandOptions {
  double rate = 2000;
  std::string listen = "127.0.0.1:9464";
  std::string duration;  // empty: until Ctrl-C
};
int RunDemoCommand(const DemoCommandOptions& options);

}  // namespace kpistream

#endif  // KPISTREAM_CMD_COMMANDS_H_
