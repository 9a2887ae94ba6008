// Property: the streaming engine (ReorderBuffer + Sessionizer + KpiCounters,
// fed events in a shuffled arrival order whose disorder stays inside
// max_out_of_orderness) agrees exactly with an obviously correct batch
// sessionizer written here (sort by visitor and time, split on gaps, and on
// client session ids with sessions.session_source: client), on every session
// and every KPI, over many random seeds.
#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time T0 = absl::FromUnixSeconds(1767225600);
const absl::Duration kOutOfOrderness = absl::Seconds(45);

// ---- The batch reference -------------------------------------------------

struct BatchSession {
  std::string site, visitor, landing, exit, channel, source, medium;
  std::string client_id;  // split_on_session_id: the first id of its events
  absl::Time start, end;
  uint32_t pageviews = 0, events = 0, orders = 0;
  bool engaged = false, bounced = false, single_page = false;
  bool long_session = false;
  std::map<std::string, uint32_t> conversions;
  std::map<std::string, int64_t> revenue;
};

std::vector<BatchSession> BatchSessionize(std::vector<Event> events,
                                          const SessionRules& rules,
                                          const ChannelClassifier& channels) {
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.site_id, a.visitor_id, a.time, a.event_id) <
           std::tie(b.site_id, b.visitor_id, b.time, b.event_id);
  });
  std::vector<BatchSession> out;
  std::vector<std::string> orders;  // the visitor's, of earlier sessions
  std::vector<std::pair<std::string, std::string>> goal_orders;  // session's
  std::vector<std::string> claimed;  // the session's ids that took an order
  std::vector<std::string> valued;   // the session's ids whose value counted
  // The session's ids of conversions with neither a value nor a currency:
  // an order each at the close, unless a conversion of the id took it.
  std::vector<std::string> pending;
  auto settle = [&](BatchSession& s) {
    for (const std::string& id : pending) {
      if (std::find(claimed.begin(), claimed.end(), id) != claimed.end()) {
        continue;
      }
      claimed.push_back(id);
      ++s.orders;
    }
    pending.clear();
  };
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    const bool same_visitor = !out.empty() && out.back().site == e.site_id &&
                              out.back().visitor == e.visitor_id;
    if (!same_visitor || e.time - out.back().end > rules.inactivity_timeout ||
        e.time - out.back().start > rules.max_length ||
        (rules.split_on_session_id && !e.session_id.empty() &&
         !out.back().client_id.empty() &&
         e.session_id != out.back().client_id)) {
      if (!out.empty()) settle(out.back());
      BatchSession s;
      s.site = e.site_id;
      s.visitor = e.visitor_id;
      s.start = s.end = e.time;
      const Acquisition a = channels.Attribute(e);
      s.channel = a.channel;
      s.source = a.source;
      s.medium = a.medium;
      out.push_back(s);
      // An order_id counts once per goal in its session; the order and its
      // value once per visitor (across sessions, 30 days), and in a later
      // session the id counts for no goal.
      for (const auto& [goal, order] : goal_orders) orders.push_back(order);
      goal_orders.clear();
      claimed.clear();
      valued.clear();
      if (!same_visitor) orders.clear();
    }
    BatchSession& s = out.back();
    if (rules.split_on_session_id && s.client_id.empty()) {
      s.client_id = e.session_id;
    }
    s.end = e.time;
    ++s.events;
    if (e.type == EventType::kPageView) {
      ++s.pageviews;
      if (s.landing.empty()) s.landing = e.page_url;
      s.exit = e.page_url;
    }
    if (e.type == EventType::kConversion) {
      bool claims = false;  // the order
      bool values = false;  // the id's value
      if (!e.order_id.empty()) {
        const std::pair<std::string, std::string> goal_order(e.goal,
                                                             e.order_id);
        if (std::find(orders.begin(), orders.end(), e.order_id) !=
            orders.end()) {
          continue;
        }
        // The goal's again in the session: no conversion, but the order
        // and the value if no conversion of the id brought them yet.
        const bool again = std::find(goal_orders.begin(), goal_orders.end(),
                                     goal_order) != goal_orders.end();
        if (!again) goal_orders.push_back(goal_order);
        // The order goes with the id's first conversion in the session that
        // has a value or a currency (a refund, a negative value, is no
        // order), its value with the first that has a value.
        claims = std::find(claimed.begin(), claimed.end(), e.order_id) ==
                     claimed.end() &&
                 (e.value_micros > 0 ||
                  (e.value_micros == 0 && !e.currency.empty()));
        if (claims) {
          claimed.push_back(e.order_id);
          ++s.orders;
        } else if (!again && e.value_micros == 0 && e.currency.empty()) {
          pending.push_back(e.order_id);
        }
        values = std::find(valued.begin(), valued.end(), e.order_id) ==
                     valued.end() &&
                 e.value_micros > 0;
        if (values) valued.push_back(e.order_id);
        if (again) {
          if (values) s.revenue[e.currency] += e.value_micros;
          continue;
        }
      }
      ++s.conversions[e.goal];
      // Revenue is never negative: a refund is not subtracted.
      if ((values || e.order_id.empty()) && e.value_micros > 0) {
        s.revenue[e.currency] += e.value_micros;
      }
    }
  }
  if (!out.empty()) settle(out.back());
  for (BatchSession& s : out) {
    s.engaged =
        s.end - s.start >= rules.engaged_min_duration ||
        s.pageviews >= static_cast<uint32_t>(rules.engaged_min_pageviews) ||
        !s.conversions.empty();
    s.bounced = !s.engaged;
    s.single_page = s.pageviews == 1 && s.events == 1;
    s.long_session = s.end - s.start >= rules.long_min_duration;
  }
  return out;
}

