#include "ingest/event_decoder.h"

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kpistream/v1/web_event.pb.h"
#include "tests/allocation_counter.h"

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
  e.set_type(v1::CONVERSION);
  e.set_page_url("https://shop.example/thanks");
  e.set_referrer("https://www.google.com/");
  e.set_utm_source("google");
  e.set_utm_medium("cpc");
  e.set_utm_campaign("brand");
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

// `m` as an input record of `format` (the canonical JSON mapping, or binary).
std::string Encoded(const v1::WebEvent& m, InputFormat format) {
  std::string bytes;
  if (format == InputFormat::kJson) {
    EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &bytes).ok());
  } else {
    bytes = m.SerializeAsString();
  }
  return bytes;
}

TEST(EventDecoderTest, ValidProtobufMapsEveryField) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  Event e;
  DecodeResult r = decoder.Decode(ValidEvent().SerializeAsString(), kNow, &e);
  ASSERT_TRUE(r.ok) << r.detail;
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

TEST(EventDecoderTest, ValidJson) {
  EventDecoder decoder(InputFormat::kJson, absl::Minutes(10));
  Event e;
  DecodeResult r = decoder.Decode(
      R"({"eventId":"e2","eventTime":"2026-01-01T09:59:00Z","siteId":"shop",)"
      R"("visitorId":"v2","type":"CONVERSION","deviceCategory":"smart-tv",)"
      R"("conversion":{"goal":"signup","valueMicros":"1500000"},"unknownField":1})",
      kNow, &e);
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(e.time, kNow - absl::Minutes(1));
  EXPECT_EQ(e.goal, "signup");
  EXPECT_EQ(e.value_micros, 1500000);
  EXPECT_EQ(e.device_category, "(other)");  // a value, but not a known one
  EXPECT_EQ(e.country, "(not set)");        // missing
}

TEST(EventDecoderTest, TruncatedProtobufIsMalformedOrMissingFields) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  const std::string bytes = ValidEvent().SerializeAsString();
  for (size_t len = 1; len < bytes.size(); ++len) {
    Event e;
    DecodeResult r =
        decoder.Decode(absl::string_view(bytes).substr(0, len), kNow, &e);
    EXPECT_FALSE(r.ok) << "prefix of " << len << " bytes accepted";
    EXPECT_FALSE(r.reason.empty());
  }
}

TEST(EventDecoderTest, RandomBytesNeverCrashAndAreRejected) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  std::mt19937_64 rng(1);
  int rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 200, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    Event e;
    if (!decoder.Decode(bytes, kNow, &e).ok) ++rejected;
  }
  EXPECT_EQ(rejected, 20000);
}

TEST(EventDecoderTest, WrongJsonTypesAreMalformed) {
  EventDecoder decoder(InputFormat::kJson, absl::Minutes(10));
  Event e;
  for (
      const char* json :
      {R"({"siteId":{},"visitorId":"v","eventTime":"2026-01-01T09:00:00Z","type":"PAGE_VIEW"})",
       R"({"siteId":"s","visitorId":"v","eventTime":12.5,"type":"PAGE_VIEW"})",
       R"({"siteId":"s","visitorId":"v","eventTime":"yesterday","type":"PAGE_VIEW"})",
       R"(not json)", R"([1,2,3])", ""}) {
    DecodeResult r = decoder.Decode(json, kNow, &e);
    EXPECT_FALSE(r.ok) << json;
    EXPECT_EQ(r.reason, "malformed") << json;
  }
}

