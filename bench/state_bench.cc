// state_bench: what the long-lived state of a partition costs per million
// visitors (issue 8, item 3): the visitors' first-seen days (VisitorRecency,
// 400 days) and the order ids (OrderOnce, 30 days), both FingerprintStores
// held in memory and checkpointed to the state changelog.
//
// For each store, per million entries:
//  * heap: mallinfo2() before and after filling it the way the engine does
//    (entries arrive in event-time order over the retention, an incremental
//    checkpoint every 10,000 entries, as the engine's 1 s commits do), and
//    after a restore (which reserves the map at once);
//  * full checkpoint: FingerprintStore::Checkpoint(full) into
//    FingerprintMap chunks of ~512 KB, serialized (what a full snapshot
//    writes), its time and bytes;
//  * restore: parsing those chunks and DayRetention::Restore, its time.
// Then the engine's own path for the visitor store: a PartitionState fed
// one page view per visitor through Offer/Advance (sessions open and close,
// the recency store remembers each visitor), a full checkpoint through
// CheckpointWriter, and CheckpointReader::RestoreInto a fresh state (the
// engine's restore, less reading the records from Kafka). Last, the local
// store the engine keeps those days in by default (RocksDB): time to fill,
// memory, disk, changelog bytes, a restart's reopening, then a session
// start's lookup of a returning visitor (the store's files read) and of a
// new one (the key filter answers), and a rebuild of an empty store from the
// changelog's day records.
//
//   build/bench/state_bench [--visitors 1000000] [--rounds 3]
//
// Not a test: BENCHMARKS.md has the figures.
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "aggregate/partition_state.h"
#include "aggregate/stable_hash.h"
#include "aggregate/visitor_recency.h"
#include "engine/checkpoint_log.h"
#include "engine/local_store.h"
#include "kpistream/v1/state.pb.h"