// ---- Random input ---------------------------------------------------------

std::vector<Event> RandomEvents(uint64_t seed) {
  std::mt19937_64 rng(seed);
  // The client's session ids from a generator of their own (the rest of the
  // events as before they were added).
  std::mt19937_64 id_rng(seed * 104729 + 3);
  std::vector<Event> events;
  const char* pages[] = {"/", "/a", "/b", "/cart", "/checkout"};
  const char* referrers[] = {"", "https://www.google.com/", "https://t.co/x",
                             "https://news.example.org/"};
  const int visitors = 20 + static_cast<int>(rng() % 40);
  int id = 0;
  for (int v = 0; v < visitors; ++v) {
    absl::Time t = T0 + absl::Seconds(rng() % 7200);
    // One in ten visitors never pauses for long: their activity runs past
    // the 24 h cap.
    const bool marathon = rng() % 10 == 0;
    const std::string site = rng() % 4 == 0 ? "blog" : "shop";
    const int n = marathon ? 90 : 1 + static_cast<int>(rng() % 40);
    int client_session = 0;
    for (int i = 0; i < n; ++i) {
      Event e;
      // A new client session now and then (often inside the engine's);
      // some events carry none.
      const int c = static_cast<int>(id_rng() % 100);
      if (c < 6) ++client_session;
      if (c < 90) e.session_id = absl::StrCat("c", v, "-", client_session);
      e.site_id = site;
      e.visitor_id = absl::StrCat("v", v);
      e.event_id = absl::StrCat("e", id++);
      e.time = t;
      const int r = static_cast<int>(rng() % 100);
      e.type = r < 60   ? EventType::kPageView
               : r < 80 ? EventType::kEngagement
               : r < 90 ? EventType::kConversion
                        : EventType::kCustom;
      e.page_url = absl::StrCat("https://shop.example", pages[rng() % 5]);
      e.referrer = referrers[rng() % 4];
      if (rng() % 5 == 0) {
        e.utm_source = "newsletter";
        e.utm_medium = "email";
      }
      e.device_category = rng() % 2 ? "desktop" : "mobile";
      e.country = rng() % 2 ? "DE" : "US";
      if (e.type == EventType::kConversion) {
        e.goal = rng() % 2 ? "signup" : "purchase";
        if (e.goal == "purchase") {
          e.value_micros = static_cast<int64_t>(1 + rng() % 100) * 1000000;
          if (rng() % 8 == 0) e.value_micros = -e.value_micros;  // a refund
          e.currency = rng() % 2 ? "EUR" : "USD";
          // Repeats on purpose, within and across the visitor's sessions.
          e.order_id = absl::StrCat("o-", v, "-", rng() % 6);
        } else if (rng() % 3 == 0) {
          // A signup of an order id a purchase has too (one order, two
          // goals' conversions), or not; with a currency and no value
          // (it takes the order; the purchase after it adds the value).
          e.order_id = absl::StrCat("o-", v, "-", rng() % 6);
          if (rng() % 2 == 0) e.currency = rng() % 2 ? "EUR" : "USD";
        }
      }
      events.push_back(e);
      // Gaps: mostly short; some right at the 30 min boundary; some longer;
      // some visitors stay active for more than 24 h (the cap).
      const int g = static_cast<int>(rng() % 100);
      absl::Duration gap;
      if (marathon) {
        gap = g < 20 ? absl::Minutes(30)
                     : absl::Minutes(15) + absl::Seconds(rng() % 900);
      } else if (g < 60) {
        gap = absl::Milliseconds(rng() % 120000);
      } else if (g < 75) {
        gap = absl::Minutes(20) + absl::Seconds(rng() % 600);
      } else if (g < 82) {
        gap = absl::Minutes(30);
      } else if (g < 86) {
        gap = absl::Minutes(30) + absl::Milliseconds(1);
      } else if (g < 95) {
        gap = absl::Minutes(29) + absl::Seconds(rng() % 60);
      } else {
        gap = absl::Hours(1) + absl::Seconds(rng() % 7200);
      }
      t += gap;
    }
  }
  return events;
}

