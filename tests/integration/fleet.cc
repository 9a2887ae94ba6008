#include "tests/integration/fleet.h"

#include <signal.h>

#include <algorithm>
#include <iostream>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "aggregate/bot_filter.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/sessionizer.h"
#include "export/session_record_codec.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "ingest/event_decoder.h"

namespace kpistream::testing {
namespace {

class Collect : public SessionObserver {
 public:
  void OnSessionStarted(const SessionAttributes&, const EventView&) override {}
  void OnEvent(const SessionAttributes&, const EventView&) override {}
  void OnSessionClosed(const ClosedSession& s) override {
    v1::SessionRecord r;
    ToSessionRecord(s, &r);
    sessions[r.session_id()] = r;
  }
  std::map<std::string, v1::SessionRecord> sessions;
};

}  // namespace

Batch ComputeBatch(const std::vector<KafkaRecord>& input,
                   bool client_sessions) {
  Batch b;
  EventDecoder decoder(InputFormat::kJson, absl::Hours(24 * 3650));
  BotFilter bots;
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  std::vector<Event> events;
  const absl::Time now = absl::Now() + absl::Hours(24 * 3650);
  for (const KafkaRecord& r : input) {
    ++b.records;
    Event e;
    if (!decoder.Decode(r.value, now, &e).ok) {
      ++b.invalid;
      continue;
    }
    if (bots.IsBot(e.user_agent)) {
      ++b.bots;
      continue;
    }
    if (!seen.insert({e.site_id, e.visitor_id, e.event_id}).second) {
      ++b.duplicates;
      continue;
    }
    ++b.accepted;
    b.pageviews += e.type == EventType::kPageView;
    events.push_back(std::move(e));
  }
  std::sort(events.begin(), events.end(), [](const Event& x, const Event& y) {
    return std::tie(x.time, x.event_id) < std::tie(y.time, y.event_id);
  });
  Collect collect;
  ChannelClassifier channels;
  SessionRules rules;
  rules.split_on_session_id = client_sessions;
  Sessionizer sessionizer(rules, &collect, &channels);
  for (const Event& e : events) sessionizer.Add(e);
  sessionizer.CloseAll();
  b.sessions = std::move(collect.sessions);
  for (const auto& [id, s] : b.sessions) b.orders += s.orders();
  return b;
}

Fleet::Fleet(FleetOptions options) : options_(std::move(options)) {
  options_.kafka_properties.emplace("session.timeout.ms", "6000");
  options_.kafka_properties.emplace("heartbeat.interval.ms", "500");
  scraper_ = std::thread([this] { ScrapeLoop(); });
}

Fleet::~Fleet() {
  stop_ = true;
  scraper_.join();
}

void Fleet::ScrapeLoop() {
  while (!stop_) {
    std::vector<std::pair<Lifetime*, int>> ports;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Not a stopped one's: a later instance may get its port.
      for (auto& l : lifetimes_) {
        if (!l->gone) ports.push_back({l.get(), l->port});
      }
    }
    for (auto [life, port] : ports) {
      auto page = HttpGet(port, "/metrics");
      if (page.ok()) Keep(life, *page);
      if (!options_.watch_readiness) continue;
      auto ready = HttpGetResponse(port, "/readyz");
      Lifetime::Readiness now;
      now.at = absl::Now();
      if (ready.ok()) {
        now.code = ready->code;
        now.reason = std::string(absl::StripAsciiWhitespace(ready->body));
      }
      std::lock_guard<std::mutex> lock(keep_mu_);
      if (life->readiness.empty() || life->readiness.back().code != now.code) {
        life->readiness.push_back(std::move(now));
      }
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

void Fleet::Keep(Lifetime* life, const std::string& page) {
  std::lock_guard<std::mutex> lock(keep_mu_);
  const double c = MetricValue(page, "kpistream_commits_total");
  if (c >= life->best_commits) {
    life->best_commits = c;
    life->best_page = page;
  }
}

std::string Fleet::Config(const std::string& instance, int port,
                          int threads) const {
  std::string properties;
  for (const auto& [k, v] : options_.kafka_properties) {
    absl::StrAppend(&properties, properties.empty() ? "" : ", ", k, ": \"", v,
                    "\"");
  }
  return absl::StrCat(R"(
kafka:
  brokers: )",
                      options_.bootstrap, R"(
  group_id: )",
                      options_.group, R"(
  properties: {)",
                      properties, R"(}
inputs: [{topic: )",
                      options_.input, R"(, format: json, key: )",
                      options_.input_key, R"(}]
outputs:
  sessions: {topic: )",
                      options_.sessions, R"(, format: json}
  kpi: {enabled: false}
  deadletter: {topic: )",
                      options_.input, R"(-dead}
  changelog: {topic: )",
                      options_.group, R"(-changelog}
processing:
  guarantee: )",
                      options_.guarantee, R"(
  instance_id: )",
                      instance, R"(
  threads: )",
                      threads, R"(
  max_out_of_orderness: 30s
  idle_partition_timeout: 2s
sessions:
  session_source: )",
                      options_.client_sessions ? "client" : "engine", R"(
