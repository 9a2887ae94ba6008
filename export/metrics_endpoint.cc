#include "export/metrics_endpoint.h"

#include <atomic>
#include <exception>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include "CivetServer.h"
#include "absl/strings/str_cat.h"
#include "aggregate/metric_families.h"
#include "config/config.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace kpistream {
namespace {

// Converts the merged snapshots of every source into Prometheus families at
// scrape time.
class SnapshotCollectable : public prometheus::Collectable {
 public:
  void Add(MetricsEndpoint::Source source) {
    std::lock_guard<std::mutex> lock(mu_);
    sources_.push_back(std::move(source));
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    MetricsSnapshot merged;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& source : sources_) MergeSnapshot(source(), &merged);
    }
    std::vector<prometheus::MetricFamily> out;
    out.reserve(merged.size() + 1);
    {
      prometheus::MetricFamily info;
      info.name = std::string(families::kBuildInfo.name);
      info.help = std::string(families::kBuildInfo.help);
      info.type = prometheus::MetricType::Gauge;
      prometheus::ClientMetric m;
      m.label.push_back(
          {std::string(families::kBuildInfo.labels[0]), KPISTREAM_VERSION});
      m.gauge.value = 1;
      info.metric.push_back(std::move(m));
      out.push_back(std::move(info));
    }
    for (const FamilySnapshot& family : merged) {
      prometheus::MetricFamily f;
      f.name = family.name;
      f.help = family.help;
      switch (family.type) {
        case MetricType::kCounter:
          f.type = prometheus::MetricType::Counter;
          break;
        case MetricType::kGauge:
          f.type = prometheus::MetricType::Gauge;
          break;
        case MetricType::kHistogram:
          f.type = prometheus::MetricType::Histogram;
          break;
      }
      for (const MetricSample& sample : family.samples) {
        prometheus::ClientMetric m;
        for (size_t i = 0;
             i < family.label_names.size() && i < sample.label_values.size();
             ++i) {
          m.label.push_back({family.label_names[i], sample.label_values[i]});
        }
        switch (family.type) {
          case MetricType::kCounter:
            m.counter.value = sample.value;
            break;
          case MetricType::kGauge:
            m.gauge.value = sample.value;
            break;
          case MetricType::kHistogram: {
            // Snapshot buckets are per-bucket counts; Prometheus wants them
            // cumulative. Every finite bound is emitted even when the sample
            // carries fewer counts, and +Inf always equals _count.
            m.histogram.sample_count = sample.count;
            m.histogram.sample_sum = sample.value;
            uint64_t cumulative = 0;
            for (size_t i = 0; i < family.bucket_bounds.size(); ++i) {
              if (i < sample.bucket_counts.size()) {
                cumulative += sample.bucket_counts[i];
              }
              m.histogram.bucket.push_back(
                  {cumulative, family.bucket_bounds[i]});
            }
            m.histogram.bucket.push_back(
                {sample.count, std::numeric_limits<double>::infinity()});
            break;
          }
        }
        f.metric.push_back(std::move(m));
      }
      out.push_back(std::move(f));
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<MetricsEndpoint::Source> sources_;
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
  SnapshotCollectable collectable;
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
  impl_->collectable.Add(std::move(source));
}

void MetricsEndpoint::AddHandler(const std::string& path,
                                 std::function<Response()> handler) {
  impl_->handlers.push_back(std::make_unique<PathHandler>(std::move(handler)));
  impl_->server->addHandler(path, impl_->handlers.back().get());
}

uint64_t MetricsEndpoint::scrapes() const { return impl_->scrapes; }

std::string MetricsEndpoint::RenderMetrics() const {
  return prometheus::TextSerializer().Serialize(impl_->collectable.Collect());
}

}  // namespace kpistream
