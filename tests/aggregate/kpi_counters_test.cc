// KpiCounters driven through its SessionObserver methods directly, with
// hand-built sessions: independent of the Sessionizer.
#include "aggregate/kpi_counters.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

const FamilySnapshot* Find(const MetricsSnapshot& snapshot,
                           const std::string& name) {
  for (const FamilySnapshot& family : snapshot) {
    if (family.name == name) return &family;
  }
  return nullptr;
}

// The sample of `name` whose labels are exactly `labels` (all of them, in the
// family's order), or null.
const MetricSample* Get(const MetricsSnapshot& snapshot,
                        const std::string& name,
                        const std::vector<std::string>& labels) {
  const FamilySnapshot* family = Find(snapshot, name);
  if (family == nullptr) return nullptr;
  for (const MetricSample& sample : family->samples) {
    if (sample.label_values == labels) return &sample;
  }
  return nullptr;
}

// Value of the sample with exactly `labels`; -1 when there is none.
double Value(const MetricsSnapshot& snapshot, const std::string& name,
             const std::vector<std::string>& labels) {
  const MetricSample* sample = Get(snapshot, name, labels);
  return sample == nullptr ? -1 : sample->value;
}

// Sum over the family's samples whose labels include `filter`.
double Sum(const MetricsSnapshot& snapshot, const std::string& name,
           const std::map<std::string, std::string>& filter = {}) {
  const FamilySnapshot* family = Find(snapshot, name);
  if (family == nullptr) return -1;
  double sum = 0;
  for (const MetricSample& sample : family->samples) {
    bool match = true;
    for (const auto& [label, value] : filter) {
      for (size_t i = 0; i < family->label_names.size(); ++i) {
        if (family->label_names[i] == label &&
            sample.label_values[i] != value) {
          match = false;
        }
      }
    }
    if (match) sum += sample.value;
  }
  return sum;
}

Event MakeEvent(EventType type, const std::string& site,
                const std::string& goal = "") {
  Event event;
  event.time = kT0;
  event.type = type;
  event.site_id = site;
  event.visitor_id = "v";
  event.goal = goal;
  return event;
}

// What the engine does per admitted event: web_events_total at admission,
// the session-level counters when the sessionizer applies it.
void AcceptAndApply(KpiCounters& counters, const SessionAttributes& session,
                    const Event& event) {
  counters.CountAccepted(event.site_id, event.type);
  counters.OnEvent(session, event);
}

SessionAttributes Attributes(absl::string_view site, absl::string_view channel,
                             absl::string_view device,
                             absl::string_view country, bool new_visitor) {
  SessionAttributes attributes;
  attributes.site_id = site;
  attributes.channel = channel;
  attributes.device_category = device;
  attributes.country = country;
  attributes.new_visitor = new_visitor;
  return attributes;
}

ClosedSession Closed(const std::string& site, const std::string& channel,
                     const std::string& device, const std::string& country,
                     absl::Duration duration, uint32_t pageviews) {
  ClosedSession session;
  session.site_id = site;
  session.visitor_id = "v";
  session.channel = channel;
  session.device_category = device;
  session.country = country;
  session.start = kT0;
  session.end = kT0 + duration;
  session.pageviews = pageviews;
  return session;
}

// Opens and closes one session of `site` whose only event is a page view.
void OneSession(KpiCounters* counters, const std::string& site,
                absl::Duration duration, uint32_t pageviews) {
  const SessionAttributes a = Attributes(site, "Direct", "desktop", "DE", true);
  const Event pv = MakeEvent(EventType::kPageView, site);
  counters->OnSessionStarted(a, pv);
  counters->OnEvent(a, pv);
  counters->OnSessionClosed(
      Closed(site, "Direct", "desktop", "DE", duration, pageviews));
}

// What /metrics shows: the counts of committed work.
MetricsSnapshot Committed(KpiCounters& counters) {
  counters.Commit();
  return counters.Snapshot();
}

TEST(KpiCountersTest, EveryFamilyIsListedWithItsLabelsEvenWhenEmpty) {
  KpiCounters counters({});
  const MetricsSnapshot snapshot = Committed(counters);
  std::vector<std::string> names;
  for (const FamilySnapshot& family : snapshot) {
    names.push_back(family.name);
    EXPECT_FALSE(family.help.empty()) << family.name;
  }
  EXPECT_THAT(
      names,
      ElementsAre(
          "web_events_total", "web_pageviews_total",
          "web_sessions_started_total", "web_sessions_closed_total",
          "web_sessions_engaged_total", "web_sessions_bounced_total",
          "web_sessions_single_page_total", "web_sessions_long_total",
          "web_sessions_new_visitor_total", "web_session_duration_seconds",
          "web_session_pageviews", "web_conversions_total",
          "web_sessions_converted_total", "web_orders_total",
          "web_revenue_total", "web_open_sessions", "web_active_visitors",
          "web_campaign_sessions_total",
          "web_campaign_sessions_converted_total", "web_campaign_revenue_total",
          "web_landing_page_sessions_total", "web_landing_page_bounces_total",
          "web_funnel_step_sessions_total", "web_ad_cost_total",
          "kpistream_events_consumed_total",
          "kpistream_events_repartitioned_total",
          "kpistream_input_records_deleted_total",
          "kpistream_events_invalid_total", "kpistream_events_late_total",
          "kpistream_events_duplicate_total", "kpistream_bot_events_total",
          "kpistream_ad_cost_records_total", "kpistream_label_overflow_total"));

  auto labels = [&](const std::string& name) {
    return Find(snapshot, name)->label_names;
  };
  const std::vector<std::string> session_labels = {"site", "channel", "device",
                                                   "country"};
  EXPECT_THAT(labels("web_events_total"), ElementsAre("site", "type"));
  EXPECT_THAT(labels("web_pageviews_total"),
              ElementsAre("site", "channel", "device"));
  for (const char* name :
       {"web_sessions_started_total", "web_sessions_closed_total",
        "web_sessions_engaged_total", "web_sessions_bounced_total",
        "web_sessions_single_page_total", "web_sessions_long_total"}) {
    EXPECT_EQ(labels(name), session_labels) << name;
  }
  EXPECT_THAT(labels("web_sessions_new_visitor_total"),
              ElementsAre("site", "channel"));
  EXPECT_THAT(labels("web_session_duration_seconds"),
              ElementsAre("site", "channel"));
  EXPECT_THAT(labels("web_session_pageviews"), ElementsAre("site"));
  EXPECT_THAT(labels("web_conversions_total"),
              ElementsAre("site", "goal", "channel"));
  EXPECT_THAT(labels("web_sessions_converted_total"),
              ElementsAre("site", "goal", "channel"));
  EXPECT_THAT(labels("web_orders_total"),
              ElementsAre("site", "channel", "currency"));
  EXPECT_THAT(labels("web_revenue_total"),
              ElementsAre("site", "channel", "currency"));
  EXPECT_THAT(labels("web_open_sessions"), ElementsAre("site"));
  EXPECT_THAT(labels("web_campaign_sessions_total"),
              ElementsAre("site", "source", "medium", "campaign"));
  EXPECT_THAT(labels("web_campaign_revenue_total"),
              ElementsAre("site", "source", "medium", "campaign", "currency"));
  EXPECT_THAT(labels("web_landing_page_sessions_total"),
              ElementsAre("site", "landing_page"));
  EXPECT_THAT(labels("kpistream_events_consumed_total"), ElementsAre("topic"));
  EXPECT_THAT(labels("kpistream_events_invalid_total"), ElementsAre("reason"));
  EXPECT_THAT(labels("kpistream_label_overflow_total"), ElementsAre("label"));

  EXPECT_EQ(Find(snapshot, "web_open_sessions")->type, MetricType::kGauge);
  EXPECT_EQ(Find(snapshot, "web_session_duration_seconds")->type,
            MetricType::kHistogram);
  EXPECT_THAT(Find(snapshot, "web_session_duration_seconds")->bucket_bounds,
              ElementsAre(1, 5, 10, 30, 60, 180, 600, 1800, 3600, 7200, 86400));
  EXPECT_EQ(Find(snapshot, "web_session_pageviews")->type,
            MetricType::kHistogram);
  EXPECT_THAT(Find(snapshot, "web_session_pageviews")->bucket_bounds,
              ElementsAre(1, 2, 3, 5, 10, 20, 50));
  EXPECT_EQ(Find(snapshot, "web_events_total")->type, MetricType::kCounter);

  // Unlabelled counters and the overflow counters exist at 0 from the start.
  EXPECT_EQ(Value(snapshot, "kpistream_events_late_total", {}), 0);
  EXPECT_EQ(Value(snapshot, "kpistream_events_duplicate_total", {}), 0);
  EXPECT_EQ(Value(snapshot, "kpistream_bot_events_total", {}), 0);
  // One per label limiter (the ad cost's campaign is the sessions').
  EXPECT_EQ(Find(snapshot, "kpistream_label_overflow_total")->samples.size(),
            12u);
  EXPECT_EQ(Sum(snapshot, "kpistream_label_overflow_total"), 0);
  EXPECT_TRUE(Find(snapshot, "web_events_total")->samples.empty());
}

