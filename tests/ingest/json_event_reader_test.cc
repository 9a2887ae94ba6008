#include "ingest/json_event_reader.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ingest/event_decoder.h"
#include "simdjson.h"
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
  // The counter counts: a new reader allocates its parser (and its buffer
  // for an input it copies).
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

// simdjson reads past the end of its input: the reader reads an input in
// place when the bytes after it lie in its last byte's page, whatever they
// hold, and copies it when they may lie in the next page.
TEST(JsonEventReaderTest, WhatFollowsTheInputChangesNothing) {
  constexpr size_t kPage = 4096;
  const std::string json = kEvent;
  JsonEventReader reference_reader;
  EventView reference;
  WebEventHeader reference_header;
  std::string detail;
  ASSERT_EQ(reference_reader.Read(json, &reference, &reference_header, &detail),
            JsonEventReader::Status::kRead);

  // Two pages; the input ends `gap` bytes before the first page's end, and
  // what follows it is JSON-looking junk (then the page's zeros).
  auto* pages = static_cast<char*>(std::aligned_alloc(kPage, 2 * kPage));
  ASSERT_NE(pages, nullptr);
  const std::string junk = R"(,"siteId":"junk"}]"\{:1e9)";
  for (size_t gap :
       {size_t{200}, size_t{64}, size_t{63}, size_t{10}, size_t{0}}) {
    SCOPED_TRACE(gap);
    std::memset(pages, 0, 2 * kPage);
    char* begin = pages + kPage - gap - json.size();
    std::memcpy(begin, json.data(), json.size());
    for (size_t i = 0; begin + json.size() + i < pages + 2 * kPage; ++i) {
      begin[json.size() + i] = junk[i % junk.size()];
    }
    JsonEventReader reader;
    EventView e;
    WebEventHeader h;
    ASSERT_EQ(
        reader.Read(absl::string_view(begin, json.size()), &e, &h, &detail),
        JsonEventReader::Status::kRead)
        << detail;
    EXPECT_EQ(e.event_id, reference.event_id);
    EXPECT_EQ(e.site_id, reference.site_id);
    EXPECT_EQ(e.visitor_id, reference.visitor_id);
    EXPECT_EQ(e.page_url, reference.page_url);
    EXPECT_EQ(e.user_agent, reference.user_agent);
    EXPECT_EQ(e.goal, reference.goal);
    EXPECT_EQ(e.order_id, reference.order_id);
    EXPECT_EQ(e.value_micros, reference.value_micros);
    EXPECT_EQ(h.event_time_seconds, reference_header.event_time_seconds);
    EXPECT_EQ(h.event_time_nanos, reference_header.event_time_nanos);
    EXPECT_EQ(h.type, reference_header.type);
    // Read in place (views of the input) only where simdjson's padding lies
    // in the input's last page.
    const bool in_place =
        e.site_id.data() >= begin && e.site_id.data() < begin + json.size();
    // (Under a sanitizer the reader always copies.)
    EXPECT_EQ(in_place, JsonEventReader::ReadsInPlace() &&
                            gap >= simdjson::SIMDJSON_PADDING);
    // A truncated input is not completed by what follows it.
    EXPECT_NE(
        reader.Read(absl::string_view(begin, json.size() - 1), &e, &h, &detail),
        JsonEventReader::Status::kRead);
  }
  std::free(pages);
}

// Keys are matched whole: a name's prefix, extension or a letter changed is
// an unknown field (ignored).
TEST(JsonEventReaderTest, KeysMatchNamesExactly) {
  JsonEventReader reader;
  EventView e;
  WebEventHeader h;
  std::string detail;
  ASSERT_EQ(
      reader.Read(
          R"({"siteId":"s","siteIe":"1","siteI":"2","sitEId":"3","xsiteId":"4",)"
          R"("siteIdx":"5","device_categorz":"6","device_category_":"7",)"
          R"("deviceCategorY":"8","typ":"9","goal":"10","user_agent":"ua",)"
          R"("utm_campaign":"c","utmCampaigN":"11","nanos":"12"})",
          &e, &h, &detail),
      JsonEventReader::Status::kRead)
      << detail;
  EXPECT_EQ(e.site_id, "s");
  EXPECT_TRUE(e.device_category.empty());
  EXPECT_TRUE(e.goal.empty());  // a Conversion field, not a WebEvent one
  EXPECT_EQ(e.user_agent, "ua");
  EXPECT_EQ(e.utm_campaign, "c");
  EXPECT_EQ(h.type, 0);
}

}  // namespace
}  // namespace kpistream
