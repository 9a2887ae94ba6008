// FingerprintStore: a map from 64-bit StableHash fingerprints to a small
// time value (a day or a minute number), whose entries expire once the value
// falls behind a moving threshold, with change tracking for checkpoints.
// The three long-lived memories of a partition use it: the Deduplicator
// ((site, visitor, event_id) -> minute), VisitorRecency ((site, visitor) ->
// last day with a session) and OrderOnce ((site, order_id) -> day counted).
//
// Checkpoints: Checkpoint() writes the entries put since the last call (all
// of them with `full`); expired entries need no record, because restoring
// applies the same expiry threshold. That holds as long as a value goes
// down only once it is below a threshold applied already (as the users'
// do: days and minutes that only grow, or PutUnlessAtLeast with the
// threshold): an entry checkpointed, lowered and expired before the next
// checkpoint would otherwise come back with its older value. Restore() adds
// entries from a checkpoint.
//
// Memory: about 16 bytes per entry (flat hash map of 12-byte slots at load
// <= 7/8) plus the changed set until the next checkpoint.
// Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_FINGERPRINT_STORE_H_
#define KPISTREAM_AGGREGATE_FINGERPRINT_STORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "aggregate/memory_estimate.h"
#include "kpistream/v1/state.pb.h"

namespace kpistream {

class FingerprintStore {
 public:
  std::optional<int32_t> Get(uint64_t key) const {
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }

  void Put(uint64_t key, int32_t value) {
    auto [it, inserted] = map_.try_emplace(key, value);
    if (!inserted) {
      if (it->second == value) return;
      it->second = value;
    }
    changed_.push_back(key);
  }

  // Get and Put in one lookup: true, changing nothing, when the entry holds
  // a value >= `at_least`; otherwise Put(key, value) and false.
  bool PutUnlessAtLeast(uint64_t key, int32_t value, int32_t at_least) {
    auto [it, inserted] = map_.try_emplace(key, value);
    if (!inserted) {
      if (it->second >= at_least) return true;
      if (it->second == value) return false;
      it->second = value;
    }
    changed_.push_back(key);
    return false;
  }

  // Forgets every entry whose value is < `threshold` (a full scan: call it
  // when the threshold moves to a new day or minute, not per event).
  void ExpireBefore(int32_t threshold);

  // Passes the changed entries (all with `full`) to `write` and forgets the
  // changes. Returns the number of entries written. An entry changed more
  // than once since the last call may be passed more than once, each time
  // with its current value.
  size_t Checkpoint(bool full,
                    absl::FunctionRef<void(uint64_t key, int32_t value)> write);
  void Restore(const v1::FingerprintMap& in);

  size_t size() const { return map_.size(); }
  size_t ApproximateBytes() const {
    return FlatMapBytes<uint64_t, int32_t>(map_.capacity()) +
           changed_.capacity() * sizeof(uint64_t);
  }

 private:
  absl::flat_hash_map<uint64_t, int32_t> map_;
  std::vector<uint64_t> changed_;  // may hold repeats and expired keys
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_FINGERPRINT_STORE_H_