// SPEC §7: counters whose label values are known in advance exist at 0 from
// the start, so rate() and alerts see them before the first occurrence.
TEST(KpiCountersTest, KnownTopicsAndReasonsStartAtZero) {
  KpiCounters::Options options;
  options.input_topics = {"web.events", "web.adcost"};
  options.repartitioned_topics = {"web.events"};
  options.invalid_reasons = {"malformed", "missing_site_id"};
  KpiCounters counters(options);
  const MetricsSnapshot s = Committed(counters);
  EXPECT_EQ(Value(s, "kpistream_events_repartitioned_total", {"web.events"}),
            0);
  EXPECT_EQ(Value(s, "kpistream_events_repartitioned_total", {"web.adcost"}),
            -1);
  EXPECT_EQ(Value(s, "kpistream_events_consumed_total", {"web.events"}), 0);
  EXPECT_EQ(Value(s, "kpistream_events_consumed_total", {"web.adcost"}), 0);
  EXPECT_EQ(Value(s, "kpistream_input_records_deleted_total", {"web.events"}),
            0);
  EXPECT_EQ(Value(s, "kpistream_events_invalid_total", {"malformed"}), 0);
  EXPECT_EQ(Value(s, "kpistream_events_invalid_total", {"missing_site_id"}), 0);
  counters.CountInvalid("malformed");
  counters.CountInvalid("something_else");  // not a known reason: "(other)"
  const MetricsSnapshot after = Committed(counters);
  EXPECT_EQ(Value(after, "kpistream_events_invalid_total", {"malformed"}), 1);
  EXPECT_EQ(Value(after, "kpistream_events_invalid_total", {"(other)"}), 1);
}

