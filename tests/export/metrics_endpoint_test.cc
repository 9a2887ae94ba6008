#include "export/metrics_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_support.h"  // kPrometheusAccept

namespace kpistream {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// A minimal blocking HTTP/1.0 request (`method` `path`) against 127.0.0.1
// (with `accept` as its Accept header unless empty, and `user_agent` as its
// User-Agent), from the loopback address `from`; returns the whole
// response, status line and headers included, or an empty string on any
// failure.
std::string HttpRequest(int port, const std::string& method,
                        const std::string& path, const std::string& accept = "",
                        const char* from = "127.0.0.1",
                        const std::string& user_agent = "") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in source{};
  source.sin_family = AF_INET;
  if (inet_pton(AF_INET, from, &source.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(source)) != 0) {
    close(fd);
    return "";
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  // An answer that does not come is a failure, not a hang (civetweb holds
  // an unread request for 5 s, and held it 30).
  timeval wait{};
  wait.tv_sec = 10;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  const std::string request = absl::StrCat(
      method, " ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n",
      accept.empty() ? "" : absl::StrCat("Accept: ", accept, "\r\n"),
      user_agent.empty() ? ""
                         : absl::StrCat("User-Agent: ", user_agent, "\r\n"),
      "\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, 0);
    if (n <= 0) {
      close(fd);
      return "";
    }
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return response;
}

// The body of a GET (as HttpRequest), or an empty string on any failure.
std::string HttpGet(int port, const std::string& path,
                    const std::string& accept = "",
                    const char* from = "127.0.0.1",
                    const std::string& user_agent = "") {
  const std::string response =
      HttpRequest(port, "GET", path, accept, from, user_agent);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

MetricsSnapshot ShardSnapshot(double closed, std::vector<uint64_t> buckets,
                              double duration_sum) {
  FamilySnapshot sessions;
  sessions.name = "web_sessions_closed_total";
  sessions.help = "Sessions closed.";
  sessions.type = MetricType::kCounter;
  sessions.label_names = {"site", "channel"};
  MetricSample s;
  s.label_values = {"shop", "Direct"};
  s.value = closed;
  sessions.samples.push_back(s);

  FamilySnapshot open;
  open.name = "web_open_sessions";
  open.help = "Sessions open now.";
  open.type = MetricType::kGauge;
  open.label_names = {"site"};
  MetricSample g;
  g.label_values = {"shop"};
  g.value = 2;
  open.samples.push_back(g);

  FamilySnapshot duration;
  duration.name = "web_session_duration_seconds";
  duration.help = "Closed-session duration.";
  duration.type = MetricType::kHistogram;
  duration.label_names = {"site", "channel"};
  duration.bucket_bounds = {10, 30, 60};
  MetricSample h;
  h.label_values = {"shop", "Direct"};
  h.bucket_counts = buckets;
  for (uint64_t b : buckets) h.count += b;
  h.value = duration_sum;
  duration.samples.push_back(h);

  FamilySnapshot empty;
  empty.name = "web_conversions_total";
  empty.help = "Conversions.";
  empty.type = MetricType::kCounter;
  empty.label_names = {"site", "goal", "channel"};

  return {sessions, open, duration, empty};
}

TEST(MetricsEndpointTest, ListenWithoutAHostIsEveryInterfaceForCivetweb) {
  // civetweb's syntax for "every IPv4 interface" is the bare port. (Not
  // bound here: tests listen on loopback only.)
  EXPECT_EQ(CivetListeningPorts(":9464"), "9464");
  EXPECT_EQ(CivetListeningPorts("127.0.0.1:9464"), "127.0.0.1:9464");
  EXPECT_EQ(CivetListeningPorts("0.0.0.0:0"), "0.0.0.0:0");
}

// A port another process listens on is named with the system's cause
// (civetweb says only "null context when constructing CivetServer").
TEST(MetricsEndpointTest, APortInUseIsSaidSo) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string listen_at =
      absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  auto endpoint = MetricsEndpoint::Start(listen_at);
  close(fd);
  ASSERT_FALSE(endpoint.ok());
  EXPECT_THAT(std::string(endpoint.status().message()),
              ::testing::HasSubstr(absl::StrCat("cannot listen on ", listen_at,
                                                " for /metrics: Address "
                                                "already in use")));
}

TEST(MetricsEndpointTest, ServesMergedSourcesInTextFormat) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  ASSERT_GT(port, 0);

  (*endpoint)->AddSource([] { return ShardSnapshot(1, {1, 0, 2, 1}, 150); });
  (*endpoint)->AddSource([] { return ShardSnapshot(2, {0, 1, 0, 0}, 20); });

  const std::vector<std::string> lines = Lines(HttpGet(port, "/metrics"));
  ASSERT_FALSE(lines.empty());

  EXPECT_THAT(lines, Contains("# TYPE web_sessions_closed_total counter"));
  EXPECT_THAT(lines, Contains("web_sessions_closed_total{site=\"shop\",channel="
                              "\"Direct\"} 3"));
  EXPECT_THAT(lines, Contains("# TYPE web_open_sessions gauge"));
  EXPECT_THAT(lines, Contains("web_open_sessions{site=\"shop\"} 4"));

  // Buckets merged per bound (1+0, 0+1, 2+0, 1+0) and made cumulative.
  const std::string h = "web_session_duration_seconds";
  const std::string labels = "site=\"shop\",channel=\"Direct\"";
  EXPECT_THAT(lines, Contains(absl::StrCat("# TYPE ", h, " histogram")));
  EXPECT_THAT(lines,
              Contains(absl::StrCat(h, "_bucket{", labels, ",le=\"10\"} 1")));
  EXPECT_THAT(lines,
              Contains(absl::StrCat(h, "_bucket{", labels, ",le=\"30\"} 2")));
  EXPECT_THAT(lines,
              Contains(absl::StrCat(h, "_bucket{", labels, ",le=\"60\"} 4")));
  EXPECT_THAT(lines,
              Contains(absl::StrCat(h, "_bucket{", labels, ",le=\"+Inf\"} 5")));
  EXPECT_THAT(lines, Contains(absl::StrCat(h, "_count{", labels, "} 5")));
  EXPECT_THAT(lines, Contains(absl::StrCat(h, "_sum{", labels, "} 170")));

  // A family without samples still announces itself.
  EXPECT_THAT(lines, Contains("# HELP web_conversions_total Conversions."));
  EXPECT_THAT(lines, Contains("# TYPE web_conversions_total counter"));

  EXPECT_THAT(lines, Contains("kpistream_build_info{version=\"0.1.0\"} 1"));
}

TEST(MetricsEndpointTest, SourceAddedLaterIsScraped) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();

