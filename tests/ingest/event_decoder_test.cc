#include "ingest/event_decoder.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kpistream/v1/web_event.pb.h"

namespace kpistream {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1767261600);  // 2026-01-01T10:00Z

v1::WebEvent ValidEvent() {
  v1::WebEvent e;
  e.set_event_id("e1");
  e.mutable_event_time()->set_seconds(1767261500);
  e.mutable_event_time()->set_nanos(250000000);
  e.set_site_id("shop");
  e.set_visitor_id("v1");
  e.set_user_id("u1");
  e.set_session_id("s1");
  e.set_type(v1::CONVERSION);
  e.set_page_url("https://shop.example/thanks");
  e.set_page_title("Thanks");
  e.set_referrer("https://www.google.com/");
  e.set_utm_source("google");
  e.set_utm_medium("cpc");
  e.set_utm_campaign("brand");
  e.set_utm_term("shoes");
  e.set_utm_content("ad-1");
  e.set_click_id("gclid-1");
  e.set_device_category("Mobile");
  e.set_country("de");
  e.set_user_agent("Mozilla/5.0");
  e.set_session_number(3);
  e.mutable_conversion()->set_goal("purchase");
  e.mutable_conversion()->set_value_micros(12340000);
  e.mutable_conversion()->set_currency("eur");
  e.mutable_conversion()->set_order_id("o1");
  return e;
}

// Every field of an Event, for comparing two of them with one EXPECT.
std::string Describe(const Event& e) {
  return absl::StrCat(
      absl::FormatTime(e.time), "|type=", static_cast<int>(e.type),
      "|sn=", e.session_number, "|value=", e.value_micros, "|", e.event_id, "|",
      e.site_id, "|", e.visitor_id, "|", e.user_id, "|", e.page_url, "|",
      e.referrer, "|", e.utm_source, "|", e.utm_medium, "|", e.utm_campaign,
      "|", e.click_id, "|", e.device_category, "|", e.country, "|",
      e.user_agent, "|", e.goal, "|", e.currency, "|", e.order_id);
}

bool IsMissingOrMalformed(absl::string_view reason) {
  return reason == "malformed" || absl::StartsWith(reason, "missing_");
}

// --- Mapping --------------------------------------------------------------

TEST(EventDecoderTest, ValidProtobufMapsEveryField) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  Event e;
  DecodeResult r = decoder.Decode(ValidEvent().SerializeAsString(), kNow, &e);
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_TRUE(r.reason.empty());
  EXPECT_TRUE(r.detail.empty());
  EXPECT_EQ(e.time, absl::FromUnixMillis(1767261500250));
  EXPECT_EQ(e.type, EventType::kConversion);
  EXPECT_EQ(e.event_id, "e1");
  EXPECT_EQ(e.site_id, "shop");
  EXPECT_EQ(e.visitor_id, "v1");
  EXPECT_EQ(e.user_id, "u1");
  EXPECT_EQ(e.page_url, "https://shop.example/thanks");
  EXPECT_EQ(e.referrer, "https://www.google.com/");
  EXPECT_EQ(e.utm_source, "google");
  EXPECT_EQ(e.utm_medium, "cpc");
  EXPECT_EQ(e.utm_campaign, "brand");
  EXPECT_EQ(e.click_id, "gclid-1");
  EXPECT_EQ(e.device_category, "mobile");
  EXPECT_EQ(e.country, "DE");
  EXPECT_EQ(e.user_agent, "Mozilla/5.0");
  EXPECT_EQ(e.session_number, 3u);
  EXPECT_EQ(e.goal, "purchase");
  EXPECT_EQ(e.value_micros, 12340000);
  EXPECT_EQ(e.currency, "EUR");
  EXPECT_EQ(e.order_id, "o1");
}