TEST(KpiCountersTest, ScriptedSequenceGivesExactCounts) {
  KpiCounters counters({});
  const SessionAttributes a =
      Attributes("shop", "Organic Search", "desktop", "DE", true);
  const SessionAttributes b =
      Attributes("shop", "Email", "mobile", "FR", false);

  const Event pv = MakeEvent(EventType::kPageView, "shop");
  counters.OnSessionStarted(a, pv);
  AcceptAndApply(counters, a, pv);
  AcceptAndApply(counters, a, pv);
  AcceptAndApply(counters, a,
                 MakeEvent(EventType::kConversion, "shop", "signup"));
  AcceptAndApply(counters, a, MakeEvent(EventType::kEngagement, "shop"));
  counters.OnSessionStarted(b, pv);
  AcceptAndApply(counters, b, pv);
  counters.CountConsumed("web.events", 7);
  counters.CountConsumed("web.events");
  counters.CountInvalid("malformed");
  counters.CountInvalid("malformed");
  counters.CountInvalid("missing_visitor_id");
  counters.CountLate();
  counters.CountDuplicate();
  counters.CountDuplicate();
  counters.CountBot();

  MetricsSnapshot open = Committed(counters);
  EXPECT_EQ(Value(open, "web_events_total", {"shop", "page_view"}), 3);
  EXPECT_EQ(Value(open, "web_events_total", {"shop", "engagement"}), 1);
  EXPECT_EQ(Value(open, "web_events_total", {"shop", "conversion"}), 1);
  EXPECT_EQ(Value(open, "web_events_total", {"shop", "custom"}), 0);
  EXPECT_EQ(
      Value(open, "web_pageviews_total", {"shop", "Organic Search", "desktop"}),
      2);
  EXPECT_EQ(Value(open, "web_pageviews_total", {"shop", "Email", "mobile"}), 1);
  EXPECT_EQ(Value(open, "web_sessions_started_total",
                  {"shop", "Organic Search", "desktop", "DE"}),
            1);
  EXPECT_EQ(Value(open, "web_sessions_started_total",
                  {"shop", "Email", "mobile", "FR"}),
            1);
  EXPECT_EQ(Value(open, "web_sessions_closed_total",
                  {"shop", "Email", "mobile", "FR"}),
            0);
  EXPECT_EQ(
      Value(open, "web_sessions_new_visitor_total", {"shop", "Organic Search"}),
      1);
  EXPECT_EQ(Value(open, "web_sessions_new_visitor_total", {"shop", "Email"}),
            0);
  // Conversions are counted from the closed session (order_id dedup).
  EXPECT_EQ(Sum(open, "web_conversions_total"), 0);
  EXPECT_EQ(Value(open, "kpistream_events_consumed_total", {"web.events"}), 8);
  EXPECT_EQ(Value(open, "kpistream_events_invalid_total", {"malformed"}), 2);
  EXPECT_EQ(
      Value(open, "kpistream_events_invalid_total", {"missing_visitor_id"}), 1);
  EXPECT_EQ(Value(open, "kpistream_events_late_total", {}), 1);
  EXPECT_EQ(Value(open, "kpistream_events_duplicate_total", {}), 2);
  EXPECT_EQ(Value(open, "kpistream_bot_events_total", {}), 1);

  ClosedSession closed_a =
      Closed("shop", "Organic Search", "desktop", "DE", absl::Seconds(45), 2);
  closed_a.events = 4;
  closed_a.engaged = true;
  closed_a.new_visitor = true;
  closed_a.conversions = {{"purchase", 2}, {"signup", 1}};
  closed_a.revenue = {{"EUR", 25500000}, {"USD", 10000000}};
  closed_a.orders = 3;
  closed_a.orders_by_currency = {{"EUR", 2}, {"USD", 1}};
  counters.OnSessionClosed(closed_a);
  ClosedSession closed_b =
      Closed("shop", "Email", "mobile", "FR", absl::ZeroDuration(), 1);
  closed_b.events = 1;
  closed_b.bounced = true;
  closed_b.single_page = true;
  counters.OnSessionClosed(closed_b);

  MetricsSnapshot s = Committed(counters);
  const std::vector<std::string> ka = {"shop", "Organic Search", "desktop",
                                       "DE"};
  const std::vector<std::string> kb = {"shop", "Email", "mobile", "FR"};
  EXPECT_EQ(Value(s, "web_sessions_closed_total", ka), 1);
  EXPECT_EQ(Value(s, "web_sessions_closed_total", kb), 1);
  EXPECT_EQ(Value(s, "web_sessions_engaged_total", ka), 1);
  EXPECT_EQ(Value(s, "web_sessions_engaged_total", kb), 0);
  EXPECT_EQ(Value(s, "web_sessions_bounced_total", ka), 0);
  EXPECT_EQ(Value(s, "web_sessions_bounced_total", kb), 1);
  EXPECT_EQ(Value(s, "web_sessions_single_page_total", ka), 0);
  EXPECT_EQ(Value(s, "web_sessions_single_page_total", kb), 1);

  EXPECT_EQ(
      Value(s, "web_conversions_total", {"shop", "purchase", "Organic Search"}),
      2);
  EXPECT_EQ(
      Value(s, "web_conversions_total", {"shop", "signup", "Organic Search"}),
      1);
  EXPECT_EQ(Sum(s, "web_conversions_total"), 3);
  EXPECT_EQ(Value(s, "web_sessions_converted_total",
                  {"shop", "purchase", "Organic Search"}),
            1);
  EXPECT_EQ(Value(s, "web_sessions_converted_total",
                  {"shop", "signup", "Organic Search"}),
            1);
  EXPECT_EQ(Value(s, "web_sessions_converted_total",
                  {"shop", "(any)", "Organic Search"}),
            1);
  EXPECT_EQ(Sum(s, "web_sessions_converted_total", {{"goal", "(any)"}}), 1);
  // "(any)" is a session notion: no conversions series of its own.
  EXPECT_EQ(Sum(s, "web_conversions_total", {{"goal", "(any)"}}), 0);
  // SPEC §4: orders by the currency of their conversion, so that AOV per
  // currency divides like by like.
  EXPECT_EQ(Value(s, "web_orders_total", {"shop", "Organic Search", "EUR"}), 2);
  EXPECT_EQ(Value(s, "web_orders_total", {"shop", "Organic Search", "USD"}), 1);
  EXPECT_EQ(Sum(s, "web_orders_total", {{"channel", "Email"}}), 0);
  EXPECT_DOUBLE_EQ(
      Value(s, "web_revenue_total", {"shop", "Organic Search", "EUR"}), 25.5);
  EXPECT_DOUBLE_EQ(
      Value(s, "web_revenue_total", {"shop", "Organic Search", "USD"}), 10);
  EXPECT_EQ(Find(s, "web_revenue_total")->samples.size(), 2u);

  const MetricSample* duration_a =
      Get(s, "web_session_duration_seconds", {"shop", "Organic Search"});
  ASSERT_NE(duration_a, nullptr);
  EXPECT_EQ(duration_a->count, 1u);
  EXPECT_EQ(duration_a->value, 45);
  EXPECT_THAT(duration_a->bucket_counts,
              ElementsAre(0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0));  // le=60
  const MetricSample* duration_b =
      Get(s, "web_session_duration_seconds", {"shop", "Email"});
  ASSERT_NE(duration_b, nullptr);
  EXPECT_THAT(duration_b->bucket_counts,
              ElementsAre(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));  // le=1
  const MetricSample* pageviews = Get(s, "web_session_pageviews", {"shop"});
  ASSERT_NE(pageviews, nullptr);
  EXPECT_EQ(pageviews->count, 2u);
  EXPECT_EQ(pageviews->value, 3);
  EXPECT_THAT(pageviews->bucket_counts, ElementsAre(1, 1, 0, 0, 0, 0, 0, 0));

  // Event counters did not move at close.
  EXPECT_EQ(Sum(s, "web_events_total"), 5);
  EXPECT_EQ(Sum(s, "web_pageviews_total"), 3);
  EXPECT_EQ(Sum(s, "kpistream_label_overflow_total"), 0);
}

TEST(KpiCountersTest, HistogramBoundariesAreInclusive) {
  KpiCounters counters({});
  const std::vector<absl::Duration> durations = {
      absl::ZeroDuration(), absl::Seconds(1),          absl::Milliseconds(1500),
      absl::Seconds(10),    absl::Milliseconds(10001), absl::Seconds(1800),
      absl::Hours(24),      absl::Hours(25),
      absl::Seconds(-3),  // clock skew in the input: counted as 0 s
  };
  const std::vector<uint32_t> pageviews = {0, 1, 2, 3, 4, 50, 51, 1000, 20};
  for (size_t i = 0; i < durations.size(); ++i) {
    OneSession(&counters, "shop", durations[i], pageviews[i]);
  }
  const MetricsSnapshot s = Committed(counters);
  const MetricSample* duration =
      Get(s, "web_session_duration_seconds", {"shop", "Direct"});
  ASSERT_NE(duration, nullptr);
  // Bounds: 1 5 10 30 60 180 600 1800 3600 7200 86400 +Inf
  EXPECT_THAT(duration->bucket_counts,
              ElementsAre(3, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1));
  EXPECT_EQ(duration->count, 9u);
  EXPECT_DOUBLE_EQ(duration->value,
                   0 + 1 + 1.5 + 10 + 10.001 + 1800 + 86400 + 90000 + 0);

  const MetricSample* pv = Get(s, "web_session_pageviews", {"shop"});
  ASSERT_NE(pv, nullptr);
  // Bounds: 1 2 3 5 10 20 50 +Inf
  EXPECT_THAT(pv->bucket_counts, ElementsAre(2, 1, 1, 1, 0, 1, 1, 2));
  EXPECT_EQ(pv->count, 9u);
  EXPECT_EQ(pv->value, 0 + 1 + 2 + 3 + 4 + 50 + 51 + 1000 + 20);
}

TEST(KpiCountersTest, ThousandSitesWithMaxFiftyStayBounded) {
  KpiCounters::Options options;
  options.label_values_max = 50;
  KpiCounters counters(options);
  for (int i = 0; i < 1000; ++i) {
    const std::string site = absl::StrCat("site-", i);
    AcceptAndApply(counters, Attributes(site, "Direct", "desktop", "DE", false),
                   MakeEvent(EventType::kPageView, site));
  }
  const MetricsSnapshot s = Committed(counters);
  std::set<std::string> sites;
  for (const MetricSample& sample : Find(s, "web_events_total")->samples) {
    sites.insert(sample.label_values[0]);
  }
  EXPECT_EQ(sites.size(), 51u);
  EXPECT_EQ(sites.count("(other)"), 1u);
  EXPECT_EQ(sites.count("site-0"), 1u);
  EXPECT_EQ(sites.count("site-49"), 1u);
  EXPECT_EQ(sites.count("site-50"), 0u);
  EXPECT_EQ(Find(s, "web_pageviews_total")->samples.size(), 51u);
  EXPECT_EQ(Value(s, "web_events_total", {"(other)", "page_view"}), 950);
  EXPECT_EQ(Value(s, "web_events_total", {"site-7", "page_view"}), 1);
  // Every lookup of an overflowing value counts: here two per event (at
  // admission and when the page view is counted).
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"site"}), 2 * 950);
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"channel"}), 0);
  EXPECT_EQ(Sum(s, "web_pageviews_total"), 1000);
}

