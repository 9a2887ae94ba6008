// Runs a KafkaCluster in the background for CTest fixtures, so that one
// cluster serves every test that requires the fixture:
//
//   kafka_cluster_daemon start --nodes N DIR
//     Starts an N-node cluster whose nodes live in DIR/cluster, then returns
//     (exit 0) leaving a daemon behind that owns it; DIR/bootstrap holds the
//     bootstrap address and DIR/pid the daemon's pid (SharedKafka() reads
//     them). A daemon still running from an earlier start is stopped first.
//     Exit 1 with the nodes' log tails if the cluster does not come up.
//   kafka_cluster_daemon stop DIR
//     Stops that daemon (SIGTERM) and waits until its cluster is down and
//     DIR/cluster removed. Exit 0 also when nothing was running.
//
// The daemon stops by itself after --max-lifetime (default 7200 s) or when
// DIR/pid disappears (the build tree was removed), so that an interrupted
// ctest run leaves no broker behind for long; the brokers die with it even if
// it is killed (they get SIGKILL when their parent dies).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/integration/kafka_cluster.h"

namespace kpistream::testing {
namespace {

namespace fs = std::filesystem;

int Usage() {
  std::cerr << "usage: kafka_cluster_daemon start [--nodes N] "
               "[--max-lifetime SECONDS] DIR\n"
               "       kafka_cluster_daemon stop DIR\n";
  return 2;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The pid in DIR/pid if that process is alive and is a kafka_cluster_daemon
// (not a recycled pid), else 0.
pid_t RunningDaemon(const std::string& dir) {
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(dir + "/pid")),
                        &pid) ||
      pid <= 0) {
    return 0;
  }
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t state = stat.rfind(')');
  if (stat.empty() || (state != std::string::npos && state + 2 < stat.size() &&
                       stat[state + 2] == 'Z')) {
    return 0;  // gone, or a zombie nobody reaped yet
  }
  if (!absl::StrContains(ReadFile(absl::StrCat("/proc/", pid, "/cmdline")),
                         "kafka_cluster_daemon")) {
    return 0;
  }
  return pid;
}

int Stop(const std::string& dir) {
  const pid_t pid = RunningDaemon(dir);
  if (pid == 0) {
    std::cout << "kafka_cluster_daemon: nothing running in " << dir << "\n";
  } else {
    const absl::Time start = absl::Now();
    kill(pid, SIGTERM);
    while (RunningDaemon(dir) != 0 && absl::Now() - start < absl::Seconds(60)) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (RunningDaemon(dir) != 0) {
      std::cerr << "kafka_cluster_daemon: " << pid
                << " did not stop within 60 s; killing it and its brokers\n";
      kill(pid, SIGKILL);
    }
    std::cout << "kafka_cluster_daemon: stopped " << pid << " in "
              << absl::FormatDuration(absl::Now() - start) << "\n";
  }
  std::error_code ignored;
  fs::remove(dir + "/bootstrap", ignored);
  fs::remove(dir + "/pid", ignored);
  fs::remove_all(dir + "/cluster", ignored);
  return 0;
}