TEST(EventDecoderTest, EveryEventTypeMaps) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  const std::pair<v1::EventType, EventType> cases[] = {
      {v1::PAGE_VIEW, EventType::kPageView},
      {v1::ENGAGEMENT, EventType::kEngagement},
      {v1::CONVERSION, EventType::kConversion},
      {v1::CUSTOM, EventType::kCustom}};
  for (const auto& [wire, type] : cases) {
    v1::WebEvent m = ValidEvent();
    m.set_type(wire);
    Event e;
    ASSERT_TRUE(decoder.Decode(m.SerializeAsString(), kNow, &e).ok);
    EXPECT_EQ(e.type, type);
  }
}

TEST(EventDecoderTest, ReusedEventIsOverwrittenCompletely) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  Event e;
  ASSERT_TRUE(decoder.Decode(ValidEvent().SerializeAsString(), kNow, &e).ok);
  v1::WebEvent page_view;
  page_view.set_site_id("blog");
  page_view.set_visitor_id("v9");
  page_view.mutable_event_time()->set_seconds(1767261000);
  page_view.set_type(v1::PAGE_VIEW);
  page_view.mutable_conversion()->set_goal("ignored on a page view");
  ASSERT_TRUE(decoder.Decode(page_view.SerializeAsString(), kNow, &e).ok);

  Event expected;
  expected.time = absl::FromUnixSeconds(1767261000);
  expected.type = EventType::kPageView;
  expected.site_id = "blog";
  expected.visitor_id = "v9";
  expected.device_category = "(other)";
  expected.country = "(other)";
  EXPECT_EQ(Describe(e), Describe(expected));
}

TEST(EventDecoderTest, DeviceAndCountryAreNormalized) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  const std::pair<const char*, const char*> devices[] = {
      {"desktop", "desktop"}, {"DESKTOP", "desktop"},  {"Tablet", "tablet"},
      {"mobile", "mobile"},   {"smart-tv", "(other)"}, {"", "(other)"},
      {"mobile ", "(other)"}};
  for (const auto& [in, want] : devices) {
    v1::WebEvent m = ValidEvent();
    m.set_device_category(in);
    Event e;
    ASSERT_TRUE(decoder.Decode(m.SerializeAsString(), kNow, &e).ok);
    EXPECT_EQ(e.device_category, want) << in;
  }
  const std::pair<const char*, const char*> countries[] = {
      {"us", "US"},    {"De", "DE"},      {"GB", "GB"},     {"USA", "(other)"},
      {"", "(other)"}, {"1A", "(other)"}, {"d", "(other)"}, {"é", "(other)"}};
  for (const auto& [in, want] : countries) {
    v1::WebEvent m = ValidEvent();
    m.set_country(in);
    Event e;
    ASSERT_TRUE(decoder.Decode(m.SerializeAsString(), kNow, &e).ok);
    EXPECT_EQ(e.country, want) << in;
  }
}

TEST(EventDecoderTest, ValidJson) {
  EventDecoder decoder(InputFormat::kJson, absl::Minutes(10));
  Event e;
  DecodeResult r = decoder.Decode(
      R"({"eventId":"e2","eventTime":"2026-01-01T00:00:00Z","siteId":"shop",)"
      R"("visitorId":"v2","type":"PAGE_VIEW","pageUrl":"https://shop.example/",)"
      R"("utmSource":"newsletter","deviceCategory":"Desktop","country":"fr",)"
      R"("sessionNumber":1,"unknownField":{"nested":[1,2]}})",
      kNow, &e);
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(e.time, absl::FromUnixSeconds(1767225600));
  EXPECT_EQ(e.type, EventType::kPageView);
  EXPECT_EQ(e.event_id, "e2");
  EXPECT_EQ(e.site_id, "shop");
  EXPECT_EQ(e.visitor_id, "v2");
  EXPECT_EQ(e.page_url, "https://shop.example/");
  EXPECT_EQ(e.utm_source, "newsletter");
  EXPECT_EQ(e.device_category, "desktop");
  EXPECT_EQ(e.country, "FR");
  EXPECT_EQ(e.session_number, 1u);
  EXPECT_EQ(e.goal, "");
}

