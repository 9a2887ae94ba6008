// What can be checked of deploy/ without a Docker engine: Prometheus and
// Alertmanager accept their configs, kpistream accepts its own, and every
// manifest is valid YAML.
#include <string>

#include "gtest/gtest.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

TEST(DeployTest, PrometheusConfigIsValid) {
  CommandResult r =
      RunCommand({"promtool", "check", "config", "--syntax-only",
                  SourceDir() + "/deploy/prometheus/prometheus.yml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(DeployTest, AlertmanagerConfigIsValid) {
  CommandResult r =
      RunCommand({"amtool", "check-config",
                  SourceDir() + "/deploy/alertmanager/alertmanager.yml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(DeployTest, KpistreamConfigOfTheStackIsValid) {
  CommandResult r =
      RunCommand({KpistreamBinary(), "check-config",
                  SourceDir() + "/deploy/kpistream/kpistream.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(DeployTest, EveryManifestIsYaml) {
  // Debian's python3 with python3-yaml (installed by .ci/setup).
  CommandResult r = RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys, yaml\n"
       "for path in sys.argv[1:]:\n"
       "    docs = [d for d in yaml.safe_load_all(open(path)) if d is not "
       "None]\n"
       "    assert docs, path\n"
       "    print(path, len(docs))\n",
       SourceDir() + "/deploy/compose.yaml",
       SourceDir() + "/deploy/k8s/kpistream.yaml",
       SourceDir() +
           "/deploy/grafana/provisioning/datasources/prometheus.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace kpistream::testing
