// What an operator sees in the first hour (issue 10, items 12 and 13), over
// real processes on loopback: rejected input summarised on the engine's
// stderr and dead letters with a `detail` header (read back with kcat), the
// periodic run summary, --log-format json for every line (librdkafka's
// included), and process_* metrics on /metrics.
#include <signal.h>

#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// A config reading JSON events from `topic` on `brokers`.
std::string Config(const std::string& brokers, int metrics_port,
                   const std::string& extra = "") {
  return absl::StrCat("kafka: {brokers: '", brokers,
                      "', group_id: firsthour}\n"
                      "inputs: [{topic: web.events, format: json}]\n"
                      "outputs: {deadletter: {topic: web.deadletter}}\n"
                      "metrics: {listen: '127.0.0.1:",
                      metrics_port, "'}\n", extra);
}

class FirstHourTest : public ::testing::Test {
 protected:
  // `flags` follow "run --config FILE".
  void StartEngine(const std::vector<std::string>& flags) {
    broker_ = std::make_unique<BrokerProcess>(std::vector<std::string>{
        "web.events:2", "web.deadletter:1", "web.sessions:1", "web.kpi:1",
        // The embedded broker cannot create topics on request: made here
        // with as many partitions as web.events (what the engine would make).
        "firsthour-repartition:2"});
    ASSERT_FALSE(broker_->bootstrap().empty()) << broker_->process().Stderr();
    metrics_port_ = FreePort();
    const std::string config =
        dir_.Write("c.yaml", Config(broker_->bootstrap(), metrics_port_));
    std::vector<std::string> argv = {KpistreamBinary(), "run", "--config",
                                     config};
    argv.insert(argv.end(), flags.begin(), flags.end());
    engine_ = std::make_unique<Subprocess>(argv);
    ASSERT_TRUE(WaitFor([&] { return HttpGet(metrics_port_, "/metrics").ok(); },
                        absl::Seconds(20)))
        << engine_->Stderr();
  }

  // The engine's last rejection summary line of web.events, waited for up
  // to 25 s (two intervals and some); empty if none came.
  std::string RejectionSummary() {
    std::string said;
    WaitFor(
        [&] {
          for (const std::string& line : Lines(engine_->Stderr())) {
            if (absl::StrContains(line, "records on web.events rejected")) {
              said = line;
            }
          }
          return !said.empty();
        },
        absl::Seconds(25));
    return said;
  }

  // One record per line; to `partition` when not -1 (else kcat's choice).
  void Produce(const std::string& lines, int partition = -1) {
    std::vector<std::string> command = {"kcat", "-b", broker_->bootstrap(),
                                        "-P",   "-t", "web.events"};
    if (partition >= 0) {
      command.insert(command.end(), {"-p", std::to_string(partition)});
    }
    CommandResult r = RunCommand(command, lines);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<Subprocess> engine_;
  int metrics_port_ = 0;
};

TEST_F(FirstHourTest, RejectedInputIsSummarisedAndDeadLettersSayWhy) {
  StartEngine({"--summary-interval", "0"});
  std::string garbage;
  for (int i = 0; i < 40; ++i) absl::StrAppend(&garbage, "garbage ", i, "\n");
  const absl::Time produced = absl::Now();
  Produce(garbage);

  // Within the 10 s interval (and some slack): one WARN line per interval,
  // counting all 40, naming the reason, an example (the JSON reader's
  // one-line message, e.g. "Unexpected token.") and the format.
  const std::regex summary(
      R"(WARN  engine: (\d+)/(\d+) records on web\.events rejected in the last \d+ s: (\d+) malformed \(not a valid JSON WebEvent: [^)]+\); the input format of web\.events is json$)");
  int rejected = 0;
  int lines = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        rejected = lines = 0;
        for (const std::string& line : Lines(engine_->Stderr())) {
          std::smatch m;
          if (!absl::StrContains(line, "records on web.events rejected")) {
            continue;
          }
          EXPECT_TRUE(std::regex_search(line, m, summary)) << line;
          if (m.empty()) continue;
          EXPECT_EQ(m[1], m[2]) << line;  // every record was garbage
          EXPECT_EQ(m[1], m[3]) << line;
          rejected += std::stoi(m[1]);
          ++lines;
        }
        return rejected == 40;
      },
      absl::Seconds(25)))
      << engine_->Stderr();
  EXPECT_LE(absl::Now() - produced, absl::Seconds(22));
  EXPECT_LE(lines, 2);  // 40 records in one burst: one line, two at a boundary

  // Every dead letter carries the decoder's message in `detail`.
  std::vector<std::string> headers;
  ASSERT_TRUE(WaitFor(
      [&] {
        CommandResult r = RunCommand({"kcat", "-b", broker_->bootstrap(), "-C",
                                      "-t", "web.deadletter", "-o", "beginning",
                                      "-e", "-q", "-f", "%h\n"});
        headers = Lines(r.out);
        return headers.size() == 40u;
      },
      absl::Seconds(20)));
  for (const std::string& h : headers) {
    EXPECT_TRUE(absl::StartsWith(
        h, "reason=malformed,detail=not a valid JSON WebEvent: "))
        << h;
    EXPECT_TRUE(absl::StrContains(h, ",source_topic=web.events,")) << h;
    EXPECT_TRUE(absl::StrContains(h, ",source_offset=")) << h;
  }
  EXPECT_EQ(engine_->Stop(SIGTERM, absl::Seconds(15)), 0) << engine_->Stderr();
}