TEST(EventDecoderTest, JsonConversionWithInt64AsStringOrNumber) {
  EventDecoder decoder(InputFormat::kJson, absl::Minutes(10));
  for (const char* value : {R"("1500000")", "1500000"}) {
    Event e;
    DecodeResult r = decoder.Decode(
        absl::StrCat(
            R"({"eventTime":"2026-01-01T09:59:00.5Z","siteId":"shop",)"
            R"("visitorId":"v2","type":"CONVERSION","deviceCategory":"tv",)"
            R"("conversion":{"goal":"signup","currency":"usd",)"
            R"("orderId":"o-7","valueMicros":)",
            value, "}}"),
        kNow, &e);
    ASSERT_TRUE(r.ok) << value << ": " << r.detail;
    EXPECT_EQ(e.time, kNow - absl::Seconds(59) - absl::Milliseconds(500));
    EXPECT_EQ(e.type, EventType::kConversion);
    EXPECT_EQ(e.goal, "signup");
    EXPECT_EQ(e.value_micros, 1500000);
    EXPECT_EQ(e.currency, "USD");
    EXPECT_EQ(e.order_id, "o-7");
    EXPECT_EQ(e.device_category, "(other)");
    EXPECT_EQ(e.country, "(other)");
  }
}

TEST(EventDecoderTest, JsonEnumAsNumber) {
  EventDecoder decoder(InputFormat::kJson, absl::Minutes(10));
  Event e;
  DecodeResult r = decoder.Decode(
      R"({"eventTime":"2026-01-01T09:00:00Z","siteId":"s","visitorId":"v",)"
      R"("type":2})",
      kNow, &e);
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(e.type, EventType::kEngagement);
}

TEST(EventDecoderTest, JsonAndProtobufGiveTheSameEvent) {
  EventDecoder binary(InputFormat::kProtobuf, absl::Minutes(10));
  EventDecoder json(InputFormat::kJson, absl::Minutes(10));
  std::string text;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(ValidEvent(), &text).ok());
  Event from_binary, from_json;
  ASSERT_TRUE(
      binary.Decode(ValidEvent().SerializeAsString(), kNow, &from_binary).ok);
  ASSERT_TRUE(json.Decode(text, kNow, &from_json).ok) << text;
  EXPECT_EQ(Describe(from_json), Describe(from_binary));
}

// --- Validation -----------------------------------------------------------

TEST(EventDecoderTest, MissingFieldsHaveTheirReason) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  struct Case {
    const char* reason;
    void (*mutate)(v1::WebEvent*);
  };
  const Case cases[] = {
      {"missing_site_id", [](v1::WebEvent* e) { e->clear_site_id(); }},
      {"missing_visitor_id", [](v1::WebEvent* e) { e->clear_visitor_id(); }},
      {"missing_event_time", [](v1::WebEvent* e) { e->clear_event_time(); }},
      {"missing_event_time",
       [](v1::WebEvent* e) {
         e->mutable_event_time()->set_seconds(0);
         e->mutable_event_time()->set_nanos(0);
       }},
      {"missing_type", [](v1::WebEvent* e) { e->clear_type(); }},
      {"missing_type",
       [](v1::WebEvent* e) { e->set_type(static_cast<v1::EventType>(99)); }},
      {"missing_type",
       [](v1::WebEvent* e) { e->set_type(static_cast<v1::EventType>(-1)); }},
      {"missing_goal",
       [](v1::WebEvent* e) { e->mutable_conversion()->clear_goal(); }},
      {"missing_goal", [](v1::WebEvent* e) { e->clear_conversion(); }},
      {"future_event_time",
       [](v1::WebEvent* e) {
         e->mutable_event_time()->set_seconds(1767261600 + 601);
       }},
      {"malformed",
       [](v1::WebEvent* e) { e->mutable_event_time()->set_nanos(-1); }},
      {"malformed",
       [](v1::WebEvent* e) { e->mutable_event_time()->set_nanos(1000000000); }},
      {"malformed",
       [](v1::WebEvent* e) {
         e->mutable_event_time()->set_seconds(253402300800);  // year 10000
       }},
      {"malformed",
       [](v1::WebEvent* e) {
         e->mutable_event_time()->set_seconds(-62135596801);  // year 0
       }},
  };
  for (const Case& c : cases) {
    v1::WebEvent m = ValidEvent();
    c.mutate(&m);
    Event e;
    DecodeResult r = decoder.Decode(m.SerializeAsString(), kNow, &e);
    EXPECT_FALSE(r.ok) << c.reason;
    EXPECT_EQ(r.reason, c.reason) << r.detail;
    EXPECT_FALSE(r.detail.empty());
  }
}

