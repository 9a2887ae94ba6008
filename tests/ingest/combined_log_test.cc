// combined_log input: a hand-written access-log excerpt with assets, a bot,
// 404s, a POST, utm-tagged and gclid landings, a replayed line and a broken
// line, through the decoder, the bot filter and the sessionizer; sessions and
// bounces worked out by hand.
#include "ingest/combined_log.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "aggregate/bot_filter.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/partition_state.h"
#include "gtest/gtest.h"
#include "ingest/event_decoder.h"

namespace kpistream {
namespace {

constexpr char kChrome[] =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0";
constexpr char kIphone[] =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148 "
    "Safari/604.1";
constexpr char kFirefox[] =
    "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko Firefox/115.0";

std::string Line(const std::string& ip, const std::string& time,
                 const std::string& request, int status,
                 const std::string& referrer, const std::string& agent) {
  return ip + " - - [" + time + "] \"" + request + "\" " +
         std::to_string(status) + " 512 \"" + referrer + "\" \"" + agent + "\"";
}

// One line of client 1.2.3.4 at 2015-05-17 10:05:03 UTC, parsed for site
// "www" (now: 2026, the default 10 min future skew).
DecodeResult ParseLine(const std::string& request, int status,
                       const std::string& referrer, const std::string& agent,
                       Event* event) {
  return ParseCombinedLogLine(Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                                   request, status, referrer, agent),
                              "www", absl::FromUnixSeconds(1767225600),
                              absl::Minutes(10), event);
}

class Sessions : public SessionObserver {
 public:
  void OnSessionStarted(const SessionAttributes&, const EventView&) override {}
  void OnEvent(const SessionAttributes&, const EventView&) override {}
  void OnSessionClosed(const ClosedSession& s) override { closed.push_back(s); }
  std::vector<ClosedSession> closed;
};

TEST(CombinedLogTest, HandWrittenExcerptGivesTheExpectedSessions) {
  const std::string a1 = Line(
      "1.2.3.4", "17/May/2015:10:05:03 +0000",
      "GET /?utm_source=newsletter&utm_medium=email&utm_campaign=spring%20sale "
      "HTTP/1.1",
      200, "-", kChrome);
  const std::vector<std::string> log = {
      a1,
      Line("1.2.3.4", "17/May/2015:10:05:04 +0000",
           "GET /css/site.css HTTP/1.1", 200, "http://www.example.org/",
           kChrome),
      Line("1.2.3.4", "17/May/2015:10:05:04 +0000", "GET /favicon.ico HTTP/1.1",
           200, "-", kChrome),
      Line("1.2.3.4", "17/May/2015:10:06:10 +0000", "GET /blog/post-1 HTTP/1.1",
           200, "http://www.example.org/", kChrome),
      Line("1.2.3.4", "17/May/2015:10:06:40 +0000", "GET /blog/post-2 HTTP/1.1",
           304, "http://www.example.org/blog/post-1", kChrome),
      // 12:05:10 +0200 is 10:05:10 UTC.
      Line("5.6.7.8", "17/May/2015:12:05:10 +0200",
           "GET /products/1?gclid=abc HTTP/1.1", 200, "https://www.google.com/",
           kIphone),
      Line("5.6.7.8", "17/May/2015:12:05:20 +0200", "POST /cart HTTP/1.1", 200,
           "http://www.example.org/products/1", kIphone),
      Line("5.6.7.8", "17/May/2015:12:05:30 +0200", "GET /missing HTTP/1.1",
           404, "-", kIphone),
      // Real lines from a public Apache log: a crawler and a crawler's 404.
      "66.249.73.185 - - [17/May/2015:10:05:37 +0000] \"GET / HTTP/1.1\" 200 "
      "37932 \"-\" "
      "\"Mozilla/5.0 (compatible; Googlebot/2.1; "
      "+http://www.google.com/bot.html)\"",
      "66.249.73.185 - - [17/May/2015:10:05:22 +0000] \"GET "
      "/doc/index.html?org/elasticsearch/action/search/SearchResponse.html "
      "HTTP/1.1\" 404 294 "
      "\"-\" \"Mozilla/5.0 (compatible; Googlebot/2.1; "
      "+http://www.google.com/bot.html)\"",
      Line("9.9.9.9", "17/May/2015:10:10:00 +0000", "HEAD / HTTP/1.1", 200,
           "https://www.google.com/", kFirefox),
      // 40 minutes later: a new session, direct.
      Line("9.9.9.9", "17/May/2015:10:50:00 +0000", "GET /about HTTP/1.1", 200,
           "-", kFirefox),
      "this is not an access log line",
      a1,  // replayed
  };

  const absl::Time now = absl::FromUnixSeconds(1767225600);
  EventDecoder decoder(InputFormat::kCombinedLog, absl::Minutes(10), "www");
  BotFilter bots({}, /*empty_is_bot=*/true);  // access logs (SPEC §9)
  ChannelClassifier channels;
  Sessions sessions;
  PartitionState state(SessionRules{}, absl::Hours(24), &sessions, &channels,
                       absl::Hours(1));
  std::map<std::string, int> outcome;
  for (const std::string& line : log) {
    Event e;
    DecodeResult r = decoder.Decode(line, now, &e);
    if (!r.ok) {
      ++outcome[std::string(r.reason)];
      EXPECT_FALSE(r.detail.empty());
      continue;
    }
    if (bots.IsBot(e.user_agent)) {
      ++outcome["bot"];
      continue;
    }
    ++outcome[state.Offer(std::move(e), absl::InfinitePast()) ==
                      PartitionState::Admit::kDuplicate
                  ? "duplicate"
                  : "accepted"];
  }
  state.Drain();

  EXPECT_EQ(outcome["accepted"], 6);      // a: 3, b: 1, c: 2 page views
  EXPECT_EQ(outcome["not_pageview"], 5);  // css, favicon, POST, 2 x 404
  EXPECT_EQ(outcome["bot"], 1);
  EXPECT_EQ(outcome["malformed"], 1);
  EXPECT_EQ(outcome["duplicate"], 1);

  ASSERT_EQ(sessions.closed.size(), 4u);
  std::sort(sessions.closed.begin(), sessions.closed.end(),
            [](const ClosedSession& x, const ClosedSession& y) {
              return x.start < y.start;
            });
  const ClosedSession& a = sessions.closed[0];
  EXPECT_EQ(a.pageviews, 3u);
  EXPECT_EQ(a.duration(), absl::Seconds(97));
  EXPECT_TRUE(a.engaged);
  EXPECT_EQ(a.channel, "Email");
  EXPECT_EQ(a.campaign, "spring sale");
  EXPECT_EQ(
      a.landing_page,
      "/?utm_source=newsletter&utm_medium=email&utm_campaign=spring%20sale");
  EXPECT_EQ(a.exit_page, "/blog/post-2");
  EXPECT_EQ(a.device_category, "desktop");
  EXPECT_EQ(a.site_id, "www");

  const ClosedSession& b = sessions.closed[1];
  EXPECT_EQ(b.start,
            absl::FromUnixSeconds(1431857110));  // 2015-05-17T10:05:10Z
  EXPECT_EQ(b.channel, "Paid Search");
  EXPECT_EQ(b.device_category, "mobile");
  EXPECT_TRUE(b.bounced);
  EXPECT_TRUE(b.single_page);

  const ClosedSession& c1 = sessions.closed[2];
  const ClosedSession& c2 = sessions.closed[3];
  EXPECT_EQ(c1.visitor_id, c2.visitor_id);
  EXPECT_EQ(c1.channel, "Organic Search");
  EXPECT_EQ(c2.channel, "Direct");
  EXPECT_TRUE(c1.bounced && c2.bounced);
  int bounced = 0;
  for (const ClosedSession& s : sessions.closed) bounced += s.bounced;
  EXPECT_EQ(bounced, 3);
}

TEST(CombinedLogTest, VisitorIdAndEventIdAreStable) {
  EXPECT_EQ(StableHash64(""), 14695981039346656037ull);
  EXPECT_EQ(StableHash64("a"), 0xaf63dc4c8601ec8cull);  // FNV-1a 64 test vector
  Event e1, e2;
  const std::string line = Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                                "GET / HTTP/1.1", 200, "-", kChrome);
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  ASSERT_TRUE(
      ParseCombinedLogLine(line, "www", now, absl::Minutes(10), &e1).ok);
  ASSERT_TRUE(
      ParseCombinedLogLine(line, "www", now, absl::Minutes(10), &e2).ok);
  EXPECT_EQ(e1.visitor_id, e2.visitor_id);
  EXPECT_EQ(e1.event_id, e2.event_id);
  EXPECT_EQ(e1.visitor_id.substr(0, 2), "h-");
  ASSERT_TRUE(ParseCombinedLogLine(line, "www", now, absl::Minutes(10), &e1,
                                   "www.example.org")
                  .ok);
  EXPECT_EQ(e1.page_url, "https://www.example.org/");
}

