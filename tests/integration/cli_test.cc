// The binary as a user runs it: --help everywhere, exit codes, the broker's
// first line, loadgen reproducibility read back with kcat.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

TEST(CliTest, HelpForTheBinaryAndEverySubcommand) {
  CommandResult top = RunCommand({KpistreamBinary(), "--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* command :
       {"run", "demo", "broker", "loadgen", "check-config"}) {
    EXPECT_TRUE(absl::StrContains(top.out, command)) << command;
    CommandResult r = RunCommand({KpistreamBinary(), command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_TRUE(
        absl::StrContains(r.out, "Usage: kpistream " + std::string(command)))
        << r.out;
  }
}

TEST(CliTest, BadUsageExitsTwo) {
  EXPECT_EQ(RunCommand({KpistreamBinary()}).exit_code, 2);
  EXPECT_EQ(RunCommand({KpistreamBinary(), "run"}).exit_code, 2);
  EXPECT_EQ(
      RunCommand({KpistreamBinary(), "broker", "--topic", "t:0"}).exit_code, 2);
  EXPECT_EQ(RunCommand({KpistreamBinary(), "loadgen", "--brokers",
                        "127.0.0.1:1", "--topic", "t", "--format", "xml"})
                .exit_code,
            2);
}

TEST(CliTest, CheckConfigExitCodes) {
  TempDir dir;
  const std::string good =
      dir.Write("good.yaml", "inputs: [{topic: web.events}]\n");
  CommandResult ok = RunCommand({KpistreamBinary(), "check-config", good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const std::string bad = dir.Write(
      "bad.yaml", "inputs: [{topic: web.events}]\nsessions: {timeout: 5m}\n");
  CommandResult r = RunCommand({KpistreamBinary(), "check-config", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(
      absl::StrContains(r.err, bad + ":2:12: sessions.timeout: unknown key"))
      << r.err;
  EXPECT_EQ(RunCommand({KpistreamBinary(), "run", "--config", bad}).exit_code,
            2);
}

TEST(CliTest, BusyMetricsPortIsARuntimeErrorNamingTheAddress) {
  BrokerProcess broker({"web.events:1"});
  ASSERT_FALSE(broker.bootstrap().empty());
  TempDir dir;
  const int port = FreePort();
  const std::string config = dir.Write(
      "c.yaml",
      "kafka: {brokers: '" + broker.bootstrap() +
          "'}\ninputs: [{topic: web.events}]\nmetrics: {listen: '127.0.0.1:" +
          std::to_string(port) + "'}\n");
  Subprocess first({KpistreamBinary(), "run", "--config", config});
  ASSERT_TRUE(WaitFor([&] { return HttpGet(port, "/metrics").ok(); },
                      absl::Seconds(20)));
  CommandResult second =
      RunCommand({KpistreamBinary(), "run", "--config", config});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_TRUE(
      absl::StrContains(second.err, "127.0.0.1:" + std::to_string(port)))
      << second.err;
  EXPECT_EQ(first.Stop(SIGTERM, absl::Seconds(10)), 0) << first.Stderr();
}

std::vector<std::string> ConsumeAll(const std::string& brokers,
                                    const std::string& topic) {
  CommandResult r = RunCommand({"kcat", "-b", brokers, "-C", "-t", topic, "-o",
                                "beginning", "-e", "-q", "-f", "%k %s\n"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  return lines;
}

TEST(CliTest, LoadgenIsReproducibleAndKeyedByVisitor) {
  BrokerProcess broker({"a:1", "b:1", "c:1"});
  ASSERT_FALSE(broker.bootstrap().empty()) << broker.process().Stderr();
  auto loadgen = [&](const std::string& topic, const std::string& seed) {
    CommandResult r = RunCommand(
        {KpistreamBinary(), "loadgen", "--brokers", broker.bootstrap(),
         "--topic", topic, "--format", "json", "--rate", "0", "--events", "500",
         "--seed", seed, "--start-time", "2026-01-01T00:00:00Z"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(absl::StrContains(r.out, "produced 500 events")) << r.out;
  };
  loadgen("a", "7");
  loadgen("b", "7");
  loadgen("c", "8");
  const std::vector<std::string> a = ConsumeAll(broker.bootstrap(), "a");
  const std::vector<std::string> b = ConsumeAll(broker.bootstrap(), "b");
  const std::vector<std::string> c = ConsumeAll(broker.bootstrap(), "c");
  ASSERT_EQ(a.size(), 500u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (const std::string& line : a) {
    const std::string key = line.substr(0, line.find(' '));
    EXPECT_TRUE(absl::StrContains(line, "\"visitorId\":\"" + key + "\""))
        << line;
  }
  EXPECT_EQ(broker.process().Stop(SIGTERM, absl::Seconds(10)), 0);
}

}  // namespace
}  // namespace kpistream::testing

namespace kpistream::testing {
namespace {

TEST(DemoTest, RunsWithoutSetupShowsKpisAndStopsOnCtrlC) {
  Subprocess demo({KpistreamBinary(), "demo", "--listen", "127.0.0.1:0"});
  auto banner = demo.ReadLine(absl::Seconds(20));
  ASSERT_TRUE(banner.ok()) << demo.Stderr();
  // "... /metrics on http://127.0.0.1:PORT/metrics, ..."
  const size_t at = banner->find("http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << *banner;
  const int port = std::stoi(banner->substr(at + 17));
  // The summary line shows closed sessions once event time has moved on.
  bool closed_sessions = false;
  for (int i = 0; i < 30 && !closed_sessions; ++i) {
    auto line = demo.ReadLine(absl::Seconds(10));
    ASSERT_TRUE(line.ok()) << demo.Stderr();
    EXPECT_TRUE(absl::StrContains(*line, "events/s")) << *line;
    closed_sessions = !absl::StrContains(*line, "| sessions       0 |");
  }
  ASSERT_TRUE(closed_sessions);
  auto page = HttpGet(port, "/metrics");
  ASSERT_TRUE(page.ok());
  EXPECT_GT(MetricValue(*page, "web_sessions_closed_total"), 0);
  EXPECT_GT(MetricValue(*page, "web_revenue_total"), 0);
  EXPECT_EQ(demo.Stop(SIGINT, absl::Seconds(10)), 0) << demo.Stderr();
}

}  // namespace
}  // namespace kpistream::testing