TEST(EventDecoderTest, ValidationOrderIsSiteVisitorTimeTypeGoalFuture) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  v1::WebEvent m = ValidEvent();
  m.mutable_event_time()->set_seconds(1767261600 + 3600);  // future
  m.mutable_conversion()->clear_goal();
  const char* expected[] = {"missing_goal", "missing_type",
                            "missing_event_time", "missing_visitor_id",
                            "missing_site_id"};
  void (*remove[])(v1::WebEvent*) = {
      [](v1::WebEvent* e) { e->clear_type(); },
      [](v1::WebEvent* e) { e->clear_event_time(); },
      [](v1::WebEvent* e) { e->clear_visitor_id(); },
      [](v1::WebEvent* e) { e->clear_site_id(); },
  };
  Event e;
  EXPECT_EQ(decoder.Decode(m.SerializeAsString(), kNow, &e).reason,
            expected[0]);
  for (int i = 0; i < 4; ++i) {
    remove[i](&m);
    EXPECT_EQ(decoder.Decode(m.SerializeAsString(), kNow, &e).reason,
              expected[i + 1]);
  }
}

TEST(EventDecoderTest, FutureEventTimeBoundaryAndDetail) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  v1::WebEvent m = ValidEvent();
  Event e;
  m.mutable_event_time()->set_seconds(1767261600 + 600);  // exactly now + skew
  m.mutable_event_time()->set_nanos(0);
  EXPECT_TRUE(decoder.Decode(m.SerializeAsString(), kNow, &e).ok);
  m.mutable_event_time()->set_nanos(1);
  EXPECT_EQ(decoder.Decode(m.SerializeAsString(), kNow, &e).reason,
            "future_event_time");

  m.mutable_event_time()->set_seconds(1767261600 + 7200);
  m.mutable_event_time()->set_nanos(0);
  DecodeResult r = decoder.Decode(m.SerializeAsString(), kNow, &e);
  EXPECT_EQ(r.reason, "future_event_time");
  EXPECT_EQ(r.detail,
            "event_time 2026-01-01T12:00:00Z is 2h ahead of now "
            "(2026-01-01T10:00:00Z); max_future_skew is 10m");
  // Old events are the watermark's business, not the decoder's.
  m.mutable_event_time()->set_seconds(1000000000);
  EXPECT_TRUE(decoder.Decode(m.SerializeAsString(), kNow, &e).ok);
}

TEST(EventDecoderTest, DefaultSiteFillsAnEmptySiteId) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10), "www");
  v1::WebEvent m = ValidEvent();
  Event e;
  ASSERT_TRUE(decoder.Decode(m.SerializeAsString(), kNow, &e).ok);
  EXPECT_EQ(e.site_id, "shop");  // a site_id in the event wins
  m.clear_site_id();
  ASSERT_TRUE(decoder.Decode(m.SerializeAsString(), kNow, &e).ok);
  EXPECT_EQ(e.site_id, "www");

  EventDecoder json(InputFormat::kJson, absl::Minutes(10), "www");
  ASSERT_TRUE(json.Decode(R"({"eventTime":"2026-01-01T09:00:00Z",)"
                          R"("visitorId":"v","type":"PAGE_VIEW"})",
                          kNow, &e)
                  .ok);
  EXPECT_EQ(e.site_id, "www");
}

TEST(EventDecoderTest, EveryReasonIsListed) {
  for (const char* reason :
       {"malformed", "missing_site_id", "missing_visitor_id",
        "missing_event_time", "missing_type", "missing_goal",
        "future_event_time", "not_pageview"}) {
    EXPECT_NE(
        std::find(InvalidReasons().begin(), InvalidReasons().end(), reason),
        InvalidReasons().end())
        << reason;
  }
}

