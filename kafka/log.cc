#include "kafka/log.h"

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

namespace kpistream {
namespace {

std::atomic<KafkaLogHandler> g_handler{nullptr};

void LogCallback(const rd_kafka_t* rk, int level, const char* facility,
                 const char* message) {
  KafkaLogHandler handler = g_handler.load(std::memory_order_acquire);
  const char* client = rk != nullptr ? rd_kafka_name(rk) : "rdkafka";
  if (handler == nullptr) {
    // Installed while a handler was, which is gone now: librdkafka's shape.
    std::fprintf(stderr, "%%%d|%s|%s| %s\n", level, facility, client, message);
    return;
  }
  handler(level, client, facility, message);
}

}  // namespace

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