// A topic written in one format and read as another rejects every record:
// the detail says what the records look like and which format reads them.
TEST(EventDecoderTest, ARecordOfAnotherFormatSaysWhichFormatItLooksLike) {
  std::string json;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(ValidEvent(), &json).ok());
  const std::string binary = ValidEvent().SerializeAsString();
  const std::string line =
      R"(203.0.113.9 - - [01/Jan/2026:09:00:00 +0000] "GET / HTTP/1.1" 200 )"
      R"(512 "-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")";
  const struct {
    InputFormat format;
    std::string bytes;
    const char* hint;
  } cases[] = {
      {InputFormat::kProtobuf, json,
       "; the record looks like JSON: is the input's format json?"},
      {InputFormat::kProtobuf, line,
       "; the record looks like an access-log line: is the input's format "
       "combined_log?"},
      {InputFormat::kJson, binary,
       "; the record looks like binary (protobuf): is the input's format "
       "protobuf?"},
      {InputFormat::kJson, line,
       "; the record looks like an access-log line: is the input's format "
       "combined_log?"},
      {InputFormat::kCombinedLog, "  " + json,
       "; the record looks like JSON: is the input's format json?"},
      {InputFormat::kCombinedLog, binary,
       "; the record looks like binary (protobuf): is the input's format "
       "protobuf?"},
  };
  for (const auto& c : cases) {
    EventDecoder decoder(c.format, absl::Minutes(10), "shop");
    Event e;
    const DecodeResult r = decoder.Decode(c.bytes, kNow, &e);
    ASSERT_FALSE(r.ok) << InputFormatName(c.format) << ": " << c.bytes;
    EXPECT_EQ(r.reason, "malformed");
    EXPECT_THAT(r.detail, ::testing::EndsWith(c.hint))
        << InputFormatName(c.format);
  }
  // No hint where the record looks like the input's format, or like none.
  EventDecoder decoder(InputFormat::kJson, absl::Minutes(10));
  Event e;
  for (const char* bytes : {R"({"siteId":)", "not json", "a b c d"}) {
    const DecodeResult r = decoder.Decode(bytes, kNow, &e);
    EXPECT_EQ(r.reason, "malformed");
    EXPECT_THAT(r.detail, ::testing::Not(::testing::HasSubstr("looks like")))
        << bytes;
  }
}

// QA's unclear messages: digits beyond int64 are out of range (as a number
// would be), not "not an integer"; a zero event time says it may be the
// zero time rather than only "not set".
TEST(EventDecoderTest, RejectionDetailsNameTheCause) {
  EventDecoder decoder(InputFormat::kJson, absl::Minutes(10));
  Event e;
  const std::string head =
      R"({"siteId":"s","visitorId":"v","type":"CONVERSION",)";
  DecodeResult r = decoder.Decode(
      head + R"("eventTime":"2026-01-01T09:00:00Z","conversion":{"goal":"g",)"
             R"("valueMicros":"99999999999999999999999"}})",
      kNow, &e);
  EXPECT_EQ(r.reason, "malformed");
  EXPECT_THAT(r.detail, ::testing::HasSubstr("integer out of range"));
  r = decoder.Decode(
      head + R"("eventTime":"2026-01-01T09:00:00Z","conversion":{"goal":"g",)"
             R"("valueMicros":"12a"}})",
      kNow, &e);
  EXPECT_EQ(r.reason, "malformed");
  EXPECT_THAT(r.detail, ::testing::HasSubstr("not an integer"));
  r = decoder.Decode(head + R"("eventTime":"1970-01-01T00:00:00Z",)"
                            R"("conversion":{"goal":"g"}})",
                     kNow, &e);
  EXPECT_EQ(r.reason, "missing_event_time");
  EXPECT_THAT(r.detail, ::testing::HasSubstr("1970-01-01T00:00:00Z"));
  // A JSON object of another schema is an empty WebEvent (unknown fields
  // are ignored): its first missing field, and the question.
  r = decoder.Decode(R"({"hello":"world","n":1})", kNow, &e);
  EXPECT_EQ(r.reason, "missing_site_id");
  EXPECT_THAT(r.detail, ::testing::HasSubstr("is the record a WebEvent?"));
  r = decoder.Decode(R"({"visitorId":"v"})", kNow, &e);  // one of them
  EXPECT_EQ(r.reason, "missing_site_id");
  EXPECT_EQ(r.detail, "site_id is empty");
}