// A conversion whose user agent is a bot's (a backend sending purchases with
// its HTTP library's: okhttp, python-requests …) counts in no KPI, as every
// bot: the input's rejection summary says so, naming the user agent (an
// audit: a backend's purchases went to bots without a word). A crawler's
// page view is no news: not said.
TEST_F(FirstHourTest, AConversionOfABotIsSaid) {
  StartEngine({"--summary-interval", "0"});
  Produce(
      "{\"eventId\":\"c1\",\"eventTime\":\"2026-01-01T10:00:00Z\","
      "\"siteId\":\"shop\",\"visitorId\":\"v1\",\"type\":\"CONVERSION\","
      "\"userAgent\":\"okhttp/4.9.0\",\"conversion\":{\"goal\":"
      "\"purchase\",\"valueMicros\":\"5000000\",\"currency\":\"EUR\","
      "\"orderId\":\"o1\"}}\n"
      "{\"eventId\":\"p1\",\"eventTime\":\"2026-01-01T10:00:01Z\","
      "\"siteId\":\"shop\",\"visitorId\":\"v2\",\"type\":\"PAGE_VIEW\","
      "\"userAgent\":\"Mozilla/5.0 (compatible; Googlebot/2.1)\"}\n");
  const std::string said = RejectionSummary();
  ASSERT_FALSE(said.empty()) << engine_->Stderr();
  EXPECT_TRUE(absl::StrContains(said, "WARN")) << said;
  EXPECT_TRUE(absl::StrContains(
      said, "1 bot (conversion, in no KPI: user agent \"okhttp/4.9.0\")"))
      << said;
  EXPECT_FALSE(absl::StrContains(said, "Googlebot")) << said;
  EXPECT_EQ(engine_->Stop(SIGTERM, absl::Seconds(15)), 0) << engine_->Stderr();
  EXPECT_FALSE(absl::StrContains(engine_->Stderr(), "2 bot"))
      << engine_->Stderr();
}

// Late events are dead-lettered and in no KPI: the input's rejection
// summary says so as it does of invalid records (an audit: 8,892 late
// events of a partition left idle were in the run's final summary only).
// One input partition: lateness is judged by the source partition's
// watermark.
TEST_F(FirstHourTest, LateEventsAreInTheRejectionSummary) {
  StartEngine({"--summary-interval", "0"});
  Produce(
      "{\"eventId\":\"e1\",\"eventTime\":\"2026-01-01T10:00:00Z\","
      "\"siteId\":\"shop\",\"visitorId\":\"v1\",\"type\":\"PAGE_VIEW\"}\n"
      "{\"eventId\":\"e2\",\"eventTime\":\"2026-01-01T11:00:00Z\","
      "\"siteId\":\"shop\",\"visitorId\":\"v1\",\"type\":\"PAGE_VIEW\"}\n"
      "{\"eventId\":\"e3\",\"eventTime\":\"2026-01-01T10:00:05Z\","
      "\"siteId\":\"shop\",\"visitorId\":\"v1\",\"type\":\"PAGE_VIEW\"}\n",
      /*partition=*/0);
  const std::string said = RejectionSummary();
  ASSERT_FALSE(said.empty()) << engine_->Stderr();
  EXPECT_TRUE(absl::StrContains(said, "WARN")) << said;
  EXPECT_TRUE(absl::StrContains(
      said,
      "1 late (event time 2026-01-01T10:00:05+00:00 is behind the "
      "watermark"))
      << said;
  EXPECT_EQ(engine_->Stop(SIGTERM, absl::Seconds(15)), 0) << engine_->Stderr();
}

