// Benchmarks of the /metrics page (issue 9: "/metrics with 10,000 series
// rendered in <= 50 ms"): a MetricsEndpoint with two sources as the engine
// has them (the published snapshot, copied at every scrape, and the process
// metrics) renders a page of about N series, where a series is one sample
// line of the text format (a histogram sample is its buckets, _sum and
// _count).
//
//   build/bench/metrics_render_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
//
// BM_RenderMetrics/N/S: MetricsEndpoint::RenderMetrics(), what the HTTP
// handler calls, for a scraper (S = 1: each series looked up among those
// served before, which a new one is served at 0) or a plain GET (S = 0).
// BM_ScrapeOverHttp/N: a GET /metrics over loopback with Prometheus' Accept
// header (render plus civetweb and the socket). Counters: series (sample
// lines of the page) and page_bytes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "aggregate/metrics_snapshot.h"
#include "benchmark/benchmark.h"
#include "export/metrics_endpoint.h"
#include "export/process_metrics.h"
#include "tests/integration/test_support.h"  // kPrometheusAccept

namespace kpistream {
namespace {

const char* const kChannels[] = {
    "Direct", "Organic Search", "Paid Search", "Organic Social", "Paid Social",
    "Email",  "Referral",       "Display",     "Organic Video",  "Unassigned"};
const char* const kDevices[] = {"desktop", "mobile", "tablet"};
const char* const kBounds[] = {"10", "30", "60", "120", "300", "600", "1800"};

FamilySnapshot Family(std::string name, MetricType type,
                      std::vector<std::string> labels) {
  FamilySnapshot f;
  f.name = std::move(name);
  f.help = "A benchmark family of realistic shape.";
  f.type = type;
  f.label_names = std::move(labels);
  return f;
}

// About `series` sample lines in the shape of the engine's page: 70 % in
// eight counter families by {site, channel, device, country}, 10 % in a
// gauge by {topic, partition}, 20 % in a histogram by {site, channel} with
// 7 buckets (10 lines per sample).
MetricsSnapshot Snapshot(int series) {
  MetricsSnapshot snapshot;
  const int counter_samples = series * 7 / 10 / 8;
  for (int f = 0; f < 8; ++f) {
    FamilySnapshot family =
        Family(absl::StrCat("web_bench_family_", f, "_total"),
               MetricType::kCounter, {"site", "channel", "device", "country"});
    for (int i = 0; i < counter_samples; ++i) {
      MetricSample s;
      s.label_values = {absl::StrCat("site-", i / 300), kChannels[i % 10],
                        kDevices[(i / 10) % 3],
                        absl::StrFormat("C%02d", (i / 30) % 10)};
      s.value = 1000.0 * i + f;
      family.samples.push_back(std::move(s));
    }
    snapshot.push_back(std::move(family));
  }
  FamilySnapshot lag = Family("kpistream_consumer_lag_messages",
                              MetricType::kGauge, {"topic", "partition"});
  for (int i = 0; i < series / 10; ++i) {
    MetricSample s;
    s.label_values = {absl::StrCat("web.events.", i / 256),
                      absl::StrCat(i % 256)};
    s.value = i;
    lag.samples.push_back(std::move(s));
  }
  snapshot.push_back(std::move(lag));
  FamilySnapshot duration = Family("web_session_duration_seconds",
                                   MetricType::kHistogram, {"site", "channel"});
  for (const char* b : kBounds) duration.bucket_bounds.push_back(std::stod(b));
  for (int i = 0; i < series / 5 / 10; ++i) {
    MetricSample s;
    s.label_values = {absl::StrCat("site-", i / 10), kChannels[i % 10]};
    s.bucket_counts.assign(duration.bucket_bounds.size() + 1, 3);
    s.count = 3 * s.bucket_counts.size();
    s.value = 123.5 * i;
    duration.samples.push_back(std::move(s));
  }
  snapshot.push_back(std::move(duration));
  return snapshot;
}

int64_t SampleLines(const std::string& page) {
  int64_t lines = 0;
  size_t at = 0;
  while (at < page.size()) {
    size_t end = page.find('\n', at);
    if (end == std::string::npos) end = page.size();
    if (end > at && page[at] != '#') ++lines;
    at = end + 1;
  }
  return lines;
}

std::unique_ptr<MetricsEndpoint> Endpoint(int series) {
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0");
  if (!endpoint.ok()) return nullptr;
  auto published = std::make_shared<MetricsSnapshot>(Snapshot(series));
  (*endpoint)->AddSource([published] { return *published; });
  (*endpoint)->AddSource(&CollectProcessMetrics);
  return *std::move(endpoint);
}

void BM_RenderMetrics(benchmark::State& state) {
  auto endpoint = Endpoint(static_cast<int>(state.range(0)));
  if (!endpoint) {
    state.SkipWithError("cannot listen on 127.0.0.1:0");
    return;
  }
  std::string page;
  for (auto _ : state) {
    page = endpoint->RenderMetrics(/*scraper=*/state.range(1) != 0);
    benchmark::DoNotOptimize(page.data());
  }
  state.counters["series"] = static_cast<double>(SampleLines(page));
  state.counters["page_bytes"] = static_cast<double>(page.size());
}
BENCHMARK(BM_RenderMetrics)
    ->Args({1000, 1})
    ->Args({10000, 0})
    ->Args({10000, 1})
    ->Args({100000, 1})
    ->Unit(benchmark::kMillisecond);

// One GET /metrics on a new connection, the body read to the end.
size_t Get(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  size_t received = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request =
        absl::StrCat("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: ",
                     testing::kPrometheusAccept, "\r\n\r\n");
    if (send(fd, request.data(), request.size(), 0) > 0) {
      char chunk[65536];
      ssize_t n;
      while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0) received += n;
    }
  }
  close(fd);
  return received;
}

void BM_ScrapeOverHttp(benchmark::State& state) {
  auto endpoint = Endpoint(static_cast<int>(state.range(0)));
  if (!endpoint) {
    state.SkipWithError("cannot listen on 127.0.0.1:0");
    return;
  }
  size_t bytes = 0;
  for (auto _ : state) {
    bytes = Get(endpoint->port());
    if (bytes == 0) {
      state.SkipWithError("GET /metrics failed");
      return;
    }
  }
  state.counters["response_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ScrapeOverHttp)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace kpistream

BENCHMARK_MAIN();
