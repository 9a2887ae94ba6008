// TrafficGenerator's shapes, as `kpistream loadgen --no-user-agent
// --campaign-in-url` uses them: the same seed gives the same events, only
// without user agents, and with each landing page's campaign moved from the
// event's fields into its page URL, from where the engine reads it back
// (SPEC §2) to the same channel.
#include "cmd/traffic_generator.h"

#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/event.h"
#include "aggregate/sessionizer.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "ingest/event_decoder.h"
#include "ingest/page_url.h"

namespace kpistream {
namespace {

// The campaign-related fields of a WebEvent as the engine's Event.
Event CampaignOf(const v1::WebEvent& e) {
  Event out;
  out.page_url = e.page_url();
  out.referrer = e.referrer();
  out.utm_source = e.utm_source();
  out.utm_medium = e.utm_medium();
  out.utm_campaign = e.utm_campaign();
  out.click_id = e.click_id();
  FillCampaignFromPageUrl(&out);
  return out;
}

TEST(TrafficGeneratorTest, CampaignInUrlCarriesTheSameCampaignAsTheFields) {
  TrafficOptions in_fields;
  in_fields.seed = 7;
  in_fields.user_agent = false;
  TrafficOptions in_url = in_fields;
  in_url.campaign_in_url = true;
  TrafficGenerator a(in_fields), b(in_url);
  const ChannelClassifier classifier;
  std::map<std::string, int> landings;  // by what the landing URL carries
  std::map<std::string, int> channels;
  v1::WebEvent fields, url;
  for (int i = 0; i < 20000; ++i) {
    a.Next(&fields);
    b.Next(&url);
    ASSERT_TRUE(fields.user_agent().empty()) << fields.DebugString();
    ASSERT_TRUE(url.user_agent().empty());
    // Nothing in the URL mode's fields, nothing in the field mode's URLs.
    ASSERT_EQ(fields.page_url().find('?'), std::string::npos);
    ASSERT_TRUE(url.utm_source().empty() && url.utm_medium().empty() &&
                url.utm_campaign().empty() && url.click_id().empty())
        << url.DebugString();
    // Otherwise the same event.
    v1::WebEvent stripped = fields;
    stripped.clear_utm_source();
    stripped.clear_utm_medium();
    stripped.clear_utm_campaign();
    stripped.clear_click_id();
    v1::WebEvent without_query = url;
    without_query.set_page_url(
        url.page_url().substr(0, url.page_url().find('?')));
    ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        stripped, without_query))
        << fields.DebugString() << "\n"
        << url.DebugString();
    // Read back from the URL: the same campaign, hence the same channel.
    const Event from_fields = CampaignOf(fields);
    const Event from_url = CampaignOf(url);
    ASSERT_EQ(from_url.utm_source, from_fields.utm_source) << url.page_url();
    ASSERT_EQ(from_url.utm_medium, from_fields.utm_medium) << url.page_url();
    ASSERT_EQ(from_url.utm_campaign, from_fields.utm_campaign);
    ASSERT_EQ(from_url.click_id, from_fields.click_id) << url.page_url();
    const size_t query = url.page_url().find('?');
    if (query == std::string::npos) continue;
    const std::string params = url.page_url().substr(query + 1);
    const bool utm = params.find("utm_") != std::string::npos;
    const std::string channel(classifier.Attribute(from_url).channel);
    if (params.find("gclid=") != std::string::npos) {
      ++landings[utm ? "gclid+utm" : "gclid only"];
      EXPECT_EQ(channel, "Paid Search") << url.DebugString();
    } else if (params.find("fbclid=") != std::string::npos) {
      ++landings["fbclid"];
      EXPECT_EQ(channel, "Organic Social") << url.DebugString();
    } else if (params.find("utm_medium=email") != std::string::npos) {
      ++landings["newsletter"];
      EXPECT_EQ(channel, "Email") << url.DebugString();
    }
    ++channels[channel];
  }
  // Every kind of landing the e-commerce log test relies on is there.
  EXPECT_GT(landings["gclid only"], 200);
  EXPECT_GT(landings["gclid+utm"], 100);
  EXPECT_GT(landings["fbclid"], 200);
  EXPECT_GT(landings["newsletter"], 200);
  EXPECT_GT(channels["Paid Social"], 50);
  EXPECT_GT(channels["Display"], 50);
}