// --- Bad input ------------------------------------------------------------

TEST(EventDecoderTest, TruncatedProtobufIsRejected) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  const std::string bytes = ValidEvent().SerializeAsString();
  for (size_t len = 0; len < bytes.size(); ++len) {
    Event e;
    DecodeResult r =
        decoder.Decode(absl::string_view(bytes).substr(0, len), kNow, &e);
    EXPECT_FALSE(r.ok) << "prefix of " << len << " bytes accepted";
    EXPECT_TRUE(IsMissingOrMalformed(r.reason)) << r.reason;
    EXPECT_FALSE(r.detail.empty());
  }
}

TEST(EventDecoderTest, RandomBytesNeverCrashAndAreRejected) {
  EventDecoder binary(InputFormat::kProtobuf, absl::Minutes(10));
  EventDecoder json(InputFormat::kJson, absl::Minutes(10));
  google::protobuf::LogSilencer quiet;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 400; ++i) {
      std::string bytes(rng() % 300, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      Event e;
      DecodeResult r = binary.Decode(bytes, kNow, &e);
      EXPECT_FALSE(r.ok);
      EXPECT_TRUE(IsMissingOrMalformed(r.reason)) << r.reason;
      r = json.Decode(bytes, kNow, &e);
      EXPECT_FALSE(r.ok);
      EXPECT_EQ(r.reason, "malformed");
    }
  }
}

TEST(EventDecoderTest, OtherMessageTypesAreRejected) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  v1::AdCost cost;
  cost.set_site_id("shop");
  cost.mutable_date_start()->set_seconds(1767225600);
  cost.set_utm_source("google");
  cost.set_cost_micros(5000000);
  v1::Conversion conversion = ValidEvent().conversion();
  for (const std::string& bytes :
       {cost.SerializeAsString(), conversion.SerializeAsString()}) {
    Event e;
    DecodeResult r = decoder.Decode(bytes, kNow, &e);
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(IsMissingOrMalformed(r.reason)) << r.reason;
  }
}

TEST(EventDecoderTest, WrongJsonIsMalformed) {
  EventDecoder decoder(InputFormat::kJson, absl::Minutes(10));
  Event e;
  for (
      const char* json : {
          R"({"siteId":{},"visitorId":"v","eventTime":"2026-01-01T09:00:00Z","type":"PAGE_VIEW"})",
          R"({"siteId":"s","visitorId":"v","eventTime":"2026-01-01T09:00:00Z","type":12.5})",
          R"({"siteId":"s","visitorId":"v","eventTime":12.5,"type":"PAGE_VIEW"})",
          R"({"siteId":"s","visitorId":"v","eventTime":"yesterday","type":"PAGE_VIEW"})",
          R"({"siteId":"s","visitorId":"v","eventTime":"2026-01-01T09:00:00Z","type":"PAGE_VIEW","sessionNumber":-1})",
          R"({"siteId":"s","visitorId":"v","eventTime":"2026-01-01T09:00:00Z","type":"CONVERSION","conversion":{"goal":"g","valueMicros":"1.5"}})",
          R"({"siteId":"s")",
          R"(not json)",
          R"([1,2,3])",
          "",
      }) {
    DecodeResult r = decoder.Decode(json, kNow, &e);
    EXPECT_FALSE(r.ok) << json;
    EXPECT_EQ(r.reason, "malformed") << json;
    EXPECT_TRUE(absl::StartsWith(r.detail, "not a valid JSON WebEvent: "))
        << r.detail;
  }
}

// --- The binary reader against protobuf's own parser ----------------------
//
// The decoder reads the wire format itself (for speed); these tests hold it
// to accepting, rejecting and reading exactly what WebEvent::ParseFromArray
// does.

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Key(uint32_t field, uint32_t wire_type) {
  return Varint(field << 3 | wire_type);
}
std::string Delimited(uint32_t field, absl::string_view body) {
  return absl::StrCat(Key(field, 2), Varint(body.size()), body);
}

