#include "aggregate/label_limiter.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

TEST(LabelLimiterTest, AdmitsFirstValuesThenOther) {
  LabelLimiter limiter("site", 2);
  EXPECT_EQ(limiter.Value("a"), "a");
  EXPECT_EQ(limiter.Value("b"), "b");
  EXPECT_EQ(limiter.Value("c"), "(other)");
  EXPECT_EQ(limiter.Value("a"), "a");  // admitted values stay admitted
  EXPECT_EQ(limiter.Value("d"), "(other)");
  EXPECT_EQ(limiter.Value("c"), "(other)");
  EXPECT_EQ(limiter.admitted(), 2u);
  EXPECT_EQ(limiter.overflow(), 3u);
  EXPECT_EQ(limiter.label(), "site");
}

// The same value many times in a row (as one site's events come), other
// values in between: each lookup answers as the first did, and every
// lookup of a value not admitted counts one more overflow.
// A protobuf string may hold any byte; a label value with a control
// character is not one every Prometheus client reads back.
TEST(LabelLimiterTest, AValueWithAControlCharacterIsOther) {
  LabelLimiter limiter("site", 10);
  EXPECT_EQ(limiter.Value(std::string("shop\0\a", 6)), "(other)");
  EXPECT_EQ(limiter.Value("shop\x7F"), "(other)");
  EXPECT_EQ(limiter.overflow(), 2u);
  EXPECT_EQ(limiter.Value("shop caf\xC3\xA9"), "shop caf\xC3\xA9");
  EXPECT_EQ(limiter.overflow(), 2u);
}

// The series are bounded, and so is each label value's length: 50 values
// of 1-8 KiB per label made a /metrics page of 177 MB (an audit). A
// configured value may be longer.
TEST(LabelLimiterTest, AValueLongerThanTheLimitIsOther) {
  const std::string longest(kMaxLabelValueBytes, 'a');
  const std::string longer(kMaxLabelValueBytes + 1, 'b');
  LabelLimiter limiter("campaign", 10);
  EXPECT_EQ(limiter.Value(longer), "(other)");
  EXPECT_EQ(limiter.overflow(), 1u);
  EXPECT_EQ(limiter.Value(longest), longest);
  EXPECT_EQ(limiter.overflow(), 1u);
  const std::string listed(1000, 'c');
  LabelLimiter allowed("campaign", 10, std::vector<std::string>{listed});
  EXPECT_EQ(allowed.Value(listed), listed);
  LabelLimiter reserved("goal", 10, std::nullopt, 1, nullptr, {listed});
  EXPECT_EQ(reserved.Value(listed), listed);
  // An ad cost record's campaign (trusted) is admitted whatever its length,
  // and the sessions' same value is found then: ROAS joins them.
  LabelLimiter campaigns("campaign", 10);
  const LabelLimiter::Id id = campaigns.InternTrusted(longer);
  EXPECT_NE(id, LabelLimiter::kOtherId);
  EXPECT_EQ(campaigns.Intern(longer), id);
  EXPECT_EQ(campaigns.overflow(), 0u);
}

TEST(LabelLimiterTest, RepeatedLookupsAnswerAndCountAsTheFirst) {
  LabelLimiter limiter("site", 2);
  const LabelLimiter::Id a = limiter.Intern("a");
  const LabelLimiter::Id b = limiter.Intern("b");
  ASSERT_NE(a, b);
  std::string buffer = "a";  // a value read from another buffer each time
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Intern(buffer), a);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.Intern("c"), LabelLimiter::kOtherId);
  }
  EXPECT_EQ(limiter.overflow(), 3u);
  buffer = "b";
  EXPECT_EQ(limiter.Intern(buffer), b);
  EXPECT_EQ(limiter.Intern("b"), b);
  EXPECT_EQ(limiter.Intern("a"), a);
  EXPECT_EQ(limiter.Intern("c"), LabelLimiter::kOtherId);
  EXPECT_EQ(limiter.Intern("(not set)"), LabelLimiter::kNotSetId);
  EXPECT_EQ(limiter.Intern("(other)"), LabelLimiter::kOtherId);
  EXPECT_EQ(limiter.Intern("a"), a);
  EXPECT_EQ(limiter.overflow(), 4u);
  EXPECT_EQ(limiter.admitted(), 2u);
}

