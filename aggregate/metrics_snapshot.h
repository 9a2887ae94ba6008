// A plain-data copy of metric values, published by the thread that owns the
// counters and read by exporters. aggregate/ knows nothing of Prometheus; this
// is the shape it hands over: families with label names and samples.
#ifndef KPISTREAM_AGGREGATE_METRICS_SNAPSHOT_H_
#define KPISTREAM_AGGREGATE_METRICS_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace kpistream {

enum class MetricType { kCounter, kGauge, kHistogram };

// How MergeSnapshot adds up two samples of one series.
enum class MergeRule { kSum, kMax };

struct MetricSample {
  // Parallel to FamilySnapshot::label_names.
  std::vector<std::string> label_values;
  double value = 0;  // counter / gauge value; histogram sum
  // Histograms only: cumulative-free counts per bucket, parallel to
  // FamilySnapshot::bucket_bounds plus one final +Inf bucket.
  std::vector<uint64_t> bucket_counts;
  uint64_t count = 0;  // histograms only: number of observations
};

struct FamilySnapshot {
  std::string name;
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<std::string> label_names;
  std::vector<double> bucket_bounds;  // histograms only, ascending
  std::vector<MetricSample> samples;
  MergeRule merge = MergeRule::kSum;
};

using MetricsSnapshot = std::vector<FamilySnapshot>;

// Adds `from` into `into`: samples with the same family name and label values
// are summed (counters, gauges and histograms alike); new ones are appended
// (moved from `from`: pass a temporary, or std::move, to copy nothing).
void MergeSnapshot(MetricsSnapshot from, MetricsSnapshot* into);

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_METRICS_SNAPSHOT_H_
