// The binary as a user runs it: --help everywhere (with examples), exit
// codes, the broker's first line and --port, the demo's busy port, loadgen
// reproducibility read back with kcat.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
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

TEST(CliTest, HelpTeachesWithExamples) {
  const std::map<std::string, std::vector<std::string>> expected = {
      {"run", {"--summary-interval", "--log-format", "Examples:"}},
      {"demo", {"--listen 127.0.0.1:0", "--log-format", "Examples:"}},
      {"broker", {"--port 9092", "kcat -b 127.0.0.1:9092 -L", "Examples:"}},
      {"loadgen",
       {"--event-rate", "--log-format", "Examples:", "in [0 - 1]=0",
        "none by default"}},
      {"check-config", {"kpistream check-config kpistream.yaml", "Examples:"}},
      {"rules", {"promtool test rules", "Examples:"}}};
  for (const auto& [command, needles] : expected) {
    CommandResult r = RunCommand({KpistreamBinary(), command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    for (const std::string& needle : needles) {
      EXPECT_TRUE(absl::StrContains(r.out, needle))
          << command << " --help lacks " << needle << ":\n"
          << r.out;
    }
    // Its own examples, after its usage: not the binary's (every command's
    // examples and "Run 'kpistream COMMAND --help'" in check-config's and
    // rules' help; rules' examples came before its usage).
    EXPECT_FALSE(absl::StrContains(r.out, "kpistream COMMAND --help"))
        << command << ":\n"
        << r.out;
    EXPECT_LT(r.out.find("Usage: "), r.out.find("Examples:"))
        << command << ":\n"
        << r.out;
  }
  CommandResult top = RunCommand({KpistreamBinary(), "--help"});
  EXPECT_TRUE(absl::StrContains(top.out, "--log-format")) << top.out;
  EXPECT_EQ(RunCommand({KpistreamBinary(), "--log-format", "yaml", "broker"})
                .exit_code,
            2);
  EXPECT_EQ(RunCommand({KpistreamBinary(), "run", "--config", "x.yaml",
                        "--summary-interval", "often"})
                .exit_code,
            2);
}

// Counts and rates that mean nothing at or below 0 are usage errors naming
// the option (loadgen --events 0 or -5 ran without end, demo --rate -5
// generated nothing). The broker address is never reached.
TEST(CliTest, CountsAndRatesBelowOneAreUsageErrors) {
  const std::vector<std::string> loadgen = {
      KpistreamBinary(), "loadgen", "--brokers", "127.0.0.1:9", "--topic", "t"};
  for (const auto& [option, value] :
       std::vector<std::pair<std::string, std::string>>{{"--events", "0"},
                                                        {"--events", "-5"},
                                                        {"--visitors", "0"},
                                                        {"--event-rate", "-3"},
                                                        {"--rate", "-5"}}) {
    std::vector<std::string> argv = loadgen;
    if (option == "--rate") argv = {KpistreamBinary(), "demo"};
    argv.push_back(option);
    argv.push_back(value);
    CommandResult r = RunCommand(argv, "", absl::Seconds(20));
    EXPECT_EQ(r.exit_code, 2) << option << " " << value << ": " << r.err;
    EXPECT_TRUE(absl::StrContains(
        r.out + r.err,
        absl::StrCat(option, ": must be a number greater than 0, got ", value)))
        << r.out << r.err;
  }
}

// The binary allocates with jemalloc (cmd/allocator.cc), with the options
// README gives: a build that lost the allocator, or its options, fails here.
TEST(CliTest, VersionNamesTheAllocatorAndItsOptions) {
  CommandResult r = RunCommand({KpistreamBinary(), "--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "kpistream ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "allocator: jemalloc 5.")) << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.out, "(background_thread on, dirty_decay_ms 1000, muzzy_decay_ms 0)"))
      << r.out;
}

