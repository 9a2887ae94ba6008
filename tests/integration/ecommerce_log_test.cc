// Issue 10, "what it must show": a real e-commerce event log without user
// agents, and the same log with its campaigns only in the page URLs, give
// the sessions and channels a batch computation gives.
//
// The log is what a server-side collector sends for an online shop:
// `kpistream loadgen --no-user-agent`, 40,000 JSON events over 4.6 days of
// event time (page views, engagement events, signups, leads and purchases
// with order ids in USD and EUR) from 8,000 visitors, some returning; landings
// from Google Ads (auto-tagged: a gclid and no utm parameters, referred by
// nothing, by Google or by a search partner; or tagged by hand), a newsletter
// (utm email), organic search, Facebook (with an fbclid), referrals, display
// and direct. Once with the campaign in the events' fields, once
// (`--campaign-in-url`) only in the landing page's URL.
//
// Each log runs through `kpistream broker` and `kpistream run` (JSON input,
// 4 partitions, its own consumer group) and is read back with kcat; a batch
// computation over what was read, written to be obviously right, is the
// reference: each visitor's events sorted by time and split on gaps over
// 30 min and at 24 h (SPEC §3), the channel from the first event by the
// ChannelClassifier after FillCampaignFromPageUrl (SPEC §2). The closed
// sessions on the sessions topic and the per-channel session counters on
// /metrics must equal it exactly, no event of the log may be a bot, and the
// two logs give the same sessions.
#include <signal.h>

#include <algorithm>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/event.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "ingest/page_url.h"
#include "kpistream/v1/session_record.pb.h"
#include "kpistream/v1/web_event.pb.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

constexpr int kPartitions = 4;
constexpr int kEvents = 40000;
constexpr char kStart[] = "2026-03-02T00:00:00Z";

// One session, as the batch computes it and as a SessionRecord states it.
struct SessionRow {
  std::string visitor;
  int64_t start_us = 0;
  int64_t end_us = 0;
  uint32_t events = 0;
  uint32_t pageviews = 0;
  std::string channel, source, medium, campaign;
  uint32_t orders = 0;

  auto Tie() const {
    return std::tie(visitor, start_us, end_us, events, pageviews, channel,
                    source, medium, campaign, orders);
  }
  bool operator<(const SessionRow& o) const { return Tie() < o.Tie(); }
  bool operator==(const SessionRow& o) const { return Tie() == o.Tie(); }
};

std::ostream& operator<<(std::ostream& out, const SessionRow& s) {
  return out << s.visitor << " "
             << absl::FormatTime(absl::FromUnixMicros(s.start_us)) << " .. "
             << absl::FormatTime(absl::FromUnixMicros(s.end_us)) << " "
             << s.events << " events " << s.pageviews << " pv " << s.channel
             << " " << s.source << "/" << s.medium << " " << s.campaign << " "
             << s.orders << " orders";
}

int64_t Micros(const google::protobuf::Timestamp& t) {
  return google::protobuf::util::TimeUtil::TimestampToMicroseconds(t);
}

std::string OrNotSet(const std::string& value) {
  return value.empty() ? "(not set)" : value;
}

// The campaign-related part of a WebEvent as the engine's Event.
Event AttributionInputs(const v1::WebEvent& w) {
  Event e;
  e.page_url = w.page_url();
  e.referrer = w.referrer();
  e.utm_source = w.utm_source();
  e.utm_medium = w.utm_medium();
  e.utm_campaign = w.utm_campaign();
  e.click_id = w.click_id();
  return e;
}

