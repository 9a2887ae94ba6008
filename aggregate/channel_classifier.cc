#include "aggregate/channel_classifier.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "aggregate/event.h"
#include "aggregate/text_search.h"

namespace kpistream {
namespace {

// Site names: the label before the public suffix ("google" for
// www.google.co.uk, any subdomain), as most of GA4's source categories
// hold a site under every name it has.
const char* const kSearchNames[] = {
    "google", "bing", "yahoo", "duckduckgo", "baidu",   "yandex",    "ecosia",
    "ask",    "aol",  "naver", "seznam",     "qwant",   "startpage", "brave",
    "sogou",  "so",   "360",   "msn",        "rambler", "onet",      "rakuten"};
const char* const kSocialNames[] = {
    "facebook",      "fb",        "instagram",   "t",
    "twitter",       "x",         "linkedin",    "lnkd",
    "reddit",        "pinterest", "tiktok",      "snapchat",
    "threads",       "mastodon",  "tumblr",      "vk",
    "weibo",         "quora",     "discord",     "whatsapp",
    "telegram",      "messenger", "line",        "xing",
    "meetup",        "ig",        "medium",      "slashdot",
    "flipboard",     "yelp",      "tripadvisor", "wechat",
    "kakao",         "digg",      "disqus",      "douban",
    "odnoklassniki", "pixiv",     "mixi",        "smartnews"};
const char* const kVideoNames[] = {
    "youtube", "youtu", "vimeo", "dailymotion", "twitch", "wistia",
    "netflix", "hulu",  "ted",   "disneyplus",  "iqiyi",  "youku"};
const char* const kShoppingNames[] = {
    "amazon",   "ebay",    "etsy",         "shopify",
    "walmart",  "alibaba", "aliexpress",   "google shopping",
    "shopping", "idealo",  "mercadolibre", "igshopping"};

// Exact hosts, matched before site names, where GA4's list puts a subdomain
// apart from its site: Naver's blogs, cafes and Q&A and Google Groups and
// Sites are social, and the web mail of three search engines is search
// (their other web apps are no search: IsWebAppSubdomain).
const char* const kSearchHosts[] = {"mail.google.com", "mail.yandex.ru",
                                    "mail.rambler.ru", "go.mail.ru"};
const char* const kSocialHosts[] = {"blog.naver.com",    "cafe.naver.com",
                                    "kin.naver.com",     "news.ycombinator.com",
                                    "groups.google.com", "sites.google.com",
                                    "answers.yahoo.com"};

// GA4: ^(.*cp.*|ppc|retargeting|paid.*)$
bool PaidMedium(absl::string_view m) {
  return absl::StrContains(m, "cp") || m == "ppc" || m == "retargeting" ||
         absl::StartsWith(m, "paid");
}

// GA4 campaign rule for shopping: ^(.*(([^a-df-z]|^)shop|shopping).*)$
bool ShoppingCampaign(absl::string_view c) {
  if (absl::StrContains(c, "shopping")) return true;
  for (size_t pos = c.find("shop"); pos != absl::string_view::npos;
       pos = c.find("shop", pos + 1)) {
    if (pos == 0) return true;
    const char before = c[pos - 1];
    if (!(before >= 'a' && before <= 'z') || before == 'e') return true;
  }
  return false;
}

bool IsEmail(absl::string_view v) {
  return v == "email" || v == "e-mail" || v == "e_mail" || v == "e mail";
}

bool NotSet(absl::string_view v) {
  return v.empty() || v == "(none)" || v == "(not set)" || v == "none";
}

// "co" in "google.co.uk", "com" in "google.com.mx".
bool IsGenericSecondLevel(absl::string_view label) {
  for (absl::string_view sld : {"co", "com", "ac", "ne", "net", "or", "org",
                                "gov", "go", "edu", "gob", "nic"}) {
    if (label == sld) return true;
  }
  return false;
}

bool IsWebAppSubdomain(absl::string_view label) {
  for (absl::string_view app :
       {"accounts", "mail", "docs", "drive", "calendar", "meet", "login",
        "outlook", "gemini", "bard", "chat"}) {
    if (label == app) return true;
  }
  return false;
}

// Site names of short-link domains ("t.co" for X, "youtu.be", "lnkd.in",
// "fb.me", "ig.me"): as a source the name alone says little ("t"), so any
// host of them is reported whole, as GA4 reports them (also "t.me",
// Telegram's, and "fb.com", whose names are the same).
bool IsShortLinkName(absl::string_view label) {
  for (absl::string_view alias : {"t", "fb", "ig", "youtu", "lnkd"}) {
    if (label == alias) return true;
  }
  return false;
}

bool IsHex(absl::string_view v) {
  for (char c : v) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

// `s` in lower case: `s` itself when it has no upper-case letter (most
// text), else a lowered copy in `*buffer`.
absl::string_view Lower(absl::string_view s, std::string* buffer) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (absl::ascii_isupper(static_cast<unsigned char>(s[i]))) {
      buffer->assign(s.data(), s.size());
      absl::AsciiStrToLower(buffer);
      return *buffer;
    }
  }
  return s;
}

// *out = s, in the capacity *out has.
void Assign(absl::string_view s, std::string* out) {
  out->assign(s.data(), s.size());
}

// The host of a URL, lower case, without "www." / "m." ... ("" when none):
// a view of `url`, or of `*buffer` when it had to be lowered.
absl::string_view HostOf(absl::string_view url, std::string* buffer) {
  const size_t scheme = FindSchemeEnd(url);
  if (scheme != absl::string_view::npos) url.remove_prefix(scheme + 3);
  url = url.substr(0, FindFirstOf(url, "/?#"));
  // No user name and password ("https://user:pw@host/"); an IPv6 address
  // whole, in its brackets (it was cut at its last colon, as a port).
  for (size_t i = url.size(); i-- > 0;) {
    if (url[i] == '@') {
      url.remove_prefix(i + 1);
      break;
    }
  }
  if (absl::StartsWith(url, "[")) {
    if (const size_t close = url.find(']'); close != absl::string_view::npos) {
      url = url.substr(0, close + 1);
    }
  } else if (const size_t port = url.rfind(':');
             port != absl::string_view::npos) {
    url = url.substr(0, port);
  }
  absl::string_view host = Lower(url, buffer);
  for (absl::string_view prefix : {"www.", "m.", "l.", "lm.", "mobile."}) {
    if (absl::StartsWith(host, prefix)) {
      host.remove_prefix(prefix.size());
      break;
    }
  }
  return host;
}

// Whether a raw click id can be a Google Ads id: gclid, gbraid and wbraid
// values are base64url ("Cj0KCQiA…", "EAIaIQob…", "0AAAAA…") with letters
// beyond hex. Other networks' ids are not: a UUID (li_fat_id, ScCid), a
// number (yclid), TikTok's dotted "E.C.P.…".
bool GoogleShaped(absl::string_view v) {
  bool beyond_hex = false;
  for (char c : v) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '_' && c != '-') return false;
    if (absl::ascii_isalpha(u) && !absl::ascii_isxdigit(u)) beyond_hex = true;
  }
  return beyond_hex;
}

