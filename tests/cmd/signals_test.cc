#include "cmd/signals.h"

#include <cstdlib>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

// A teardown that never returns (librdkafka's destroy, in an audit) ends
// with the code the engine's stop earned, and says why.
TEST(ExitIfStillRunningAfterTest, EndsAHungTeardownWithItsCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ExitIfStillRunningAfter(absl::Milliseconds(100), 3,
                                "teardown took too long");
        for (;;) absl::SleepFor(absl::Seconds(1));
      },
      testing::ExitedWithCode(3), "teardown took too long");
}

// A teardown that ends in time exits as it would have: the watchdog never
// speaks.
TEST(ExitIfStillRunningAfterTest, ATeardownInTimeExitsAsItWould) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ExitIfStillRunningAfter(absl::Seconds(30), 3, "teardown took too long");
        std::exit(0);
      },
      testing::ExitedWithCode(0), "^$");
}

}  // namespace
}  // namespace kpistream