// The channel label's values are the classifier's fixed groups: all of them
// are admitted whatever label_values_max (an audit: a limit of 5, meant for
// campaigns, put Organic Social and Display sessions under "(other)"); an
// allowlist narrows them.
TEST(KpiCountersTest, EveryChannelIsAdmittedWhateverTheBound) {
  KpiCounters::Options options;
  options.label_values_max = 1;
  KpiCounters counters(options);
  for (const char* channel : {"Direct", "Organic Social", "Display", "Email"}) {
    counters.OnSessionClosed(
        Closed("shop", channel, "desktop", "DE", absl::Seconds(30), 2));
  }
  MetricsSnapshot s = Committed(counters);
  for (const char* channel : {"Direct", "Organic Social", "Display", "Email"}) {
    EXPECT_EQ(Value(s, "web_sessions_closed_total",
                    {"shop", channel, "desktop", "DE"}),
              1)
        << channel;
  }
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"channel"}), 0);

  options.allowlists = {{"channel", {"Email"}}};
  KpiCounters listed(options);
  listed.OnSessionClosed(
      Closed("shop", "Display", "desktop", "DE", absl::Seconds(30), 2));
  listed.OnSessionClosed(
      Closed("shop", "Email", "desktop", "DE", absl::Seconds(30), 2));
  s = Committed(listed);
  EXPECT_EQ(Value(s, "web_sessions_closed_total",
                  {"shop", "(other)", "desktop", "DE"}),
            1);
  EXPECT_EQ(
      Value(s, "web_sessions_closed_total", {"shop", "Email", "desktop", "DE"}),
      1);
}

// CountAccepted says which label value an event's site counts under: the
// realtime visitors are kept per label value, not per site.
TEST(KpiCountersTest, AnAcceptedEventsSiteLabelValueIsReturned) {
  KpiCounters::Options options;
  options.label_values_max = 1;
  KpiCounters counters(options);
  EXPECT_EQ(counters.CountAccepted("a", EventType::kPageView), "a");
  EXPECT_EQ(counters.CountAccepted("b", EventType::kPageView), "(other)");
  EXPECT_EQ(counters.CountAccepted("", EventType::kPageView), "(not set)");
  EXPECT_EQ(counters.CountAccepted("a", EventType::kPageView), "a");
}

// web_open_sessions is live state, set whole; its sites share the site
// label's bound.
TEST(KpiCountersTest, OpenSessionsAreSetFromLiveStateWithBoundedSites) {
  KpiCounters::Options options;
  options.label_values_max = 1;
  KpiCounters counters(options);
  counters.CountAccepted("a", EventType::kPageView);  // admits "a"
  counters.SetOpenSessions({{"a", 2}, {"b", 1}, {"c", 4}});
  MetricsSnapshot s = Committed(counters);
  EXPECT_EQ(Value(s, "web_open_sessions", {"a"}), 2);
  EXPECT_EQ(Value(s, "web_open_sessions", {"(other)"}), 5);
  counters.SetOpenSessions({{"a", 1}});
  s = Committed(counters);
  EXPECT_EQ(Value(s, "web_open_sessions", {"a"}), 1);
  EXPECT_EQ(Value(s, "web_open_sessions", {"(other)"}), -1);  // gone
  // Set at every publish from state the events made: the sites in
  // "(other)" count no overflow there (the events counted theirs), or an
  // idle engine's overflow rate would never fall to 0.
  for (int publish = 0; publish < 3; ++publish) {
    counters.SetOpenSessions({{"b", 1}, {"c", 4}});
    counters.SetActiveVisitors({{"b", {1, 1}}, {"c", {2, 3}}});
  }
  s = Committed(counters);
  EXPECT_EQ(Value(s, "web_open_sessions", {"(other)"}), 5);
  EXPECT_EQ(Value(s, "web_active_visitors", {"(other)", "30m"}), 4);
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"site"}), 0);
}

// AddOpenSessions with the caller's cache per site (each publish adds every
// open site's count again: an audit's flood of sites took 58 % of a core
// looking them up): the same values as without one, publish after publish.
TEST(KpiCountersTest, OpenSessionsWithACachePerSite) {
  KpiCounters::Options options;
  options.label_values_max = 2;
  KpiCounters counters(options);
  counters.CountAccepted("a", EventType::kPageView);     // admits "a"
  counters.CountAccepted("\x01", EventType::kPageView);  // never admitted
  uint64_t cache_a = 0, cache_b = 0, cache_x = 0;
  for (int publish = 0; publish < 3; ++publish) {
    counters.ClearOpenSessions();
    counters.AddOpenSessions("a", 2 + publish, &cache_a);
    counters.AddOpenSessions("b", 1, &cache_b);  // admitted at publish 0
    counters.AddOpenSessions("\x01", 4, &cache_x);
    const MetricsSnapshot s = Committed(counters);
    EXPECT_EQ(Value(s, "web_open_sessions", {"a"}), 2 + publish);
    EXPECT_EQ(Value(s, "web_open_sessions", {"b"}), 1);
    EXPECT_EQ(Value(s, "web_open_sessions", {"(other)"}), 4);
  }
  // A third site, "(other)" (the label is full), stays so.
  uint64_t cache_c = 0;
  counters.ClearOpenSessions();
  counters.AddOpenSessions("c", 5, &cache_c);
  counters.AddOpenSessions("c", 5, &cache_c);
  EXPECT_EQ(Value(Committed(counters), "web_open_sessions", {"(other)"}), 10);
}

// The engine's stream threads count into one KpiCounters each, merged by
// label value on /metrics: with their admission shared, label_values_max
// bounds a label's values in the process, and a value admitted by one
// thread is itself in the others (not "(other)" there).
TEST(KpiCountersTest, ThreadsSharingTheAdmissionStayWithinTheBound) {
  LabelAdmissions shared;
  KpiCounters::Options options;
  options.label_values_max = 1;
  options.admissions = &shared;
  KpiCounters thread_a(options), thread_b(options);
  thread_a.CountAccepted("a", EventType::kPageView);
  thread_b.CountAccepted("b", EventType::kPageView);
  thread_b.CountAccepted("a", EventType::kPageView);
  MetricsSnapshot merged = Committed(thread_a);
  MergeSnapshot(Committed(thread_b), &merged);
  EXPECT_EQ(Value(merged, "web_events_total", {"a", "page_view"}), 2);
  EXPECT_EQ(Value(merged, "web_events_total", {"(other)", "page_view"}), 1);
  EXPECT_EQ(Value(merged, "web_events_total", {"b", "page_view"}), -1);
}

