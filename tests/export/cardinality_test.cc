// A flood of attacker-controlled values (random campaigns, referrers, paths,
// sites, currencies, goals) must not grow the series count: every family
// stays under its label limits and the /metrics page under a fixed size.
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "export/metrics_endpoint.h"
#include "gtest/gtest.h"
#include "tests/integration/test_support.h"

namespace kpistream {
namespace {

// Offers `n` events, the i-th filled in by `fill` (event times 50 ms apart,
// event ids given), to a partition counting into `counters`, closes every
// session, commits and returns the /metrics page.
std::string PageAfter(KpiCounters& counters, int n,
                      const std::function<void(int, Event&)>& fill) {
  ChannelClassifier channels;
  PartitionState state(SessionRules{}, absl::ZeroDuration(), &counters,
                       &channels, absl::Hours(1));
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  absl::Time max = absl::InfinitePast();
  for (int i = 0; i < n; ++i) {
    Event e;
    e.time = t0 + absl::Milliseconds(i * 50);
    e.event_id = absl::StrCat("e", i);
    fill(i, e);
    max = std::max(max, e.time);
    state.Offer(std::move(e), max - absl::Seconds(30));
    if (i % 1000 == 0) state.Advance(max - absl::Seconds(30));
  }
  state.Drain();
  counters.Commit();
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0");
  EXPECT_TRUE(endpoint.ok()) << endpoint.status();
  if (!endpoint.ok()) return "";
  (*endpoint)->AddSource([&] { return counters.Snapshot(); });
  auto page = testing::HttpGet((*endpoint)->port(), "/metrics");
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? *page : "";
}

TEST(CardinalityTest, RandomLabelValuesStayBounded) {
  constexpr int kLimit = 20;
  KpiCounters counters({kLimit, {"signup", "purchase"}, SessionRules{}});
  std::mt19937_64 rng(3);
  const std::string page = PageAfter(counters, 100000, [&](int i, Event& e) {
    e.site_id = i % 10 == 0 ? absl::StrCat("site-", rng()) : "shop";
    e.visitor_id = absl::StrCat("v", rng() % 20000);
    e.type = i % 7 == 0 ? EventType::kConversion : EventType::kPageView;
    e.page_url = absl::StrCat("https://shop.example/p/", rng(), "?q=", rng());
    e.referrer = absl::StrCat("https://", rng(), ".example.net/");
    e.utm_source = absl::StrCat("src-", rng());
    e.utm_medium = i % 2 ? "cpc" : absl::StrCat("m", rng());
    e.utm_campaign = absl::StrCat("campaign-", rng());
    e.device_category = "desktop";
    e.country = "DE";
    if (e.type == EventType::kConversion) {
      e.goal = i % 3 ? absl::StrCat("goal", rng()) : "purchase";
      e.value_micros = 1000000;
      e.currency = absl::StrCat("C", rng() % 1000);
      e.order_id = absl::StrCat("o", i);
    }
  });

  // Series per family, and distinct values per label.
  std::map<std::string, int> series;
  std::map<std::string, std::set<std::string>> values;
  for (absl::string_view line : absl::StrSplit(page, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    const absl::string_view name = line.substr(0, line.find_first_of("{ "));
    ++series[std::string(name)];
    const size_t open = line.find('{');
    if (open == absl::string_view::npos) continue;
    const absl::string_view labels =
        line.substr(open + 1, line.find('}') - open - 1);
    for (absl::string_view pair : absl::StrSplit(labels, "\",")) {
      const size_t eq = pair.find('=');
      absl::string_view value = pair.substr(eq + 1);
      absl::ConsumePrefix(&value, "\"");
      absl::ConsumeSuffix(&value, "\"");
      values[std::string(pair.substr(0, eq))].insert(std::string(value));
    }
  }
  for (const char* label : {"site", "source", "medium", "campaign",
                            "landing_page", "currency", "goal"}) {
    // kLimit admitted values plus "(other)" and "(not set)" (and "(any)").
    EXPECT_LE(values[label].size(), static_cast<size_t>(kLimit + 3)) << label;
  }
  for (const auto& [name, n] : series) {
    EXPECT_LE(n, 5000) << name;
  }
  EXPECT_LT(page.size(), 1000000u) << "the /metrics page grew with the input";
  EXPECT_GT(testing::MetricValue(page, "kpistream_label_overflow_total",
                                 {{"label", "campaign"}}),
            10000);
}

// The bound per label leaves a family its labels' product: an audit mixed
// 50 admitted values per label (each frequent) in 500,000 sessions and got
// 1.74 million series, a 152 MB page. At the defaults the combinations of a
// family's labels are bounded too (metrics.label_combinations_max, 10,000),
// and the totals stay exact.
TEST(CardinalityTest, MixedAdmittedValuesStayBoundedAtTheDefaults) {
  KpiCounters counters(KpiCounters::Options{});
  std::mt19937_64 rng(5);
  constexpr int kSessions = 60000;
  const std::string page = PageAfter(counters, kSessions, [&](int i, Event& e) {
    e.site_id = "shop";
    e.visitor_id = absl::StrCat("v", i);  // one session each
    e.type = EventType::kConversion;
    e.goal = "purchase";
    e.page_url = "https://shop.example/checkout";
    e.utm_source = absl::StrCat("src-", rng() % 50);
    e.utm_medium = absl::StrCat("med-", rng() % 50);
    e.utm_campaign = absl::StrCat("campaign-", rng() % 50);
    e.device_category = "desktop";
    e.country = absl::StrCat("C", rng() % 50);
    e.value_micros = 1000000;
    e.currency = "EUR";
    e.order_id = absl::StrCat("o", i);
  });
  std::map<std::string, int> series;
  for (absl::string_view line : absl::StrSplit(page, '\n', absl::SkipEmpty())) {
    if (line[0] != '#') ++series[std::string(line.substr(0, line.find('{')))];
  }
  // 10,000 combinations, plus the folded ones (one per site and channel).
  for (const auto& [name, n] : series) {
    EXPECT_LE(n, 10000 + 50) << name;
  }
  EXPECT_EQ(testing::MetricValue(page, "web_campaign_sessions_total", {}),
            kSessions);
  EXPECT_EQ(testing::MetricValue(page, "web_campaign_revenue_total", {}),
            kSessions);
  EXPECT_GT(testing::MetricValue(page, "web_campaign_sessions_total",
                                 {{"source", "(other)"}}),
            kSessions / 10);
  EXPECT_GT(testing::MetricValue(page, "kpistream_label_overflow_total",
                                 {{"label", "campaign"}}),
            kSessions / 10);
}

}  // namespace
}  // namespace kpistream