// loadgen --event-rate: events per second of event time, on average.
TEST(TrafficGeneratorTest, EventTimeAdvancesAtTheConfiguredRate) {
  for (double rate : {0.1, 20.0}) {
    TrafficOptions options;
    options.events_per_second = rate;
    TrafficGenerator generator(options);
    v1::WebEvent event;
    constexpr int kEvents = 200000;
    for (int i = 0; i < kEvents; ++i) generator.Next(&event);
    const double seconds = static_cast<double>(
        event.event_time().seconds() - absl::ToUnixSeconds(options.start));
    EXPECT_NEAR(kEvents / seconds, rate, rate * 0.03) << seconds << " s";
  }
}

// loadgen in real time (no --start-time): the generator starts SteadyLead
// before now, so that once its sessions are under way the n-th event is dated
// about when loadgen sends it (n / rate after its start). Without that, every
// event was dated ~2 minutes ahead of the wall clock.
TEST(TrafficGeneratorTest, StartedSteadyLeadEarlyEventTimeFollowsTheClock) {
  for (double rate : {50.0, 2000.0}) {
    TrafficOptions options;
    options.events_per_second = rate;
    const absl::Duration lead = TrafficGenerator::SteadyLead(options);
    EXPECT_GT(lead, absl::Seconds(60)) << rate;  // what it makes up for
    EXPECT_LT(lead, absl::Minutes(4)) << rate;
    const absl::Time now = options.start;
    options.start = now - lead;
    TrafficGenerator generator(options);
    v1::WebEvent event;
    // Each minute from the 6th to the 20th: the mean of (event time - when
    // the event is due).
    std::map<int, std::pair<double, int64_t>> by_minute;
    const int64_t events = static_cast<int64_t>(rate * 1200);
    for (int64_t n = 1; n <= events; ++n) {
      generator.Next(&event);
      const double due = static_cast<double>(n) / rate;
      const double at = absl::ToDoubleSeconds(
          absl::FromUnixSeconds(event.event_time().seconds()) +
          absl::Nanoseconds(event.event_time().nanos()) - now);
      auto& [sum, count] = by_minute[static_cast<int>(due / 60)];
      sum += at - due;
      ++count;
    }
    for (int minute = 5; minute < 20; ++minute) {
      const auto& [sum, count] = by_minute[minute];
      EXPECT_NEAR(sum / static_cast<double>(count), 0, 15)
          << "rate " << rate << ", minute " << minute + 1 << ", lead " << lead;
    }
  }
}

// The share of a generator's sessions (events with a session_number not
// seen before for their visitor) that an engine would see start: more than
// 30 min after the visitor's previous event. The rest run into the
// visitor's previous session.
double SessionsThatStartAfterAGap(const TrafficOptions& options,
                                  int64_t events) {
  TrafficGenerator generator(options);
  std::map<std::string, std::pair<int64_t, uint32_t>> last;  // time, number
  int64_t sessions = 0, started = 0;
  v1::WebEvent event;
  for (int64_t i = 0; i < events; ++i) {
    generator.Next(&event);
    auto [it, first] = last.try_emplace(event.visitor_id(), 0, 0);
    const bool new_session =
        first || event.session_number() != it->second.second;
    if (new_session) {
      ++sessions;
      started +=
          first || event.event_time().seconds() - it->second.first > 30 * 60;
    }
    it->second = {event.event_time().seconds(), event.session_number()};
  }
  return static_cast<double>(started) / static_cast<double>(sessions);
}

// loadgen's default population: a visitor returns about every 4 h, so most
// sessions close in an engine (before, 10,000 visitors at loadgen's usual
// rates came back every few minutes: no session ever closed).
TEST(TrafficGeneratorTest, TheDefaultPopulationLetsSessionsClose) {
  TrafficOptions options;
  options.events_per_second = 40;
  options.visitors = TrafficGenerator::DefaultVisitors(options);
  const int64_t events = 40 * 12 * 3600;  // 12 h of event time
  EXPECT_GT(SessionsThatStartAfterAGap(options, events), 0.8);
  options.visitors = 5000;  // what deploy/compose.yaml gave at 200/s
  options.events_per_second = 200;
  EXPECT_LT(SessionsThatStartAfterAGap(options, events), 0.05);
  options.events_per_second = 0.01;
  EXPECT_EQ(TrafficGenerator::DefaultVisitors(options), 10000);
  options.events_per_second = 1e6;
  EXPECT_EQ(TrafficGenerator::DefaultVisitors(options), 1000000);
}

