// The binary's logger: one line per event on stderr (SPEC §7). Library
// modules return absl::Status instead of logging; the wiring in cmd/ logs.
//
//   text (default): 2026-11-23T04:55:00.123Z INFO  engine: message
//   json:           {"ts":"2026-11-23T04:55:00.123Z","level":"info",
//                    "component":"engine","msg":"message", ...fields}
//
// The format is chosen once, before any thread logs (SetLogFormat, from
// `--log-format`). Logging is thread-safe: each line is written with one
// call, so lines of different threads never interleave (librdkafka's
// threads log through it, see InstallKafkaLogger).
#ifndef KPISTREAM_CMD_LOG_H_
#define KPISTREAM_CMD_LOG_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kpistream {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

// "text" or "json"; anything else is an error naming the value.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

// Process-wide; call before any thread logs. Default: kText.
void SetLogFormat(LogFormat format);
LogFormat GetLogFormat();

// "debug", "info", "warn" or "error"; anything else is an error naming it.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
// Lines below this level are not written. Default: kInfo. Debug lines
// (KPI_LOG_DEBUG) trace every commit, checkpoint and restore read.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// A key/value of a json line ("topic": "web.events", "rejected": 402).
// Text lines leave fields out: their message says it all.
struct LogField {
  LogField(absl::string_view k, absl::string_view v)
      : key(k), value(std::string(v)) {}
  LogField(absl::string_view k, const char* v)
      : key(k), value(std::string(v)) {}
  LogField(absl::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(absl::string_view k, int64_t v) : key(k), value(v) {}
  LogField(absl::string_view k, int v) : key(k), value(int64_t{v}) {}
  LogField(absl::string_view k, double v) : key(k), value(v) {}
  std::string key;
  std::variant<std::string, int64_t, double> value;
};

// One line, newline included. `component` may be empty. Invalid UTF-8 and
// control characters never break a line: json escapes them (invalid bytes
// become U+FFFD), text replaces line breaks with spaces.
std::string FormatLogLine(LogFormat format, absl::Time time, LogLevel level,
                          absl::string_view component,
                          absl::string_view message,
                          const std::vector<LogField>& fields = {});

// Writes one line to stderr in the process' format.
void Log(LogLevel level, absl::string_view component, absl::string_view message,
         const std::vector<LogField>& fields = {});

// From now on each of `secrets` (values of `${VAR}`s in kafka.properties:
// passwords, keys) reads "[redacted]" in every line Log() writes (SPEC §8:
// secrets are never logged; librdkafka's own errors quote a value it
// refuses). Called once, before the engine's threads start.
void RedactInLogs(std::vector<std::string> secrets);

// Splits "engine: assigned web.events[0]" into the component ("engine") and
// the rest; a message without such a prefix has an empty component. The
// prefix is at most 32 characters of [a-z0-9 _.-], so "kpistream run: ..."
// is one and "not a valid JSON WebEvent: ..." is not.
void SplitComponent(absl::string_view line, absl::string_view* component,
                    absl::string_view* message);

// printf-style "component: message" (the KPI_LOG_* macros).
template <typename... Args>
void LogLine(LogLevel level, const absl::FormatSpec<Args...>& format,
             const Args&... args) {
  const std::string line = absl::StrFormat(format, args...);
  absl::string_view component, message;
  SplitComponent(line, &component, &message);
  Log(level, component, message);
}

// The arguments of a debug line are not even formatted below kDebug.
#define KPI_LOG_DEBUG(...)                                              \
  do {                                                                  \
    if (::kpistream::LogEnabled(::kpistream::LogLevel::kDebug)) {       \
      ::kpistream::LogLine(::kpistream::LogLevel::kDebug, __VA_ARGS__); \
    }                                                                   \
  } while (0)
#define KPI_LOG_INFO(...) \
  ::kpistream::LogLine(::kpistream::LogLevel::kInfo, __VA_ARGS__)
#define KPI_LOG_WARN(...) \
  ::kpistream::LogLine(::kpistream::LogLevel::kWarn, __VA_ARGS__)
#define KPI_LOG_ERROR(...) \
  ::kpistream::LogLine(::kpistream::LogLevel::kError, __VA_ARGS__)

// Sends the log lines of every librdkafka client this process creates
// afterwards (kafka/log.h) through Log(): component "kafka", the
// client's name first ("kpistream#consumer-1: FAIL: ..."), syslog levels
// 0-3 as ERROR, 4 as WARN, 5-6 as INFO, 7 as DEBUG.
void InstallKafkaLogger();

}  // namespace kpistream

#endif  // KPISTREAM_CMD_LOG_H_
