// Process-wide stop request, set by SIGINT/SIGTERM. Long-running subcommands
// poll StopRequested() in their loops (at least every ~100 ms) and return.
#ifndef KPISTREAM_CMD_SIGNALS_H_
#define KPISTREAM_CMD_SIGNALS_H_

#include <string>

#include "absl/time/time.h"

namespace kpistream {

// Installs the SIGINT/SIGTERM handlers (idempotent).
void InstallStopHandlers();
bool StopRequested();
// Lets code (tests, the demo's own timers) request a stop.
void RequestStop();

// Ends the process with exit code `code` if it still runs `after` from now,
// logging `why` first. For the teardown after the engine's last commit,
// where only the Kafka clients and the local store are let go: librdkafka
// 2.0's rd_kafka_destroy can wait forever there (an audit: after an input
// topic was deleted and created again with fewer partitions, every SIGTERM
// logged "stopped cleanly" and never exited; a second one did nothing).
void ExitIfStillRunningAfter(absl::Duration after, int code, std::string why);

}  // namespace kpistream

#endif  // KPISTREAM_CMD_SIGNALS_H_