TEST(CombinedLogTest, TheSitesOwnReferrerIsInternalWhenTheHostIsKnown) {
  const std::string line =
      Line("1.2.3.4", "17/May/2015:10:05:03 +0000", "GET /blog/a HTTP/1.1", 200,
           "http://www.example.org/blog/", kChrome);
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  ChannelClassifier channels;
  Event e;
  ASSERT_TRUE(ParseCombinedLogLine(line, "www", now, absl::Minutes(10), &e).ok);
  EXPECT_EQ(channels.Attribute(e).channel, "Referral");  // host unknown
  ASSERT_TRUE(ParseCombinedLogLine(line, "www", now, absl::Minutes(10), &e,
                                   "example.org")
                  .ok);
  EXPECT_EQ(channels.Attribute(e).channel, "Direct");
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

// SPEC §3: a line that is not a page view still carries a time, and event
// time advances with it; a line without any usable time does not.
TEST(CombinedLogTest, RejectedLinesStillCarryTheirEventTime) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  Event e;
  const DecodeResult asset =
      ParseCombinedLogLine(Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                                "GET /logo.png HTTP/1.1", 200, "-", kChrome),
                           "www", now, absl::Minutes(10), &e);
  EXPECT_FALSE(asset.ok);
  EXPECT_EQ(asset.reason, "not_pageview");
  EXPECT_EQ(asset.time, absl::FromUnixSeconds(1431857103));
  const DecodeResult garbage =
      ParseCombinedLogLine("nonsense", "www", now, absl::Minutes(10), &e);
  EXPECT_EQ(garbage.time, absl::InfinitePast());
  const DecodeResult future =
      ParseCombinedLogLine(Line("1.2.3.4", "17/May/2035:10:05:03 +0000",
                                "GET /a HTTP/1.1", 200, "-", kChrome),
                           "www", now, absl::Minutes(10), &e);
  EXPECT_EQ(future.reason, "future_event_time");
  EXPECT_EQ(future.time, absl::InfinitePast());
}

// Found by tests/fuzz/combined_log_fuzzer (corpus/combined_log/
// year_before_1): %Y parses any year, so a line of year -15 (or -300000,
// beyond int64 microseconds) was a valid page view at a time no other
// format can carry, which the reorder buffer and the sessionizer then did
// arithmetic on. It is malformed, and carries no event time.
TEST(CombinedLogTest, ATimeOutsideTheTimestampRangeIsMalformed) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  for (const char* time :
       {"17/May/-015:10:05:40 +0000", "17/May/-300000:10:05:40 +0000",
        "31/Dec/0000:23:59:59 +0000", "01/Jan/0001:00:59:59 +0100"}) {
    SCOPED_TRACE(time);
    Event e;
    const DecodeResult r = ParseCombinedLogLine(
        Line("1.2.3.4", time, "GET / HTTP/1.1", 200, "-", kChrome), "www", now,
        absl::Minutes(10), &e);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reason, "malformed");
    EXPECT_EQ(r.time, absl::InfinitePast());
  }
  Event e;
  const DecodeResult first =
      ParseCombinedLogLine(Line("1.2.3.4", "01/Jan/0001:00:00:00 +0000",
                                "GET / HTTP/1.1", 200, "-", kChrome),
                           "www", now, absl::Minutes(10), &e);
  EXPECT_TRUE(first.ok);
  EXPECT_EQ(first.time, absl::FromUnixSeconds(kMinEventTimeSeconds));
}