// Whether a referrer's host is Google's own (search, its ads' redirects,
// search partners' syndicatedsearch.goog, YouTube and youtu.be), where a
// Google Ads click comes from.
bool GoogleHost(absl::string_view host) {
  for (absl::string_view google : {"goog", "doubleclick", "youtu"}) {
    if (absl::StrContains(host, google)) return true;
  }
  return false;
}

// The source / medium a click id proves, if any. The id is either tagged with
// its parameter name ("gclid-Cj0…", "msclkid=…") or a raw value, which is
// recognised by shape: fbclid values start with "Iw", msclkid values are 32
// hex digits, a Google-shaped one (`GoogleShaped`) is taken for a Google Ads
// id (gclid, gbraid, wbraid), by far the most common auto-tagging, unless the
// referrer's host (`host`, external) is another site's: a raw ttclid,
// li_fat_id … with its network's referrer is not Google's. Any other raw id
// proves no paid click. Only Google and Microsoft Ads ids
// prove a paid click: Facebook, TikTok, X … add theirs to organic links
// too, so those sessions are attributed by their referrer instead.
struct PaidSource {
  absl::string_view source, medium;
};
// The parameter name a click id is tagged with ("gclid" of "gclid-Cj0…"),
// or an empty view for a raw value.
absl::string_view ClickIdName(absl::string_view click_id) {
  const absl::string_view name =
      click_id.substr(0, FindFirstOf(click_id, "-=:"));
  return name.size() < click_id.size() ? name : absl::string_view();
}

// Whether a click id is named as Google Ads' auto-tagging (gclid, gbraid,
// wbraid): the page URL's always is.
bool NamedGoogleAdsClick(absl::string_view click_id) {
  const absl::string_view name = ClickIdName(click_id);
  for (absl::string_view google : {"gclid", "gbraid", "wbraid"}) {
    if (absl::EqualsIgnoreCase(name, google)) return true;
  }
  return false;
}