// SPEC §2: a conversion's currency is an ISO 4217 code. Another (a symbol,
// a name) is malformed, in either format, and says so; none is fine (a
// signup has no value), and any case is taken and written in capitals.
TEST(EventDecoderTest, AConversionsCurrencyIsThreeLettersOrNone) {
  for (InputFormat format : {InputFormat::kProtobuf, InputFormat::kJson}) {
    EventDecoder decoder(format, absl::Minutes(10));
    EventView e;
    // ValidEvent() with `type` and the conversion's `currency`, decoded.
    auto decode = [&](v1::EventType type, const char* currency) {
      v1::WebEvent m = ValidEvent();
      m.set_type(type);
      m.mutable_conversion()->set_currency(currency);
      return decoder.Decode(Encoded(m, format), kNow, &e);
    };
    for (const char* bad : {"\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC", "US Dollar",
                            "EU", "EURO", "E1R", "$", " EUR"}) {
      const DecodeResult r = decode(v1::CONVERSION, bad);
      EXPECT_FALSE(r.ok) << bad;
      EXPECT_EQ(r.reason, "malformed") << bad;
      EXPECT_THAT(r.detail, ::testing::HasSubstr("conversion.currency \""))
          << bad;
      EXPECT_THAT(r.detail, ::testing::HasSubstr("is not an ISO 4217 code"))
          << bad;
      // Escaped: the detail goes to logs and headers as ASCII.
      EXPECT_TRUE(std::all_of(r.detail.begin(), r.detail.end(), [](char c) {
        return absl::ascii_isprint(c);
      })) << r.detail;
    }
    for (const char* good : {"", "chf", "Usd", "EUR"}) {
      const DecodeResult r = decode(v1::CONVERSION, good);
      ASSERT_TRUE(r.ok) << good << ": " << r.detail;
      EXPECT_EQ(e.currency, absl::AsciiStrToUpper(good));
    }
    // Only a conversion's currency counts: a page view's is dropped.
    const DecodeResult r = decode(v1::PAGE_VIEW, "$");
    EXPECT_TRUE(r.ok) << r.detail;
    EXPECT_EQ(e.currency, "");
  }
}

// A conversion's value beyond +/-1e17 micros (a hundred billion units) is
// malformed, in either format (an audit: two int64-max values saturated the
// session's value and the revenue counter, silently); at the bound it is
// taken. A page view's value is dropped, whatever it is.
TEST(EventDecoderTest, AConversionsValueIsBounded) {
  for (InputFormat format : {InputFormat::kProtobuf, InputFormat::kJson}) {
    EventDecoder decoder(format, absl::Minutes(10));
    EventView e;
    auto decode = [&](v1::EventType type, int64_t micros) {
      v1::WebEvent m = ValidEvent();
      m.set_type(type);
      m.mutable_conversion()->set_currency("IDR");
      m.mutable_conversion()->set_value_micros(micros);
      return decoder.Decode(Encoded(m, format), kNow, &e);
    };
    for (int64_t bad :
         {kMaxAmountMicros + 1, -kMaxAmountMicros - 1, INT64_MAX, INT64_MIN}) {
      const DecodeResult r = decode(v1::CONVERSION, bad);
      EXPECT_FALSE(r.ok) << bad;
      EXPECT_EQ(r.reason, "malformed") << bad;
      EXPECT_THAT(r.detail,
                  ::testing::HasSubstr(absl::StrCat(
                      "conversion.value_micros ", bad, " is beyond +/-1e17")));
    }
    for (int64_t good : {kMaxAmountMicros, -kMaxAmountMicros, int64_t{0}}) {
      const DecodeResult r = decode(v1::CONVERSION, good);
      ASSERT_TRUE(r.ok) << good << ": " << r.detail;
      EXPECT_EQ(e.value_micros, good);
    }
    const DecodeResult r = decode(v1::PAGE_VIEW, INT64_MAX);
    EXPECT_TRUE(r.ok) << r.detail;
    EXPECT_EQ(e.value_micros, 0);
  }
}

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
      {"missing_type", [](v1::WebEvent* e) { e->clear_type(); }},
      {"missing_goal",
       [](v1::WebEvent* e) { e->mutable_conversion()->clear_goal(); }},
      {"future_event_time",
       [](v1::WebEvent* e) {
         e->mutable_event_time()->set_seconds(1767261600 + 601);
       }},
      {"malformed",
       [](v1::WebEvent* e) { e->mutable_event_time()->set_nanos(-1); }},
  };
  for (const Case& c : cases) {
    v1::WebEvent m = ValidEvent();
    c.mutate(&m);
    Event e;
    DecodeResult r = decoder.Decode(m.SerializeAsString(), kNow, &e);
    EXPECT_FALSE(r.ok) << c.reason;
    EXPECT_EQ(r.reason, c.reason);
    EXPECT_FALSE(r.detail.empty());
  }
}

