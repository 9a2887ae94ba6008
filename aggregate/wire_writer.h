// WireWriter: appends protobuf wire-format fields to a buffer the way
// libprotobuf serializes a proto3 message (fields written in the order the
// caller gives, which must be field-number order; a field at its default —
// an empty string, zero, false — left out), for checkpoint records written
// on every commit without filling a message first (Sessionizer). Held to
// libprotobuf's bytes by tests (tests/aggregate/sessionizer_test.cc).
#ifndef KPISTREAM_AGGREGATE_WIRE_WRITER_H_
#define KPISTREAM_AGGREGATE_WIRE_WRITER_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/string_view.h"

namespace kpistream {

class WireWriter {
 public:
  // Writes from the start of `buffer` (reused: grown, never shrunk, so
  // that a message after a larger one neither allocates nor zero-fills);
  // room for `payload` bytes of strings plus `fields` fields' tags, lengths
  // and numbers is made at once.
  WireWriter(std::string* buffer, size_t payload, size_t fields) {
    const size_t room = payload + fields * kMaxFieldOverhead;
    if (buffer->size() < room) buffer->resize(room);
    begin_ = p_ = buffer->data();
  }
  WireWriter(const WireWriter&) = delete;
  WireWriter& operator=(const WireWriter&) = delete;

  // What was written so far (valid while the buffer is not written again).
  absl::string_view bytes() const {
    return absl::string_view(begin_, static_cast<size_t>(p_ - begin_));
  }

  void String(uint32_t field, absl::string_view v) {
    if (v.empty()) return;
    Varint(field << 3 | 2);
    Varint(v.size());
    std::memcpy(p_, v.data(), v.size());
    p_ += v.size();
  }
  // int64, uint32, bool: a varint (a negative int64 takes ten bytes).
  void Number(uint32_t field, uint64_t v) {
    if (v == 0) return;
    Varint(field << 3);
    Varint(v);
  }
  void Fixed64(uint32_t field, uint64_t v) {
    if (v == 0) return;
    Varint(field << 3 | 1);
    absl::little_endian::Store64(p_, v);
    p_ += 8;
  }
  // An element of a repeated string or bytes field: written even when
  // empty, as libprotobuf writes every element.
  void Element(uint32_t field, absl::string_view v) {
    Message(field, v.size());
    if (!v.empty()) std::memcpy(p_, v.data(), v.size());
    p_ += v.size();
  }
  // An embedded message of `size` bytes (its fields are written next):
  // its tag and length, written even when empty (an element of a repeated
  // message field).
  void Message(uint32_t field, size_t size) {
    Varint(field << 3 | 2);
    Varint(size);
  }

  // The bytes String() and Number() write, for the size of a message.
  static size_t StringSize(uint32_t field, absl::string_view v) {
    return v.empty() ? 0
                     : VarintSize(field << 3) + VarintSize(v.size()) + v.size();
  }
  static size_t NumberSize(uint32_t field, uint64_t v) {
    return v == 0 ? 0 : VarintSize(field << 3) + VarintSize(v);
  }
  static size_t VarintSize(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
      v >>= 7;
      ++n;
    }
    return n;
  }

 private:
  // A tag (field numbers up to 2^28: five bytes), then a length (five) or
  // a number (ten), plus slack.
  static constexpr size_t kMaxFieldOverhead = 16;
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }

  char* begin_;
  char* p_;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_WIRE_WRITER_H_
