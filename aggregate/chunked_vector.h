// ChunkedVector: a growing array in fixed chunks of 2^kChunkBits elements,
// for state that grows to millions of elements and is addressed by index
// (the sessionizer's slots). Unlike std::vector it never holds more than one
// partly filled chunk (a doubling vector may hold up to twice what it
// needs), never copies or moves its elements when it grows, and keeps their
// addresses stable.
#ifndef KPISTREAM_AGGREGATE_CHUNKED_VECTOR_H_
#define KPISTREAM_AGGREGATE_CHUNKED_VECTOR_H_

#include <cstddef>
#include <memory>
#include <vector>

namespace kpistream {

template <typename T, int kChunkBits = 9>
class ChunkedVector {
 public:
  static constexpr size_t kChunk = size_t{1} << kChunkBits;

  T& operator[](size_t i) { return chunks_[i >> kChunkBits][i & (kChunk - 1)]; }
  const T& operator[](size_t i) const {
    return chunks_[i >> kChunkBits][i & (kChunk - 1)];
  }
  size_t size() const { return size_; }
  size_t capacity() const { return chunks_.size() * kChunk; }
  // The heap held (the elements' chunks and the chunk table).
  size_t HeapBytes() const {
    return capacity() * sizeof(T) + chunks_.capacity() * sizeof(chunks_[0]);
  }

  // Appends a value-initialized element and returns it.
  T& emplace_back() {
    if (size_ == capacity()) chunks_.push_back(std::make_unique<T[]>(kChunk));
    return (*this)[size_++];
  }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  size_t size_ = 0;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_CHUNKED_VECTOR_H_