TEST(CliTest, BadUsageExitsTwo) {
  EXPECT_EQ(RunCommand({KpistreamBinary()}).exit_code, 2);
  // A command mistyped is named, with the commands there are.
  for (const char* typed : {"rnu", "bogus"}) {
    const CommandResult r =
        RunCommand({KpistreamBinary(), typed, "--config", "x.yaml"});
    EXPECT_EQ(r.exit_code, 2) << typed;
    EXPECT_THAT(r.err, ::testing::HasSubstr(std::string("unknown command \"") +
                                            typed + "\""));
    EXPECT_THAT(r.err, ::testing::HasSubstr("run, demo, broker"));
  }
  // An option the binary does not have is named (it said only that a
  // command is required: an audit).
  for (const char* typed : {"-v", "--bogus"}) {
    const CommandResult r = RunCommand({KpistreamBinary(), typed});
    EXPECT_EQ(r.exit_code, 2) << typed;
    EXPECT_THAT(r.err, ::testing::HasSubstr(std::string("unknown option \"") +
                                            typed + "\""));
  }
  // No command: the commands there are; a command's missing option: named
  // with the command, and one hint, that command's help (there were two
  // hints, and "file is required" named no command).
  CommandResult r = RunCommand({KpistreamBinary()});
  EXPECT_EQ(r.err,
            "kpistream: a command is required (the commands: run, demo, "
            "broker, loadgen, check-config, rules)\n"
            "Run 'kpistream --help' for usage.\n");
  r = RunCommand({KpistreamBinary(), "check-config"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "kpistream check-config: file is required\n"
            "Run 'kpistream check-config --help' for usage.\n");
  r = RunCommand({KpistreamBinary(), "run", "--config", "x.yaml", "extra"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::StartsWith("kpistream run: "));
  EXPECT_THAT(r.err, ::testing::HasSubstr("extra"));
  EXPECT_THAT(r.err,
              ::testing::EndsWith("\nRun 'kpistream run --help' for usage.\n"));
  EXPECT_EQ(RunCommand({KpistreamBinary(), "run"}).exit_code, 2);
  EXPECT_EQ(
      RunCommand({KpistreamBinary(), "broker", "--topic", "t:0"}).exit_code, 2);
  // A mistyped option name is named beside the required one it missed.
  r = RunCommand({KpistreamBinary(), "run", "--confg", "x.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr(
                         "--config is required (not understood: --confg"));
  r = RunCommand({KpistreamBinary(), "demo", "--listen", "foo"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("--listen"));
  const std::string file = ::testing::TempDir() + "/rules-out-is-a-file";
  std::ofstream(file) << "x";
  r = RunCommand({KpistreamBinary(), "rules", "--config",
                  SourceDir() + "/config/examples/kpistream.yaml", "--out",
                  file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("is a file"));
  r = RunCommand(
      {KpistreamBinary(), "broker", "--topic", "a:1", "--topic", "a:2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::HasSubstr("topic \"a\" given twice"));
  EXPECT_EQ(RunCommand({KpistreamBinary(), "loadgen", "--brokers",
                        "127.0.0.1:1", "--topic", "t", "--format", "xml"})
                .exit_code,
            2);
  EXPECT_EQ(RunCommand({KpistreamBinary(), "loadgen", "--brokers",
                        "127.0.0.1:1", "--topic", "t", "--disorder", "soon"})
                .exit_code,
            2);
}

// loadgen with no broker at its address: one error naming the address,
// exit 1, once the 30 s a broker started alongside gets have passed
// (before 2026-12-05 it warned and produced all the same, and failed only
// when the records' deliveries timed out, 37 s later).
TEST(CliTest, LoadgenWithoutABrokerFailsNamingTheAddress) {
  const CommandResult r =
      RunCommand({KpistreamBinary(), "loadgen", "--brokers", "127.0.0.1:1",
                  "--topic", "t", "--events", "10"},
                 "", absl::Seconds(50));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr(
                         "(brokers 127.0.0.1:1): no broker answered within "
                         "30 s; is one running there"));
  EXPECT_THAT(r.out, ::testing::Not(::testing::HasSubstr("produced")));
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

// A warning leaves the config valid: check-config says it on stderr, names
// the key and line, and exits 0 with its OK.
TEST(CliTest, CheckConfigWarnsAndPasses) {
  TempDir dir;
  const std::string path =
      dir.Write("warn.yaml",
                "inputs:\n"
                "  - {topic: web.access, format: combined_log, site: www}\n");
  CommandResult r = RunCommand({KpistreamBinary(), "check-config", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, path + ": OK\n");
  EXPECT_TRUE(absl::StrContains(
      r.err, path + ":2:5: inputs[0]: warning: a combined_log input without "
                    "host"))
      << r.err;
  // Said with the errors too.
  const std::string bad =
      dir.Write("bad.yaml",
                "inputs:\n"
                "  - {topic: web.access, format: combined_log, site: www}\n"
                "sessions: {timeout: 5m}\n");
  r = RunCommand({KpistreamBinary(), "check-config", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, bad + ":2:5: inputs[0]: warning: "))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, bad + ":3:12: sessions.timeout: "))
      << r.err;
}

// Errors and warnings print in the file's line order, one line each: an
// ad_cost input given format: combined_log gets that one error, not the
// access-log input's site requirement and host warning as well.
TEST(CliTest, CheckConfigSaysEachProblemOnceInLineOrder) {
  TempDir dir;
  const std::string bad =
      dir.Write("bad.yaml",
                "sessions: {timeout: 5m}\n"
                "inputs:\n"
                "  - {topic: web.access, format: combined_log, site: www}\n"
                "  - {topic: ad.cost, kind: ad_cost, format: combined_log}\n");
  CommandResult r = RunCommand({KpistreamBinary(), "check-config", bad});
  EXPECT_EQ(r.exit_code, 2);
  const std::vector<std::string> lines =
      absl::StrSplit(r.err, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << r.err;
  EXPECT_TRUE(absl::StartsWith(lines[0], bad + ":1:12: sessions.timeout: "))
      << r.err;
  EXPECT_TRUE(absl::StartsWith(lines[1], bad + ":3:5: inputs[0]: warning: "))
      << r.err;
  EXPECT_EQ(lines[2], bad +
                          ":4:45: inputs[1].format: ad_cost inputs are "
                          "protobuf or json")
      << r.err;
  EXPECT_EQ(lines[3], bad + ": 2 errors") << r.err;
}

// A config file that cannot be read is said once, with its cause.
TEST(CliTest, RunSaysAMissingConfigFileOnce) {
  TempDir dir;
  const std::string missing = dir.path() + "/nope.yaml";
  CommandResult r = RunCommand({KpistreamBinary(), "run", "--config", missing});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            missing + ": cannot read config file: No such file or directory\n")
      << r.err;
}

// A kafka.properties entry librdkafka refuses is a config error with its key
// and line, from check-config as from run (which said before only when it
// made its first client, in the context of an input topic).
TEST(CliTest, CheckConfigRefusesAKafkaPropertyLibrdkafkaRefuses) {
  TempDir dir;
  const std::string bad = dir.Write("bad.yaml",
                                    "inputs: [{topic: web.events}]\n"
                                    "kafka:\n"
                                    "  properties:\n"
                                    "    socket.timeout.ms: \"60000\"\n"
                                    "    sasl.mechanisms.typo: PLAIN\n"
                                    "    enable.idempotence: maybe\n");
  CommandResult r = RunCommand({KpistreamBinary(), "check-config", bad});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.err, bad + ":5:5: kafka.properties.sasl.mechanisms.typo: "))
      << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, bad + ":6:5: kafka.properties.enable.idempotence: "))
      << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "socket.timeout.ms")) << r.err;
  CommandResult run = RunCommand({KpistreamBinary(), "run", "--config", bad});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(
      run.err, bad + ":5:5: kafka.properties.sasl.mechanisms.typo: "))
      << run.err;
}