namespace kpistream {
namespace {

// In use: the arena's and the mmap'ed blocks' (big arrays, such as a hash
// map's of a million entries, are mmap'ed until glibc raises its threshold).
size_t HeapBytes() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

double Seconds(absl::Time since) {
  return absl::ToDoubleSeconds(absl::Now() - since);
}

const absl::Time kStart = absl::FromUnixSeconds(1767225600);  // 2026-01-01

struct StoreFigures {
  double heap_per_entry = 0;           // filled as the engine does
  double heap_per_entry_restored = 0;  // after a restore
  double approx_per_entry = 0;         // FingerprintStore::ApproximateBytes
  double checkpoint_bytes_per_entry = 0;
  double checkpoint_s = 0;  // full checkpoint, serialized
  double restore_s = 0;     // parse + Restore
  size_t entries = 0;
};

// Fills a DayRetention of `retention_days` with `n` fingerprints spread over
// `span_days` (event-time order), then checkpoints and restores it.
StoreFigures MeasureStore(size_t n, int32_t retention_days, int32_t span_days,
                          const char* prefix) {
  StoreFigures f;
  const size_t heap0 = HeapBytes();
  auto* days = new DayRetention(retention_days);
  const int32_t first_day = UnixDay(kStart);
  for (size_t i = 0; i < n; ++i) {
    const int32_t day = first_day + static_cast<int32_t>(
                                        i * span_days / std::max<size_t>(n, 1));
    const uint64_t key = StableHash("shop", absl::StrCat(prefix, i));
    days->store().memory()->Put(key, day);
    days->SeeDay(day);
    if (i % 10000 == 9999) {
      days->store().memory()->Checkpoint(false, [](uint64_t, int32_t) {});
    }
  }
  days->store().memory()->Checkpoint(false, [](uint64_t, int32_t) {});
  f.entries = days->store().memory()->size();
  const double entries = static_cast<double>(f.entries);
  f.heap_per_entry = static_cast<double>(HeapBytes() - heap0) / entries;
  f.approx_per_entry =
      static_cast<double>(days->store().memory()->ApproximateBytes()) / entries;

  // A full snapshot: chunks of ~512 KB (14 bytes an entry), serialized.
  const size_t per_chunk = (512 << 10) / 14;
  std::vector<std::string> chunks;
  absl::Time t = absl::Now();
  {
    v1::FingerprintMap m;
    days->store().memory()->Checkpoint(true, [&](uint64_t key, int32_t day) {
      m.add_keys(key);
      m.add_values(day);
      if (static_cast<size_t>(m.keys_size()) >= per_chunk) {
        chunks.push_back(m.SerializeAsString());
        m.Clear();
      }
    });
    if (m.keys_size() > 0) chunks.push_back(m.SerializeAsString());
  }
  f.checkpoint_s = Seconds(t);
  size_t bytes = 0;
  for (const std::string& c : chunks) bytes += c.size();
  f.checkpoint_bytes_per_entry = static_cast<double>(bytes) / entries;
  const int32_t newest = days->newest_day();
  delete days;

  const size_t heap1 = HeapBytes();
  t = absl::Now();
  auto* restored = new DayRetention(retention_days);
  {
    v1::FingerprintMap m;
    for (const std::string& c : chunks) {
      if (!m.ParseFromString(c)) std::abort();
      restored->Restore(m, newest);
    }
  }
  f.restore_s = Seconds(t);
  if (restored->store().memory()->size() != f.entries) {
    std::fprintf(stderr, "restored %zu of %zu entries\n",
                 restored->store().memory()->size(), f.entries);
    std::exit(1);
  }
  chunks.clear();
  chunks.shrink_to_fit();
  f.heap_per_entry_restored =
      static_cast<double>(HeapBytes() - heap1) / entries;
  delete restored;
  return f;
}

class Quiet : public SessionObserver {
 public:
  void OnSessionStarted(const SessionAttributes&, const EventView&) override {}
  void OnEvent(const SessionAttributes&, const EventView&) override {}
  void OnSessionClosed(const ClosedSession&) override { ++closed; }
  size_t closed = 0;
};

struct EngineFigures {
  double heap_per_visitor = 0;
  double checkpoint_s = 0;
  double checkpoint_bytes = 0;
  size_t records = 0;
  double restore_s = 0;
  size_t restored_bytes = 0;  // a full checkpoint of the restored state
};

// One page view per visitor over 399 days, through PartitionState.
EngineFigures MeasureEnginePath(size_t n) {
  EngineFigures f;
  Quiet quiet;
  const size_t heap0 = HeapBytes();
  auto* state = new PartitionState(SessionRules{}, absl::Minutes(5), &quiet);
  const absl::Duration step = absl::Hours(24 * 399) / static_cast<double>(n);
  std::string visitor, event_id;
  absl::Time time = kStart;
  for (size_t i = 0; i < n; ++i) {
    time = kStart + step * static_cast<double>(i);
    visitor = absl::StrCat("visitor-", i);
    event_id = absl::StrCat("e", i);
    EventView e;
    e.time = time;
    e.type = EventType::kPageView;
    e.site_id = "shop";
    e.visitor_id = visitor;
    e.event_id = event_id;
    e.page_url = "https://shop.example/";
    state->Offer(e, time - absl::Seconds(30));
    if (i % 1000 == 999) state->Advance(time - absl::Seconds(30));
    if (i % 10000 == 9999) {
      // The engine's incremental checkpoint every commit (discarded here).
      class Drop : public CheckpointSink {
       public:
        v1::PartitionCheckpoint* chunk() override { return &c; }
        void AddSession(absl::string_view session) override {
          Added(session.size());
        }
        void Added(size_t) override { c.Clear(); }
        v1::PartitionCheckpoint c;
      } drop;
      state->Checkpoint(false, &drop);
    }
  }
  // Every session closes; the visitors stay remembered.
  state->Advance(time + absl::Hours(2));
  f.heap_per_visitor =
      static_cast<double>(HeapBytes() - heap0) / static_cast<double>(n);

  const TopicPartition tp{"web.events", 0};
  CheckpointWriter writer(tp);
  absl::Time t = absl::Now();
  std::vector<ChangelogRecord> records =
      writer.Write(*state, static_cast<int64_t>(n), time, /*force_full=*/true);
  f.checkpoint_s = Seconds(t);
  f.records = records.size();
  for (const ChangelogRecord& r : records) {
    f.checkpoint_bytes += static_cast<double>(r.key.size() + r.value->size());
  }
  delete state;

  t = absl::Now();
  CheckpointReader reader;
  for (const ChangelogRecord& r : records) reader.Add(r.key, *r.value, false);
  auto* restored = new PartitionState(SessionRules{}, absl::Minutes(5), &quiet);
  auto position = reader.RestoreInto(tp, restored);
  f.restore_s = Seconds(t);
  if (!position.ok() || position->next_offset != static_cast<int64_t>(n)) {
    std::fprintf(stderr, "restore failed: %s\n",
                 position.status().ToString().c_str());
    std::exit(1);
  }
  CheckpointWriter again(tp);
  for (const ChangelogRecord& r :
       again.Write(*restored, static_cast<int64_t>(n), time, true)) {
    f.restored_bytes += r.key.size() + r.value->size();
  }
  delete restored;
  return f;
}

// The engine's default since the local store: the visitors' days in
// RocksDB (engine/local_store.h), one changelog record per entry.
struct LocalFigures {
  double fill_s = 0;          // Get + Put per visitor, commits every 10,000
  double heap_per_entry = 0;  // heap growth (RocksDB's included) / entries
  size_t store_memory = 0;    // block cache + write buffers at the end
  double disk_per_entry = 0;  // the store's files / entries
  double changelog_per_entry = 0;  // day records' key + value bytes
  double cold_restore_s = 0;       // an empty store rebuilt from those records
  double reopen_s = 0;             // a restart: the store opened again
  double filter_s = 0;             // then the filter of its keys built
  double filter_bytes_per_entry = 0;
  // Then a session start's lookup (RocksDayStore::Get) of a returning
  // visitor (a key the store holds: its table files are read) and of a new
  // one (the key filter answers), microseconds each, in random order.
  double returning_lookup_us = 0;
  double new_lookup_us = 0;
};

size_t DirBytes(const std::string& dir) {
  size_t bytes = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) bytes += entry.file_size(ec);
  }
  return bytes;
}

