#include "ingest/page_url.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "aggregate/utf8.h"

namespace kpistream {
namespace {

int HexValue(char c) {
  return absl::ascii_isdigit(c) ? c - '0' : (c | 32) - 'a' + 10;
}

// Click-id parameters in order of precedence: the ads platforms whose ids
// prove a paid click first.
constexpr std::array<absl::string_view, 8> kClickIds = {
    "gclid", "gbraid", "wbraid", "msclkid",
    "dclid", "fbclid", "ttclid", "li_fat_id"};

}  // namespace

std::string PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) &&
        absl::ascii_isxdigit(s[i + 2])) {
      out.push_back(
          static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

void FillCampaignFromPageUrl(Event* e) {
  const bool need_utm =
      e->utm_source.empty() || e->utm_medium.empty() || e->utm_campaign.empty();
  if (!need_utm && !e->click_id.empty()) return;
  absl::string_view url = e->page_url;
  const size_t q = url.find('?');
  if (q == absl::string_view::npos) return;
  url.remove_prefix(q + 1);
  url = url.substr(0, url.find('#'));
  size_t click_rank = kClickIds.size();
  std::string click;
  while (!url.empty()) {
    const size_t amp = url.find('&');
    const absl::string_view pair = url.substr(0, amp);
    url.remove_prefix(amp == absl::string_view::npos ? url.size() : amp + 1);
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos || eq + 1 == pair.size()) continue;
    const absl::string_view key = pair.substr(0, eq);
    const absl::string_view raw = pair.substr(eq + 1);
    std::string* field = nullptr;
    if (key == "utm_source") {
      field = &e->utm_source;
    } else if (key == "utm_medium") {
      field = &e->utm_medium;
    } else if (key == "utm_campaign") {
      field = &e->utm_campaign;
    }
    if (field != nullptr) {
      if (!field->empty()) continue;  // the explicit field, or the first one
      *field = PercentDecode(raw);
      if (!IsValidUtf8(*field)) field->assign(raw.data(), raw.size());
      continue;
    }
    if (!e->click_id.empty()) continue;
    for (size_t rank = 0; rank < click_rank; ++rank) {
      if (key != kClickIds[rank]) continue;
      click_rank = rank;
      std::string value = PercentDecode(raw);
      if (!IsValidUtf8(value)) value.assign(raw.data(), raw.size());
      click = absl::StrCat(key, "-", value);
      break;
    }
  }
  if (e->click_id.empty() && !click.empty()) e->click_id = std::move(click);
}

}  // namespace kpistream