metrics:
  listen: 127.0.0.1:)",
                      port, R"(
  final_scrape_wait: 10s
)");
}

Lifetime* Fleet::Start(const std::string& name, int threads) {
  auto life = std::make_unique<Lifetime>();
  life->instance = name;
  life->port = FreePort();
  size_t n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = lifetimes_.size();
  }
  const std::string path = dir_.Write(absl::StrCat(name, "-", n, ".yaml"),
                                      Config(name, life->port, threads));
  life->process = std::make_unique<Subprocess>(std::vector<std::string>{
      KpistreamBinary(), "run", "--config", path, "--log-level", "debug"});
  Lifetime* raw = life.get();
  EXPECT_TRUE(WaitFor([&] { return HttpGet(raw->port, "/metrics").ok(); },
                      absl::Seconds(60)))
      << raw->process->Stderr();
  std::lock_guard<std::mutex> lock(mu_);
  lifetimes_.push_back(std::move(life));
  return raw;
}

namespace {

// The commits a process logged (--log-level debug): begun ("committing N
// record(s)"), ended (with any outcome) and gone through.
struct CommitLog {
  int begun = 0;
  int ended = 0;
  int ok = 0;
};

CommitLog CountCommits(const std::string& log) {
  CommitLog c;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    // (Not "stopping: committing the state", the SIGTERM's.)
    if (absl::StrContains(line, ": committing ") &&
        absl::StrContains(line, " record(s) processed since the last")) {
      ++c.begun;
    } else if (absl::StrContains(line, " processed since the last: ")) {
      ++c.ended;
      if (absl::StrContains(line, " processed since the last: OK;")) ++c.ok;
    }
  }
  return c;
}

}  // namespace

void Fleet::Kill(Lifetime* life) {
  // Right after a commit, and one after which the instance holds open
  // sessions (then checkpointed, for a successor to restore): a holder
  // whose commit was aborted in a rebalance restores and re-reads, and
  // killed right after its next commit it had checkpointed none (CI: no
  // restore of the test held a session). Any commit after 30 s.
  //
  // And only while none of its threads is committing, every commit it
  // logged on the page kept: the kept page is its last scrape (Total), and
  // a commit ending after the page (another thread's; two threads often
  // commit within 40 ms) or under way at the kill (the brokers may complete
  // it) was made durable with its counts on no page. The fleet's totals
  // then came out short: 15 consumed, 481 sessions started.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  double commits = -1;
  double kept = -1;
  for (int i = 0; i < 5000; ++i) {
    auto page = HttpGet(life->port, "/metrics");
    if (!page.ok()) continue;
    const double c = MetricValue(*page, "kpistream_commits_total");
    if (commits >= 0 && c > commits &&
        (MetricValue(*page, "kpistream_state_sessions") > 0 ||
         absl::Now() > give_up)) {
      const CommitLog log = CountCommits(life->process->Stderr());
      if (log.begun == log.ended && log.ok == c) {
        kill(life->process->pid(), SIGKILL);
        Keep(life, *page);
        kept = c;
        break;
      }
      std::cerr << "kill of " << life->instance << " put off: " << log.ok
                << " commit(s) logged, " << c << " on the page, "
                << log.begun - log.ended << " under way\n";
    }
    commits = c;
    absl::SleepFor(absl::Milliseconds(10));
  }
  life->process->Stop(SIGKILL, absl::Seconds(10));
  life->gone = true;
  // What the process logged up to its end: a commit that ended between the
  // look at its log and the kill would be missing from the page kept.
  EXPECT_GE(kept, 0) << "no moment between two commits to kill at\n"
                     << life->process->Stderr();
  if (kept >= 0) {
    EXPECT_EQ(CountCommits(life->process->Stderr()).ok, kept)
        << "a commit ended after the page kept: its counts are on no page\n"
        << life->process->Stderr();
  }
}

