#include "export/metrics_endpoint.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "CivetServer.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "aggregate/metric_families.h"
#include "config/config.h"
#include "export/exposition.h"

namespace kpistream {
namespace {

// The sources, merged at scrape time.
class Sources {
 public:
  void Add(MetricsEndpoint::Source source) {
    std::lock_guard<std::mutex> lock(mu_);
    sources_.push_back(std::move(source));
  }

  // kpistream_build_info, then every source's families, merged; for a
  // scraper (`scraper` names it: its address and user agent), new series at
  // 0 (ZeroNewSeries); nullptr for anyone else. With `pending`, the series
  // served at 0 are the scraper's only once Served(scraper, *pending) says
  // the page was written (an audit: a scrape that failed, or a HEAD, used
  // the 0 up, and increase() missed the series' first value); without, at
  // once.
  std::string Render(const std::string* scraper,
                     std::vector<size_t>* pending = nullptr) const {
    MetricsSnapshot merged;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& source : sources_) MergeSnapshot(source(), &merged);
    }
    if (scraper != nullptr) {
      std::vector<size_t> zeroed;
      ZeroNewSeries(*scraper, &merged, &zeroed);
      if (pending != nullptr) {
        *pending = std::move(zeroed);
      } else {
        Served(*scraper, zeroed);
      }
    }
    std::string page;
    page.reserve(last_size_.load(std::memory_order_relaxed) + 4096);
    FamilySnapshot info;
    info.name = std::string(families::kBuildInfo.name);
    info.help = std::string(families::kBuildInfo.help);
    info.type = MetricType::kGauge;
    info.label_names = {std::string(families::kBuildInfo.labels[0])};
    info.samples.push_back({{KPISTREAM_VERSION}, 1});
    AppendExposition(info, &page);
    for (const FamilySnapshot& family : merged) {
      AppendExposition(family, &page);
    }
    last_size_.store(page.size(), std::memory_order_relaxed);
    return page;
  }

  // How many series were served to a scraper at 0 in place of another
  // value.
  uint64_t zeroed() const { return zeroed_.load(); }

  // The series `keys` (Render's pending) were served to `scraper` at 0.
  void Served(const std::string& scraper,
              const std::vector<size_t>& keys) const {
    std::lock_guard<std::mutex> lock(served_mu_);
    auto it = scrapers_.find(scraper);
    if (it == scrapers_.end()) return;  // forgotten meanwhile
    it->second.served.insert(keys.begin(), keys.end());
  }

 private:
  // A counter or histogram series this process has not served to a
  // scraper before is served at 0 once (its count, sum and buckets), with
  // its value from the next scrape on. Prometheus' rate() and increase()
  // count a series' rise from its first sample on: one that first appears
  // at 3 (the first sessions of a campaign, a channel or a device since the
  // start) would have those 3 missing from every increase() over it, and a
  // sum over many such series (one per label combination) is off by as
  // many. Served at 0 first, the rise is counted. Label values known in
  // advance are exported at 0 from the start anyway (KpiCounters::Options).
  // A series is remembered for the process's life, so that one that is gone
  // for a while and comes back at its old count is not taken for a new one
  // (0 again would read as a reset and count its whole value twice); the
  // set is bounded by the label limits. Its keys are absl::HashOf, in
  // memory only.
  //
  // Each scraper is served its own 0: two Prometheus replicas (an HA pair,
  // or Prometheus and an agent) both count a new series' rise, where one
  // set for all gave the 0 to whichever scraped first and the other's
  // increase() missed the series' first value, so the two disagreed. A
  // scraper first seen after others (a replica added or restarted under a
  // new address) takes the series first served more than kNewFor before as
  // old: a 0 for a series with a long history would read, to it, as the
  // whole count arriving at once; younger ones (a replica's first scrape
  // comes up to a scrape interval after the other's) it is served at 0 as
  // well. A scraper not seen for kScraperForgotten is
  // forgotten, and joins as such a newcomer when it comes back; at most
  // kMaxScrapers are remembered (the one seen least recently goes).
  void ZeroNewSeries(const std::string& scraper, MetricsSnapshot* snapshot,
                     std::vector<size_t>* zeroed) const {
    std::lock_guard<std::mutex> lock(served_mu_);
    const absl::Time now = absl::Now();
    absl::erase_if(scrapers_, [now](const auto& entry) {
      return now - entry.second.last_seen > kScraperForgotten;
    });
    auto it = scrapers_.find(scraper);
    if (it == scrapers_.end()) {
      if (scrapers_.size() >= kMaxScrapers) {
        scrapers_.erase(std::min_element(scrapers_.begin(), scrapers_.end(),
                                         [](const auto& a, const auto& b) {
                                           return a.second.last_seen <
                                                  b.second.last_seen;
                                         }));
      }
      Scraper newcomer{{}, now};
      for (const auto& [key, first] : served_) {
        if (now - first > kNewFor) newcomer.served.insert(key);
      }
      it = scrapers_.emplace(scraper, std::move(newcomer)).first;
    }
    Scraper& seen = it->second;
    seen.last_seen = now;
    for (FamilySnapshot& family : *snapshot) {
      if (family.type == MetricType::kGauge) continue;
      for (MetricSample& sample : family.samples) {
        const size_t key = absl::HashOf(family.name, sample.label_values);
        served_.emplace(key, now);
        if (seen.served.contains(key)) continue;
        zeroed->push_back(key);
        if (sample.value != 0 || sample.count != 0) ++zeroed_;
        sample.value = 0;
        sample.count = 0;
        std::fill(sample.bucket_counts.begin(), sample.bucket_counts.end(), 0);
      }
    }
  }