LocalFigures MeasureLocalStore(size_t n) {
  LocalFigures f;
  const std::string base =
      (std::filesystem::temp_directory_path() / "kpistream-state-bench")
          .string();
  std::error_code ignored;
  std::filesystem::remove_all(base, ignored);
  const TopicPartition tp{"web.events", 0};
  // The day records written, as (key, value) of the changelog; kept
  // compactly (fingerprint, day) and left out of the heap figure.
  std::vector<std::pair<uint64_t, int32_t>> changelog;
  changelog.reserve(n + 1);
  const size_t heap0 = HeapBytes();
  {
    auto store = LocalStore::Open({base + "/live"});
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(store.status().message()).c_str());
      std::exit(1);
    }
    DayRetention days(400);
    days.set_store(std::make_unique<RocksDayStore>(store->get(), tp, 'v'));
    auto* rocks = static_cast<RocksDayStore*>(&days.store());
    // As the engine's restore leaves it: new visitors answered by the
    // filter of the stored keys.
    if (!rocks->LoadFilter().ok()) std::exit(1);
    const int32_t first_day = UnixDay(kStart);
    const absl::Time t0 = absl::Now();
    std::vector<ChangelogRecord> records;
    auto commit = [&] {
      records.clear();
      rocks->ChangelogRecords(&records);
      for (const ChangelogRecord& r : records) {
        f.changelog_per_entry += r.key.size() + r.value.value_or("").size();
        TopicPartition at;
        char kind = 0;
        uint64_t fingerprint = 0;
        int32_t day = 0;
        if (!ParseDayKey(r.key, &at, &kind, &fingerprint) ||
            !ParseDayValue(r.value.value_or(""), &day)) {
          std::exit(1);
        }
        changelog.push_back({fingerprint, day});
      }
      LocalStore::Batch batch;
      rocks->Committed(&batch);
      if (!(*store)->Write(&batch).ok()) std::exit(1);
    };
    for (size_t i = 0; i < n; ++i) {
      const int32_t day =
          first_day + static_cast<int32_t>(i * 399 / std::max<size_t>(n, 1));
      const uint64_t key = StableHash("shop", absl::StrCat("visitor-", i));
      const std::optional<int32_t> previous = days.store().Get(key);
      days.SeeDay(day);
      days.Remember(key, std::max(previous.value_or(day), day));
      if ((i + 1) % 10000 == 0) commit();
    }
    commit();
    f.fill_s = Seconds(t0);
    f.store_memory = (*store)->MemoryBytes();
    f.heap_per_entry =
        static_cast<double>(HeapBytes() - heap0) / static_cast<double>(n);
  }
  f.disk_per_entry =
      static_cast<double>(DirBytes(base + "/live")) / static_cast<double>(n);
  f.changelog_per_entry /= static_cast<double>(n);
  {
    const absl::Time t0 = absl::Now();
    auto store = LocalStore::Open({base + "/live"});
    if (!store.ok()) std::exit(1);
    (void)(*store)->Meta(tp);
    f.reopen_s = Seconds(t0);
    // What a restore then does per partition: the filter of the stored
    // keys (RocksDayStore::LoadFilter), its time and RAM.
    RocksDayStore days(store->get(), tp, 'v');
    const absl::Time t1 = absl::Now();
    if (!days.LoadFilter().ok()) std::exit(1);
    f.filter_s = Seconds(t1);
    f.filter_bytes_per_entry =
        static_cast<double>(days.ApproximateBytes()) / static_cast<double>(n);
    const size_t lookups = std::min<size_t>(n, 200000);
    std::vector<uint64_t> returning, fresh;
    std::mt19937_64 rng(5);
    for (size_t i = 0; i < lookups; ++i) {
      returning.push_back(
          StableHash("shop", absl::StrCat("visitor-", rng() % n)));
      fresh.push_back(StableHash("shop", absl::StrCat("new-", i)));
    }
    size_t found = 0;
    const absl::Time t2 = absl::Now();
    for (uint64_t key : returning) found += days.Get(key).has_value();
    f.returning_lookup_us = Seconds(t2) * 1e6 / static_cast<double>(lookups);
    const absl::Time t3 = absl::Now();
    for (uint64_t key : fresh) found += days.Get(key).has_value();
    f.new_lookup_us = Seconds(t3) * 1e6 / static_cast<double>(lookups);
    if (found != lookups) {
      std::fprintf(stderr, "lookups: %zu found, expected %zu\n", found,
                   lookups);
      std::exit(1);
    }
  }
  {
    // As StreamThread::ReadState applies day records (DayRecordWriter).
    auto store = LocalStore::Open({base + "/cold"});
    if (!store.ok()) std::exit(1);
    const absl::Time t0 = absl::Now();
    DayRecordWriter writer(store->get());
    for (const auto& [fp, d] : changelog) {
      // Each record is parsed as the restore parses it.
      const std::string key = DayKey(tp, 'v', fp);
      const std::string value = absl::StrCat(d);
      TopicPartition at;
      char kind = 0;
      uint64_t fingerprint = 0;
      int32_t day = 0;
      if (!ParseDayKey(key, &at, &kind, &fingerprint) ||
          !ParseDayValue(value, &day)) {
        std::exit(1);
      }
      writer.Apply(at, kind, fingerprint, day);
    }
    if (!writer.Finish().ok()) std::exit(1);
    f.cold_restore_s = Seconds(t0);
    if ((*store)->CountDays(tp, 'v') != n) {
      std::fprintf(stderr, "cold restore: %zu entries, expected %zu\n",
                   (*store)->CountDays(tp, 'v'), n);
      std::exit(1);
    }
  }
  std::filesystem::remove_all(base, ignored);
  return f;
}

