#include "cmd/run_summary.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cmd/signals.h"
#include "engine/engine.h"

namespace kpistream {
namespace {

const FamilySnapshot* Find(const MetricsSnapshot& snapshot,
                           absl::string_view name) {
  for (const FamilySnapshot& family : snapshot) {
    if (family.name == name) return &family;
  }
  return nullptr;
}

// Values of a family by the value of its label `label`.
std::map<std::string, double> ByLabel(const MetricsSnapshot& snapshot,
                                      absl::string_view name,
                                      absl::string_view label) {
  std::map<std::string, double> out;
  const FamilySnapshot* family = Find(snapshot, name);
  if (family == nullptr) return out;
  for (size_t i = 0; i < family->label_names.size(); ++i) {
    if (family->label_names[i] != label) continue;
    for (const MetricSample& sample : family->samples) {
      out[sample.label_values[i]] += sample.value;
    }
  }
  return out;
}

}  // namespace

RunSummary SummarizeRun(const MetricsSnapshot& now,
                        const MetricsSnapshot& before,
                        absl::Duration interval) {
  RunSummary summary;
  const double seconds = std::max(absl::ToDoubleSeconds(interval), 1e-9);
  const double events = SumSamples(now, "kpistream_events_consumed_total") -
                        SumSamples(before, "kpistream_events_consumed_total");
  const double open = SumSamples(now, "kpistream_state_sessions");
  const double closed = SumSamples(now, "web_sessions_closed_total");
  const double closed_delta =
      closed - SumSamples(before, "web_sessions_closed_total");

  // Dead letters in the interval, by reason, most frequent first.
  std::map<std::string, double> reasons;
  const std::map<std::string, double> invalid_now =
      ByLabel(now, "kpistream_events_invalid_total", "reason");
  const std::map<std::string, double> invalid_before =
      ByLabel(before, "kpistream_events_invalid_total", "reason");
  for (const auto& [reason, value] : invalid_now) {
    auto old = invalid_before.find(reason);
    reasons[reason] = value - (old == invalid_before.end() ? 0 : old->second);
  }
  for (const auto& [reason, family] :
       {std::pair<const char*, const char*>{"late",
                                            "kpistream_events_late_total"},
        {"duplicate", "kpistream_events_duplicate_total"},
        {"bot", "kpistream_bot_events_total"}}) {
    reasons[reason] = SumSamples(now, family) - SumSamples(before, family);
  }
  std::vector<std::pair<std::string, double>> sorted;
  double dead_letters = 0;
  for (const auto& [reason, n] : reasons) {
    if (n <= 0) continue;
    sorted.push_back({reason, n});
    dead_letters += n;
  }
  std::stable_sort(
      sorted.begin(), sorted.end(),
      [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> parts;
  for (const auto& [reason, n] : sorted) {
    parts.push_back(absl::StrFormat("%.0f %s", n, reason));
  }

  // The first family of the name: the engine adds its own after the
  // threads' (engine/engine.cc Publish).
  const FamilySnapshot* lag = Find(now, "kpistream_watermark_lag_seconds");
  const bool has_watermark = lag != nullptr && !lag->samples.empty();
  double watermark_lag = 0;
  if (has_watermark) {
    for (const MetricSample& sample : lag->samples)
      watermark_lag += sample.value;
  }
  const double consumer_lag =
      SumSamples(now, "kpistream_consumer_lag_messages");
  const double partitions = SumSamples(now, "kpistream_assigned_partitions");

  summary.text = absl::StrFormat(
      "last %.0f s: %.0f events/s in | sessions open %.0f, closed %.0f "
      "(+%.0f) | dead letters %.0f%s | %s | consumer lag %.0f messages on "
      "%.0f partition%s",
      seconds, events / seconds, open, closed, closed_delta, dead_letters,
      parts.empty() ? "" : absl::StrCat(" (", absl::StrJoin(parts, ", "), ")"),
      has_watermark ? absl::StrFormat("watermark lag %.1f s", watermark_lag)
                    : std::string("no watermark yet"),
      consumer_lag, partitions, partitions == 1 ? "" : "s");
  summary.fields = {{"interval_seconds", seconds},
                    {"events_per_second", events / seconds},
                    {"sessions_open", open},
                    {"sessions_closed", closed},
                    {"sessions_closed_delta", closed_delta},
                    {"dead_letters", dead_letters}};
  for (const auto& [reason, n] : sorted) {
    summary.fields.push_back({absl::StrCat("dead_letters_", reason), n});
  }
  if (has_watermark) {
    summary.fields.push_back({"watermark_lag_seconds", watermark_lag});
  }
  summary.fields.push_back({"consumer_lag_messages", consumer_lag});
  summary.fields.push_back({"assigned_partitions", partitions});
  return summary;
}

void LogRunSummaries(const std::function<MetricsSnapshot()>& snapshot,
                     absl::Duration interval, const std::atomic<bool>& done) {
  MetricsSnapshot before;
  absl::Time last = absl::Now();
  while (!done.load() && !StopRequested()) {
    absl::SleepFor(absl::Milliseconds(100));
    const absl::Time now = absl::Now();
    if (now - last < interval) continue;
    MetricsSnapshot current = snapshot();
    const RunSummary summary = SummarizeRun(current, before, now - last);
    Log(LogLevel::kInfo, "run", summary.text, summary.fields);
    before = std::move(current);
    last = now;
  }
}

}  // namespace kpistream