TEST(CombinedLogTest, CampaignAndClickIdComeFromTheRequestQuery) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  Event e;
  ASSERT_TRUE(ParseCombinedLogLine(
                  Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                       "GET /shoes?ttclid=E1&gclid=Cj0&utm_campaign=spring "
                       "HTTP/1.1",
                       200, "https://www.google.com/", kChrome),
                  "www", now, absl::Minutes(10), &e)
                  .ok);
  EXPECT_EQ(e.click_id, "gclid-Cj0");
  EXPECT_EQ(e.utm_campaign, "spring");
  EXPECT_EQ(ChannelClassifier().Attribute(e).channel, "Paid Search");
}

// An audit's lines: a fragment hid the asset's extension ("/site.css#v1" was
// a page view of its own session), and the campaign was read from the URL
// already cut to kMaxUrlBytes (a tag past the cut was lost, an escape cut in
// two kept the value undecoded).
TEST(CombinedLogTest, AFragmentEndsThePathAndTheCampaignIsReadBeforeTheCut) {
  Event e;
  for (const char* target :
       {"/site.css#v1", "/logo.png#frag", "/feed#x", "/style.css?v=2#top"}) {
    const DecodeResult r = ParseLine(absl::StrCat("GET ", target, " HTTP/1.1"),
                                     200, "-", kChrome, &e);
    EXPECT_FALSE(r.ok) << target;
    EXPECT_EQ(r.reason, "not_pageview") << target;
  }
  // A '?' inside the fragment starts no query; one before it ends at it.
  ASSERT_TRUE(
      ParseLine("GET /page#a?flav=rss20 HTTP/1.1", 200, "-", kChrome, &e).ok);
  ASSERT_TRUE(ParseLine("GET /page?utm_source=nl#flav=rss20 HTTP/1.1", 200, "-",
                        kChrome, &e)
                  .ok);
  EXPECT_EQ(e.utm_source, "nl");
  EXPECT_FALSE(
      ParseLine("GET /page?flav=rss20#top HTTP/1.1", 200, "-", kChrome, &e).ok);

  const std::string long_path = "/" + std::string(9000, 'a');
  ASSERT_TRUE(ParseLine(absl::StrCat("GET ", long_path,
                                     "?utm_source=news&utm_medium=email "
                                     "HTTP/1.1"),
                        200, "-", kChrome, &e)
                  .ok);
  EXPECT_EQ(e.page_url.size(), kMaxUrlBytes);
  EXPECT_EQ(e.utm_source, "news");
  EXPECT_EQ(e.utm_medium, "email");
  EXPECT_EQ(ChannelClassifier().Attribute(e).channel, "Email");

  std::string escapes;
  for (int i = 0; i < 2500; ++i) escapes += "%C3%A9";
  ASSERT_TRUE(
      ParseLine(absl::StrCat("GET /p?utm_campaign=", escapes, " HTTP/1.1"), 200,
                "-", kChrome, &e)
          .ok);
  std::string decoded;
  for (int i = 0; i < 2500; ++i) decoded += "\xc3\xa9";
  // Decoded, then cut at a character boundary to kMaxEventValueBytes.
  ASSERT_EQ(e.utm_campaign.size(), kMaxEventValueBytes);
  EXPECT_EQ(e.utm_campaign, decoded.substr(0, kMaxEventValueBytes));
}

// A log line promises no encoding, and bytes that are not UTF-8 would reach
// label values (Prometheus then refuses the whole scrape) and the session
// records: they are %-escaped, whatever field they are in.
TEST(CombinedLogTest, BytesThatAreNotUtf8AreEscaped) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  Event e;
  ASSERT_TRUE(ParseCombinedLogLine(
                  Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                       "GET /caf\xe9?utm_source=news\xffletter"
                       "&utm_medium=email HTTP/1.1",
                       200, "https://ex.example/\xc3", "Bot\xfe/1.0 Mozilla"),
                  "www", now, absl::Minutes(10), &e)
                  .ok);
  EXPECT_EQ(e.page_url, "/caf%E9?utm_source=news%FFletter&utm_medium=email");
  EXPECT_EQ(e.utm_source, "news%FFletter");  // kept as written: not UTF-8
  EXPECT_EQ(e.utm_medium, "email");
  EXPECT_EQ(e.referrer, "https://ex.example/%C3");
  EXPECT_EQ(e.user_agent, "Bot%FE/1.0 Mozilla");
  // Valid sequences stay as they are.
  ASSERT_TRUE(
      ParseCombinedLogLine(Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                                "GET /caf\xc3\xa9 HTTP/1.1", 200, "-", kChrome),
                           "www", now, absl::Minutes(10), &e)
          .ok);
  EXPECT_EQ(e.page_url, "/caf\xc3\xa9");
}

// One access-log line per record: a record of two lines is a dead letter,
// not its first line with the second dropped unseen.
TEST(CombinedLogTest, ARecordOfTwoLinesIsMalformed) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  const std::string one = Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                               "GET / HTTP/1.1", 200, "-", kChrome);
  Event e;
  const DecodeResult r = ParseCombinedLogLine(one + "\n" + one + "\n", "www",
                                              now, absl::Minutes(10), &e);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "malformed");
  EXPECT_TRUE(absl::StrContains(r.detail, "more than one line")) << r.detail;
  EXPECT_TRUE(
      ParseCombinedLogLine(one + "\r\n", "www", now, absl::Minutes(10), &e).ok);
  // A bare carriage return ends a line too (an audit: the second was lost).
  const DecodeResult cr =
      ParseCombinedLogLine(one + "\r" + one, "www", now, absl::Minutes(10), &e);
  EXPECT_FALSE(cr.ok);
  EXPECT_TRUE(absl::StrContains(cr.detail, "more than one line")) << cr.detail;
}

