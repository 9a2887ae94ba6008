#include "kafka/log.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kpistream {
namespace {

std::atomic<KafkaLogHandler> g_handler{nullptr};

// The latest warning or error (see LastKafkaTrouble()). Never destroyed:
// librdkafka's threads may log while the process exits.
struct Trouble {
  std::mutex mu;
  std::string message;
  absl::Time at = absl::InfinitePast();
};
Trouble& LatestTrouble() {
  static Trouble* trouble = new Trouble();
  return *trouble;
}

void LogCallback(const rd_kafka_t* rk, int level, const char* facility,
                 const char* message) {
  KafkaLogHandler handler = g_handler.load(std::memory_order_acquire);
  const char* client = rk != nullptr ? rd_kafka_name(rk) : "rdkafka";
  // Warnings or worse; not librdkafka's summary that follows a connection
  // failure ("1/1 brokers are down"), which would hide its cause.
  if (level <= 4 && !absl::StrContains(message, " brokers are down")) {
    Trouble& t = LatestTrouble();
    std::lock_guard<std::mutex> lock(t.mu);
    t.message = absl::StrCat(client, ": ", message);
    t.at = absl::Now();
  }
  if (handler == nullptr) {
    // Installed while a handler was, which is gone now: librdkafka's shape.
    std::fprintf(stderr, "%%%d|%s|%s| %s\n", level, facility, client, message);
    return;
  }
  handler(level, client, facility, message);
}

}  // namespace

std::string LastKafkaTrouble(absl::Duration within) {
  Trouble& t = LatestTrouble();
  std::lock_guard<std::mutex> lock(t.mu);
  const absl::Duration ago = absl::Now() - t.at;
  if (ago > within) return {};
  // Whole seconds ("0s", not absl's "0" for a zero duration).
  return absl::StrCat(t.message, " (",
                      absl::ToInt64Seconds(std::max(ago, absl::ZeroDuration())),
                      "s ago)");
}

void SetKafkaLogHandler(KafkaLogHandler handler) {
  g_handler.store(handler, std::memory_order_release);
}

void RouteKafkaLogs(rd_kafka_conf_t* conf) {
  if (g_handler.load(std::memory_order_acquire) == nullptr) return;
  rd_kafka_conf_set_log_cb(conf, &LogCallback);
}

void ReportKafkaEvent(const rd_kafka_t* rk, int level,
                      absl::string_view facility, absl::string_view message) {
  const std::string f(facility), m(message);
  LogCallback(rk, level, f.c_str(), m.c_str());
}

}  // namespace kpistream