// The source side of a re-keyed input judges records with
// DecodeForRouting(): the same verdict, reason and event time as Decode(),
// and the fields routing reads; a full Decode() after it still normalises.
TEST(EventDecoderTest, DecodeForRoutingJudgesAsDecodeDoes) {
  std::vector<std::pair<InputFormat, std::string>> inputs;
  const auto mutations = std::vector<void (*)(v1::WebEvent*)>{
      [](v1::WebEvent*) {},
      [](v1::WebEvent* e) { e->clear_site_id(); },
      [](v1::WebEvent* e) { e->clear_visitor_id(); },
      [](v1::WebEvent* e) { e->clear_event_time(); },
      [](v1::WebEvent* e) { e->clear_type(); },
      [](v1::WebEvent* e) { e->set_type(static_cast<v1::EventType>(9)); },
      [](v1::WebEvent* e) { e->mutable_conversion()->clear_goal(); },
      [](v1::WebEvent* e) {
        e->mutable_event_time()->set_seconds(1767261600 + 601);
      },
      [](v1::WebEvent* e) { e->mutable_event_time()->set_nanos(-1); },
      [](v1::WebEvent* e) { e->clear_user_agent(); },
      [](v1::WebEvent* e) { e->set_type(v1::PAGE_VIEW); },
  };
  for (auto mutate : mutations) {
    v1::WebEvent m = ValidEvent();
    mutate(&m);
    inputs.push_back({InputFormat::kProtobuf, m.SerializeAsString()});
  }
  inputs.push_back({InputFormat::kProtobuf, "\xff\xff"});
  const std::string head =
      R"({"eventTime":"2026-01-01T09:59:00Z","siteId":"shop","visitorId":"v")";
  for (const std::string& json :
       {head + R"(,"type":"PAGE_VIEW","userAgent":"Mozilla/5.0"})",
        head + R"(,"type":"PAGE_VEIW"})", head + R"(,"type":42})", head + "}",
        head + R"(,"type":"CONVERSION"})", head + R"(,"type":'PAGE_VIEW'})",
        std::string("not json"),
        std::string(R"({"siteId":{},"visitorId":"v"})")}) {
    inputs.push_back({InputFormat::kJson, json});
  }
  for (const auto& [format, bytes] : inputs) {
    EventDecoder full(format, absl::Minutes(10));
    EventDecoder routing(format, absl::Minutes(10));
    Event a, b;
    const DecodeResult want = full.Decode(bytes, kNow, &a);
    const DecodeResult got = routing.DecodeForRouting(bytes, kNow, &b);
    EXPECT_EQ(got.ok, want.ok) << bytes;
    EXPECT_EQ(got.reason, want.reason) << bytes;
    EXPECT_EQ(got.time, want.time) << bytes;
    if (want.ok) {
      EXPECT_EQ(b.visitor_id, a.visitor_id);
      EXPECT_EQ(b.site_id, a.site_id);
      EXPECT_EQ(b.user_agent, a.user_agent);
    }
    // The same decoder decodes in full again afterwards, into an event
    // that holds another record's fields (as the engine's does).
    Event c;
    EventDecoder other(InputFormat::kProtobuf, absl::Minutes(10));
    v1::WebEvent o = ValidEvent();
    for (std::string* f :
         {o.mutable_event_id(), o.mutable_site_id(), o.mutable_visitor_id(),
          o.mutable_user_agent(), o.mutable_conversion()->mutable_goal(),
          o.mutable_user_id(), o.mutable_page_url(), o.mutable_referrer(),
          o.mutable_utm_source(), o.mutable_utm_medium(),
          o.mutable_utm_campaign(), o.mutable_click_id(),
          o.mutable_device_category(), o.mutable_country(),
          o.mutable_conversion()->mutable_order_id()}) {
      f->append("-other");
    }
    o.mutable_conversion()->set_currency("chf");  // three letters, or refused
    o.set_session_number(9);
    o.mutable_conversion()->set_value_micros(1);
    ASSERT_TRUE(other.Decode(o.SerializeAsString(), kNow, &c).ok);
    ASSERT_TRUE(routing.DecodeForRouting(bytes, kNow, &c).ok == want.ok);
    const DecodeResult again = routing.Decode(bytes, kNow, &c);
    EXPECT_EQ(again.ok, want.ok);
    if (want.ok) {
#define KPISTREAM_EXPECT_FIELD(f) EXPECT_EQ(c.f, a.f) << #f;
      KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_EXPECT_FIELD)
#undef KPISTREAM_EXPECT_FIELD
      EXPECT_EQ(c.user_agent, a.user_agent);
      EXPECT_EQ(c.time, a.time);
      EXPECT_EQ(c.type, a.type);
      EXPECT_EQ(c.session_number, a.session_number);
      EXPECT_EQ(c.value_micros, a.value_micros);
    }
  }
}

