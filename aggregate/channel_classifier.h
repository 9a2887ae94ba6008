// ChannelClassifier: GA4's default channel grouping (SPEC §3 "channel").
//
// Inputs are a session's first event: utm_source / utm_medium / utm_campaign,
// the referrer and the click id. A Google Ads click id named so (gclid,
// gbraid, wbraid: the page URL's always are) makes source and medium
// "google / cpc" whatever the utm tags say, as GA4's auto-tagging wins over
// manual tags by default. When the event has no utm source and medium,
// they are derived as GA4 does: a Google or Microsoft Ads click id (gclid,
// gbraid, wbraid, msclkid) means "google / cpc" or "bing / cpc" (an fbclid
// does not: Facebook adds it to organic links too; a raw id shaped like
// Google's is taken for one unless another site referred the visit, any
// other raw id (a UUID, a number, a dotted TikTok id) for none), a
// referrer from a known search engine is "<engine> / organic", any other
// external referrer "<name or host> / referral" (a social network's is then
// Organic Social by its source), and no referrer, or one from the page's own
// host, is "(direct) / (none)". Then the first matching rule of GA4's order
// wins. Source lists (search engines, social networks, video and shopping
// sites: the most visited of GA4's source categories, by site name, and
// exact hosts where GA4's list sets a subdomain apart) are built in and
// can be extended from config.
//
// Thread-safe after construction (const).
#ifndef KPISTREAM_AGGREGATE_CHANNEL_CLASSIFIER_H_
#define KPISTREAM_AGGREGATE_CHANNEL_CLASSIFIER_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "aggregate/channel_groups.h"
#include "aggregate/sessionizer.h"

namespace kpistream {

struct ChannelInputs {
  absl::string_view source;
  absl::string_view medium;
  absl::string_view campaign;
  absl::string_view referrer;  // full URL
  absl::string_view click_id;
  absl::string_view page_url;  // to recognise internal referrers
};

struct SourceMedium {
  std::string source;
  std::string medium;
};

class ChannelClassifier : public SessionAttribution {
 public:
  struct Options {
    std::vector<std::string> extra_search_sources;
    std::vector<std::string> extra_social_sources;
    std::vector<std::string> extra_video_sources;
    std::vector<std::string> extra_shopping_sources;
  };

  ChannelClassifier() : ChannelClassifier(Options{}) {}
  explicit ChannelClassifier(const Options& options);

  // One of kChannelGroups.
  absl::string_view Classify(const ChannelInputs& in) const;

  // Source and medium as reported: the utm values, or derived from the click
  // id / referrer when both are empty.
  SourceMedium EffectiveSourceMedium(const ChannelInputs& in) const;

  // SessionAttribution
  Acquisition Attribute(const EventView& first) const override;
  Acquisition Attribute(const Event& first) const {
    return Attribute(first.view());
  }
  // Allocates nothing once `out`'s strings have grown (text is lowered into
  // a copy only when it has an upper-case letter).
  void AttributeInto(const EventView& first, Acquisition* out) const override;

 private:
  // Which of the lists a name is in (bits).
  enum List : uint8_t {
    kSearch = 1,
    kSocial = 2,
    kVideo = 4,
    kShopping = 8,
  };
  uint8_t ListsOf(absl::string_view name) const;
  // EffectiveSourceMedium() into `*source` and `*medium`.
  void EffectiveInto(const ChannelInputs& in, std::string* source,
                     std::string* medium) const;
  // The source a referrer's host is reported under: the site's own name when
  // a list knows it ("google.co.uk" -> "google"), else the host
  // ("notion.so", "accounts.google.com", and hosts whose site name is a
  // short-link domain's: "t.co", "youtu.be", "t.me"). A view of `host`.
  absl::string_view SourceFromHost(absl::string_view host) const;
  // The name a list knows a host by: its site's name ("t" for "t.co",
  // "google" for "google.co.uk"), or the host itself. A view of `host`.
  absl::string_view SiteNameOf(absl::string_view host) const;
  absl::string_view ChannelOf(absl::string_view source,
                              absl::string_view medium,
                              absl::string_view campaign) const;

  absl::flat_hash_map<std::string, uint8_t> lists_;  // name -> List bits
};

// A click id without the name of the parameter it is tagged with, when that
// is a known click id parameter's ("Cj0…" of "gclid-Cj0…", "GCLID=Cj0…" or
// "Cj0…" itself): one click however the event wrote it (the page URL's is
// "gclid-…", a backend's conversion often carries the bare value). Any other
// id, and a tag with no value ("gclid="), as it is. A view of `click_id`.
absl::string_view ClickIdValue(absl::string_view click_id);

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_CHANNEL_CLASSIFIER_H_
