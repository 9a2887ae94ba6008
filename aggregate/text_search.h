// Searches in text on the per-event path, without what absl::string_view's
// own costs there: its find_first_of() of more than one character builds a
// 256-entry table on every call (UrlPath, per page view with a funnel, took
// ~310 instructions a call; aggregate_bench's PartitionLifecycle, callgrind,
// 2026-12-01).
#ifndef KPISTREAM_AGGREGATE_TEXT_SEARCH_H_
#define KPISTREAM_AGGREGATE_TEXT_SEARCH_H_

#include <cstddef>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace kpistream {

// string_view::find_first_of(chars) for a few characters: the first
// position in `s` of any of them, or npos. One memchr per character, each
// only up to the earliest found so far.
inline size_t FindFirstOf(absl::string_view s, absl::string_view chars) {
  size_t end = s.size();
  for (const char c : chars) {
    if (end == 0) break;
    const void* at = std::memchr(s.data(), c, end);
    if (at != nullptr) {
      end = static_cast<size_t>(static_cast<const char*>(at) - s.data());
    }
  }
  return end == s.size() ? absl::string_view::npos : end;
}

// The position of the "://" that ends `s`'s scheme, or npos: only a scheme
// at the start (RFC 3986: a letter, then letters, digits, '+', '-', '.')
// counts, so that a "://" in a path's query ("/login?next=https://x/y") is
// not taken for one (it made the page "/y").
inline size_t FindSchemeEnd(absl::string_view s) {
  if (s.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(s[0]))) {
    return absl::string_view::npos;
  }
  size_t i = 1;
  while (i < s.size() &&
         (absl::ascii_isalnum(static_cast<unsigned char>(s[i])) ||
          s[i] == '+' || s[i] == '-' || s[i] == '.')) {
    ++i;
  }
  if (s.size() - i >= 3 && s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
    return i;
  }
  return absl::string_view::npos;
}

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_TEXT_SEARCH_H_
