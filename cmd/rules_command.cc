#include <cstdio>
#include <filesystem>
#include <system_error>

#include "cmd/commands.h"
#include "config/config.h"
#include "export/rules_generator.h"

namespace kpistream {

int RunRulesCommand(const std::string& config_path,
                    const std::string& out_dir) {
  // The rules need no broker, secret or state directory: `${VAR}` is left
  // as written (ConfigChecks::expand_variables).
  ConfigChecks checks;
  checks.expand_variables = false;
  ConfigResult loaded = LoadConfigFile(config_path, checks);
  if (!loaded.ok()) {
    for (const ConfigError& error : loaded.errors) {
      std::fprintf(stderr, "%s\n", error.ToString(config_path).c_str());
    }
    return 2;
  }
  // An --out that names a file is bad usage (2); a directory that cannot
  // be written is a failure (1).
  std::error_code error;
  if (std::filesystem::exists(out_dir, error) &&
      !std::filesystem::is_directory(out_dir, error)) {
    std::fprintf(stderr,
                 "kpistream rules: --out %s is a file; give a directory (made "
                 "if missing)\n",
                 out_dir.c_str());
    return 2;
  }
  absl::Status status = WriteRules(loaded.config, out_dir);
  if (!status.ok()) {
    std::fprintf(stderr, "kpistream rules: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  std::printf(
      "wrote into %s:\n"
      "  kpistream-recording.rules.yml  %zu recording rules (ratio KPIs by "
      "site, 5m/1h/1d)\n"
      "  kpistream-alerts.rules.yml     alerts of %zu target(s)\n"
      "  kpistream-alerts.test.yml      their tests: promtool test rules "
      "kpistream-alerts.test.yml\n"
      "  kpistream-engine.rules.yml     alerts on kpistream itself (job "
      "%s)\n"
      "  kpistream-engine.test.yml      their tests: promtool test rules "
      "kpistream-engine.test.yml\n"
      "  kpistream-dashboard.json       Grafana dashboard (import, or "
      "provision from a file)\n"
      "  kpistream-prometheusrule.yaml  the rules as a prometheus-operator "
      "PrometheusRule\n"
      "  alertmanager.example.yml       example routing by severity\n",
      out_dir.c_str(), RatioRecordingRules().size(),
      loaded.config.targets.size(), loaded.config.rules.job.c_str());
  return 0;
}

}  // namespace kpistream