int Main(int argc, char** argv) {
  size_t visitors = 1000000;
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--visitors") && i + 1 < argc) {
      visitors = std::strtoull(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: state_bench [--visitors N] [--rounds R]\n");
      return 2;
    }
  }
  const double per_million = 1e6 / static_cast<double>(visitors);
  std::printf("%zu entries per store, %d round(s); times per million entries\n",
              visitors, rounds);
  for (int round = 0; round < rounds; ++round) {
    const StoreFigures v = MeasureStore(visitors, 400, 399, "visitor-");
    const StoreFigures o = MeasureStore(visitors, 30, 29, "order-");
    const EngineFigures e = MeasureEnginePath(visitors);
    for (const auto& [name, f] : {std::make_pair("VisitorRecency (400 d)", v),
                                  std::make_pair("OrderOnce (30 d)", o)}) {
      std::printf(
          "round %d %-22s heap %.1f B/entry (restored %.1f, estimate %.1f); "
          "full checkpoint %.1f B/entry, %.3f s/M; restore %.3f s/M\n",
          round + 1, name, f.heap_per_entry, f.heap_per_entry_restored,
          f.approx_per_entry, f.checkpoint_bytes_per_entry,
          f.checkpoint_s * per_million, f.restore_s * per_million);
    }
    std::printf(
        "round %d engine path (PartitionState, 1 page view per visitor): heap "
        "%.1f B/visitor; full checkpoint %zu record(s), %.1f B/visitor, "
        "%.3f s/M; restore (CheckpointReader) %.3f s/M; re-checkpointed %s\n",
        round + 1, e.heap_per_visitor, e.records,
        e.checkpoint_bytes / static_cast<double>(visitors),
        e.checkpoint_s * per_million, e.restore_s * per_million,
        static_cast<double>(e.restored_bytes) == e.checkpoint_bytes
            ? "identical"
            : "DIFFERENT");
    const LocalFigures l = MeasureLocalStore(visitors);
    std::printf(
        "round %d local store (RocksDB, 400 d visitors): fill (Get+Put, "
        "commit every 10,000) %.3f s/M; heap growth %.1f B/entry; store "
        "memory %.1f MB (block cache + write buffers, bounded by "
        "LocalStore::Options); "
        "disk %.1f B/entry; changelog %.1f B/entry; restart (reopen) %.3f "
        "s, then the key filter %.3f s/M (%.2f B/entry in RAM), a lookup "
        "%.2f us returning visitor, %.2f us new; cold rebuild from the "
        "changelog %.3f s/M\n",
        round + 1, l.fill_s * per_million, l.heap_per_entry,
        static_cast<double>(l.store_memory) / 1e6, l.disk_per_entry,
        l.changelog_per_entry, l.reopen_s, l.filter_s * per_million,
        l.filter_bytes_per_entry, l.returning_lookup_us, l.new_lookup_us,
        l.cold_restore_s * per_million);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace kpistream

int main(int argc, char** argv) { return kpistream::Main(argc, argv); }