  std::vector<std::string> lines = Lines(HttpGet(port, "/metrics"));
  EXPECT_THAT(lines, Contains("kpistream_build_info{version=\"0.1.0\"} 1"));
  EXPECT_THAT(lines, Not(Contains(HasSubstr("web_sessions_closed_total"))));

  (*endpoint)->AddSource([] { return ShardSnapshot(7, {0, 0, 0, 0}, 0); });
  lines = Lines(HttpGet(port, "/metrics"));
  EXPECT_THAT(lines, Contains("web_sessions_closed_total{site=\"shop\",channel="
                              "\"Direct\"} 7"));
}

// Prometheus' increase() counts a counter's rise from its first sample on:
// a series that first appeared at 3 would have those 3 missing from every
// increase() over it. So to a scraper (Prometheus' Accept header) a counter
// or histogram series is served at 0 the first time, with its value from
// then on; a gauge at once; one that was gone and comes back at its old
// value is not served at 0 again (that would read as a reset and count its
// value twice). A plain GET (curl) sees the values and takes no 0.
TEST(MetricsEndpointTest, NewSeriesAreServedAtZeroOnceToAScraper) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  std::atomic<int> round{0};
  (*endpoint)->AddSource([&round] {
    MetricsSnapshot snapshot = ShardSnapshot(3, {1, 0, 2, 0}, 75);
    FamilySnapshot& closed = snapshot[0];
    if (round.load() == 1) {
      // A second channel appears; Direct is gone for this scrape.
      closed.samples[0].label_values = {"shop", "Email"};
      closed.samples[0].value = 5;
    } else if (round.load() == 2) {
      MetricSample email = closed.samples[0];
      email.label_values = {"shop", "Email"};
      email.value = 6;
      closed.samples.push_back(email);
    }
    return snapshot;
  });
  const std::string direct =
      "web_sessions_closed_total{site=\"shop\",channel=\"Direct\"} ";
  const std::string email =
      "web_sessions_closed_total{site=\"shop\",channel=\"Email\"} ";
  const std::string h = "web_session_duration_seconds";
  const std::string labels = "{site=\"shop\",channel=\"Direct\"";
  auto scrape = [&] {
    return Lines(HttpGet(port, "/metrics", testing::kPrometheusAccept));
  };

  std::vector<std::string> lines = Lines(HttpGet(port, "/metrics", "*/*"));
  EXPECT_THAT(lines, Contains(direct + "3"));
  // A HEAD with a scraper's headers writes no page: the 0 is still to be
  // served (an audit: it was used up, and increase() missed the first 3).
  EXPECT_THAT(HttpRequest(port, "HEAD", "/metrics", testing::kPrometheusAccept),
              ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));

  lines = scrape();
  EXPECT_THAT(lines, Contains(direct + "0"));
  EXPECT_THAT(lines, Contains(absl::StrCat(h, "_count", labels, "} 0")));
  EXPECT_THAT(lines, Contains(absl::StrCat(h, "_sum", labels, "} 0")));
  EXPECT_THAT(lines,
              Contains(absl::StrCat(h, "_bucket", labels, ",le=\"+Inf\"} 0")));
  EXPECT_THAT(lines, Contains("web_open_sessions{site=\"shop\"} 2"));

  lines = scrape();
  EXPECT_THAT(lines, Contains(direct + "3"));
  EXPECT_THAT(lines, Contains(absl::StrCat(h, "_count", labels, "} 3")));
  EXPECT_THAT(lines, Contains(absl::StrCat(h, "_sum", labels, "} 75")));
  EXPECT_THAT(lines,
              Contains(absl::StrCat(h, "_bucket", labels, ",le=\"60\"} 3")));

  round = 1;
  lines = Lines(HttpGet(port, "/metrics"));
  EXPECT_THAT(lines, Contains(email + "5"));
  lines = scrape();
  EXPECT_THAT(lines, Contains(email + "0"));
  EXPECT_THAT(lines, Not(Contains(HasSubstr(direct))));

  round = 2;
  lines = scrape();
  EXPECT_THAT(lines, Contains(direct + "3"));
  EXPECT_THAT(lines, Contains(email + "6"));
  EXPECT_EQ((*endpoint)->scrapes(), 6u);
}