TEST(LabelLimiterTest, EmptyIsNotSetAndNeverOverflows) {
  LabelLimiter limiter("country", 0);
  EXPECT_EQ(limiter.Value(""), "(not set)");
  EXPECT_EQ(limiter.Intern(""), LabelLimiter::kNotSetId);
  EXPECT_EQ(limiter.overflow(), 0u);
  EXPECT_EQ(limiter.Value("DE"), "(other)");
  EXPECT_EQ(limiter.overflow(), 1u);
}

TEST(LabelLimiterTest, ReservedValuesMapToThemselves) {
  LabelLimiter limiter("channel", 1);
  EXPECT_EQ(limiter.Intern("(other)"), LabelLimiter::kOtherId);
  EXPECT_EQ(limiter.Intern("(not set)"), LabelLimiter::kNotSetId);
  EXPECT_EQ(limiter.admitted(), 0u);
  EXPECT_EQ(limiter.overflow(), 0u);
}

TEST(LabelLimiterTest, AllowlistAdmitsExactlyTheList) {
  LabelLimiter limiter("goal", 1,
                       std::vector<std::string>{"signup", "lead", "purchase"});
  EXPECT_EQ(limiter.Value("purchase"), "purchase");
  EXPECT_EQ(limiter.Value("signup"), "signup");
  EXPECT_EQ(limiter.Value("lead"), "lead");  // max_values does not apply
  EXPECT_EQ(limiter.Value("newsletter"), "(other)");
  EXPECT_EQ(limiter.Value("Signup"), "(other)");  // case-sensitive
  EXPECT_EQ(limiter.overflow(), 2u);
  EXPECT_EQ(limiter.admitted(), 3u);
}

TEST(LabelLimiterTest, EmptyAllowlistAdmitsNothing) {
  LabelLimiter limiter("goal", 50, std::vector<std::string>{});
  EXPECT_EQ(limiter.Value("signup"), "(other)");
  EXPECT_EQ(limiter.overflow(), 1u);
}

TEST(LabelLimiterTest, IdsAreDenseStableAndNamesOutliveTheInput) {
  LabelLimiter limiter("site", 100);
  std::vector<LabelLimiter::Id> ids;
  for (int i = 0; i < 100; ++i) {
    std::string value = absl::StrCat("site-with-a-long-name-", i);
    ids.push_back(limiter.Intern(value));
  }  // `value` is gone; the names live in the limiter
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(ids[i], static_cast<LabelLimiter::Id>(i + 2));
    EXPECT_EQ(limiter.Name(ids[i]), absl::StrCat("site-with-a-long-name-", i));
    EXPECT_EQ(limiter.Intern(absl::StrCat("site-with-a-long-name-", i)),
              ids[i]);
  }
  EXPECT_EQ(limiter.size(), 102u);
  EXPECT_EQ(limiter.overflow(), 0u);
}

TEST(LabelLimiterTest, ThousandValuesWithMaxFifty) {
  LabelLimiter limiter("site", 50);
  for (int i = 0; i < 1000; ++i) limiter.Intern(absl::StrCat("s", i));
  EXPECT_EQ(limiter.admitted(), 50u);
  EXPECT_EQ(limiter.overflow(), 950u);
}

