// kafka::NewConf: the user's `kafka.properties` reach each client type they
// belong to, and only those (librdkafka warns about the others at every
// client's start).
#include <string>

#include "gtest/gtest.h"
#include "engine/kafka_io.h"
#include "kafka/client.h"

namespace kpistream::kafka {
namespace {

std::string Get(rd_kafka_conf_t* conf, const char* name) {
  char value[256];
  size_t size = sizeof(value);
  if (rd_kafka_conf_get(conf, name, value, &size) != RD_KAFKA_CONF_OK) {
    return "(unknown)";
  }
  return value;
}

ClientSettings Settings(rd_kafka_type_t type) {
  ClientSettings settings;
  settings.type = type;
  settings.brokers = "127.0.0.1:9";
  settings.user = {{"session.timeout.ms", "6001"},
                   {"linger.ms", "17"},
                   {"socket.timeout.ms", "12345"}};
  return settings;
}

TEST(NewConfTest, AProducerLeavesOutConsumerOnlyProperties) {
  auto conf = NewConf(Settings(RD_KAFKA_PRODUCER));
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(Get(conf->get(), "session.timeout.ms"), "45000");  // default
  EXPECT_EQ(Get(conf->get(), "linger.ms"), "17");
  EXPECT_EQ(Get(conf->get(), "socket.timeout.ms"), "12345");
}

TEST(NewConfTest, AConsumerLeavesOutProducerOnlyProperties) {
  auto conf = NewConf(Settings(RD_KAFKA_CONSUMER));
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(Get(conf->get(), "session.timeout.ms"), "6001");
  EXPECT_EQ(Get(conf->get(), "linger.ms"), "5");  // default
  EXPECT_EQ(Get(conf->get(), "socket.timeout.ms"), "12345");
}

TEST(NewConfTest, AnUnknownPropertyIsAnErrorNamingIt) {
  ClientSettings settings = Settings(RD_KAFKA_CONSUMER);
  settings.user["no.such.property"] = "1";
  auto conf = NewConf(settings);
  ASSERT_FALSE(conf.ok());
  EXPECT_NE(std::string(conf.status().message()).find("no.such.property"),
            std::string::npos)
      << conf.status();
}

}  // namespace
// Replacing a fenced client is allowed kMax times within the window; the
// window slides.
TEST(RenewalBudgetTest, ThreeWithinFiveMinutesThenRefusedUntilOneExpires) {
  RenewalBudget budget;
  const absl::Time t0 = absl::FromUnixSeconds(1767225600);
  EXPECT_TRUE(budget.Spend(t0));
  EXPECT_TRUE(budget.Spend(t0 + absl::Minutes(1)));
  EXPECT_TRUE(budget.Spend(t0 + absl::Minutes(2)));
  EXPECT_FALSE(budget.Spend(t0 + absl::Minutes(3)));
  EXPECT_EQ(budget.refused_count(), 4);
  EXPECT_TRUE(budget.Spend(t0 + absl::Minutes(5) + absl::Seconds(1)));
}

}  // namespace kpistream::kafka