// A quoted field ends at its closing quote and a space: a line without the
// space is malformed (its status was read from the wrong bytes); one that
// ends in a carriage return after its user agent is still whole.
TEST(CombinedLogTest, AQuotedFieldIsFollowedByASpace) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  Event e;
  const DecodeResult glued = ParseCombinedLogLine(
      "1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\"200 512 "
      "\"-\" \"Mozilla/5.0\"",
      "www", now, absl::Minutes(10), &e);
  EXPECT_FALSE(glued.ok);
  EXPECT_EQ(glued.reason, "malformed");
  EXPECT_EQ(glued.detail, "not a combined log line: expected \"request\"");
  const DecodeResult crlf = ParseCombinedLogLine(
      "1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 512 "
      "\"-\" \"Mozilla/5.0\"\r",
      "www", now, absl::Minutes(10), &e);
  EXPECT_TRUE(crlf.ok) << crlf.reason << ": " << crlf.detail;
}

// skip_paths: an SPA's API calls look like pages to an access log; paths
// the site names as no pages (their path parameters left out) are
// dead-lettered not_pageview, with the glob.
TEST(CombinedLogTest, SkippedPathsAreNoPageViews) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  EventDecoder decoder(InputFormat::kCombinedLog, absl::Minutes(10), "www",
                       "www.example.com");
  decoder.SetSkipPaths({"/api/*", "/graphql", "*.ajax"});
  EventView e;
  for (const char* request :
       {"GET /api/products?page=2 HTTP/1.1", "GET /api/v1/cart HTTP/1.1",
        "GET /graphql?query=x HTTP/1.1", "GET /data/feed.ajax HTTP/1.1",
        // No leading slash: the path from the root all the same.
        "GET api/v1/cart HTTP/1.1",
        // Path parameters left out, as funnel steps' pages do.
        "GET /graphql;jsessionid=8F3A HTTP/1.1",
        "GET /api;v=2/cart HTTP/1.1"}) {
    const DecodeResult r =
        decoder.Decode(Line("1.2.3.4", "17/May/2015:10:05:03 +0000", request,
                            200, "-", kChrome),
                       now, &e);
    EXPECT_FALSE(r.ok) << request;
    EXPECT_EQ(r.reason, "not_pageview") << request;
    EXPECT_TRUE(absl::StrContains(r.detail, "matches skip_paths")) << r.detail;
  }
  for (const char* request : {"GET /apis HTTP/1.1", "GET /docs/api/ HTTP/1.1",
                              "GET /graphql/ HTTP/1.1", "GET / HTTP/1.1",
                              "GET /feed.ajax.html HTTP/1.1"}) {
    const DecodeResult r =
        decoder.Decode(Line("1.2.3.4", "17/May/2015:10:05:03 +0000", request,
                            200, "-", kChrome),
                       now, &e);
    EXPECT_TRUE(r.ok) << request << ": " << r.detail;
  }
  // An audit: "GET index.html" with `host` made the page
  // "https://www.example.comindex.html".
  const DecodeResult r =
      decoder.Decode(Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                          "GET index.html HTTP/1.0", 200, "-", kChrome),
                     now, &e);
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(e.page_url, "https://www.example.com/index.html");
}

// An audit's lines: a byte order mark before a log's first line was kept in
// the visitor's id (another visitor than the same client's next lines), and
// a status "+200" was read as 200.
TEST(CombinedLogTest, AByteOrderMarkIsNoPartOfTheLineAndAStatusIsThreeDigits) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  const std::string line = Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                                "GET / HTTP/1.1", 200, "-", kChrome);
  Event plain, marked;
  ASSERT_TRUE(
      ParseCombinedLogLine(line, "www", now, absl::Minutes(10), &plain).ok);
  const DecodeResult r = ParseCombinedLogLine("\xEF\xBB\xBF" + line, "www", now,
                                              absl::Minutes(10), &marked);
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(marked.visitor_id, plain.visitor_id);
  for (const char* status : {"+200", "2000", "20", " 200x"}) {
    std::string bad = line;
    bad.replace(bad.find(" 200 "), 5, absl::StrCat(" ", status, " "));
    const DecodeResult b =
        ParseCombinedLogLine(bad, "www", now, absl::Minutes(10), &marked);
    EXPECT_FALSE(b.ok) << status;
    EXPECT_EQ(b.reason, "malformed") << status;
  }
}

// A request line with more than one space between its words keeps its
// target (it made a page view of no page: landing page "(not set)").
TEST(CombinedLogTest, ExtraSpacesInTheRequestLineKeepItsTarget) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  Event e;
  ASSERT_TRUE(
      ParseCombinedLogLine(Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                                "GET  /double  HTTP/1.1", 200, "-", kChrome),
                           "www", now, absl::Minutes(10), &e)
          .ok);
  EXPECT_EQ(e.page_url, "/double");
}

// What Apache and nginx log for a connection that sent no request (a 400 or
// 408) is a well-formed line, not a page view (not "malformed").
TEST(CombinedLogTest, ALineWithoutARequestIsNotAPageView) {
  Event e;
  const DecodeResult r = ParseLine("-", 408, "-", "-", &e);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "not_pageview");
  EXPECT_EQ(r.detail, "no request line (answered 408) is not a page view");
  EXPECT_EQ(r.time, absl::FromUnixSeconds(1431857103));
  // nginx's "" for the same, and the bytes of a TLS handshake sent to the
  // plain port (as nginx escapes them): not page views either.
  for (const char* request : {"", "\\x16\\x03\\x01\\x02\\x00\\x01"}) {
    const DecodeResult other = ParseLine(request, 400, "-", "-", &e);
    EXPECT_FALSE(other.ok) << request;
    EXPECT_EQ(other.reason, "not_pageview") << request;
  }
}