// A target's filter values are reserved (review: with label_values_max
// reached first by other countries, a target on BR saw its sessions in
// "(other)": its PromQL read 0 and paged while the engine counted them).
// Reserved values take no room from the others; an allowlist decides alone.
TEST(KpiCountersTest, ReservedValuesAreAdmittedBeyondTheBound) {
  LabelAdmissions shared;
  KpiCounters::Options options;
  options.label_values_max = 1;
  options.admissions = &shared;
  options.reserved = {{"country", {"BR"}}, {"site", {"shop"}}};
  KpiCounters thread_a(options), thread_b(options);
  thread_a.OnSessionClosed(
      Closed("blog", "Email", "desktop", "US", absl::Seconds(30), 2));
  thread_a.OnSessionClosed(
      Closed("news", "Email", "desktop", "DE", absl::Seconds(30), 2));
  thread_b.OnSessionClosed(
      Closed("shop", "Email", "desktop", "BR", absl::Seconds(30), 2));
  MetricsSnapshot s = Committed(thread_a);
  MergeSnapshot(Committed(thread_b), &s);
  EXPECT_EQ(
      Value(s, "web_sessions_closed_total", {"shop", "Email", "desktop", "BR"}),
      1);
  EXPECT_EQ(
      Value(s, "web_sessions_closed_total", {"blog", "Email", "desktop", "US"}),
      1);  // the bound's one value each, besides the reserved
  EXPECT_EQ(Value(s, "web_sessions_closed_total",
                  {"(other)", "Email", "desktop", "(other)"}),
            1);
  options.allowlists = {{"country", {"US"}}};
  KpiCounters listed(options);
  listed.OnSessionClosed(
      Closed("shop", "Email", "desktop", "BR", absl::Seconds(30), 2));
  EXPECT_EQ(Value(Committed(listed), "web_sessions_closed_total",
                  {"shop", "Email", "desktop", "(other)"}),
            1);
}

// A closed session of one campaign with one euro of revenue.
ClosedSession CampaignSession(const std::string& country,
                              const std::string& source,
                              const std::string& medium,
                              const std::string& campaign) {
  ClosedSession session =
      Closed("shop", "Paid Search", "desktop", country, absl::Seconds(30), 2);
  session.source = source;
  session.medium = medium;
  session.campaign = campaign;
  session.revenue = {{"EUR", 1000000}};
  session.orders_by_currency = {{"EUR", 1}};
  return session;
}

// Distinct label values of `label` in `name`'s samples.
std::set<std::string> LabelValues(const MetricsSnapshot& snapshot,
                                  const std::string& name,
                                  const std::string& label) {
  std::set<std::string> values;
  const FamilySnapshot* family = Find(snapshot, name);
  for (const MetricSample& sample : family->samples) {
    for (size_t i = 0; i < family->label_names.size(); ++i) {
      if (family->label_names[i] == label)
        values.insert(sample.label_values[i]);
    }
  }
  return values;
}

// The bound per label leaves a family its labels' product (an audit: 50
// admitted values per label, mixed by 500,000 sessions, made 1.74 million
// series, a 152 MB page and 133 events/s). label_combinations_max bounds
// the combinations: beyond it a new one counts with every label but site
// and channel under "(other)", so that totals per site and channel stay
// exact and each label that gave its value up counts an overflow.
TEST(KpiCountersTest, LabelCombinationsBeyondTheBoundAreFolded) {
  KpiCounters::Options options;
  options.label_values_max = 50;
  options.label_combinations_max = 4;
  KpiCounters counters(options);
  for (int i = 0; i < 10; ++i) {
    counters.OnSessionClosed(Closed("shop", "Direct", "desktop",
                                    absl::StrCat("C", i), absl::Seconds(30),
                                    2));
  }
  MetricsSnapshot s = Committed(counters);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Value(s, "web_sessions_closed_total",
                    {"shop", "Direct", "desktop", absl::StrCat("C", i)}),
              1)
        << i;
  }
  EXPECT_EQ(Value(s, "web_sessions_closed_total",
                  {"shop", "Direct", "(other)", "(other)"}),
            6);
  EXPECT_EQ(Find(s, "web_sessions_closed_total")->samples.size(), 5u);
  EXPECT_EQ(Sum(s, "web_sessions_closed_total"), 10);
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"country"}), 6);
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"device"}), 6);
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"site"}), 0);
  // A combination admitted before stays itself.
  counters.OnSessionClosed(
      Closed("shop", "Direct", "desktop", "C2", absl::Seconds(30), 2));
  s = Committed(counters);
  EXPECT_EQ(Value(s, "web_sessions_closed_total",
                  {"shop", "Direct", "desktop", "C2"}),
            2);

  // Campaigns: 64 combinations of 4 sources, mediums and campaigns (each
  // value frequent), and their revenue and orders.
  int sessions = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 64; ++i) {
      counters.OnSessionClosed(CampaignSession("C0", absl::StrCat("s", i % 4),
                                               absl::StrCat("m", i / 4 % 4),
                                               absl::StrCat("c", i / 16)));
      ++sessions;
    }
  }
  s = Committed(counters);
  EXPECT_LE(Find(s, "web_campaign_sessions_total")->samples.size(), 4u + 2);
  EXPECT_LE(Find(s, "web_campaign_revenue_total")->samples.size(), 4u + 2);
  EXPECT_EQ(Sum(s, "web_campaign_sessions_total", {{"site", "shop"}}),
            sessions + 11);
  EXPECT_EQ(Sum(s, "web_campaign_revenue_total"), sessions);
  EXPECT_GT(Value(s, "web_campaign_revenue_total",
                  {"shop", "(other)", "(other)", "(other)", "EUR"}),
            0);
  EXPECT_EQ(Sum(s, "web_revenue_total", {{"channel", "Paid Search"}}),
            sessions);
  EXPECT_EQ(Sum(s, "web_orders_total", {{"channel", "Paid Search"}}), sessions);
  EXPECT_GT(Value(s, "kpistream_label_overflow_total", {"campaign"}), 0);
}

// Values the configuration names (allowlisted, or a target's filter, so
// that its alert's series see every session) are never folded.
TEST(KpiCountersTest, ConfiguredValuesAreKeptInFoldedCombinations) {
  KpiCounters::Options options;
  options.label_combinations_max = 1;
  options.reserved = {{"country", {"BR"}}};
  options.allowlists = {{"device", {"desktop", "mobile"}}};
  KpiCounters counters(options);
  counters.OnSessionClosed(
      Closed("shop", "Direct", "desktop", "US", absl::Seconds(30), 2));
  counters.OnSessionClosed(
      Closed("shop", "Direct", "mobile", "FR", absl::Seconds(30), 2));
  counters.OnSessionClosed(
      Closed("shop", "Direct", "mobile", "BR", absl::Seconds(30), 2));
  counters.OnSessionClosed(
      Closed("shop", "Direct", "tablet", "BR", absl::Seconds(30), 2));
  const MetricsSnapshot s = Committed(counters);
  EXPECT_EQ(Value(s, "web_sessions_closed_total",
                  {"shop", "Direct", "desktop", "US"}),
            1);
  EXPECT_EQ(Value(s, "web_sessions_closed_total",
                  {"shop", "Direct", "mobile", "(other)"}),
            1);
  // Configured values only: always itself, whatever the bound.
  EXPECT_EQ(
      Value(s, "web_sessions_closed_total", {"shop", "Direct", "mobile", "BR"}),
      1);
  EXPECT_EQ(Value(s, "web_sessions_closed_total",
                  {"shop", "Direct", "(other)", "BR"}),
            1);
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"country"}), 1);
}

// `rounds` times (each value frequent from the third), for each campaign,
// a session of google / cpc with an order of 1 in EUR and one in JPY.
void CloseCampaignSessions(int rounds,
                           std::initializer_list<const char*> campaigns,
                           KpiCounters* counters) {
  for (int round = 0; round < rounds; ++round) {
    for (const char* campaign : campaigns) {
      for (const char* currency : {"EUR", "JPY"}) {
        ClosedSession session =
            CampaignSession("DE", "google", "cpc", campaign);
        session.revenue = {{currency, 1000000}};
        session.orders_by_currency = {{currency, 1}};
        counters->OnSessionClosed(session);
      }
    }
  }
}