// Decodes `bytes` and checks the outcome against ParseFromArray: rejected as
// "malformed" exactly when protobuf fails, otherwise the same result as for
// protobuf's own re-serialization of what it parsed.
::testing::AssertionResult SameAsProtobuf(const std::string& bytes) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  v1::WebEvent reference;
  bool parsed;
  {
    google::protobuf::LogSilencer quiet;  // protobuf logs bad UTF-8
    parsed =
        reference.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  }
  Event got;
  const DecodeResult r = decoder.Decode(bytes, kNow, &got);
  if (!parsed) {
    if (r.reason == "malformed") return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "protobuf rejects, decoder says '" << r.reason << "'";
  }
  Event want;
  const DecodeResult w =
      decoder.Decode(reference.SerializeAsString(), kNow, &want);
  if (r.reason != w.reason) {
    return ::testing::AssertionFailure()
           << "decoder says '" << r.reason << "' (" << r.detail
           << "), protobuf's parse gives '" << w.reason << "'";
  }
  if (r.ok && Describe(got) != Describe(want)) {
    return ::testing::AssertionFailure()
           << "decoder read " << Describe(got) << "\nprotobuf read "
           << Describe(want);
  }
  return ::testing::AssertionSuccess();
}

// `depth` unknown groups of field `field`, one inside the other.
std::string NestedGroups(uint32_t field, int depth) {
  std::string out;
  for (int i = 0; i < depth; ++i) {
    out = absl::StrCat(Key(field, 3), out, Key(field, 4));
  }
  return out;
}

std::string Hex(absl::string_view bytes) {
  std::string out;
  for (char c : bytes) {
    absl::StrAppend(
        &out, absl::Hex(static_cast<uint8_t>(c), absl::PadSpec::kZeroPad2));
  }
  return out;
}

