// SPEC §6 end to end with generated traffic: `kpistream broker`, `kpistream
// run` with two targets, `kpistream loadgen`, and a real `prometheus` that
// loads what `kpistream rules` generated and scrapes the engine. The missed
// target's alert reaches "firing" through Prometheus' HTTP API, the met one
// never fires, and the engine's own kpi_* evaluation agrees with both.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

TEST(TargetsE2E, LoadgenTrafficFiresTheMissedTargetOnly) {
  BrokerProcess broker({"web.events:2", "web.sessions:1", "web.kpi:1",
                        "web.deadletter:1", "targets-changelog:2"});
  ASSERT_FALSE(broker.bootstrap().empty()) << broker.process().Stderr();
  TempDir dir;
  const int metrics_port = FreePort();
  // Generated traffic bounces in roughly a third to a half of its sessions
  // and engages the rest: a 2 % bounce ceiling is missed, a 5 % engagement
  // floor is met, whatever the seed.
  const std::string config =
      dir.Write("kpistream.yaml",
                absl::StrCat(R"(
kafka: {brokers: ')",
                             broker.bootstrap(), R"(', group_id: targets}
inputs: [{topic: web.events, format: protobuf}]
processing: {max_out_of_orderness: 5s, allowed_lateness: 0s, idle_partition_timeout: 1s}
metrics: {listen: '127.0.0.1:)",
                             metrics_port, R"('}
targets:
  - name: bounce_ceiling
    objective: "Keep the bounce rate under 2%"
    kpi: bounce_rate
    value: 0.02
    window: 1h
    for: 5s
    severity: page
    min_sessions: 10
  - name: engagement_floor
    objective: "Engage at least 5% of sessions"
    kpi: engagement_rate
    value: 0.05
    window: 1h
    for: 5s
    min_sessions: 10
)"));
  CommandResult rules = RunCommand({KpistreamBinary(), "rules", "--config",
                                    config, "--out", dir.path() + "/rules"});
  ASSERT_EQ(rules.exit_code, 0) << rules.err;
  Subprocess engine({KpistreamBinary(), "run", "--config", config});
  ASSERT_TRUE(WaitFor([&] { return HttpGet(metrics_port, "/metrics").ok(); },
                      absl::Seconds(20)))
      << engine.Stderr();
  int prom_port = 0;
  std::unique_ptr<Subprocess> prometheus = StartPrometheus(
      dir, metrics_port, dir.path() + "/rules/*.rules.yml", &prom_port);

  // 200x event time from 4 h ago: sessions close (30 min of event time)
  // within seconds, and no event is in the future.
  const std::string start = absl::FormatTime(
      "%Y-%m-%dT%H:%M:%SZ", absl::Now() - absl::Hours(4), absl::UTCTimeZone());
  Subprocess loadgen({KpistreamBinary(), "loadgen", "--brokers",
                      broker.bootstrap(), "--topic", "web.events", "--rate",
                      "2000", "--event-rate", "10", "--visitors", "100000",
                      "--duration", "60s", "--start-time", start});

  std::string alerts;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto r = HttpGet(prom_port, "/api/v1/alerts");
        alerts = r.ok() ? *r : r.status().ToString();
        return absl::StrContains(alerts, "\"state\":\"firing\"");
      },
      absl::Seconds(45)))
      << alerts << "\n"
      << HttpGet(metrics_port, "/metrics").value_or("") << engine.Stderr();
  // Give the met target every chance to fire too.
  absl::SleepFor(absl::Seconds(5));
  alerts = HttpGet(prom_port, "/api/v1/alerts").value_or("");
  EXPECT_TRUE(absl::StrContains(alerts, "\"alertname\":\"KpiOffTarget\""))
      << alerts;
  EXPECT_TRUE(absl::StrContains(alerts, "\"target\":\"bounce_ceiling\""))
      << alerts;
  EXPECT_TRUE(absl::StrContains(alerts, "Keep the bounce rate under 2%"))
      << alerts;
  EXPECT_FALSE(absl::StrContains(alerts, "engagement_floor")) << alerts;

  // The engine's own event-time evaluation says the same.
  const std::string metrics = HttpGet(metrics_port, "/metrics").value_or("");
  EXPECT_EQ(
      MetricValue(metrics, "kpi_on_track", {{"target", "bounce_ceiling"}}), 0)
      << metrics;
  EXPECT_EQ(
      MetricValue(metrics, "kpi_on_track", {{"target", "engagement_floor"}}), 1)
      << metrics;
  const double bounce =
      MetricValue(metrics, "kpi_actual_value", {{"target", "bounce_ceiling"}});
  const double engaged = MetricValue(metrics, "kpi_actual_value",
                                     {{"target", "engagement_floor"}});
  EXPECT_GT(bounce, 0.02);
  EXPECT_GT(engaged, 0.05);
  EXPECT_NEAR(bounce + engaged, 1.0, 1e-9);  // GA4: bounce = not engaged
  loadgen.Stop(SIGTERM, absl::Seconds(10));
  EXPECT_EQ(prometheus->Stop(SIGTERM, absl::Seconds(10)), 0);
  EXPECT_EQ(engine.Stop(SIGTERM, absl::Seconds(30)), 0) << engine.Stderr();
}

}  // namespace
}  // namespace kpistream::testing
