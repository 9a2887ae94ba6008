#include "cmd/signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>
#include <utility>

#include "cmd/log.h"

namespace kpistream {
namespace {
std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop.store(true); }
}  // namespace

void InstallStopHandlers() {
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bool StopRequested() { return g_stop.load(std::memory_order_relaxed); }
void RequestStop() { g_stop.store(true); }

void ExitIfStillRunningAfter(absl::Duration after, int code, std::string why) {
  std::thread([after, code, why = std::move(why)] {
    absl::SleepFor(after);
    KPI_LOG_ERROR("%s", why);
    std::fflush(stderr);
    std::fflush(stdout);
    _exit(code);
  }).detach();
}

}  // namespace kpistream