// Arrival order: each event is delayed by up to the out-of-orderness.
std::vector<Event> Shuffle(std::vector<Event> events, uint64_t seed) {
  std::mt19937_64 rng(seed * 7919 + 1);
  std::vector<std::pair<absl::Time, size_t>> arrival;
  for (size_t i = 0; i < events.size(); ++i) {
    const absl::Duration delay =
        absl::Milliseconds(rng() % absl::ToInt64Milliseconds(kOutOfOrderness));
    arrival.push_back({events[i].time + delay, i});
  }
  std::sort(arrival.begin(), arrival.end());
  std::vector<Event> out;
  for (const auto& [at, i] : arrival) out.push_back(events[i]);
  return out;
}

// ---- The streaming engine under test --------------------------------------

class Collector : public SessionObserver {
 public:
  explicit Collector(KpiCounters* counters) : counters_(counters) {}
  void OnSessionStarted(const SessionAttributes& s,
                        const EventView& e) override {
    counters_->OnSessionStarted(s, e);
  }
  void OnEvent(const SessionAttributes& s, const EventView& e) override {
    counters_->OnEvent(s, e);
  }
  void OnSessionClosed(const ClosedSession& s) override {
    counters_->OnSessionClosed(s);
    closed.push_back(s);
  }
  std::vector<ClosedSession> closed;

 private:
  KpiCounters* counters_;
};

double Sum(const MetricsSnapshot& s, const std::string& name,
           const std::string& label = "", const std::string& value = "") {
  double sum = 0;
  for (const FamilySnapshot& f : s) {
    if (f.name != name) continue;
    int index = -1;
    for (size_t i = 0; i < f.label_names.size(); ++i) {
      if (f.label_names[i] == label) index = static_cast<int>(i);
    }
    for (const MetricSample& m : f.samples) {
      if (index >= 0 && m.label_values[index] != value) continue;
      sum += f.type == MetricType::kHistogram ? m.count : m.value;
    }
  }
  return sum;
}

