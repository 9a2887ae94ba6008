// Fuzz target: the campaign parameters read from a page URL
// (ingest/page_url.h), and what reads them next: the GA4 channel grouping
// (aggregate/channel_classifier.h) and the funnels' URL path glob
// (aggregate/sessionizer.h GlobMatch, UrlPath).
//
// Input, as lines: the page URL; then optionally a glob pattern; then
// optionally the event's own utm_source, utm_medium, utm_campaign,
// click_id and referrer (empty lines: not set). Asserts:
//  - fields the event carries are left alone; a click id read from the URL
//    is "<one of the known parameters>-<value>"; filling is idempotent;
//  - a valid UTF-8 URL gives valid UTF-8 fields;
//  - PercentDecode never grows its input and leaves text without '%' or
//    '+' alone;
//  - UrlPath() is a part of the URL; GlobMatch() agrees with a plain
//    dynamic-programming matcher;
//  - the channel is one of kChannelGroups.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/channel_groups.h"
#include "aggregate/sessionizer.h"
#include "ingest/page_url.h"
#include "tests/fuzz/fuzz_check.h"

namespace kpistream {
namespace {

// RFC 3629 UTF-8, written independently of page_url.cc's.
bool IsUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated
    for (int k = 1; k <= n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// '*' matches any run of characters, everything else itself.
bool GlobReference(absl::string_view pattern, absl::string_view text) {
  // match[j]: pattern[0, i) matches text[0, j).
  std::vector<char> match(text.size() + 1, 0), next(text.size() + 1, 0);
  match[0] = 1;
  for (size_t i = 0; i < pattern.size(); ++i) {
    std::fill(next.begin(), next.end(), 0);
    for (size_t j = 0; j <= text.size(); ++j) {
      if (pattern[i] == '*') {
        next[j] = match[j] || (j > 0 && next[j - 1]);
      } else if (j > 0) {
        next[j] = match[j - 1] && text[j - 1] == pattern[i];
      }
    }
    match.swap(next);
  }
  return match[text.size()];
}

bool IsKnownClickId(absl::string_view click_id) {
  for (absl::string_view name : {"gclid", "gbraid", "wbraid", "msclkid",
                                 "dclid", "fbclid", "ttclid", "li_fat_id"}) {
    if (absl::StartsWith(click_id, absl::StrCat(name, "-"))) return true;
  }
  return false;
}

void Run(const std::string& input) {
  static const auto* channels = new ChannelClassifier();
  std::vector<std::string> lines = absl::StrSplit(input, '\n');
  lines.resize(std::max<size_t>(lines.size(), 7));
  Event e;
  e.page_url = lines[0];
  e.utm_source = lines[2];
  e.utm_medium = lines[3];
  e.utm_campaign = lines[4];
  e.click_id = lines[5];
  e.referrer = lines[6];
  const Event before = e;
  const std::string where =
      absl::StrCat("input \"", absl::CHexEscape(input.substr(0, 300)), "\"");

  FillCampaignFromPageUrl(&e);
  for (auto [was, now] : {std::make_pair(&before.utm_source, &e.utm_source),
                          std::make_pair(&before.utm_medium, &e.utm_medium),
                          std::make_pair(&before.utm_campaign, &e.utm_campaign),
                          std::make_pair(&before.click_id, &e.click_id)}) {
    if (!was->empty()) KPISTREAM_FUZZ_CHECK(*was == *now, where);
    if (IsUtf8(e.page_url) && IsUtf8(*was)) {
      KPISTREAM_FUZZ_CHECK(IsUtf8(*now), where);
    }
  }
  if (before.click_id.empty() && !e.click_id.empty()) {
    KPISTREAM_FUZZ_CHECK(IsKnownClickId(e.click_id), where);
  }
  Event twice = e;
  FillCampaignFromPageUrl(&twice);
  KPISTREAM_FUZZ_CHECK(
      twice.utm_source == e.utm_source && twice.utm_medium == e.utm_medium &&
          twice.utm_campaign == e.utm_campaign && twice.click_id == e.click_id,
      where);

  const std::string decoded = PercentDecode(e.page_url);
  KPISTREAM_FUZZ_CHECK(decoded.size() <= e.page_url.size(), where);
  if (e.page_url.find_first_of("%+") == std::string::npos) {
    KPISTREAM_FUZZ_CHECK(decoded == e.page_url, where);
  }

  const absl::string_view url = e.page_url;
  const absl::string_view path = UrlPath(url);
  KPISTREAM_FUZZ_CHECK(
      path == "/" || (path.data() >= url.data() &&
                      path.data() + path.size() <= url.data() + url.size()),
      where);
  const absl::string_view pattern = lines[1];
  if (pattern.size() <= 64 && path.size() <= 512) {
    KPISTREAM_FUZZ_CHECK(
        GlobMatch(pattern, path) == GlobReference(pattern, path),
        absl::StrCat(where, ": GlobMatch(\"", absl::CHexEscape(pattern),
                     "\", \"", absl::CHexEscape(path), "\")"));
  }

  const std::string channel = channels->Attribute(e).channel;
  bool known = false;
  for (absl::string_view group : kChannelGroups) known |= group == channel;
  KPISTREAM_FUZZ_CHECK(known, absl::StrCat(where, ": channel ", channel));
}

}  // namespace
}  // namespace kpistream

KPISTREAM_FUZZ_TARGET(kpistream::Run)
