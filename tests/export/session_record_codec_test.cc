#include "export/session_record_codec.h"

#include <set>
#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ClosedSession FullSession() {
  ClosedSession s;
  s.site_id = "shop";
  s.visitor_id = "v-42";
  s.user_id = "u-7";
  s.start = absl::FromUnixMillis(1790000000123);
  s.end = s.start + absl::Seconds(95) + absl::Milliseconds(500);
  s.pageviews = 4;
  s.events = 9;
  s.engaged = true;
  s.bounced = false;
  s.single_page = false;
  s.new_visitor = true;
  s.channel = "Paid Search";
  s.source = "google";
  s.medium = "cpc";
  s.campaign = "spring_sale";
  s.landing_page = "https://shop.example/landing?utm_source=google";
  s.exit_page = "https://shop.example/checkout/done";
  s.device_category = "mobile";
  s.country = "DE";
  s.conversions = {{"purchase", 1}, {"signup", 2}};
  s.revenue = {{"EUR", 49990000}, {"USD", 1500000}};
  s.orders = 1;
  return s;
}

TEST(SessionRecordCodecTest, MapsEveryField) {
  const ClosedSession s = FullSession();
  v1::SessionRecord r;
  ToSessionRecord(s, &r);

  EXPECT_EQ(r.site_id(), "shop");
  EXPECT_EQ(r.visitor_id(), "v-42");
  EXPECT_EQ(r.user_id(), "u-7");
  EXPECT_EQ(r.session_id(), "v-42:1790000000123");
  EXPECT_EQ(r.start().seconds(), 1790000000);
  EXPECT_EQ(r.start().nanos(), 123000000);
  EXPECT_EQ(r.end().seconds(), 1790000095);
  EXPECT_EQ(r.end().nanos(), 623000000);
  EXPECT_DOUBLE_EQ(r.duration_seconds(), 95.5);
  EXPECT_EQ(r.pageviews(), 4u);
  EXPECT_EQ(r.events(), 9u);
  EXPECT_TRUE(r.engaged());
  EXPECT_FALSE(r.bounced());
  EXPECT_FALSE(r.single_page());
  EXPECT_TRUE(r.new_visitor());
  EXPECT_EQ(r.channel(), "Paid Search");
  EXPECT_EQ(r.source(), "google");
  EXPECT_EQ(r.medium(), "cpc");
  EXPECT_EQ(r.campaign(), "spring_sale");
  EXPECT_EQ(r.landing_page(), s.landing_page);
  EXPECT_EQ(r.exit_page(), s.exit_page);
  EXPECT_EQ(r.device_category(), "mobile");
  EXPECT_EQ(r.country(), "DE");
  ASSERT_EQ(r.conversions_size(), 2);
  EXPECT_EQ(r.conversions(0).goal(), "purchase");
  EXPECT_EQ(r.conversions(0).conversions(), 1u);
  EXPECT_EQ(r.conversions(1).goal(), "signup");
  EXPECT_EQ(r.conversions(1).conversions(), 2u);
  ASSERT_EQ(r.revenue_size(), 2);
  EXPECT_EQ(r.revenue(0).currency(), "EUR");
  EXPECT_EQ(r.revenue(0).value_micros(), 49990000);
  EXPECT_EQ(r.revenue(1).currency(), "USD");
  EXPECT_EQ(r.revenue(1).value_micros(), 1500000);
  EXPECT_EQ(r.orders(), 1u);
}

TEST(SessionRecordCodecTest, ReusedRecordIsCleared) {
  v1::SessionRecord r;
  ToSessionRecord(FullSession(), &r);
  ClosedSession bare;
  bare.visitor_id = "v";
  ToSessionRecord(bare, &r);
  EXPECT_EQ(r.conversions_size(), 0);
  EXPECT_EQ(r.revenue_size(), 0);
  EXPECT_EQ(r.site_id(), "");
}

TEST(SessionRecordCodecTest, TimestampsBeforeEpochKeepNanosNonNegative) {
  ClosedSession s;
  s.visitor_id = "v";
  s.start = absl::FromUnixMillis(-1500);
  s.end = absl::FromUnixNanos(7);
  v1::SessionRecord r;
  ToSessionRecord(s, &r);
  EXPECT_EQ(r.start().seconds(), -2);
  EXPECT_EQ(r.start().nanos(), 500000000);
  EXPECT_EQ(r.end().seconds(), 0);
  EXPECT_EQ(r.end().nanos(), 7);
  EXPECT_EQ(r.session_id(), "v:-1500");
}

