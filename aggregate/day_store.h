// DayStore: where a partition's long-lived memories (VisitorRecency's
// visitors and OrderOnce's orders, aggregate/visitor_recency.h) keep their
// days, keyed by 64-bit StableHash fingerprints.
//
// Two kinds:
//   MemoryDayStore  a FingerprintStore in RAM, checkpointed with the
//                   partition's state (PartitionState::Checkpoint): the
//                   default, and what the aggregation core's tests use.
//   a persistent store (engine/local_store.h: RocksDB on local disk,
//                   backed by per-entry changelog records), which writes
//                   its own changelog records: memory() is null, and
//                   PartitionState leaves it out of its checkpoints.
// Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_DAY_STORE_H_
#define KPISTREAM_AGGREGATE_DAY_STORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "aggregate/fingerprint_store.h"

namespace kpistream {

class DayStore {
 public:
  virtual ~DayStore() = default;
  virtual std::optional<int32_t> Get(uint64_t key) = 0;
  virtual void Put(uint64_t key, int32_t day) = 0;
  // Forgets every entry whose day is < `threshold` (when the newest day
  // moves: once a day, not per event).
  virtual void ExpireBefore(int32_t threshold) = 0;
  // RAM held by this store alone (a persistent store: its uncommitted
  // changes; the shared database's memory is counted where it is opened).
  virtual size_t ApproximateBytes() const = 0;
  // The in-memory store, checkpointed with the partition's state; null
  // when the store persists itself.
  virtual FingerprintStore* memory() { return nullptr; }
};

class MemoryDayStore final : public DayStore {
 public:
  std::optional<int32_t> Get(uint64_t key) override { return store_.Get(key); }
  void Put(uint64_t key, int32_t day) override { store_.Put(key, day); }
  void ExpireBefore(int32_t threshold) override {
    store_.ExpireBefore(threshold);
  }
  size_t ApproximateBytes() const override { return store_.ApproximateBytes(); }
  FingerprintStore* memory() override { return &store_; }

 private:
  FingerprintStore store_;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_DAY_STORE_H_