// The daemon's body, after fork: owns the cluster until SIGTERM/SIGINT or
// the lifetime ends. Reports "ok <bootstrap>" or the error on `report_fd`.
[[noreturn]] void RunDaemon(const std::string& dir, int nodes,
                            absl::Duration max_lifetime, int report_fd) {
  setsid();
  // Leave ctest's pipes: it waits for them to close before it goes on.
  const int null_fd = open("/dev/null", O_RDONLY);
  const int log_fd =
      open((dir + "/daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  dup2(null_fd, STDIN_FILENO);
  dup2(log_fd, STDOUT_FILENO);
  dup2(log_fd, STDERR_FILENO);
  close(null_fd);
  close(log_fd);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  auto report = [report_fd](const std::string& message) {
    const std::string line = message + "\n";
    (void)!write(report_fd, line.data(), line.size());
    close(report_fd);
  };

  const absl::Time start = absl::Now();
  KafkaClusterOptions options;
  options.nodes = nodes;
  options.dir = dir + "/cluster";
  absl::StatusOr<std::unique_ptr<KafkaCluster>> cluster =
      KafkaCluster::Start(options);
  if (!cluster.ok()) {
    std::cerr << cluster.status() << "\n";
    report(absl::StrCat("error: ", cluster.status().message()));
    _exit(1);
  }
  std::ofstream(dir + "/bootstrap.tmp") << (*cluster)->bootstrap() << "\n";
  std::ofstream(dir + "/pid.tmp") << getpid() << "\n";
  fs::rename(dir + "/bootstrap.tmp", dir + "/bootstrap");
  fs::rename(dir + "/pid.tmp", dir + "/pid");
  std::cout << "serving " << (*cluster)->bootstrap() << " (" << nodes
            << " nodes, started in "
            << absl::FormatDuration(absl::Now() - start) << ")" << std::endl;
  report(absl::StrCat("ok ", (*cluster)->bootstrap(), " started in ",
                      absl::FormatDuration(absl::Now() - start)));

  // Also stop when DIR/pid is gone or names another daemon (e.g. the build
  // tree was removed), checked every few seconds.
  const std::string own_pid = absl::StrCat(getpid());
  std::string reason = "lifetime over";
  while (absl::Now() - start < max_lifetime) {
    const timespec tick = absl::ToTimespec(absl::Seconds(5));
    const int signal = sigtimedwait(&stop_signals, nullptr, &tick);
    if (signal > 0) {
      reason = absl::StrCat("signal ", signal);
      break;
    }
    if (absl::StripAsciiWhitespace(ReadFile(dir + "/pid")) != own_pid) {
      reason = absl::StrCat(dir, "/pid is gone");
      break;
    }
  }
  std::cout << reason << ": stopping" << std::endl;
  std::error_code ignored;
  fs::remove(dir + "/bootstrap", ignored);
  cluster->reset();
  fs::remove_all(dir + "/cluster", ignored);
  fs::remove(dir + "/pid", ignored);
  _exit(0);
}

int Start(const std::string& dir, int nodes, absl::Duration max_lifetime) {
  if (RunningDaemon(dir) != 0) {
    std::cout << "kafka_cluster_daemon: stopping the one left in " << dir
              << "\n";
    Stop(dir);
  }
  std::error_code error;
  fs::remove_all(dir, error);
  fs::create_directories(dir, error);
  if (error) {
    std::cerr << "kafka_cluster_daemon: creating " << dir << ": "
              << error.message() << "\n";
    return 1;
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    std::cerr << "kafka_cluster_daemon: pipe: " << std::strerror(errno) << "\n";
    return 1;
  }
  std::cout.flush();
  const pid_t pid = fork();
  if (pid < 0) {
    std::cerr << "kafka_cluster_daemon: fork: " << std::strerror(errno) << "\n";
    return 1;
  }
  if (pid == 0) {
    close(report[0]);
    RunDaemon(dir, nodes, max_lifetime, report[1]);
  }
  close(report[1]);
  std::string answer;
  char chunk[4096];
  ssize_t n;
  while ((n = read(report[0], chunk, sizeof(chunk))) > 0)
    answer.append(chunk, n);
  close(report[0]);
  if (absl::StartsWith(answer, "ok ")) {
    std::cout << "kafka_cluster_daemon: " << nodes << "-node cluster "
              << absl::StripTrailingAsciiWhitespace(answer.substr(3))
              << " (daemon " << pid << ", " << dir << ")\n";
    return 0;
  }
  std::cerr << "kafka_cluster_daemon: the " << nodes
            << "-node cluster did not start: "
            << (answer.empty()
                    ? "the daemon died\n" + ReadFile(dir + "/daemon.log")
                    : answer)
            << "\n";
  return 1;
}

int Main(int argc, char** argv) {
  if (argc < 3) return Usage();
  const std::string command = argv[1];
  int nodes = 3;
  int lifetime_s = 7200;
  std::string dir;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--nodes" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &nodes) || nodes < 1) return Usage();
    } else if (arg == "--max-lifetime" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &lifetime_s) || lifetime_s < 1) {
        return Usage();
      }
    } else if (dir.empty() && !absl::StartsWith(arg, "-")) {
      dir = fs::absolute(arg).string();
    } else {
      return Usage();
    }
  }
  if (dir.empty()) return Usage();
  if (command == "start") return Start(dir, nodes, absl::Seconds(lifetime_s));
  if (command == "stop") return Stop(dir);
  return Usage();
}

}  // namespace
}  // namespace kpistream::testing

int main(int argc, char** argv) { return kpistream::testing::Main(argc, argv); }
