#include <cstdio>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cmd/commands.h"
#include "cmd/embedded_broker.h"
#include "cmd/log.h"
#include "cmd/signals.h"

namespace kpistream {

int RunBrokerCommand(const BrokerCommandOptions& options) {
  std::vector<TopicSpec> topics;
  for (const std::string& text : options.topics) {
    auto spec = ParseTopicSpec(text);
    if (!spec.ok()) {
      std::fprintf(stderr, "kpistream broker: --topic: %s\n",
                   std::string(spec.status().message()).c_str());
      return 2;
    }
    for (const TopicSpec& earlier : topics) {
      if (earlier.name == spec->name) {
        std::fprintf(stderr,
                     "kpistream broker: --topic: topic \"%s\" given twice "
                     "(\"%s:%d\" and \"%s\"); give each topic once\n",
                     spec->name.c_str(), earlier.name.c_str(),
                     earlier.partitions, text.c_str());
        return 2;
      }
    }
    topics.push_back(*spec);
  }
  auto broker = EmbeddedBroker::Start(options.brokers, topics, options.port);
  if (!broker.ok()) {
    if (absl::IsUnavailable(broker.status())) {  // --port is taken
      KPI_LOG_ERROR(
          "broker: %s; pass another --port, or none for an ephemeral one",
          broker.status().message());
      return 2;
    }
    KPI_LOG_ERROR("broker: %s", broker.status().message());
    return 1;
  }
  // First line of stdout: the bootstrap address, for scripts and tests.
  std::printf("%s\n", (*broker)->bootstrap_servers().c_str());
  std::fflush(stdout);
  KPI_LOG_INFO(
      "broker: %d Kafka-protocol broker(s) on %s, topics [%s]; keeps ~5 MB per "
      "partition (development only). Ctrl-C to stop.",
      options.brokers, (*broker)->bootstrap_servers(),
      absl::StrJoin(options.topics, ", "));
  if (options.port > 0) {
    KPI_LOG_INFO(
        "broker: 127.0.0.1:%d forwards to the first broker: a fixed bootstrap "
        "address; clients then connect to the brokers' own 127.0.0.1 ports",
        options.port);
  }
  while (!StopRequested()) absl::SleepFor(absl::Milliseconds(50));
  KPI_LOG_INFO("broker: stopping");
  return 0;
}

}  // namespace kpistream