TEST(EventDecoderTest, DefaultSiteFillsAnEmptySiteId) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10), "www");
  v1::WebEvent m = ValidEvent();
  m.clear_site_id();
  Event e;
  ASSERT_TRUE(decoder.Decode(m.SerializeAsString(), kNow, &e).ok);
  EXPECT_EQ(e.site_id, "www");
}

TEST(EventDecoderTest, EveryReasonIsListed) {
  for (const char* reason :
       {"malformed", "missing_site_id", "missing_visitor_id",
        "missing_event_time", "missing_type", "missing_goal",
        "future_event_time"}) {
    EXPECT_NE(
        std::find(InvalidReasons().begin(), InvalidReasons().end(), reason),
        InvalidReasons().end())
        << reason;
  }
}

// A warm decoder reads a protobuf record without allocating (issue 9, item
// 3): the record is read into the Event's strings, whose capacity stays.
// Every string field is longer than std::string keeps inline.
TEST(EventDecoderTest, AWarmProtobufDecoderDoesNotAllocate) {
  v1::WebEvent m = ValidEvent();
  m.set_event_id("e-0123456789abcdef0123");
  m.set_visitor_id("v-0123456789abcdef0123");
  m.set_user_id("u-0123456789abcdef0123");
  m.set_session_id("s-0123456789abcdef0123");
  m.set_page_title("A page title longer than inline");
  m.set_utm_term("a search term longer than inline");
  m.set_utm_content("an ad content longer than inline");
  m.set_user_agent(
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit");
  m.mutable_conversion()->set_order_id("o-0123456789abcdef0123");
  const std::string bytes = m.SerializeAsString();
  EventDecoder decoder(InputFormat::kProtobuf, absl::Hours(1));
  Event e;
  EventView view;
  ASSERT_TRUE(decoder.Decode(bytes, kNow, &e).ok);
  testing::AllocationCounter warm;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(decoder.Decode(bytes, kNow, &e).ok);
    ASSERT_TRUE(decoder.Decode(bytes, kNow, &view).ok);
  }
  EXPECT_EQ(warm.Stop(), 0);
  Event cold;  // the counter counts: a new Event's long strings allocate
  testing::AllocationCounter first;
  ASSERT_TRUE(decoder.Decode(bytes, kNow, &cold).ok);
  EXPECT_GT(first.Stop(), 0);
}

