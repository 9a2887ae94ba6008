// What the aggregation core's ApproximateBytes() count, written once: the
// heap block of a std::string too long for its inline buffer, and a flat
// hash map's slots (one control byte each).
#ifndef KPISTREAM_AGGREGATE_MEMORY_ESTIMATE_H_
#define KPISTREAM_AGGREGATE_MEMORY_ESTIMATE_H_

#include <cstddef>
#include <string>

namespace kpistream {

// libstdc++ keeps up to 15 characters inline; a longer string's block holds
// its capacity, the NUL and about 16 bytes of allocator overhead.
inline size_t StringHeapBytes(const std::string& s) {
  return s.capacity() > 15 ? s.capacity() + 1 + 16 : 0;
}

// A heap block of `n` bytes as glibc's malloc serves it: 8 bytes of
// header, rounded up to 16, at least 32.
constexpr size_t MallocBytes(size_t n) {
  const size_t chunk = (n + 8 + 15) & ~size_t{15};
  return chunk < 32 ? 32 : chunk;
}

// The slots of an absl flat_hash_map<Key, Value> of `capacity`.
template <typename Key, typename Value>
constexpr size_t FlatMapBytes(size_t capacity) {
  return capacity * (sizeof(Key) + sizeof(Value) + 1);
}

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_MEMORY_ESTIMATE_H_
