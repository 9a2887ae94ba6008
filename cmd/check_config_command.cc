#include <algorithm>
#include <cstdio>
#include <vector>

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
  // Errors and warnings together, in the file's order (those of no line
  // last, as LoadConfig orders its errors), as an editor would walk them.
  std::vector<const ConfigError*> all;
  for (const auto* list : {&result.errors, &result.warnings}) {
    for (const ConfigError& e : *list) all.push_back(&e);
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const ConfigError* a, const ConfigError* b) {
                     return InFileOrder(*a, *b);
                   });
  for (const ConfigError* e : all) {
    std::fprintf(stderr, "%s\n", e->ToString(path).c_str());
  }
  if (result.ok()) {
    std::printf("%s: OK\n", path.c_str());
    return 0;
  }
  std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), result.errors.size(),
               result.errors.size() == 1 ? "" : "s");
  return 2;
}

}  // namespace kpistream
