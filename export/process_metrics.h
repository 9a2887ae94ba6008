// The process_* metrics that Prometheus' client libraries export
// (client_golang's process collector, client_java's; prometheus-cpp has
// none), read from Linux' /proc, for a MetricsEndpoint source:
//
//   process_cpu_seconds_total      counter  user + system CPU time, seconds
//   process_resident_memory_bytes  gauge    resident set size
//   process_virtual_memory_bytes   gauge    virtual memory size
//   process_open_fds               gauge    open file descriptors
//   process_max_fds                gauge    the soft limit of open files
//   process_start_time_seconds     gauge    start time, seconds since the epoch
//
// Thread-safe: every call reads /proc afresh.
#ifndef KPISTREAM_EXPORT_PROCESS_METRICS_H_
#define KPISTREAM_EXPORT_PROCESS_METRICS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "aggregate/metrics_snapshot.h"

namespace kpistream {

struct ProcessStats {
  double cpu_seconds = 0;
  double resident_memory_bytes = 0;
  double virtual_memory_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;  // +Inf when unlimited
  double start_time_seconds = 0;
};

// Reads the stats of process `pid` ("self" for this one) from `proc`
// (normally "/proc"). An unreadable or unparsable file is an error naming it.
absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc = "/proc",
                                              const std::string& pid = "self");

// The parts, for tests. `stat`: the text of /proc/<pid>/stat; fills
// cpu_seconds, resident and virtual memory and start_time_seconds (from
// `boot_time`, seconds since the epoch).
absl::Status ParseProcessStat(absl::string_view stat, double ticks_per_second,
                              double page_size, double boot_time,
                              ProcessStats* stats);
// The "btime" of /proc/stat.
absl::StatusOr<double> ParseBootTime(absl::string_view proc_stat);
// The soft "Max open files" of /proc/<pid>/limits.
absl::StatusOr<double> ParseMaxOpenFiles(absl::string_view limits);

// The six families for `stats`.
MetricsSnapshot ProcessMetricsSnapshot(const ProcessStats& stats);

// A MetricsEndpoint::Source: this process' metrics, or none when /proc
// cannot be read (e.g. not Linux).
MetricsSnapshot CollectProcessMetrics();

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_PROCESS_METRICS_H_