// The client's session id (sessions.session_source: client) is read from
// protobuf and JSON alike, a view of the record; one longer than the ids
// kept is cut there, not refused (it was not read before 2026-12-04).
TEST(EventDecoderTest, TheClientSessionIdIsReadAndALongOneCut) {
  for (size_t length : {size_t{20}, kMaxEventValueBytes + 500}) {
    SCOPED_TRACE(length);
    v1::WebEvent m = ValidEvent();
    m.set_session_id(std::string(length, 's'));
    const std::string bytes = m.SerializeAsString();
    std::string json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(m, &json).ok());
    const size_t kept = std::min(length, kMaxEventValueBytes);
    EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
    EventView v;
    ASSERT_TRUE(decoder.Decode(bytes, kNow, &v).ok);
    EXPECT_EQ(v.session_id, std::string(kept, 's'));
    EXPECT_GE(v.session_id.data(), bytes.data());
    EXPECT_LE(v.session_id.data(), bytes.data() + bytes.size());
    EventDecoder json_decoder(InputFormat::kJson, absl::Minutes(10));
    Event j;
    ASSERT_TRUE(json_decoder.Decode(json, kNow, &j).ok);
    EXPECT_EQ(j.session_id, std::string(kept, 's'));
  }
}

// The engine decodes into views (issue 9, item 3): the strings view the
// record, save those that decoding or normalising changed, which view the
// decoder's buffers; the Event overload copies the same values.
TEST(EventDecoderTest, ViewsTheRecordWhereNothingChanged) {
  v1::WebEvent m = ValidEvent();  // device "Mobile", country "de", "eur"
  m.clear_utm_source();
  m.clear_utm_medium();
  m.set_page_url(
      "https://shop.example/?utm_source=news%20letter&utm_medium=email");
  const std::string bytes = m.SerializeAsString();
  auto in_record = [&](absl::string_view v) {
    return v.data() >= bytes.data() &&
           v.data() + v.size() <= bytes.data() + bytes.size();
  };
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  EventView v;
  ASSERT_TRUE(decoder.Decode(bytes, kNow, &v).ok);
  for (absl::string_view f :
       {v.event_id, v.site_id, v.visitor_id, v.user_id, v.page_url, v.referrer,
        v.utm_campaign, v.click_id, v.user_agent, v.goal, v.order_id,
        v.utm_medium}) {
    EXPECT_TRUE(in_record(f)) << f;
  }
  EXPECT_EQ(v.utm_medium, "email");  // no escape: viewed in the page URL
  EXPECT_EQ(v.utm_source, "news letter");
  EXPECT_FALSE(in_record(v.utm_source));
  EXPECT_EQ(v.device_category, "mobile");
  EXPECT_EQ(v.country, "DE");
  EXPECT_FALSE(in_record(v.country));
  EXPECT_EQ(v.currency, "EUR");

  EventDecoder owning(InputFormat::kProtobuf, absl::Minutes(10));
  Event e;
  ASSERT_TRUE(owning.Decode(bytes, kNow, &e).ok);
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(m, &json).ok());
  EventDecoder json_decoder(InputFormat::kJson, absl::Minutes(10));
  EventView j;
  ASSERT_TRUE(json_decoder.Decode(json, kNow, &j).ok);
#define KPISTREAM_EXPECT_FIELD(f) \
  EXPECT_EQ(e.f, v.f) << #f;      \
  EXPECT_EQ(j.f, v.f) << #f;
  KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_EXPECT_FIELD)
  KPISTREAM_EXPECT_FIELD(user_agent)
