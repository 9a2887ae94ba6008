// A flood of attacker-controlled values (random campaigns, referrers, paths,
// sites, currencies, goals) must not grow the series count: every family
// stays under its label limits and the /metrics page under a fixed size.
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

TEST(CardinalityTest, RandomLabelValuesStayBounded) {
  constexpr int kLimit = 20;
  KpiCounters counters({kLimit, {"signup", "purchase"}, SessionRules{}});
  ChannelClassifier channels;
  PartitionState state(SessionRules{}, absl::ZeroDuration(), &counters,
                       &channels, absl::Hours(1));
  std::mt19937_64 rng(3);
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  absl::Time max = absl::InfinitePast();
  for (int i = 0; i < 100000; ++i) {
    Event e;
    e.time = t0 + absl::Milliseconds(i * 50);
    e.event_id = absl::StrCat("e", i);
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
    max = std::max(max, e.time);
    state.Offer(std::move(e), max - absl::Seconds(30));
    if (i % 1000 == 0) state.Advance(max - absl::Seconds(30));
  }
  state.Drain();
  counters.Commit();

  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  (*endpoint)->AddSource([&] { return counters.Snapshot(); });
  auto page = testing::HttpGet((*endpoint)->port(), "/metrics");
  ASSERT_TRUE(page.ok()) << page.status();

  // Series per family, and distinct values per label.
  std::map<std::string, int> series;
  std::map<std::string, std::set<std::string>> values;
  for (absl::string_view line :
       absl::StrSplit(*page, '\n', absl::SkipEmpty())) {
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
  EXPECT_LT(page->size(), 1000000u) << "the /metrics page grew with the input";
  EXPECT_GT(testing::MetricValue(*page, "kpistream_label_overflow_total",
                                 {{"label", "campaign"}}),
            10000);
}

}  // namespace
}  // namespace kpistream
