#include "export/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "aggregate/metric_families.h"

namespace kpistream {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<double> CountEntries(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot list ", dir));
  }
  double n = 0;
  while (const dirent* entry = readdir(d)) {
    const absl::string_view name(entry->d_name);
    if (name != "." && name != "..") ++n;
  }
  closedir(d);
  return n;
}

}  // namespace

absl::Status ParseProcessStat(absl::string_view stat, double ticks_per_second,
                              double page_size, double boot_time,
                              ProcessStats* stats) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
  const size_t comm_end = stat.rfind(')');
  if (comm_end == absl::string_view::npos) {
    return absl::InvalidArgumentError("no \"(comm)\" in the stat line");
  }
  // fields[0] is field 3 of proc(5), "state".
  const std::vector<absl::string_view> fields = absl::StrSplit(
      stat.substr(comm_end + 1), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  auto field = [&](int number, double* out) {
    const size_t index = static_cast<size_t>(number - 3);
    return index < fields.size() && absl::SimpleAtod(fields[index], out);
  };
  double utime = 0, stime = 0, starttime = 0, vsize = 0, rss = 0;
  if (!field(14, &utime) || !field(15, &stime) || !field(22, &starttime) ||
      !field(23, &vsize) || !field(24, &rss)) {
    return absl::InvalidArgumentError(
        "the stat line has fewer than 24 numeric fields");
  }
  stats->cpu_seconds = (utime + stime) / ticks_per_second;
  stats->virtual_memory_bytes = vsize;
  stats->resident_memory_bytes = rss * page_size;
  stats->start_time_seconds = boot_time + starttime / ticks_per_second;
  return absl::OkStatus();
}

absl::StatusOr<double> ParseBootTime(absl::string_view proc_stat) {
  for (absl::string_view line : absl::StrSplit(proc_stat, '\n')) {
    if (!absl::ConsumePrefix(&line, "btime ")) continue;
    double value = 0;
    if (absl::SimpleAtod(absl::StripAsciiWhitespace(line), &value)) {
      return value;
    }
  }
  return absl::InvalidArgumentError("no \"btime\" line");
}

absl::StatusOr<double> ParseMaxOpenFiles(absl::string_view limits) {
  for (absl::string_view line : absl::StrSplit(limits, '\n')) {
    // "Max open files            1024                 1048576    files"
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    const std::vector<absl::string_view> columns =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (columns.empty()) break;
    if (columns[0] == "unlimited") {
      return std::numeric_limits<double>::infinity();
    }
    double value = 0;
    if (absl::SimpleAtod(columns[0], &value)) return value;
    break;
  }
  return absl::InvalidArgumentError("no \"Max open files\" line");
}

absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc,
                                              const std::string& pid) {
  const std::string dir = absl::StrCat(proc, "/", pid);
  ProcessStats stats;
  auto system = ReadFile(absl::StrCat(proc, "/stat"));
  if (!system.ok()) return system.status();
  auto boot_time = ParseBootTime(*system);
  if (!boot_time.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(proc, "/stat: ", boot_time.status().message()));
  }
  auto stat = ReadFile(absl::StrCat(dir, "/stat"));
  if (!stat.ok()) return stat.status();
  absl::Status parsed = ParseProcessStat(
      *stat, static_cast<double>(sysconf(_SC_CLK_TCK)),
      static_cast<double>(sysconf(_SC_PAGESIZE)), *boot_time, &stats);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, "/stat: ", parsed.message()));
  }
  auto limits = ReadFile(absl::StrCat(dir, "/limits"));
  if (!limits.ok()) return limits.status();
  auto max_fds = ParseMaxOpenFiles(*limits);
  if (!max_fds.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, "/limits: ", max_fds.status().message()));
  }
  stats.max_fds = *max_fds;
  auto open_fds = CountEntries(absl::StrCat(dir, "/fd"));
  if (!open_fds.ok()) return open_fds.status();
  stats.open_fds = *open_fds;
  return stats;
}

MetricsSnapshot ProcessMetricsSnapshot(const ProcessStats& stats) {
  // Names and help as client_golang's process collector writes them.
  using namespace families;  // NOLINT: the process_* families
  MetricsSnapshot snapshot;
  for (const auto& [family, value] :
       std::initializer_list<std::pair<const MetricFamilyDef*, double>>{
           {&kProcessCpuSeconds, stats.cpu_seconds},
           {&kProcessOpenFds, stats.open_fds},
           {&kProcessMaxFds, stats.max_fds},
           {&kProcessVirtualMemory, stats.virtual_memory_bytes},
           {&kProcessResidentMemory, stats.resident_memory_bytes},
           {&kProcessStartTime, stats.start_time_seconds}}) {
    snapshot.push_back(SingleSample(*family, value));
  }
  return snapshot;
}

MetricsSnapshot CollectProcessMetrics() {
  absl::StatusOr<ProcessStats> stats = ReadProcessStats();
  if (!stats.ok()) return {};
  return ProcessMetricsSnapshot(*stats);
}

}  // namespace kpistream
