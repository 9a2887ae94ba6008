#include "engine/rejection_reporter.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1790000000);

RejectionReporter::Options JsonInput() {
  RejectionReporter::Options options;
  options.interval = absl::Seconds(10);
  options.input_formats["web.events"] = "json";
  return options;
}

TEST(RejectionReporterTest, SaysHowManyWhyFromWhereAndTheFormat) {
  RejectionReporter reporter(JsonInput(), kStart);
  for (int i = 0; i < 402; ++i) {
    reporter.Consumed("web.events");
    reporter.Rejected("web.events", "malformed",
                      i == 0 ? "not a valid JSON WebEvent: Unexpected token."
                             : "another message");
  }
  EXPECT_TRUE(reporter.Take(kStart + absl::Seconds(9)).empty());
  auto summaries = reporter.Take(kStart + absl::Seconds(10));
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].Text(),
            "402/402 records on web.events rejected in the last 10 s: 402 "
            "malformed (not a valid JSON WebEvent: Unexpected token.); the "
            "input format of web.events is json");
  EXPECT_EQ(summaries[0].records, 402);
  EXPECT_EQ(summaries[0].rejected, 402);
}

// An access log's lines that are no page view (most of its lines) are the
// input as it is: a summary of only those is no warning (the engine logs it
// at INFO); one with any other reason is.
TEST(RejectionReporterTest, OnlyLinesThatAreNoPageViewsAreExpected) {
  RejectionReporter::Options options;
  options.input_formats["web.access"] = "combined_log";
  RejectionReporter reporter(options, kStart);
  for (int i = 0; i < 10; ++i) {
    reporter.Consumed("web.access");
    reporter.Rejected("web.access", "not_pageview", "GET /a.css answered 200");
  }
  auto summaries = reporter.Take(kStart + absl::Seconds(10));
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_TRUE(summaries[0].OnlyExpected());
  reporter.Consumed("web.access");
  reporter.Rejected("web.access", "not_pageview", "GET /a.css answered 200");
  reporter.Consumed("web.access");
  reporter.Rejected("web.access", "malformed", "not an access-log line");
  summaries = reporter.Take(kStart + absl::Seconds(20));
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_FALSE(summaries[0].OnlyExpected());
}

TEST(RejectionReporterTest, AtMostOneLinePerTopicPerInterval) {
  RejectionReporter reporter(JsonInput(), kStart);
  int lines = 0;
  // A rejection every 100 ms for a minute, Take() as often.
  for (int i = 1; i <= 600; ++i) {
    const absl::Time now = kStart + absl::Milliseconds(100 * i);
    reporter.Consumed("web.events");
    reporter.Rejected("web.events", "malformed", "x");
    lines += static_cast<int>(reporter.Take(now).size());
  }
  EXPECT_EQ(lines, 6);
}

TEST(RejectionReporterTest, NothingWhenNothingWasRejected) {
  RejectionReporter reporter(JsonInput(), kStart);
  for (int i = 0; i < 1000; ++i) reporter.Consumed("web.events");
  EXPECT_TRUE(reporter.Take(kStart + absl::Seconds(11)).empty());
  // The next interval counts its own records only.
  reporter.Consumed("web.events");
  reporter.Rejected("web.events", "missing_visitor_id", "visitor_id is empty");
  auto summaries = reporter.Take(kStart + absl::Seconds(22));
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(summaries[0].Text(),
                               "1/1 records on web.events rejected in the "
                               "last 11 s: 1 missing_visitor_id (visitor_id "
                               "is empty)"))
      << summaries[0].Text();
}

TEST(RejectionReporterTest, ReasonsMostFrequentFirstWithOneExampleEach) {
  auto options = JsonInput();
  options.input_formats["ads"] = "json (kind: ad_cost)";
  RejectionReporter reporter(options, kStart);
  for (int i = 0; i < 10; ++i) reporter.Consumed("web.events");
  reporter.Rejected("web.events", "missing_goal", "needs conversion.goal");
  for (int i = 0; i < 3; ++i) {
    reporter.Rejected("web.events", "malformed", absl::StrCat("bad ", i));
  }
  reporter.Consumed("ads");
  reporter.Rejected("ads", "missing_cost", "cost_micros is not set");
  reporter.Consumed("stray");
  reporter.Rejected("stray", "unknown_topic", "not an input");
  auto summaries = reporter.Flush(kStart + absl::Seconds(2));
  ASSERT_EQ(summaries.size(), 3u);  // by topic name
  EXPECT_EQ(summaries[0].Text(),
            "1/1 records on ads rejected in the last 2 s: 1 missing_cost "
            "(cost_micros is not set); the input format of ads is json "
            "(kind: ad_cost)");
  EXPECT_EQ(summaries[1].Text(),
            "1/1 records on stray rejected in the last 2 s: 1 unknown_topic "
            "(not an input)");
  EXPECT_EQ(summaries[2].Text(),
            "4/10 records on web.events rejected in the last 2 s: 3 malformed "
            "(bad 0), 1 missing_goal (needs conversion.goal); the input "
            "format of web.events is json");
}