// Folding keeps what cannot be added up or must match elsewhere (review):
// money stays in its currency, and a campaign an ad cost record named keeps
// its name in the session families, so that ROAS finds revenue beside cost.
TEST(KpiCountersTest, FoldedCombinationsKeepCurrencyAndAdCostCampaigns) {
  KpiCounters::Options options;
  options.label_combinations_max = 2;
  KpiCounters counters(options);
  counters.CountAdCost("shop", "Paid Search", "summer", "EUR", 50000000);
  CloseCampaignSessions(3, {"a", "b", "c", "summer"}, &counters);
  const MetricsSnapshot s = Committed(counters);
  EXPECT_EQ(Sum(s, "web_revenue_total", {{"currency", "EUR"}}), 12);
  EXPECT_EQ(Sum(s, "web_revenue_total", {{"currency", "JPY"}}), 12);
  EXPECT_EQ(Sum(s, "web_campaign_revenue_total", {{"currency", "EUR"}}), 12);
  EXPECT_EQ(Sum(s, "web_orders_total", {{"currency", "JPY"}}), 12);
  EXPECT_EQ(Sum(s, "web_campaign_sessions_total", {{"campaign", "summer"}}), 6);
  EXPECT_EQ(Sum(s, "web_campaign_revenue_total", {{"campaign", "summer"}}), 6);
  EXPECT_EQ(Sum(s, "web_ad_cost_total", {{"campaign", "summer"}}), 50);
  EXPECT_GT(Sum(s, "web_campaign_sessions_total", {{"campaign", "(other)"}}),
            0);
}

// Ad cost's combinations are bounded too (an audit: 255,000 records of 50
// sites, 25 campaigns, 51 currencies and 4 channels made 255,000 series of
// web_ad_cost_total, a 26.7 MB page): beyond the bound a new combination's
// campaign is "(other)", even one a cost record named, and the cost per
// site, channel and currency stays exact. A configured campaign is kept.
TEST(KpiCountersTest, AdCostCombinationsBeyondTheBoundAreFolded) {
  KpiCounters::Options options;
  options.label_combinations_max = 3;
  options.allowlists = {{"campaign", {"listed", "c0", "c1", "c2", "c3"}}};
  KpiCounters counters(options);
  for (const char* currency : {"EUR", "USD"}) {
    for (int i = 0; i < 4; ++i) {
      counters.CountAdCost("shop", "Paid Search", absl::StrCat("c", i),
                           currency, 1'000'000);
    }
  }
  counters.CountAdCost("shop", "Display", "listed", "EUR", 2'000'000);
  counters.CountAdCost("shop", "Display", "unlisted", "EUR", 3'000'000);
  MetricsSnapshot s = Committed(counters);
  // Allowlisted campaigns are configured: every one kept.
  EXPECT_EQ(Find(s, "web_ad_cost_total")->samples.size(), 10u);
  KpiCounters::Options open;
  open.label_combinations_max = 3;
  KpiCounters flooded(open);
  for (const char* currency : {"EUR", "USD"}) {
    for (int i = 0; i < 4; ++i) {
      flooded.CountAdCost("shop", "Paid Search", absl::StrCat("c", i), currency,
                          1'000'000);
    }
  }
  s = Committed(flooded);
  EXPECT_EQ(Value(s, "web_ad_cost_total", {"shop", "Paid Search", "c0", "EUR"}),
            1);
  EXPECT_EQ(Value(s, "web_ad_cost_total", {"shop", "Paid Search", "c2", "EUR"}),
            1);
  EXPECT_EQ(
      Value(s, "web_ad_cost_total", {"shop", "Paid Search", "(other)", "EUR"}),
      1);
  EXPECT_EQ(
      Value(s, "web_ad_cost_total", {"shop", "Paid Search", "(other)", "USD"}),
      4);
  EXPECT_EQ(Find(s, "web_ad_cost_total")->samples.size(), 5u);
  EXPECT_EQ(Sum(s, "web_ad_cost_total", {{"currency", "EUR"}}), 4);
  EXPECT_EQ(Sum(s, "web_ad_cost_total", {{"currency", "USD"}}), 4);
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"campaign"}), 5);
  // A combination admitted before stays itself.
  flooded.CountAdCost("shop", "Paid Search", "c1", "EUR", 1'000'000);
  s = Committed(flooded);
  EXPECT_EQ(Value(s, "web_ad_cost_total", {"shop", "Paid Search", "c1", "EUR"}),
            2);
}

// Money summed for the life of the process goes past int64's micros: an
// int64 sum of micros stopped at 9.22e12 units (9.22e12 IDR is ~570 M USD,
// weeks of a marketplace's revenue), after which web_revenue_total,
// web_campaign_revenue_total and web_ad_cost_total never rose again (an
// audit).
TEST(KpiCountersTest, MoneySumsGoPastInt64Micros) {
  KpiCounters counters({});
  constexpr int64_t kMicros = 4'000'000'000'000'000'000;  // 4e12 IDR
  for (int commit = 0; commit < 3; ++commit) {
    ClosedSession session = CampaignSession("DE", "google", "cpc", "big");
    session.revenue = {{"IDR", kMicros}};
    session.orders_by_currency = {{"IDR", 1}};
    counters.OnSessionClosed(session);
    counters.CountAdCost("shop", "Paid Search", "big", "IDR", kMicros);
    counters.Commit();
  }
  const MetricsSnapshot s = Committed(counters);
  EXPECT_DOUBLE_EQ(Sum(s, "web_revenue_total", {{"currency", "IDR"}}), 12e12);
  EXPECT_DOUBLE_EQ(Sum(s, "web_campaign_revenue_total", {{"currency", "IDR"}}),
                   12e12);
  EXPECT_DOUBLE_EQ(Sum(s, "web_ad_cost_total", {{"currency", "IDR"}}), 12e12);
  EXPECT_EQ(Sum(s, "web_orders_total", {{"currency", "IDR"}}), 3);
}

// A campaign's revenue goes with its sessions: under its name wherever its
// sessions are, in every currency (an audit: a bound of its own, filled by
// (campaign, currency) pairs first, put campaign b's revenue under
// "(other)" beside b's own sessions and conversions).
TEST(KpiCountersTest, ACampaignsRevenueGoesWithItsSessions) {
  KpiCounters::Options options;
  options.label_combinations_max = 3;
  KpiCounters counters(options);
  CloseCampaignSessions(4, {"a", "b"}, &counters);
  const MetricsSnapshot s = Committed(counters);
  int named = 0;
  for (const char* campaign : {"a", "b"}) {
    const double sessions =
        Sum(s, "web_campaign_sessions_total", {{"campaign", campaign}});
    if (sessions <= 0) continue;
    ++named;
    EXPECT_EQ(Sum(s, "web_campaign_revenue_total", {{"campaign", campaign}}),
              sessions)
        << campaign;
  }
  EXPECT_EQ(named, 2);
  EXPECT_EQ(Sum(s, "web_campaign_revenue_total"), 16);
}

