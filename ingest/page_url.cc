#include "ingest/page_url.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "aggregate/text_search.h"
#include "aggregate/utf8.h"

namespace kpistream {
namespace {

// Click-id parameters in order of precedence: the ads platforms whose ids
// prove a paid click first.
constexpr std::array<absl::string_view, 8> kClickIds = {
    "gclid", "gbraid", "wbraid", "msclkid",
    "dclid", "fbclid", "ttclid", "li_fat_id"};

}  // namespace

bool HexByte(absl::string_view s, char* byte) {
  if (s.size() < 2 || !absl::ascii_isxdigit(s[0]) ||
      !absl::ascii_isxdigit(s[1])) {
    return false;
  }
  const auto value = [](char c) {
    return absl::ascii_isdigit(c) ? c - '0' : (c | 32) - 'a' + 10;
  };
  *byte = static_cast<char>(value(s[0]) * 16 + value(s[1]));
  return true;
}

void PercentDecodeTo(absl::string_view s, std::string* out) {
  out->clear();
  out->reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char byte;
    if (s[i] == '%' && HexByte(s.substr(i + 1), &byte)) {
      out->push_back(byte);
      i += 2;
    } else {
      out->push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
}

std::string PercentDecode(absl::string_view s) {
  std::string out;
  PercentDecodeTo(s, &out);
  return out;
}

namespace {

// A query parameter's value as the event keeps it: percent-decoded, unless
// that is not valid UTF-8 or holds a control character (%00, %0A: then as
// written, as a label value or a record's field may hold none). A view of
// `raw` when decoding changes nothing (no escape, no '+': most values),
// else of *storage. Cut to kMaxEventValueBytes (aggregate/event.h).
absl::string_view ParameterValue(absl::string_view raw, std::string* storage) {
  if (FindFirstOf(raw, "%+") == absl::string_view::npos) {
    // PercentDecode would return it unchanged, and a value that is not
    // valid UTF-8 is kept as written anyway.
    return CutUtf8(raw, kMaxEventValueBytes);
  }
  PercentDecodeTo(raw, storage);
  if (!IsPrintableUtf8(*storage)) return CutUtf8(raw, kMaxEventValueBytes);
  return CutUtf8(*storage, kMaxEventValueBytes);
}

}  // namespace

void FillCampaignFromPageUrl(EventView* e, CampaignStorage* storage) {
  const bool need_utm =
      e->utm_source.empty() || e->utm_medium.empty() || e->utm_campaign.empty();
  if (!need_utm && !e->click_id.empty()) return;
  // The query is between the first '?' and the fragment: a '?' after the
  // '#' is the fragment's (a hash-routed page, "/#/landing?gclid=x"),
  // which GA4 does not read either.
  absl::string_view url = e->page_url;
  url = url.substr(0, url.find('#'));
  const size_t q = url.find('?');
  if (q == absl::string_view::npos) return;
  url.remove_prefix(q + 1);
  size_t click_rank = kClickIds.size();
  bool click = false;
  while (!url.empty()) {
    const size_t amp = url.find('&');
    const absl::string_view pair = url.substr(0, amp);
    url.remove_prefix(amp == absl::string_view::npos ? url.size() : amp + 1);
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos || eq + 1 == pair.size()) continue;
    const absl::string_view key = pair.substr(0, eq);
    const absl::string_view raw = pair.substr(eq + 1);
    absl::string_view* field = nullptr;
    std::string* kept = nullptr;
    if (key == "utm_source") {
      field = &e->utm_source;
      kept = &storage->utm_source;
    } else if (key == "utm_medium") {
      field = &e->utm_medium;
      kept = &storage->utm_medium;
    } else if (key == "utm_campaign") {
      field = &e->utm_campaign;
      kept = &storage->utm_campaign;
    }
    if (field != nullptr) {
      if (!field->empty()) continue;  // the explicit field, or the first one
      *field = ParameterValue(raw, kept);
      continue;
    }
    if (!e->click_id.empty()) continue;
    for (size_t rank = 0; rank < click_rank; ++rank) {
      if (key != kClickIds[rank]) continue;
      click_rank = rank;
      const absl::string_view value =
          ParameterValue(raw, &storage->click_value);
      storage->click_id.assign(key.data(), key.size());
      storage->click_id.push_back('-');
      storage->click_id.append(value.data(), value.size());
      storage->click_id.resize(
          CutUtf8(storage->click_id, kMaxEventValueBytes).size());
      click = true;
      break;
    }
  }
  if (e->click_id.empty() && click) e->click_id = storage->click_id;
}

void FillCampaignFromPageUrl(Event* e) {
  EventView view = e->view();
  CampaignStorage storage;
  FillCampaignFromPageUrl(&view, &storage);
  // Only empty fields are filled; their views outlive the assignment (they
  // view the page URL or `storage`, never the field assigned).
  for (auto [from, to] : {std::pair{view.utm_source, &e->utm_source},
                          std::pair{view.utm_medium, &e->utm_medium},
                          std::pair{view.utm_campaign, &e->utm_campaign},
                          std::pair{view.click_id, &e->click_id}}) {
    if (to->empty() && !from.empty()) to->assign(from.data(), from.size());
  }
}

}  // namespace kpistream
