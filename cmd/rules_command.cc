#include <cstdio>

#include "cmd/commands.h"
#include "config/config.h"
#include "export/rules_generator.h"

namespace kpistream {

int RunRulesCommand(const std::string& config_path,
                    const std::string& out_dir) {
  ConfigResult loaded = LoadConfigFile(config_path);
  if (!loaded.ok()) {
    for (const ConfigError& error : loaded.errors) {
      std::fprintf(stderr, "%s\n", error.ToString(config_path).c_str());
    }
    return 2;
  }
  absl::Status status = WriteRules(loaded.config, out_dir);
  if (!status.ok()) {
    std::fprintf(stderr, "kpistream rules: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  std::printf(
      "wrote %s/kpistream-recording.rules.yml (%zu recording rules), "
      "kpistream-alerts.rules.yml and kpistream-alerts.test.yml (promtool test "
      "rules)\n",
      out_dir.c_str(), RatioRecordingRules().size());
  return 0;
}

}  // namespace kpistream
