// Writes the seed corpus of checkpoint_fuzzer: real changelog records, as
// CheckpointWriter writes them for a PartitionState of the fuzz target's
// configuration (checkpoint_setup.h) with open sessions (conversions,
// orders, revenue, funnels, campaigns), buffered events, dedup, visitor and
// order memories, KPI windows and target buckets, each followed by a short
// script. Run by hand when the checkpoint format changes:
//
//   build/fuzz/tests/fuzz/checkpoint_corpus tests/fuzz/corpus/checkpoint
//
// The same code writes files of the same records and sizes, but not byte
// for byte: a full snapshot writes the dedup, visitor and order entries
// (FingerprintStore) in their hash table's order, which is salted per
// process; the state they restore is the same.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "engine/checkpoint_log.h"
#include "tests/fuzz/checkpoint_setup.h"

namespace kpistream {
namespace {

class Discard : public SessionObserver {
 public:
  void OnSessionStarted(const SessionAttributes&, const EventView&) override {}
  void OnEvent(const SessionAttributes&, const EventView&) override {}
  void OnSessionClosed(const ClosedSession&) override {}
};

// A partition's traffic: `events` events of 16 visitors on two sites,
// minutes apart, with lagging watermarks (so some wait in the buffer) and a
// checkpoint every `every` events.
struct Traffic {
  explicit Traffic(int partition, uint32_t seed)
      : state(fuzz::StateOptions(), &observer, &channels),
        writer({fuzz::kPartition.topic, partition}, /*chunk_bytes=*/2048,
               /*min_full_interval_bytes=*/4096),
        rng(seed) {}

  // Offers `n` events, then advances and writes a checkpoint (a full one
  // when `full`); returns its records.
  std::vector<ChangelogRecord> Run(int n, bool full) {
    for (int i = 0; i < n; ++i) {
      fuzz::EventSpec spec;
      spec.who = static_cast<uint8_t>(rng());
      spec.what = static_cast<uint8_t>(rng());
      spec.extra = static_cast<uint8_t>(rng());
      const int r = static_cast<int>(rng() % 100);
      const EventType type = r < 55   ? EventType::kPageView
                             : r < 75 ? EventType::kEngagement
                             : r < 92 ? EventType::kConversion
                                      : EventType::kCustom;
      // Mostly forward by up to 3 minutes, sometimes a little back.
      time += absl::Seconds(static_cast<int>(rng() % 200) - 20);
      const Event e = fuzz::MakeEvent(type, spec, time);
      state.Offer(e, watermark);
      max_event_time = std::max(max_event_time, time);
      ++offset;
      if (i % 10 == 9) {
        watermark = std::max(watermark, max_event_time - absl::Minutes(3));
        state.Advance(watermark);
      }
    }
    state.CollectWindows(watermark - absl::Minutes(5));
    if (rng() % 3 == 0) {
      state.OnAdCost("shop", "Paid Search", "EUR", 2500000, max_event_time);
    }
    return writer.Write(state, offset, max_event_time, full);
  }