// A Kafka client that cannot be made from kafka.properties (a CA file that
// is not there) is said to be the properties' doing, not the brokers' (an
// audit: "check kafka.brokers and that the brokers are up ... restarted, it
// starts once every input can be read").
TEST(CliTest, AClientTheKafkaPropertiesCannotMakeNamesThem) {
  TempDir dir;
  const std::string config =
      dir.Write("ca.yaml",
                "kafka:\n  brokers: 127.0.0.1:1\n  properties:\n"
                "    security.protocol: ssl\n"
                "    ssl.ca.location: /nonexistent/ca.pem\n"
                "inputs: [{topic: web.events}]\n"
                "metrics: {listen: '127.0.0.1:0'}\n");
  CommandResult run =
      RunCommand({KpistreamBinary(), "run", "--config", config});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_TRUE(
      absl::StrContains(run.err, "kafka.properties: cannot create the Kafka"))
      << run.err;
  EXPECT_TRUE(absl::StrContains(run.err, "ssl.ca.location")) << run.err;
  EXPECT_FALSE(absl::StrContains(run.err, "check kafka.brokers")) << run.err;
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
  // Another instance (its own instance_id, so its own transactional.id
  // and local state) that wants the same port.
  const std::string other = dir.Write(
      "other.yaml", "kafka: {brokers: '" + broker.bootstrap() +
                        "'}\ninputs: [{topic: web.events}]\nprocessing: "
                        "{instance_id: other}\nmetrics: {listen: '127.0.0.1:" +
                        std::to_string(port) + "'}\n");
  CommandResult second =
      RunCommand({KpistreamBinary(), "run", "--config", other});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_TRUE(
      absl::StrContains(second.err, "127.0.0.1:" + std::to_string(port)))
      << second.err;
  EXPECT_EQ(first.Stop(SIGTERM, absl::Seconds(10)), 0) << first.Stderr();
}