// Two scrapers (an HA pair of Prometheus replicas: two addresses) each get
// a new series at 0 once, so that both count its rise; one set for all gave
// the 0 to whichever scraped first, and the other's increase() missed the
// series' first value. (A scraper that first comes more than 2 minutes
// after a series was served to another, a replica added later, takes it as
// old: not run here, the test would wait 2 minutes.)
TEST(MetricsEndpointTest, EachScraperIsServedANewSeriesAtZero) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  std::atomic<bool> email_on{false};
  (*endpoint)->AddSource([&email_on] {
    MetricsSnapshot snapshot = ShardSnapshot(3, {1, 0, 2, 0}, 75);
    if (email_on.load()) {
      MetricSample email = snapshot[0].samples[0];
      email.label_values = {"shop", "Email"};
      email.value = 4;
      snapshot[0].samples.push_back(email);
    }
    return snapshot;
  });
  const std::string direct =
      "web_sessions_closed_total{site=\"shop\",channel=\"Direct\"} ";
  const std::string email =
      "web_sessions_closed_total{site=\"shop\",channel=\"Email\"} ";
  auto scrape = [&](const char* from) {
    return Lines(HttpGet(port, "/metrics", testing::kPrometheusAccept, from));
  };

  // Replica A, then B: both see Direct at 0 first.
  EXPECT_THAT(scrape("127.0.0.1"), Contains(direct + "0"));
  EXPECT_THAT(scrape("127.0.0.2"), Contains(direct + "0"));
  EXPECT_THAT(scrape("127.0.0.1"), Contains(direct + "3"));
  EXPECT_THAT(scrape("127.0.0.2"), Contains(direct + "3"));

  // A new series: each replica's first sample of it is 0.
  email_on = true;
  EXPECT_THAT(scrape("127.0.0.2"), Contains(email + "0"));
  EXPECT_THAT(scrape("127.0.0.1"), Contains(email + "0"));
  EXPECT_THAT(scrape("127.0.0.2"), Contains(email + "4"));
  EXPECT_THAT(scrape("127.0.0.1"), Contains(email + "4"));

  // The same address with another user agent (an agent beside Prometheus
  // on one host) is another scraper; a third replica, too.
  EXPECT_THAT(Lines(HttpGet(port, "/metrics", testing::kPrometheusAccept,
                            "127.0.0.1", "vmagent/1.100")),
              Contains(email + "0"));
  EXPECT_THAT(scrape("127.0.0.3"), Contains(direct + "0"));
  EXPECT_THAT(scrape("127.0.0.3"), Contains(email + "4"));
  EXPECT_THAT(scrape("127.0.0.1"), Contains(email + "4"));
  // Two replicas on one address with one user agent (one host, a NAT)
  // tell themselves apart by their scrape config's params (an audit: the
  // second lost every new series' rise).
  EXPECT_THAT(Lines(HttpGet(port, "/metrics?replica=b",
                            testing::kPrometheusAccept, "127.0.0.1")),
              Contains(email + "0"));
  EXPECT_THAT(Lines(HttpGet(port, "/metrics?replica=b",
                            testing::kPrometheusAccept, "127.0.0.1")),
              Contains(email + "4"));
}