TEST(EventDecoderWireTest, HandCraftedEdgeCases) {
  const std::string base = ValidEvent().SerializeAsString();
  const std::string group =  // field 50: a group holding every wire type
      absl::StrCat(Key(50, 3), Key(1, 0), Varint(7), Key(2, 1),
                   std::string(8, 'x'), Key(3, 5), std::string(4, 'y'),
                   Delimited(4, "\xff\xfe"), Key(5, 3), Key(5, 4), Key(50, 4));
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"empty", ""},
      {"base", base},
      {"unknown varint", base + Key(100, 0) + Varint(1ULL << 60)},
      {"unknown 10-byte varint", base + Key(100, 0) + Varint(~0ULL)},
      {"unknown 11-byte varint",
       base + Key(100, 0) + std::string(10, '\xff') + std::string(1, '\x01')},
      {"unknown fixed64", base + Key(100, 1) + std::string(8, '\xff')},
      {"unknown fixed64 truncated", base + Key(100, 1) + std::string(7, 'a')},
      {"unknown fixed32", base + Key(100, 5) + std::string(4, '\0')},
      {"unknown fixed32 truncated", base + Key(100, 5) + "abc"},
      {"unknown delimited, not UTF-8", base + Delimited(100, "\xc0\xaf")},
      {"unknown delimited too long", base + Key(100, 2) + Varint(5) + "abc"},
      {"unknown group", base + group},
      {"group at start", group + base},
      {"group, wrong end", base + Key(50, 3) + Key(51, 4)},
      {"group, no end", base + Key(50, 3) + Key(1, 0) + Varint(1)},
      {"group, end is tag 0", base + Key(50, 3) + std::string(1, '\0')},
      {"stray end group", base + Key(50, 4)},
      {"tag 0", base + std::string(1, '\0')},
      {"field 0 varint", base + Key(0, 0) + Varint(1)},
      {"field 0 delimited", base + Delimited(0, "x")},
      {"wire type 6", base + Key(1, 6)},
      {"wire type 7", base + Key(3, 7) + "x"},
      {"max field number", base + Key((1u << 29) - 1, 0) + Varint(1)},
      {"site_id as varint", base + Key(3, 0) + Varint(1)},
      {"site_id as varint only",
       absl::StrCat(Key(3, 0), Varint(5), Delimited(4, "v"),
                    Delimited(2, Key(1, 0) + Varint(1767261000)), Key(7, 0),
                    Varint(1))},
      {"event_time as fixed64", base + Key(2, 1) + std::string(8, '\x01')},
      {"type as delimited", base + Delimited(7, "\x01")},
      {"site_id twice: last wins", base + Delimited(3, "blog")},
      {"site_id empty last", base + Delimited(3, "")},
      {"event_time merges", base + Delimited(2, Key(2, 0) + Varint(5))},
      {"event_time empty again", base + Delimited(2, "")},
      {"event_time only empty",
       absl::StrCat(Delimited(3, "s"), Delimited(4, "v"), Delimited(2, ""),
                    Key(7, 0), Varint(1))},
      {"conversion merges", base + Delimited(21, Delimited(3, "usd"))},
      {"conversion twice with goal",
       base + Delimited(21, Delimited(1, "lead"))},
      {"type 10-byte -1", base + Key(7, 0) + Varint(~0ULL)},
      {"type 2^32+1", base + Key(7, 0) + Varint((1ULL << 32) + 1)},
      {"type 11-byte varint",
       base + Key(7, 0) + std::string(10, '\x81') + std::string(1, '\x01')},
      {"type 10th byte high bits",
       base + Key(7, 0) + std::string(9, '\x81') + std::string(1, '\x7f')},
      {"type non-minimal", base + Key(7, 0) + "\x82\x80\x80\x00"},
      {"session_number 2^32+3", base + Key(20, 0) + Varint((1ULL << 32) + 3)},
      {"value_micros negative",
       base + Delimited(21, Key(2, 0) + Varint(static_cast<uint64_t>(-5)))},
      {"nanos 2^32+7",
       base + Delimited(2, Key(2, 0) + Varint((1ULL << 32) + 7))},
      {"seconds negative",
       base + Delimited(2, Key(1, 0) + Varint(static_cast<uint64_t>(-100)))},
      {"timestamp unknown field", base + Delimited(2, Key(3, 0) + Varint(1))},
      {"timestamp bad nested", base + Delimited(2, Key(1, 2))},
      {"timestamp overruns its length",
       base + Key(2, 2) + Varint(2) + Key(1, 0) + "\x81\x01"},
      {"conversion unknown group", base + Delimited(21, Key(9, 3) + Key(9, 4))},
      {"5-byte tag", base + "\x88\x80\x80\x80\x00" + Varint(1)},
      {"5-byte tag, overflow bits", base + "\xb8\x80\x80\x80\x70" + Varint(1)},
      {"6-byte tag", base + "\x88\x80\x80\x80\x80\x00" + Varint(1)},
      {"truncated tag", base + "\x88"},
      {"5-byte size", base + Key(100, 2) + "\x80\x80\x80\x80\x00"},
      {"6-byte size", base + Key(100, 2) + "\x80\x80\x80\x80\x80\x00"},
      {"huge size", base + Key(100, 2) + "\xff\xff\xff\xff\x07"},
      // protobuf's recursion limit: 100 levels of messages and groups.
      {"groups depth 100", base + NestedGroups(60, 100)},
      {"groups depth 101", base + NestedGroups(60, 101)},
      {"event_time + groups depth 100",
       base + Delimited(2, NestedGroups(9, 99))},
      {"event_time + groups depth 101",
       base + Delimited(2, NestedGroups(9, 100))},
  };
  for (const auto& [name, bytes] : cases) {
    EXPECT_TRUE(SameAsProtobuf(bytes)) << name << ": " << Hex(bytes);
  }
  // A string field of each kind the decoder keeps or skips, with bad UTF-8.
  for (uint32_t field :
       {1, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}) {
    const std::string bytes = base + Delimited(field, "ok\xed\xa0\x80");
    EXPECT_TRUE(SameAsProtobuf(bytes)) << "field " << field;
    Event e;
    EXPECT_EQ(EventDecoder(InputFormat::kProtobuf, absl::Minutes(10))
                  .Decode(bytes, kNow, &e)
                  .reason,
              "malformed");
  }
  for (uint32_t field : {1, 3, 4}) {
    EXPECT_TRUE(SameAsProtobuf(
        base + Delimited(21, Delimited(field, "\xf4\x90\x80\x80"))))
        << "conversion field " << field;
  }
}

