#include "aggregate/channel_classifier.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "aggregate/event.h"

namespace kpistream {
namespace {

const char* const kSearch[] = {
    "google",    "bing",  "yahoo",        "duckduckgo", "baidu",  "yandex",
    "ecosia",    "ask",   "aol",          "naver",      "seznam", "qwant",
    "startpage", "brave", "search.brave", "sogou",      "so",     "360"};
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
  // "news.google.co.uk" -> try each label that is not a public suffix part:
  // the first label found in a list wins, else the host itself.
  std::vector<absl::string_view> labels = absl::StrSplit(host, '.');
  if (absl::StartsWith(host, "search.brave.")) return "search.brave";
  for (absl::string_view label : labels) {
    const std::string l(label);
    if (search_.contains(l) || social_.contains(l) || video_.contains(l) ||
        shopping_.contains(l)) {
      return l;
    }
  }
  return std::string(host);
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
  std::string source = absl::AsciiStrToLower(in.source);
  std::string medium = absl::AsciiStrToLower(in.medium);
  if (!NotSet(source) || !NotSet(medium)) {
    if (source.empty() && !in.referrer.empty()) {
      source = SourceFromHost(UrlHost(in.referrer));
    }
    return {source.empty() ? "(not set)" : source,
            medium.empty() ? "(not set)" : medium};
  }
  const std::string click = absl::AsciiStrToLower(in.click_id);
  if (!click.empty()) {
    // gclid / gbraid / wbraid (Google Ads), msclkid (Microsoft Ads).
    if (absl::StartsWith(click, "msclkid")) return {"bing", "cpc"};
    if (absl::StartsWith(click, "fbclid")) {
      // Facebook adds fbclid to organic links too: not proof of payment.
    } else {
      return {"google", "cpc"};
    }
  }
  const std::string host = UrlHost(in.referrer);
  if (host.empty() || (!in.page_url.empty() && host == UrlHost(in.page_url))) {
    return {"(direct)", "(none)"};
  }
  std::string from = SourceFromHost(host);
  if (IsSearch(from)) return {from, "organic"};
  if (IsSocial(from) || IsVideo(from)) return {from, "referral"};
  return {from, "referral"};
}

absl::string_view ChannelClassifier::Classify(const ChannelInputs& in) const {
  const SourceMedium sm = EffectiveSourceMedium(in);
  const std::string& source = sm.source;
  const std::string& medium = sm.medium;
  const std::string campaign = absl::AsciiStrToLower(in.campaign);

  if (source == "(direct)" && (NotSet(medium))) return "Direct";
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

Acquisition ChannelClassifier::Attribute(const Event& first) const {
  const ChannelInputs in{first.utm_source, first.utm_medium, first.utm_campaign,
                         first.referrer,   first.click_id,   first.page_url};
  SourceMedium sm = EffectiveSourceMedium(in);
  return {std::string(Classify(in)), std::move(sm.source),
          std::move(sm.medium)};
}

}  // namespace kpistream