void StreamingEqualsBatch(const SessionRules& rules) {
  const ChannelClassifier channels;
  int total_sessions = 0, capped = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    const std::vector<Event> events = RandomEvents(seed);
    const std::vector<BatchSession> want =
        BatchSessionize(events, rules, channels);

    KpiCounters counters({});
    Collector collector(&counters);
    PartitionState state(rules, absl::Minutes(5), &collector, &channels,
                         absl::Hours(1));
    absl::Time max = absl::InfinitePast();
    size_t n = 0;
    for (Event e : Shuffle(events, seed)) {
      max = std::max(max, e.time);
      const absl::Time watermark = max - kOutOfOrderness;
      ASSERT_EQ(state.Offer(std::move(e), watermark),
                PartitionState::Admit::kAccepted);
      if (++n % 7 == 0) state.Advance(watermark);
    }
    state.Drain();

    std::vector<ClosedSession> got = collector.closed;
    std::sort(got.begin(), got.end(),
              [](const ClosedSession& a, const ClosedSession& b) {
                return std::tie(a.site_id, a.visitor_id, a.start) <
                       std::tie(b.site_id, b.visitor_id, b.start);
              });
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const BatchSession& w = want[i];
      const ClosedSession& g = got[i];
      SCOPED_TRACE(absl::StrCat(w.site, "/", w.visitor, " at ",
                                absl::FormatTime(w.start)));
      EXPECT_EQ(g.site_id, w.site);
      EXPECT_EQ(g.visitor_id, w.visitor);
      EXPECT_EQ(g.start, w.start);
      EXPECT_EQ(g.end, w.end);
      EXPECT_EQ(g.pageviews, w.pageviews);
      EXPECT_EQ(g.events, w.events);
      EXPECT_EQ(g.engaged, w.engaged);
      EXPECT_EQ(g.bounced, w.bounced);
      EXPECT_EQ(g.single_page, w.single_page);
      EXPECT_EQ(g.long_session, w.long_session);
      EXPECT_EQ(g.landing_page, w.landing);
      EXPECT_EQ(g.exit_page, w.exit);
      EXPECT_EQ(g.channel, w.channel);
      EXPECT_EQ(g.source, w.source);
      EXPECT_EQ(g.medium, w.medium);
      EXPECT_EQ(g.orders, w.orders);
      EXPECT_EQ(g.client_session_id, w.client_id);
      const std::map<std::string, uint32_t> got_conversions(
          g.conversions.begin(), g.conversions.end());
      const std::map<std::string, int64_t> got_revenue(g.revenue.begin(),
                                                       g.revenue.end());
      EXPECT_EQ(got_conversions, w.conversions);
      EXPECT_EQ(got_revenue, w.revenue);
      if (w.end - w.start > absl::Hours(23)) ++capped;
    }
    total_sessions += static_cast<int>(want.size());

    // Every KPI counter equals the batch aggregate.
    counters.Commit();
    const MetricsSnapshot s = counters.Snapshot();
    double closed = 0, engaged = 0, bounced = 0, single = 0, pageviews = 0,
           orders = 0, duration = 0, long_sessions = 0;
    std::map<std::string, double> conversions, revenue;
    for (const BatchSession& w : want) {
      ++closed;
      engaged += w.engaged;
      bounced += w.bounced;
      single += w.single_page;
      long_sessions += w.long_session;
      pageviews += w.pageviews;
      orders += w.orders;
      duration += absl::ToDoubleSeconds(w.end - w.start);
      for (const auto& [goal, c] : w.conversions) conversions[goal] += c;
      for (const auto& [cur, micros] : w.revenue) revenue[cur] += micros / 1e6;
    }
    EXPECT_EQ(Sum(s, "web_sessions_started_total"), closed);
    EXPECT_EQ(Sum(s, "web_sessions_closed_total"), closed);
    EXPECT_EQ(Sum(s, "web_sessions_engaged_total"), engaged);
    EXPECT_EQ(Sum(s, "web_sessions_bounced_total"), bounced);
    EXPECT_EQ(Sum(s, "web_sessions_single_page_total"), single);
    EXPECT_EQ(Sum(s, "web_sessions_long_total"), long_sessions);
    EXPECT_EQ(Sum(s, "web_pageviews_total"), pageviews);
    EXPECT_EQ(Sum(s, "web_orders_total"), orders);
    EXPECT_EQ(Sum(s, "web_open_sessions"), 0);
    EXPECT_EQ(Sum(s, "web_session_duration_seconds"),
              closed);  // histogram count
    for (const auto& [goal, c] : conversions) {
      EXPECT_EQ(Sum(s, "web_conversions_total", "goal", goal), c) << goal;
    }
    for (const auto& [cur, value] : revenue) {
      EXPECT_NEAR(Sum(s, "web_revenue_total", "currency", cur), value, 1e-6)
          << cur;
    }
    double duration_sum = 0;
    for (const FamilySnapshot& f : s) {
      if (f.name != "web_session_duration_seconds") continue;
      for (const MetricSample& m : f.samples) duration_sum += m.value;
    }
    EXPECT_NEAR(duration_sum, duration, 1e-6);
  }
  // The generator exercises the interesting cases.
  EXPECT_GT(total_sessions, 2000);
  EXPECT_GT(capped, 0) << "no session reached the 24 h cap";
}

TEST(ExactnessPropertyTest, StreamingEqualsBatchOverManySeeds) {
  StreamingEqualsBatch(SessionRules());
}

// sessions.session_source: client: the same, with sessions also split where
// the events' client session id changes.
TEST(ExactnessPropertyTest, ClientSessionsStreamingEqualsBatch) {
  SessionRules rules;
  rules.split_on_session_id = true;
  StreamingEqualsBatch(rules);
}

}  // namespace
}  // namespace kpistream
