// MetricsEndpoint: the engine's HTTP server (civetweb): the Prometheus
// /metrics page (text exposition format, export/exposition.h) and
// plain handlers such as /healthz and /readyz (SPEC §7). Values come from
// MetricsSnapshot sources that are called at scrape time on an HTTP thread:
// each source must be thread-safe (typically it returns a copy published by
// the owning thread). Samples of all sources with the same family name and
// labels are summed.
#ifndef KPISTREAM_EXPORT_METRICS_ENDPOINT_H_
#define KPISTREAM_EXPORT_METRICS_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "aggregate/metrics_snapshot.h"

namespace kpistream {

// civetweb's `listening_ports` for metrics.listen: ":9464" (every
// interface, as Go exporters write it) is civetweb's bare "9464"; anything
// else is passed as it is.
std::string CivetListeningPorts(const std::string& listen);

class MetricsEndpoint {
 public:
  using Source = std::function<MetricsSnapshot()>;

  // Listens on `listen` ("host:port", or ":port" for every interface; port
  // 0 picks a free port). A busy or
  // invalid address is an error that names it.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen);
  ~MetricsEndpoint();

  // The bound port (useful with port 0).
  int port() const;

  // Adds a source; may be called at any time.
  void AddSource(Source source);

  // While held, /metrics answers 503 (nothing true to say yet: an engine
  // still starting), so that a scraper records the target down, not up
  // with no series; other paths are served. Not held at the start.
  void HoldMetrics(bool held);

  struct Response {
    int status = 200;
    std::string body;
    // Called once the response is written to the connection.
    std::function<void()> written;
  };
  // Serves `path` (GET) with `handler`, called on an HTTP thread (it must be
  // thread-safe). Call before traffic arrives.
  void AddHandler(const std::string& path, std::function<Response()> handler);

  // The /metrics page as served (for tests and benchmarks): to a scraper
  // (a request whose Accept header names the Prometheus text format or
  // OpenMetrics, as Prometheus and its agents send) every counter and
  // histogram series is served at 0 the first time, so that increase() and
  // rate() count its first rise (each scraper its own 0; here one in-process
  // scraper); to anyone else (a plain curl) as it is.
  std::string RenderMetrics(bool scraper = true) const;
  // How many times /metrics has been served: its page written to the
  // connection (metrics.final_scrape_wait counts on it: counted once
  // rendered, a scrape could let the engine exit before its page was sent,
  // and the scraper keep the page before the final commit's).
  uint64_t scrapes() const;
  // How many times /metrics has been served to a scraper (above).
  uint64_t scraper_scrapes() const;
  // How many series have been served to a scraper at 0, as new, in place of
  // another value (counted before the scrape is).
  uint64_t new_series_scraped() const;

 private:
  MetricsEndpoint() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_METRICS_ENDPOINT_H_