TEST_F(FirstHourTest, RunLogsASummaryAndJsonLinesAndProcessMetrics) {
  // --log-format after the subcommand (the next test puts it before).
  StartEngine({"--summary-interval", "1s", "--log-format", "json"});
  Produce(
      "{\"eventId\":\"e1\",\"eventTime\":\"2026-01-01T10:00:00Z\",\"siteId\":"
      "\"shop\",\"visitorId\":\"v1\",\"type\":\"PAGE_VIEW\"}\nnot json\n");

  // A summary line with the fields, once the records are in.
  nlohmann::json summary;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const std::string& line : Lines(engine_->Stderr())) {
          const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
          if (j.is_discarded() || j.value("component", "") != "run") continue;
          if (j.value("dead_letters", 0.0) == 1) summary = j;
        }
        return !summary.is_null();
      },
      absl::Seconds(20)))
      << engine_->Stderr();
  EXPECT_EQ(summary["level"], "info");
  EXPECT_TRUE(absl::StartsWith(summary["msg"].get<std::string>(), "last "))
      << summary.dump();
  EXPECT_TRUE(absl::StrContains(summary["msg"].get<std::string>(),
                                "dead letters 1 (1 malformed)"))
      << summary.dump();
  EXPECT_EQ(summary["dead_letters_malformed"], 1);
  // web.events' 2 and the 2 of the repartition topic they are re-keyed
  // through (inputs[].key: any, the default).
  EXPECT_EQ(summary["assigned_partitions"], 4);
  EXPECT_TRUE(summary.contains("events_per_second"));
  EXPECT_TRUE(summary.contains("consumer_lag_messages"));

  // process_* as the client libraries export them.
  auto page = HttpGet(metrics_port_, "/metrics");
  ASSERT_TRUE(page.ok());
  for (const char* type :
       {"# TYPE process_cpu_seconds_total counter",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_virtual_memory_bytes gauge",
        "# TYPE process_open_fds gauge", "# TYPE process_max_fds gauge",
        "# TYPE process_start_time_seconds gauge"}) {
    EXPECT_TRUE(absl::StrContains(*page, type)) << type;
  }
  const double started = MetricValue(*page, "process_start_time_seconds");
  EXPECT_NEAR(started, absl::ToUnixSeconds(absl::Now()), 120);
  EXPECT_GT(MetricValue(*page, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(MetricValue(*page, "process_open_fds"), 3);
  // The whole page, written by export/exposition.cc, parses and passes
  // Prometheus' own lint (promtool exits 1 on a parse error, 3 on a lint
  // problem).
  CommandResult lint = RunCommand({"promtool", "check", "metrics"}, *page);
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;

  EXPECT_EQ(engine_->Stop(SIGTERM, absl::Seconds(15)), 0) << engine_->Stderr();
  // Every line of stderr is one JSON object with the four keys.
  const std::vector<std::string> lines = Lines(engine_->Stderr());
  ASSERT_FALSE(lines.empty());
  for (const std::string& line : lines) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    for (const char* key : {"ts", "level", "component", "msg"}) {
      EXPECT_TRUE(j.contains(key)) << key << " in " << line;
    }
  }
}

TEST(FirstHourLogTest, LibrdkafkaLinesGoThroughTheEnginesLogger) {
  // Nothing listens there: librdkafka says so, through our logger, naming
  // the client and the address.
  TempDir dir;
  const int dead = FreePort();
  const std::string config =
      dir.Write("c.yaml", Config(absl::StrCat("127.0.0.1:", dead), FreePort(),
                                 "processing: {guarantee: at_least_once}\n"));
  for (const std::string format : {"text", "json"}) {
    Subprocess engine(
        {KpistreamBinary(), "--log-format", format, "run", "--config", config});
    const std::string address = absl::StrCat("127.0.0.1:", dead);
    std::string line;
    ASSERT_TRUE(WaitFor(
        [&] {
          for (const std::string& l : Lines(engine.Stderr())) {
            if (absl::StrContains(l, "Connection refused") &&
                absl::StrContains(l, address)) {
              line = l;
              return true;
            }
          }
          return false;
        },
        absl::Seconds(15)))
        << engine.Stderr();
    if (format == "text") {
      EXPECT_TRUE(std::regex_search(
          line,
          std::regex(
              R"(^\S+Z ERROR kafka: kpistream[-\w.]*#(consumer|producer)-\d+: \w+: )")))
          << line;
    } else {
      const nlohmann::json j = nlohmann::json::parse(line);
      EXPECT_EQ(j["component"], "kafka");
      EXPECT_EQ(j["level"], "error");
      EXPECT_TRUE(absl::StartsWith(j["client"].get<std::string>(), "kpistream"))
          << line;
    }
    // librdkafka's own format never appears.
    EXPECT_FALSE(absl::StrContains(engine.Stderr(), "%3|")) << engine.Stderr();
    engine.Stop(SIGKILL, absl::Seconds(5));
  }
}

TEST(FirstHourLogTest, BrokerAndLoadgenLogJsonToo) {
  Subprocess broker(
      {KpistreamBinary(), "broker", "--log-format", "json", "--topic", "t:1"});
  auto bootstrap = broker.ReadLine(absl::Seconds(20));
  ASSERT_TRUE(bootstrap.ok()) << broker.Stderr();
  // Long enough for a progress line (every 5 s).
  CommandResult loadgen = RunCommand(
      {KpistreamBinary(), "loadgen", "--log-format", "json", "--brokers",
       *bootstrap, "--topic", "t", "--rate", "20", "--duration", "6s"});
  EXPECT_EQ(loadgen.exit_code, 0) << loadgen.err;
  EXPECT_EQ(broker.Stop(SIGTERM, absl::Seconds(10)), 0);
  for (const std::string& err : {broker.Stderr(), loadgen.err}) {
    const std::vector<std::string> lines = Lines(err);
    ASSERT_FALSE(lines.empty());
    for (const std::string& line : lines) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << line;
      EXPECT_TRUE(j.contains("component")) << line;
    }
  }
}

}  // namespace
}  // namespace kpistream::testing
