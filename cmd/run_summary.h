// The periodic one-line account of `kpistream run` (SPEC §7), like the
// demo's, computed from two snapshots of the engine's metrics taken
// `interval` apart:
//
//   last 30 s: 1234 events/s in | sessions open 5021, closed 812 (+37) |
//   dead letters 12 (10 malformed, 2 late) | watermark lag 4.2 s |
//   consumer lag 0 messages on 4 partitions
#ifndef KPISTREAM_CMD_RUN_SUMMARY_H_
#define KPISTREAM_CMD_RUN_SUMMARY_H_

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "aggregate/metrics_snapshot.h"
#include "cmd/log.h"

namespace kpistream {

struct RunSummary {
  std::string text;
  // For json logs: events_per_second, sessions_open, sessions_closed,
  // sessions_closed_delta, dead_letters, dead_letters_<reason>,
  // watermark_lag_seconds (absent without a watermark),
  // consumer_lag_messages, assigned_partitions.
  std::vector<LogField> fields;
};

// `before` may be empty (the start: every counter was 0).
RunSummary SummarizeRun(const MetricsSnapshot& now,
                        const MetricsSnapshot& before, absl::Duration interval);

// Logs SummarizeRun() (INFO, component "run") every `interval` of the wall
// clock until `done` or StopRequested(); returns within 100 ms of either.
void LogRunSummaries(const std::function<MetricsSnapshot()>& snapshot,
                     absl::Duration interval, const std::atomic<bool>& done);

}  // namespace kpistream

#endif  // KPISTREAM_CMD_RUN_SUMMARY_H_
