// Where the log lines of kpistream's librdkafka clients go. librdkafka
// writes them to stderr in its own format by default; a binary with its own
// logger installs a handler once, before it creates any client, and every
// client kpistream creates passes its configuration through RouteKafkaLogs()
// (kafka::NewConf does it for the engine's clients; the embedded broker
// calls it itself).
//
// The handler is called on librdkafka's internal threads: it must be
// thread-safe and must not call back into librdkafka.
#ifndef KPISTREAM_KAFKA_LOG_H_
#define KPISTREAM_KAFKA_LOG_H_

#include <librdkafka/rdkafka.h>

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kpistream {

// `level`: syslog severity (0 emergency .. 7 debug); `client`: the
// client's name, e.g. "kpistream#consumer-1"; `facility`: librdkafka's
// (e.g. "FAIL", "REQTMOUT").
using KafkaLogHandler = void (*)(int level, absl::string_view client,
                                 absl::string_view facility,
                                 absl::string_view message);

// Process-wide; nullptr restores librdkafka's default. Affects clients
// created afterwards.
void SetKafkaLogHandler(KafkaLogHandler handler);

// Sets `conf`'s log callback to the installed handler (if any).
void RouteKafkaLogs(rd_kafka_conf_t* conf);

// The latest warning or error a client logged or reported ("client:
// message (N s ago)"), if within `within`; empty otherwise. For a reason
// that names the cause (e.g. /readyz while the engine starts).
std::string LastKafkaTrouble(absl::Duration within);

// Reports what a client said outside its log (e.g. a consumer's error
// event) through the same handler; on stderr when none is installed.
void ReportKafkaEvent(const rd_kafka_t* rk, int level,
                      absl::string_view facility, absl::string_view message);

}  // namespace kpistream

#endif  // KPISTREAM_KAFKA_LOG_H_