// The reference (SPEC §3 with the default rules): sessions of the whole log
// at once, by (site, visitor).
std::set<SessionRow> BatchSessions(const std::vector<v1::WebEvent>& log) {
  std::map<std::pair<std::string, std::string>,
           std::vector<const v1::WebEvent*>>
      by_visitor;
  for (const v1::WebEvent& e : log) {
    by_visitor[{e.site_id(), e.visitor_id()}].push_back(&e);
  }
  const ChannelClassifier classifier;
  const int64_t timeout = absl::ToInt64Microseconds(absl::Minutes(30));
  const int64_t max_length = absl::ToInt64Microseconds(absl::Hours(24));
  std::set<SessionRow> sessions;
  for (auto& [key, events] : by_visitor) {
    std::stable_sort(events.begin(), events.end(),
                     [](const v1::WebEvent* a, const v1::WebEvent* b) {
                       return Micros(a->event_time()) < Micros(b->event_time());
                     });
    size_t first = 0;
    while (first < events.size()) {
      const int64_t start = Micros(events[first]->event_time());
      size_t last = first;
      while (last + 1 < events.size()) {
        const int64_t t = Micros(events[last + 1]->event_time());
        if (t - Micros(events[last]->event_time()) > timeout ||
            t - start > max_length) {
          break;
        }
        ++last;
      }
      SessionRow row;
      row.visitor = key.second;
      row.start_us = start;
      row.end_us = Micros(events[last]->event_time());
      Event landing = AttributionInputs(*events[first]);
      FillCampaignFromPageUrl(&landing);
      const Acquisition acquisition = classifier.Attribute(landing);
      row.channel = acquisition.channel;
      row.source = acquisition.source;
      row.medium = acquisition.medium;
      row.campaign = OrNotSet(landing.utm_campaign);
      std::set<std::string> orders;
      for (size_t i = first; i <= last; ++i) {
        ++row.events;
        if (events[i]->type() == v1::PAGE_VIEW) ++row.pageviews;
        if (!events[i]->conversion().order_id().empty()) {
          orders.insert(events[i]->conversion().order_id());
        }
      }
      row.orders = static_cast<uint32_t>(orders.size());
      sessions.insert(row);
      first = last + 1;
    }
  }
  return sessions;
}

std::map<std::string, int> SessionsByChannel(
    const std::set<SessionRow>& sessions) {
  std::map<std::string, int> out;
  for (const SessionRow& s : sessions) ++out[s.channel];
  return out;
}

