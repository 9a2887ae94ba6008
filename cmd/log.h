// Minimal structured-enough logging to stderr for the binary's wiring:
// "2026-11-23T04:55:00.123Z INFO  engine: message". Library modules return
// absl::Status instead of logging.
#ifndef KPISTREAM_CMD_LOG_H_
#define KPISTREAM_CMD_LOG_H_

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kpistream {

template <typename... Args>
void LogLine(const char* level, const absl::FormatSpec<Args...>& format,
             const Args&... args) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " ", level, " ", absl::StrFormat(format, args...), "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

#define KPI_LOG_INFO(...) ::kpistream::LogLine("INFO ", __VA_ARGS__)
#define KPI_LOG_WARN(...) ::kpistream::LogLine("WARN ", __VA_ARGS__)
#define KPI_LOG_ERROR(...) ::kpistream::LogLine("ERROR", __VA_ARGS__)

}  // namespace kpistream

#endif  // KPISTREAM_CMD_LOG_H_