  mutable std::mutex mu_;
  std::vector<MetricsEndpoint::Source> sources_;
  static constexpr size_t kMaxScrapers = 16;
  static constexpr absl::Duration kNewFor = absl::Minutes(2);
  static constexpr absl::Duration kScraperForgotten = absl::Minutes(30);
  struct Scraper {
    absl::flat_hash_set<size_t> served;  // the series served to it
    absl::Time last_seen;
  };
  mutable std::mutex served_mu_;
  // The counter and histogram series served so far to any scraper and to
  // each (ZeroNewSeries), and how many were served at 0 in place of
  // another value.
  mutable absl::flat_hash_map<size_t, absl::Time> served_;  // when first
  mutable absl::flat_hash_map<std::string, Scraper> scrapers_;
  mutable std::atomic<uint64_t> zeroed_{0};
  // The last page's size: the next is reserved at once.
  mutable std::atomic<size_t> last_size_{0};
};

// One path's handler on the civetweb server.
class PathHandler : public CivetHandler {
 public:
  using Handler = std::function<MetricsEndpoint::Response(mg_connection*)>;
  PathHandler(std::string path, Handler handler)
      : path_(std::move(path)), handler_(std::move(handler)) {}
  bool handleGet(CivetServer*, mg_connection* conn) override {
    return Serve(conn, /*head=*/false);
  }
  // HEAD (a load balancer's or an uptime checker's probe): the status and
  // headers GET would have, no body; not a scrape (nothing is counted as
  // served).
  bool handleHead(CivetServer*, mg_connection* conn) override {
    return Serve(conn, /*head=*/true);
  }
  // Other methods: 405 with what is allowed (POST was a 404, as if the
  // path did not exist).
  bool handlePost(CivetServer*, mg_connection* conn) override {
    return NotAllowed(conn);
  }
  bool handlePut(CivetServer*, mg_connection* conn) override {
    return NotAllowed(conn);
  }
  bool handleDelete(CivetServer*, mg_connection* conn) override {
    return NotAllowed(conn);
  }
  bool handlePatch(CivetServer*, mg_connection* conn) override {
    return NotAllowed(conn);
  }
  bool handleOptions(CivetServer*, mg_connection* conn) override {
    return NotAllowed(conn);
  }
  // Whether the whole response was written.
  static bool Write(mg_connection* conn, int status, const char* type,
                    const std::string& body, bool head = false,
                    const char* extra_headers = "") {
    const int header =
        mg_printf(conn,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: "
                  "%zu\r\n%sConnection: close\r\n\r\n",
                  status, Reason(status), type, body.size(), extra_headers);
    if (header <= 0) return false;
    if (head || body.empty()) return true;
    return mg_write(conn, body.data(), body.size()) ==
           static_cast<int>(body.size());
  }