// Every record of `topic` (one JSON message per line), read with kcat.
std::vector<std::string> ReadTopic(const std::string& brokers,
                                   const std::string& topic) {
  CommandResult r = RunCommand(
      {"kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
       "-X", "isolation.level=read_committed", "-f", "%s\n"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  for (absl::string_view line :
       absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    lines.emplace_back(line);
  }
  return lines;
}

template <typename Message>
std::vector<Message> Parse(const std::vector<std::string>& lines) {
  std::vector<Message> out(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    auto status =
        google::protobuf::util::JsonStringToMessage(lines[i], &out[i]);
    EXPECT_TRUE(status.ok()) << status.ToString() << " in " << lines[i];
  }
  return out;
}

// Reports the rows only one side has (at most 10 of each).
std::string Difference(const std::set<SessionRow>& engine,
                       const std::set<SessionRow>& batch) {
  std::string out;
  int shown = 0;
  for (const SessionRow& s : engine) {
    if (!batch.count(s) && shown++ < 10) {
      absl::StrAppendFormat(&out, "  engine only: %s\n",
                            absl::FormatStreamed(s));
    }
  }
  shown = 0;
  for (const SessionRow& s : batch) {
    if (!engine.count(s) && shown++ < 10) {
      absl::StrAppendFormat(&out, "  batch only:  %s\n",
                            absl::FormatStreamed(s));
    }
  }
  return out;
}

// One run: a log on its own topic, an engine in its own group.
struct LogRun {
  std::string name;  // "fields" or "url"
  bool campaign_in_url = false;
  std::string topic;
  std::string sessions_topic;
  int port = 0;
  std::unique_ptr<Subprocess> engine;
  std::vector<v1::WebEvent> log;
  std::set<SessionRow> batch;
};

TEST(EcommerceLogTest, SessionsAndChannelsEqualABatchComputation) {
  BrokerProcess broker({absl::StrCat("shop.fields:", kPartitions),
                        absl::StrCat("shop.url:", kPartitions),
                        "sessions.fields:1", "sessions.url:1", "web.kpi:1",
                        "web.deadletter:1"});
  ASSERT_FALSE(broker.bootstrap().empty()) << broker.process().Stderr();
  TempDir dir;
  std::vector<LogRun> runs(2);
  runs[0].name = "fields";
  runs[1].name = "url";
  runs[1].campaign_in_url = true;
  for (LogRun& run : runs) {
    run.topic = "shop." + run.name;
    run.sessions_topic = "sessions." + run.name;
    run.port = FreePort();
    const std::string config = dir.Write(
        run.name + ".yaml",
        absl::StrCat("kafka: {brokers: '", broker.bootstrap(),
                     "', group_id: ecommerce-", run.name, "}\n",
                     "inputs: [{topic: ", run.topic, ", format: json}]\n",
                     "outputs:\n  sessions: {topic: ", run.sessions_topic,
                     ", format: json}\n",
                     // Event times are in March 2026, whenever this runs.
                     "processing: {max_future_skew: 3650d}\n",
                     "metrics: {listen: '127.0.0.1:", run.port, "'}\n"));
    run.engine = std::make_unique<Subprocess>(
        std::vector<std::string>{KpistreamBinary(), "run", "--config", config});
  }
  for (LogRun& run : runs) {
    ASSERT_TRUE(WaitFor([&] { return HttpGet(run.port, "/readyz").ok(); },
                        absl::Seconds(30)))
        << run.name << ": " << run.engine->Stderr();
  }

  for (LogRun& run : runs) {
    // The log, as a user would make it (see loadgen --help).
    std::vector<std::string> argv = {KpistreamBinary(),  "loadgen", "--brokers",
                                     broker.bootstrap(), "--topic", run.topic};
    for (absl::string_view flag : absl::StrSplit(
             absl::StrCat("--format json --no-user-agent --rate 0 --events ",
                          kEvents,
                          " --event-rate 0.1 --visitors 8000 --seed 2026 "
                          "--start-time ",
                          kStart),
             ' ')) {
      argv.emplace_back(flag);
    }
    if (run.campaign_in_url) argv.push_back("--campaign-in-url");
    CommandResult loadgen = RunCommand(argv);
    ASSERT_EQ(loadgen.exit_code, 0) << loadgen.err;
    ASSERT_TRUE(absl::StrContains(
        loadgen.out, absl::StrCat("produced ", kEvents, " events")))
        << loadgen.out;
    // The log is bounded: move event time past it (one bot event per
    // partition, 30 days later) so that every session closes.
    absl::Time start;
    std::string error;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, kStart, &start, &error));
    auto advanced = AdvanceEventTime(broker.bootstrap(), run.topic, kPartitions,
                                     start + absl::Hours(24 * 30), true);
    ASSERT_TRUE(advanced.ok()) << advanced.status();
  }

  // What the engines read, read back independently, and its batch result.
  for (LogRun& run : runs) {
    for (v1::WebEvent& e :
         Parse<v1::WebEvent>(ReadTopic(broker.bootstrap(), run.topic))) {
      if (absl::StartsWith(e.visitor_id(), "crawler-")) continue;  // advance
      run.log.push_back(std::move(e));
    }
    ASSERT_EQ(run.log.size(), static_cast<size_t>(kEvents)) << run.name;
    // The shape claimed above.
    int64_t first = INT64_MAX, last = INT64_MIN;
    int purchases = 0, gclid_only = 0;
    std::set<std::string> visitors, currencies;
    for (const v1::WebEvent& e : run.log) {
      ASSERT_TRUE(e.user_agent().empty()) << e.DebugString();
      const bool fields = !e.utm_source().empty() || !e.utm_medium().empty() ||
                          !e.utm_campaign().empty() || !e.click_id().empty();
      const bool query = absl::StrContains(e.page_url(), "?");
      if (run.campaign_in_url) {
        ASSERT_FALSE(fields) << e.DebugString();
      } else {
        ASSERT_FALSE(query) << e.DebugString();
      }
      first = std::min(first, Micros(e.event_time()));
      last = std::max(last, Micros(e.event_time()));
      visitors.insert(e.visitor_id());
      if (e.conversion().goal() == "purchase") {
        ++purchases;
        EXPECT_FALSE(e.conversion().order_id().empty());
        currencies.insert(e.conversion().currency());
      }
      const std::string& url = e.page_url();
      if ((absl::StrContains(url, "?gclid=") ||
           absl::StartsWith(e.click_id(), "gclid-")) &&
          e.utm_source().empty() && !absl::StrContains(url, "utm_")) {
        ++gclid_only;
      }
    }
    EXPECT_GT(last - first, absl::ToInt64Microseconds(absl::Hours(24 * 4)));
    EXPECT_GT(visitors.size(), 5000u);
    EXPECT_GT(purchases, 200);
    EXPECT_EQ(currencies, (std::set<std::string>{"EUR", "USD"}));
    EXPECT_GT(gclid_only, 500) << run.name;
    run.batch = BatchSessions(run.log);
  }
  // Where the campaign is written changes nothing.
  ASSERT_EQ(runs[0].batch.size(), runs[1].batch.size());
  EXPECT_TRUE(runs[0].batch == runs[1].batch)
      << Difference(runs[0].batch, runs[1].batch);
  const std::map<std::string, int> channels = SessionsByChannel(runs[0].batch);
  for (const char* channel :
       {"Direct", "Organic Search", "Paid Search", "Email", "Organic Social",
        "Paid Social", "Referral", "Display"}) {
    EXPECT_GT(channels.count(channel) ? channels.at(channel) : 0, 100)
        << channel;
  }

  for (LogRun& run : runs) {
    SCOPED_TRACE(run.name);
    const double records = kEvents + kPartitions;
    const double sessions = static_cast<double>(run.batch.size());
    std::string m;
    ASSERT_TRUE(WaitFor(
        [&] {
          auto page = HttpGet(run.port, "/metrics");
          m = page.ok() ? *page : "";
          return MetricValue(m, "kpistream_events_consumed_total") == records &&
                 MetricValue(m, "web_sessions_closed_total") >= sessions;
        },
        absl::Seconds(60)))
        << "consumed " << MetricValue(m, "kpistream_events_consumed_total")
        << " of " << records << ", sessions closed "
        << MetricValue(m, "web_sessions_closed_total") << " of " << sessions
        << "\n"
        << run.engine->Stderr();
    // Every event of the log is a visitor's; the only bots are the records
    // that moved event time.
    EXPECT_EQ(MetricValue(m, "web_events_total"), kEvents);
    EXPECT_EQ(MetricValue(m, "kpistream_bot_events_total"), kPartitions);
    EXPECT_EQ(MetricValue(m, "kpistream_events_invalid_total"), 0);
    EXPECT_EQ(MetricValue(m, "kpistream_events_late_total"), 0);
    EXPECT_EQ(MetricValue(m, "kpistream_events_duplicate_total"), 0);
    EXPECT_EQ(MetricValue(m, "web_open_sessions"), 0);
    EXPECT_EQ(MetricValue(m, "web_sessions_started_total"), sessions);
    EXPECT_EQ(MetricValue(m, "web_sessions_closed_total"), sessions);
    for (const auto& [channel, n] : channels) {
      EXPECT_EQ(
          MetricValue(m, "web_sessions_closed_total", {{"channel", channel}}),
          n)
          << channel;
    }

    std::set<SessionRow> engine;
    for (const v1::SessionRecord& r : Parse<v1::SessionRecord>(
             ReadTopic(broker.bootstrap(), run.sessions_topic))) {
      SessionRow row;
      row.visitor = r.visitor_id();
      row.start_us = Micros(r.start());
      row.end_us = Micros(r.end());
      row.events = r.events();
      row.pageviews = r.pageviews();
      row.channel = r.channel();
      row.source = r.source();
      row.medium = r.medium();
      row.campaign = r.campaign();
      row.orders = r.orders();
      EXPECT_TRUE(engine.insert(row).second) << "written twice: " << row;
    }
    EXPECT_EQ(engine.size(), run.batch.size());
    EXPECT_TRUE(engine == run.batch) << Difference(engine, run.batch);
    EXPECT_EQ(run.engine->Stop(SIGTERM, absl::Seconds(15)), 0)
        << run.engine->Stderr();
  }
  // For the record (ctest -V): the log's numbers.
  std::string summary;
  for (const auto& [channel, n] : channels) {
    absl::StrAppend(&summary, " ", channel, " ", n, ";");
  }
  std::printf("%d events, %zu sessions:%s\n", kEvents, runs[0].batch.size(),
              summary.c_str());
}

}  // namespace
}  // namespace kpistream::testing
