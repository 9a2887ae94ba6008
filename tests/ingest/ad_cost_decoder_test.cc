#include "ingest/ad_cost_decoder.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "ingest/protobuf_log.h"

namespace kpistream {
namespace {

v1::AdCost ValidCost() {
  v1::AdCost cost;
  cost.set_site_id("shop");
  cost.set_cost_micros(12'500'000);
  cost.set_currency("EUR");
  cost.set_utm_source("google");
  cost.set_utm_medium("cpc");
  cost.mutable_date_start()->set_seconds(1767225600);  // 2026-01-01
  return cost;
}

TEST(AdCostDecoderTest, AcceptsAValidBinaryRecord) {
  AdCostDecoder decoder(InputFormat::kProtobuf);
  v1::AdCost out;
  const DecodeResult r = decoder.Decode(ValidCost().SerializeAsString(), &out);
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(out.cost_micros(), 12'500'000);
}

// Binary input may carry timestamps no Timestamp may hold; they would make
// event-time arithmetic overflow.
TEST(AdCostDecoderTest, ARecordOfTheOtherFormatSaysSo) {
  v1::AdCost out;
  std::string json;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(ValidCost(), &json).ok());
  DecodeResult r = AdCostDecoder(InputFormat::kProtobuf).Decode(json, &out);
  EXPECT_EQ(r.reason, "malformed");
  EXPECT_THAT(r.detail,
              ::testing::EndsWith(
                  "; the record looks like JSON: is the input's format json?"));
  r = AdCostDecoder(InputFormat::kJson)
          .Decode(ValidCost().SerializeAsString(), &out);
  EXPECT_EQ(r.reason, "malformed");
  EXPECT_THAT(r.detail, ::testing::EndsWith("is the input's format protobuf?"));
}

// A string field with invalid UTF-8: libprotobuf gives the cause only in
// its log, which went to stderr, a line of its own format for every record
// (an audit: 1,000 bad records, 1,000 "[libprotobuf ERROR ...]" lines beside
// the JSON log, the dead letters saying only "not a valid protobuf
// AdCost"). The detail names the field; stderr gets nothing; a line
// libprotobuf logs outside a decode goes to the process' sink.
std::string WithInvalidUtf8SiteId() {
  std::string bytes = ValidCost().SerializeAsString();
  const size_t at = bytes.find("shop");
  bytes[at + 1] = '\xff';
  return bytes;
}

std::vector<std::string>* g_sunk = nullptr;

TEST(AdCostDecoderTest, InvalidUtf8IsNamedInTheDetailNotOnStderr) {
  AdCostDecoder decoder(InputFormat::kProtobuf);
  v1::AdCost out;
  ::testing::internal::CaptureStderr();
  const DecodeResult r = decoder.Decode(WithInvalidUtf8SiteId(), &out);
  const std::string written = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "malformed");
  EXPECT_THAT(r.detail, ::testing::StartsWith("not a valid protobuf AdCost: "));
  EXPECT_THAT(r.detail, ::testing::HasSubstr("AdCost.site_id"));
  EXPECT_THAT(r.detail, ::testing::HasSubstr("invalid UTF-8"));
  EXPECT_EQ(written, "");

  std::vector<std::string> sunk;
  g_sunk = &sunk;
  SetProtobufLogSink([](bool error, absl::string_view message) {
    g_sunk->push_back(absl::StrCat(error ? "error: " : "warning: ", message));
  });
  ::testing::internal::CaptureStderr();
  v1::AdCost direct;
  EXPECT_FALSE(direct.ParseFromString(WithInvalidUtf8SiteId()));
  EXPECT_EQ(decoder.Decode(WithInvalidUtf8SiteId(), &out).reason, "malformed");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  SetProtobufLogSink(nullptr);
  g_sunk = nullptr;
  ASSERT_EQ(sunk.size(), 1u);
  EXPECT_THAT(sunk[0], ::testing::StartsWith("error: String field "
                                             "'kpistream.v1.AdCost.site_id'"));
}

// A cost beyond 1e17 micros is malformed (its sums are int64 micros).
TEST(AdCostDecoderTest, ACostIsBounded) {
  AdCostDecoder decoder(InputFormat::kProtobuf);
  v1::AdCost out;
  v1::AdCost cost = ValidCost();
  cost.set_cost_micros(kMaxAmountMicros + 1);
  DecodeResult r = decoder.Decode(cost.SerializeAsString(), &out);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "malformed");
  EXPECT_THAT(r.detail, ::testing::HasSubstr("cost_micros"));
  cost.set_cost_micros(kMaxAmountMicros);
  EXPECT_TRUE(decoder.Decode(cost.SerializeAsString(), &out).ok);
}

