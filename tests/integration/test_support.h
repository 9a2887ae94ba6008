// Helpers for tests that run real processes on loopback: the kpistream
// binary's subcommands, kcat, prometheus. Every server a test starts is
// stopped by its destructor; ports are picked free by the kernel. Real
// Apache Kafka clusters are in kafka_cluster.h.
#ifndef KPISTREAM_TESTS_INTEGRATION_TEST_SUPPORT_H_
#define KPISTREAM_TESTS_INTEGRATION_TEST_SUPPORT_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kpistream::testing {

// The kpistream binary under test ($KPISTREAM_BIN).
std::string KpistreamBinary();
// The repository root ($KPISTREAM_SOURCE_DIR).
std::string SourceDir();

// A fresh directory removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// A child process; stdout is readable line by line, stderr goes to a file.
class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv);
  ~Subprocess();  // SIGKILL if still running
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Next line of stdout (without the newline), or an error after `timeout`.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);
  // Sends `signal` and waits up to `timeout`; returns the exit code, or -1 if
  // it had to be killed, or 128+signal if it died of a signal.
  int Stop(int signal, absl::Duration timeout);
  bool Running();
  std::string Stderr() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffered_;
  std::string stderr_path_;
  int exit_code_ = -2;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs a command to completion with `input` on stdin (killed after `timeout`).
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::string& input = "",
                         absl::Duration timeout = absl::Seconds(60));

int FreePort();
// GET http://127.0.0.1:port/path (with `accept` as the Accept header
// unless empty): the body of a 200 answer; any other status is an error
// carrying the status line.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path,
                                    const std::string& accept = "");
struct HttpResponse {
  int code = 0;
  std::string status_line;  // "HTTP/1.1 503 Service Unavailable"
  std::string body;
};
// The same, with any status: an error only when nothing valid came back.
absl::StatusOr<HttpResponse> HttpGetResponse(int port, const std::string& path,
                                             const std::string& accept = "");
// The Accept header Prometheus (2.42) scrapes with: /metrics serves a
// scraper new series at 0 once (export/metrics_endpoint.h).
inline constexpr char kPrometheusAccept[] =
    "application/openmetrics-text;version=1.0.0,application/"
    "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/"
    "*;q=0.1";

// Polls `condition` every 100 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout);

// Sum of the samples of `name` (exact metric name, e.g.
// "web_sessions_closed_total" or "web_session_duration_seconds_bucket") in a
// Prometheus text page whose labels include every pair of `labels`; nullopt
// style: returns -1 when no sample matches.
double MetricValue(const std::string& page, const std::string& name,
                   const std::map<std::string, std::string>& labels = {});

// The record count from loadgen's summary line "injected D duplicates, L
// late, B bots, G garbage; R records in all" (0 if absent).
double RecordsProduced(const std::string& out);

// Produces one bot event (user agent "Googlebot") at event time `at` to every
// partition 0..partitions-1 of `topic`, as JSON or binary WebEvents. Event
// time moves with every record (SPEC §3), so once these are read the
// watermark passes `at` minus the out-of-orderness everywhere and every
// session that ended well before `at` closes: how a test ends a bounded input
// while the engine keeps its open sessions across stops. Each record counts
// as consumed and bot. Returns how many were produced.
absl::StatusOr<int> AdvanceEventTime(const std::string& bootstrap,
                                     const std::string& topic, int partitions,
                                     absl::Time at, bool json);

// A `kpistream broker` process and its bootstrap address.
class BrokerProcess {
 public:
  explicit BrokerProcess(const std::vector<std::string>& topics);
  const std::string& bootstrap() const { return bootstrap_; }
  Subprocess& process() { return process_; }

 private:
  Subprocess process_;
  std::string bootstrap_;
};

// A `prometheus` server on a free loopback port (*port) scraping
// 127.0.0.1:`scrape_port` as job "kpistream" every second and evaluating
// `rule_file` (if not empty; a glob is allowed) every second; its config and
// data live in `dir`. Waits until it is ready (a test failure if not).
std::unique_ptr<Subprocess> StartPrometheus(const TempDir& dir, int scrape_port,
                                            const std::string& rule_file,
                                            int* port);

}  // namespace kpistream::testing

#endif  // KPISTREAM_TESTS_INTEGRATION_TEST_SUPPORT_H_
