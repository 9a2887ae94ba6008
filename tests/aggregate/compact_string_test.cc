// CompactString: the bytes and length of any string back, on both sides of
// the one-byte length's bound, and its block in glibc's smallest chunk for
// ids of up to 23 characters.
#include "aggregate/compact_string.h"

#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace kpistream {
namespace {

TEST(CompactStringTest, HoldsEveryLengthAcrossTheShortLengthBound) {
  for (size_t n : {0, 1, 21, 23, 24, 127, 128, 254, 255, 256, 70000}) {
    SCOPED_TRACE(n);
    std::string value(n, 'x');
    for (size_t i = 0; i < n; ++i) value[i] = static_cast<char>(i * 7 + 1);
    CompactString s(value);
    EXPECT_EQ(s.size(), n);
    EXPECT_EQ(s.view(), value);
    CompactString moved(std::move(s));
    EXPECT_EQ(moved.view(), value);
    EXPECT_EQ(s.size(), 0u);  // NOLINT(bugprone-use-after-move)
    moved.assign(moved.view().substr(n / 2));  // a view of itself
    EXPECT_EQ(moved.view(), value.substr(n / 2));
    const std::string one = n == 0 ? std::string("v") : value.substr(0, 1);
    moved.assign(one);
    EXPECT_EQ(moved.view(), one);
  }
}

TEST(CompactStringTest, IdsOfUpTo23CharactersTakeTheSmallestChunk) {
  EXPECT_EQ(CompactString(std::string(21, 'a')).HeapBytes(), 32u);  // GA id
  EXPECT_EQ(CompactString(std::string(23, 'a')).HeapBytes(), 32u);
  EXPECT_EQ(CompactString(std::string(24, 'a')).HeapBytes(), 48u);
  EXPECT_EQ(CompactString(std::string(36, 'a')).HeapBytes(), 48u);  // UUID
  EXPECT_EQ(CompactString().HeapBytes(), 0u);
}

}  // namespace
}  // namespace kpistream