// The stream threads share the bound (by label value: their ids differ),
// as they share the values' admission.
TEST(KpiCountersTest, ThreadsShareTheLabelCombinationBound) {
  LabelAdmissions shared;
  KpiCounters::Options options;
  options.label_combinations_max = 2;
  options.admissions = &shared;
  KpiCounters thread_a(options), thread_b(options);
  thread_b.CountAccepted("blog", EventType::kPageView);  // other ids in b
  thread_a.OnSessionClosed(
      Closed("shop", "Direct", "desktop", "US", absl::Seconds(30), 2));
  thread_a.OnSessionClosed(
      Closed("shop", "Direct", "desktop", "FR", absl::Seconds(30), 2));
  thread_b.OnSessionClosed(
      Closed("shop", "Direct", "desktop", "DE", absl::Seconds(30), 2));
  thread_b.OnSessionClosed(
      Closed("shop", "Direct", "desktop", "FR", absl::Seconds(30), 2));
  MetricsSnapshot merged = Committed(thread_a);
  MergeSnapshot(Committed(thread_b), &merged);
  EXPECT_EQ(Value(merged, "web_sessions_closed_total",
                  {"shop", "Direct", "desktop", "FR"}),
            2);
  EXPECT_EQ(Value(merged, "web_sessions_closed_total",
                  {"shop", "Direct", "(other)", "(other)"}),
            1);
  EXPECT_EQ(Find(merged, "web_sessions_closed_total")->samples.size(), 3u);
}

// A flood of every mix of 50 admitted values per label keeps each family
// within the bound (plus its folded combinations, one per site and
// channel), however many sessions, and every total exact.
TEST(KpiCountersTest, AFloodOfLabelCombinationsDoesNotGrowTheSeries) {
  KpiCounters::Options options;
  options.label_combinations_max = 100;
  KpiCounters counters(options);
  const int kValues = 50;
  int sessions = 0;
  for (int i = 0; i < 20000; ++i) {
    ClosedSession session =
        CampaignSession(absl::StrCat("C", i % kValues),
                        absl::StrCat("s", i / kValues % kValues),
                        absl::StrCat("m", i / 7 % kValues),
                        absl::StrCat("c", i / 11 % kValues));
    session.revenue = {{absl::StrCat("X", i % 13), 1000000}};
    session.orders_by_currency = {{absl::StrCat("X", i % 13), 1}};
    counters.OnSessionStarted(
        Attributes(session.site_id, session.channel, session.device_category,
                   session.country, false),
        MakeEvent(EventType::kPageView, session.site_id));
    counters.OnSessionClosed(session);
    ++sessions;
  }
  const MetricsSnapshot s = Committed(counters);
  for (const char* family :
       {"web_sessions_started_total", "web_sessions_closed_total",
        "web_campaign_sessions_total", "web_revenue_total",
        "web_orders_total"}) {
    EXPECT_LE(Find(s, family)->samples.size(), 100u + 1) << family;
  }
  // Room for 4 currencies a campaign combination; the currency is never
  // folded: a folded combination per currency.
  EXPECT_LE(Find(s, "web_campaign_revenue_total")->samples.size(),
            4 * 100u + 13);
  for (int c = 0; c < 13; ++c) {
    const std::string currency = absl::StrCat("X", c);
    const int expected = (20000 - c + 12) / 13;  // sessions i with i % 13 == c
    EXPECT_EQ(Sum(s, "web_revenue_total", {{"currency", currency}}), expected)
        << currency;
    EXPECT_EQ(Sum(s, "web_campaign_revenue_total", {{"currency", currency}}),
              expected)
        << currency;
  }
  EXPECT_GT(LabelValues(s, "web_sessions_closed_total", "country").size(), 2u);
  EXPECT_EQ(Sum(s, "web_sessions_started_total"), sessions);
  EXPECT_EQ(Sum(s, "web_sessions_closed_total"), sessions);
  EXPECT_EQ(Sum(s, "web_campaign_sessions_total"), sessions);
  EXPECT_EQ(Sum(s, "web_campaign_revenue_total"), sessions);
  EXPECT_EQ(Sum(s, "web_revenue_total"), sessions);
  EXPECT_EQ(Sum(s, "web_orders_total"), sessions);
}

// ROAS per campaign divides web_campaign_revenue_total by web_ad_cost_total:
// both name a campaign alike. A campaign an ad cost record names (the
// operator's ad platform) is admitted at once, for the sessions too; no
// overflow is reported under a label no family has.
TEST(KpiCountersTest, AdCostAndSessionsShareTheCampaignLabel) {
  KpiCounters::Options options;
  options.label_values_max = 5;
  KpiCounters counters(options);
  counters.CountAdCost("shop", "Email", "winter", "EUR", 12'500'000);
  ClosedSession session =
      Closed("shop", "Email", "desktop", "DE", absl::Seconds(30), 2);
  session.source = "newsletter";
  session.medium = "email";
  session.campaign = "winter";
  session.revenue = {{"EUR", 50'000'000}};
  counters.OnSessionClosed(session);  // the campaign's first session
  MetricsSnapshot s = Committed(counters);
  EXPECT_EQ(Value(s, "web_ad_cost_total", {"shop", "Email", "winter", "EUR"}),
            12.5);
  EXPECT_EQ(Value(s, "web_campaign_sessions_total",
                  {"shop", "(other)", "(other)", "winter"}),
            1);
  EXPECT_EQ(Value(s, "web_campaign_revenue_total",
                  {"shop", "(other)", "(other)", "winter", "EUR"}),
            50);
  for (const MetricSample& sample :
       Find(s, "kpistream_label_overflow_total")->samples) {
    EXPECT_NE(sample.label_values[0], "ad_campaign");
  }
}

// web_active_visitors of a site nobody visits any more reads 0: a series
// that vanished would read "no data" (an alert on 0 would never fire).
TEST(KpiCountersTest, ActiveVisitorsOfASiteSeenBeforeReadZero) {
  KpiCounters counters({});
  counters.CountAccepted("a", EventType::kPageView);
  counters.SetActiveVisitors({{"a", {2, 3}}});
  MetricsSnapshot s = Committed(counters);
  EXPECT_EQ(Value(s, "web_active_visitors", {"a", "5m"}), 2);
  EXPECT_EQ(Value(s, "web_active_visitors", {"a", "30m"}), 3);
  counters.SetActiveVisitors({});
  s = Committed(counters);
  EXPECT_EQ(Value(s, "web_active_visitors", {"a", "5m"}), 0);
  EXPECT_EQ(Value(s, "web_active_visitors", {"a", "30m"}), 0);
  // A site never seen has none.
  EXPECT_EQ(Value(s, "web_active_visitors", {"b", "5m"}), -1);
}

// SPEC §10: /metrics shows committed work only; work of an aborted
// transaction is forgotten, so that redoing it does not count it twice.
TEST(KpiCountersTest, OnlyCommittedWorkIsShown) {
  KpiCounters counters({});
  counters.CountConsumed("web.events", 5);
  counters.CountBot();
  EXPECT_EQ(Value(counters.Snapshot(), "kpistream_bot_events_total", {}), 0);
  counters.Commit();
  EXPECT_EQ(Value(counters.Snapshot(), "kpistream_bot_events_total", {}), 1);
  counters.CountConsumed("web.events", 3);
  counters.CountBot();
  counters.Rollback();  // aborted: redone later
  counters.CountConsumed("web.events", 3);
  counters.CountBot();
  counters.Commit();
  const MetricsSnapshot s = counters.Snapshot();
  EXPECT_EQ(Value(s, "kpistream_bot_events_total", {}), 2);
  EXPECT_EQ(Value(s, "kpistream_events_consumed_total", {"web.events"}), 8);
}