int Fleet::Stop(Lifetime* life) {
  const int code = life->process->Stop(SIGTERM, absl::Seconds(60));
  life->gone = true;
  return code;
}

namespace {

double MetricOf(const Lifetime* life, const char* name) {
  auto page = HttpGet(life->port, "/metrics");
  return page.ok() ? MetricValue(*page, name) : -1;
}

}  // namespace

Lifetime* Fleet::WaitForSessions(const std::vector<Lifetime*>& lives) {
  Lifetime* holder = nullptr;
  EXPECT_TRUE(WaitFor(
      [&] {
        for (Lifetime* life : lives) {
          if (MetricOf(life, "kpistream_state_sessions") > 0) holder = life;
        }
        return holder != nullptr;
      },
      absl::Seconds(60)))
      << "no instance holds an open session\n"
      << Logs();
  return holder;
}

bool Fleet::WaitForRecords(const Lifetime* life) {
  return WaitFor(
      [&] { return MetricOf(life, "kpistream_events_consumed_total") > 0; },
      absl::Seconds(60));
}

int Fleet::RestoredState() {
  int restored = 0;
  for (absl::string_view line : absl::StrSplit(Logs(), '\n')) {
    if (!absl::StrContains(line, "restored")) continue;
    // "...; 12 open session(s), 3889 buffered event(s); ..."
    for (absl::string_view what : {" open session(s)", " buffered event(s)"}) {
      const size_t at = line.find(what);
      if (at == absl::string_view::npos || at == 0) continue;
      const size_t from = line.rfind(' ', at - 1) + 1;
      int n = 0;
      if (absl::SimpleAtoi(line.substr(from, at - from), &n)) restored += n;
    }
  }
  return restored;
}

double Fleet::Total(const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> keep(keep_mu_);
  double total = 0;
  for (const auto& l : lifetimes_) {
    const double v = MetricValue(l->best_page, name, labels);
    if (v > 0) total += v;
  }
  return total;
}

std::vector<Lifetime::Readiness> Fleet::Readiness(const Lifetime* life) {
  std::lock_guard<std::mutex> lock(keep_mu_);
  return life->readiness;
}

std::string Fleet::Logs() {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> keep(keep_mu_);
  for (const auto& l : lifetimes_) {
    absl::StrAppend(&out, "---- ", l->instance, " (port ", l->port, ")\n",
                    l->process->Stderr());
    for (absl::string_view line : absl::StrSplit(l->best_page, '\n')) {
      if (absl::StartsWith(line, "kpistream_consumer_lag") ||
          absl::StartsWith(line, "kpistream_events_consumed") ||
          absl::StartsWith(line, "kpistream_commits") ||
          absl::StartsWith(line, "kpistream_commit_aborts") ||
          absl::StartsWith(line, "kpistream_reorder") ||
          absl::StartsWith(line, "kpistream_ready") ||
          absl::StartsWith(line, "kpistream_assigned")) {
        absl::StrAppend(&out, "  last page: ", line, "\n");
      }
    }
    for (const Lifetime::Readiness& r : l->readiness) {
      absl::StrAppend(&out, "  readyz ", absl::FormatTime(r.at), ": ", r.code,
                      " ", r.reason, "\n");
    }
  }
  return out;
}

