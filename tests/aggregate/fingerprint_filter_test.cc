#include "aggregate/fingerprint_filter.h"

#include <cstdint>
#include <random>
#include <unordered_set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "aggregate/stable_hash.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

// Every key added is a "maybe", in every layer the filter grew.
TEST(FingerprintFilterTest, NeverSaysNoToAKeyItWasGiven) {
  FingerprintFilter filter;
  std::mt19937_64 random(3);
  std::vector<uint64_t> added;
  for (int i = 0; i < 300000; ++i) {
    added.push_back(random());
    filter.Add(added.back());
    // Keys of every layer, while later ones are added.
    if (i % 1000 == 0) {
      for (size_t j = 0; j < added.size(); j += 97) {
        ASSERT_TRUE(filter.MayContain(added[j])) << "key " << j;
      }
    }
  }
  for (uint64_t key : added) ASSERT_TRUE(filter.MayContain(key));
  EXPECT_EQ(filter.keys(), added.size());
  // 4,096, 8,192, ... 262,144 (sum 520,192 >= 300,000).
  EXPECT_EQ(filter.layers(), 7u);
}

// Keys as the engine makes them (StableHash of visitor ids), and keys that
// differ in their low bits only: both spread over the blocks.
TEST(FingerprintFilterTest, SaysNoToMostAbsentKeys) {
  struct Case {
    const char* name;
    uint64_t (*key)(int);
  };
  const Case cases[] = {
      {"stable hashes of visitor ids",
       [](int i) { return StableHash(absl::StrCat("visitor-", i)); }},
      {"consecutive numbers", [](int i) { return static_cast<uint64_t>(i); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FingerprintFilter sized(100000);
    FingerprintFilter grown;  // from 4,096 keys: 5 layers for 100,000
    for (int i = 0; i < 100000; ++i) {
      sized.Add(c.key(i));
      grown.Add(c.key(i));
    }
    EXPECT_EQ(sized.layers(), 1u);
    EXPECT_EQ(grown.layers(), 5u);
    int sized_maybe = 0, grown_maybe = 0;
    const int absent = 200000;
    for (int i = 100000; i < 100000 + absent; ++i) {
      sized_maybe += sized.MayContain(c.key(i));
      grown_maybe += grown.MayContain(c.key(i));
    }
    // A blocked Bloom filter of 10 bits a key and 6 probes: ~1 %; each
    // layer adds its own.
    EXPECT_LT(sized_maybe, absent * 2 / 100) << sized_maybe;
    EXPECT_LT(grown_maybe, absent * 6 / 100) << grown_maybe;
    // ~1.25 bytes a key it is sized for.
    EXPECT_LT(sized.ApproximateBytes(), 100000 * 13 / 10 + 4096);
  }
}

TEST(FingerprintFilterTest, AnEmptyFilterSaysNo) {
  FingerprintFilter filter(1000000);
  std::mt19937_64 random(5);
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(filter.MayContain(random()));
  EXPECT_EQ(filter.keys(), 0u);
}

}  // namespace
}  // namespace kpistream