// The servers' escapes are undone: nginx writes every byte above 126 as
// \xHH (the UTF-8 of "é" is two), Apache control bytes; a control byte
// stays escaped, as %HH.
TEST(CombinedLogTest, EscapedBytesAreTheBytesTheyStandFor) {
  Event e;
  ASSERT_TRUE(ParseLine("GET /caf\\xC3\\xA9?q=\\\"x\\\"\\x01 HTTP/1.1", 200,
                        "https://ex.example/\\xc3\\xa9\\t", "Agent\\\\1\\n", &e)
                  .ok);
  EXPECT_EQ(e.page_url, "/caf\xc3\xa9?q=\"x\"%01");
  EXPECT_EQ(e.referrer, "https://ex.example/\xc3\xa9%09");
  EXPECT_EQ(e.user_agent, "Agent\\1%0A");
  // \x without two hex digits is an x.
  ASSERT_TRUE(ParseLine("GET /a\\xZ1 HTTP/1.1", 200, "-", kChrome, &e).ok);
  EXPECT_EQ(e.page_url, "/axZ1");
}

// Android tablets' browsers leave "Mobile" out of the user agent.
TEST(CombinedLogTest, AndroidWithoutMobileIsATablet) {
  const std::map<std::string, std::string> want = {
      {"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, "
       "like Gecko) Chrome/120.0.0.0 Safari/537.36",
       "tablet"},
      {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, "
       "like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
       "mobile"},
      {"Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
       "mobile"},
      {"Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0",
       "tablet"},
      // Windows 7's IE on a desktop (the real log's): "Tablet PC 2.0" is
      // the OS's Tablet PC components, on by default.
      {"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; "
       "SLCC2; .NET CLR 2.0.50727; Media Center PC 6.0; Tablet PC 2.0)",
       "desktop"},
      {"Dalvik/1.6.0 (Linux; U; Android 4.1.2; GT-S5282 Build/JZO54K)",
       "mobile"},
      {"Opera/9.80 (Android; Opera Mini/7.5.33361/31.1448; U; en) "
       "Presto/2.8.119 Version/11.1010",
       "mobile"},
      {kIphone, "mobile"},
      {kChrome, "desktop"},
      // Phones and tablets that say neither Mobile, iPhone nor Android (an
      // audit found these "desktop" in the real log): feature phones' WAP
      // and J2ME browsers, Opera Mini on them, a Kindle Fire's Silk in
      // desktop mode.
      {"QS304 Profile/MIDP-2.0 Configuration/CLDC-1.1", "mobile"},
      {"SAMSUNG-GT-E2232/1.0 Openwave/6.2.3 Profile/MIDP-2.0 "
       "Configuration/CLDC-1.1 UP.Browser/6.2.3.3.c.1.101 (GUI) MMP/2.0",
       "mobile"},
      {"Opera/9.80 (MTK; Opera Mini/2.1199/37.6584; U; en) Presto/2.12.423 "
       "Version/12.16",
       "mobile"},
      {"MAXX_MAUI WAP Browser", "mobile"},
      {"Mozilla/5.0 (BlackBerry; U; BlackBerry 9900; en) AppleWebKit/534.11+ "
       "(KHTML, like Gecko) Version/7.1.0.346 Safari/534.11+",
       "mobile"},
      {"Mozilla/5.0 (Linux; U; en-us; KFAPWI Build/JDQ39) AppleWebKit/535.19 "
       "(KHTML, like Gecko) Silk/3.13 Safari/535.19 Silk-Accelerated=true",
       "tablet"},
      {"Mozilla/5.0 (X11; U; Linux armv7l like Android; en-us) "
       "AppleWebKit/531.2+ (KHTML, like Gecko) Version/5.0 Safari/531.2+ "
       "Kindle/3.0+",
       "tablet"},
  };
  for (const auto& [agent, device] : want) {
    Event e;
    ASSERT_TRUE(ParseLine("GET / HTTP/1.1", 200, "-", agent, &e).ok) << agent;
    EXPECT_EQ(e.device_category, device) << agent;
  }
}

// Smart TVs, their sticks and game consoles are neither phones, tablets nor
// computers: "(other)" (SPEC §2). An Android TV's browser leaves "Mobile"
// out (it read "tablet") or puts it in (it read "mobile"); an Xbox says
// "Windows NT" (it read "desktop"). Amazon's own tablets (Fire "KF…") are
// tablets still, and a word that only starts with AFT is no Fire TV.
TEST(CombinedLogTest, TvsAndConsolesAreOtherDevices) {
  const std::map<std::string, std::string> want = {
      {"Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, "
       "like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
       "(other)"},
      {"Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like "
       "Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
       "(other)"},
      {"Mozilla/5.0 (Linux; Android 11; SHIELD Android TV "
       "Build/RQ1A.210105.003; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Version/4.0 Chrome/99.0.4844.88 Mobile Safari/537.36",
       "(other)"},
      {"Mozilla/5.0 (Linux; Android 10; BRAVIA 4K UR3 "
       "Build/QTG3.200305.006.S92; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Version/4.0 Chrome/92.0.4515.159 Safari/537.36",
       "(other)"},
      {"Mozilla/5.0 (Linux; Android 9; AFTKA Build/PS7633.3445N; wv) "
       "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
       "Chrome/108.0.5359.160 Mobile Safari/537.36",
       "(other)"},
      {"Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like "
       "Gecko) Chrome/91.0.4472.225 Safari/537.36 CrKey/1.56.500000 "
       "DeviceType/AndroidTV",
       "(other)"},
      {"Mozilla/5.0 (Linux; Tizen 2.3) AppleWebKit/538.1 (KHTML, like "
       "Gecko)Version/2.3 TV Safari/538.1 HbbTV/1.2.1 "
       "(+DRM;Samsung;SmartTV2015;T-HKMFDEUC-1490.3;;) WH1.0",
       "(other)"},
      {"Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 "
       "(KHTML, like Gecko) Version/13.0 Safari/605.1.15",
       "(other)"},
      {"Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) "
       "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 "
       "Safari/537.36 Edge/18.19041",
       "(other)"},
      {"Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 "
       "(KHTML, like Gecko) NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393",
       "(other)"},
      {"Roku/DVP-9.10 (519.10E04111A)", "(other)"},
      {"AppleTV11,1/11.1", "(other)"},
      {"Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, "
       "like Gecko) Silk/120.3.1 like Chrome/120.0.6099.230 Safari/537.36",
       "tablet"},
      {"Mozilla/5.0 (Windows NT 10.0; Win64; x64; AFTerglow) "
       "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
       "Safari/537.36",
       "desktop"},
      {"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, "
       "like Gecko) Chrome/120.0.0.0 Safari/537.36",
       "tablet"},
  };
  for (const auto& [agent, device] : want) {
    Event e;
    ASSERT_TRUE(ParseLine("GET / HTTP/1.1", 200, "-", agent, &e).ok) << agent;
    EXPECT_EQ(e.device_category, device) << agent;
  }
}

