// Property: a partition's state that crashes at any point and is restored
// from its checkpoints (engine/checkpoint_log.h) gives exactly what an
// uninterrupted run gives: the same sessions (each once, none split), the
// same final KPI windows, the same target sums, and, with counters that
// commit with the checkpoints and roll back on a crash, the same counts.
// Also: a compacted changelog and an uncompacted one restore alike, and a
// changelog that lost records is an error, not a silently wrong state.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "engine/checkpoint_log.h"
#include "export/session_record_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kpistream/v1/session_record.pb.h"
#include "tests/allocation_counter.h"

namespace kpistream {
namespace {

const absl::Time T0 = absl::FromUnixSeconds(1767225600);
const absl::Duration kOutOfOrderness = absl::Seconds(45);
const TopicPartition kTp{"web.events", 3};

std::vector<Event> RandomArrivals(uint64_t seed) {
  std::mt19937_64 rng(seed);
  // Client session ids (sessions.session_source: client) from a generator
  // of their own: the rest of the events as before they were added.
  std::mt19937_64 id_rng(seed * 104729 + 3);
  std::vector<Event> events;
  const char* pages[] = {"/", "/products/1", "/cart", "/checkout", "/blog"};
  const int visitors = 10 + static_cast<int>(rng() % 30);
  int id = 0;
  for (int v = 0; v < visitors; ++v) {
    absl::Time t = T0 + absl::Seconds(rng() % 7200);
    const int n = 1 + static_cast<int>(rng() % 30);
    const std::string site = rng() % 3 == 0 ? "blog" : "shop";
    int client_session = 0;
    for (int i = 0; i < n; ++i) {
      Event e;
      const int c = static_cast<int>(id_rng() % 100);
      if (c < 8) ++client_session;
      if (c < 90) e.session_id = absl::StrCat("c", v, "-", client_session);
      e.site_id = site;
      e.visitor_id = absl::StrCat("visitor-", v, "-with-a-longer-id");
      e.event_id = absl::StrCat("e", id++);
      e.time = t;
      const int r = static_cast<int>(rng() % 100);
      e.type = r < 60   ? EventType::kPageView
               : r < 80 ? EventType::kEngagement
               : r < 92 ? EventType::kConversion
                        : EventType::kCustom;
      e.page_url = absl::StrCat("https://shop.example", pages[rng() % 5]);
      if (rng() % 6 == 0) {
        e.utm_source = "newsletter";
        e.utm_medium = "email";
        e.utm_campaign = absl::StrCat("c", rng() % 3);
      }
      if (rng() % 5 == 0) e.referrer = "https://www.google.com/";
      e.device_category = rng() % 2 ? "desktop" : "mobile";
      e.country = rng() % 2 ? "DE" : "US";
      if (rng() % 7 == 0) e.user_id = absl::StrCat("u", v);
      if (e.type == EventType::kConversion) {
        e.goal = rng() % 2 ? "signup" : "purchase";
        if (e.goal == "purchase") {
          e.value_micros = static_cast<int64_t>(1 + rng() % 100) * 1000000;
          e.currency = rng() % 2 ? "EUR" : "USD";
          e.order_id = absl::StrCat("o-", v, "-", rng() % 4);
        } else if (rng() % 3 == 0) {  // one order, two goals' conversions
          e.order_id = absl::StrCat("o-", v, "-", rng() % 4);
        }
      }
      events.push_back(e);
      if (rng() % 15 == 0) events.push_back(e);  // a resend: a duplicate
      const int g = static_cast<int>(rng() % 100);
      t += g < 70   ? absl::Milliseconds(rng() % 90000)
           : g < 90 ? absl::Minutes(20) + absl::Seconds(rng() % 900)
                    : absl::Minutes(31) + absl::Seconds(rng() % 3600);
    }
  }
  // Arrival order: each event delayed by up to the out-of-orderness.
  std::vector<std::pair<absl::Time, size_t>> arrival;
  for (size_t i = 0; i < events.size(); ++i) {
    arrival.push_back({events[i].time + absl::Milliseconds(rng() % 45000), i});
  }
  std::sort(arrival.begin(), arrival.end());
  std::vector<Event> out;
  for (const auto& [at, i] : arrival) out.push_back(events[i]);
  return out;
}

struct Outputs {
  std::vector<std::string> sessions;  // encoded SessionRecords
  std::vector<std::string> windows;   // final windows, as text
};

class Recorder : public SessionObserver {
 public:
  explicit Recorder(KpiCounters* counters) : counters_(counters) {}
  void OnSessionStarted(const SessionAttributes& s,
                        const EventView& e) override {
    counters_->OnSessionStarted(s, e);
  }
  void OnEvent(const SessionAttributes& s, const EventView& e) override {
    counters_->OnEvent(s, e);
  }
  void OnSessionClosed(const ClosedSession& s) override {
    counters_->OnSessionClosed(s);
    pending.sessions.push_back(EncodeSessionRecord(s, OutputFormat::kProtobuf));
  }
  Outputs pending;  // since the last commit

