#include "export/metrics_endpoint.h"

#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

#include "CivetServer.h"
#include "absl/strings/str_cat.h"
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

  // kpistream_build_info, then every source's families, merged.
  std::string Render() const {
    MetricsSnapshot merged;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& source : sources_) MergeSnapshot(source(), &merged);
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

 private:
  mutable std::mutex mu_;
  std::vector<MetricsEndpoint::Source> sources_;
  // The last page's size: the next is reserved at once.
  mutable std::atomic<size_t> last_size_{0};
};

// One path's handler on the civetweb server.
class PathHandler : public CivetHandler {
 public:
  explicit PathHandler(std::function<MetricsEndpoint::Response()> handler)
      : handler_(std::move(handler)) {}
  bool handleGet(CivetServer*, mg_connection* conn) override {
    MetricsEndpoint::Response r;
    try {
      r = handler_();
    } catch (const std::exception& e) {
      r = {500, absl::StrCat("internal error: ", e.what(), "\n")};
    }
    Write(conn, r.status, "text/plain; charset=utf-8", r.body);
    return true;
  }
  static void Write(mg_connection* conn, int status, const char* type,
                    const std::string& body) {
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: "
              "%zu\r\nConnection: close\r\n\r\n",
              status, status == 200 ? "OK" : "Service Unavailable", type,
              body.size());
    mg_write(conn, body.data(), body.size());
  }

 private:
  std::function<MetricsEndpoint::Response()> handler_;
};

}  // namespace

struct MetricsEndpoint::Impl {
  std::atomic<uint64_t> scrapes{0};
  Sources sources;
  std::unique_ptr<CivetServer> server;
  std::vector<std::unique_ptr<PathHandler>> handlers;  // outlive the server
};

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen) {
  absl::Status valid = ParseListenAddress(listen, nullptr, nullptr);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen: ", valid.message()));
  }
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->impl_ = std::make_unique<Impl>();
  try {
    endpoint->impl_->server =
        std::make_unique<CivetServer>(std::vector<std::string>{
            "listening_ports", listen, "num_threads", "4"});
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", listen, " for /metrics: ", e.what(),
        " (is the port in use, or the host not a local address? set "
        "metrics.listen)"));
  }
  MetricsEndpoint* self = endpoint.get();
  endpoint->AddHandler("/metrics", [self] {
    Response r{200, self->RenderMetrics()};
    ++self->impl_->scrapes;
    return r;
  });
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (impl_ && impl_->server) impl_->server->close();
}

int MetricsEndpoint::port() const {
  std::vector<int> ports = impl_->server->getListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void MetricsEndpoint::AddSource(Source source) {
  impl_->sources.Add(std::move(source));
}

void MetricsEndpoint::AddHandler(const std::string& path,
                                 std::function<Response()> handler) {
  impl_->handlers.push_back(std::make_unique<PathHandler>(std::move(handler)));
  impl_->server->addHandler(path, impl_->handlers.back().get());
}

uint64_t MetricsEndpoint::scrapes() const { return impl_->scrapes; }

std::string MetricsEndpoint::RenderMetrics() const {
  return impl_->sources.Render();
}

}  // namespace kpistream
