// CompactString: an immutable string in one pointer (8 bytes), its length
// and bytes in one heap block (nothing for the empty string). For strings
// held per open session (the visitor id): a std::string takes 32 bytes in
// place plus a heap block for anything longer than 15 characters.
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

  void assign(absl::string_view s) {
    clear();
    if (s.empty()) return;
    const uint32_t n = static_cast<uint32_t>(s.size());
    block_ = static_cast<char*>(::operator new(sizeof(n) + n));
    std::memcpy(block_, &n, sizeof(n));
    std::memcpy(block_ + sizeof(n), s.data(), n);
  }
  void clear() {
    ::operator delete(block_);
    block_ = nullptr;
  }

  size_t size() const {
    if (block_ == nullptr) return 0;
    uint32_t n;
    std::memcpy(&n, block_, sizeof(n));
    return n;
  }
  absl::string_view view() const {
    return block_ == nullptr ? absl::string_view()
                             : absl::string_view(block_ + sizeof(uint32_t),
                                                 size());
  }
  operator absl::string_view() const { return view(); }  // NOLINT

  // The heap this string holds (its block as malloc rounds it).
  size_t HeapBytes() const {
    return block_ == nullptr ? 0 : MallocBytes(sizeof(uint32_t) + size());
  }

 private:
  char* block_ = nullptr;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_COMPACT_STRING_H_
