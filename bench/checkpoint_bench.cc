// checkpoint_bench: what writing a partition's open sessions to the state
// changelog costs (CheckpointWriter::Write, the engine's path at every
// commit: the sessions changed since the last, or all of them in a full
// snapshot). 100,000 open sessions of the e2e workload's shape (18-character
// visitor ids, a landing page, a campaign on every fifth, a user id on every
// tenth); Google Benchmark reports sessions/s of a full snapshot and of an
// incremental checkpoint after 10,000 sessions changed.
//
//   build/bench/checkpoint_bench --benchmark_repetitions=5
//
// Not a test: BENCHMARKS.md has the figures.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "benchmark/benchmark.h"
#include "engine/checkpoint_log.h"

namespace kpistream {
namespace {

constexpr size_t kSessions = 100000;
const absl::Time kStart = absl::FromUnixSeconds(1767225600);  // 2026-01-01

EventView Visit(size_t i, absl::Time time, std::string* visitor,
                std::string* event_id, std::string* page) {
  *visitor = absl::StrFormat("visitor-%010d", i);
  *event_id = absl::StrCat("e", i, "-", absl::ToUnixMicros(time));
  *page = absl::StrCat("https://shop.example/products/", i % 5000);
  EventView e;
  e.time = time;
  e.type = EventType::kPageView;
  e.site_id = "shop";
  e.visitor_id = *visitor;
  e.event_id = *event_id;
  e.page_url = *page;
  e.device_category = "desktop";
  e.country = "DE";
  if (i % 5 == 0) {
    e.utm_source = "newsletter";
    e.utm_medium = "email";
    e.utm_campaign = "spring-sale";
  }
  if (i % 10 == 0) e.user_id = "u-0123456789abcdef";
  return e;
}

struct Fixture {
  KpiCounters counters{KpiCounters::Options{}};
  std::unique_ptr<PartitionState> state;
  absl::Time time = kStart;
  std::string visitor, event_id, page;

  Fixture() {
    state = std::make_unique<PartitionState>(SessionRules{}, absl::Minutes(5),
                                             &counters);
    for (size_t i = 0; i < kSessions; ++i) Touch(i);
  }
  // One more page view of visitor i, a millisecond after the last event;
  // applied at once (the watermark follows).
  void Touch(size_t i) {
    time += absl::Milliseconds(1);
    state->Offer(Visit(i, time, &visitor, &event_id, &page),
                 time - absl::Seconds(30));
    state->Advance(time);
  }
};

Fixture& Shared() {
  static Fixture* f = new Fixture();
  return *f;
}

void BM_FullCheckpoint(benchmark::State& st) {
  Fixture& f = Shared();
  const TopicPartition tp{"web.events", 0};
  size_t bytes = 0;
  for (auto _ : st) {
    CheckpointWriter writer(tp);
    std::vector<ChangelogRecord> records =
        writer.Write(*f.state, 1, f.time, /*force_full=*/true);
    bytes = 0;
    for (const ChangelogRecord& r : records) bytes += r.value->size();
    benchmark::DoNotOptimize(records);
  }
  st.counters["sessions/s"] =
      benchmark::Counter(static_cast<double>(kSessions),
                         benchmark::Counter::kIsIterationInvariantRate);
  st.counters["bytes_per_session"] =
      static_cast<double>(bytes) / static_cast<double>(kSessions);
}
BENCHMARK(BM_FullCheckpoint)->Unit(benchmark::kMillisecond);

void BM_IncrementalCheckpoint(benchmark::State& st) {
  Fixture& f = Shared();
  const TopicPartition tp{"web.events", 0};
  CheckpointWriter writer(tp);
  writer.Write(*f.state, 1, f.time, /*force_full=*/true);
  constexpr size_t kChanged = 10000;
  size_t next = 0;
  for (auto _ : st) {
    st.PauseTiming();
    for (size_t n = 0; n < kChanged; ++n) f.Touch(next++ % kSessions);
    st.ResumeTiming();
    // Force no full snapshot: this measures the changed sessions alone.
    std::vector<ChangelogRecord> records =
        writer.Write(*f.state, 1, f.time, /*force_full=*/false);
    benchmark::DoNotOptimize(records);
  }
  st.counters["sessions/s"] =
      benchmark::Counter(static_cast<double>(kChanged),
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_IncrementalCheckpoint)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kpistream

BENCHMARK_MAIN();