// A browser's requests for what a page needs (a manifest, a video's
// segments, data) are no page views: a page that links a manifest is still
// one page view. A document is one (SPEC names assets only).
TEST(CombinedLogTest, AssetsAndDownloadsAreNoPageViews) {
  Event e;
  for (const char* path :
       {"/site.webmanifest", "/v/index.m3u8", "/v/seg-0001.ts", "/v/c-1.m4s",
        "/favicon.ico", "/icons/favicon-32x32.png", "/favicon",
        "/data/page.json", "/a.WAV", "/b.ogg", "/c.mov", "/d.tar", "/e.7z",
        "/f.heic", "/app.wasm"}) {
    const DecodeResult r = ParseLine(absl::StrCat("GET ", path, " HTTP/1.1"),
                                     200, "-", kChrome, &e);
    EXPECT_FALSE(r.ok) << path;
    EXPECT_EQ(r.reason, "not_pageview") << path;
  }
  for (const char* path : {"/", "/blog/post.html", "/shop/item", "/v1.2/",
                           "/slides.pdf", "/blog/how-to-make-a-favicon"}) {
    EXPECT_TRUE(ParseLine(absl::StrCat("GET ", path, " HTTP/1.1"), 200, "-",
                          kChrome, &e)
                    .ok)
        << path;
  }
}

// An audit's lines: assets behind a Java session id path parameter, machine
// endpoints (ACME and prefetch checks, WordPress's cron, AJAX, REST and
// XML-RPC calls) and installers or applets were counted as page views; the
// page the session id rides on, and pages named like them, are pages.
TEST(CombinedLogTest, PathParametersEndpointsAndInstallersAreNoPageViews) {
  Event e;
  for (const char* path : {"/css/site.css;jsessionid=8F3A2B",
                           "/js/app.js;jsessionid=8F3A2B",
                           "/img/logo.PNG;JSESSIONID=abc",
                           "/a;v=1/b.css",
                           "/.well-known/acme-challenge/Xy3kq9PqZ",
                           "/.well-known/traffic-advice",
                           "/wp-cron.php?doing_wp_cron=1702.5",
                           "/wp-admin/admin-ajax.php",
                           "/xmlrpc.php",
                           "/wp-json/wp/v2/posts",
                           "/wp-json",
                           "/blog/wp-json/wp/v2/posts",
                           "/dl/tool.jar",
                           "/media/intro.swf",
                           "/dl/setup.exe",
                           "/dl/app.dmg",
                           "/dl/app.msi",
                           "/dl/pkg.deb",
                           "/dl/pkg.rpm",
                           "/dl/app.apk",
                           "/dl/disk.iso"}) {
    const DecodeResult r = ParseLine(absl::StrCat("GET ", path, " HTTP/1.1"),
                                     200, "-", kChrome, &e);
    EXPECT_FALSE(r.ok) << path;
    EXPECT_EQ(r.reason, "not_pageview") << path;
  }
  for (const char* path :
       {"/shop/item.jsp;jsessionid=8F3A2B", "/shop;jsessionid=1/cart",
        "/blog/wp-json-explained", "/docs/.well-known-uris",
        "/blog/installing-the-jar", "/index.php"}) {
    EXPECT_TRUE(ParseLine(absl::StrCat("GET ", path, " HTTP/1.1"), 200, "-",
                          kChrome, &e)
                    .ok)
        << path;
  }
}

// The real log's PDF: opened once, a 200 and then 16 ranges answered 206 by
// the browser's viewer. One page view, not 17.
TEST(CombinedLogTest, APartialContentRangeIsNoPageView) {
  Event e;
  EXPECT_TRUE(ParseLine("GET /images/logstash_OSCON.pdf HTTP/1.1", 200, "-",
                        kChrome, &e)
                  .ok);
  const DecodeResult range = ParseLine(
      "GET /images/logstash_OSCON.pdf HTTP/1.1", 206, "-", kChrome, &e);
  EXPECT_FALSE(range.ok);
  EXPECT_EQ(range.reason, "not_pageview");
  EXPECT_EQ(range.detail,
            "GET /images/logstash_OSCON.pdf answered 206 is not a page view");
  for (int status : {200, 201, 204, 299, 304}) {
    EXPECT_TRUE(ParseLine("GET /a HTTP/1.1", status, "-", kChrome, &e).ok)
        << status;
  }
}

// An XML document is a page the browser shows (the real log's /resume.xml,
// reached from Google), its XSL stylesheet an asset (/resume.xsl, referred by
// /resume.xml); feeds, sitemaps and files browsers fetch on their own are no
// page views.
TEST(CombinedLogTest, AnXmlDocumentIsAPageAndItsStylesheetIsNot) {
  Event e;
  for (const char* page :
       {"/resume.xml", "/RESUME.XML", "/files/logstash/config.xml",
        "/misc/pre-harden.xml", "/docs/feedback-form.xml.html"}) {
    EXPECT_TRUE(ParseLine(absl::StrCat("GET ", page, " HTTP/1.1"), 200, "-",
                          kChrome, &e)
                    .ok)
        << page;
  }
  for (const char* asset :
       {"/resume.xsl", "/style/page.XSLT", "/rss.xml", "/feed.xml",
        "/feeds.xml", "/atom10.xml", "/blog/comments-feed.xml",
        "/news/index.rss.xml", "/posts/index.xml", "/sitemap.xml",
        "/sitemap_index.xml", "/browserconfig.xml", "/crossdomain.xml",
        "/clientaccesspolicy.xml", "/opensearch.xml"}) {
    const DecodeResult r = ParseLine(absl::StrCat("GET ", asset, " HTTP/1.1"),
                                     200, "-", kChrome, &e);
    EXPECT_FALSE(r.ok) << asset;
    EXPECT_EQ(r.reason, "not_pageview") << asset;
  }
}