#undef KPISTREAM_EXPECT_FIELD
  EXPECT_EQ(e.time, v.time);
  EXPECT_EQ(j.time, v.time);
  EXPECT_EQ(e.value_micros, v.value_micros);
  EXPECT_EQ(j.session_number, v.session_number);

  // A country already upper case, and a currency, are viewed in place.
  m.set_country("FR");
  m.mutable_conversion()->set_currency("USD");
  const std::string upper = m.SerializeAsString();
  ASSERT_TRUE(decoder.Decode(upper, kNow, &v).ok);
  EXPECT_EQ(v.country, "FR");
  EXPECT_EQ(v.currency, "USD");
  EXPECT_TRUE(v.country.data() >= upper.data() &&
              v.country.data() < upper.data() + upper.size());
  EXPECT_TRUE(v.currency.data() >= upper.data() &&
              v.currency.data() < upper.data() + upper.size());

  // A record it cannot read leaves no view of an earlier one.
  ASSERT_FALSE(decoder.Decode(std::string("\xff\xff"), kNow, &v).ok);
  EXPECT_TRUE(v.visitor_id.empty());
  ASSERT_FALSE(json_decoder.Decode("not json", kNow, &j).ok);
  EXPECT_TRUE(j.visitor_id.empty());
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

// SPEC §2: campaign parameters come from the page URL where the fields are
// empty, in every input format.
TEST(EventDecoderTest, CampaignFromThePageUrlInJsonAndProtobuf) {
  v1::WebEvent m = ValidEvent();
  m.clear_utm_source();
  m.clear_utm_medium();
  m.clear_click_id();
  m.set_page_url(
      "https://shop.example/?utm_source=newsletter&utm_medium=email&gclid=G1");
  EventDecoder proto(InputFormat::kProtobuf, absl::Minutes(10));
  Event e;
  ASSERT_TRUE(proto.Decode(m.SerializeAsString(), kNow, &e).ok);
  EXPECT_EQ(e.utm_source, "newsletter");
  EXPECT_EQ(e.utm_medium, "email");
  EXPECT_EQ(e.utm_campaign, "brand");  // the explicit field wins
  EXPECT_EQ(e.click_id, "gclid-G1");

  EventDecoder json(InputFormat::kJson, absl::Minutes(10));
  ASSERT_TRUE(
      json.Decode(R"({"eventTime":"2026-01-01T09:59:00Z","siteId":"shop",)"
                  R"("visitorId":"v2","type":"PAGE_VIEW",)"
                  R"("pageUrl":"/?utm_source=newsletter&utm_medium=email"})",
                  kNow, &e)
          .ok);
  EXPECT_EQ(e.utm_source, "newsletter");
  EXPECT_EQ(e.utm_medium, "email");
}

// A page URL longer than kMaxUrlBytes is kept as its start, but its
// campaign is read from all of it (an audit: a tag past the cut was lost,
// and an escape cut in two kept the value undecoded).
TEST(EventDecoderTest, TheCampaignIsReadFromAPageUrlBeforeItIsCut) {
  std::string escapes;
  std::string decoded;
  for (int i = 0; i < 2500; ++i) {
    escapes += "%C3%A9";
    decoded += "\xc3\xa9";
  }
  const std::string url = absl::StrCat(
      "https://shop.example/", std::string(9000, 'a'),
      "?utm_source=news&utm_medium=email&utm_campaign=", escapes, "&gclid=G1");
  v1::WebEvent m = ValidEvent();
  m.clear_utm_source();
  m.clear_utm_medium();
  m.clear_utm_campaign();
  m.clear_click_id();
  m.set_page_url(url);
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(m, &json).ok());
  for (const auto& [format, bytes] :
       {std::pair{InputFormat::kProtobuf, m.SerializeAsString()},
        std::pair{InputFormat::kJson, json}}) {
    EventDecoder decoder(format, absl::Minutes(10));
    Event e;
    ASSERT_TRUE(decoder.Decode(bytes, kNow, &e).ok) << bytes.substr(0, 80);
    EXPECT_EQ(e.page_url, url.substr(0, kMaxUrlBytes));
    EXPECT_EQ(e.utm_source, "news");
    EXPECT_EQ(e.utm_medium, "email");
    EXPECT_EQ(e.utm_campaign, decoded.substr(0, kMaxEventValueBytes));
    EXPECT_EQ(e.click_id, "gclid-G1");
  }
}

