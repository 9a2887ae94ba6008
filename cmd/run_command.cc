#include <cstdio>

#include "cmd/commands.h"
#include "engine/engine.h"
#include "cmd/log.h"
#include "cmd/signals.h"
#include "config/config.h"

namespace kpistream {

int RunEngineCommand(const RunCommandOptions& options) {
  ConfigResult loaded = LoadConfigFile(options.config_path);
  if (!loaded.ok()) {
    for (const ConfigError& error : loaded.errors) {
      std::fprintf(stderr, "%s\n", error.ToString(options.config_path).c_str());
    }
    std::fprintf(stderr,
                 "kpistream run: %s is not valid (see "
                 "'kpistream check-config')\n",
                 options.config_path.c_str());
    return 2;
  }
  auto engine = Engine::Create(loaded.config, StopRequested);
  if (!engine.ok()) {
    KPI_LOG_ERROR("kpistream run: %s", engine.status().message());
    return engine.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  absl::Status status = (*engine)->Run();
  if (!status.ok()) {
    KPI_LOG_ERROR("kpistream run: %s", status.message());
    return 1;
  }
  return 0;
}

}  // namespace kpistream