TEST(LabelLimiterTest, NegativeMaxAdmitsNothing) {
  LabelLimiter limiter("site", -1);
  EXPECT_EQ(limiter.Value("a"), "(other)");
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

TEST(LabelLimiterFrequencyTest, OneOffFloodNeverTakesASlotButFrequentValuesDo) {
  LabelLimiter limiter("campaign", 5, std::nullopt, /*min_count=*/3);
  // 100,000 distinct one-off values interleaved with two real campaigns.
  for (int i = 0; i < 100000; ++i) {
    limiter.Intern("junk-" + std::to_string(i));
    if (i % 1000 == 0) {
      limiter.Intern("winter-sale");
      limiter.Intern("brand");
    }
  }
  EXPECT_EQ(limiter.admitted(), 2u);
  EXPECT_EQ(limiter.Value("winter-sale"), "winter-sale");
  EXPECT_EQ(limiter.Value("brand"), "brand");
  EXPECT_EQ(limiter.Value("junk-7"), LabelLimiter::kOther);
}

TEST(LabelLimiterFrequencyTest, AValueIsAdmittedOnItsMinCountSighting) {
  LabelLimiter limiter("source", 5, std::nullopt, 3);
  EXPECT_EQ(limiter.Value("google"), LabelLimiter::kOther);
  EXPECT_EQ(limiter.Value("google"), LabelLimiter::kOther);
  EXPECT_EQ(limiter.Value("google"), "google");
  EXPECT_EQ(limiter.overflow(), 2u);
}

// Limiters that share their admission (one per stream thread) admit at most
// `max_values` values between them, the same ones; sightings add up.
TEST(LabelLimiterTest, ASharedAdmissionBoundsTheValuesOfEveryLimiter) {
  LabelAdmissions shared;
  LabelLimiter a("site", 1, std::nullopt, 1, &shared);
  LabelLimiter b("site", 1, std::nullopt, 1, &shared);
  EXPECT_EQ(a.Value("shop"), "shop");
  EXPECT_EQ(b.Value("blog"), LabelLimiter::kOther);
  EXPECT_EQ(b.Value("shop"), "shop");
  EXPECT_EQ(a.Value("blog"), LabelLimiter::kOther);
  EXPECT_EQ(a.overflow() + b.overflow(), 2u);

  LabelLimiter c("source", 5, std::nullopt, 3, &shared);
  LabelLimiter d("source", 5, std::nullopt, 3, &shared);
  EXPECT_EQ(c.Value("google"), LabelLimiter::kOther);
  EXPECT_EQ(d.Value("google"), LabelLimiter::kOther);
  EXPECT_EQ(c.Value("google"), "google");  // the third sighting, of both
  EXPECT_EQ(d.Value("google"), "google");

  // Unshared, each admits its own.
  LabelLimiter e("site", 1), f("site", 1);
  EXPECT_EQ(e.Value("shop"), "shop");
  EXPECT_EQ(f.Value("blog"), "blog");
}

// A trusted value (an ad platform's campaign) needs no sightings; the bound
// and an allowlist still hold.
TEST(LabelLimiterFrequencyTest, ATrustedValueIsAdmittedAtOnceWhileThereIsRoom) {
  LabelLimiter limiter("campaign", 4, std::nullopt, 3);
  EXPECT_EQ(limiter.Value("spring"), LabelLimiter::kOther);  // one sighting
  const LabelLimiter::Id spring = limiter.InternTrusted("spring");
  EXPECT_EQ(limiter.Name(spring), "spring");
  EXPECT_EQ(limiter.Intern("spring"), spring);
  EXPECT_EQ(limiter.Name(limiter.InternTrusted("winter")), "winter");
  // Trusted values hold half the room now: another one needs its
  // sightings, as the visitors' values do.
  EXPECT_EQ(limiter.InternTrusted("summer"), LabelLimiter::kOtherId);
  EXPECT_EQ(limiter.InternTrusted("summer"), LabelLimiter::kOtherId);
  EXPECT_EQ(limiter.Name(limiter.InternTrusted("summer")), "summer");
  EXPECT_EQ(limiter.Value("sale"), LabelLimiter::kOther);
  EXPECT_EQ(limiter.Value("sale"), LabelLimiter::kOther);
  EXPECT_EQ(limiter.Value("sale"), "sale");
  EXPECT_EQ(limiter.InternTrusted("autumn"), LabelLimiter::kOtherId);  // full
  EXPECT_EQ(limiter.admitted(), 4u);
  EXPECT_EQ(limiter.overflow(), 6u);

  LabelLimiter listed("campaign", 5, std::vector<std::string>{"spring"}, 3);
  EXPECT_EQ(listed.InternTrusted("winter"), LabelLimiter::kOtherId);
  EXPECT_EQ(listed.Name(listed.InternTrusted("spring")), "spring");
}

}  // namespace
}  // namespace kpistream
