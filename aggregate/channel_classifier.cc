#include "aggregate/channel_classifier.h"

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "aggregate/event.h"

namespace kpistream {
namespace {

const char* const kSearch[] = {
    "google",    "bing",  "yahoo", "duckduckgo", "baidu",  "yandex",
    "ecosia",    "ask",   "aol",   "naver",      "seznam", "qwant",
    "startpage", "brave", "sogou", "so",         "360"};
const char* const kSocial[] = {
    "facebook", "fb",       "instagram", "t",         "twitter", "x",
    "linkedin", "lnkd",     "reddit",    "pinterest", "tiktok",  "snapchat",
    "threads",  "mastodon", "tumblr",    "vk",        "weibo",   "quora",
    "discord",  "whatsapp", "telegram",  "messenger", "line",    "xing",
    "meetup",   "ig"};
const char* const kVideo[] = {"youtube", "youtu",  "vimeo",  "dailymotion",
                              "twitch",  "wistia", "netflix"};
const char* const kShopping[] = {
    "amazon",   "ebay",    "etsy",         "shopify",
    "walmart",  "alibaba", "aliexpress",   "google shopping",
    "shopping", "idealo",  "mercadolibre", "rakuten"};

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
  for (absl::string_view app : {"accounts", "mail", "docs", "drive", "calendar",
                                "meet", "login", "outlook"}) {
    if (label == app) return true;
  }
  return false;
}

bool IsHex(absl::string_view v) {
  for (char c : v) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

// The source / medium a click id proves, if any. The id is either tagged with
// its parameter name ("gclid-Cj0…", "msclkid=…") or a raw value, which is
// recognised by shape: fbclid values start with "Iw", msclkid values are 32
// hex digits, anything else is taken for a Google Ads id (gclid, gbraid,
// wbraid), by far the most common auto-tagging. Only Google and Microsoft Ads
// ids prove a paid click: Facebook, TikTok, X … add theirs to organic links
// too, so those sessions are attributed by their referrer instead.
std::optional<SourceMedium> PaidClick(absl::string_view click_id) {
  const absl::string_view name =
      click_id.substr(0, click_id.find_first_of("-=:"));
  if (name.size() < click_id.size()) {
    const std::string kind = absl::AsciiStrToLower(name);
    if (kind == "gclid" || kind == "gbraid" || kind == "wbraid") {
      return SourceMedium{"google", "cpc"};
    }
    if (kind == "msclkid") {
      return SourceMedium{"bing", "cpc"};
    }
    for (absl::string_view other :
         {"fbclid", "ttclid", "twclid", "li_fat_id", "sccid", "igshid", "dclid",
          "yclid", "epik", "rdt_cid"}) {
      if (kind == other) return std::nullopt;
    }
  }
  if (absl::StartsWith(click_id, "Iw")) return std::nullopt;
  if (click_id.size() == 32 && IsHex(click_id)) {
    return SourceMedium{"bing", "cpc"};
  }
  return SourceMedium{"google", "cpc"};
}

}  // namespace

std::string UrlHost(absl::string_view url) {
  size_t scheme = url.find("://");
  if (scheme != absl::string_view::npos) url.remove_prefix(scheme + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  url =
      url.substr(0, url.rfind(':') == absl::string_view::npos ? url.size()
                                                              : url.rfind(':'));
  std::string host = absl::AsciiStrToLower(url);
  for (absl::string_view prefix : {"www.", "m.", "l.", "lm.", "mobile."}) {
    if (absl::StartsWith(host, prefix)) {
      host.erase(0, prefix.size());
      break;
    }
  }
  return host;
}

ChannelClassifier::ChannelClassifier(const Options& options) {
  auto fill = [](absl::flat_hash_set<std::string>& set, auto& builtin,
                 const std::vector<std::string>& extra) {
    for (const char* s : builtin) set.insert(s);
    for (const std::string& s : extra) set.insert(absl::AsciiStrToLower(s));
  };
  fill(search_, kSearch, options.extra_search_sources);
  fill(social_, kSocial, options.extra_social_sources);
  fill(video_, kVideo, options.extra_video_sources);
  fill(shopping_, kShopping, options.extra_shopping_sources);
}

std::string ChannelClassifier::SourceFromHost(absl::string_view host) const {
  if (InAnyList(host)) return std::string(host);
  // The site's own name is the label before its public suffix: the TLD, or
  // "co.uk"-like pairs of a generic second level under a country code.
  const std::vector<absl::string_view> labels = absl::StrSplit(host, '.');
  if (labels.size() < 2) return std::string(host);
  size_t name = labels.size() - 2;
  if (name > 0 && labels.back().size() == 2 &&
      IsGenericSecondLevel(labels[name])) {
    --name;
  }
  // Account and web-app hosts of a search engine are not its results page:
  // GA4 reports "accounts.google.com / referral", so does this.
  if (name > 0 && IsWebAppSubdomain(labels[0])) return std::string(host);
  if (InAnyList(labels[name])) return std::string(labels[name]);
  return std::string(host);
}

bool ChannelClassifier::InAnyList(absl::string_view s) const {
  return search_.contains(s) || social_.contains(s) || video_.contains(s) ||
         shopping_.contains(s);
}

bool ChannelClassifier::IsSearch(absl::string_view s) const {
  return search_.contains(s);
}
bool ChannelClassifier::IsSocial(absl::string_view s) const {
  return social_.contains(s);
}
bool ChannelClassifier::IsVideo(absl::string_view s) const {
  return video_.contains(s);
}
bool ChannelClassifier::IsShopping(absl::string_view s) const {
  return shopping_.contains(s);
}

SourceMedium ChannelClassifier::EffectiveSourceMedium(
    const ChannelInputs& in) const {
  // A referrer from the page's own host is navigation inside the site.
  std::string host = UrlHost(in.referrer);
  if (!host.empty() && !in.page_url.empty() && host == UrlHost(in.page_url)) {
    host.clear();
  }
  std::string source = absl::AsciiStrToLower(in.source);
  std::string medium = absl::AsciiStrToLower(in.medium);
  if (!NotSet(source) || !NotSet(medium)) {
    if (source.empty() && !host.empty()) source = SourceFromHost(host);
    return {source.empty() ? "(not set)" : std::move(source),
            medium.empty() ? "(not set)" : std::move(medium)};
  }
  if (!in.click_id.empty()) {
    if (std::optional<SourceMedium> paid = PaidClick(in.click_id)) {
      return *std::move(paid);
    }
  }
  if (host.empty()) return {"(direct)", "(none)"};
  std::string from = SourceFromHost(host);
  if (IsSearch(from)) return {std::move(from), "organic"};
  return {std::move(from), "referral"};
}

absl::string_view ChannelClassifier::Classify(const ChannelInputs& in) const {
  return ChannelOf(EffectiveSourceMedium(in), in.campaign);
}

absl::string_view ChannelClassifier::ChannelOf(
    const SourceMedium& sm, absl::string_view campaign_param) const {
  const std::string& source = sm.source;
  const std::string& medium = sm.medium;
  const std::string campaign = absl::AsciiStrToLower(campaign_param);

  if (source == "(direct)" && NotSet(medium)) return "Direct";
  if (absl::StrContains(campaign, "cross-network")) return "Cross-network";
  const bool paid = PaidMedium(medium);
  if ((IsShopping(source) || ShoppingCampaign(campaign)) && paid) {
    return "Paid Shopping";
  }
  if (IsSearch(source) && paid) return "Paid Search";
  if (IsSocial(source) && paid) return "Paid Social";
  if (IsVideo(source) && paid) return "Paid Video";
  if (medium == "display" || medium == "banner" || medium == "expandable" ||
      medium == "interstitial" || medium == "cpm") {
    return "Display";
  }
  if (paid) return "Paid Other";
  if (IsShopping(source) || ShoppingCampaign(campaign))
    return "Organic Shopping";
  if (IsSocial(source) || medium == "social" || medium == "social-network" ||
      medium == "social-media" || medium == "sm" ||
      medium == "social network" || medium == "social media") {
    return "Organic Social";
  }
  if (IsVideo(source) || absl::StrContains(medium, "video"))
    return "Organic Video";
  if (IsSearch(source) || medium == "organic") return "Organic Search";
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
  SourceMedium sm = EffectiveSourceMedium({first.utm_source, first.utm_medium,
                                           first.utm_campaign, first.referrer,
                                           first.click_id, first.page_url});
  std::string channel(ChannelOf(sm, first.utm_campaign));
  return {std::move(channel), std::move(sm.source), std::move(sm.medium)};
}

}  // namespace kpistream