// `loadgen --session-ids`: every event carries its generator session's id,
// so an engine with sessions.session_source: client makes exactly the
// generator's sessions (without the ids, sessions of a visitor that follow
// each other within the inactivity timeout merge into one).
TEST(TrafficGeneratorTest, SessionIdsGiveTheGeneratorsSessionsToClientMode) {
  class Counter : public SessionObserver {
   public:
    void OnSessionStarted(const SessionAttributes&, const EventView&) override {
    }
    void OnEvent(const SessionAttributes&, const EventView&) override {}
    void OnSessionClosed(const ClosedSession& s) override {
      ++closed;
      // In client mode: the visitor's own id.
      if (!absl::StartsWith(s.client_session_id, s.visitor_id + "-")) ++other;
    }
    int closed = 0;
    int other = 0;
  };
  // The engine's sessions and the client's of `visitors` visitors.
  auto sessions = [](int64_t visitors, int* engine, int* client) {
    TrafficOptions options;
    options.seed = 3;
    options.events_per_second = 200;
    options.visitors = visitors;
    TrafficOptions with_ids = options;
    with_ids.session_ids = true;
    TrafficGenerator plain(options), tagged(with_ids);
    SessionRules rules;
    rules.split_on_session_id = true;
    Counter engine_count, client_count;
    Sessionizer engine_mode(SessionRules{}, &engine_count);
    Sessionizer client_mode(rules, &client_count);
    EventDecoder decoder(InputFormat::kProtobuf, absl::Hours(24 * 365 * 100));
    std::set<std::string> ids;
    v1::WebEvent a, b;
    Event event;
    for (int i = 0; i < 200000; ++i) {
      plain.Next(&a);
      tagged.Next(&b);
      ASSERT_TRUE(a.session_id().empty());
      ASSERT_TRUE(absl::StartsWith(b.session_id(), b.visitor_id() + "-"))
          << b.DebugString();
      ids.insert(b.session_id());
      ASSERT_TRUE(decoder.DecodeMessage(&b, absl::Now(), &event).ok);
      engine_mode.Add(event);
      client_mode.Add(event);
      b.clear_session_id();  // otherwise the same events
      ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a, b));
    }
    engine_mode.CloseAll();
    client_mode.CloseAll();
    EXPECT_EQ(client_count.closed, static_cast<int>(ids.size()));
    EXPECT_EQ(client_count.other, 0);
    *engine = engine_count.closed;
    *client = client_count.closed;
  };
  TrafficOptions defaults;
  defaults.events_per_second = 200;
  int engine = 0, client = 0;
  ASSERT_NO_FATAL_FAILURE(
      sessions(TrafficGenerator::DefaultVisitors(defaults), &engine, &client));
  // Not vacuous: without the ids, sessions of a visitor back within the
  // timeout merge (1,361 of 45,748 here).
  EXPECT_LT(engine, client - 1000);
  // A population too small for the rate, whose visitors often start a
  // session while another is under way (a second tab): it joins that one's
  // client session (14,051 here; the engine's rules alone make 3,000: each
  // visitor's activity never pauses for the timeout). Each with its own id,
  // client mode split the visitor's interleaved events at every alternation
  // (130,723 sessions for 45,973 ids).
  ASSERT_NO_FATAL_FAILURE(sessions(3000, &engine, &client));
  EXPECT_GT(client, 10000);
}

TEST(TrafficGeneratorTest, BrowsersSendUserAgentsByDefault) {
  TrafficGenerator generator(TrafficOptions{});
  v1::WebEvent event;
  for (int i = 0; i < 1000; ++i) {
    generator.Next(&event);
    ASSERT_FALSE(event.user_agent().empty()) << event.DebugString();
    ASSERT_EQ(event.page_url().find("utm_"), std::string::npos);
  }
}

}  // namespace
}  // namespace kpistream
