#include <atomic>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cmd/commands.h"
#include "cmd/log.h"
#include "cmd/run_summary.h"
#include "cmd/signals.h"
#include "config/config.h"
#include "engine/engine.h"

namespace kpistream {
namespace {

// How long the teardown after the engine's last commit may take: closing
// each consumer (up to 5 s of its own), the producers, the local store.
constexpr absl::Duration kTeardownLimit = absl::Seconds(30);

}  // namespace

int RunEngineCommand(const RunCommandOptions& options) {
  absl::Duration summary_interval = absl::ZeroDuration();
  if (options.summary_interval != "0") {
    auto parsed = ParseDurationString(options.summary_interval);
    if (!parsed.ok()) {
      std::fprintf(stderr, "kpistream run: --summary-interval: %s (0: off)\n",
                   std::string(parsed.status().message()).c_str());
      return 2;
    }
    summary_interval = *parsed;
  }
  ConfigResult loaded =
      LoadConfigFile(options.config_path, KpistreamConfigChecks());
  if (!loaded.ok()) {
    for (const ConfigError& error : loaded.errors) {
      std::fprintf(stderr, "%s\n", error.ToString(options.config_path).c_str());
    }
    // A file that could not be read was said: no config to check.
    if (!loaded.unreadable) {
      std::fprintf(stderr,
                   "kpistream run: %s is not valid (see "
                   "'kpistream check-config')\n",
                   options.config_path.c_str());
    }
    return 2;
  }
  RedactInLogs(loaded.expanded_secrets);
  for (const ConfigError& warning : loaded.warnings) {
    KPI_LOG_WARN("%s", warning.ToString(options.config_path));
  }
  auto engine = Engine::Create(loaded.config, StopRequested);
  if (absl::IsCancelled(engine.status())) {
    // SIGTERM/SIGINT while starting (e.g. brokers not answering): nothing
    // was consumed, so nothing is left to commit.
    KPI_LOG_INFO("kpistream run: stopped before it started: %s",
                 engine.status().message());
    return 0;
  }
  if (!engine.ok()) {
    KPI_LOG_ERROR("kpistream run: %s", engine.status().message());
    return engine.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::atomic<bool> done{false};
  std::thread summaries;
  if (summary_interval > absl::ZeroDuration()) {
    summaries = std::thread([&engine, summary_interval, &done] {
      LogRunSummaries([&engine] { return (*engine)->Snapshot(); },
                      summary_interval, done);
    });
  }
  absl::Status status = (*engine)->Run();
  done = true;
  if (summaries.joinable()) summaries.join();
  const int code = status.ok() ? 0 : 1;
  if (!status.ok()) KPI_LOG_ERROR("kpistream run: %s", status.message());
  // What is left is letting the clients go (the engine's destructor, at
  // the return): bounded, whatever librdkafka does.
  ExitIfStillRunningAfter(
      kTeardownLimit, code,
      absl::StrCat("kpistream run: letting the Kafka clients go took more "
                   "than ",
                   absl::FormatDuration(kTeardownLimit),
                   " after the engine stopped (librdkafka's destroy did not "
                   "return); exiting with ",
                   code, " all the same (what the engine said above stands)"));
  return code;
}

}  // namespace kpistream
