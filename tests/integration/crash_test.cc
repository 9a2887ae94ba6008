// durability_test's crash test (ExpectCrashAndRestartsExactlyOnce in
// fleet.h) on the embedded broker (`kpistream broker`, librdkafka's mock
// cluster): two instances, loadgen traffic, one SIGKILLed and restarted, the
// other SIGTERMed and restarted; a read_committed consumer of the sessions
// topic must hold exactly the batch's sessions and the counters must equal
// the batch's. The mock creates no topic on request (an unknown one appears
// with 4 partitions), so every topic is created here with the partition
// counts of the Kafka variant.
//
// DISABLED: it cannot pass reliably there, and its passes prove nothing of
// the crash (README, "Tests and brokers"). librdkafka's mock (2.0.2, and
// still its current source) has no transaction isolation: a read_committed
// consumer sees what the killed instance's open transaction wrote (its forwards
// to the repartition topic are read, then read again from its successor:
// counters off by the events read twice). And it ignores group.instance.id and
// rebalances only after a member's session timeout, so instance b often has no
// partition yet when it is SIGTERMed, and librdkafka 2.0.2 aborts on destroying
// a cooperative-sticky consumer that never had an assignment (exit 134;
// librdkafka issue #4312, fixed in 2.3.0). Run it with
// --gtest_also_run_disabled_tests to see both.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/fleet.h"
#include "tests/integration/kafka_cluster.h"
#include "tests/integration/test_support.h"

namespace kpistream::testing {
namespace {

constexpr int kPartitions = 6;

class CrashTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    options_.group = UniqueKafkaName("crash");
    options_.input = options_.group + "-events";
    options_.sessions = options_.group + "-sessions";
    broker_ = std::make_unique<BrokerProcess>(std::vector<std::string>{
        absl::StrCat(options_.input, ":", kPartitions),
        options_.sessions + ":3", options_.input + "-dead:1",
        absl::StrCat(options_.group, "-changelog:", kPartitions),
        absl::StrCat(options_.group, "-repartition:", kPartitions)});
    ASSERT_FALSE(broker_->bootstrap().empty()) << broker_->process().Stderr();
    options_.bootstrap = broker_->bootstrap();
  }

  std::unique_ptr<BrokerProcess> broker_;
  FleetOptions options_;
};

TEST_P(CrashTest, DISABLED_CrashAndRestartsAreExactlyOnce) {
  Fleet fleet(options_);
  ExpectCrashAndRestartsExactlyOnce(fleet, GetParam(), kPartitions);
}

INSTANTIATE_TEST_SUITE_P(EmbeddedBroker, CrashTest,
                         ::testing::Values("visitor", "none"), LoadgenKeyName);

}  // namespace
}  // namespace kpistream::testing