// The parameter names click ids are tagged with: the page URL's (SPEC §2)
// and the other networks' PaidClick knows.
constexpr absl::string_view kClickIdNames[] = {
    "gclid",     "gbraid", "wbraid", "dclid",  "msclkid", "fbclid", "ttclid",
    "li_fat_id", "twclid", "sccid",  "igshid", "yclid",   "epik",   "rdt_cid"};

std::optional<PaidSource> PaidClick(absl::string_view click_id,
                                    absl::string_view host) {
  if (const absl::string_view name = ClickIdName(click_id); !name.empty()) {
    if (NamedGoogleAdsClick(click_id)) return PaidSource{"google", "cpc"};
    if (absl::EqualsIgnoreCase(name, "msclkid")) {
      return PaidSource{"bing", "cpc"};
    }
    // Any other known name: no paid click.
    for (absl::string_view known : kClickIdNames) {
      if (absl::EqualsIgnoreCase(name, known)) return std::nullopt;
    }
  }
  if (absl::StartsWith(click_id, "Iw")) return std::nullopt;
  if (click_id.size() == 32 && IsHex(click_id)) {
    return PaidSource{"bing", "cpc"};
  }
  if (!GoogleShaped(click_id)) return std::nullopt;
  if (!host.empty() && !GoogleHost(host)) return std::nullopt;
  return PaidSource{"google", "cpc"};
}

}  // namespace

absl::string_view ClickIdValue(absl::string_view click_id) {
  const absl::string_view name = ClickIdName(click_id);
  if (name.empty()) return click_id;
  // An empty value ("gclid="): as it is, not the key of no campaign.
  if (name.size() + 1 >= click_id.size()) return click_id;
  for (absl::string_view known : kClickIdNames) {
    if (absl::EqualsIgnoreCase(name, known)) {
      return click_id.substr(name.size() + 1);
    }
  }
  return click_id;
}

ChannelClassifier::ChannelClassifier(const Options& options) {
  auto fill = [&](uint8_t list, auto& builtin,
                  const std::vector<std::string>& extra) {
    for (const char* s : builtin) lists_[s] |= list;
    for (const std::string& s : extra) lists_[absl::AsciiStrToLower(s)] |= list;
  };
  fill(kSearch, kSearchNames, options.extra_search_sources);
  fill(kSearch, kSearchHosts, {});
  fill(kSocial, kSocialNames, options.extra_social_sources);
  fill(kSocial, kSocialHosts, {});
  fill(kVideo, kVideoNames, options.extra_video_sources);
  fill(kShopping, kShoppingNames, options.extra_shopping_sources);
}

uint8_t ChannelClassifier::ListsOf(absl::string_view name) const {
  const auto it = lists_.find(name);
  return it == lists_.end() ? 0 : it->second;
}

absl::string_view ChannelClassifier::SourceFromHost(
    absl::string_view host) const {
  const absl::string_view site = SiteNameOf(host);
  return IsShortLinkName(site) ? host : site;
}

absl::string_view ChannelClassifier::SiteNameOf(absl::string_view host) const {
  if (ListsOf(host) != 0) return host;
  // The site's own name is the label before its public suffix: the TLD, or
  // "co.uk"-like pairs of a generic second level under a country code.
  const absl::InlinedVector<absl::string_view, 8> labels =
      absl::StrSplit(host, '.');
  if (labels.size() < 2) return host;
  size_t name = labels.size() - 2;
  if (name > 0 && labels.back().size() == 2 &&
      IsGenericSecondLevel(labels[name])) {
    --name;
  }
  // Account and web-app hosts of a search engine are not its results page:
  // GA4 reports "accounts.google.com / referral", so does this.
  if (name > 0 && IsWebAppSubdomain(labels[0])) return host;
  if (ListsOf(labels[name]) != 0) return labels[name];
  return host;
}