// SPEC §3: a rejected record with a valid event time still moves event
// time; the reason keeps its precedence.
TEST(EventDecoderTest, RejectedRecordsReportTheirValidEventTime) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  Event e;
  v1::WebEvent m = ValidEvent();
  m.clear_visitor_id();
  DecodeResult r = decoder.Decode(m.SerializeAsString(), kNow, &e);
  EXPECT_EQ(r.reason, "missing_visitor_id");
  EXPECT_EQ(r.time,
            absl::FromUnixSeconds(1767261500) + absl::Milliseconds(250));
  m = ValidEvent();
  m.mutable_event_time()->set_seconds(1767261600 + 3600);  // an hour ahead
  r = decoder.Decode(m.SerializeAsString(), kNow, &e);
  EXPECT_EQ(r.reason, "future_event_time");
  EXPECT_EQ(r.time, absl::InfinitePast());
  r = decoder.Decode("\xff\xff", kNow, &e);
  EXPECT_EQ(r.time, absl::InfinitePast());
  r = decoder.Decode(ValidEvent().SerializeAsString(), kNow, &e);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.time, e.time);
}

TEST(EventDecoderTest, AnUnknownTypeNumberIsInvalidTypeNotMissing) {
  EventDecoder decoder(InputFormat::kProtobuf, absl::Minutes(10));
  Event e;
  v1::WebEvent m = ValidEvent();
  m.set_type(static_cast<v1::EventType>(42));
  EXPECT_EQ(decoder.Decode(m.SerializeAsString(), kNow, &e).reason,
            "invalid_type");
  m.set_type(v1::EVENT_TYPE_UNSPECIFIED);
  EXPECT_EQ(decoder.Decode(m.SerializeAsString(), kNow, &e).reason,
            "missing_type");
}

TEST(EventDecoderTest, ATypoedJsonTypeNameIsInvalidTypeNotMissing) {
  EventDecoder decoder(InputFormat::kJson, absl::Minutes(10));
  Event e;
  const std::string head =
      R"({"siteId":"s","visitorId":"v","eventTime":"2026-01-01T09:00:00Z")";
  DecodeResult r = decoder.Decode(head + R"(,"type":"PAGE_VEIW"})", kNow, &e);
  EXPECT_EQ(r.reason, "invalid_type");
  EXPECT_EQ(r.detail,
            "type \"PAGE_VEIW\" is not a known EventType (PAGE_VIEW, "
            "ENGAGEMENT, CONVERSION, CUSTOM)");
  EXPECT_EQ(decoder.Decode(head + R"(,"type":"page_view"})", kNow, &e).reason,
            "invalid_type");
  EXPECT_EQ(decoder.Decode(head + R"(,"type":42})", kNow, &e).reason,
            "invalid_type");
  // Really missing: no key, null, or the enum's zero name.
  EXPECT_EQ(decoder.Decode(head + "}", kNow, &e).reason, "missing_type");
  EXPECT_EQ(decoder.Decode(head + R"(,"type":null})", kNow, &e).reason,
            "missing_type");
  EXPECT_EQ(
      decoder.Decode(head + R"(,"type":"EVENT_TYPE_UNSPECIFIED"})", kNow, &e)
          .reason,
      "missing_type");
  // A nested "type" is not the event's.
  EXPECT_EQ(decoder.Decode(head + R"(,"extra":{"type":"X"}})", kNow, &e).reason,
            "missing_type");
  EXPECT_TRUE(decoder.Decode(head + R"(,"type":"PAGE_VIEW"})", kNow, &e).ok);
}

}  // namespace
}  // namespace kpistream
