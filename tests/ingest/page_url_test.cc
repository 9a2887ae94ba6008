#include "ingest/page_url.h"

#include "aggregate/channel_classifier.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

Event WithUrl(const std::string& url) {
  Event e;
  e.page_url = url;
  return e;
}

TEST(PageUrlTest, UtmParametersFillEmptyFields) {
  Event e = WithUrl(
      "https://shop.example/?utm_source=newsletter&utm_medium=email"
      "&utm_campaign=winter%20sale#top");
  FillCampaignFromPageUrl(&e);
  EXPECT_EQ(e.utm_source, "newsletter");
  EXPECT_EQ(e.utm_medium, "email");
  EXPECT_EQ(e.utm_campaign, "winter sale");
  EXPECT_EQ(e.click_id, "");
}

// The overload EventDecoder calls: values that need no decoding view the
// page URL, decoded ones and the click id the storage; the same values as
// the Event overload's.
TEST(PageUrlTest, ViewsTheUrlUnlessAValueIsDecoded) {
  const std::string url =
      "/?utm_source=news+letter&utm_medium=email&utm_campaign=%E2%82%AC"
      "&fbclid=F1&gclid=G%31";
  auto in_url = [&](absl::string_view v) {
    return v.data() >= url.data() &&
           v.data() + v.size() <= url.data() + url.size();
  };
  EventView v;
  v.page_url = url;
  CampaignStorage storage;
  FillCampaignFromPageUrl(&v, &storage);
  EXPECT_EQ(v.utm_source, "news letter");
  EXPECT_FALSE(in_url(v.utm_source));
  EXPECT_EQ(v.utm_medium, "email");
  EXPECT_TRUE(in_url(v.utm_medium));
  EXPECT_EQ(v.utm_campaign, "\xE2\x82\xAC");
  EXPECT_EQ(v.click_id, "gclid-G1");  // gclid ranks above fbclid
  Event e = WithUrl(url);
  FillCampaignFromPageUrl(&e);
  EXPECT_EQ(e.utm_source, v.utm_source);
  EXPECT_EQ(e.utm_medium, v.utm_medium);
  EXPECT_EQ(e.utm_campaign, v.utm_campaign);
  EXPECT_EQ(e.click_id, v.click_id);
}

TEST(PageUrlTest, RelativeUrlsAndPlusAsSpace) {
  Event e = WithUrl("/?utm_source=news+letter&utm_medium=e%2Dmail");
  FillCampaignFromPageUrl(&e);
  EXPECT_EQ(e.utm_source, "news letter");
  EXPECT_EQ(e.utm_medium, "e-mail");
}

TEST(PageUrlTest, ExplicitFieldsWinOverTheUrl) {
  Event e = WithUrl("/landing?utm_source=url&utm_medium=url&gclid=abc");
  e.utm_source = "explicit";
  e.click_id = "msclkid-1";
  FillCampaignFromPageUrl(&e);
  EXPECT_EQ(e.utm_source, "explicit");
  EXPECT_EQ(e.utm_medium, "url");
  EXPECT_EQ(e.click_id, "msclkid-1");
}

TEST(PageUrlTest, ClickIdsByPrecedenceTaggedWithTheirName) {
  for (const auto& [url, want] :
       std::vector<std::pair<std::string, std::string>>{
           {"/?gclid=Cj0KCQ", "gclid-Cj0KCQ"},
           {"/?fbclid=IwAR1&gclid=Cj0", "gclid-Cj0"},
           {"/?gbraid=0AAAA", "gbraid-0AAAA"},
           {"/?wbraid=Cj", "wbraid-Cj"},
           {"/?msclkid=0123456789abcdef0123456789abcdef",
            "msclkid-0123456789abcdef0123456789abcdef"},
           {"/?dclid=CK", "dclid-CK"},
           {"/?fbclid=IwAR1", "fbclid-IwAR1"},
           {"/?ttclid=E.C", "ttclid-E.C"},
           {"/?li_fat_id=abc-1", "li_fat_id-abc-1"},
           {"/?xclid=1", ""},
           {"/?gclid=", ""},
           {"/#gclid=1", ""},
           // A hash-routed page: the '?' is the fragment's.
           {"/#/landing?gclid=1", ""},
           {"/?gclid=2#/landing?gclid=1", "gclid-2"},
       }) {
    Event e = WithUrl(url);
    FillCampaignFromPageUrl(&e);
    EXPECT_EQ(e.click_id, want) << url;
  }
}

TEST(PageUrlTest, AQueryInTheFragmentIsNotTheQuery) {
  Event e = WithUrl(
      "https://shop.example/#/landing?utm_source=news&utm_medium=email");
  FillCampaignFromPageUrl(&e);
  EXPECT_EQ(e.utm_source, "");
  EXPECT_EQ(e.utm_medium, "");
}

TEST(PageUrlTest, InvalidUtf8AfterDecodingKeepsTheRawValue) {
  Event e = WithUrl("/?utm_campaign=%FF%FEsale&utm_source=caf%C3%A9");
  FillCampaignFromPageUrl(&e);
  EXPECT_EQ(e.utm_campaign, "%FF%FEsale");
  EXPECT_EQ(e.utm_source, "caf\xC3\xA9");
}

// A control character decoded from the query (%00, %0A, %7F) would reach
// the session record's fields, and make the label "(other)" counted as
// label overflow: the value is kept as written, as an access log writes it.
TEST(PageUrlTest, AControlCharacterAfterDecodingKeepsTheRawValue) {
  Event e = WithUrl(
      "/?utm_campaign=%00evil&utm_source=news%0Aletter&utm_medium=a%7Fb");
  FillCampaignFromPageUrl(&e);
  EXPECT_EQ(e.utm_campaign, "%00evil");
  EXPECT_EQ(e.utm_source, "news%0Aletter");
  EXPECT_EQ(e.utm_medium, "a%7Fb");
  Event tab = WithUrl("/?utm_campaign=spring%09sale&utm_source=a+b%2Fc");
  FillCampaignFromPageUrl(&tab);
  EXPECT_EQ(tab.utm_campaign, "spring%09sale");
  EXPECT_EQ(tab.utm_source, "a b/c");  // printable: decoded
}

TEST(PageUrlTest, MalformedEscapesAreKept) {
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%4"), "%4");
  EXPECT_EQ(PercentDecode("%zz"), "%zz");
  EXPECT_EQ(PercentDecode("%41%42"), "AB");
}

// The end-to-end point of it (issue: every Google Ads landing came out as
// Direct): a gclid in the landing URL makes the session Paid Search, and utm
// parameters in it make it Email.
TEST(PageUrlTest, ChannelOfTheLandingComesFromTheUrl) {
  ChannelClassifier channels;
  Event ads = WithUrl("https://shop.example/p/1?gclid=Cj0KCQiA");
  ads.referrer = "https://www.google.com/";
  FillCampaignFromPageUrl(&ads);
  EXPECT_EQ(channels.Attribute(ads).channel, "Paid Search");
  Event mail = WithUrl("/?utm_source=newsletter&utm_medium=email");
  FillCampaignFromPageUrl(&mail);
  EXPECT_EQ(channels.Attribute(mail).channel, "Email");
}

}  // namespace
}  // namespace kpistream