void ChannelClassifier::EffectiveInto(const ChannelInputs& in,
                                      std::string* source_out,
                                      std::string* medium_out) const {
  // Lowered copies, made only for text with upper-case letters.
  std::string host_buffer, page_buffer, source_buffer, medium_buffer;
  // A referrer from the page's own host is navigation inside the site.
  absl::string_view host = HostOf(in.referrer, &host_buffer);
  if (!host.empty() && !in.page_url.empty() &&
      host == HostOf(in.page_url, &page_buffer)) {
    host = {};
  }
  // A Google Ads click id named so wins over utm source and medium, as
  // GA4's auto-tagging does by default: agencies' URL templates add utm
  // tags of their own (adwords / ppc, google / shopping) to ads' links,
  // which then were Paid Other or Organic Search. A raw id (its network
  // unknown) does not: the utm tags say more.
  if (NamedGoogleAdsClick(in.click_id)) {
    source_out->assign("google");
    medium_out->assign("cpc");
    return;
  }
  absl::string_view source = Lower(in.source, &source_buffer);
  const absl::string_view medium = Lower(in.medium, &medium_buffer);
  if (!NotSet(source) || !NotSet(medium)) {
    if (source.empty() && !host.empty()) source = SourceFromHost(host);
    Assign(source.empty() ? "(not set)" : source, source_out);
    Assign(medium.empty() ? "(not set)" : medium, medium_out);
    return;
  }
  if (!in.click_id.empty()) {
    if (std::optional<PaidSource> paid = PaidClick(in.click_id, host)) {
      Assign(paid->source, source_out);
      Assign(paid->medium, medium_out);
      return;
    }
  }
  if (host.empty()) {
    source_out->assign("(direct)");
    medium_out->assign("(none)");
    return;
  }
  Assign(SourceFromHost(host), source_out);
  medium_out->assign((ListsOf(SiteNameOf(host)) & kSearch) != 0 ? "organic"
                                                                : "referral");
}

SourceMedium ChannelClassifier::EffectiveSourceMedium(
    const ChannelInputs& in) const {
  SourceMedium sm;
  EffectiveInto(in, &sm.source, &sm.medium);
  return sm;
}

absl::string_view ChannelClassifier::Classify(const ChannelInputs& in) const {
  const SourceMedium sm = EffectiveSourceMedium(in);
  return ChannelOf(sm.source, sm.medium, in.campaign);
}

absl::string_view ChannelClassifier::ChannelOf(
    absl::string_view source, absl::string_view medium,
    absl::string_view campaign_param) const {
  std::string campaign_buffer;
  const absl::string_view campaign = Lower(campaign_param, &campaign_buffer);
  uint8_t lists = ListsOf(source);
  // A utm_source is often a domain ("facebook.com", "m.facebook.com"), as
  // GA4's source lists hold them too: its site's name, as for a referrer.
  if (lists == 0 && absl::StrContains(source, '.')) {
    lists = ListsOf(SiteNameOf(source));
  }
  const bool search = lists & kSearch, social = lists & kSocial,
             video = lists & kVideo, shopping = lists & kShopping;

  if (source == "(direct)" && NotSet(medium)) return "Direct";
  if (absl::StrContains(campaign, "cross-network")) return "Cross-network";
  const bool paid = PaidMedium(medium);
  if ((shopping || ShoppingCampaign(campaign)) && paid) {
    return "Paid Shopping";
  }
  if (search && paid) return "Paid Search";
  if (social && paid) return "Paid Social";
  if (video && paid) return "Paid Video";
  if (medium == "display" || medium == "banner" || medium == "expandable" ||
      medium == "interstitial" || medium == "cpm") {
    return "Display";
  }
  if (paid) return "Paid Other";
  if (shopping || ShoppingCampaign(campaign)) return "Organic Shopping";
  if (social || medium == "social" || medium == "social-network" ||
      medium == "social-media" || medium == "sm" ||
      medium == "social network" || medium == "social media") {
    return "Organic Social";
  }
  if (video || absl::StrContains(medium, "video")) return "Organic Video";
  if (search || medium == "organic") return "Organic Search";
  if (medium == "referral" || medium == "app" || medium == "link")
    return "Referral";
  if (IsEmail(source) || IsEmail(medium)) return "Email";
  if (medium == "affiliate") return "Affiliates";
  if (medium == "audio") return "Audio";
  if (source == "sms" || medium == "sms") return "SMS";
  if (absl::EndsWith(medium, "push") || absl::StrContains(medium, "mobile") ||
      absl::StrContains(medium, "notification") || source == "firebase") {
    return "Mobile Push Notifications";
  }
  return "Unassigned";
}

Acquisition ChannelClassifier::Attribute(const EventView& first) const {
  Acquisition out;
  AttributeInto(first, &out);
  return out;
}

void ChannelClassifier::AttributeInto(const EventView& first,
                                      Acquisition* out) const {
  EffectiveInto({first.utm_source, first.utm_medium, first.utm_campaign,
                 first.referrer, first.click_id, first.page_url},
                &out->source, &out->medium);
  Assign(ChannelOf(out->source, out->medium, first.utm_campaign),
         &out->channel);
}

}  // namespace kpistream