// SPEC §7: SIGTERM stops the engine and exits 0 within a few seconds, also
// while the brokers do not answer at its start (a QA pass: it waited out
// the 30 s metadata timeout, then exited 1).
// Meanwhile (SPEC §7) /healthz says 200, the process works, and /readyz
// 503 with what the start waits for (review: nothing listened until the
// brokers answered); /metrics, with nothing true to say yet, 503 too.
TEST(CliTest, SigtermWhileTheBrokersDoNotAnswerExitsZero) {
  TempDir dir;
  const int dead = FreePort();  // nothing listens there
  const int port = FreePort();
  const std::string config = dir.Write(
      "c.yaml", "kafka: {brokers: '127.0.0.1:" + std::to_string(dead) +
                    "'}\ninputs: [{topic: web.events}]\nprocessing: "
                    "{state_dir: '" +
                    dir.path() +
                    "/state'}\nmetrics: "
                    "{listen: '127.0.0.1:" +
                    std::to_string(port) + "'}\n");
  Subprocess run({KpistreamBinary(), "run", "--config", config});
  // librdkafka has tried to connect (and logged the refusal, naming it).
  ASSERT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(run.Stderr(),
                                 "127.0.0.1:" + std::to_string(dead));
      },
      absl::Seconds(20)))
      << run.Stderr();
  absl::StatusOr<HttpResponse> health = HttpGetResponse(port, "/healthz");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->code, 200);
  absl::StatusOr<HttpResponse> ready = HttpGetResponse(port, "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->code, 503);
  EXPECT_THAT(ready->body, ::testing::HasSubstr(
                               "starting: reading the metadata of input topic "
                               "\"web.events\" from 127.0.0.1:" +
                               std::to_string(dead)));
  // And the cause, as Kafka last gave it (it said only the step before).
  EXPECT_THAT(ready->body, ::testing::HasSubstr("; Kafka: "));
  EXPECT_THAT(ready->body, ::testing::HasSubstr("Connection refused"));
  absl::StatusOr<HttpResponse> metrics = HttpGetResponse(port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->code, 503);
  // Well within the metadata wait of 30 s that it sat out before.
  EXPECT_EQ(run.Stop(SIGTERM, absl::Seconds(15)), 0) << run.Stderr();
  EXPECT_TRUE(absl::StrContains(run.Stderr(), "stopped before it started"))
      << run.Stderr();
}

// An instance stopped before the consumer group gave it its first
// assignment waits for that assignment, then closes and exits 0
// (StreamThread::AwaitFirstAssignment): librdkafka 2.0.2 can abort the
// process (exit 134) when a cooperative-sticky consumer is destroyed before
// its first assignment (librdkafka #4312; seen in the embedded broker's
// crash test, not reproducible on demand here, so this checks the wait).
TEST(CliTest, AnInstanceStoppedBeforeItsFirstAssignmentWaitsForIt) {
  BrokerProcess broker({"web.events:4", "early-changelog:4"});
  ASSERT_FALSE(broker.bootstrap().empty());
  TempDir dir;
  auto config = [&](const std::string& instance, int port) {
    return dir.Write(
        instance + ".yaml",
        "kafka: {brokers: '" + broker.bootstrap() +
            "', group_id: early}\ninputs: [{topic: web.events, key: "
            "visitor_id}]\nprocessing: {instance_id: " +
            instance +
            "}\nmetrics: {listen: '127.0.0.1:" + std::to_string(port) + "'}\n");
  };
  const int port_a = FreePort(), port_b = FreePort();
  Subprocess a({KpistreamBinary(), "run", "--config", config("a", port_a)});
  ASSERT_TRUE(WaitFor(
      [&] {
        auto page = HttpGet(port_a, "/metrics");
        return page.ok() &&
               MetricValue(*page, "kpistream_assigned_partitions") == 4;
      },
      absl::Seconds(30)))
      << a.Stderr();
  // b joins; the group rebalances only after a while (the embedded broker
  // waits for a's next join): b is stopped before it has any assignment.
  Subprocess b({KpistreamBinary(), "run", "--config", config("b", port_b)});
  ASSERT_TRUE(WaitFor([&] { return HttpGet(port_b, "/metrics").ok(); },
                      absl::Seconds(20)))
      << b.Stderr();
  // In the middle of the rebalance b's joining started.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(b.Stop(SIGTERM, absl::Seconds(30)), 0) << b.Stderr();
  EXPECT_TRUE(absl::StrContains(b.Stderr(), "first assignment before closing"))
      << b.Stderr();
  EXPECT_EQ(a.Stop(SIGTERM, absl::Seconds(30)), 0) << a.Stderr();
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

// The "eventTime" of a loadgen JSON line ("KEY VALUE" from ConsumeAll).
absl::Time EventTime(const std::string& line) {
  const std::string field = "\"eventTime\":\"";
  const size_t start = line.find(field) + field.size();
  absl::Time t = absl::InfinitePast();
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full,
                              line.substr(start, line.find('"', start) - start),
                              &t, &error))
      << line;
  return t;
}