std::unique_ptr<Subprocess> StartLoadgen(const std::string& bootstrap,
                                         const std::string& topic, int events,
                                         const std::string& key, int rate,
                                         int seed, bool session_ids) {
  std::vector<std::string> argv = {
      KpistreamBinary(), "loadgen",
      "--brokers",       bootstrap,
      "--topic",         topic,
      "--format",        "json",
      "--rate",          absl::StrCat(rate),
      "--event-rate",    absl::StrCat(std::max(1, rate / 100)),
      "--events",        absl::StrCat(events),
      "--visitors",      "3000",
      "--seed",          absl::StrCat(seed),
      "--start-time",    "2026-01-01T00:00:00Z",
      "--disorder",      "20s",
      "--duplicates",    "0.02",
      "--bots",          "0.02",
      "--key",           key};
  if (session_ids) argv.push_back("--session-ids");
  return std::make_unique<Subprocess>(argv);
}

void EndOfInput(const std::string& bootstrap, const std::string& topic,
                int partitions) {
  auto advanced = AdvanceEventTime(
      bootstrap, topic, partitions,
      absl::FromUnixSeconds(1767225600 + 86400 * 2), /*json=*/true);
  ASSERT_TRUE(advanced.ok()) << advanced.status();
}

std::map<std::string, v1::SessionRecord> CommittedSessions(
    const std::string& bootstrap, const std::string& topic, size_t expected,
    int* duplicates) {
  auto records = ConsumeFromKafka(bootstrap, topic, expected + 1000,
                                  absl::Seconds(20), /*read_committed=*/true);
  std::map<std::string, v1::SessionRecord> out;
  *duplicates = 0;
  if (!records.ok()) {
    ADD_FAILURE() << records.status();
    return out;
  }
  for (const KafkaRecord& r : *records) {
    v1::SessionRecord s;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.value, &s).ok())
        << r.value;
    if (!out.emplace(s.session_id(), s).second) ++*duplicates;
  }
  return out;
}

