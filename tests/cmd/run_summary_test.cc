#include "cmd/run_summary.h"

#include <string>

#include "gtest/gtest.h"

namespace kpistream {
namespace {

FamilySnapshot Family(std::string name, MetricType type,
                      std::vector<std::string> labels,
                      std::vector<MetricSample> samples) {
  FamilySnapshot f;
  f.name = std::move(name);
  f.type = type;
  f.label_names = std::move(labels);
  f.samples = std::move(samples);
  return f;
}

MetricsSnapshot Engine(double consumed, double closed, double malformed,
                       double late, double bots, bool watermark) {
  MetricsSnapshot s;
  s.push_back(
      Family("kpistream_events_consumed_total", MetricType::kCounter, {"topic"},
             {{{"web.events"}, consumed * 0.75}, {{"ads"}, consumed * 0.25}}));
  s.push_back(Family("web_sessions_closed_total", MetricType::kCounter,
                     {"site", "channel", "device", "country"},
                     {{{"shop", "Direct", "mobile", "DE"}, closed}}));
  s.push_back(Family("kpistream_events_invalid_total", MetricType::kCounter,
                     {"reason"},
                     {{{"malformed"}, malformed}, {{"missing_type"}, 0}}));
  s.push_back(Family("kpistream_events_late_total", MetricType::kCounter, {},
                     {{{}, late}}));
  s.push_back(Family("kpistream_events_duplicate_total", MetricType::kCounter,
                     {}, {{{}, 0}}));
  s.push_back(Family("kpistream_bot_events_total", MetricType::kCounter, {},
                     {{{}, bots}}));
  s.push_back(
      Family("kpistream_state_sessions", MetricType::kGauge, {}, {{{}, 5021}}));
  FamilySnapshot lag =
      Family("kpistream_watermark_lag_seconds", MetricType::kGauge, {}, {});
  if (watermark) lag.samples.push_back({{}, 4.2});
  s.push_back(lag);
  s.push_back(Family("kpistream_consumer_lag_messages", MetricType::kGauge,
                     {"topic", "partition"},
                     {{{"web.events", "0"}, 7}, {{"web.events", "1"}, 5}}));
  s.push_back(Family("kpistream_assigned_partitions", MetricType::kGauge, {},
                     {{{}, 2}}));
  return s;
}

TEST(RunSummaryTest, WhatHappenedInTheInterval) {
  const MetricsSnapshot before = Engine(1000, 700, 2, 1, 0, true);
  const MetricsSnapshot now = Engine(1000 + 30 * 1234, 737, 12, 3, 0, true);
  const RunSummary summary = SummarizeRun(now, before, absl::Seconds(30));
  EXPECT_EQ(summary.text,
            "last 30 s: 1234 events/s in | sessions open 5021, closed 737 "
            "(+37) | dead letters 12 (10 malformed, 2 late) | watermark lag "
            "4.2 s | consumer lag 12 messages on 2 partitions");
}

TEST(RunSummaryTest, TheFirstIntervalCountsFromZero) {
  const RunSummary summary =
      SummarizeRun(Engine(100, 0, 0, 0, 5, false), {}, absl::Seconds(10));
  EXPECT_EQ(summary.text,
            "last 10 s: 10 events/s in | sessions open 5021, closed 0 (+0) | "
            "dead letters 5 (5 bot) | no watermark yet | consumer lag 12 "
            "messages on 2 partitions");
  bool has_lag_field = false;
  for (const LogField& f : summary.fields) {
    has_lag_field |= f.key == "watermark_lag_seconds";
  }
  EXPECT_FALSE(has_lag_field);
}

TEST(RunSummaryTest, FieldsForJsonLogs) {
  const RunSummary summary =
      SummarizeRun(Engine(300, 10, 4, 0, 0, true), Engine(0, 0, 0, 0, 0, true),
                   absl::Seconds(30));
  std::map<std::string, double> fields;
  for (const LogField& f : summary.fields) {
    if (const double* d = std::get_if<double>(&f.value)) fields[f.key] = *d;
  }
  EXPECT_DOUBLE_EQ(fields["events_per_second"], 10);
  EXPECT_DOUBLE_EQ(fields["sessions_open"], 5021);
  EXPECT_DOUBLE_EQ(fields["sessions_closed_delta"], 10);
  EXPECT_DOUBLE_EQ(fields["dead_letters"], 4);
  EXPECT_DOUBLE_EQ(fields["dead_letters_malformed"], 4);
  EXPECT_DOUBLE_EQ(fields["watermark_lag_seconds"], 4.2);
  EXPECT_DOUBLE_EQ(fields["consumer_lag_messages"], 12);
}

}  // namespace
}  // namespace kpistream
