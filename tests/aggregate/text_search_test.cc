#include "aggregate/text_search.h"

#include <random>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

TEST(TextSearchTest, FindFirstOfAnswersAsStringView) {
  EXPECT_EQ(FindFirstOf("", "?#"), absl::string_view::npos);
  EXPECT_EQ(FindFirstOf("/a/b", ""), absl::string_view::npos);
  EXPECT_EQ(FindFirstOf("/a?x#y", "?#"), 2u);
  EXPECT_EQ(FindFirstOf("/a#y?x", "?#"), 2u);
  EXPECT_EQ(FindFirstOf("?", "?#"), 0u);
  EXPECT_EQ(FindFirstOf("abc#", "?#"), 3u);
  EXPECT_EQ(
      FindFirstOf(absl::string_view("a\0b", 3), absl::string_view("\0", 1)),
      1u);
  // Against std::string_view on strings over a small alphabet, where the
  // characters searched for occur anywhere, several times, or not at all.
  std::mt19937 rng(7);
  const std::string alphabet = "ab/?#:-=.eE";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 12, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    std::string chars(rng() % 4, ' ');
    for (char& c : chars) c = alphabet[rng() % alphabet.size()];
    EXPECT_EQ(FindFirstOf(s, chars), std::string_view(s).find_first_of(chars))
        << s << " / " << chars;
  }
}

// A scheme is at the start of the URL only; a "://" later on (a URL in the
// query of a bare path) is none.
TEST(TextSearchTest, FindSchemeEndFindsAStartingSchemeOnly) {
  EXPECT_EQ(FindSchemeEnd("https://a/b"), 5u);
  EXPECT_EQ(FindSchemeEnd("android-app://com.google.x/"), 11u);
  EXPECT_EQ(FindSchemeEnd("a+b.c-1://x"), 7u);
  EXPECT_EQ(FindSchemeEnd("/a/b"), absl::string_view::npos);
  EXPECT_EQ(FindSchemeEnd("/login?next=https://x/y"), absl::string_view::npos);
  EXPECT_EQ(FindSchemeEnd("a:b://c"), absl::string_view::npos);
  EXPECT_EQ(FindSchemeEnd("1a://c"), absl::string_view::npos);
  EXPECT_EQ(FindSchemeEnd("a:/"), absl::string_view::npos);
  EXPECT_EQ(FindSchemeEnd("://"), absl::string_view::npos);
  EXPECT_EQ(FindSchemeEnd(""), absl::string_view::npos);
  // Against the rule written another way: s.find("://") when everything
  // before it is a scheme.
  std::mt19937 rng(9);
  const std::string alphabet = "ab1+:/?";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 10, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    const size_t at = std::string_view(s).find("://");
    bool scheme = at != std::string_view::npos && at > 0 &&
                  absl::ascii_isalpha(static_cast<unsigned char>(s[0]));
    for (size_t j = 0; scheme && j < at; ++j) {
      scheme =
          absl::ascii_isalnum(static_cast<unsigned char>(s[j])) || s[j] == '+';
    }
    EXPECT_EQ(FindSchemeEnd(s), scheme ? at : std::string_view::npos) << s;
  }
}

}  // namespace
}  // namespace kpistream
