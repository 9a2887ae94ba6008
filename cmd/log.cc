#include "cmd/log.h"

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "kafka/log.h"
#include "nlohmann/json.hpp"

namespace kpistream {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
// RedactInLogs(): set once, before other threads log.
std::vector<std::string>* g_secrets = nullptr;
std::atomic<LogLevel> g_level{LogLevel::kInfo};

constexpr size_t kMaxComponent = 32;

absl::string_view TextLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO ";
    case LogLevel::kWarn:
      return "WARN ";
    case LogLevel::kError:
      return "ERROR";
  }
  return "INFO ";
}

absl::string_view JsonLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// Text lines stay one line whatever the message carries.
std::string OneLine(absl::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

void KafkaToLog(int level, absl::string_view client, absl::string_view facility,
                absl::string_view message) {
  const LogLevel to = level <= 3   ? LogLevel::kError
                      : level == 4 ? LogLevel::kWarn
                      : level <= 6 ? LogLevel::kInfo
                                   : LogLevel::kDebug;
  Log(to, "kafka", absl::StrCat(client, ": ", facility, ": ", message),
      {{"client", client},
       {"facility", facility},
       {"syslog_level", static_cast<int64_t>(level)}});
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("log format must be text or json, got \"", name, "\""));
}

void SetLogFormat(LogFormat format) { g_format.store(format); }

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(absl::StrCat(
      "log level must be debug, info, warn or error, got \"", name, "\""));
}

void SetLogLevel(LogLevel level) { g_level.store(level); }
bool LogEnabled(LogLevel level) { return level >= g_level.load(); }
LogFormat GetLogFormat() { return g_format.load(); }

void SplitComponent(absl::string_view line, absl::string_view* component,
                    absl::string_view* message) {
  *component = absl::string_view();
  *message = line;
  const size_t colon = line.find(": ");
  if (colon == 0 || colon == absl::string_view::npos || colon > kMaxComponent) {
    return;
  }
  for (char c : line.substr(0, colon)) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == ' ' ||
          c == '_' || c == '.' || c == '-')) {
      return;
    }
  }
  *component = line.substr(0, colon);
  *message = line.substr(colon + 2);
}

std::string FormatLogLine(LogFormat format, absl::Time time, LogLevel level,
                          absl::string_view component,
                          absl::string_view message,
                          const std::vector<LogField>& fields) {
  const std::string ts =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
  if (format == LogFormat::kText) {
    return absl::StrCat(ts, " ", TextLevel(level), " ", component,
                        component.empty() ? "" : ": ", OneLine(message), "\n");
  }
  nlohmann::ordered_json line;
  line["ts"] = ts;
  line["level"] = std::string(JsonLevel(level));
  line["component"] = std::string(component);
  line["msg"] = std::string(message);
  for (const LogField& field : fields) {
    if (line.contains(field.key)) continue;  // the four above win
    if (const auto* s = std::get_if<std::string>(&field.value)) {
      line[field.key] = *s;
    } else if (const auto* i = std::get_if<int64_t>(&field.value)) {
      line[field.key] = *i;
    } else {
      line[field.key] = std::get<double>(field.value);
    }
  }
  return absl::StrCat(
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      "\n");
}

namespace {

void Redact(std::string* text) {
  for (const std::string& secret : *g_secrets) {
    absl::StrReplaceAll({{secret, "[redacted]"}}, text);
  }
}

}  // namespace

void Log(LogLevel level, absl::string_view component, absl::string_view message,
         const std::vector<LogField>& fields) {
  if (!LogEnabled(level)) return;
  if (g_secrets == nullptr) {
    const std::string line = FormatLogLine(GetLogFormat(), absl::Now(), level,
                                           component, message, fields);
    std::fwrite(line.data(), 1, line.size(), stderr);
    return;
  }
  // Redacted as written, before the line is formatted: in JSON a secret
  // with a quote or a backslash is escaped there, and in text a newline in
  // one is made a space, and neither matched (an audit).
  std::string redacted_component(component), redacted_message(message);
  Redact(&redacted_component);
  Redact(&redacted_message);
  std::vector<LogField> redacted_fields = fields;
  for (LogField& field : redacted_fields) {
    if (auto* s = std::get_if<std::string>(&field.value)) Redact(s);
  }
  std::string line =
      FormatLogLine(GetLogFormat(), absl::Now(), level, redacted_component,
                    redacted_message, redacted_fields);
  // And the line as written: a secret across the split of a component from
  // its message ("sasl ab: cd" for "ab: cd") is whole there again.
  Redact(&line);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void RedactInLogs(std::vector<std::string> secrets) {
  secrets.erase(std::remove(secrets.begin(), secrets.end(), std::string()),
                secrets.end());
  if (secrets.empty()) return;
  g_secrets = new std::vector<std::string>(std::move(secrets));
}

void InstallKafkaLogger() { SetKafkaLogHandler(&KafkaToLog); }

}  // namespace kpistream
