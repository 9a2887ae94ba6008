#include "aggregate/utf8.h"

#include <cstdint>
#include <cstring>

namespace kpistream {

size_t Utf8SequenceLength(absl::string_view s) {
  if (s.empty()) return 0;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  size_t length;
  unsigned char min_second = 0x80, max_second = 0xBF;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min_second = 0xA0;  // overlong
    if (lead == 0xED) max_second = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min_second = 0x90;  // overlong
    if (lead == 0xF4) max_second = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  if (byte(1) < min_second || byte(1) > max_second) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

bool IsValidUtf8(absl::string_view s) {
  // Eight bytes at a time while they are all ASCII (most text is), then
  // byte by byte, decoding only sequences that are not ASCII.
  constexpr uint64_t kHighBits = 0x8080808080808080ull;
  const char* const end = s.data() + s.size();
  const bool long_enough = s.size() >= 8;
  while (s.size() >= 8) {
    uint64_t word;
    std::memcpy(&word, s.data(), 8);
    if ((word & kHighBits) != 0) break;
    s.remove_prefix(8);
  }
  // An ASCII rest shorter than a word: the last eight bytes, which overlap
  // the ASCII words before it, at once.
  if (long_enough && s.size() < 8) {
    uint64_t word;
    std::memcpy(&word, end - 8, 8);
    if ((word & kHighBits) == 0) return true;
  }
  while (!s.empty()) {
    if (static_cast<unsigned char>(s[0]) < 0x80) {
      s.remove_prefix(1);
      continue;
    }
    const size_t length = Utf8SequenceLength(s);
    if (length == 0) return false;
    s.remove_prefix(length);
  }
  return true;
}

absl::string_view CutUtf8(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t keep = max_bytes;
  // Back to the first byte of the character the cut falls in.
  while (keep > 0 && (static_cast<unsigned char>(s[keep]) & 0xC0) == 0x80) {
    --keep;
  }
  return s.substr(0, keep);
}

std::string EscapeInvalidUtf8(absl::string_view s) {
  if (IsValidUtf8(s)) return std::string(s);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + 8);
  while (!s.empty()) {
    const size_t length = Utf8SequenceLength(s);
    if (length > 0) {
      out.append(s.data(), length);
      s.remove_prefix(length);
      continue;
    }
    const unsigned char byte = static_cast<unsigned char>(s[0]);
    out.push_back('%');
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 15]);
    s.remove_prefix(1);
  }
  return out;
}

bool IsPrintableUtf8(absl::string_view s) {
  while (!s.empty()) {
    const size_t length = Utf8SequenceLength(s);
    if (length == 0) return false;
    const unsigned char c = static_cast<unsigned char>(s[0]);
    if (length == 1 && (c < 0x20 || c == 0x7F)) return false;  // C0, DEL
    if (length == 2 && c == 0xC2 && static_cast<unsigned char>(s[1]) < 0xA0) {
      return false;  // C1: U+0080 to U+009F
    }
    s.remove_prefix(length);
  }
  return true;
}

}  // namespace kpistream
