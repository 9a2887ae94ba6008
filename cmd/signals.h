// Process-wide stop request, set by SIGINT/SIGTERM. Long-running subcommands
// poll StopRequested() in their loops (at least every ~100 ms) and return.
#ifndef KPISTREAM_CMD_SIGNALS_H_
#define KPISTREAM_CMD_SIGNALS_H_

namespace kpistream {

// Installs the SIGINT/SIGTERM handlers (idempotent).
void InstallStopHandlers();
bool StopRequested();
// Lets code (tests, the demo's own timers) request a stop.
void RequestStop();

}  // namespace kpistream

#endif  // KPISTREAM_CMD_SIGNALS_H_
