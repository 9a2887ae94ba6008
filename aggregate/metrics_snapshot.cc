#include "aggregate/metrics_snapshot.h"

#include <algorithm>
#include <cstddef>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace kpistream {
namespace {

// Families of one name are produced by the same code in every stream thread
// (processing.threads may run several), so they share type, label names and
// bucket bounds; only the samples differ.
void MergeFamily(FamilySnapshot&& from, FamilySnapshot* into) {
  absl::flat_hash_map<std::vector<std::string>, size_t> index;
  index.reserve(into->samples.size());
  for (size_t i = 0; i < into->samples.size(); ++i) {
    index.emplace(into->samples[i].label_values, i);
  }
  for (MetricSample& sample : from.samples) {
    auto [it, inserted] =
        index.emplace(sample.label_values, into->samples.size());
    if (inserted) {
      into->samples.push_back(std::move(sample));
      continue;
    }
    MetricSample& target = into->samples[it->second];
    if (into->merge == MergeRule::kMax) {
      target.value = std::max(target.value, sample.value);
      continue;
    }
    target.value += sample.value;
    target.count += sample.count;
    if (target.bucket_counts.size() < sample.bucket_counts.size()) {
      target.bucket_counts.resize(sample.bucket_counts.size(), 0);
    }
    for (size_t b = 0; b < sample.bucket_counts.size(); ++b) {
      target.bucket_counts[b] += sample.bucket_counts[b];
    }
  }
}

}  // namespace

void MergeSnapshot(MetricsSnapshot from, MetricsSnapshot* into) {
  absl::flat_hash_map<std::string, size_t> by_name;
  by_name.reserve(into->size());
  for (size_t i = 0; i < into->size(); ++i) {
    by_name.emplace((*into)[i].name, i);
  }
  for (FamilySnapshot& family : from) {
    auto [it, inserted] = by_name.emplace(family.name, into->size());
    if (inserted) {
      into->push_back(std::move(family));
    } else {
      MergeFamily(std::move(family), &(*into)[it->second]);
    }
  }
}

}  // namespace kpistream
