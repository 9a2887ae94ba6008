// Benchmarks of the aggregation core alone (no Kafka, no HTTP): protobuf
// decode + validation, reorder buffer + sessionizer, and KPI counting, with
// one million concurrently open sessions; a partition's life with sessions
// closing, KPI windows and commits' checkpoints (PartitionLifecycle); and
// JSON decode + validation alone, libprotobuf's JSON parser against the
// simdjson reader (issue 9, item 2).
//
//   build/bench/aggregate_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
//   build/bench/aggregate_bench --benchmark_filter=DecodeJson
//       --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// Reported: events/s (items_per_second) on one core, heap bytes per open
// session (measured with mallinfo2 around the warm-up that opens them, and the
// engine's own ApproximateBytes estimate), and operator new calls per timed
// event (issue 9 item 3: no allocation per event on the hot path).
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "aggregate/active_visitors.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/day_store.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "aggregate/target_tracker.h"
#include "aggregate/time_text.h"
#include "benchmark/benchmark.h"
#include "google/protobuf/util/json_util.h"
#include "ingest/event_decoder.h"
#include "kpistream/v1/web_event.pb.h"
#include "tests/allocation_counter.h"

namespace kpistream {
namespace {

constexpr int kVisitors = 1'000'000;
constexpr int kTimedEvents = 2'000'000;
const absl::Time kStart = absl::FromUnixSeconds(1767225600);

const char* const kPages[] = {"/",       "/products/1", "/products/2",
                              "/blog/a", "/cart",       "/checkout",
                              "/signup", "/pricing"};
const char* const kAgents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 "
    "Safari/604.1"};

// Serialized WebEvents of realistic size (~300 bytes).
std::string MakeEvent(std::mt19937_64& rng, int visitor, absl::Time time,
                      uint64_t id) {
  v1::WebEvent e;
  e.set_event_id(absl::StrFormat("e-%016x", id));
  const int64_t micros = absl::ToUnixMicros(time);
  e.mutable_event_time()->set_seconds(micros / 1000000);
  e.mutable_event_time()->set_nanos(static_cast<int32_t>(micros % 1000000) *
                                    1000);
  e.set_site_id("shop");
  e.set_visitor_id(absl::StrFormat("v-%016x", visitor * 0x9E3779B97F4A7C15ull));
  const int r = static_cast<int>(rng() % 100);
  e.set_type(r < 70 ? v1::PAGE_VIEW : r < 95 ? v1::ENGAGEMENT : v1::CONVERSION);
  e.set_page_url(absl::StrCat("https://shop.example.com", kPages[rng() % 8]));
  e.set_page_title("Shop Example - Products");
  if (rng() % 3 == 0) e.set_referrer("https://www.google.com/");
  if (rng() % 4 == 0) {
    e.set_utm_source("newsletter");
    e.set_utm_medium("email");
    e.set_utm_campaign("winter-sale");
  }
  e.set_device_category(rng() % 2 ? "desktop" : "mobile");
  e.set_country(rng() % 2 ? "DE" : "US");
  e.set_user_agent(kAgents[rng() % 2]);
  e.set_session_number(1 + rng() % 3);
  if (e.type() == v1::CONVERSION) {
    e.mutable_conversion()->set_goal(rng() % 2 ? "signup" : "purchase");
    e.mutable_conversion()->set_value_micros(19990000);
    e.mutable_conversion()->set_currency("EUR");
    e.mutable_conversion()->set_order_id(absl::StrFormat("o-%d", id));
  }
  return e.SerializeAsString();
}

struct Workload {
  std::vector<std::string> warmup;  // one event per visitor: opens the sessions
  std::vector<std::string> timed;   // events of random visitors, in time order
};

const Workload& GetWorkload() {
  static const Workload* workload = [] {
    auto* w = new Workload();
    std::mt19937_64 rng(7);
    uint64_t id = 0;
    // Warm-up: 1M visitors start a session within the first 10 minutes.
    for (int v = 0; v < kVisitors; ++v) {
      w->warmup.push_back(MakeEvent(
          rng, v, kStart + absl::Milliseconds(v * 600000LL / kVisitors), id++));
    }
    // Timed: the next 10 minutes, every event continuing some open session.
    for (int i = 0; i < kTimedEvents; ++i) {
      const int v = static_cast<int>(rng() % kVisitors);
      w->timed.push_back(
          MakeEvent(rng, v,
                    kStart + absl::Minutes(10) +
                        absl::Milliseconds(i * 600000LL / kTimedEvents),
                    id++));
    }
    return w;
  }();
  return *workload;
}

// Arena and mmap'ed blocks: glibc serves big vectors and hash tables (the
// session slots, the fingerprint index) with mmap, which uordblks alone
// leaves out (figures before 2026-11-28 17:30 UTC did).
size_t HeapInUse() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Decode + validate + dedup + reorder + sessionize + channel + count, per
// event, as the engine does it (watermark advanced every 10,000 events).
void BM_DecodeSessionizeCount(benchmark::State& state) {
  const Workload& w = GetWorkload();
  for (auto _ : state) {
    state.PauseTiming();
    auto counters = std::make_unique<KpiCounters>(KpiCounters::Options{});
    const size_t heap_before = HeapInUse();
    ChannelClassifier channels;
    auto partition = std::make_unique<PartitionState>(
        SessionRules{}, absl::Minutes(5), counters.get(), &channels,
        absl::Hours(1));
    EventDecoder decoder(InputFormat::kProtobuf, absl::Hours(24 * 3650));
    EventView event;  // views of the record, as the engine decodes
    const absl::Time now = kStart + absl::Hours(1);
    absl::Time max_time = absl::InfinitePast();
    auto feed = [&](const std::string& bytes) {
      if (!decoder.Decode(bytes, now, &event).ok) return;
      if (event.time > max_time) max_time = event.time;
      partition->Offer(event, max_time - absl::Seconds(30));
    };
    for (const std::string& bytes : w.warmup) feed(bytes);
    partition->Advance(max_time - absl::Seconds(30));
    const size_t open = partition->open_sessions();
    const double heap_per_session =
        static_cast<double>(HeapInUse() - heap_before) / open;
    const double estimate_per_session =
        static_cast<double>(partition->ApproximateBytes()) / open;
    state.ResumeTiming();

    size_t n = 0;
    testing::AllocationCounter allocations;
    for (const std::string& bytes : w.timed) {
      feed(bytes);
      if (++n % 10000 == 0) partition->Advance(max_time - absl::Seconds(30));
    }
    partition->Advance(max_time - absl::Seconds(30));
    const int64_t allocated = allocations.Stop();

    state.PauseTiming();
    state.counters["allocations_per_event"] =
        static_cast<double>(allocated) / kTimedEvents;
    state.counters["open_sessions"] = static_cast<double>(open);
    state.counters["heap_bytes_per_open_session"] = heap_per_session;
    state.counters["estimated_bytes_per_open_session"] = estimate_per_session;
    partition.reset();
    counters.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kTimedEvents);
}
BENCHMARK(BM_DecodeSessionizeCount)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// A checkpoint sink that makes each chunk's bytes as the engine's changelog
// writer does (engine/checkpoint_log.cc: sessions appended as they come,
// the rest of the chunk serialized after them, a chunk cut at 512 KiB), then
// discards them.
class DropCheckpoints : public CheckpointSink {
 public:
  v1::PartitionCheckpoint* chunk() override { return &chunk_; }
  void AddSession(absl::string_view session) override {
    sessions_.push_back(static_cast<char>(0x52));  // field 10, bytes
    uint32_t size = static_cast<uint32_t>(session.size());
    while (size >= 0x80) {
      sessions_.push_back(static_cast<char>(size | 0x80));
      size >>= 7;
    }
    sessions_.push_back(static_cast<char>(size));
    sessions_.append(session.data(), session.size());
    Added(session.size() + 3);
  }
  void Added(size_t bytes) override {
    bytes_ += bytes;
    if (bytes_ >= kChunkBytes) Cut();
  }
  // The checkpoint's last chunk; the buffers' memory is given back.
  void Finish() {
    Cut();
    std::string().swap(sessions_);
  }