TEST(AdCostDecoderTest, RejectsTimestampsOutOfRange) {
  AdCostDecoder decoder(InputFormat::kProtobuf);
  v1::AdCost out;
  v1::AdCost cost = ValidCost();
  cost.mutable_date_start()->set_seconds(INT64_MIN);
  cost.mutable_date_start()->set_nanos(-1);
  DecodeResult r = decoder.Decode(cost.SerializeAsString(), &out);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "malformed");
  cost = ValidCost();
  cost.mutable_time()->set_nanos(1'000'000'000);
  r = decoder.Decode(cost.SerializeAsString(), &out);
  EXPECT_FALSE(r.ok);
  cost = ValidCost();
  cost.mutable_date_end()->set_seconds(253402300800);  // year 10000
  r = decoder.Decode(cost.SerializeAsString(), &out);
  EXPECT_FALSE(r.ok);
}

TEST(AdCostDecoderTest, JsonNeedsSiteCostAndCurrency) {
  AdCostDecoder decoder(InputFormat::kJson);
  v1::AdCost out;
  EXPECT_TRUE(decoder
                  .Decode(R"({"siteId":"shop","costMicros":"5","currency":"EUR",
                      "dateStart":"2026-01-01T00:00:00Z"})",
                          &out)
                  .ok);
  EXPECT_EQ(
      decoder.Decode(R"({"costMicros":"5","currency":"EUR"})", &out).reason,
      "missing_site_id");
  EXPECT_EQ(decoder
                .Decode(R"({"siteId":"s","costMicros":"-5","currency":"EUR",
                      "dateStart":"2026-01-01"})",
                        &out)
                .reason,
            "missing_cost");
  // No spend (a paused campaign's day), with or without the 0, which proto3
  // JSON leaves out: accepted (review: dead-lettered as missing_cost).
  for (const char* zero :
       {R"({"siteId":"s","costMicros":"0","currency":"EUR",
            "dateStart":"2026-01-01"})",
        R"({"siteId":"s","currency":"EUR","dateStart":"2026-01-01"})"}) {
    const DecodeResult r = decoder.Decode(zero, &out);
    EXPECT_TRUE(r.ok) << zero << ": " << r.reason;
    EXPECT_EQ(out.cost_micros(), 0);
  }
  // Still no currency, no date: refused.
  EXPECT_EQ(
      decoder.Decode(R"({"siteId":"s","dateStart":"2026-01-01"})", &out).reason,
      "missing_currency");
  EXPECT_EQ(decoder.Decode("not json", &out).reason, "malformed");
}

// The KPI targets date spend by its date_start, else its time, else its
// date_end; a record with none would have been dated 1970, which no target
// keeps: refused, as an event without a time is.
TEST(AdCostDecoderTest, SpendNeedsADate) {
  AdCostDecoder decoder(InputFormat::kJson);
  v1::AdCost out;
  const std::string cost = R"({"siteId":"s","costMicros":"5","currency":"EUR")";
  const DecodeResult none = decoder.Decode(cost + "}", &out);
  EXPECT_FALSE(none.ok);
  EXPECT_EQ(none.reason, "missing_event_time");
  const struct {
    std::string dates;
    int day;  // of January 2026
  } cases[] = {
      {R"("dateEnd":"2026-01-03T00:00:00Z")", 3},
      {R"("time":"2026-01-02T00:00:00Z","dateEnd":"2026-01-03T00:00:00Z")", 2},
      {R"("dateStart":"2026-01-01T00:00:00Z","time":"2026-01-02T00:00:00Z")",
       1},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(decoder.Decode(cost + "," + c.dates + "}", &out).ok) << c.dates;
    EXPECT_EQ(
        AdCostDecoder::SpendTime(out),
        absl::FromCivil(absl::CivilDay(2026, 1, c.day), absl::UTCTimeZone()))
        << c.dates;
  }
}

