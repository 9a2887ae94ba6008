// StableHash: a 64-bit hash that is the same in every process, on every
// run and in every version of kpistream, for what is persisted or compared
// across processes: state changelog fingerprints (dedup, visitors, orders),
// session keys. absl::Hash is salted per process and must never be used for
// those. MurmurHash64A (Austin Appleby, public domain) over the bytes, with a
// fixed seed; do not change it: checkpoints written by one version are read
// by the next.
//
// Not cryptographic: two chosen inputs can collide, so a fingerprint is
// never the only thing deciding an outcome that input could abuse (the
// Sessionizer compares the full key).
#ifndef KPISTREAM_AGGREGATE_STABLE_HASH_H_
#define KPISTREAM_AGGREGATE_STABLE_HASH_H_

#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"

namespace kpistream {

inline constexpr uint64_t kStableHashSeed =
    0x6b70697374726561ull;  // "kpistrea"

inline uint64_t StableHash(absl::string_view bytes,
                           uint64_t seed = kStableHashSeed) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ull;
  constexpr int r = 47;
  const size_t len = bytes.size();
  uint64_t h = seed ^ (len * m);
  const char* p = bytes.data();
  const char* end = p + (len & ~size_t{7});
  for (; p != end; p += 8) {
    uint64_t k;
    std::memcpy(&k, p, 8);  // little-endian hosts only (x86-64, aarch64)
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  switch (len & 7) {
    case 7:
      h ^= uint64_t(static_cast<unsigned char>(p[6])) << 48;
      [[fallthrough]];
    case 6:
      h ^= uint64_t(static_cast<unsigned char>(p[5])) << 40;
      [[fallthrough]];
    case 5:
      h ^= uint64_t(static_cast<unsigned char>(p[4])) << 32;
      [[fallthrough]];
    case 4:
      h ^= uint64_t(static_cast<unsigned char>(p[3])) << 24;
      [[fallthrough]];
    case 3:
      h ^= uint64_t(static_cast<unsigned char>(p[2])) << 16;
      [[fallthrough]];
    case 2:
      h ^= uint64_t(static_cast<unsigned char>(p[1])) << 8;
      [[fallthrough]];
    case 1:
      h ^= uint64_t(static_cast<unsigned char>(p[0]));
      h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

// The hash of a pair, e.g. (site, visitor): the second part hashed with the
// first's hash as seed, so ("ab", "c") and ("a", "bc") differ.
inline uint64_t StableHash(absl::string_view first, absl::string_view second) {
  return StableHash(second, StableHash(first) ^ 0x9e3779b97f4a7c15ull);
}

// The hash of a triple, e.g. (site, visitor, order id), the same way.
inline uint64_t StableHash(absl::string_view first, absl::string_view second,
                           absl::string_view third) {
  return StableHash(third, StableHash(first, second) ^ 0x9e3779b97f4a7c15ull);
}

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_STABLE_HASH_H_