// Sessions of one visitor that start in one millisecond (a campaign or
// client session split with no time between) have distinct ids.
TEST(SessionRecordCodecTest, ASessionStartingInItsPredecessorsMillisecond) {
  ClosedSession s;
  s.visitor_id = "v";
  s.start = absl::FromUnixMillis(1790000000123);
  s.end = s.start;
  std::set<std::string> ids;
  for (uint32_t repeat : {0u, 1u, 2u}) {
    s.start_repeat = repeat;
    v1::SessionRecord r;
    ToSessionRecord(s, &r);
    ids.insert(r.session_id());
  }
  EXPECT_THAT(ids,
              ::testing::ElementsAre("v:1790000000123", "v:1790000000123-2",
                                     "v:1790000000123-3"));
}

TEST(SessionRecordCodecTest, ProtobufRoundTrip) {
  const std::string bytes =
      EncodeSessionRecord(FullSession(), OutputFormat::kProtobuf);
  v1::SessionRecord decoded;
  ASSERT_TRUE(decoded.ParseFromString(bytes));
  v1::SessionRecord expected;
  ToSessionRecord(FullSession(), &expected);
  EXPECT_EQ(decoded.SerializeAsString(), expected.SerializeAsString());
  EXPECT_EQ(decoded.session_id(), "v-42:1790000000123");
  EXPECT_EQ(decoded.revenue(0).value_micros(), 49990000);
  EXPECT_EQ(decoded.conversions(1).goal(), "signup");
}

TEST(SessionRecordCodecTest, JsonIsCanonicalOneLineWithDefaults) {
  ClosedSession s = FullSession();
  s.engaged = false;
  s.bounced = true;
  s.orders = 0;
  const std::string json = EncodeSessionRecord(s, OutputFormat::kJson);

  EXPECT_THAT(json, Not(HasSubstr("\n")));
  EXPECT_THAT(json, HasSubstr("\"visitorId\":\"v-42\""));
  EXPECT_THAT(json, HasSubstr("\"sessionId\":\"v-42:1790000000123\""));
  EXPECT_THAT(json, HasSubstr("\"durationSeconds\":95.5"));
  EXPECT_THAT(json, HasSubstr("\"engaged\":false"));
  EXPECT_THAT(json, HasSubstr("\"bounced\":true"));
  EXPECT_THAT(json, HasSubstr("\"orders\":0"));
  EXPECT_THAT(json, HasSubstr("\"start\":\"2026-09-21T"));
  // int64 is a JSON string in the canonical mapping.
  EXPECT_THAT(json, HasSubstr("\"valueMicros\":\"49990000\""));
  EXPECT_THAT(json, Not(HasSubstr("visitor_id")));

  v1::SessionRecord parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
  v1::SessionRecord expected;
  ToSessionRecord(s, &expected);
  EXPECT_EQ(parsed.SerializeAsString(), expected.SerializeAsString());
}

TEST(SessionRecordCodecTest, JsonPrintsEmptyStringsOfAnEmptySession) {
  ClosedSession s;
  s.visitor_id = "v";
  const std::string json = EncodeSessionRecord(s, OutputFormat::kJson);
  EXPECT_THAT(json, HasSubstr("\"userId\":\"\""));
  EXPECT_THAT(json, HasSubstr("\"engaged\":false"));
  EXPECT_THAT(json, HasSubstr("\"newVisitor\":false"));
  EXPECT_THAT(json, HasSubstr("\"conversions\":[]"));
  // SPEC §4: a missing dimension is "(not set)", as in the metrics' labels.
  EXPECT_THAT(json, HasSubstr("\"country\":\"(not set)\""));
  EXPECT_THAT(json, HasSubstr("\"campaign\":\"(not set)\""));
  EXPECT_THAT(json, HasSubstr("\"deviceCategory\":\"(not set)\""));
}

TEST(SessionRecordCodecTest, OrdersPerCurrencyGoWithTheirRevenue) {
  ClosedSession s;
  s.revenue = {{"EUR", 160000000}};
  s.orders = 4;
  s.orders_by_currency = {{"", 1}, {"EUR", 2}, {"USD", 1}};
  v1::SessionRecord r;
  ToSessionRecord(s, &r);
  ASSERT_EQ(r.revenue_size(), 3);
  EXPECT_EQ(r.revenue(0).currency(), "(not set)");
  EXPECT_EQ(r.revenue(0).orders(), 1u);
  EXPECT_EQ(r.revenue(1).currency(), "EUR");
  EXPECT_EQ(r.revenue(1).value_micros(), 160000000);
  EXPECT_EQ(r.revenue(1).orders(), 2u);
  EXPECT_EQ(r.revenue(2).currency(), "USD");
  EXPECT_EQ(r.revenue(2).value_micros(), 0);
  EXPECT_EQ(r.revenue(2).orders(), 1u);
  EXPECT_EQ(r.orders(), 4u);
}

}  // namespace
}  // namespace kpistream