// --disorder delays events in the stream, not in time: the same events
// (byte for byte) arrive out of event-time order, none more than the bound
// behind the latest event before it.
TEST(CliTest, LoadgenDisorderDeliversTheSameEventsLateWithinTheBound) {
  BrokerProcess broker({"ordered:1", "disordered:1"});
  ASSERT_FALSE(broker.bootstrap().empty()) << broker.process().Stderr();
  auto loadgen = [&](const std::string& topic, std::vector<std::string> extra) {
    std::vector<std::string> argv = {
        KpistreamBinary(), "loadgen", "--brokers",    broker.bootstrap(),
        "--topic",         topic,     "--format",     "json",
        "--rate",          "0",       "--events",     "500",
        "--seed",          "3",       "--start-time", "2026-01-01T00:00:00Z"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    CommandResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  loadgen("ordered", {});
  // 1000 events per second of event time: up to ~100 events late.
  loadgen("disordered", {"--disorder", "100ms"});
  const std::vector<std::string> ordered =
      ConsumeAll(broker.bootstrap(), "ordered");
  const std::vector<std::string> disordered =
      ConsumeAll(broker.bootstrap(), "disordered");
  ASSERT_EQ(ordered.size(), 500u);
  ASSERT_EQ(disordered.size(), 500u);
  const std::set<std::string> originals(ordered.begin(), ordered.end());
  int same = 0, inversions = 0;
  absl::Time latest = absl::InfinitePast();
  for (size_t i = 0; i < disordered.size(); ++i) {
    const absl::Time t = EventTime(disordered[i]);
    EXPECT_GE(t, latest - absl::Milliseconds(100)) << disordered[i];
    if (t < latest) ++inversions;
    latest = std::max(latest, t);
    same += originals.count(disordered[i]) > 0;
  }
  // The tail differs: events still held back when the count was reached.
  EXPECT_GT(same, 400);
  EXPECT_GT(inversions, 50);  // no longer in event-time order
  EXPECT_EQ(broker.process().Stop(SIGTERM, absl::Seconds(10)), 0);
}

// Listens on 127.0.0.1:`port` until destroyed.
class PortOccupier {
 public:
  explicit PortOccupier(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(port));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0 &&
          listen(fd_, 1) == 0;
  }
  ~PortOccupier() { close(fd_); }
  bool ok() const { return ok_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

TEST(CliTest, BrokerPortGivesAFixedBootstrapAddress) {
  const int port = FreePort();
  Subprocess broker({KpistreamBinary(), "broker", "--port",
                     std::to_string(port), "--topic", "fixed:2"});
  auto first = broker.ReadLine(absl::Seconds(20));
  ASSERT_TRUE(first.ok()) << broker.Stderr();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  EXPECT_EQ(*first, address);
  // An independent client bootstraps from the fixed address.
  CommandResult metadata = RunCommand({"kcat", "-b", address, "-L"});
  EXPECT_EQ(metadata.exit_code, 0) << metadata.err;
  EXPECT_TRUE(
      absl::StrContains(metadata.out, "topic \"fixed\" with 2 partitions"))
      << metadata.out;
  CommandResult produced = RunCommand(
      {"kcat", "-b", address, "-P", "-t", "fixed", "-p", "0"}, "one\ntwo\n");
  EXPECT_EQ(produced.exit_code, 0) << produced.err;
  EXPECT_EQ(ConsumeAll(address, "fixed").size(), 2u);
  // The port is taken now: a second broker says so and exits 2.
  CommandResult second =
      RunCommand({KpistreamBinary(), "broker", "--port", std::to_string(port)},
                 "", absl::Seconds(20));
  EXPECT_EQ(second.exit_code, 2) << second.err;
  EXPECT_TRUE(absl::StrContains(second.err, address)) << second.err;
  EXPECT_TRUE(absl::StrContains(second.err, "--port")) << second.err;
  EXPECT_EQ(broker.Stop(SIGTERM, absl::Seconds(10)), 0) << broker.Stderr();
}

TEST(CliTest, DemoWithItsPortTakenSaysToUseListen) {
  const int port = FreePort();
  PortOccupier occupier(port);
  ASSERT_TRUE(occupier.ok());
  const std::string address = "127.0.0.1:" + std::to_string(port);
  CommandResult r = RunCommand(
      {KpistreamBinary(), "demo", "--listen", address, "--duration", "20s"}, "",
      absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, address)) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "in use")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "--listen 127.0.0.1:0")) << r.err;
  EXPECT_EQ(r.out, "");  // no banner: nothing started
}

}  // namespace
}  // namespace kpistream::testing