TEST(MetricsEndpointTest, HistogramWithoutObservationsHasAllBuckets) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  // No bucket counts at all: every bound is still exposed, at 0.
  (*endpoint)->AddSource([] { return ShardSnapshot(0, {}, 0); });
  const std::vector<std::string> lines =
      Lines(HttpGet((*endpoint)->port(), "/metrics"));
  const std::string prefix =
      "web_session_duration_seconds_bucket{site=\"shop\",channel=\"Direct\",";
  for (const char* le : {"10", "30", "60", "+Inf"}) {
    EXPECT_THAT(lines, Contains(absl::StrCat(prefix, "le=\"", le, "\"} 0")));
  }
}

TEST(MetricsEndpointTest, BusyPortIsAnErrorNamingTheAddress) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> first =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*first)->port());

  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> second =
      MetricsEndpoint::Start(address);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(address));
  EXPECT_THAT(second.status().message(), HasSubstr("/metrics"));
}

// A scrape is counted once its page is written to the connection, not once
// it is rendered: metrics.final_scrape_wait lets the engine exit on that
// count. (Counted at the render, a scrape could let the engine exit while
// its page was still being sent, and the scraper keep the page before the
// final commit's, as EngineE2E.FinalScrapeWaitServesTheLastCommitsNewSeries
// once did in a loaded test run.)
TEST(MetricsEndpointTest, AScrapeIsCountedOnceItsPageIsWritten) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  // A page of ~16 MB, far more than a socket's buffers hold while its
  // reader reads nothing: its write waits for the reader.
  (*endpoint)->AddSource([] {
    FamilySnapshot big;
    big.name = "big_gauge";
    big.help = "A gauge of many series.";
    big.type = MetricType::kGauge;
    big.label_names = {"id"};
    for (int i = 0; i < 100000; ++i) {
      MetricSample s;
      s.label_values = {absl::StrCat(std::string(140, 'x'), i)};
      s.value = i;
      big.samples.push_back(std::move(s));
    }
    return MetricsSnapshot{big};
  });
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  const int small = 64 * 1024;  // no autotuned receive buffer
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>((*endpoint)->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET /metrics HTTP/1.0\r\n\r\n";
  ASSERT_EQ(send(fd, request.data(), request.size(), 0),
            static_cast<ssize_t>(request.size()));
  // Rendered and partly sent by now; nothing read yet.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ((*endpoint)->scrapes(), 0u);
  size_t received = 0;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
    received += static_cast<size_t>(n);
  }
  close(fd);
  EXPECT_GT(received, 15'000'000u);
  EXPECT_TRUE(testing::WaitFor([&] { return (*endpoint)->scrapes() == 1; },
                               absl::Seconds(5)));
}

