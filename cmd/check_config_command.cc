#include <cstdio>

#include "cmd/commands.h"
#include "config/config.h"
#include "kafka/client.h"

namespace kpistream {

const ConfigChecks& KpistreamConfigChecks() {
  static const ConfigChecks* checks =
      new ConfigChecks{.kafka_property = &kafka::PropertyError};
  return *checks;
}

int RunCheckConfigCommand(const std::string& path) {
  ConfigResult result = LoadConfigFile(path, KpistreamConfigChecks());
  for (const ConfigError& warning : result.warnings) {
    std::fprintf(stderr, "%s\n", warning.ToString(path).c_str());
  }
  if (result.ok()) {
    std::printf("%s: OK\n", path.c_str());
    return 0;
  }
  for (const ConfigError& error : result.errors) {
    std::fprintf(stderr, "%s\n", error.ToString(path).c_str());
  }
  std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), result.errors.size(),
               result.errors.size() == 1 ? "" : "s");
  return 2;
}

}  // namespace kpistream
