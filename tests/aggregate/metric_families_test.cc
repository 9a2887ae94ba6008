// The metric families as data (aggregate/metric_families.h): the table obeys
// SPEC §4's naming, and what KpiCounters exports is what the table says.
#include "aggregate/metric_families.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "aggregate/kpi_counters.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

bool IsPrometheusName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  for (const char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

TEST(MetricFamiliesTest, NamesFollowSpecSection4) {
  std::set<absl::string_view> names;
  for (const MetricFamilyDef* family : AllMetricFamilies()) {
    SCOPED_TRACE(std::string(family->name));
    EXPECT_TRUE(names.insert(family->name).second) << "listed twice";
    EXPECT_TRUE(IsPrometheusName(family->name));
    EXPECT_FALSE(family->help.empty());
    EXPECT_TRUE(absl::StartsWith(family->name, "web_") ||
                absl::StartsWith(family->name, "kpi_") ||
                absl::StartsWith(family->name, "kpistream_") ||
                absl::StartsWith(family->name, "process_"));
    // Counters end in _total; nothing else does.
    EXPECT_EQ(family->type == MetricType::kCounter,
              absl::EndsWith(family->name, "_total"));
    // Histograms, and only they, have ascending bucket bounds.
    EXPECT_EQ(family->type == MetricType::kHistogram,
              !family->bucket_bounds.empty());
    for (size_t i = 1; i < family->bucket_bounds.size(); ++i) {
      EXPECT_LT(family->bucket_bounds[i - 1], family->bucket_bounds[i]);
    }
    std::set<absl::string_view> labels;
    for (const absl::string_view label : family->labels) {
      EXPECT_TRUE(IsPrometheusName(label)) << label;
      EXPECT_TRUE(labels.insert(label).second) << label;
    }
  }
}

TEST(MetricFamiliesTest, SeriesBelongToTheirFamily) {
  EXPECT_EQ(FamilyOfSeries("web_sessions_closed_total"),
            &families::kSessionsClosed);
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    EXPECT_EQ(
        FamilyOfSeries(std::string("web_session_duration_seconds") + suffix),
        &families::kSessionDuration);
  }
  // Only histograms have such series.
  EXPECT_EQ(FamilyOfSeries("web_sessions_closed_total_sum"), nullptr);
  EXPECT_EQ(FamilyOfSeries("web_session_duration_seconds_total"), nullptr);
  EXPECT_EQ(FamilyOfSeries("up"), nullptr);
}

TEST(MetricFamiliesTest, KpiCountersExportTheCountedFamiliesAsDescribed) {
  KpiCounters counters({});
  const MetricsSnapshot snapshot = counters.Snapshot();
  const absl::Span<const MetricFamilyDef* const> counted = CountedFamilies();
  ASSERT_EQ(snapshot.size(), counted.size());
  for (size_t i = 0; i < counted.size(); ++i) {
    const MetricFamilyDef& def = *counted[i];
    const FamilySnapshot& family = snapshot[i];
    SCOPED_TRACE(family.name);
    EXPECT_EQ(family.name, def.name);
    EXPECT_EQ(family.help, def.help);
    EXPECT_EQ(family.type, def.type);
    EXPECT_EQ(family.label_names,
              std::vector<std::string>(def.labels.begin(), def.labels.end()));
    EXPECT_EQ(family.bucket_bounds,
              std::vector<double>(def.bucket_bounds.begin(),
                                  def.bucket_bounds.end()));
  }
}

TEST(MetricFamiliesTest, SnapshotBuilderListsEveryFamilyWithSortedSamples) {
  const MetricFamilyDef* const list[] = {&families::kSessionsClosed,
                                         &families::kEventsLate};
  SnapshotBuilder builder(list);
  builder.Add(families::kSessionsClosed, {"shop", "Email", "mobile", "DE"}, 2);
  builder.Add(families::kSessionsClosed, {"blog", "Direct", "desktop", "FR"},
              1);
  const MetricsSnapshot snapshot = std::move(builder).Finish();
  ASSERT_EQ(snapshot.size(), 2u);
  EXPECT_EQ(snapshot[0].name, "web_sessions_closed_total");
  ASSERT_EQ(snapshot[0].samples.size(), 2u);
  EXPECT_EQ(snapshot[0].samples[0].label_values[0], "blog");
  EXPECT_EQ(snapshot[0].samples[0].value, 1);
  EXPECT_EQ(snapshot[0].samples[1].value, 2);
  EXPECT_EQ(snapshot[1].name, "kpistream_events_late_total");
  EXPECT_TRUE(snapshot[1].samples.empty());
}

}  // namespace
}  // namespace kpistream