namespace kpistream::testing {
namespace {

// The banner's /metrics address is where the demo listens: a --listen
// host other than 127.0.0.1 (here another loopback address) is shown as
// given, not as 127.0.0.1. The run's local state (a directory in TMPDIR)
// is gone once it has stopped.
TEST(DemoTest, TheBannerShowsTheListenHost) {
  std::string tmp = "/tmp/kpistream-demo-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmp.data()), nullptr);
  Subprocess demo({"/usr/bin/env", absl::StrCat("TMPDIR=", tmp),
                   KpistreamBinary(), "demo", "--listen", "127.0.0.2:0"});
  auto banner = demo.ReadLine(absl::Seconds(20));
  ASSERT_TRUE(banner.ok()) << demo.Stderr();
  EXPECT_TRUE(absl::StrContains(*banner, "/metrics on http://127.0.0.2:"))
      << *banner;
  EXPECT_FALSE(std::filesystem::is_empty(tmp));  // its state, while it runs
  EXPECT_EQ(demo.Stop(SIGTERM, absl::Seconds(30)), 0) << demo.Stderr();
  // The start log names the port taken in place of the 0 asked for, as the
  // banner does (it said "on 127.0.0.2:0 port 43127").
  const std::string log = demo.Stderr();
  const size_t on = log.find("/readyz on 127.0.0.2:");
  ASSERT_NE(on, std::string::npos) << log;
  const std::string logged = log.substr(on + 21, log.find('\n', on) - on - 21);
  EXPECT_EQ(logged, std::to_string(std::stoi(
                        banner->substr(banner->find("127.0.0.2:") + 10))))
      << log;
  EXPECT_TRUE(std::filesystem::is_empty(tmp));
  std::error_code ignored;
  std::filesystem::remove_all(tmp, ignored);
}

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
  // The first sessions to close are short ones; revenue follows with the
  // sessions that bought (counted when they close).
  std::string page;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto got = HttpGet(port, "/metrics");
        if (got.ok()) page = *got;
        return MetricValue(page, "web_revenue_total") > 0;
      },
      absl::Seconds(20)))
      << page;
  EXPECT_GT(MetricValue(page, "web_sessions_closed_total"), 0);
  EXPECT_EQ(demo.Stop(SIGINT, absl::Seconds(10)), 0) << demo.Stderr();
  // A new user's first run: librdkafka warned about an explicitly set
  // allow.auto.create.topics at the embedded broker (Metadata v2), four
  // WARN lines before anything else.
  EXPECT_FALSE(absl::StrContains(demo.Stderr(), "AUTOCREATE")) << demo.Stderr();
  // Counts show within a fraction of a second of their events at moderate
  // rates: commits and the consumers' fetch wait follow
  // processing.min_commit_interval (README, "What holds").
  EXPECT_TRUE(absl::StrContains(
      demo.Stderr(),
      "fetch.wait.max.ms=20 (a fifth of processing.min_commit_interval "
      "100ms)"))
      << demo.Stderr();
}

}  // namespace
}  // namespace kpistream::testing
