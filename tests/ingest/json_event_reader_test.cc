#include "ingest/json_event_reader.h"

#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ingest/event_decoder.h"
#include "tests/allocation_counter.h"

namespace kpistream {
namespace {

constexpr char kEvent[] =
    R"j({"eventId":"e-00000000000000a1","eventTime":"2026-01-01T09:58:20.250Z",)j"
    R"j("siteId":"shop","visitorId":"v-9e3779b97f4a7c15","type":"CONVERSION",)j"
    R"j("pageUrl":"https://shop.example.com/checkout","pageTitle":"Checkout",)j"
    R"j("referrer":"https://www.google.com/","deviceCategory":"Mobile",)j"
    R"j("country":"de","userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 )j"
    R"j(like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)",)j"
    R"j("sessionNumber":2,"conversion":{"goal":"purchase",)j"
    R"j("valueMicros":"19990000","currency":"eur","orderId":"o-161"},)j"
    R"j("collector":{"version":"1.2","tags":["a","b"]}})j";

TEST(JsonEventReaderTest, ReadsTheFieldsAsSent) {
  JsonEventReader reader;
  EventView e;
  WebEventHeader h;
  std::string detail;
  ASSERT_EQ(reader.Read(kEvent, &e, &h, &detail),
            JsonEventReader::Status::kRead)
      << detail;
  EXPECT_TRUE(h.has_event_time);
  EXPECT_EQ(h.event_time_seconds, 1767261500);
  EXPECT_EQ(h.event_time_nanos, 250000000);
  EXPECT_EQ(h.type, 3);
  EXPECT_FALSE(h.unknown_type_name);
  EXPECT_EQ(e.event_id, "e-00000000000000a1");
  EXPECT_EQ(e.device_category, "Mobile");  // not normalized: EventDecoder does
  EXPECT_EQ(e.country, "de");
  EXPECT_EQ(e.currency, "eur");
  EXPECT_EQ(e.value_micros, 19990000);
  EXPECT_EQ(e.session_number, 2u);
  EXPECT_EQ(e.user_agent.substr(0, 11), "Mozilla/5.0");

  // Overwritten, not merged, by the next read.
  ASSERT_EQ(
      reader.Read(R"({"siteId":"other","type":"PAGE_VEIW"})", &e, &h, &detail),
      JsonEventReader::Status::kRead);
  EXPECT_EQ(e.site_id, "other");
  EXPECT_TRUE(e.event_id.empty());
  EXPECT_EQ(e.value_micros, 0);
  EXPECT_FALSE(h.has_event_time);
  EXPECT_EQ(h.type, 0);
  EXPECT_TRUE(h.unknown_type_name);
  EXPECT_EQ(h.type_name, "PAGE_VEIW");
}

TEST(JsonEventReaderTest, LeavesProtobufsLenientDialectToLibprotobuf) {
  JsonEventReader reader;
  EventView e;
  WebEventHeader h;
  std::string detail;
  for (const char* json :
       {R"({'siteId':'s'})", R"({siteId:"s"})", R"({"siteId":"s",})",
        R"({"siteId":"\a"})", "{\"siteId\":\"a\x01\"}", "{}\v", "\f{}",
        R"({"sessionNumber":0x1e})", R"({"sessionNumber":01})", "",
        "{\"siteId\":\"\xff\"}"}) {
    EXPECT_EQ(reader.Read(json, &e, &h, &detail),
              JsonEventReader::Status::kNotStrictJson)
        << json;
  }
  EXPECT_EQ(reader.Read(R"({"siteId":5})", &e, &h, &detail),
            JsonEventReader::Status::kMalformed);
  EXPECT_EQ(detail, "siteId: expected a string, got a number");
  EXPECT_EQ(reader.Read("[]", &e, &h, &detail),
            JsonEventReader::Status::kMalformed);
}

TEST(JsonEventReaderTest, AWarmReaderDoesNotAllocate) {
  JsonEventReader reader;
  EventDecoder decoder(InputFormat::kJson, absl::Hours(1));
  EventView e;
  Event owned;
  WebEventHeader h;
  std::string detail;
  const absl::Time now = absl::FromUnixSeconds(1767261600);
  ASSERT_EQ(reader.Read(kEvent, &e, &h, &detail),
            JsonEventReader::Status::kRead);
  ASSERT_TRUE(decoder.Decode(kEvent, now, &e).ok);
  ASSERT_TRUE(decoder.Decode(kEvent, now, &owned).ok);
  testing::AllocationCounter counter;
  for (int i = 0; i < 1000; ++i) {
    reader.Read(kEvent, &e, &h, &detail);
  }
  const int64_t read_allocations = counter.Stop();
  testing::AllocationCounter decode_counter;
  for (int i = 0; i < 1000; ++i) {
    decoder.Decode(kEvent, now, &e);
    decoder.Decode(kEvent, now, &owned);
  }
  const int64_t decode_allocations = decode_counter.Stop();
  // The counter counts: a new reader allocates its parser and buffer.
  testing::AllocationCounter cold_counter;
  JsonEventReader cold;
  cold.Read(kEvent, &e, &h, &detail);
  const int64_t cold_allocations = cold_counter.Stop();
  EXPECT_EQ(read_allocations, 0);
  EXPECT_EQ(decode_allocations, 0);
  EXPECT_GT(cold_allocations, 0);
}

// The reader recurses into ignored values: deep nesting must not take the
// stack; libprotobuf judges what is deeper than the reader goes.
TEST(JsonEventReaderTest, DeepNestingIsLeftToLibprotobuf) {
  JsonEventReader reader;
  EventView e;
  WebEventHeader h;
  std::string detail;
  auto nested = [](int depth) {
    return R"({"siteId":"s","x":)" + std::string(depth, '[') +
           std::string(depth, ']') + "}";
  };
  EXPECT_EQ(reader.Read(nested(100), &e, &h, &detail),
            JsonEventReader::Status::kRead);
  for (int depth : {200, 1100, 100000}) {
    EXPECT_EQ(reader.Read(nested(depth), &e, &h, &detail),
              JsonEventReader::Status::kNotStrictJson)
        << depth;
  }
  EventDecoder decoder(InputFormat::kJson, absl::Hours(1));
  const std::string deep =
      R"({"siteId":"s","visitorId":"v","type":"PAGE_VIEW",)"
      R"("eventTime":"2026-01-01T09:58:20Z","x":)" +
      std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_TRUE(decoder.Decode(deep, absl::FromUnixSeconds(1767261600), &e).ok);
}

TEST(JsonEventReaderTest, InputsOfAnySizeAndInputsInARow) {
  JsonEventReader reader;
  EventView e;
  WebEventHeader h;
  std::string detail;
  std::string big = R"({"siteId":"s","padding":")" + std::string(1 << 20, 'x') +
                    R"(","visitorId":"v"})";
  ASSERT_EQ(reader.Read(big, &e, &h, &detail), JsonEventReader::Status::kRead);
  EXPECT_EQ(e.visitor_id, "v");
  ASSERT_EQ(reader.Read(R"({"visitorId":"w"})", &e, &h, &detail),
            JsonEventReader::Status::kRead);
  EXPECT_EQ(e.visitor_id, "w");
  EXPECT_TRUE(e.site_id.empty());
}

}  // namespace
}  // namespace kpistream