  Discard observer;
  ChannelClassifier channels;
  PartitionState state;
  CheckpointWriter writer;
  std::mt19937 rng;
  absl::Time time = fuzz::kStart;
  absl::Time max_event_time = absl::InfinitePast();
  absl::Time watermark = absl::InfinitePast();
  int64_t offset = 0;
};

// A script of `steps` steps (checkpoint_setup.h ScriptStep) after the
// records: mostly events, with watermark moves, checkpoints and collects.
std::string Script(uint32_t seed, int steps) {
  std::mt19937 rng(seed);
  std::string out(1, static_cast<char>(fuzz::kEndOfRecords));
  for (int i = 0; i < steps; ++i) {
    const int r = static_cast<int>(rng() % 100);
    const uint8_t step = r < 60   ? static_cast<uint8_t>(rng() % 4)
                         : r < 75 ? fuzz::kAdvance
                         : r < 85 ? fuzz::kCheckpoint
                         : r < 95 ? fuzz::kCollect
                                  : fuzz::kAdCost;
    out.push_back(static_cast<char>(step));
    const int operands = step < fuzz::kAdvance ? 4 : 1;
    for (int k = 0; k < operands; ++k) {
      uint8_t b = static_cast<uint8_t>(rng());
      if (step < fuzz::kAdvance && k == 1) b = static_cast<uint8_t>(rng() % 40);
      out.push_back(static_cast<char>(b));
    }
  }
  return out;
}

std::string Encode(const std::vector<ChangelogRecord>& records) {
  std::string out;
  for (const ChangelogRecord& r : records) out += fuzz::EncodeRecord(r);
  return out;
}

// What a compacted topic keeps of `log`: each key's last value, tombstoned
// keys gone.
std::vector<ChangelogRecord> Compacted(
    const std::vector<ChangelogRecord>& log) {
  std::map<std::string, size_t> last;
  for (size_t i = 0; i < log.size(); ++i) last[log[i].key] = i;
  std::vector<ChangelogRecord> out;
  for (size_t i = 0; i < log.size(); ++i) {
    if (last[log[i].key] == i && log[i].value.has_value()) {
      out.push_back(log[i]);
    }
  }
  return out;
}

void Append(std::vector<ChangelogRecord>* log,
            std::vector<ChangelogRecord> records) {
  for (ChangelogRecord& r : records) log->push_back(std::move(r));
}

bool WriteFile(const std::string& dir, const std::string& name,
               const std::string& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::printf("%s/%s: %zu bytes\n", dir.c_str(), name.c_str(), bytes.size());
  return static_cast<bool>(out);
}

int Main(const std::string& dir) {
  bool ok = true;
  Traffic t(0, 7);
  std::vector<ChangelogRecord> log = t.Run(40, false);  // the first: full
  ok &= WriteFile(dir, "full_snapshot", Encode(log) + Script(1, 24));
  Append(&log, t.Run(15, false));
  Append(&log, t.Run(15, false));
  ok &= WriteFile(dir, "snapshot_and_deltas", Encode(log) + Script(2, 24));
  Append(&log, t.Run(20, true));  // tombstones everything before
  Append(&log, t.Run(15, false));
  ok &= WriteFile(dir, "compacted", Encode(Compacted(log)) + Script(3, 32));
  Append(&log, t.Run(10, false));
  ok &= WriteFile(dir, "uncompacted_with_tombstones",
                  Encode(log) + Script(4, 16));

  // Partition 0 beside partition 1 in one changelog partition, interleaved,
  // with a record that is not a checkpoint.
  Traffic a(0, 11), b(1, 12);
  std::vector<ChangelogRecord> mixed;
  for (int round = 0; round < 2; ++round) {
    Append(&mixed, a.Run(15, false));
    Append(&mixed, b.Run(15, false));
  }
  mixed.push_back({"some-other-key", std::string("x")});
  ok &= WriteFile(dir, "two_partitions", Encode(mixed) + Script(5, 24));

  // Structured values: the fuzzer re-encodes them (checkpoint_setup.h).
  // Each with one tweak that changes nothing (the max event time, which only
  // the last chunk carries, set to what it is), for mutations to vary.
  Traffic s(0, 13);
  std::string structured;
  for (const ChangelogRecord& r : s.Run(30, false)) {
    std::string one = fuzz::EncodeRecord(r);
    v1::PartitionCheckpoint c;
    c.ParseFromString(*r.value);
    one[0] = static_cast<char>(
        fuzz::kStructured | (c.full() ? fuzz::kFull : 0) |
        (c.last() ? fuzz::kLast : 0) |
        (c.without_transaction() ? fuzz::kWithoutTransaction : 0));
    structured += one;
    structured.push_back(1);
    structured.push_back(static_cast<char>(fuzz::kMaxEventTime));
    structured.push_back(0);
    const uint64_t bits = static_cast<uint64_t>(c.max_event_time_us());
    for (int i = 0; i < 8; ++i) {
      structured.push_back(static_cast<char>(bits >> (8 * i)));
    }
  }
  ok &= WriteFile(dir, "structured", structured + Script(6, 24));

  // At-least-once: the newest checkpoint's writer stopped midway, before
  // its last chunk (checkpoint_log.h).
  Traffic u(0, 17);
  u.writer.set_without_transaction(true);
  std::vector<ChangelogRecord> stopped = u.Run(30, false);
  Append(&stopped, u.Run(15, false));
  std::vector<ChangelogRecord> newest = u.Run(60, false);
  if (newest.size() < 2) {
    std::fprintf(stderr, "incomplete_newest: the checkpoint has one chunk\n");
    return 1;
  }
  newest.resize(1);  // its first chunk only
  Append(&stopped, std::move(newest));
  ok &= WriteFile(dir, "incomplete_newest", Encode(stopped) + Script(7, 24));
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace kpistream

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  return kpistream::Main(argv[1]);
}