 private:
  KpiCounters* counters_;
};

std::string WindowText(const WindowKpis& w) {
  std::string out = absl::StrCat(
      w.site, "|", w.channel, "|", absl::ToUnixSeconds(w.start), "|",
      w.sessions, "|", w.sessions_closed, "|", w.engaged, "|", w.bounced, "|",
      w.pageviews, "|", w.orders, "|", w.duration_micros_sum);
  for (const auto& [goal, n] : w.conversions)
    absl::StrAppend(&out, "|", goal, n);
  for (const auto& [c, m] : w.revenue) absl::StrAppend(&out, "|", c, m);
  for (const auto& [c, n] : w.orders_by_currency)
    absl::StrAppend(&out, "|", c, "#", n);
  return out;
}

std::vector<TargetSpec> Targets() {
  std::vector<TargetSpec> specs(3);
  specs[0].name = "bounce";
  specs[0].kpi = "bounce_rate";
  specs[0].direction = Direction::kAtMost;
  specs[0].value = 0.5;
  specs[0].window = absl::Hours(6);
  specs[1].name = "orders";
  specs[1].kpi = "orders";
  specs[1].filter = {{"currency", "EUR"}};
  specs[1].value = 10;
  specs[1].period_start = T0 - absl::Hours(24);
  specs[1].period_end = T0 + absl::Hours(24 * 30);
  specs[2].name = "signups";
  specs[2].kpi = "conversions";
  specs[2].filter = {{"goal", "signup"}};
  specs[2].value = 10;
  specs[2].window = absl::Hours(24);
  return specs;
}

// A page view of `visitor` on shop at `at`, its event id `id`.
Event PageAt(const std::string& visitor, const std::string& id, absl::Time at) {
  Event e;
  e.site_id = "shop";
  e.visitor_id = visitor;
  e.event_id = id;
  e.time = at;
  e.type = EventType::kPageView;
  e.page_url = "https://shop.example/";
  return e;
}

PartitionState::Options StateOptions(const std::vector<TargetSpec>* targets,
                                     bool client_sessions = false) {
  PartitionState::Options options;
  options.rules.split_on_session_id = client_sessions;
  options.rules.funnels = {{"checkout",
                            {{"cart", "/cart", ""},
                             {"checkout", "/checkout", ""},
                             {"bought", "", "purchase"}}}};
  options.allowed_lateness = absl::Minutes(2);
  options.dedup_horizon = absl::Hours(1);
  options.kpi_window = absl::Minutes(5);
  options.targets = targets;
  return options;
}

void Count(PartitionState::Admit admit, const Event& e, KpiCounters* counters) {
  counters->CountConsumed(kTp.topic);
  switch (admit) {
    case PartitionState::Admit::kAccepted:
      counters->CountAccepted(e.site_id, e.type);
      break;
    case PartitionState::Admit::kLate:
      counters->CountLate();
      break;
    case PartitionState::Admit::kDuplicate:
      counters->CountDuplicate();
      break;
  }
}

struct Result {
  std::vector<std::string> sessions;
  std::vector<std::string> windows;
  std::vector<TargetSums> targets;
  MetricsSnapshot counters;
};

void Finish(PartitionState& state, Recorder& recorder, Outputs* committed) {
  state.Drain();
  for (const WindowKpis& w : state.CollectWindows(absl::InfiniteFuture())) {
    if (w.final) recorder.pending.windows.push_back(WindowText(w));
  }
  for (std::string& s : recorder.pending.sessions) {
    committed->sessions.push_back(std::move(s));
  }
  for (std::string& w : recorder.pending.windows) {
    committed->windows.push_back(std::move(w));
  }
}

Result Sorted(Outputs outputs, std::vector<TargetSums> targets,
              KpiCounters& counters) {
  std::sort(outputs.sessions.begin(), outputs.sessions.end());
  std::sort(outputs.windows.begin(), outputs.windows.end());
  counters.Commit();
  return {outputs.sessions, outputs.windows, std::move(targets),
          counters.Snapshot()};
}

// One run; with `crashes`: crash (lose everything since the last commit)
// at random points, restore from the checkpoints, go on. With
// `by_reference` each event carries its arrival index as its record offset,
// so buffered events are checkpointed as references: a restore reads the
// arrivals again from replay_from() up to the restored position, handing
// back only the buffered ones, while commits (some full) and crashes go on.
// Odd seeds run with sessions.session_source: client.
Result RunPartition(const std::vector<Event>& arrivals, uint64_t seed,
                    bool crashes, bool compact, bool by_reference,
                    int* restores, int* replayed = nullptr) {
  const bool client_sessions = seed % 2 == 1;
  const std::vector<TargetSpec> specs = Targets();
  const ChannelClassifier channels;
  std::mt19937_64 rng(seed * 31 + 7);
  KpiCounters counters({});
  Recorder recorder(&counters);
  Outputs committed;
  // The changelog: every record as written, in order.
  std::vector<ChangelogRecord> log;
  auto state = std::make_unique<PartitionState>(
      StateOptions(&specs, client_sessions), &recorder, &channels);
  // Small chunks and snapshots: many chunks, several full snapshots.
  CheckpointWriter writer(kTp, /*chunk_bytes=*/2048,
                          /*min_full_interval_bytes=*/8192);
  absl::Time max = absl::InfinitePast();
  size_t next = 0;
  // While a restore's buffered events are read again: the position.
  std::optional<size_t> replay_until;
  while (next < arrivals.size()) {
    const Event& e = arrivals[next];
    if (replay_until.has_value()) {
      size_t missing = 0;
      if (state->WantsReplay(static_cast<int64_t>(next), &missing)) {
        EventView view = e.view();
        view.record_offset = static_cast<int64_t>(next);
        EXPECT_TRUE(state->Replay(view)) << "offset " << next;
        if (replayed != nullptr) ++*replayed;
      }
      EXPECT_EQ(missing, 0u);
      ++next;
      if (next == *replay_until) {
        EXPECT_EQ(state->pending_replays(), 0u);
        replay_until.reset();
      }
    } else {
      max = std::max(max, e.time);
      EventView view = e.view();
      if (by_reference) view.record_offset = static_cast<int64_t>(next);
      Count(state->Offer(view, max - kOutOfOrderness), e, &counters);
      ++next;
    }
    const absl::Time watermark = max - kOutOfOrderness;
    // Also while reading again (the engine advances after every poll).
    if (next % 5 == 0) state->Advance(watermark);
    const size_t position = replay_until.value_or(next);
    // Commits, full ones and crashes are likelier while reading again, so
    // that they happen there too.
    const bool replaying = replay_until.has_value();
    if (next % 23 == 0 || next == arrivals.size() ||
        (replaying && rng() % 3 == 0)) {
      // Commit: final windows out, checkpoint, counters visible.
      for (const WindowKpis& w :
           state->CollectWindows(watermark - absl::Minutes(2))) {
        if (w.final) recorder.pending.windows.push_back(WindowText(w));
      }
      for (ChangelogRecord& r :
           writer.Write(*state, static_cast<int64_t>(position), max,
                        rng() % (replaying ? 2 : 17) == 0)) {
        log.push_back(std::move(r));
      }
      for (std::string& s : recorder.pending.sessions) {
        committed.sessions.push_back(std::move(s));
      }
      for (std::string& w : recorder.pending.windows) {
        committed.windows.push_back(std::move(w));
      }
      recorder.pending = Outputs{};
      counters.Commit();
    }
    if (crashes && rng() % (replaying ? 6 : 40) == 0) {
      // Crash: what was not committed is gone.
      recorder.pending = Outputs{};
      counters.Rollback();
      state = std::make_unique<PartitionState>(
          StateOptions(&specs, client_sessions), &recorder, &channels);
      CheckpointReader reader;
      std::map<std::string, std::optional<std::string>> compacted;
      for (const ChangelogRecord& r : log) {
        if (compact) {
          compacted[r.key] = r.value;
        } else {
          reader.Add(r.key, r.value.value_or(""), !r.value.has_value());
        }
      }
      for (const auto& [key, value] : compacted) {
        if (value) reader.Add(key, *value, false);  // tombstones gone
      }
      auto position = reader.RestoreInto(kTp, state.get());
      EXPECT_TRUE(position.ok()) << position.status();
      if (!position.ok()) return {};
      next = position->next_offset < 0
                 ? 0
                 : static_cast<size_t>(position->next_offset);
      replay_until.reset();
      if (const int64_t from = state->replay_from(); from >= 0) {
        EXPECT_TRUE(by_reference);
        EXPECT_LT(from, position->next_offset);
        replay_until = next;
        next = static_cast<size_t>(from);
      }
      max = position->max_event_time;
      writer.Resume(*position);
      ++*restores;
    }
  }
  Finish(*state, recorder, &committed);
  std::vector<TargetSums> sums(specs.size());
  state->AddTargetSums(max, &sums);
  counters.Commit();
  return Sorted(std::move(committed), std::move(sums), counters);
}

// outputs.kpi.window changed across a restart (1 min to 2 min) with a
// session open: the restored open session counts in its window of the new
// width, so that window goes final once, after every session in it closed,
// not at each commit an old session closed into it (an audit: up to 42
// finals for one key, the first while sessions it counted were open).
TEST(CheckpointTest, AWindowWidthChangeGivesOneFinalPerWindow) {
  const ChannelClassifier channels;
  KpiCounters counters({});
  Recorder recorder(&counters);
  auto page = [](const std::string& visitor, absl::Time at) {
    return PageAt(visitor, absl::StrCat(visitor, absl::ToUnixSeconds(at)), at);
  };
  PartitionState::Options one = StateOptions(nullptr);
  one.kpi_window = absl::Minutes(1);
  PartitionState before(one, &recorder, &channels);
  const Event old = page("old", T0 + absl::Seconds(70));
  before.Offer(old.view(), T0);
  before.Advance(T0 + absl::Seconds(75));  // released: a session
  CheckpointWriter writer(kTp);
  CheckpointReader reader;
  for (const ChangelogRecord& r :
       writer.Write(before, 1, old.time, /*force_full=*/true)) {
    reader.Add(r.key, r.value.value_or(""), !r.value.has_value());
  }
  PartitionState::Options two = StateOptions(nullptr);
  two.kpi_window = absl::Minutes(2);
  PartitionState after(two, &recorder, &channels);
  ASSERT_TRUE(reader.RestoreInto(kTp, &after).ok());
  // A session of its own in the same 2 min window, going on for 20 min.
  const Event fresh = page("new", T0 + absl::Seconds(80));
  const Event later = page("new", T0 + absl::Minutes(20));
  after.Offer(fresh.view(), T0 + absl::Seconds(75));
  after.Offer(later.view(), T0 + absl::Seconds(75));
  std::vector<WindowKpis> finals;
  auto commit = [&](absl::Time watermark) {
    after.Advance(watermark);
    for (const WindowKpis& w :
         after.CollectWindows(watermark - absl::Minutes(2))) {
      if (w.final) finals.push_back(w);
    }
  };
  commit(T0 + absl::Minutes(20) + absl::Seconds(30));
  commit(T0 + absl::Minutes(35));  // the old session closes, not the new
  EXPECT_TRUE(finals.empty());
  commit(T0 + absl::Hours(2));   // the new one closes
  ASSERT_EQ(finals.size(), 2u);  // the site's window and Direct's
  for (const WindowKpis& w : finals) {
    EXPECT_EQ(w.start, T0);
    EXPECT_EQ(w.sessions, 2u);
    EXPECT_EQ(w.sessions_closed, 2u);
  }
  EXPECT_NE(finals[0].channel, finals[1].channel);
  commit(T0 + absl::Hours(3));
  EXPECT_EQ(finals.size(), 2u);
}

TEST(CheckpointTest, CrashesAndRestoresChangeNothing) {
  int restores = 0, sessions = 0, replayed = 0;
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    const std::vector<Event> arrivals = RandomArrivals(seed);
    const Result want =
        RunPartition(arrivals, seed, false, false, false, &restores);
    for (auto [compact, by_reference] :
         {std::pair(false, false), std::pair(true, false),
          std::pair(false, true), std::pair(true, true)}) {
      SCOPED_TRACE(compact ? "compacted changelog" : "uncompacted changelog");
      SCOPED_TRACE(by_reference ? "buffered events by reference"
                                : "buffered events in full");
      const Result got = RunPartition(arrivals, seed, true, compact,
                                      by_reference, &restores, &replayed);
      ASSERT_EQ(got.sessions.size(), want.sessions.size());
      for (size_t i = 0; i < want.sessions.size(); ++i) {
        v1::SessionRecord a, b;
        a.ParseFromString(got.sessions[i]);
        b.ParseFromString(want.sessions[i]);
        ASSERT_EQ(a.DebugString(), b.DebugString());
      }
      EXPECT_EQ(got.windows, want.windows);
      ASSERT_EQ(got.targets.size(), want.targets.size());
      for (size_t i = 0; i < want.targets.size(); ++i) {
        EXPECT_DOUBLE_EQ(got.targets[i].numerator, want.targets[i].numerator);
        EXPECT_DOUBLE_EQ(got.targets[i].denominator,
                         want.targets[i].denominator);
        EXPECT_EQ(got.targets[i].sample, want.targets[i].sample);
        EXPECT_EQ(got.targets[i].matched, want.targets[i].matched);
      }
      EXPECT_EQ(got.counters.size(), want.counters.size());
      for (size_t f = 0; f < want.counters.size(); ++f) {
        const FamilySnapshot& a = got.counters[f];
        const FamilySnapshot& b = want.counters[f];
        ASSERT_EQ(a.name, b.name);
        // Labels admitted by frequency (campaign, source, medium, landing
        // page: LabelLimiter's min_count) depend on how often a value was
        // looked up, which redone work changes: a value may reach its own
        // series a few sessions earlier or later than "(other)". The
        // family's total is exact all the same.
        if (a.name.rfind("web_campaign_", 0) == 0 ||
            a.name.rfind("web_landing_page_", 0) == 0) {
          double sa = 0, sb = 0;
          for (const MetricSample& m : a.samples) sa += m.value;
          for (const MetricSample& m : b.samples) sb += m.value;
          EXPECT_DOUBLE_EQ(sa, sb) << a.name;
          continue;
        }
        if (a.name == "kpistream_label_overflow_total") continue;
        ASSERT_EQ(a.samples.size(), b.samples.size()) << a.name;
        for (size_t i = 0; i < a.samples.size(); ++i) {
          EXPECT_EQ(a.samples[i].label_values, b.samples[i].label_values);
          EXPECT_DOUBLE_EQ(a.samples[i].value, b.samples[i].value) << a.name;
          EXPECT_EQ(a.samples[i].count, b.samples[i].count) << a.name;
        }
      }
    }
    sessions += static_cast<int>(want.sessions.size());
  }
  // The property is not vacuous.
  EXPECT_GT(restores, 400);
  EXPECT_GT(sessions, 1000);
  EXPECT_GT(replayed, 1000);
}

// A restore holds one parsed chunk at a time beside the state it builds:
// the chunks of a partition's checkpoints were all parsed before any was
// applied (~5x their bytes: an audit measured a restart's peak at 2.5-3x
// the steady RSS, an OOM-kill loop in a container sized by it).
TEST(CheckpointTest, ARestoreParsesOneChunkAtATime) {
  const std::vector<TargetSpec> specs = Targets();
  const ChannelClassifier channels;
  KpiCounters counters({});
  Recorder recorder(&counters);
  PartitionState state(StateOptions(&specs), &recorder, &channels);
  constexpr int kVisitors = 20000;
  for (int v = 0; v < kVisitors; ++v) {
    Event e;
    e.site_id = "shop";
    e.visitor_id = absl::StrCat("visitor-", v, "-with-a-longer-id");
    e.event_id = absl::StrCat("e", v);
    e.time = T0 + absl::Milliseconds(v);
    e.type = EventType::kPageView;
    e.page_url = absl::StrCat("https://shop.example/products/", v % 50);
    e.device_category = "desktop";
    e.country = "DE";
    state.Offer(e.view(), T0 - absl::Minutes(1));
  }
  state.Advance(T0 + absl::Minutes(1));
  ASSERT_EQ(state.open_sessions(), static_cast<size_t>(kVisitors));
  CheckpointWriter writer(kTp, /*chunk_bytes=*/64 << 10);
  CheckpointReader reader;
  size_t bytes = 0, chunks = 0;
  for (const ChangelogRecord& r :
       writer.Write(state, 123, T0 + absl::Seconds(20), /*force_full=*/true)) {
    ASSERT_TRUE(r.value.has_value());
    reader.Add(r.key, *r.value, false);
    bytes += r.value->size();
    ++chunks;
  }
  ASSERT_GT(chunks, 20u);
  PartitionState restored(StateOptions(&specs), &recorder, &channels);
  ::kpistream::testing::HeapPeak heap;
  auto position = reader.RestoreInto(kTp, &restored);
  heap.Stop();
  ASSERT_TRUE(position.ok()) << position.status();
  EXPECT_EQ(position->next_offset, 123);
  EXPECT_EQ(restored.open_sessions(), static_cast<size_t>(kVisitors));
  // Beyond the restored state: about one parsed chunk (~5x 64 KiB), where
  // all of them parsed at once were ~5x the checkpoint's bytes.
  const int64_t transient = heap.peak() - heap.live();
  EXPECT_LT(transient, static_cast<int64_t>(bytes))
      << "checkpoint " << bytes << " bytes in " << chunks << " chunks, peak "
      << heap.peak() << ", restored state " << heap.live();
}

TEST(CheckpointTest, KeysRoundTrip) {
  TopicPartition tp;
  uint64_t seq = 0;
  uint32_t chunk = 0;
  const std::string key = CheckpointKey({"web.events", 12}, 0x1234, 7);
  EXPECT_EQ(key, "s/web.events/12/0000000000001234/000007");
  ASSERT_TRUE(ParseCheckpointKey(key, &tp, &seq, &chunk));
  EXPECT_EQ(tp.topic, "web.events");
  EXPECT_EQ(tp.partition, 12);
  EXPECT_EQ(seq, 0x1234u);
  EXPECT_EQ(chunk, 7u);
  EXPECT_FALSE(ParseCheckpointKey("t/web.events/1/total/x", &tp, &seq, &chunk));
  EXPECT_FALSE(ParseCheckpointKey("s/a/b/c/d", &tp, &seq, &chunk));

  // Day records: the fingerprint in 16 lowercase hex digits.
  char kind = 0;
  uint64_t fingerprint = 0;
  const std::string day = DayKey({"web.events", 3}, 'v', 0xab12);
  EXPECT_EQ(day, "v/web.events/3/v/000000000000ab12");
  ASSERT_TRUE(ParseDayKey(day, &tp, &kind, &fingerprint));
  EXPECT_EQ(tp.topic, "web.events");
  EXPECT_EQ(tp.partition, 3);
  EXPECT_EQ(kind, 'v');
  EXPECT_EQ(fingerprint, 0xab12u);
  EXPECT_EQ(DayKey({"t", 0}, 'o', ~uint64_t{0}), "v/t/0/o/ffffffffffffffff");
  // One part more or fewer, another kind, a checkpoint's key: not a day's.
  EXPECT_FALSE(ParseDayKey(day + "/x", &tp, &kind, &fingerprint));
  EXPECT_FALSE(
      ParseDayKey("v/web.events/v/000000000000ab12", &tp, &kind, &fingerprint));
  EXPECT_FALSE(ParseDayKey("v/web.events/3/x/000000000000ab12", &tp, &kind,
                           &fingerprint));
  EXPECT_FALSE(ParseDayKey(key, &tp, &kind, &fingerprint));
  EXPECT_FALSE(ParseCheckpointKey(day, &tp, &seq, &chunk));
  EXPECT_FALSE(ParseCheckpointKey(key + "/", &tp, &seq, &chunk));
  EXPECT_FALSE(ParseCheckpointKey("s/web.events/12/0000000000001234", &tp, &seq,
                                  &chunk));
}

// A changelog that lost records (the embedded broker keeps ~5 MB per
// partition; a deleting topic drops old ones) must not restore silently.
TEST(CheckpointTest, AGapIsDataLossNotAWrongState) {
  for (bool without_transaction : {false, true}) {
    SCOPED_TRACE(without_transaction ? "at-least-once" : "exactly-once");
    const std::vector<TargetSpec> specs = Targets();
    KpiCounters counters({});
    Recorder recorder(&counters);
    PartitionState state(StateOptions(&specs), &recorder);
    CheckpointWriter writer(kTp, 2048, 1 << 30);
    writer.set_without_transaction(without_transaction);
    std::vector<ChangelogRecord> log;
    const std::vector<Event> arrivals = RandomArrivals(3);
    for (size_t i = 0; i < 200 && i < arrivals.size(); ++i) {
      state.Offer(arrivals[i], absl::InfinitePast());
      if (i % 50 == 49) {
        for (ChangelogRecord& r :
             writer.Write(state, i + 1, arrivals[i].time)) {
          log.push_back(std::move(r));
        }
      }
    }
    ASSERT_GT(log.size(), 4u);
    auto restore = [&](size_t skip) {
      CheckpointReader reader;
      for (size_t i = 0; i < log.size(); ++i) {
        if (i != skip) reader.Add(log[i].key, *log[i].value, false);
      }
      PartitionState fresh(StateOptions(&specs), &recorder);
      return reader.RestoreInto(kTp, &fresh);
    };
    EXPECT_TRUE(restore(log.size()).ok());               // nothing lost
    EXPECT_TRUE(absl::IsDataLoss(restore(0).status()));  // the snapshot's
    // A chunk of a delta with a later checkpoint after it.
    TopicPartition tp;
    uint64_t last_seq = 0, seq = 0;
    uint32_t chunk = 0;
    ASSERT_TRUE(ParseCheckpointKey(log.back().key, &tp, &last_seq, &chunk));
    size_t before_last = log.size();
    for (size_t i = 0; i < log.size(); ++i) {
      ASSERT_TRUE(ParseCheckpointKey(log[i].key, &tp, &seq, &chunk));
      if (seq == last_seq - 1) before_last = i;
    }
    ASSERT_LT(before_last, log.size());
    EXPECT_TRUE(absl::IsDataLoss(restore(before_last).status()));
    // The newest checkpoint's last chunk: lost from a transaction's
    // checkpoint (read_committed sees all of it or nothing); at-least-once,
    // its writer stopped midway (the next test).
    absl::StatusOr<CheckpointPosition> newest = restore(log.size() - 1);
    if (without_transaction) {
      ASSERT_TRUE(newest.ok()) << newest.status();
      EXPECT_EQ(newest->next_offset, 150);
      EXPECT_EQ(newest->skipped, 1u);
    } else {
      EXPECT_TRUE(absl::IsDataLoss(newest.status())) << newest.status();
    }
    // ... but not with a whole checkpoint before it lost too.
    {
      CheckpointReader reader;
      for (size_t i = 0; i + 1 < log.size(); ++i) {
        ASSERT_TRUE(ParseCheckpointKey(log[i].key, &tp, &seq, &chunk));
        if (seq != last_seq - 1) reader.Add(log[i].key, *log[i].value, false);
      }
      PartitionState fresh(StateOptions(&specs), &recorder);
      EXPECT_TRUE(absl::IsDataLoss(reader.RestoreInto(kTp, &fresh).status()));
    }
    // A chunk after a checkpoint's last one belongs to none: ignored.
    {
      ASSERT_TRUE(ParseCheckpointKey(log.back().key, &tp, &seq, &chunk));
      v1::PartitionCheckpoint stray;
      ASSERT_TRUE(stray.ParseFromString(*log.back().value));
      ASSERT_TRUE(stray.last());
      stray.set_chunk(chunk + 1);
      stray.set_next_offset(99999);
      CheckpointReader reader;
      for (const ChangelogRecord& r : log) reader.Add(r.key, *r.value, false);
      reader.Add(CheckpointKey(kTp, seq, chunk + 1), stray.SerializeAsString(),
                 false);
      PartitionState fresh(StateOptions(&specs), &recorder);
      absl::StatusOr<CheckpointPosition> position =
          reader.RestoreInto(kTp, &fresh);
      ASSERT_TRUE(position.ok()) << position.status();
      EXPECT_EQ(position->next_offset, 200);
    }
  }
}

// At-least-once writes a checkpoint without a transaction: a crash during
// its flush (or a record of it not delivered) leaves the newest checkpoint
// incomplete. A restore then resumes at the one before, instead of failing
// for good with DataLoss, and the next checkpoint is a full snapshot under
// a new seq (keys are never written twice). A full snapshot tombstones the
// earlier one only after it is written, so that one stays whole meanwhile.
TEST(CheckpointTest, AnIncompleteNewestCheckpointIsSkipped) {
  for (bool full : {false, true}) {
    SCOPED_TRACE(full ? "a full snapshot" : "a delta");
    const std::vector<TargetSpec> specs = Targets();
    KpiCounters counters({});
    Recorder recorder(&counters);
    const std::vector<Event> arrivals = RandomArrivals(5);
    ASSERT_GE(arrivals.size(), 300u);
    auto offer = [&](PartitionState& state, size_t from, size_t to) {
      for (size_t i = from; i < to; ++i) {
        state.Offer(arrivals[i], absl::InfinitePast());
      }
    };
    std::vector<ChangelogRecord> log;
    PartitionState state(StateOptions(&specs), &recorder);
    CheckpointWriter writer(kTp, 1024, 1 << 30);
    writer.set_without_transaction(true);
    offer(state, 0, 100);
    for (ChangelogRecord& r : writer.Write(state, 100, arrivals[99].time)) {
      log.push_back(std::move(r));  // seq 0, a full snapshot
    }
    offer(state, 100, 300);
    // Seq 1: its writer stops after the first two of its records.
    std::vector<ChangelogRecord> attempt =
        writer.Write(state, 300, arrivals[299].time, full);
    ASSERT_GT(attempt.size(), 3u);
    log.push_back(attempt[0]);
    log.push_back(attempt[1]);

    auto restore = [&](PartitionState* into) {
      CheckpointReader reader;
      for (const ChangelogRecord& r : log) {
        reader.Add(r.key, r.value.value_or(""), !r.value.has_value());
      }
      return reader.RestoreInto(kTp, into);
    };
    auto restored =
        std::make_unique<PartitionState>(StateOptions(&specs), &recorder);
    absl::StatusOr<CheckpointPosition> position = restore(restored.get());
    ASSERT_TRUE(position.ok()) << position.status();
    EXPECT_EQ(position->next_offset, 100);
    EXPECT_EQ(position->next_seq, 2u);
    EXPECT_EQ(position->skipped, 1u);

    // Read again from offset 100, a little only, and checkpointed: a full
    // snapshot, seq 2, whose writer stops midway too.
    {
      CheckpointWriter stopped(kTp, 1024, 1 << 30);
      stopped.set_without_transaction(true);
      stopped.Resume(*position);
      offer(*restored, 100, 105);
      std::vector<ChangelogRecord> partial =
          stopped.Write(*restored, 105, arrivals[104].time);
      ASSERT_GT(partial.size(), 2u);
      log.push_back(partial[0]);
      PartitionState twice(StateOptions(&specs), &recorder);
      position = restore(&twice);
      ASSERT_TRUE(position.ok()) << position.status();
      EXPECT_EQ(position->next_offset, 100);
      EXPECT_EQ(position->next_seq, 3u);
      EXPECT_EQ(position->skipped, 2u);
      restored =
          std::make_unique<PartitionState>(StateOptions(&specs), &recorder);
      position = restore(restored.get());
      ASSERT_TRUE(position.ok()) << position.status();
    }
    // Then once more, to the end: a full snapshot, seq 3, which tombstones
    // every earlier key after it.
    CheckpointWriter again(kTp, 1024, 1 << 30);
    again.set_without_transaction(true);
    again.Resume(*position);
    offer(*restored, 100, 105);
    std::vector<ChangelogRecord> rewritten =
        again.Write(*restored, 105, arrivals[104].time);
    std::set<std::string> tombstoned;
    bool tombstones_started = false;
    for (const ChangelogRecord& r : rewritten) {
      uint64_t seq = 0;
      uint32_t chunk = 0;
      TopicPartition tp;
      ASSERT_TRUE(ParseCheckpointKey(r.key, &tp, &seq, &chunk));
      if (r.value.has_value()) {
        EXPECT_EQ(seq, 3u);
        EXPECT_FALSE(tombstones_started) << r.key << " after a tombstone";
      } else {
        tombstones_started = true;
        tombstoned.insert(r.key);
      }
    }
    EXPECT_EQ(tombstoned.count(log[0].key), 1u);      // seq 0
    EXPECT_EQ(tombstoned.count(attempt[0].key), 1u);  // the stopped seq 1
    for (ChangelogRecord& r : rewritten) log.push_back(std::move(r));

    // Restored from all of it: the state of the first 105 events.
    PartitionState fresh(StateOptions(&specs), &recorder);
    position = restore(&fresh);
    ASSERT_TRUE(position.ok()) << position.status();
    EXPECT_EQ(position->next_offset, 105);
    EXPECT_EQ(position->next_seq, 4u);
    EXPECT_EQ(position->skipped, 0u);
    PartitionState reference(StateOptions(&specs), &recorder);
    offer(reference, 0, 105);
    Outputs from_restore, from_reference;
    recorder.pending = {};
    Finish(fresh, recorder, &from_restore);
    recorder.pending = {};
    Finish(reference, recorder, &from_reference);
    EXPECT_FALSE(from_reference.sessions.empty());
    EXPECT_EQ(from_restore.sessions, from_reference.sessions);
    EXPECT_EQ(from_restore.windows, from_reference.windows);
  }
}

// The first checkpoint, incomplete: at-least-once, no state yet (the next
// is a full snapshot under seq 1); exactly-once, data loss.
TEST(CheckpointTest, AnIncompleteFirstCheckpoint) {
  for (bool without_transaction : {false, true}) {
    SCOPED_TRACE(without_transaction ? "at-least-once" : "exactly-once");
    const std::vector<TargetSpec> specs = Targets();
    KpiCounters counters({});
    Recorder recorder(&counters);
    const std::vector<Event> arrivals = RandomArrivals(7);
    PartitionState state(StateOptions(&specs), &recorder);
    CheckpointWriter writer(kTp, 1024, 1 << 30);
    writer.set_without_transaction(without_transaction);
    for (size_t i = 0; i < 200 && i < arrivals.size(); ++i) {
      state.Offer(arrivals[i], absl::InfinitePast());
    }
    std::vector<ChangelogRecord> log =
        writer.Write(state, 200, arrivals[0].time);
    ASSERT_GT(log.size(), 2u);
    CheckpointReader reader;
    reader.Add(log[0].key, *log[0].value, false);
    PartitionState restored(StateOptions(&specs), &recorder);
    absl::StatusOr<CheckpointPosition> position =
        reader.RestoreInto(kTp, &restored);
    if (!without_transaction) {
      EXPECT_TRUE(absl::IsDataLoss(position.status())) << position.status();
      continue;
    }
    ASSERT_TRUE(position.ok()) << position.status();
    EXPECT_EQ(position->next_offset, -1);
    EXPECT_EQ(position->next_seq, 1u);
    EXPECT_TRUE(position->needs_full);
    EXPECT_EQ(position->live.size(), 1u);  // tombstoned by the next snapshot
    EXPECT_EQ(restored.open_sessions(), 0u);
    // Likewise without its first chunk (a producer without the gapless
    // guarantee may deliver a later record after one that failed).
    CheckpointReader later_chunk_only;
    later_chunk_only.Add(log[1].key, *log[1].value, false);
    PartitionState other(StateOptions(&specs), &recorder);
    position = later_chunk_only.RestoreInto(kTp, &other);
    ASSERT_TRUE(position.ok()) << position.status();
    EXPECT_EQ(position->next_offset, -1);
    EXPECT_EQ(position->skipped, 1u);
  }
}

// Found with tests/fuzz/checkpoint_fuzzer, whose tweaks put int64 limits
// into real checkpoints (corpus/checkpoint/*_out_of_range): a checkpoint
// holding a time or a day that no state can have written restored, and the
// state then overflowed int64 arithmetic on it (the sessionizer's expiry,
// the reorder buffer's seconds, the visitor memory's retention). Such a
// checkpoint is corrupt: DataLoss, as a gap is.
TEST(CheckpointTest, ValuesNoStateCanHaveWrittenAreDataLoss) {
  const std::vector<TargetSpec> specs = Targets();
  KpiCounters counters({});
  Recorder recorder(&counters);
  PartitionState state(StateOptions(&specs), &recorder);
  absl::Time max_time = absl::InfinitePast();
  for (const Event& e : RandomArrivals(5)) {
    max_time = std::max(max_time, e.time);
    state.Offer(e, max_time - kOutOfOrderness);
    state.Advance(max_time - kOutOfOrderness);
  }
  CheckpointWriter writer(kTp, /*chunk_bytes=*/1 << 30);
  const std::vector<ChangelogRecord> records =
      writer.Write(state, 1000, max_time);
  ASSERT_EQ(records.size(), 1u);
  v1::PartitionCheckpoint good;
  ASSERT_TRUE(good.ParseFromString(*records[0].value));
  ASSERT_GT(good.sessions_size(), 0);
  ASSERT_GT(good.buffered_size(), 0);
  ASSERT_GT(good.visitors().values_size(), 0);
  ASSERT_GT(good.windows_size(), 0);
  ASSERT_GT(good.targets_size(), 0);
  using Tamper = std::function<void(v1::PartitionCheckpoint*)>;
  const std::vector<std::pair<std::string, Tamper>> tampers = {
      {"session first",
       [](auto* c) { c->mutable_sessions(0)->set_first_us(INT64_MAX); }},
      {"session last",
       [](auto* c) { c->mutable_sessions(0)->set_last_us(INT64_MIN); }},
      {"buffered time",
       [](auto* c) { c->mutable_buffered(0)->set_time_us(INT64_MIN); }},
      {"frontier", [](auto* c) { c->set_frontier_us(INT64_MIN + 1); }},
      {"max event time",
       [](auto* c) { c->set_max_event_time_us(INT64_MIN + 1); }},
      {"newest day",
       [](auto* c) { c->set_visitors_newest_day(INT32_MIN + 1); }},
      {"visitor day",
       [](auto* c) { c->mutable_visitors()->set_values(0, INT32_MAX); }},
  };
  auto restore = [&](const v1::PartitionCheckpoint& c) {
    CheckpointReader reader;
    reader.Add(records[0].key, c.SerializeAsString(), false);
    KpiCounters fresh_counters({});
    Recorder fresh_recorder(&fresh_counters);
    PartitionState fresh(StateOptions(&specs), &fresh_recorder);
    return reader.RestoreInto(kTp, &fresh).status();
  };
  auto expect_out_of_range =
      [&](const v1::PartitionCheckpoint& base,
          const std::vector<std::pair<std::string, Tamper>>& changes) {
        for (const auto& [what, tamper] : changes) {
          v1::PartitionCheckpoint bad = base;
          tamper(&bad);
          const absl::Status status = restore(bad);
          EXPECT_TRUE(absl::IsDataLoss(status)) << what << ": " << status;
          EXPECT_THAT(std::string(status.message()),
                      ::testing::HasSubstr("out of range"))
              << what;
        }
      };
  EXPECT_TRUE(restore(good).ok());
  expect_out_of_range(good, tampers);

  // The same events with record offsets: buffered ones are references.
  PartitionState by_reference(StateOptions(&specs), &recorder);
  int64_t offset = 0;
  max_time = absl::InfinitePast();
  for (const Event& e : RandomArrivals(5)) {
    max_time = std::max(max_time, e.time);
    EventView view = e.view();
    view.record_offset = offset++;
    by_reference.Offer(view, max_time - kOutOfOrderness);
    by_reference.Advance(max_time - kOutOfOrderness);
  }
  CheckpointWriter ref_writer(kTp, /*chunk_bytes=*/1 << 30);
  const std::vector<ChangelogRecord> ref_records =
      ref_writer.Write(by_reference, offset, max_time);
  ASSERT_EQ(ref_records.size(), 1u);
  v1::PartitionCheckpoint refs;
  ASSERT_TRUE(refs.ParseFromString(*ref_records[0].value));
  EXPECT_EQ(refs.buffered_size(), 0);
  ASSERT_EQ(refs.buffered_refs().offsets_size(), good.buffered_size());
  ASSERT_EQ(refs.buffered_refs().time_us_size(), good.buffered_size());
  EXPECT_TRUE(restore(refs).ok());
  expect_out_of_range(
      refs, {{"buffered offset",
              [](auto* c) { c->mutable_buffered_refs()->set_offsets(0, -1); }},
             {"buffered reference time", [](auto* c) {
                c->mutable_buffered_refs()->set_time_us(0, INT64_MAX);
              }}});
  v1::PartitionCheckpoint uneven = refs;
  uneven.mutable_buffered_refs()->add_offsets(offset);
  EXPECT_TRUE(absl::IsDataLoss(restore(uneven))) << restore(uneven);
}

// An idle partition's frontier moves with its thread's watermark while
// nothing else of it changes: said all the same, so that a restart judges
// its next events against it (review: only the hourly full snapshot said
// it, and a restart took events that had been late).
TEST(CheckpointTest, AnIdlePartitionsFrontierIsCheckpointed) {
  KpiCounters counters({});
  Recorder recorder(&counters);
  PartitionState state(StateOptions(nullptr), &recorder);
  CheckpointWriter writer(kTp);
  CheckpointReader reader;
  auto write = [&] {
    size_t records = 0;
    for (const ChangelogRecord& r : writer.Write(state, 1, T0)) {
      reader.Add(r.key, r.value.value_or(""), !r.value.has_value());
      ++records;
    }
    return records;
  };
  Event e;
  e.site_id = "shop";
  e.visitor_id = "a";
  e.event_id = "a1";
  e.time = T0;
  e.page_url = "https://shop.example/";
  state.Offer(e, absl::InfinitePast());
  state.Advance(T0 + absl::Hours(1));  // its session closes
  EXPECT_GT(write(), 0u);
  EXPECT_EQ(write(), 0u) << "nothing changed, nothing to say";
  // Only the frontier moves: said once it is 10 s on, not at every commit.
  state.Advance(T0 + absl::Hours(1) + absl::Seconds(9));
  EXPECT_EQ(write(), 0u);
  state.Advance(T0 + absl::Hours(2));
  EXPECT_GT(write(), 0u);
  // A partition whose events are not judged against it (ad cost, one that
  // forwards its records) does not say it.
  CheckpointWriter forwarding(kTp);
  forwarding.set_frontier_judges(false);
  EXPECT_GT(forwarding.Write(state, 1, T0).size(), 0u);  // the first
  state.Advance(T0 + absl::Hours(3));
  EXPECT_EQ(forwarding.Write(state, 1, T0).size(), 0u);
  PartitionState restored(StateOptions(nullptr), &recorder);
  ASSERT_TRUE(reader.RestoreInto(kTp, &restored).ok());
  EXPECT_EQ(restored.frontier(), T0 + absl::Hours(2));
  // What the frontier passed is late after the restart as before it.
  e.event_id = "a2";
  e.time = T0 + absl::Minutes(90);
  EXPECT_EQ(restored.Offer(e, absl::InfinitePast()),
            PartitionState::Admit::kLate);
}

// The allowed lateness raised across a restart (the dead-letter runbook's
// advice): an event of a session closed under the old one is late, not a
// session of its own, and a repeat of an event before that point is not
// counted again (an audit: lateness 5 min -> 1 h split a closed session in
// two, and a re-sent conversion counted twice). After the point, the new
// lateness holds.
TEST(CheckpointTest, ALatenessRaisedAcrossARestartReopensNothingClosed) {
  std::vector<ClosedSession> closed;
  struct Sink : SessionObserver {
    std::vector<ClosedSession>* closed;
    void OnSessionStarted(const SessionAttributes&, const EventView&) override {
    }
    void OnEvent(const SessionAttributes&, const EventView&) override {}
    void OnSessionClosed(const ClosedSession& s) override {
      closed->push_back(s);
    }
  } sink;
  sink.closed = &closed;
  PartitionState::Options before_options = StateOptions(nullptr);
  before_options.allowed_lateness = absl::Minutes(5);
  PartitionState before(before_options, &sink);
  const Event first = PageAt("v1", "a1", T0);
  const Event second = PageAt("v1", "a2", T0 + absl::Minutes(10));
  EXPECT_EQ(before.Offer(first.view(), absl::InfinitePast()),
            PartitionState::Admit::kAccepted);
  EXPECT_EQ(before.Offer(second.view(), absl::InfinitePast()),
            PartitionState::Admit::kAccepted);
  before.Advance(T0 + absl::Minutes(55));  // v1's session closes
  ASSERT_EQ(closed.size(), 1u);
  CheckpointWriter writer(kTp);
  CheckpointReader reader;
  for (const ChangelogRecord& r : writer.Write(before, 1, T0)) {
    reader.Add(r.key, r.value.value_or(""), !r.value.has_value());
  }
  PartitionState::Options after_options = StateOptions(nullptr);
  after_options.allowed_lateness = absl::Hours(2);
  PartitionState after(after_options, &sink);
  ASSERT_TRUE(reader.RestoreInto(kTp, &after).ok());
  const absl::Time watermark = T0 + absl::Minutes(55);
  EXPECT_EQ(
      after.Offer(PageAt("v1", "a3", T0 + absl::Minutes(20)).view(), watermark),
      PartitionState::Admit::kLate);
  EXPECT_EQ(after.Offer(first.view(), watermark), PartitionState::Admit::kLate);
  // Past where sessions were closed: the new lateness admits it.
  EXPECT_EQ(after.Offer(PageAt("v2", "b1", T0 + absl::Minutes(51)).view(),
                        T0 + absl::Minutes(58)),
            PartitionState::Admit::kAccepted);
  after.Advance(T0 + absl::Hours(5));
  ASSERT_EQ(closed.size(), 2u);
  EXPECT_EQ(closed[1].visitor_id, "v2");
}

// A period target removed for a run and put back: its sums start again at
// the putting back (README), not from the checkpoints written before the
// removal (an audit: 5 sessions, removed, 3, back, 2 read 7, not 2). The
// run without it erases what it dropped in its next checkpoint.
TEST(CheckpointTest, ATargetRemovedAndPutBackStartsAgain) {
  std::vector<TargetSpec> specs(1);
  specs[0].name = "march_sessions";
  specs[0].kpi = "sessions";
  specs[0].value = 100;
  specs[0].period_start = T0 - absl::Hours(24);
  specs[0].period_end = T0 + absl::Hours(24 * 30);
  const std::vector<TargetSpec> none;
  KpiCounters counters({});
  Recorder recorder(&counters);
  CheckpointWriter writer(kTp);
  CheckpointReader reader;
  auto write = [&](PartitionState& state, absl::Time at) {
    for (const ChangelogRecord& r : writer.Write(state, 1, at)) {
      reader.Add(r.key, r.value.value_or(""), !r.value.has_value());
    }
  };
  auto sessions = [&](PartitionState& state, const std::string& run, int n,
                      absl::Time at) {
    for (int i = 0; i < n; ++i) {
      const Event e = PageAt(absl::StrCat(run, i), absl::StrCat(run, i), at);
      state.Offer(e.view(), absl::InfinitePast());
    }
    state.Advance(at + absl::Hours(1));  // they close
  };
  auto total = [&](PartitionState& state, absl::Time now) {
    std::vector<TargetSums> sums(1);
    state.AddTargetSums(now, &sums);
    return sums[0].numerator;
  };
  PartitionState first(StateOptions(&specs), &recorder);
  sessions(first, "a", 5, T0);
  EXPECT_EQ(total(first, T0 + absl::Hours(1)), 5);
  write(first, T0);

  PartitionState removed(StateOptions(&none), &recorder);
  ASSERT_TRUE(reader.RestoreInto(kTp, &removed).ok());
  EXPECT_GT(removed.dropped_target_buckets(), 0u);
  sessions(removed, "b", 3, T0 + absl::Hours(2));
  write(removed, T0 + absl::Hours(2));

  PartitionState back(StateOptions(&specs), &recorder);
  ASSERT_TRUE(reader.RestoreInto(kTp, &back).ok());
  EXPECT_EQ(total(back, T0 + absl::Hours(3)), 0);
  sessions(back, "c", 2, T0 + absl::Hours(4));
  EXPECT_EQ(total(back, T0 + absl::Hours(5)), 2);
}

// While buffered events wait to be read again, nothing is released: not by
// Advance(), not by an event behind the watermark (it waits with them); the
// events read again are released with it in order afterwards.
TEST(CheckpointTest, NothingIsReleasedWhileBufferedEventsAreReadAgain) {
  KpiCounters counters({});
  Recorder recorder(&counters);
  PartitionState state(StateOptions(nullptr), &recorder);
  auto event = [](const std::string& visitor, int second) {
    Event e;
    e.site_id = "shop";
    e.visitor_id = visitor;
    e.event_id = absl::StrCat(visitor, second);
    e.time = T0 + absl::Seconds(second);
    e.page_url = "https://shop.example/";
    return e;
  };
  auto at = [](const Event& e, int64_t offset) {
    EventView view = e.view();
    view.record_offset = offset;
    return view;
  };
  // a at 100 s, b at 110 s: buffered behind a watermark of 50 s.
  const Event a = event("a", 100), b = event("b", 110), c = event("c", 60);
  state.Offer(at(a, 7), T0 + absl::Seconds(50));
  state.Offer(at(b, 8), T0 + absl::Seconds(50));
  state.Advance(T0 + absl::Seconds(50));
  CheckpointWriter writer(kTp, /*chunk_bytes=*/1 << 30);
  CheckpointReader reader;
  for (const ChangelogRecord& r :
       writer.Write(state, 9, T0 + absl::Seconds(110))) {
    reader.Add(r.key, r.value.value_or(""), false);
  }
  PartitionState restored(StateOptions(nullptr), &recorder);
  ASSERT_TRUE(reader.RestoreInto(kTp, &restored).ok());
  EXPECT_EQ(restored.replay_from(), 7);
  EXPECT_EQ(restored.buffered_events(), 2u);
  EXPECT_EQ(restored.Advance(T0 + absl::Hours(5)), 0u);
  EXPECT_EQ(restored.open_sessions(), 0u) << "nothing released";
  // c at 60 s, behind the watermark, not behind the frontier: it waits.
  EXPECT_EQ(restored.Offer(at(c, 9), T0 + absl::Seconds(80)),
            PartitionState::Admit::kAccepted);
  EXPECT_EQ(restored.open_sessions(), 0u);
  EXPECT_EQ(restored.buffered_events(), 3u);
  size_t missing = 0;
  EXPECT_FALSE(restored.WantsReplay(6, &missing));
  ASSERT_TRUE(restored.WantsReplay(7, &missing));
  EXPECT_TRUE(restored.Replay(at(a, 7)));
  ASSERT_TRUE(restored.WantsReplay(8, &missing));
  EventView wrong_time = at(b, 8);
  wrong_time.time += absl::Seconds(1);
  EXPECT_FALSE(restored.Replay(wrong_time)) << "decoded differently: lost";
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(restored.pending_replays(), 0u);
  EXPECT_EQ(restored.replay_from(), -1);
  EXPECT_EQ(restored.Advance(T0 + absl::Seconds(120)), 0u);
  EXPECT_EQ(restored.open_sessions(), 2u) << "a and c";
  EXPECT_EQ(restored.buffered_events(), 0u);
}

}  // namespace
}  // namespace kpistream