// HEAD (a load balancer's or an uptime checker's probe) has the status and
// headers of GET and no body, and is no scrape. It was a 404 once; any
// status but 200 was also called "Service Unavailable".
TEST(MetricsEndpointTest, HeadIsAnsweredLikeGetWithoutABody) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  const std::string body = HttpGet(port, "/metrics");
  ASSERT_THAT(body, HasSubstr("kpistream_build_info"));
  EXPECT_EQ((*endpoint)->scrapes(), 1u);

  const std::string head = HttpRequest(port, "HEAD", "/metrics");
  EXPECT_THAT(head, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  const size_t end = head.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << head;
  EXPECT_EQ(end + 4, head.size()) << "a body after HEAD's headers";
  // The page GET would have served: the same length (the build info and
  // the scrape count's digits do not change between the two).
  EXPECT_THAT(head, HasSubstr(absl::StrCat("Content-Length: ", body.size())));
  EXPECT_EQ((*endpoint)->scrapes(), 1u);

  (*endpoint)->AddHandler("/readyz", [] {
    return MetricsEndpoint::Response{503, "not ready: restoring\n"};
  });
  EXPECT_THAT(HttpRequest(port, "HEAD", "/readyz"),
              ::testing::StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_THAT(HttpRequest(port, "GET", "/readyz"),
              HasSubstr("\r\n\r\nnot ready: restoring\n"));
}

// Only the paths themselves are served (civetweb handed /readyz's handler
// /readyzz and /READYZ too: a mistyped probe path "worked"), and other
// methods than GET and HEAD are 405, not 404 (an audit).
TEST(MetricsEndpointTest, OnlyItsPathsAndMethodsAreServed) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  (*endpoint)->AddHandler("/readyz", [] {
    return MetricsEndpoint::Response{200, "ready\n"};
  });
  EXPECT_THAT(HttpRequest(port, "GET", "/readyz"),
              ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(HttpRequest(port, "GET", "/readyz?verbose=1"),
              ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  for (const char* path :
       {"/readyzz", "/READYZ", "/readyz/x", "/metricsfoo", "/metrics/x", "/"}) {
    // (civetweb answers "/" itself, in HTTP/1.0.)
    const auto not_found = ::testing::AllOf(::testing::StartsWith("HTTP/1."),
                                            HasSubstr(" 404 Not Found\r\n"));
    EXPECT_THAT(HttpRequest(port, "GET", path), not_found) << path;
    EXPECT_THAT(HttpRequest(port, "HEAD", path), not_found) << path;
  }
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    const std::string r = HttpRequest(port, method, "/metrics");
    EXPECT_THAT(r, ::testing::StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"))
        << method;
    EXPECT_THAT(r, HasSubstr("Allow: GET, HEAD\r\n")) << method;
  }
  EXPECT_EQ((*endpoint)->scrapes(), 0u);
}

// Connections that send nothing do not hold the endpoint: with civetweb's
// 4 threads, 4 idle sockets held /healthz for 30 s, and a few reopened in a
// loop failed every liveness probe (an audit). HttpRequest gives up after
// 10 s.
TEST(MetricsEndpointTest, IdleConnectionsDoNotHoldTheEndpoint) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  std::vector<int> idle;
  for (int i = 0; i < 12; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    if (i % 2 == 1) {  // half of them a request's first line, no more
      const char partial[] = "GET /metrics HTTP/1.1\r\n";
      ASSERT_GT(send(fd, partial, sizeof(partial) - 1, 0), 0);
    }
    idle.push_back(fd);
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(HttpGet(port, "/metrics"), HasSubstr("kpistream_build_info"));
  }
  for (int fd : idle) close(fd);
}

// The destructor ends civetweb's wait for connections with a knock on its
// port (the engine's stop waited up to 2 s for that loop without it): the
// server must still stop, right after a scrape too, and free its port. How
// soon is the benchmark's to show (e2e_bench's "stop"; BENCHMARKS.md, run
// RT), not a test's.
TEST(MetricsEndpointTest, AStoppedEndpointFreesItsPort) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  ASSERT_GT(port, 0);
  EXPECT_THAT(HttpGet(port, "/metrics"), HasSubstr("kpistream_build_info"));
  EXPECT_EQ((*endpoint)->scrapes(), 1u);
  endpoint->reset();
  EXPECT_EQ(HttpGet(port, "/metrics"), "");  // nobody listens

  // Its port again, and that one stopped in turn.
  const std::string address = absl::StrCat("127.0.0.1:", port);
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> again =
      MetricsEndpoint::Start(address);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->port(), port);
  EXPECT_EQ((*again)->scrapes(), 0u);
  again->reset();
  again = MetricsEndpoint::Start(address);
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(MetricsEndpointTest, MalformedAddressIsInvalidArgument) {
  for (const char* listen :
       {"127.0.0.1", "127.0.0.1:notaport", "127.0.0.1:70000", ":", ""}) {
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
        MetricsEndpoint::Start(listen);
    ASSERT_FALSE(endpoint.ok()) << listen;
    EXPECT_EQ(endpoint.status().code(), absl::StatusCode::kInvalidArgument)
        << listen;
    if (*listen != '\0') {
      EXPECT_THAT(endpoint.status().message(), HasSubstr(listen));
    }
  }
}

}  // namespace
}  // namespace kpistream
