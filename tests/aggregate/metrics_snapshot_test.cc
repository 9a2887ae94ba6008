#include "aggregate/metrics_snapshot.h"

#include <string>
#include <vector>

#include "aggregate/metric_families.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

using ::testing::ElementsAre;

MetricSample Sample(std::vector<std::string> labels, double value) {
  MetricSample sample;
  sample.label_values = std::move(labels);
  sample.value = value;
  return sample;
}

MetricSample Hist(std::vector<std::string> labels,
                  std::vector<uint64_t> buckets, double sum) {
  MetricSample sample;
  sample.label_values = std::move(labels);
  sample.bucket_counts = buckets;
  for (uint64_t b : buckets) sample.count += b;
  sample.value = sum;
  return sample;
}

FamilySnapshot Counter(std::string name, std::vector<MetricSample> samples) {
  FamilySnapshot family;
  family.name = std::move(name);
  family.help = "help";
  family.type = MetricType::kCounter;
  family.label_names = {"site"};
  family.samples = std::move(samples);
  return family;
}

FamilySnapshot Histogram(std::vector<MetricSample> samples) {
  FamilySnapshot family;
  family.name = "h";
  family.type = MetricType::kHistogram;
  family.label_names = {"site"};
  family.bucket_bounds = {1, 10};
  family.samples = std::move(samples);
  return family;
}

const FamilySnapshot* Find(const MetricsSnapshot& s, const std::string& name) {
  for (const FamilySnapshot& f : s) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

TEST(MergeSnapshotTest, SumsTwoShards) {
  MetricsSnapshot shard0 = {
      Counter("c", {Sample({"a"}, 1), Sample({"b"}, 2)}),
      Histogram({Hist({"a"}, {1, 0, 2}, 40.5)}),
      Counter("only0", {Sample({"a"}, 7)}),
  };
  MetricsSnapshot shard1 = {
      Counter("c", {Sample({"b"}, 10), Sample({"c"}, 5)}),
      Histogram({Hist({"a"}, {0, 3, 1}, 20), Hist({"b"}, {1, 0, 0}, 0.5)}),
      Counter("only1", {}),
  };

  MetricsSnapshot merged;
  MergeSnapshot(shard0, &merged);
  MergeSnapshot(shard1, &merged);

  ASSERT_EQ(merged.size(), 4u);
  const FamilySnapshot* c = Find(merged, "c");
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->samples.size(), 3u);
  EXPECT_EQ(c->samples[0].label_values, std::vector<std::string>{"a"});
  EXPECT_EQ(c->samples[0].value, 1);
  EXPECT_EQ(c->samples[1].label_values, std::vector<std::string>{"b"});
  EXPECT_EQ(c->samples[1].value, 12);
  EXPECT_EQ(c->samples[2].label_values, std::vector<std::string>{"c"});
  EXPECT_EQ(c->samples[2].value, 5);

  const FamilySnapshot* h = Find(merged, "h");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->type, MetricType::kHistogram);
  EXPECT_THAT(h->bucket_bounds, ElementsAre(1, 10));
  ASSERT_EQ(h->samples.size(), 2u);
  EXPECT_THAT(h->samples[0].bucket_counts, ElementsAre(1, 3, 3));
  EXPECT_EQ(h->samples[0].count, 7u);
  EXPECT_EQ(h->samples[0].value, 60.5);
  EXPECT_THAT(h->samples[1].bucket_counts, ElementsAre(1, 0, 0));
  EXPECT_EQ(h->samples[1].count, 1u);

  ASSERT_NE(Find(merged, "only0"), nullptr);
  EXPECT_EQ(Find(merged, "only0")->samples[0].value, 7);
  ASSERT_NE(Find(merged, "only1"), nullptr);  // empty families survive
  EXPECT_TRUE(Find(merged, "only1")->samples.empty());
}

TEST(MergeSnapshotTest, MergingIntoEmptyCopies) {
  MetricsSnapshot from = {Counter("c", {Sample({"a"}, 3)})};
  MetricsSnapshot into;
  MergeSnapshot(from, &into);
  ASSERT_EQ(into.size(), 1u);
  EXPECT_EQ(into[0].name, "c");
  EXPECT_EQ(into[0].help, "help");
  EXPECT_EQ(into[0].label_names, std::vector<std::string>{"site"});
  ASSERT_EQ(into[0].samples.size(), 1u);
  EXPECT_EQ(into[0].samples[0].value, 3);
}

TEST(MergeSnapshotTest, GaugesSumAndCanGoNegative) {
  MetricsSnapshot a = {Counter("g", {Sample({"a"}, 2)})};
  MetricsSnapshot b = {Counter("g", {Sample({"a"}, -3)})};
  a[0].type = b[0].type = MetricType::kGauge;
  MergeSnapshot(b, &a);
  EXPECT_EQ(a[0].samples[0].value, -1);
}

// The stream threads restore at once: the instance's last restore took as
// long as the longest of theirs (a sum of parallel durations measured
// nothing), while the records they read add up.
TEST(MergeSnapshotTest, RestoreSecondsAreTheLongestThreadsRecordsTheSum) {
  MetricsSnapshot a = {SingleSample(families::kRestoreSeconds, 4),
                       SingleSample(families::kRestoreRecords, 100)};
  MetricsSnapshot b = {SingleSample(families::kRestoreSeconds, 10),
                       SingleSample(families::kRestoreRecords, 50)};
  MetricsSnapshot c = {SingleSample(families::kRestoreSeconds, 2),
                       SingleSample(families::kRestoreRecords, 1)};
  MergeSnapshot(b, &a);
  MergeSnapshot(c, &a);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].samples[0].value, 10);
  EXPECT_EQ(a[1].samples[0].value, 151);
}

TEST(MergeSnapshotTest, LabelValuesMatchAsWholeTuples) {
  FamilySnapshot f0 = Counter("c", {Sample({"a", "bc"}, 1)});
  FamilySnapshot f1 = Counter("c", {Sample({"ab", "c"}, 1)});
  f0.label_names = f1.label_names = {"x", "y"};
  MetricsSnapshot into = {f0};
  MergeSnapshot({f1}, &into);
  ASSERT_EQ(into[0].samples.size(), 2u);
}

}  // namespace
}  // namespace kpistream
