// GA4 default channel grouping, rule by rule (first match wins).
#include "aggregate/channel_classifier.h"

#include <string>

#include "gtest/gtest.h"

namespace kpistream {
namespace {

struct Row {
  const char* name;
  const char* source;
  const char* medium;
  const char* campaign;
  const char* referrer;
  const char* click_id;
  const char* want;
};

constexpr char kPage[] = "https://shop.example.com/products/1";

const Row kRows[] = {
    // Direct
    {"nothing at all", "", "", "", "", "", "Direct"},
    {"(direct) / (none)", "(direct)", "(none)", "", "", "", "Direct"},
    {"internal referrer is direct", "", "", "", "https://shop.example.com/cart",
     "", "Direct"},
    {"internal referrer with www", "", "", "", "https://www.shop.example.com/",
     "", "Direct"},
    {"(direct) / (not set)", "(direct)", "(not set)", "", "", "", "Direct"},
    {"fbclid without referrer", "", "", "", "", "fbclid-IwAR2x", "Direct"},
    {"raw fbclid without referrer", "", "", "", "", "IwAR2xYz_Q", "Direct"},
    // Cross-network
    {"pmax campaign", "google", "cpc", "summer cross-network", "", "",
     "Cross-network"},
    {"cross-network beats organic", "partner", "referral", "Cross-Network", "",
     "", "Cross-network"},
    // Paid Shopping
    {"shopping source paid", "amazon", "cpc", "", "", "", "Paid Shopping"},
    {"shopping campaign paid", "google", "cpc", "shopping-q4", "", "",
     "Paid Shopping"},
    {"campaign starting with shop", "partner", "cpc", "shop_summer", "", "",
     "Paid Shopping"},
    {"campaign _shop", "partner", "cpc", "summer_shop", "", "",
     "Paid Shopping"},
    {"workshop is not shop", "partner", "cpc", "workshop", "", "",
     "Paid Other"},
    // Paid Search
    {"google cpc", "google", "cpc", "brand", "", "", "Paid Search"},
    {"bing ppc", "bing", "ppc", "", "", "", "Paid Search"},
    {"google paidsearch", "google", "paidsearch", "", "", "", "Paid Search"},
    {"upper-case CPC", "Google", "CPC", "", "", "", "Paid Search"},
    {"gclid only", "", "", "", "https://www.google.com/", "Cj0KCQ-gclid",
     "Paid Search"},
    {"msclkid only", "", "", "", "", "msclkid-123", "Paid Search"},
    {"gbraid only", "", "", "", "", "gbraid-0AAAAA", "Paid Search"},
    {"wbraid only", "", "", "", "", "wbraid=CkAKCQ", "Paid Search"},
    {"raw click id, no referrer", "", "", "", "", "Cj0KCQiA", "Paid Search"},
    {"raw click id from Google Ads' redirect", "", "", "",
     "https://www.googleadservices.com/pagead/aclk", "Cj0KCQiA", "Paid Search"},
    {"raw click id on a YouTube ad", "", "", "", "https://www.youtube.com/",
     "Cj0KCQiA", "Paid Search"},
    {"raw click id from a search partner", "", "", "",
     "https://syndicatedsearch.goog/", "Cj0KCQiA", "Paid Search"},
    // A raw id of another kind (a ttclid here) with another site's referrer
    // proves no Google Ads click: attributed by the referrer (QA: credited
    // to Google Ads before).
    {"raw ttclid from TikTok", "", "", "", "https://www.tiktok.com/",
     "E.C.P.CsYBKAxyz", "Organic Social"},
    {"raw click id from a blog", "", "", "", "https://blog.example.org/post",
     "Cj0KCQiA", "Referral"},
    // Without a referrer, only a Google-shaped raw id is taken for Google
    // Ads': a LinkedIn UUID, a TikTok dotted id, a Yandex number are not
    // (QA: each was Paid Search).
    {"raw older gclid, no referrer", "", "", "", "", "EAIaIQobChMI_x-Y",
     "Paid Search"},
    {"raw li_fat_id, no referrer", "", "", "", "",
     "3d9c7e2a-51f4-4b8e-9c6d-0a1b2c3d4e5f", "Direct"},
    {"raw ttclid, no referrer", "", "", "", "", "E.C.P.CsYBKAxyz", "Direct"},
    {"raw yclid, no referrer", "", "", "", "", "4829348234982349823", "Direct"},
    {"raw id with a space", "", "", "", "", "Cj0K CQiA", "Direct"},
    {"named gclid whatever the referrer", "", "", "", "https://www.tiktok.com/",
     "gclid-Cj0KCQ", "Paid Search"},
    {"raw msclkid value", "", "", "", "", "0d5e7a51b8e31cd4a2f3ec9a5b1c6e0f",
     "Paid Search"},
    {"bing cpc", "bing", "cpc", "", "", "", "Paid Search"},
    // A named Google Ads id wins over utm tags, as GA4's auto-tagging does
    // (a review found agencies' templates' tags winning: Paid Other,
    // Organic Search, Email); a raw id does not, its network unknown.
    {"named gclid wins over utm", "newsletter", "email", "", "", "gclid-Cj0",
     "Paid Search"},
    {"named gclid wins over adwords / ppc", "adwords", "ppc", "", "",
     "gclid-Cj0KCQ", "Paid Search"},
    {"named gbraid wins over google / shopping", "google", "shopping", "", "",
     "gbraid-0AAAAA", "Paid Search"},
    {"named gclid keeps the campaign's rules", "adwords", "ppc",
     "pmax cross-network", "", "gclid-Cj0KCQ", "Cross-network"},
    {"raw google-shaped id does not win over utm", "pinterest", "paid_social",
     "", "", "Cj0KCQiA", "Paid Social"},
    {"named msclkid does not win over utm", "newsletter", "email", "", "",
     "msclkid-0d5e7a51", "Email"},
    {"yahoo retargeting", "yahoo", "retargeting", "", "", "", "Paid Search"},
    // Paid Social
    {"facebook paid_social", "facebook", "paid_social", "", "", "",
     "Paid Social"},
    {"linkedin cpc", "linkedin", "cpc", "", "", "", "Paid Social"},
    {"instagram paid", "instagram", "paid", "", "", "", "Paid Social"},
    // Paid Video
    {"youtube cpv", "youtube", "cpv", "", "", "", "Paid Video"},
    {"youtube cpc", "youtube", "cpc", "", "", "", "Paid Video"},
    // Display
    {"display medium", "dv360", "display", "", "", "", "Display"},
    {"banner medium", "adnetwork", "banner", "", "", "", "Display"},
    {"interstitial", "adnetwork", "interstitial", "", "", "", "Display"},
    {"expandable", "adnetwork", "expandable", "", "", "", "Display"},
    {"cpm is display, not paid other", "adnetwork", "cpm", "", "", "",
     "Display"},
    // Paid Other
    {"paid medium, unknown source", "partner", "paid", "", "", "",
     "Paid Other"},
    {"cpc unknown source", "somesite", "cpc", "", "", "", "Paid Other"},
    // Organic Shopping
    {"etsy referral", "", "", "", "https://www.etsy.com/listing/1", "",
     "Organic Shopping"},
    {"amazon.co.uk referrer", "", "", "", "https://www.amazon.co.uk/dp/1", "",
     "Organic Shopping"},
    {"shopping campaign organic", "partner", "referral", "eshop-days", "", "",
     "Organic Shopping"},
    // Organic Social
    {"facebook referrer", "", "", "", "https://l.facebook.com/", "",
     "Organic Social"},
    {"t.co referrer", "", "", "", "https://t.co/abc", "", "Organic Social"},
    {"linkedin social", "linkedin", "social", "", "", "", "Organic Social"},
    {"medium sm", "forum", "sm", "", "", "", "Organic Social"},
    {"fbclid is not paid", "", "", "", "https://m.facebook.com/", "fbclid-1",
     "Organic Social"},
    {"raw fbclid is not paid", "", "", "", "https://l.facebook.com/",
     "IwZXh0bgNhZW0CMTEAAR", "Organic Social"},
    {"instagram referrer", "", "", "", "https://l.instagram.com/?u=x", "",
     "Organic Social"},
    {"x.com referrer", "", "", "", "https://x.com/someone/status/1", "",
     "Organic Social"},
    {"lnkd.in referrer", "", "", "", "https://lnkd.in/abc", "",
     "Organic Social"},
    {"reddit referrer", "", "", "", "https://old.reddit.com/r/x", "",
     "Organic Social"},
    {"medium social-media", "forum", "social-media", "", "", "",
     "Organic Social"},
    {"medium social network", "forum", "Social Network", "", "", "",
     "Organic Social"},
    // Organic Video
    {"youtube referrer", "", "", "", "https://www.youtube.com/watch?v=1", "",
     "Organic Video"},
    {"video medium", "partner", "video", "", "", "", "Organic Video"},
    {"youtu.be referrer", "", "", "", "https://youtu.be/abc", "",
     "Organic Video"},
    {"vimeo referrer", "", "", "", "https://vimeo.com/1", "", "Organic Video"},
    // Organic Search
    {"google referrer", "", "", "", "https://www.google.com/", "",
     "Organic Search"},
    {"google.de referrer", "", "", "", "https://www.google.de/search?q=x", "",
     "Organic Search"},
    {"google.co.uk", "", "", "", "https://www.google.co.uk/", "",
     "Organic Search"},
    {"duckduckgo referrer", "", "", "", "https://duckduckgo.com/", "",
     "Organic Search"},
    {"bing referrer", "", "", "", "https://www.bing.com/search?q=x", "",
     "Organic Search"},
    {"medium organic", "newsengine", "organic", "", "", "", "Organic Search"},
    {"google.com.mx referrer", "", "", "", "https://www.google.com.mx/", "",
     "Organic Search"},
    {"yandex.ru referrer", "", "", "", "https://yandex.ru/search/?text=x", "",
     "Organic Search"},
    {"search.brave.com referrer", "", "", "", "https://search.brave.com/search",
     "", "Organic Search"},
    {"ecosia referrer", "", "", "", "https://www.ecosia.org/search?q=x", "",
     "Organic Search"},
    {"utm google organic", "google", "organic", "", "", "", "Organic Search"},
    // Sites of GA4's source categories beyond the first lists (a review
    // found them Referral, or the wrong category by their site's name).
    {"Edge's new tab page", "", "", "", "https://ntp.msn.com/edge/ntp", "",
     "Organic Search"},
    {"gmail is search in GA4's list", "", "", "",
     "https://mail.google.com/mail/u/0/", "", "Organic Search"},
    {"rakuten is search in GA4's list", "", "", "",
     "https://www.rakuten.co.jp/", "", "Organic Search"},
    {"naver blog is social", "", "", "", "https://m.blog.naver.com/someone/1",
     "", "Organic Social"},
    {"google groups is social", "", "", "",
     "https://groups.google.com/g/some-group", "", "Organic Social"},
    {"hacker news is social", "", "", "", "https://news.ycombinator.com/item",
     "", "Organic Social"},
    {"medium.com is social", "", "", "", "https://medium.com/@someone/post", "",
     "Organic Social"},
    {"instagram shopping tags", "IGShopping", "Social", "", "", "",
     "Organic Shopping"},
    {"hulu referrer", "", "", "", "https://www.hulu.com/", "", "Organic Video"},
    // Referral
    {"other site", "", "", "", "https://news.example.org/article", "",
     "Referral"},
    {"medium referral", "partner", "referral", "", "", "", "Referral"},
    {"medium app", "partner", "app", "", "", "", "Referral"},
    {"medium link", "partner", "link", "", "", "", "Referral"},
    {".so site is not a search engine", "", "", "", "https://www.notion.so/x",
     "", "Referral"},
    {"blog.google is not search", "", "", "", "https://blog.google/products",
     "", "Referral"},
    {"google sign-in is not search", "", "", "",
     "https://accounts.google.com/o/oauth2", "", "Referral"},
    {"gemini is an assistant, not search", "", "", "",
     "https://gemini.google.com/app", "", "Referral"},
    {"subdomain of site is external", "", "", "", "https://blog.example.com/",
     "", "Referral"},
    // Email
    {"newsletter email", "newsletter", "email", "weekly", "", "", "Email"},
    {"E-Mail capitalised", "crm", "E-Mail", "", "", "", "Email"},
    {"source email", "email", "blast", "", "", "", "Email"},
    {"e_mail", "crm", "e_mail", "", "", "", "Email"},
    {"e mail", "crm", "e mail", "", "", "", "Email"},
    {"medium only email", "", "email", "", "", "", "Email"},
    // Affiliates, Audio, SMS, Push
    {"affiliate", "partner", "affiliate", "", "", "", "Affiliates"},
    {"audio", "spotify", "audio", "", "", "", "Audio"},
    {"sms", "sms", "text", "", "", "", "SMS"},
    {"medium SMS", "twilio", "SMS", "", "", "", "SMS"},
    {"medium mobile", "app", "mobile-inapp", "", "", "",
     "Mobile Push Notifications"},
    {"medium notification", "app", "notification", "", "", "",
     "Mobile Push Notifications"},
    {"push medium", "app", "push", "", "", "", "Mobile Push Notifications"},
    {"firebase", "firebase", "notif", "", "", "", "Mobile Push Notifications"},
    // A utm_source given as a domain, as GA4's lists hold them too (a
    // review found "facebook.com" / cpc as Paid Other).
    {"domain source paid social", "facebook.com", "cpc", "", "", "",
     "Paid Social"},
    {"mobile domain source social", "m.facebook.com", "referral", "", "", "",
     "Organic Social"},
    {"t.co source", "t.co", "referral", "", "", "", "Organic Social"},
    {"country domain source paid search", "www.google.co.uk", "cpc", "", "", "",
     "Paid Search"},
    {"domain source video", "youtube.com", "cpv", "", "", "", "Paid Video"},
    {"other domain source stays other", "news.example.org", "cpc", "", "", "",
     "Paid Other"},
    // Unassigned
    {"unknown medium", "partner", "weird", "", "", "", "Unassigned"},
    {"source only", "partner", "", "", "", "", "Unassigned"},
    {"fbclid on other site", "", "", "", "https://example.net/", "fbclid-1",
     "Referral"},
};

TEST(ChannelClassifierTest, Ga4DefaultChannelGroupingTable) {
  ChannelClassifier classifier;
  for (const Row& row : kRows) {
    // As std::string so that a failure prints the channel, not its bytes.
    EXPECT_EQ(
        std::string(classifier.Classify({row.source, row.medium, row.campaign,
                                         row.referrer, row.click_id, kPage})),
        row.want)
        << row.name;
  }
}

TEST(ChannelClassifierTest, SourceAndMediumDerivedFromTheReferrer) {
  ChannelClassifier c;
  SourceMedium sm = c.EffectiveSourceMedium(
      {"", "", "", "https://www.google.de/", "", kPage});
  EXPECT_EQ(sm.source, "google");
  EXPECT_EQ(sm.medium, "organic");
  sm = c.EffectiveSourceMedium(
      {"", "", "", "https://news.example.org/x", "", kPage});
  EXPECT_EQ(sm.source, "news.example.org");
  EXPECT_EQ(sm.medium, "referral");
  // An IPv6 address whole (it was cut at its last colon, as a port), a
  // port and a user name left out.
  for (const char* referrer :
       {"http://[2001:db8::1]/x", "http://[2001:DB8::1]:8080/",
        "https://user:pw@[2001:db8::1]"}) {
    sm = c.EffectiveSourceMedium({"", "", "", referrer, "", kPage});
    EXPECT_EQ(sm.source, "[2001:db8::1]") << referrer;
    EXPECT_EQ(sm.medium, "referral") << referrer;
  }
  sm = c.EffectiveSourceMedium(
      {"", "", "", "https://user@news.example.org:8443/x", "", kPage});
  EXPECT_EQ(sm.source, "news.example.org");
  sm = c.EffectiveSourceMedium({"", "", "", "", "", kPage});
  EXPECT_EQ(sm.source, "(direct)");
  EXPECT_EQ(sm.medium, "(none)");
  // A short-link domain is reported whole, as GA4 does ("t" said nothing).
  sm = c.EffectiveSourceMedium({"", "", "", "https://t.co/x", "", kPage});
  EXPECT_EQ(sm.source, "t.co");
  EXPECT_EQ(sm.medium, "referral");
  sm = c.EffectiveSourceMedium({"", "", "", "https://youtu.be/x", "", kPage});
  EXPECT_EQ(sm.source, "youtu.be");
  EXPECT_EQ(c.Classify({"", "", "", "https://youtu.be/x", "", kPage}),
            "Organic Video");
  // Telegram's t.me has X's short-link name: its host too, still social.
  sm = c.EffectiveSourceMedium({"", "", "", "https://t.me/s/x", "", kPage});
  EXPECT_EQ(sm.source, "t.me");
  EXPECT_EQ(c.Classify({"", "", "", "https://t.me/s/x", "", kPage}),
            "Organic Social");
  sm = c.EffectiveSourceMedium(
      {"", "", "", "https://m.facebook.com/x", "", kPage});
  EXPECT_EQ(sm.source, "facebook");
  sm = c.EffectiveSourceMedium(
      {"", "", "", "https://accounts.google.com/o", "", kPage});
  EXPECT_EQ(sm.source, "accounts.google.com");
  EXPECT_EQ(sm.medium, "referral");
  sm = c.EffectiveSourceMedium({"", "", "", "", "gclid-Cj0KCQ", kPage});
  EXPECT_EQ(sm.source, "google");
  EXPECT_EQ(sm.medium, "cpc");
  sm = c.EffectiveSourceMedium({"", "", "", "", "msclkid=abc", kPage});
  EXPECT_EQ(sm.source, "bing");
  EXPECT_EQ(sm.medium, "cpc");
  // The source and medium labels too: a named Google Ads id over utm tags.
  sm = c.EffectiveSourceMedium(
      {"AdWords", "PPC", "brand", "", "gclid-Cj0KCQ", kPage});
  EXPECT_EQ(sm.source, "google");
  EXPECT_EQ(sm.medium, "cpc");
  sm = c.EffectiveSourceMedium(
      {"", "", "", "https://m.blog.naver.com/a/1", "", kPage});
  EXPECT_EQ(sm.source, "blog.naver.com");
  EXPECT_EQ(sm.medium, "referral");
}

TEST(ChannelClassifierTest, UtmMediumWithoutSourceTakesTheReferrerAsSource) {
  ChannelClassifier c;
  SourceMedium sm = c.EffectiveSourceMedium(
      {"", "email", "", "https://mail.example.net/", "", kPage});
  EXPECT_EQ(sm.source, "mail.example.net");
  EXPECT_EQ(sm.medium, "email");
  // Not from an internal referrer: that is the site itself.
  sm = c.EffectiveSourceMedium(
      {"", "email", "", "https://shop.example.com/a", "", kPage});
  EXPECT_EQ(sm.source, "(not set)");
}

TEST(ChannelClassifierTest, ConfiguredDomainsMatchToo) {
  ChannelClassifier::Options options;
  options.extra_social_sources = {"bsky.app"};
  options.extra_video_sources = {"PeerTube"};
  ChannelClassifier c(options);
  EXPECT_EQ(std::string(c.Classify(
                {"", "", "", "https://bsky.app/profile/x", "", kPage})),
            "Organic Social");
  EXPECT_EQ(std::string(c.Classify({"peertube", "cpc", "", "", "", kPage})),
            "Paid Video");
}

TEST(ChannelClassifierTest, ListsAreExtendableFromConfig) {
  ChannelClassifier::Options options;
  options.extra_search_sources = {"Kagi"};
  ChannelClassifier c(options);
  EXPECT_EQ(c.Classify({"", "", "", "https://kagi.com/search?q=x", "", kPage}),
            "Organic Search");
  EXPECT_EQ(ChannelClassifier().Classify(
                {"", "", "", "https://kagi.com/search", "", kPage}),
            "Referral");
}

TEST(ChannelClassifierTest, IsTheSessionAttribution) {
  ChannelClassifier c;
  Event e;
  e.utm_source = "newsletter";
  e.utm_medium = "email";
  const Acquisition a = c.Attribute(e);
  EXPECT_EQ(a.channel, "Email");
  EXPECT_EQ(a.source, "newsletter");
  EXPECT_EQ(a.medium, "email");

  Event from_google;
  from_google.referrer = "https://www.google.de/";
  from_google.page_url = kPage;
  const Acquisition b = c.Attribute(from_google);
  EXPECT_EQ(b.channel, "Organic Search");
  EXPECT_EQ(b.source, "google");
  EXPECT_EQ(b.medium, "organic");
}

// A bare path (an access log without `host`) has no host, also when its
// query holds a URL: the referrer's host is not the page's.
TEST(ChannelClassifierTest, AUrlInABarePathsQueryIsNotThePagesHost) {
  ChannelClassifier c;
  Event e;
  e.referrer = "https://www.google.com/";
  e.page_url = "/login?next=https://www.google.com/x";
  EXPECT_EQ(c.Attribute(e).channel, "Organic Search");
}

}  // namespace
}  // namespace kpistream