// Ad platforms' daily exports date spend by day: JSON takes a plain date
// for dateStart and dateEnd (either spelling), at its midnight UTC (review:
// every such record was dead-lettered as malformed, its spend missing from
// ROAS). Only a whole date: anything else is still a Timestamp's text.
TEST(AdCostDecoderTest, JsonTakesPlainDates) {
  AdCostDecoder decoder(InputFormat::kJson);
  v1::AdCost out;
  const std::string cost = R"({"siteId":"s","costMicros":"5","currency":"EUR",)"
                           R"("utmCampaign":"\"dateStart\":\"2026-01-09\"",)";
  ASSERT_TRUE(
      decoder
          .Decode(
              cost + R"("dateStart": "2026-10-01","date_end":"2026-10-02"})",
              &out)
          .ok);
  EXPECT_EQ(AdCostDecoder::SpendTime(out),
            absl::FromCivil(absl::CivilDay(2026, 10, 1), absl::UTCTimeZone()));
  // A plain end date is inclusive: the interval ends at the next midnight
  // (review: a daily row, start and end the same day, was an empty
  // interval dated at the day's start).
  const auto midnight = [](int day) {
    return absl::ToUnixSeconds(
        absl::FromCivil(absl::CivilDay(2026, 10, day), absl::UTCTimeZone()));
  };
  EXPECT_EQ(out.date_end().seconds(), midnight(3));
  ASSERT_TRUE(
      decoder
          .Decode(cost + R"("dateStart":"2026-10-01","dateEnd":"2026-10-01"})",
                  &out)
          .ok);
  EXPECT_EQ(out.date_start().seconds(), midnight(1));
  EXPECT_EQ(out.date_end().seconds(), midnight(2));
  // A timestamp is an instant: the end as given.
  ASSERT_TRUE(decoder
                  .Decode(cost + R"("dateStart":"2026-10-01",)"
                                 R"("dateEnd":"2026-10-02T00:00:00Z"})",
                          &out)
                  .ok);
  EXPECT_EQ(out.date_end().seconds(), midnight(2));
  // The campaign's text, which only looks like a date field, is kept.
  EXPECT_EQ(out.utm_campaign(), R"("dateStart":"2026-01-09")");
  ASSERT_TRUE(decoder.Decode(cost + R"("date_start":"2026-10-03"})", &out).ok);
  EXPECT_EQ(AdCostDecoder::SpendTime(out),
            absl::FromCivil(absl::CivilDay(2026, 10, 3), absl::UTCTimeZone()));
  for (const char* bad :
       {R"("dateStart":"2026-10-1")", R"("dateStart":"2026/10/01")",
        R"("dateStart":"2026-13-01")"}) {
    EXPECT_EQ(decoder.Decode(cost + bad + "}", &out).reason, "malformed")
        << bad;
  }
}

// Only the record's own (top-level) dates are read as plain days: a field
// of that name in a nested object the parser ignores is not the record's
// (an audit: an ignored "export":{"dateEnd":"2025-12-31"} moved the
// record's own end a day on, and without an end of its own had the record
// refused as ending before its start).
TEST(AdCostDecoderTest, DatesInIgnoredNestedObjectsAreNotTheRecords) {
  AdCostDecoder decoder(InputFormat::kJson);
  const std::string head =
      R"({"siteId":"s","currency":"EUR","costMicros":"5",)";
  v1::AdCost plain, nested;
  ASSERT_TRUE(decoder
                  .Decode(head + R"("dateStart":"2026-01-01T00:00:00Z",)"
                                 R"("dateEnd":"2026-01-01T12:00:00Z"})",
                          &plain)
                  .ok);
  EXPECT_EQ(plain.date_end().seconds(), 1767268800);  // 2026-01-01T12:00Z
  for (const char* ignored :
       {R"("export":{"dateEnd":"2025-12-31"})",
        R"("rows":[{"date_end":"2025-12-31"},{"dateStart":"2025-12-30"}])",
        R"("export":{"inner":{"dateEnd" : "2025-12-31"}})"}) {
    SCOPED_TRACE(ignored);
    ASSERT_TRUE(decoder
                    .Decode(head +
                                R"("dateStart":"2026-01-01T00:00:00Z",)"
                                R"("dateEnd":"2026-01-01T12:00:00Z",)" +
                                ignored + "}",
                            &nested)
                    .ok);
    EXPECT_EQ(nested.date_end().seconds(), plain.date_end().seconds());
    const DecodeResult day = decoder.Decode(
        head + R"("dateStart":"2026-01-01",)" + ignored + "}", &nested);
    EXPECT_TRUE(day.ok) << day.reason << ": " << day.detail;
    EXPECT_EQ(nested.date_start().seconds(), 1767225600);
    EXPECT_FALSE(nested.has_date_end());
  }
  // The nested one first, the record's own plain day after it: still read.
  const DecodeResult own = decoder.Decode(
      head + R"("export":{"dateEnd":"2025-12-31T00:00:00Z"},)"
             R"("dateStart":"2026-01-01","dateEnd":"2026-01-01"})",
      &nested);
  ASSERT_TRUE(own.ok) << own.reason << ": " << own.detail;
  EXPECT_EQ(nested.date_end().seconds(), 1767225600 + 86400);
}

