#include "export/process_metrics.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "export/metrics_endpoint.h"
#include "gtest/gtest.h"
#include "tests/integration/test_support.h"

namespace kpistream {
namespace {

TEST(ProcessMetricsTest, ParsesAStatLineWhoseCommandHasSpacesAndParens) {
  // Fields 3.. of proc(5): utime (14) 250, stime (15) 150, starttime (22)
  // 1000, vsize (23) 123456789, rss (24) 300 pages.
  const std::string stat =
      "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 "
      "20 0 3 0 1000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 "
      "0 0 17 1 0 0 0 0 0\n";
  ProcessStats stats;
  ASSERT_TRUE(ParseProcessStat(stat, 100, 4096, 1700000000, &stats).ok());
  EXPECT_DOUBLE_EQ(stats.cpu_seconds, 4.0);
  EXPECT_DOUBLE_EQ(stats.virtual_memory_bytes, 123456789);
  EXPECT_DOUBLE_EQ(stats.resident_memory_bytes, 300 * 4096);
  EXPECT_DOUBLE_EQ(stats.start_time_seconds, 1700000010);
  EXPECT_FALSE(ParseProcessStat("4242 (x) S 1 2", 100, 4096, 0, &stats).ok());
  EXPECT_FALSE(ParseProcessStat("garbage", 100, 4096, 0, &stats).ok());
}

TEST(ProcessMetricsTest, ParsesBootTimeAndTheSoftFileLimit) {
  auto boot = ParseBootTime("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocs 3\n");
  ASSERT_TRUE(boot.ok());
  EXPECT_EQ(*boot, 1700000000);
  EXPECT_FALSE(ParseBootTime("cpu 1 2 3\n").ok());
  const std::string limits =
      "Limit                     Soft Limit           Hard Limit           "
      "Units     \n"
      "Max cpu time              unlimited            unlimited            "
      "seconds   \n"
      "Max open files            1024                 524288               "
      "files     \n";
  auto max_fds = ParseMaxOpenFiles(limits);
  ASSERT_TRUE(max_fds.ok());
  EXPECT_EQ(*max_fds, 1024);
  auto unlimited = ParseMaxOpenFiles(
      "Max open files            unlimited            unlimited    files\n");
  ASSERT_TRUE(unlimited.ok());
  EXPECT_TRUE(std::isinf(*unlimited));
  EXPECT_FALSE(ParseMaxOpenFiles("Max processes 10 10 processes\n").ok());
}

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

TEST(ProcessMetricsTest, AgreesWithWhatTheProcessDoes) {
  auto before = ReadProcessStats();
  ASSERT_TRUE(before.ok()) << before.status();

  // The soft limit, as getrlimit sees it.
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur == RLIM_INFINITY) {
    EXPECT_TRUE(std::isinf(before->max_fds));
  } else {
    EXPECT_EQ(before->max_fds, static_cast<double>(limit.rlim_cur));
  }

  // 16 more open files are 16 more fds.
  std::vector<int> fds;
  for (int i = 0; i < 16; ++i) fds.push_back(open("/dev/null", O_RDONLY));
  auto opened = ReadProcessStats();
  for (int fd : fds) close(fd);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->open_fds, before->open_fds + 16);

  // 64 MiB touched are resident.
  const size_t bytes = 64 << 20;
  std::unique_ptr<char[]> block(new char[bytes]);
  std::memset(block.get(), 1, bytes);
  // CPU time: spin for 0.3 s of it.
  const double cpu_start = ProcessCpuSeconds();
  volatile uint64_t sink = 0;
  while (ProcessCpuSeconds() - cpu_start < 0.3) {
    for (size_t i = 0; i < bytes; i += 4096) sink += block[i];
  }
  auto after = ReadProcessStats();
  ASSERT_TRUE(after.ok());
  EXPECT_GE(after->resident_memory_bytes,
            before->resident_memory_bytes + 60.0 * (1 << 20));
  EXPECT_GE(after->virtual_memory_bytes, after->resident_memory_bytes);
  EXPECT_GE(after->cpu_seconds - before->cpu_seconds, 0.2);
  // /proc counts in clock ticks (10 ms): within a few of the kernel's clock.
  EXPECT_NEAR(after->cpu_seconds, ProcessCpuSeconds(), 0.1);

  // Started a moment ago (this test binary), not in 1970 or the future.
  const double now = absl::ToUnixSeconds(absl::Now());
  EXPECT_LE(after->start_time_seconds, now + 1);
  EXPECT_GE(after->start_time_seconds, now - 3600);
}

TEST(ProcessMetricsTest, ExportsTheClientLibrariesNamesAndTypes) {
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  (*endpoint)->AddSource(&CollectProcessMetrics);
  auto page = testing::HttpGet((*endpoint)->port(), "/metrics");
  ASSERT_TRUE(page.ok()) << page.status();
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"process_cpu_seconds_total", "counter"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_virtual_memory_bytes", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_max_fds", "gauge"},
      {"process_start_time_seconds", "gauge"}};
  for (const auto& [name, type] : expected) {
    EXPECT_NE(page->find(absl::StrCat("# TYPE ", name, " ", type, "\n")),
              std::string::npos)
        << name << "\n"
        << *page;
    // CPU time may still be 0 ticks in a young test process.
    const double value = testing::MetricValue(*page, name);
    if (name == "process_cpu_seconds_total") {
      EXPECT_GE(value, 0);
    } else {
      EXPECT_GT(value, 0) << name;
    }
  }
  EXPECT_EQ(testing::MetricValue(*page, "process_max_fds"),
            ReadProcessStats()->max_fds);
}

}  // namespace
}  // namespace kpistream