 private:
  // civetweb hands a handler every path its own starts (and, by case,
  // resembles): /readyzz, /HEALTHZ and /metrics/x were answered 200, and a
  // mistyped probe path "worked" (an audit).
  bool Exact(mg_connection* conn) const {
    const mg_request_info* info = mg_get_request_info(conn);
    return info != nullptr && info->local_uri != nullptr &&
           path_ == info->local_uri;
  }
  bool NotAllowed(mg_connection* conn) {
    if (!Exact(conn)) return NotFound(conn, false);
    Write(conn, 405, "text/plain; charset=utf-8",
          "method not allowed: GET or HEAD\n", false, "Allow: GET, HEAD\r\n");
    return true;
  }
  static bool NotFound(mg_connection* conn, bool head) {
    Write(conn, 404, "text/plain; charset=utf-8",
          "not found: /metrics, /healthz or /readyz\n", head);
    return true;
  }
  bool Serve(mg_connection* conn, bool head) {
    if (!Exact(conn)) return NotFound(conn, head);
    MetricsEndpoint::Response r;
    try {
      r = handler_(conn);
    } catch (const std::exception& e) {
      r = {500, absl::StrCat("internal error: ", e.what(), "\n")};
    }
    const bool whole =
        Write(conn, r.status, "text/plain; charset=utf-8", r.body, head);
    if (whole && !head && r.written) r.written();
    return true;
  }
  static const char* Reason(int status) {
    switch (status) {
      case 200:
        return "OK";
      case 404:
        return "Not Found";
      case 405:
        return "Method Not Allowed";
      case 500:
        return "Internal Server Error";
      case 503:
        return "Service Unavailable";
      default:
        return "Unknown";
    }
  }

  const std::string path_;
  Handler handler_;
};

// Whether a request's Accept header names OpenMetrics or the Prometheus
// text format 0.0.4, as scrapers send it: Prometheus ("application/
// openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5,*/*;
// q=0.1" in 2.42; 2.49 and later by default alike), and what scrapes with
// its code (Grafana Alloy, the OpenTelemetry collector) unless narrowed to
// other protocols, vmagent ("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
// Telegraf ("...,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"). Not a plain
// `curl` ("*/*"), nor Datadog's OpenMetrics check by default
// ("text/plain"), nor Prometheus scraping protobuf only: those get the
// values as they are, as before.
// Who scrapes: the client's address, user agent and query string (two
// Prometheus replicas differ in the first; Prometheus and an agent on one
// host in the second; two replicas on one host, or behind one NAT or proxy,
// only in what each asks: a scrape config's `params`, e.g. ?replica=a; an
// audit: the second of two on one host saw every new series' first value
// as it was, and lost its rise).
std::string ScraperId(const mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const char* agent = mg_get_header(conn, "User-Agent");
  const char* query = info != nullptr ? info->query_string : nullptr;
  return absl::StrCat(info != nullptr ? info->remote_addr : "", " ",
                      agent != nullptr ? agent : "", " ",
                      query != nullptr ? query : "");
}

bool IsScraper(const char* accept) {
  if (accept == nullptr) return false;
  const std::string lower = absl::AsciiStrToLower(accept);
  return absl::StrContains(lower, "application/openmetrics-text") ||
         absl::StrContains(lower, "version=0.0.4");
}

// Connects to the server at `host` (metrics.listen's host part) and `port`
// and hangs up at once, sending nothing: it ends civetweb's wait for a
// connection (see ~MetricsEndpoint). Best effort: a host that is not a
// numeric address is left alone.
void Knock(absl::string_view listen_host, int port) {
  std::string host(listen_host);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) !=
      0) {
    return;
  }
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    timeval timeout{0, 100000};  // connect() gives up after 100 ms
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    connect(fd, a->ai_addr, a->ai_addrlen);
    close(fd);
    break;
  }
  freeaddrinfo(found);
}

}  // namespace

struct MetricsEndpoint::Impl {
  std::string host;  // metrics.listen's
  std::atomic<uint64_t> scrapes{0};
  std::atomic<uint64_t> scraper_scrapes{0};
  std::atomic<bool> held{false};  // HoldMetrics
  Sources sources;
  std::unique_ptr<CivetServer> server;
  std::vector<std::unique_ptr<PathHandler>> handlers;  // outlive the server

  void Add(const std::string& path, PathHandler::Handler handler) {
    handlers.push_back(std::make_unique<PathHandler>(path, std::move(handler)));
    server->addHandler(path, handlers.back().get());
  }
};

namespace {

// Why binding `host`:`port` fails, in the system's words (e.g. "Address
// already in use"), found by trying it; empty when it binds (or the address
// does not resolve: the caller's hint covers that).
std::string BindError(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(),
                  &hints, &found) != 0) {
    return {};
  }
  std::string error;
  for (addrinfo* a = found; a != nullptr && error.empty(); a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = std::strerror(errno);
    }
    close(fd);
  }
  freeaddrinfo(found);
  return error;
}

}  // namespace