TEST(EventDecoderWireTest, Utf8ValidationMatchesProtobuf) {
  // Sequences in page_title (checked, not kept) between ASCII: every 1- and
  // 2-byte sequence, and every lead and second byte of 3- and 4-byte ones
  // with the bytes around the continuation range after them.
  const std::string base = ValidEvent().SerializeAsString();
  const uint8_t edges[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
                           0x9f, 0xa0, 0xbf, 0xc0, 0xf5, 0xff};
  std::vector<std::string> sequences;
  for (int a = 0; a < 256; ++a) {
    sequences.push_back(std::string(1, static_cast<char>(a)));
    for (int b = 0; b < 256; ++b) {
      const std::string ab = {static_cast<char>(a), static_cast<char>(b)};
      sequences.push_back(ab);
      if (a < 0xe0) continue;
      for (uint8_t c : edges) {
        sequences.push_back(ab + static_cast<char>(c));
        if (a < 0xf0) continue;
        for (uint8_t d : edges) {
          sequences.push_back(ab + static_cast<char>(c) + static_cast<char>(d));
        }
      }
    }
  }
  int rejected = 0, failures = 0;
  for (const std::string& s : sequences) {
    const std::string bytes =
        base + Delimited(9, absl::StrCat("title ", s, " end"));
    ::testing::AssertionResult same = SameAsProtobuf(bytes);
    if (!same && ++failures <= 10) {
      ADD_FAILURE() << Hex(s) << ": " << same.message();
    }
    Event e;
    if (!EventDecoder(InputFormat::kProtobuf, absl::Minutes(10))
             .Decode(bytes, kNow, &e)
             .ok) {
      ++rejected;
    }
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GT(rejected, 1000);  // the sweep saw both outcomes
  EXPECT_LT(rejected, static_cast<int>(sequences.size()) - 1000);
}

TEST(EventDecoderWireTest, MutatedEventsMatchProtobuf) {
  v1::WebEvent small;
  small.set_site_id("s");
  small.set_visitor_id("v");
  small.mutable_event_time()->set_seconds(1767261000);
  small.set_type(v1::PAGE_VIEW);
  const std::string seeds[] = {ValidEvent().SerializeAsString(),
                               small.SerializeAsString()};
  int failures = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 2000; ++i) {
      std::string bytes = seeds[rng() % 2];
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        const size_t at = bytes.empty() ? 0 : rng() % bytes.size();
        switch (rng() % 6) {
          case 0:  // flip a bit
            if (!bytes.empty()) bytes[at] ^= static_cast<char>(1 << rng() % 8);
            break;
          case 1:  // set a byte
            if (!bytes.empty()) bytes[at] = static_cast<char>(rng());
            break;
          case 2:  // insert a byte
            bytes.insert(at, 1, static_cast<char>(rng()));
            break;
          case 3:  // delete a byte
            if (!bytes.empty()) bytes.erase(at, 1);
            break;
          case 4:  // truncate
            bytes.resize(at);
            break;
          case 5:  // duplicate a range: repeated fields
            bytes += bytes.substr(at, rng() % 40);
            break;
        }
      }
      ::testing::AssertionResult same = SameAsProtobuf(bytes);
      if (!same && ++failures <= 10) {
        ADD_FAILURE() << "seed " << seed << " #" << i << " " << Hex(bytes)
                      << ": " << same.message();
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(EventDecoderWireTest, RandomBytesMatchProtobuf) {
  int failures = 0;
  for (uint64_t seed = 100; seed < 120; ++seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 2000; ++i) {
      std::string bytes(rng() % 64, '\0');
      // Small field numbers and wire types are likelier than uniform bytes.
      for (char& c : bytes) {
        c = static_cast<char>(rng() % 2 ? rng() % 0xb0 : rng());
      }
      ::testing::AssertionResult same = SameAsProtobuf(bytes);
      if (!same && ++failures <= 10) {
        ADD_FAILURE() << Hex(bytes) << ": " << same.message();
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace kpistream
