#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/partition_pipeline.h"
#include "gtest/gtest.h"
#include "kafka/record.h"
#include "kpistream/v1/state.pb.h"

namespace kpistream {
namespace {

kafka::Record Input(absl::string_view topic, int32_t partition, int64_t offset,
                    std::optional<absl::string_view> key,
                    absl::string_view value) {
  kafka::Record r;
  r.topic = topic;
  r.partition = partition;
  r.offset = offset;
  r.has_key = key.has_value();
  r.key = key.value_or("");
  r.value = value;
  return r;
}

// A record of the repartition topic holding `bytes`, as the consumer sees it.
kafka::Record Forwarded(const std::string& bytes) {
  kafka::Record r;
  r.topic = "g-repartition";
  r.partition = 3;
  r.offset = 77;
  r.has_key = true;
  r.key = "visitor";
  r.value = bytes;
  return r;
}

struct Parsed {
  kafka::Record source;
  std::optional<int64_t> watermark_us;
};

Parsed Parse(const kafka::Record& record) {
  Parsed p;
  ParseForwarded(record, &p.source, &p.watermark_us);
  return p;
}

TEST(ForwardedRecordTest, CarriesItsOriginAndValue) {
  const absl::Time watermark = absl::FromUnixMicros(1767225600123456);
  std::string bytes;
  FormatForwarded(Input("web-events", 5, 1234, "a/b/c", "{\"x\":1}"), watermark,
                  &bytes);
  const Parsed p = Parse(Forwarded(bytes));
  EXPECT_EQ(p.source.topic, "web-events");
  EXPECT_EQ(p.source.partition, 5);
  EXPECT_EQ(p.source.offset, 1234);
  EXPECT_TRUE(p.source.has_key);
  EXPECT_EQ(p.source.key, "a/b/c");  // a key may hold '/'
  EXPECT_EQ(p.source.value, "{\"x\":1}");
  EXPECT_EQ(p.watermark_us, 1767225600123456);
}

TEST(ForwardedRecordTest, NoKeyNoWatermarkAndBinaryValues) {
  // A protobuf value may hold any byte, the magic's included.
  const std::string value =
      absl::StrCat(std::string("\0\xff", 2), kForwardedMagic, "\n\x01");
  std::string bytes;
  FormatForwarded(Input("t", 0, 0, std::nullopt, value), absl::InfinitePast(),
                  &bytes);
  Parsed p = Parse(Forwarded(bytes));
  EXPECT_EQ(p.source.topic, "t");
  EXPECT_EQ(p.source.partition, 0);
  EXPECT_EQ(p.source.offset, 0);
  EXPECT_FALSE(p.source.has_key);
  EXPECT_EQ(p.source.key, "");
  EXPECT_EQ(p.source.value, value);
  EXPECT_FALSE(p.watermark_us.has_value());

  // An empty key is a key; an empty value stays empty.
  FormatForwarded(Input("t", 1, 2, "", ""), absl::FromUnixMicros(-5), &bytes);
  p = Parse(Forwarded(bytes));
  EXPECT_TRUE(p.source.has_key);
  EXPECT_EQ(p.source.key, "");
  EXPECT_EQ(p.source.value, "");
  EXPECT_EQ(p.watermark_us, -5);
}

TEST(ForwardedRecordTest, TheBufferIsReusedWithoutLeftovers) {
  std::string bytes;
  FormatForwarded(Input("a-long-topic-name", 12, 99999999, "k-1", "first"),
                  absl::FromUnixMicros(1), &bytes);
  FormatForwarded(Input("t", 1, 2, std::nullopt, "x"), absl::InfinitePast(),
                  &bytes);
  const Parsed p = Parse(Forwarded(bytes));
  EXPECT_EQ(p.source.topic, "t");
  EXPECT_EQ(p.source.offset, 2);
  EXPECT_FALSE(p.source.has_key);
  EXPECT_EQ(p.source.value, "x");
  EXPECT_FALSE(p.watermark_us.has_value());
}

// A record of the repartition topic that is not one (a foreign record in an
// internal topic) or is cut short: its origin is unknown (the engine keeps it
// as an "unknown_topic" dead letter), nothing is read past its end.
TEST(ForwardedRecordTest, AForeignOrTruncatedRecordHasNoOrigin) {
  std::string good;
  FormatForwarded(Input("web-events", 5, 1234, "k", "value"),
                  absl::FromUnixMicros(7), &good);
  std::string bad_length = good;
  bad_length[kForwardedMagic.size() + 3] = '\x7f';  // far beyond the end
  const std::string inputs[] = {
      "",
      "{\"siteId\":\"shop\"}",
      std::string(kForwardedMagic),
      good.substr(0, kForwardedMagic.size() + 3),
      good.substr(0, kForwardedMagic.size() + 6),  // the source cut short
      bad_length,
      absl::StrCat("\xff"
                   "kpg",
                   good.substr(4)),
  };
  for (const std::string& value : inputs) {
    const Parsed p = Parse(Forwarded(value));
    EXPECT_EQ(p.source.topic, "") << absl::CEscape(value);
    EXPECT_EQ(p.source.partition, -1) << absl::CEscape(value);
    EXPECT_EQ(p.source.offset, -1) << absl::CEscape(value);
    EXPECT_FALSE(p.source.has_key) << absl::CEscape(value);
    EXPECT_FALSE(p.watermark_us.has_value()) << absl::CEscape(value);
    EXPECT_EQ(p.source.value, value) << absl::CEscape(value);
  }
  // A source without all its fields: as malformed.
  const std::string source = "1/2/t";  // one slash short
  std::string framed(kForwardedMagic);
  framed.push_back(static_cast<char>(source.size()));
  framed.append(3, '\0');
  framed += source;
  framed += "v";
  const Parsed p = Parse(Forwarded(framed));
  EXPECT_EQ(p.source.topic, "");
  EXPECT_EQ(p.source.offset, -1);
}

// Watermark records and forwarded ones are told apart by their first bytes
// (no header is looked at for either).
TEST(ForwardedRecordTest, WatermarkRecordsAreToldApart) {
  v1::UpstreamWatermarks marks;
  v1::SourceWatermark* m = marks.add_sources();
  m->set_topic("web-events");
  m->set_partition(4);
  m->set_watermark_us(123);
  std::string value(kWatermarksMagic);
  marks.AppendToString(&value);
  absl::string_view bytes;
  ASSERT_TRUE(UpstreamWatermarksOf(Forwarded(value), &bytes));
  v1::UpstreamWatermarks parsed;
  ASSERT_TRUE(
      parsed.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  ASSERT_EQ(parsed.sources_size(), 1);
  EXPECT_EQ(parsed.sources(0).topic(), "web-events");
  EXPECT_EQ(parsed.sources(0).partition(), 4);
  EXPECT_EQ(parsed.sources(0).watermark_us(), 123);

  std::string forwarded;
  FormatForwarded(Input("t", 1, 2, std::nullopt, value), absl::InfinitePast(),
                  &forwarded);
  EXPECT_FALSE(UpstreamWatermarksOf(Forwarded(forwarded), &bytes));
  EXPECT_FALSE(UpstreamWatermarksOf(Forwarded("{\"siteId\":\"s\"}"), &bytes));
  EXPECT_FALSE(UpstreamWatermarksOf(Forwarded(""), &bytes));
  // A forwarded record whose value is a watermark record's is forwarded.
  const Parsed p = Parse(Forwarded(forwarded));
  EXPECT_EQ(p.source.topic, "t");
  EXPECT_EQ(p.source.value, value);
}

}  // namespace
}  // namespace kpistream