// ROAS divides revenue by the cost of the same currency label, and
// conversions' currencies are upper case: so are costs'.
TEST(AdCostDecoderTest, CurrencyInUpperCaseAndDatesInOrder) {
  AdCostDecoder decoder(InputFormat::kJson);
  v1::AdCost out;
  ASSERT_TRUE(decoder
                  .Decode(R"({"siteId":"a","costMicros":"5","currency":"eur",
                      "time":"2026-01-01T10:00:00Z"})",
                          &out)
                  .ok);
  EXPECT_EQ(out.currency(), "EUR");
  const DecodeResult r = decoder.Decode(
      R"({"siteId":"a","costMicros":"5","currency":"EUR",
          "dateStart":"2026-01-02T00:00:00Z","dateEnd":"2026-01-01T00:00:00Z"})",
      &out);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "malformed");
  EXPECT_EQ(r.detail, "date_end is before date_start");
  // Plain dates alike: the end day before the start's (an audit: the day an
  // inclusive end adds made it an empty interval, accepted); a start within
  // the end day is before that day's end.
  const DecodeResult days = decoder.Decode(
      R"({"siteId":"a","costMicros":"5","currency":"EUR",
          "dateStart":"2026-12-05","dateEnd":"2026-12-04"})",
      &out);
  EXPECT_EQ(days.reason, "malformed");
  EXPECT_EQ(days.detail, "date_end is before date_start");
  EXPECT_TRUE(decoder
                  .Decode(R"({"siteId":"a","costMicros":"5","currency":"EUR",
                      "dateStart":"2026-12-05T10:00:00Z",
                      "dateEnd":"2026-12-05"})",
                          &out)
                  .ok);
}

// A currency is an ISO 4217 code, three letters: anything else would be a
// label value of ad cost that no revenue shares (ROAS of nothing).
TEST(AdCostDecoderTest, ACurrencyThatIsNotThreeLettersIsMalformed) {
  AdCostDecoder decoder(InputFormat::kProtobuf);
  v1::AdCost out;
  v1::AdCost cost = ValidCost();
  for (const char* bad : {"\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC", "US Dollar",
                          "EU", "EURO", "E1R", "$"}) {
    cost.set_currency(bad);
    const DecodeResult r = decoder.Decode(cost.SerializeAsString(), &out);
    EXPECT_FALSE(r.ok) << bad;
    EXPECT_EQ(r.reason, "malformed") << bad;
    EXPECT_THAT(r.detail, ::testing::HasSubstr("is not an ISO 4217 code"))
        << bad;
  }
  cost.set_currency("chf");
  ASSERT_TRUE(decoder.Decode(cost.SerializeAsString(), &out).ok);
  EXPECT_EQ(out.currency(), "CHF");
}

// Bounded as an event's are: a campaign becomes a label value.
TEST(AdCostDecoderTest, AValueLongerThanAnEventsIsMalformed) {
  AdCostDecoder decoder(InputFormat::kProtobuf);
  v1::AdCost out;
  v1::AdCost cost = ValidCost();
  cost.set_utm_campaign(std::string(kMaxEventValueBytes, 'c'));
  EXPECT_TRUE(decoder.Decode(cost.SerializeAsString(), &out).ok);
  cost.set_utm_campaign(std::string(kMaxEventValueBytes + 1, 'c'));
  const DecodeResult r = decoder.Decode(cost.SerializeAsString(), &out);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "malformed");
  EXPECT_EQ(r.detail, "utm_campaign is 1025 bytes long, more than 1024");
}

}  // namespace
}  // namespace kpistream