// An open-proxy scan ("GET http://www.baidu.com/ HTTP/1.1", answered 200 with
// the site's own front page) is no page view; an absolute-form request for
// the site's own host is one, of its path.
TEST(CombinedLogTest, AProxyRequestForAnotherHostIsNoPageView) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  auto parse = [&](const std::string& target, absl::string_view host,
                   Event* e) {
    return ParseCombinedLogLine(
        Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
             "GET " + target + " HTTP/1.1", 200, "-", kChrome),
        "www", now, absl::Minutes(10), e, host);
  };
  Event e;
  for (const char* probe :
       {"http://www.baidu.com/", "HTTPS://proxyjudge.example:443/azenv.php",
        "http://www.example.com.evil.example/", "http://example.org/",
        "http://www.example.com@evil.example/"}) {
    const DecodeResult r = parse(probe, "www.example.com", &e);
    EXPECT_FALSE(r.ok) << probe;
    EXPECT_EQ(r.reason, "not_pageview") << probe;
  }
  const DecodeResult unknown = parse("http://www.baidu.com/", "", &e);
  EXPECT_FALSE(unknown.ok);
  EXPECT_EQ(unknown.detail,
            "a proxy request for www.baidu.com (absolute-form target) is not a "
            "page view (no input host to match)");
  const std::pair<const char*, const char*> own[] = {
      {"http://www.example.com/blog/post?utm_source=news",
       "https://www.example.com/blog/post?utm_source=news"},
      {"https://Example.COM:8443", "https://www.example.com/"},
      {"http://user@www.example.com?x=1", "https://www.example.com/?x=1"},
  };
  for (const auto& [target, page] : own) {
    ASSERT_TRUE(parse(target, "www.example.com", &e).ok) << target;
    EXPECT_EQ(e.page_url, page) << target;
  }
  // The input's host with a port (config allows one): the same site, any
  // port (an audit: every absolute-form request was a proxy request then).
  for (const auto& [target, host] :
       {std::pair<const char*, const char*>{"http://www.example.com:8080/p",
                                            "www.example.com:8080"},
        {"http://www.example.com/p", "example.com:8080"},
        {"http://[2001:db8::1]:8080/p", "[2001:db8::1]:8080"},
        {"http://[2001:db8::1]/p", "[2001:db8::1]"}}) {
    const DecodeResult r = parse(target, host, &e);
    EXPECT_TRUE(r.ok) << target << " for " << host << ": " << r.detail;
  }
  for (const auto& [target, host] :
       {std::pair<const char*, const char*>{"http://www.baidu.com/",
                                            "www.example.com:8080"},
        {"http://[2001:db8::2]:8080/p", "[2001:db8::1]:8080"}}) {
    EXPECT_EQ(parse(target, host, &e).reason, "not_pageview")
        << target << " for " << host;
  }
  ASSERT_TRUE(
      parse("http://user@www.example.com?x=1", "www.example.com", &e).ok);
  EXPECT_EQ(e.utm_source, "");
  ASSERT_TRUE(parse("http://www.example.com/blog/post?utm_source=news",
                    "www.example.com", &e)
                  .ok);
  EXPECT_EQ(e.utm_source, "news");
  // Its path decides as any page's does: an asset stays no page view.
  EXPECT_FALSE(
      parse("http://www.example.com/app.css", "www.example.com", &e).ok);
}

// Apache's vhost_combined format (Debian's other_vhosts_access.log) starts
// each line with "%v:%p": every line of such a log was malformed ("expected
// [time]"). The fields after it are the combined format's; the virtual host
// is the site's host where the input names none.
TEST(CombinedLogTest, AVhostCombinedLineIsReadAsCombined) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  const std::string combined = Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                                    "GET /blog/a?utm_source=news HTTP/1.1", 200,
                                    "https://www.example.org/", kChrome);
  Event plain, vhost, other;
  ASSERT_TRUE(
      ParseCombinedLogLine(combined, "www", now, absl::Minutes(10), &plain).ok);
  const DecodeResult r = ParseCombinedLogLine(
      "www.example.org:443 " + combined, "www", now, absl::Minutes(10), &vhost);
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(vhost.time, plain.time);
  EXPECT_EQ(vhost.visitor_id, plain.visitor_id);  // the client, not the vhost
  EXPECT_EQ(vhost.page_url, "https://www.example.org/blog/a?utm_source=news");
  EXPECT_EQ(vhost.utm_source, "news");
  EXPECT_EQ(vhost.user_agent, kChrome);
  EXPECT_EQ(vhost.type, EventType::kPageView);
  // The vhost makes the site's own referrer internal, as `host` does.
  ChannelClassifier channels;
  plain.utm_source.clear();
  vhost.utm_source.clear();
  EXPECT_EQ(channels.Attribute(plain).channel, "Referral");
  EXPECT_EQ(channels.Attribute(vhost).channel, "Direct");
  // The input's host wins over the line's virtual host.
  ASSERT_TRUE(ParseCombinedLogLine("www.example.org:80 " + combined, "www", now,
                                   absl::Minutes(10), &other,
                                   "shop.example.com")
                  .ok);
  EXPECT_EQ(other.page_url, "https://shop.example.com/blog/a?utm_source=news");
  // An IPv6 client, an absolute-form target naming the vhost, an asset.
  const std::string v6 =
      "www.example.org:443 2001:db8::1 - - [17/May/2015:10:05:03 +0000] "
      "\"GET http://www.example.org/x HTTP/1.1\" 200 5 \"-\" \"" +
      std::string(kChrome) + "\"";
  ASSERT_TRUE(
      ParseCombinedLogLine(v6, "www", now, absl::Minutes(10), &other).ok);
  EXPECT_EQ(other.page_url, "https://www.example.org/x");
  const DecodeResult asset = ParseCombinedLogLine(
      "www.example.org:443 " + Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                                    "GET /a.css HTTP/1.1", 200, "-", kChrome),
      "www", now, absl::Minutes(10), &other);
  EXPECT_EQ(asset.reason, "not_pageview");
  EXPECT_EQ(asset.time, plain.time);
  // A fourth field that is no host:port is still no line of either format.
  for (const std::string& bad :
       {"www.example.org " + combined, "www.example.org:https " + combined,
        ":443 " + combined, "a:b:443 x " + combined}) {
    const DecodeResult m =
        ParseCombinedLogLine(bad, "www", now, absl::Minutes(10), &other);
    EXPECT_EQ(m.reason, "malformed") << bad;
    EXPECT_TRUE(absl::StrContains(m.detail, "expected [time]")) << m.detail;
  }
}