TEST(KpiCountersTest, GoalsOutsideTheAllowlistAreOther) {
  KpiCounters::Options options;
  options.goals = {"signup", "purchase"};
  KpiCounters counters(options);
  ClosedSession session =
      Closed("shop", "Email", "desktop", "DE", absl::Seconds(30), 1);
  session.engaged = true;
  session.conversions = {{"newsletter", 1}, {"purchase", 1}, {"whitepaper", 3}};
  counters.OnSessionClosed(session);
  ClosedSession other_only =
      Closed("shop", "Email", "desktop", "DE", absl::Seconds(30), 1);
  other_only.conversions = {{"newsletter", 2}};
  counters.OnSessionClosed(other_only);

  const MetricsSnapshot s = Committed(counters);
  EXPECT_EQ(Value(s, "web_conversions_total", {"shop", "(other)", "Email"}), 6);
  EXPECT_EQ(Value(s, "web_conversions_total", {"shop", "purchase", "Email"}),
            1);
  EXPECT_EQ(Sum(s, "web_conversions_total", {{"goal", "newsletter"}}), 0);
  // A session converts once for "(other)", however many such goals it hit.
  EXPECT_EQ(
      Value(s, "web_sessions_converted_total", {"shop", "(other)", "Email"}),
      2);
  EXPECT_EQ(
      Value(s, "web_sessions_converted_total", {"shop", "purchase", "Email"}),
      1);
  EXPECT_EQ(
      Value(s, "web_sessions_converted_total", {"shop", "(any)", "Email"}), 2);
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"goal"}), 3);
  std::set<std::string> goals;
  for (const MetricSample& sample : Find(s, "web_conversions_total")->samples) {
    goals.insert(sample.label_values[1]);
  }
  EXPECT_THAT(goals, ElementsAre("(other)", "purchase"));
}

// A (site, channel)'s conversion series of every configured goal and
// "(any)", and its money series of the targets' currencies, are at 0 from
// its first session's start: increase() and rate() take a series' first
// sample as their start, so a series that appeared at 1 with the first
// conversion left that conversion out of every conversion rate (review).
TEST(KpiCountersTest, ConversionSeriesAreAtZeroBeforeTheFirstConversion) {
  KpiCounters::Options options;
  options.goals = {"signup", "purchase"};
  options.reserved = {{"currency", {"EUR"}}};
  KpiCounters counters(options);
  const SessionAttributes a =
      Attributes("shop", "Email", "desktop", "DE", true);
  counters.OnSessionStarted(a, MakeEvent(EventType::kPageView, "shop"));
  MetricsSnapshot s = Committed(counters);  // open: none has closed yet
  for (const char* goal : {"signup", "purchase", "(any)"}) {
    SCOPED_TRACE(goal);
    EXPECT_EQ(Value(s, "web_sessions_converted_total", {"shop", goal, "Email"}),
              0);
  }
  EXPECT_EQ(Value(s, "web_conversions_total", {"shop", "signup", "Email"}), 0);
  // "(any)" is a per-session notion: no conversions of its own.
  EXPECT_EQ(Value(s, "web_conversions_total", {"shop", "(any)", "Email"}), -1);
  EXPECT_EQ(Value(s, "web_orders_total", {"shop", "Email", "EUR"}), 0);
  EXPECT_EQ(Value(s, "web_revenue_total", {"shop", "Email", "EUR"}), 0);
  // The first conversion then counts from 0.
  ClosedSession closed =
      Closed("shop", "Email", "desktop", "DE", absl::Seconds(3), 1);
  closed.conversions = {{"signup", 1}};
  counters.OnSessionClosed(closed);
  s = Committed(counters);
  EXPECT_EQ(
      Value(s, "web_sessions_converted_total", {"shop", "signup", "Email"}), 1);
  EXPECT_EQ(
      Value(s, "web_sessions_converted_total", {"shop", "(any)", "Email"}), 1);
  EXPECT_EQ(
      Value(s, "web_sessions_converted_total", {"shop", "purchase", "Email"}),
      0);
  // Nothing at 0 for a channel no session started in.
  EXPECT_EQ(
      Value(s, "web_sessions_converted_total", {"shop", "signup", "Direct"}),
      -1);
}

TEST(KpiCountersTest, EmptyLabelValuesAreNotSet) {
  KpiCounters counters({});
  const SessionAttributes a = Attributes("shop", "", "", "", false);
  counters.OnSessionStarted(a, MakeEvent(EventType::kPageView, "shop"));
  ClosedSession session = Closed("shop", "", "", "", absl::Seconds(1), 1);
  session.revenue = {{"", 1000000}};
  counters.OnSessionClosed(session);
  const MetricsSnapshot s = Committed(counters);
  EXPECT_EQ(Value(s, "web_sessions_started_total",
                  {"shop", "(not set)", "(not set)", "(not set)"}),
            1);
  EXPECT_EQ(Value(s, "web_revenue_total", {"shop", "(not set)", "(not set)"}),
            1);
  EXPECT_EQ(Sum(s, "kpistream_label_overflow_total"), 0);
}

TEST(KpiCountersTest, RevenueCounterNeverDecreases) {
  KpiCounters counters({});
  ClosedSession sale =
      Closed("shop", "Email", "desktop", "DE", absl::Seconds(1), 1);
  sale.revenue = {{"EUR", 5000000}};
  counters.OnSessionClosed(sale);
  ClosedSession refund = sale;
  refund.revenue = {{"EUR", -2000000}};
  counters.OnSessionClosed(refund);
  EXPECT_EQ(
      Value(Committed(counters), "web_revenue_total", {"shop", "Email", "EUR"}),
      5);
}

TEST(KpiCountersTest, SamplesAreSortedByLabelValues) {
  KpiCounters counters({});
  for (const char* site : {"zeta", "alpha", "mid"}) {
    AcceptAndApply(counters, Attributes(site, "Direct", "desktop", "DE", false),
                   MakeEvent(EventType::kPageView, site));
  }
  const MetricsSnapshot s = Committed(counters);
  std::vector<std::string> sites;
  for (const MetricSample& sample : Find(s, "web_pageviews_total")->samples) {
    sites.push_back(sample.label_values[0]);
  }
  EXPECT_THAT(sites, ElementsAreArray({"alpha", "mid", "zeta"}));
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

TEST(KpiCountersAllowlistTest, OnlyAllowlistedValuesGetTheirOwnSeries) {
  KpiCounters::Options options;
  options.allowlists["site"] = {"shop"};
  KpiCounters counters(options);
  counters.CountAccepted("shop", EventType::kPageView);
  counters.CountAccepted("evil", EventType::kPageView);
  counters.CountAccepted("blog", EventType::kPageView);
  const MetricsSnapshot s = Committed(counters);
  std::set<std::string> sites;
  for (const MetricSample& sample : Find(s, "web_events_total")->samples) {
    sites.insert(sample.label_values[0]);
  }
  EXPECT_EQ(sites, (std::set<std::string>{"shop", "(other)"}));
  EXPECT_EQ(Value(s, "web_events_total", {"(other)", "page_view"}), 2);
  EXPECT_EQ(Value(s, "kpistream_label_overflow_total", {"site"}), 2);
}

}  // namespace
}  // namespace kpistream
