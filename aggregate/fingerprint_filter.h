// FingerprintFilter: which 64-bit fingerprints (StableHash) a store may
// hold, answered from RAM: "no" is certain, "maybe" is wrong for about one
// absent key in a hundred. A Bloom filter, blocked (each key's bits in one
// 64-byte line: one cache miss a lookup) and growing: once it holds as many
// keys as it was sized for, a new layer twice the size of the last takes
// the next ones, and a lookup asks every layer (a scalable Bloom filter,
// Almeida et al. 2007). Keys cannot be removed: a key whose entry was
// deleted stays a "maybe" until the filter is built again.
//
// The engine's local store (engine/local_store.h, RocksDayStore) asks it
// before reading RocksDB: most session starts look up a visitor it never
// saw, and a RocksDB read that finds nothing still searched the memtables
// and every level-0 file's filter (perf: 5 % of the stream threads'
// samples, keyed protobuf input).
//
// ~10 bits a key sized for (1.25 bytes); not thread-safe.
#ifndef KPISTREAM_AGGREGATE_FINGERPRINT_FILTER_H_
#define KPISTREAM_AGGREGATE_FINGERPRINT_FILTER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kpistream {

class FingerprintFilter {
 public:
  // The fewest keys a layer is sized for.
  static constexpr size_t kMinCapacity = 4096;

  // Sized for `expected` keys (at least kMinCapacity) before it grows.
  explicit FingerprintFilter(size_t expected = 0);

  void Add(uint64_t fingerprint);
  // False: `fingerprint` was never added.
  bool MayContain(uint64_t fingerprint) const;

  size_t keys() const { return keys_; }
  size_t layers() const { return layers_.size(); }
  size_t ApproximateBytes() const;

 private:
  struct alignas(64) Block {  // 512 bits, one cache line
    std::array<uint64_t, 8> words{};
  };
  struct Layer {
    std::vector<Block> blocks;
    size_t capacity = 0;  // keys it is sized for
    size_t keys = 0;
  };
  static void AddLayer(std::vector<Layer>* layers, size_t capacity);
  // `mixed`: the key's Mix() (fingerprint_filter.cc).
  static bool Has(const Layer& layer, uint64_t mixed);

  std::vector<Layer> layers_;
  size_t keys_ = 0;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_FINGERPRINT_FILTER_H_
