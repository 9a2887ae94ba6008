#include "aggregate/utf8.h"

#include <string>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

TEST(Utf8Test, SequenceLengths) {
  EXPECT_EQ(Utf8SequenceLength(""), 0u);
  EXPECT_EQ(Utf8SequenceLength("a"), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9x"), 2u);         // é
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC"), 3u);      // €
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x98\x80"), 4u);  // U+1F600
  EXPECT_EQ(Utf8SequenceLength("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xC3"), 0u);              // truncated
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82"), 0u);          // truncated
  EXPECT_EQ(Utf8SequenceLength("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(Utf8SequenceLength("\xE0\x80\xAF"), 0u);      // overlong
  EXPECT_EQ(Utf8SequenceLength("\xF0\x80\x80\xAF"), 0u);  // overlong
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80"), 0u);      // surrogate
  EXPECT_EQ(Utf8SequenceLength("\xF4\x90\x80\x80"), 0u);  // > U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xF8\x88\x80\x80"), 0u);  // no such lead
  EXPECT_EQ(Utf8SequenceLength("\x80"), 0u);              // continuation
  EXPECT_EQ(Utf8SequenceLength("\xC3\x28"), 0u);          // bad continuation
}

TEST(Utf8Test, ValidAndPrintable) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("q \"quote\" \\ \xC3\xA9 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("ok\xC3"));
  EXPECT_FALSE(IsValidUtf8("a\xED\xBF\xBFz"));
  // Words of eight ASCII bytes are passed at once: what follows them, and
  // a word that holds another byte, is still judged.
  EXPECT_TRUE(IsValidUtf8("abcdefgh\xE2\x82\xAC"));
  EXPECT_TRUE(IsValidUtf8("abcdefg\xE2\x82\xAC ijklmnop"));
  EXPECT_FALSE(IsValidUtf8("abcdefghijklmnop\xE2\x82"));
  EXPECT_FALSE(IsValidUtf8("abcdefg\xC3"));
  EXPECT_FALSE(
      IsValidUtf8("abc\x80"
                  "defghijkl"));
  EXPECT_FALSE(IsValidUtf8("abcdefghijklmnopqrstuvw\xED\xA0\x80"));
  EXPECT_TRUE(
      IsValidUtf8(std::string("tab\tnul\0", 8)));  // valid, not printable
  EXPECT_FALSE(IsPrintableUtf8(std::string("tab\tnul\0", 8)));

  EXPECT_TRUE(IsPrintableUtf8("q \"quote\" \\ {x} \xC3\xA9 \xC2\xA0"));  // NBSP
  EXPECT_FALSE(IsPrintableUtf8("a\x1F"));                                // C0
  EXPECT_FALSE(IsPrintableUtf8("a\x7F"));                                // DEL
  EXPECT_FALSE(IsPrintableUtf8("a\xC2\x80"));  // C1, first
  EXPECT_FALSE(IsPrintableUtf8("a\xC2\x9F"));  // C1, last
  EXPECT_FALSE(IsPrintableUtf8("a\xC3"));      // not UTF-8
}

// The word-at-a-time paths (whole words, then the last eight bytes at
// once) judge as decoding byte by byte does: every length up to 40, with a
// valid or invalid sequence at every position.
TEST(Utf8Test, WordsAtATimeJudgeAsByteByByte) {
  auto byte_by_byte = [](absl::string_view s) {
    while (!s.empty()) {
      const size_t length = Utf8SequenceLength(s);
      if (length == 0) return false;
      s.remove_prefix(length);
    }
    return true;
  };
  const char* const inserts[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xC3",
                                 "\x80",     "\xED\xA0\x80", "\xFF"};
  int checked = 0;
  for (size_t size = 0; size <= 40; ++size) {
    const std::string ascii(size, 'a');
    ASSERT_TRUE(IsValidUtf8(ascii)) << size;
    for (size_t at = 0; at <= size; ++at) {
      for (const char* insert : inserts) {
        const std::string s = ascii.substr(0, at) + insert + ascii.substr(at);
        ASSERT_EQ(IsValidUtf8(s), byte_by_byte(s)) << size << " " << at;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 6 * 41 * 42 / 2);
}

TEST(Utf8Test, EscapeInvalidUtf8EscapesOnlyWhatIsNotUtf8) {
  EXPECT_EQ(EscapeInvalidUtf8("plain %41 caf\xC3\xA9"),
            "plain %41 caf\xC3\xA9");
  EXPECT_EQ(EscapeInvalidUtf8("a\xFF"
                              "b"),
            "a%FFb");
  EXPECT_EQ(EscapeInvalidUtf8("\xC3"), "%C3");                // truncated
  EXPECT_EQ(EscapeInvalidUtf8("\xC0\xAF"), "%C0%AF");         // overlong
  EXPECT_EQ(EscapeInvalidUtf8("\xED\xA0\x80"), "%ED%A0%80");  // surrogate
  EXPECT_EQ(EscapeInvalidUtf8("\xE2\x82\xAC\x80"), "\xE2\x82\xAC%80");
  for (const char* s : {"\xFF", "x\xF4\x90\x80\x80", "\xC3(", "ok"}) {
    EXPECT_TRUE(IsValidUtf8(EscapeInvalidUtf8(s))) << s;
  }
}

}  // namespace
}  // namespace kpistream