std::string CivetListeningPorts(const std::string& listen) {
  if (!listen.empty() && listen.front() == ':') return listen.substr(1);
  return listen;
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen) {
  std::string host;
  int port = 0;
  absl::Status valid = ParseListenAddress(listen, &host, &port);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen: ", valid.message()));
  }
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->impl_ = std::make_unique<Impl>();
  const std::string ports = CivetListeningPorts(listen);
  endpoint->impl_->host = std::move(host);
  try {
    endpoint->impl_->server =
        std::make_unique<CivetServer>(std::vector<std::string>{
            "listening_ports", ports,
            // A connection holds a thread until its request is read: with
            // 4 threads and civetweb's 30 s for a request, 4 idle sockets
            // held /healthz 30 s (and 6 reopened in a loop failed every
            // liveness probe: an audit).
            "num_threads", "32", "request_timeout_ms", "5000"});
  } catch (const std::exception& e) {
    // civetweb says only that it could not make its context.
    const std::string cause = BindError(endpoint->impl_->host, port);
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", listen, " for /metrics: ",
        cause.empty()
            ? absl::StrCat(e.what(),
                           " (is the port in use, or the host not a local "
                           "address?")
            : absl::StrCat(cause, " (another process listens there?"),
        " set metrics.listen)"));
  }
  MetricsEndpoint* self = endpoint.get();
  endpoint->impl_->Add("/metrics", [self](mg_connection* conn) {
    if (self->impl_->held) return Response{503, "starting\n"};
    const bool scraper = IsScraper(mg_get_header(conn, "Accept"));
    const std::string id = scraper ? ScraperId(conn) : std::string();
    auto pending = std::make_shared<std::vector<size_t>>();
    Response r{200, self->impl_->sources.Render(scraper ? &id : nullptr,
                                                pending.get())};
    r.written = [self, scraper, id, pending] {
      ++self->impl_->scrapes;
      if (scraper) {
        ++self->impl_->scraper_scrapes;
        self->impl_->sources.Served(id, *pending);
      }
    };
    return r;
  });
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (!impl_ || !impl_->server) return;
  // civetweb (1.15) accepts connections in a loop that waits for one in
  // polls of up to 2 s (its SOCKET_TIMEOUT_QUANTUM) and sees the stop that
  // close() asks for only when a poll ends; close() waits for it. So every
  // stop of the engine took up to 2 s more (1.8 s after a scrape, the
  // benchmark's "stop": BENCHMARKS.md, run RS). A connection ends the poll;
  // once the stop is asked for, the loop leaves without accepting it. One
  // made before (a knock comes every 10 ms) is accepted and ends at once.
  const int port = this->port();
  std::atomic<bool> closed{false};
  std::thread knocker;
  try {
    knocker = std::thread([this, port, &closed] {
      // Up to 2 s of knocks, civetweb's longest wait.
      for (int i = 0; i < 200 && !closed.load(); ++i) {
        absl::SleepFor(absl::Milliseconds(10));
        if (!closed.load()) Knock(impl_->host, port);
      }
    });
  } catch (const std::system_error&) {
    // No thread to spare: the close waits for civetweb alone.
  }
  impl_->server->close();
  closed = true;
  if (knocker.joinable()) knocker.join();
}

int MetricsEndpoint::port() const {
  std::vector<int> ports = impl_->server->getListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void MetricsEndpoint::AddSource(Source source) {
  impl_->sources.Add(std::move(source));
}

void MetricsEndpoint::HoldMetrics(bool held) { impl_->held = held; }

void MetricsEndpoint::AddHandler(const std::string& path,
                                 std::function<Response()> handler) {
  impl_->Add(path, [handler = std::move(handler)](mg_connection*) {
    return handler();
  });
}

uint64_t MetricsEndpoint::scrapes() const { return impl_->scrapes; }

uint64_t MetricsEndpoint::scraper_scrapes() const {
  return impl_->scraper_scrapes;
}

uint64_t MetricsEndpoint::new_series_scraped() const {
  return impl_->sources.zeroed();
}

std::string MetricsEndpoint::RenderMetrics(bool scraper) const {
  static const std::string kInProcess = "(in process)";
  return impl_->sources.Render(scraper ? &kInProcess : nullptr);
}

}  // namespace kpistream
