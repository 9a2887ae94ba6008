// CompactString: an immutable string in one pointer (8 bytes), its length
// and bytes in one heap block (nothing for the empty string). For strings
// held per open session (the visitor id): a std::string takes 32 bytes in
// place plus a heap block for anything longer than 15 characters.
//
// The block starts with the length in one byte (below 255), else 255 and
// four bytes: ids of up to 23 characters (a GA client id has 21) fit
// glibc's smallest chunk, 32 bytes.
#ifndef KPISTREAM_AGGREGATE_COMPACT_STRING_H_
#define KPISTREAM_AGGREGATE_COMPACT_STRING_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/string_view.h"
#include "aggregate/memory_estimate.h"

namespace kpistream {

class CompactString {
 public:
  CompactString() = default;
  explicit CompactString(absl::string_view s) { assign(s); }
  CompactString(const CompactString&) = delete;
  CompactString& operator=(const CompactString&) = delete;
  CompactString(CompactString&& o) noexcept
      : block_(std::exchange(o.block_, nullptr)) {}
  CompactString& operator=(CompactString&& o) noexcept {
    if (this != &o) {
      clear();
      block_ = std::exchange(o.block_, nullptr);
    }
    return *this;
  }
  ~CompactString() { clear(); }

  // The block's address, for a prefetch hint only (reading it would cost the
  // cache miss the hint is meant to hide).
  const void* block_address() const { return block_; }

  // `s` may view this string itself: the old block is freed last.
  void assign(absl::string_view s) {
    char* block = nullptr;
    if (!s.empty()) {
      const size_t prefix = Prefix(s.size());
      block = static_cast<char*>(::operator new(prefix + s.size()));
      if (prefix == 1) {
        block[0] = static_cast<char>(static_cast<uint8_t>(s.size()));
      } else {
        const uint32_t n = static_cast<uint32_t>(s.size());
        block[0] = static_cast<char>(kLong);
        std::memcpy(block + 1, &n, sizeof(n));
      }
      std::memcpy(block + prefix, s.data(), s.size());
    }
    clear();
    block_ = block;
  }
  void clear() {
    ::operator delete(block_);
    block_ = nullptr;
  }

  size_t size() const {
    if (block_ == nullptr) return 0;
    const uint8_t first = static_cast<uint8_t>(block_[0]);
    if (first != kLong) return first;
    uint32_t n;
    std::memcpy(&n, block_ + 1, sizeof(n));
    return n;
  }
  absl::string_view view() const {
    if (block_ == nullptr) return absl::string_view();
    const size_t n = size();
    return absl::string_view(block_ + Prefix(n), n);
  }
  operator absl::string_view() const { return view(); }  // NOLINT

  // The heap this string holds (its block as malloc rounds it).
  size_t HeapBytes() const {
    if (block_ == nullptr) return 0;
    const size_t n = size();
    return MallocBytes(Prefix(n) + n);
  }

 private:
  static constexpr uint8_t kLong = 255;
  static size_t Prefix(size_t n) {
    return n < kLong ? 1 : 1 + sizeof(uint32_t);
  }

  char* block_ = nullptr;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_COMPACT_STRING_H_