 private:
  static constexpr size_t kChunkBytes = 512 << 10;
  void Cut() {
    chunk_.AppendToString(&sessions_);
    benchmark::DoNotOptimize(sessions_.data());
    sessions_.clear();
    chunk_.Clear();
    bytes_ = 0;
  }
  v1::PartitionCheckpoint chunk_;
  std::string sessions_;
  size_t bytes_ = 0;
};

// A partition's life as the engine lives it on the end-to-end benchmark's
// workload, scaled to one partition: sessions that start, go on and close
// over three hours of event time, events 0-20 s out of order and 1 %
// repeated (up to 40 s later), the watermark 20 s behind the newest event,
// and every 1,000 events a commit's work (KPI window snapshots and an
// incremental checkpoint, both discarded). BM_DecodeSessionizeCount keeps
// 1 M sessions open and closes none; this one has the closes, windows and
// checkpoints that the engine's profile shows, in a process whose
// instructions callgrind counts repeatably:
//
//   valgrind --tool=callgrind --toggle-collect='*RunLifecycle*'
//       build/bench/aggregate_bench --benchmark_filter=PartitionLifecycle
struct LifecycleWorkload {
  std::vector<std::string> events;  // in arrival order
};

const LifecycleWorkload& GetLifecycleWorkload() {
  static const LifecycleWorkload* workload = [] {
    constexpr int kSessions = 60'000;
    constexpr int kLifecycleVisitors = 40'000;  // some come back
    const absl::Duration span = absl::Hours(3);
    std::mt19937_64 rng(13);
    struct Timed {
      absl::Time arrives;
      int visitor;
      absl::Time time;
    };
    std::vector<Timed> timed;
    for (int s = 0; s < kSessions; ++s) {
      const int visitor = static_cast<int>(rng() % kLifecycleVisitors);
      absl::Time t = kStart + absl::Milliseconds(static_cast<int64_t>(
                                  rng() % absl::ToInt64Milliseconds(span)));
      // 1 + geometric: 6.7 events a session on average, 5-60 s apart
      // (sessions of one visitor less than 30 minutes apart are one).
      do {
        const absl::Duration disorder =
            absl::Milliseconds(static_cast<int64_t>(rng() % 20'000));
        timed.push_back({t + disorder, visitor, t});
        if (rng() % 100 == 0) timed.push_back({t + 2 * disorder, visitor, t});
        t += absl::Seconds(5 + static_cast<int64_t>(rng() % 56));
      } while (rng() % 100 < 85);
    }
    std::sort(timed.begin(), timed.end(), [](const Timed& a, const Timed& b) {
      return a.arrives < b.arrives;
    });
    auto* w = new LifecycleWorkload();
    for (size_t i = 0; i < timed.size(); ++i) {
      // Each event's bytes come from an rng seeded by its visitor and time:
      // a repeat is its original byte for byte (the same event_id).
      std::mt19937_64 event_rng(
          static_cast<uint64_t>(timed[i].visitor) * 1'000'003u +
          static_cast<uint64_t>(absl::ToUnixMillis(timed[i].time)));
      const uint64_t event_id = event_rng();
      w->events.push_back(
          MakeEvent(event_rng, timed[i].visitor, timed[i].time, event_id));
    }
    return w;
  }();
  return *workload;
}

// One partition's life over the workload (what callgrind counts).
__attribute__((noinline)) void RunLifecycle(const LifecycleWorkload& w,
                                            size_t* closed, size_t* snapshots) {
  KpiCounters::Options counter_options;
  SessionRules rules;
  rules.funnels.push_back({"checkout",
                           {{"products", "/products/*", ""},
                            {"cart", "/cart", ""},
                            {"purchase", "", "purchase"}}});
  counter_options.rules = rules;
  KpiCounters counters(counter_options);
  ChannelClassifier channels;
  PartitionState::Options options;
  options.rules = rules;
  options.dedup_horizon = absl::Hours(1);
  options.kpi_window = absl::Minutes(1);
  PartitionState partition(options, &counters, &channels);
  EventDecoder decoder(InputFormat::kProtobuf, absl::Hours(24 * 3650));
  EventView event;
  DropCheckpoints drop;
  const absl::Time now = kStart + absl::Hours(4);
  absl::Time max_time = absl::InfinitePast();
  int64_t offset = 0;
  for (const std::string& bytes : w.events) {
    // As the engine decodes: the view carries its record's offset (the
    // reorder buffer checkpoints such an event by reference).
    if (decoder.Decode(bytes, now, &event).ok) {
      event.record_offset = offset;
      if (event.time > max_time) max_time = event.time;
      partition.Offer(event, max_time - absl::Seconds(20));
    }
    ++offset;
    if (offset % 100 == 0) {
      *closed += partition.Advance(max_time - absl::Seconds(20));
    }
    if (offset % 1000 == 0) {
      partition.CollectWindows(max_time - absl::Seconds(20) - absl::Minutes(5),
                               [&](const WindowKpis&) { ++*snapshots; });
      partition.Checkpoint(false, &drop);
      drop.Finish();
      counters.Commit();
    }
  }
  *closed += partition.Drain();
}

void BM_PartitionLifecycle(benchmark::State& state) {
  const LifecycleWorkload& w = GetLifecycleWorkload();
  size_t closed = 0, snapshots = 0;
  for (auto _ : state) RunLifecycle(w, &closed, &snapshots);
  state.counters["sessions_closed"] = static_cast<double>(closed);
  state.counters["window_snapshots"] = static_cast<double>(snapshots);
  state.SetItemsProcessed(state.iterations() * w.events.size());
}
BENCHMARK(BM_PartitionLifecycle)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// A day store that keeps nothing, standing in for the engine's local store
// (RocksDB, engine/local_store.h), whose RAM is fixed by its options and
// measured by state_bench: here it leaves the session state alone in the
// heap.
class NoDays final : public DayStore {
 public:
  std::optional<int32_t> Get(uint64_t) override { return std::nullopt; }
  void Put(uint64_t, int32_t) override {}
  void ExpireBefore(int32_t) override {}
  size_t ApproximateBytes() const override { return 0; }
};

// Heap per open session of the session state alone, as the engine holds it:
// the visitors' and orders' days in the local store, no dedup (its memory is
// per event id within processing.dedup_horizon, not per session; measured
// with it by BM_DecodeSessionizeCount), no buffered event. The same 1 M
// visitors' first events, each opening a session; mallinfo2 before and
// after. The argument: the percentage of sessions whose event carries a
// user id (20 characters), as a site with logged-in users sends them.
void BM_OpenSessionHeap(benchmark::State& state) {
  const Workload& w = GetWorkload();
  for (auto _ : state) {
    auto counters = std::make_unique<KpiCounters>(KpiCounters::Options{});
    ChannelClassifier channels;
    std::vector<Event> events(w.warmup.size());
    EventDecoder decoder(InputFormat::kProtobuf, absl::Hours(24 * 3650));
    const absl::Time now = kStart + absl::Hours(1);
    size_t n = 0;
    for (const std::string& bytes : w.warmup) {
      if (decoder.Decode(bytes, now, &events[n]).ok) ++n;
    }
    const int64_t with_user = state.range(0);
    for (size_t i = 0; i < n; ++i) {
      if (static_cast<int64_t>(i % 100) < with_user) {
        events[i].user_id = absl::StrFormat("u-%018d", i);
      }
    }
    const size_t heap_before = HeapInUse();
    auto partition = std::make_unique<PartitionState>(
        SessionRules{}, absl::Minutes(5), counters.get(), &channels);
    partition->UseDayStores(std::make_unique<NoDays>(),
                            std::make_unique<NoDays>());
    absl::Time max_time = absl::InfinitePast();
    for (size_t i = 0; i < n; ++i) {
      if (events[i].time > max_time) max_time = events[i].time;
      partition->Offer(events[i], max_time - absl::Seconds(30));
    }
    // Every event applied (the reorder buffer's memory is per buffered
    // event, bounded by processing.max_out_of_orderness; not session
    // state): no session closes, the last event is 30 minutes from expiry.
    partition->Advance(max_time);
    // Two incremental checkpoints (discarded), as the engine's commits
    // write them: the first writes every session and empties the list of
    // sessions changed since the last; the second, with nothing changed,
    // gives that list's capacity back (a burst's, not a commit interval's).
    DropCheckpoints drop;
    partition->Checkpoint(false, &drop);
    drop.Finish();
    partition->Checkpoint(false, &drop);
    drop.Finish();
    const size_t open = partition->open_sessions();
    state.counters["open_sessions"] = static_cast<double>(open);
    state.counters["heap_bytes_per_open_session"] =
        static_cast<double>(HeapInUse() - heap_before) / open;
    state.counters["estimated_bytes_per_open_session"] =
        static_cast<double>(partition->ApproximateBytes()) / open;
    partition.reset();
    counters.reset();
  }
}
BENCHMARK(BM_OpenSessionHeap)
    ->Arg(0)
    ->Arg(33)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// Decode + validate alone, for the breakdown (into views of the record, as
// the engine decodes).
void BM_DecodeOnly(benchmark::State& state) {
  const Workload& w = GetWorkload();
  EventDecoder decoder(InputFormat::kProtobuf, absl::Hours(24 * 3650));
  EventView event;
  const absl::Time now = kStart + absl::Hours(1);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(decoder.Decode(w.timed[i], now, &event).ok);
    if (++i == w.timed.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeOnly);

// The same kind of events in the canonical proto3 JSON mapping, as a web
// collector or kcat sends them (camelCase names, int64 as strings, RFC 3339
// times; ~400 bytes).
const std::vector<std::string>& JsonEvents() {
  static const std::vector<std::string>* events = [] {
    auto* v = new std::vector<std::string>();
    std::mt19937_64 rng(11);
    v1::WebEvent m;
    for (int i = 0; i < 100'000; ++i) {
      m.ParseFromString(
          MakeEvent(rng, i % 50'000, kStart + absl::Milliseconds(i * 10LL), i));
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(m, &json);
      v->push_back(std::move(json));
    }
    return v;
  }();
  return *events;
}

// `E`: what `decode` decodes into (an Event, or an EventView).
template <typename E, typename Decode>
void RunJsonDecode(benchmark::State& state, Decode decode) {
  const std::vector<std::string>& events = JsonEvents();
  const absl::Time now = kStart + absl::Hours(1);
  E event;
  size_t i = 0;
  int64_t bytes = 0;
  int64_t rejected = 0;
  for (auto _ : state) {
    const std::string& json = events[i];
    const bool ok = decode(json, now, &event);
    benchmark::DoNotOptimize(ok);
    rejected += !ok;
    bytes += static_cast<int64_t>(json.size());
    if (++i == events.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
  state.counters["rejected"] = static_cast<double>(rejected);  // must be 0
}

// Before issue 9: libprotobuf's JsonStringToMessage into a reused WebEvent,
// then the same validation (EventDecoder::DecodeMessage).
void BM_DecodeJsonProtobuf(benchmark::State& state) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Hours(24 * 3650));
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  v1::WebEvent message;
  RunJsonDecode<Event>(state, [&](const std::string& json, absl::Time now,
                                  Event* event) {
    message.Clear();
    return google::protobuf::util::JsonStringToMessage(json, &message, options)
               .ok() &&
           decoder.DecodeMessage(&message, now, event).ok;
  });
}
BENCHMARK(BM_DecodeJsonProtobuf);

// Now: EventDecoder for `format: json` (simdjson On-Demand into views of
// the record, as the engine decodes).
void BM_DecodeJsonSimdjson(benchmark::State& state) {
  EventDecoder decoder(InputFormat::kJson, absl::Hours(24 * 3650));
  RunJsonDecode<EventView>(
      state, [&](const std::string& json, absl::Time now, EventView* event) {
        return decoder.Decode(json, now, event).ok;
      });
}
BENCHMARK(BM_DecodeJsonSimdjson);

// Targets: a closed session offered to 8 targets (rates, counts, a period,
// with filters), and the evaluation of all of them over a day of 1-minute
// buckets (what every /metrics publish does per partition).
std::vector<TargetSpec> BenchTargets() {
  std::vector<TargetSpec> specs;
  const char* kpis[] = {"bounce_rate",     "engagement_rate",
                        "conversion_rate", "pageviews_per_session",
                        "sessions",        "revenue",
                        "orders"};
  for (const char* kpi : kpis) {
    TargetSpec t;
    t.name = kpi;
    t.kpi = kpi;
    t.value = 0.5;
    t.window = absl::Hours(24);
    t.filter = {{"site", "shop"}};
    if (std::string(kpi) == "conversion_rate") t.filter["goal"] = "signup";
    if (std::string(kpi) == "revenue") t.filter["currency"] = "EUR";
    specs.push_back(t);
  }
  TargetSpec period;
  period.name = "q4_orders";
  period.kpi = "orders";
  period.value = 5000;
  period.period_start = kStart - absl::Hours(24);
  period.period_end = kStart + absl::Hours(24 * 90);
  specs.push_back(period);
  return specs;
}

void BM_TargetsOnSessionClosed(benchmark::State& state) {
  const std::vector<TargetSpec> specs = BenchTargets();
  TargetTracker tracker(&specs, absl::Minutes(30));
  ClosedSession s;
  s.site_id = "shop";
  s.channel = "Organic Search";
  s.device_category = "mobile";
  s.country = "DE";
  s.pageviews = 3;
  s.engaged = true;
  s.conversions = {{"signup", 1}};
  s.revenue = {{"EUR", 25'000'000}};
  s.orders = 1;
  int64_t i = 0;
  for (auto _ : state) {
    s.start = kStart + absl::Seconds(i++ % 86400);
    s.end = s.start + absl::Minutes(2);
    tracker.OnSessionClosed(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TargetsOnSessionClosed);

void BM_TargetsEvaluateFullDay(benchmark::State& state) {
  const std::vector<TargetSpec> specs = BenchTargets();
  TargetTracker tracker(&specs, absl::Minutes(30));
  ClosedSession s;
  s.site_id = "shop";
  s.bounced = true;
  s.pageviews = 1;
  for (int minute = 0; minute < 1440; ++minute) {
    s.start = kStart + absl::Minutes(minute);
    s.end = s.start;
    tracker.OnSessionClosed(s);
  }
  const absl::Time now = kStart + absl::Hours(24);
  std::vector<TargetSums> sums;
  for (auto _ : state) {
    sums.assign(specs.size(), TargetSums{});
    tracker.AddTo(now, &sums);
    benchmark::DoNotOptimize(sums.data());
  }
  state.counters["buckets"] = static_cast<double>(tracker.buckets());
}
BENCHMARK(BM_TargetsEvaluateFullDay);

// A rejection detail's time (a late event's dead letter writes two):
// TimeText against absl's general formatter, in UTC and as called before
// (the local zone), on the same microsecond times.
template <typename Format>
void RunTimeFormat(benchmark::State& state, Format format) {
  std::mt19937_64 rng(9);
  std::vector<absl::Time> times(4096);
  for (absl::Time& t : times) {
    t = kStart + absl::Microseconds(static_cast<int64_t>(rng() % 86400000000));
  }
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(format(times[i]));
    i = (i + 1) % times.size();
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_TimeText(benchmark::State& state) { RunTimeFormat(state, TimeText); }
BENCHMARK(BM_TimeText);
void BM_TimeTextAbsl(benchmark::State& state) {
  RunTimeFormat(state, [](absl::Time t) {
    return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
  });
}
BENCHMARK(BM_TimeTextAbsl);
// What the details called before: absl::FormatTime(t), in the local zone.
void BM_TimeTextAbslLocal(benchmark::State& state) {
  RunTimeFormat(state, [](absl::Time t) { return absl::FormatTime(t); });
}
BENCHMARK(BM_TimeTextAbslLocal);

// Realtime visitors (ActiveVisitors::Observe, once per accepted event): the
// engine's share of a thread at the benchmark topic's scale, 100,000
// visitors of one site within the windows, events of random visitors a
// microsecond apart; the argument is the batch (1: each lookup alone, as
// before 2026-11-30). Counted every 100,000 events, as a publish would.
void BM_ActiveVisitorsObserve(benchmark::State& state) {
  constexpr int kActive = 100000;
  std::mt19937_64 rng(13);
  std::vector<std::string> visitors;
  for (int v = 0; v < kActive; ++v) {
    visitors.push_back(absl::StrFormat("v-%016x", v * 0x9E3779B97F4A7C15ull));
  }
  // The events' visitor ids in arrival order, read one after the other as
  // the engine reads each decoded event's.
  std::vector<std::string> stream(1 << 20);
  for (std::string& v : stream) v = visitors[rng() % kActive];
  ActiveVisitors active(static_cast<size_t>(state.range(0)));
  absl::Time now = kStart;
  for (const std::string& v : visitors) active.Observe("shop", v, now);
  size_t i = 0;
  int64_t counted = 0;
  for (auto _ : state) {
    now += absl::Microseconds(1);
    active.Observe("shop", stream[i], now);
    i = (i + 1) & (stream.size() - 1);
    if (i % 100000 == 0) counted += active.CountsAt(now)["shop"].last_5m;
  }
  benchmark::DoNotOptimize(counted);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ActiveVisitorsObserve)->Arg(1)->Arg(16);

}  // namespace
}  // namespace kpistream

BENCHMARK_MAIN();