TEST(RejectionReporterTest, ExamplesAreShortAndOneLine) {
  RejectionReporter reporter(JsonInput(), kStart);
  reporter.Consumed("web.events");
  reporter.Rejected("web.events", "malformed",
                    "first line\nsecond line " + std::string(1000, 'x'));
  auto summaries = reporter.Flush(kStart + absl::Seconds(1));
  ASSERT_EQ(summaries.size(), 1u);
  const std::string& example = summaries[0].reasons[0].example;
  EXPECT_LE(example.size(), 160u);
  EXPECT_TRUE(absl::StartsWith(example, "first line second line xxx"));
  EXPECT_TRUE(absl::EndsWith(example, "..."));
}

// A long detail's hint of another format is kept whole (an audit: a
// combined_log input's ~150-byte message cut "looks like JSON" away).
TEST(RejectionReporterTest, AnExampleKeepsItsOtherFormatHint) {
  RejectionReporter reporter(JsonInput(), kStart);
  reporter.Consumed("web.events");
  const std::string hint =
      "; the record looks like JSON: is the input's format json?";
  reporter.Rejected("web.events", "malformed",
                    "not a combined log line: " + std::string(300, 'x') + hint);
  auto summaries = reporter.Flush(kStart + absl::Seconds(1));
  ASSERT_EQ(summaries.size(), 1u);
  const std::string& example = summaries[0].reasons[0].example;
  EXPECT_TRUE(absl::StartsWith(example, "not a combined log line: xxx"));
  EXPECT_TRUE(absl::EndsWith(example,
                             "...; the record looks like JSON: is "
                             "the input's format json?"))
      << example;
}

TEST(RejectionReporterTest, FieldsForJsonLogs) {
  RejectionReporter reporter(JsonInput(), kStart);
  reporter.Consumed("web.events");
  reporter.Consumed("web.events");
  reporter.Rejected("web.events", "malformed", "x");
  auto summaries = reporter.Flush(kStart + absl::Seconds(10));
  ASSERT_EQ(summaries.size(), 1u);
  std::map<std::string, std::string> fields;
  for (const LogField& f : summaries[0].Fields()) {
    fields[f.key] = std::visit(
        [](const auto& v) {
          if constexpr (std::is_same_v<std::decay_t<decltype(v)>,
                                       std::string>) {
            return v;
          } else {
            return absl::StrCat(v);
          }
        },
        f.value);
  }
  EXPECT_EQ(fields["topic"], "web.events");
  EXPECT_EQ(fields["records"], "2");
  EXPECT_EQ(fields["rejected"], "1");
  EXPECT_EQ(fields["rejected_malformed"], "1");
  EXPECT_EQ(fields["format"], "json");
  EXPECT_EQ(fields["interval_seconds"], "10");
}

TEST(RejectionReporterTest, OptionsNameEveryInputsFormat) {
  Config config;
  config.inputs.push_back(
      {"web.events", InputKind::kEvents, InputFormat::kJson, ""});
  config.inputs.push_back(
      {"access", InputKind::kEvents, InputFormat::kCombinedLog, "shop"});
  config.inputs.push_back(
      {"ads", InputKind::kAdCost, InputFormat::kProtobuf, ""});
  const RejectionReporter::Options options = RejectionReporterOptions(config);
  EXPECT_EQ(options.interval, absl::Seconds(10));
  EXPECT_EQ(options.input_formats.at("web.events"), "json");
  EXPECT_EQ(options.input_formats.at("access"), "combined_log");
  EXPECT_EQ(options.input_formats.at("ads"), "protobuf (kind: ad_cost)");
}

}  // namespace
}  // namespace kpistream