// Apache writes an authenticated user's name as sent, spaces and all, and
// some servers pad the address with a second space: such lines were
// malformed (dead-lettered), their page views lost. The visitor is the
// same client and user agent as on its other lines. Lines with a field of
// another format before the time stay malformed.
TEST(CombinedLogTest, AUserNameWithSpacesAndAPaddedAddressAreRead) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  const std::string rest =
      "[17/May/2015:10:05:03 +0000] \"GET /private/ HTTP/1.1\" 200 512 \"-\" "
      "\"" +
      std::string(kChrome) + "\"";
  Event plain;
  ASSERT_TRUE(ParseCombinedLogLine("1.2.3.4 - - " + rest, "www", now,
                                   absl::Minutes(10), &plain)
                  .ok);
  for (const std::string& line :
       {"1.2.3.4 - John Doe " + rest, "1.2.3.4 - Jane van der Berg " + rest,
        "1.2.3.4  - - " + rest, "1.2.3.4 -  john " + rest}) {
    Event e;
    const DecodeResult r =
        ParseCombinedLogLine(line, "www", now, absl::Minutes(10), &e);
    ASSERT_TRUE(r.ok) << line << ": " << r.detail;
    EXPECT_EQ(e.visitor_id, plain.visitor_id) << line;
    EXPECT_EQ(e.page_url, plain.page_url) << line;
    EXPECT_EQ(e.time, plain.time) << line;
  }
  // An IPv6 address that looks like host:port, and a user with a space.
  Event v6;
  ASSERT_TRUE(ParseCombinedLogLine("::1 - John Doe " + rest, "www", now,
                                   absl::Minutes(10), &v6)
                  .ok);
  Event v6_plain;
  ASSERT_TRUE(ParseCombinedLogLine("::1 - - " + rest, "www", now,
                                   absl::Minutes(10), &v6_plain)
                  .ok);
  EXPECT_EQ(v6.visitor_id, v6_plain.visitor_id);
  // The same after vhost_combined's host:port (an audit: malformed).
  for (const std::string& line :
       {"www.example.org:443 1.2.3.4 - John Doe " + rest,
        "www.example.org:443 1.2.3.4 - Jane van der Berg " + rest}) {
    Event e;
    const DecodeResult r =
        ParseCombinedLogLine(line, "www", now, absl::Minutes(10), &e);
    ASSERT_TRUE(r.ok) << line << ": " << r.detail;
    EXPECT_EQ(e.visitor_id, plain.visitor_id) << line;
    EXPECT_EQ(e.page_url, "https://www.example.org/private/") << line;
  }
  // Words that a user name does not explain: an ident other than "-", or
  // a user "-" followed by more; with a host:port before them too.
  for (const std::string& line :
       {"1.2.3.4 x John Doe " + rest, "1.2.3.4 - - extra " + rest,
        "1.2.3.4 - " + rest, "www.example.org:443 1.2.3.4 x John Doe " + rest,
        "www.example.org:443 1.2.3.4 - - extra " + rest}) {
    Event e;
    const DecodeResult r =
        ParseCombinedLogLine(line, "www", now, absl::Minutes(10), &e);
    EXPECT_EQ(r.reason, "malformed") << line;
  }
}

// SPEC: feeds are no page views, whether the path or the query asks for one
// (the real log's feed readers poll /?flav=rss20 and /blog/tags/x?flav=atom);
// a page whose query only mentions a feed (feedburner's utm tags, a search
// for "rss") is still one.
TEST(CombinedLogTest, FeedRequestsAreNoPageViews) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  auto page_view = [&](const std::string& target) {
    Event e;
    return ParseCombinedLogLine(
               Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                    "GET " + target + " HTTP/1.1", 200, "-", kChrome),
               "www", now, absl::Minutes(10), &e)
        .ok;
  };
  for (const char* feed : {"/?flav=rss20",
                           "/blog/tags/puppet?flav=rss20",
                           "/?flav=atom",
                           "/?FLAV=Atom",
                           "/?p=1&feed=rss2",
                           "/?feed",
                           "/?feed=comments-atom",
                           "/blog?alt=rss",
                           "/news?format=atom;x=1",
                           "/x?type=rdf",
                           "/x?output=rss_0.92",
                           "/feed",
                           "/blog/feed/",
                           "/index.rss",
                           "/atom.xml",
                           "/feed/atom/",
                           "/feed/rss2/",
                           "/feed/rdf",
                           "/feed/rss/",
                           "/comments/feed/rss2",
                           "/blog/rss/",
                           "/atom/"}) {
    EXPECT_FALSE(page_view(feed)) << feed;
  }
  for (const char* page :
       {"/", "/blog/post.html?utm_source=feedburner&utm_medium=feed",
        "/search?q=rss+reader", "/x?flav=plain", "/x?format=html",
        "/x?feedback=1", "/x?alt=json", "/feeds/about", "/x?type=atomic",
        "/x?format=rdfa", "/x?feed=0", "/x?flav=rssfeed", "/feed/about",
        "/blog/rss2", "/feedx/rss2"}) {
    EXPECT_TRUE(page_view(page)) << page;
  }
  Event e;
  const DecodeResult r =
      ParseCombinedLogLine(Line("1.2.3.4", "17/May/2015:10:05:03 +0000",
                                "GET /?flav=rss20 HTTP/1.1", 200, "-", kChrome),
                           "www", now, absl::Minutes(10), &e);
  EXPECT_EQ(r.reason, "not_pageview");
  EXPECT_EQ(r.detail, "a feed, not a page view: GET /?flav=rss20");
}

}  // namespace
}  // namespace kpistream
