#include "cmd/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kafka/producer.h"
#include "nlohmann/json.hpp"

namespace kpistream {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kTime = absl::FromUnixMillis(1795000000123);  // 2026-11-18

TEST(LogTest, TextLineIsTodaysShape) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTime, LogLevel::kInfo, "engine",
                          "assigned web.events[0]"),
            "2026-11-18T11:06:40.123Z INFO  engine: assigned web.events[0]\n");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTime, LogLevel::kWarn, "", "x",
                          {{"ignored", 1}}),
            "2026-11-18T11:06:40.123Z WARN  x\n");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTime, LogLevel::kError, "demo",
                          "two\nlines"),
            "2026-11-18T11:06:40.123Z ERROR demo: two lines\n");
}

TEST(LogTest, JsonLineIsOneObjectWithFields) {
  const std::string line = FormatLogLine(
      LogFormat::kJson, kTime, LogLevel::kWarn, "engine",
      "402/402 records on web.events rejected",
      {{"topic", "web.events"}, {"rejected", 402}, {"interval_seconds", 10.5}});
  ASSERT_TRUE(absl::EndsWith(line, "}\n")) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  const nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ts"], "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["component"], "engine");
  EXPECT_EQ(j["msg"], "402/402 records on web.events rejected");
  EXPECT_EQ(j["topic"], "web.events");
  EXPECT_EQ(j["rejected"], 402);
  EXPECT_DOUBLE_EQ(j["interval_seconds"].get<double>(), 10.5);
  // The keys come in this order: a reader sees ts and level first.
  EXPECT_TRUE(absl::StartsWith(line, "{\"ts\":")) << line;
}

TEST(LogTest, JsonSurvivesWhateverAMessageCarries) {
  const std::string line =
      FormatLogLine(LogFormat::kJson, kTime, LogLevel::kError, "engine",
                    "quote \" backslash \\ newline \n bad \xFF\xFE utf8",
                    {{"msg", "a field may not replace msg"}});
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  const nlohmann::json j = nlohmann::json::parse(line);  // throws if invalid
  EXPECT_TRUE(absl::StartsWith(j["msg"].get<std::string>(),
                               "quote \" backslash \\ newline \n bad "));
  EXPECT_EQ(j["level"], "error");
}

TEST(LogTest, ComponentIsTheShortPrefix) {
  absl::string_view component, message;
  SplitComponent("engine: assigned web.events[0]", &component, &message);
  EXPECT_EQ(component, "engine");
  EXPECT_EQ(message, "assigned web.events[0]");
  SplitComponent("kpistream run: cannot listen on x: y", &component, &message);
  EXPECT_EQ(component, "kpistream run");
  EXPECT_EQ(message, "cannot listen on x: y");
  SplitComponent("Not a component: x", &component, &message);
  EXPECT_EQ(component, "");
  EXPECT_EQ(message, "Not a component: x");
  SplitComponent("no colon at all", &component, &message);
  EXPECT_EQ(component, "");
  SplitComponent(": empty", &component, &message);
  EXPECT_EQ(component, "");
}

TEST(LogTest, ParsesFormatNames) {
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("yaml").ok());
}

// Runs `body` with stderr going to a file; returns what it wrote.
template <typename Body>
std::string CaptureStderr(Body body) {
  char path[] = "/tmp/kpistream-log-test-XXXXXX";
  const int fd = mkstemp(path);
  std::fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  body();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  unlink(path);
  return text.str();
}

TEST(LogTest, MacrosWriteJsonLinesWithTheComponent) {
  SetLogFormat(LogFormat::kJson);
  const std::string out =
      CaptureStderr([] { KPI_LOG_WARN("engine: %d records", 3); });
  SetLogFormat(LogFormat::kText);
  const nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["component"], "engine");
  EXPECT_EQ(j["msg"], "3 records");
  EXPECT_EQ(j["level"], "warn");
}

// A value RedactInLogs() was given (a kafka.properties secret) never
// reaches a log line, whatever quotes it (librdkafka's "Unsupported SASL
// mechanism: <value>" did: an audit).
TEST(LogTest, RedactedValuesNeverReachALine) {
  RedactInLogs({"hunter22", ""});
  const std::string out = CaptureStderr([] {
    KPI_LOG_ERROR("kpistream run: Unsupported SASL mechanism: hunter22");
    KPI_LOG_INFO("engine: nothing secret");
  });
  EXPECT_THAT(out, Not(HasSubstr("hunter22")));
  EXPECT_THAT(out, HasSubstr("Unsupported SASL mechanism: [redacted]"));
  EXPECT_THAT(out, HasSubstr("nothing secret"));
  // A secret with a quote, a backslash or a newline: JSON escapes the first
  // two and text makes the newline a space, after which the secret did not
  // match (an audit: the JSON lines carried it).
  RedactInLogs({"S3cr\"et\\pw", "two\nlines", "hunter22", "ab: cd"});
  for (LogFormat format : {LogFormat::kJson, LogFormat::kText}) {
    SetLogFormat(format);
    const std::string lines = CaptureStderr([] {
      KPI_LOG_ERROR("kafka: sasl.password S3cr\"et\\pw refused");
      KPI_LOG_WARN("kafka: client.id two\nlines");
      Log(LogLevel::kWarn, "kafka", "field", {{"value", "hunter22"}});
      KPI_LOG_ERROR("sasl ab: cd refused");  // split at its ": "
    });
    SetLogFormat(LogFormat::kText);
    EXPECT_THAT(lines, Not(HasSubstr("S3cr"))) << lines;
    EXPECT_THAT(lines, Not(HasSubstr("two"))) << lines;
    EXPECT_THAT(lines, Not(HasSubstr("hunter22"))) << lines;
    EXPECT_THAT(lines, Not(HasSubstr("ab: cd"))) << lines;
    EXPECT_THAT(lines, HasSubstr("sasl.password [redacted] refused"));
  }
}

// librdkafka's own lines (here: a producer that cannot connect) come
// through the logger, with the client's name, at a mapped level.
TEST(LogTest, LibrdkafkaLogsGoThroughTheLogger) {
  InstallKafkaLogger();
  SetLogFormat(LogFormat::kJson);
  const std::string out = CaptureStderr([] {
    kafka::Producer::Options options;
    options.brokers = "127.0.0.1:1";  // nothing there
    options.client_id = "logtest";
    auto sink = kafka::Producer::Create(options);
    ASSERT_TRUE(sink.ok());
    absl::SleepFor(absl::Seconds(1));  // connection refused within ms
  });
  SetLogFormat(LogFormat::kText);
  bool found = false;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j["component"] != "kafka") continue;
    // "-1" when it is the process's first producer (ctest runs each test
    // in a process of its own), another number after other tests.
    const std::string client = j["client"].get<std::string>();
    EXPECT_TRUE(absl::StartsWith(client, "logtest#producer-")) << line;
    EXPECT_TRUE(absl::StartsWith(j["msg"].get<std::string>(), client + ": "))
        << line;
    if (absl::StrContains(j["msg"].get<std::string>(), "127.0.0.1:1") &&
        j["level"] == "error") {
      found = true;
    }
  }
  EXPECT_TRUE(found) << out;
}

}  // namespace
}  // namespace kpistream