Batch ExpectExactlyTheBatch(Fleet& fleet, absl::Duration wait) {
  const FleetOptions& o = fleet.options();
  auto input = ConsumeFromKafka(o.bootstrap, o.input, 1u << 30,
                                absl::Seconds(15), false);
  EXPECT_TRUE(input.ok()) << input.status();
  if (!input.ok()) return {};
  const Batch batch = ComputeBatch(*input, o.client_sessions);
  std::map<std::string, v1::SessionRecord> got;
  int duplicates = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        got = CommittedSessions(o.bootstrap, o.sessions, batch.sessions.size(),
                                &duplicates);
        return got.size() >= batch.sessions.size();
      },
      wait))
      << got.size() << " of " << batch.sessions.size() << " sessions\n"
      << fleet.Logs();
  EXPECT_EQ(duplicates, 0);
  int missing = 0, extra = 0, different = 0;
  for (const auto& [id, want] : batch.sessions) {
    auto it = got.find(id);
    if (it == got.end()) {
      if (++missing <= 5) ADD_FAILURE() << "missing " << want.DebugString();
      continue;
    }
    if (it->second.DebugString() != want.DebugString() && ++different <= 5) {
      ADD_FAILURE() << "got " << it->second.DebugString() << "want "
                    << want.DebugString();
    }
  }
  for (const auto& [id, s] : got) {
    if (!batch.sessions.count(id) && ++extra <= 5) {
      ADD_FAILURE() << "extra (split?) " << s.DebugString();
    }
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(extra, 0);
  EXPECT_EQ(different, 0);
  // The fleet's counters: every process's last scrape, summed.
  EXPECT_TRUE(WaitFor(
      [&] {
        return fleet.Total("kpistream_events_consumed_total") == batch.records;
      },
      absl::Seconds(30)))
      << fleet.Total("kpistream_events_consumed_total") << " of "
      << batch.records;
  EXPECT_EQ(fleet.Total("web_events_total"), batch.accepted);
  EXPECT_EQ(fleet.Total("kpistream_bot_events_total"), batch.bots);
  EXPECT_EQ(fleet.Total("kpistream_events_duplicate_total"), batch.duplicates);
  EXPECT_EQ(fleet.Total("kpistream_events_invalid_total"), batch.invalid);
  EXPECT_EQ(fleet.Total("kpistream_events_late_total"), 0);
  EXPECT_EQ(fleet.Total("web_pageviews_total"), batch.pageviews);
  EXPECT_EQ(fleet.Total("web_sessions_closed_total"),
            static_cast<double>(batch.sessions.size()));
  EXPECT_EQ(fleet.Total("web_sessions_started_total"),
            static_cast<double>(batch.sessions.size()));
  EXPECT_EQ(fleet.Total("web_orders_total"), batch.orders);
  if (::testing::Test::HasFailure()) {
    std::cerr << fleet.Logs();
    CommandResult dead = RunCommand(
        {"kcat", "-b", o.bootstrap, "-C", "-t", o.input + "-dead", "-e", "-q",
         "-X", "isolation.level=read_committed", "-f", "%h\n"});
    for (absl::string_view line : absl::StrSplit(dead.out, '\n')) {
      if (absl::StrContains(line, "reason=late")) {
        std::cerr << "late: " << line << "\n";
      }
    }
    auto log = ConsumeFromKafka(o.bootstrap, o.group + "-changelog", 1u << 20,
                                absl::Seconds(10), true);
    if (log.ok()) {
      for (const KafkaRecord& r : *log) {
        std::cerr << "changelog p" << r.partition << " @" << r.offset << " "
                  << r.key << " " << r.value.size() << "\n";
      }
    }
  }
  return batch;
}

Batch ExpectExactlyTheLoadgenBatch(Fleet& fleet) {
  const Batch batch = ExpectExactlyTheBatch(fleet);
  EXPECT_GT(batch.sessions.size(), 500u);
  EXPECT_GT(batch.bots, 0);
  EXPECT_GT(batch.duplicates, 0);
  return batch;
}

void ExpectCrashAndRestartsExactlyOnce(Fleet& fleet, const std::string& key,
                                       int partitions) {
  const FleetOptions& o = fleet.options();
  Lifetime* a = fleet.Start("a");
  Lifetime* b = fleet.Start("b");
  auto loadgen = StartLoadgen(o.bootstrap, o.input, 30000, key, 3000, 8,
                              o.client_sessions);
  // The instance killed is one that holds open sessions, the one stopped
  // has committed work of the input, so that their successors restore
  // state (with fixed 3 s waits the kill often came while the group still
  // rebalanced, or hit an instance that only forwarded records: key: any
  // keeps the sessions in the repartition topic's partitions; no restore of
  // the test then held a session).
  Lifetime* holder = fleet.WaitForSessions({a, b});
  if (holder == nullptr) return;
  Lifetime* other = holder == a ? b : a;
  const std::string killed = holder->instance;
  const std::string stopped = other->instance;
  fleet.Kill(holder);
  fleet.Start(killed);
  EXPECT_TRUE(fleet.WaitForRecords(other)) << fleet.Logs();
  EXPECT_EQ(fleet.Stop(other), 0) << fleet.Logs();
  fleet.Start(stopped);
  EXPECT_EQ(loadgen->Stop(0, absl::Seconds(120)), 0) << loadgen->Stderr();
  EndOfInput(o.bootstrap, o.input, partitions);
  ExpectExactlyTheLoadgenBatch(fleet);
  EXPECT_GT(fleet.RestoredState(), 0)
      << "no open session or buffered event was restored\n"
      << fleet.Logs();
}

std::string LoadgenKeyName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param == "none" ? "Null" : "Visitor";
}

}  // namespace kpistream::testing
