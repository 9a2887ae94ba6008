#include "export/dead_letter.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::Pair;
using ::testing::StartsWith;

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or bytes
// beyond U+10FFFF), checked independently of the code under test.
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    int n = c < 0x80         ? 1
            : (c >> 5) == 6  ? 2
            : (c >> 4) == 14 ? 3
            : (c >> 3) == 30 ? 4
                             : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (int k = 1; k < n; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc >> 6) != 2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
        (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n;
  }
  return true;
}

TEST(DeadLetterTest, HeadersCarryReasonDetailAndSource) {
  EXPECT_THAT(DeadLetterHeaders("malformed", "not a valid JSON WebEvent: x",
                                "web.events", 3, 1234567890123),
              ElementsAre(Pair("reason", "malformed"),
                          Pair("detail", "not a valid JSON WebEvent: x"),
                          Pair("source_topic", "web.events"),
                          Pair("source_partition", "3"),
                          Pair("source_offset", "1234567890123")));
}

TEST(DeadLetterTest, EngineReasonsWithoutADetailAreExplained) {
  for (const char* reason : {"bot", "late", "duplicate"}) {
    const KafkaHeaders headers = DeadLetterHeaders(reason, "", "t", 0, 0);
    ASSERT_EQ(headers[1].first, "detail");
    EXPECT_FALSE(headers[1].second.empty()) << reason;
    EXPECT_EQ(headers[1].second, DefaultDetail(reason));
  }
  EXPECT_EQ(DefaultDetail("malformed"), "");
}

TEST(DeadLetterTest, LongDetailIsCutAtACharacterBoundary) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "\xC3\xA9";  // é, 2 bytes
  const std::string cut = SanitizeDetail(text, kDeadLetterDetailMaxBytes);
  EXPECT_LE(cut.size(), kDeadLetterDetailMaxBytes);
  EXPECT_GE(cut.size(), kDeadLetterDetailMaxBytes - 4);
  EXPECT_THAT(cut, EndsWith("..."));
  EXPECT_TRUE(IsValidUtf8(cut));
  EXPECT_THAT(cut, StartsWith("\xC3\xA9\xC3\xA9"));

  // A 4-byte character straddling the limit is left out whole.
  const std::string emoji = std::string(250, 'a') + "\xF0\x9F\x98\x80" + "bbbb";
  const std::string cut_emoji = SanitizeDetail(emoji, 256);
  EXPECT_EQ(cut_emoji, std::string(250, 'a') + "...");
  EXPECT_TRUE(IsValidUtf8(cut_emoji));
}

TEST(DeadLetterTest, DetailThatFitsIsKept) {
  const std::string exact(256, 'x');
  EXPECT_EQ(SanitizeDetail(exact, 256), exact);
  EXPECT_EQ(SanitizeDetail(std::string(257, 'x'), 256),
            std::string(253, 'x') + "...");
  EXPECT_EQ(SanitizeDetail("", 256), "");
  EXPECT_EQ(SanitizeDetail("caf\xC3\xA9 \xE2\x82\xAC", 256),
            "caf\xC3\xA9 \xE2\x82\xAC");
}

TEST(DeadLetterTest, InvalidUtf8AndLineBreaksAreMadeSafe) {
  const std::string out =
      SanitizeDetail("bad \xFF\xC3 byte\nnext\tline \xED\xA0\x80", 256);
  EXPECT_TRUE(IsValidUtf8(out));
  EXPECT_EQ(out.find('\n'), std::string::npos);
  EXPECT_EQ(out.find('\t'), std::string::npos);
  EXPECT_EQ(out,
            "bad \xEF\xBF\xBD\xEF\xBF\xBD byte next line "
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

// A dead letter must fit the producer's message.max.bytes (SPEC §10: no
// record stops the engine): the value is cut first, then the key, and
// headers say from what size.
TEST(DeadLetterTest, ARecordTooLargeForTheProducerIsCutToFit) {
  auto size = [](absl::string_view key, absl::string_view value,
                 const KafkaHeaders& headers) {
    size_t n = key.size() + value.size() + kRecordFramingBytes;
    for (const auto& [name, text] : headers) n += name.size() + text.size();
    return n;
  };
  auto header = [](const KafkaHeaders& headers, absl::string_view name) {
    for (const auto& [n, text] : headers) {
      if (n == name) return text;
    }
    return std::string("(none)");
  };
  const std::string big(100000, 'v'), big_key(20000, 'k');
  KafkaHeaders headers = DeadLetterHeaders("malformed", "", "in", 0, 7);
  absl::string_view key = "k1", value = big;
  FitDeadLetter(200000, &key, &value, &headers);  // fits: untouched
  EXPECT_EQ(value.size(), big.size());
  EXPECT_EQ(header(headers, "value_truncated_from"), "(none)");

  FitDeadLetter(50000, &key, &value, &headers);
  EXPECT_EQ(header(headers, "value_truncated_from"), "100000");
  EXPECT_EQ(header(headers, "key_truncated_from"), "(none)");
  EXPECT_EQ(key, "k1");
  EXPECT_EQ(value, absl::string_view(big).substr(0, value.size()));
  EXPECT_LE(size(key, value, headers), 50000u);
  EXPECT_GT(size(key, value, headers), 49000u);

  headers = DeadLetterHeaders("malformed", "", "in", 0, 7);
  key = big_key;
  value = big;
  FitDeadLetter(10000, &key, &value, &headers);
  EXPECT_EQ(header(headers, "key_truncated_from"), "20000");
  EXPECT_TRUE(value.empty());
  EXPECT_LE(size(key, value, headers), 10000u);
}

}  // namespace
}  // namespace kpistream
