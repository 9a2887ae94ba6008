// GA4 default channel grouping, rule by rule (first match wins).
#include "aggregate/channel_classifier.h"

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
    // Cross-network
    {"pmax campaign", "google", "cpc", "summer cross-network", "", "",
     "Cross-network"},
    // Paid Shopping
    {"shopping source paid", "amazon", "cpc", "", "", "", "Paid Shopping"},
    {"shopping campaign paid", "google", "cpc", "shopping-q4", "", "",
     "Paid Shopping"},
    // Paid Search
    {"google cpc", "google", "cpc", "brand", "", "", "Paid Search"},
    {"bing ppc", "bing", "ppc", "", "", "", "Paid Search"},
    {"google paidsearch", "google", "paidsearch", "", "", "", "Paid Search"},
    {"upper-case CPC", "Google", "CPC", "", "", "", "Paid Search"},
    {"gclid only", "", "", "", "https://www.google.com/", "Cj0KCQ-gclid",
     "Paid Search"},
    {"msclkid only", "", "", "", "", "msclkid-123", "Paid Search"},
    {"yahoo retargeting", "yahoo", "retargeting", "", "", "", "Paid Search"},
    // Paid Social
    {"facebook paid_social", "facebook", "paid_social", "", "", "",
     "Paid Social"},
    {"linkedin cpc", "linkedin", "cpc", "", "", "", "Paid Social"},
    // Paid Video
    {"youtube cpv", "youtube", "cpv", "", "", "", "Paid Video"},
    // Display
    {"display medium", "dv360", "display", "", "", "", "Display"},
    {"banner medium", "adnetwork", "banner", "", "", "", "Display"},
    {"interstitial", "adnetwork", "interstitial", "", "", "", "Display"},
    {"cpm is display, not paid other", "adnetwork", "cpm", "", "", "",
     "Display"},
    // Paid Other
    {"paid medium, unknown source", "partner", "paid", "", "", "",
     "Paid Other"},
    {"cpc unknown source", "somesite", "cpc", "", "", "", "Paid Other"},
    // Organic Shopping
    {"etsy referral", "", "", "", "https://www.etsy.com/listing/1", "",
     "Organic Shopping"},
    // Organic Social
    {"facebook referrer", "", "", "", "https://l.facebook.com/", "",
     "Organic Social"},
    {"t.co referrer", "", "", "", "https://t.co/abc", "", "Organic Social"},
    {"linkedin social", "linkedin", "social", "", "", "", "Organic Social"},
    {"medium sm", "forum", "sm", "", "", "", "Organic Social"},
    {"fbclid is not paid", "", "", "", "https://m.facebook.com/", "fbclid-1",
     "Organic Social"},
    // Organic Video
    {"youtube referrer", "", "", "", "https://www.youtube.com/watch?v=1", "",
     "Organic Video"},
    {"video medium", "partner", "video", "", "", "", "Organic Video"},
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
    // Referral
    {"other site", "", "", "", "https://news.example.org/article", "",
     "Referral"},
    {"medium referral", "partner", "referral", "", "", "", "Referral"},
    {"medium app", "partner", "app", "", "", "", "Referral"},
    // Email
    {"newsletter email", "newsletter", "email", "weekly", "", "", "Email"},
    {"E-Mail capitalised", "crm", "E-Mail", "", "", "", "Email"},
    {"source email", "email", "blast", "", "", "", "Email"},
    {"e_mail", "crm", "e_mail", "", "", "", "Email"},
    // Affiliates, Audio, SMS, Push
    {"affiliate", "partner", "affiliate", "", "", "", "Affiliates"},
    {"audio", "spotify", "audio", "", "", "", "Audio"},
    {"sms", "sms", "text", "", "", "", "SMS"},
    {"push medium", "app", "push", "", "", "", "Mobile Push Notifications"},
    {"firebase", "firebase", "notif", "", "", "", "Mobile Push Notifications"},
    // Unassigned
    {"unknown medium", "partner", "weird", "", "", "", "Unassigned"},
    {"source only", "partner", "", "", "", "", "Unassigned"},
};

TEST(ChannelClassifierTest, Ga4DefaultChannelGroupingTable) {
  ChannelClassifier classifier;
  for (const Row& row : kRows) {
    EXPECT_EQ(classifier.Classify({row.source, row.medium, row.campaign,
                                   row.referrer, row.click_id, kPage}),
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
  sm = c.EffectiveSourceMedium({"", "", "", "", "", kPage});
  EXPECT_EQ(sm.source, "(direct)");
  EXPECT_EQ(sm.medium, "(none)");
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
}

}  // namespace
}  // namespace kpistream
