#include "aggregate/bot_filter.h"

#include <iterator>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace kpistream {

namespace {

// Lower case, matched as substrings. No browser's user agent contains any.
constexpr absl::string_view kBuiltInPatterns[] = {
    // SPEC §9.
    "bot",
    "spider",
    "crawl",
    "slurp",
    "bingpreview",
    "facebookexternalhit",
    "headless",
    "python-requests",
    "curl/",
    "wget/",
    // Load balancers' and orchestrators' health checks, uptime monitors.
    "kube-probe",
    "elb-healthchecker",
    "googlehc/",
    "envoy/hc",
    "consul health",
    "check_http",
    "nagios",
    "zabbix",
    "blackbox exporter",
    "prometheus/",
    "pingdom",
    "statuscake",
    "site24x7",
    "uptime-kuma",
    "datadog",
    "newrelicpinger",
    "gtmetrix",
    "chrome-lighthouse",
    // HTTP libraries and tools (programs, not people, fetch with them).
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "java/",
    "apache-httpclient",
    "libwww-perl",
    "lwp::",
    "node-fetch",
    "axios/",
    "undici",
    "guzzlehttp",
    "httpie/",
    "postmanruntime",
    "http_request2",
    "libfetch",
    "scrapy",
    "phantomjs",
    "httrack",
    // Internet-wide scanners.
    "zgrab",
    "censysinspect",
    "masscan",
    "nmap scripting",
    "nuclei",
    "expanse",
    "netcraft",
    // Link previews and fetchers of other services.
    "whatsapp/",
    "mastodon/",
    "pleroma",
    "misskey",
    "skypeuripreview",
    "embedly",
    "iframely",
    "mediapartners-google",
    "google-inspectiontool",
    "googleother",
    "google-read-aloud",
    "apis-google",
    "ia_archiver",
    // Feed readers (a page they fetch is no visit).
    "feedfetcher",
    "feedparser",
    "feedburner",
    "feedly",
    "feedbin",
    "newsblur",
    "inoreader",
    "tiny tiny rss",
    "liferea",
    "simplepie",
    "livejournal.com",  // its feed fetcher: "LiveJournal.com (...; N readers)"
    "theoldreader",
    "reeder/",
    // Crawlers, link checkers and fetchers without those words in their
    // names, found in a real public access log and in an audit's
    // (SEO crawlers, link checkers, a configuration-management client, a
    // WordPress site's cron loopback, certificate validation, prefetching).
    "ezooms",
    "siteexplorer",
    "flipboardproxy",
    "distilator",
    "xenu link sleuth",
    "link validator",
    "linkcheck",
    "link check",
    "checklink",
    "validator",
    "appengine-google",
    "google web preview",
    "binlar",
    "genieo",
    "portscout",
    "irssiurllog",
    "chef client",
    "wordpress/",
    "let's encrypt",
    "prefetch proxy",
    // Apache Nutch ("nutch-1.4/Nutch-1.4"), a scraper, and Delphi's HTTP
    // component (scripts, spam tools), found in the real log by an audit.
    "nutch",
    "robosourcer",
    "indy library",
};

// A user agent that is only this (lower case) names a program.
constexpr absl::string_view kExactPrograms[] = {"ruby", "java", "php", "perl",
                                                "python"};

// A web address in a user agent is a crawler's or a tool's way of saying
// where to read about it ("+http://..."): browsers name none, but smart TVs'
// (HbbTV) and Internet Explorer with the EmbeddedWB component ("Embedded Web
// Browser from: http://bsalsa.com/") do, and stay visitors.
constexpr absl::string_view kAddresses[] = {"http://", "https://"};
constexpr absl::string_view kAddressingBrowsers[] = {
    "hbbtv", "smarttv", "smart-tv", "embedded web browser from"};

// Names of devices that contain a pattern, not matched inside them: a CUBOT
// phone's browser says "CUBOT_X30" (lower case, as compared).
constexpr absl::string_view kHumanDevices[] = {"cubot"};

}  // namespace

BotFilter::BotFilter(std::vector<std::string> extra_patterns, bool empty_is_bot)
    : patterns_(std::begin(kBuiltInPatterns), std::end(kBuiltInPatterns)),
      empty_is_bot_(empty_is_bot) {
  for (std::string& p : extra_patterns) {
    if (!p.empty()) patterns_.push_back(absl::AsciiStrToLower(p));
  }
}

namespace {
// Remembered verdicts: at most this many, of user agents at most this long.
constexpr size_t kMaxVerdicts = 4096;
constexpr size_t kMaxRememberedLength = 512;
}  // namespace

bool BotFilter::IsBot(absl::string_view user_agent) const {
  if (user_agent.size() > kMaxRememberedLength) return Match(user_agent);
  auto it = verdicts_.find(user_agent);
  if (it != verdicts_.end()) return it->second;
  const bool bot = Match(user_agent);
  if (verdicts_.size() >= kMaxVerdicts) verdicts_.clear();
  verdicts_.emplace(user_agent, bot);
  return bot;
}

bool BotFilter::Match(absl::string_view user_agent) const {
  if (absl::StripAsciiWhitespace(user_agent).empty()) return empty_is_bot_;
  lower_.assign(user_agent.data(), user_agent.size());
  absl::AsciiStrToLower(&lower_);
  for (absl::string_view device : kHumanDevices) {
    // Blanked out, so that its "bot" matches nothing.
    for (size_t at = lower_.find(device.data(), 0, device.size());
         at != std::string::npos;
         at = lower_.find(device.data(), at + device.size(), device.size())) {
      lower_.replace(at, device.size(), device.size(), '_');
    }
  }
  for (const std::string& p : patterns_) {
    if (absl::StrContains(lower_, p)) return true;
  }
  const absl::string_view trimmed = absl::StripAsciiWhitespace(lower_);
  for (absl::string_view program : kExactPrograms) {
    if (trimmed == program) return true;
  }
  for (absl::string_view address : kAddresses) {
    if (!absl::StrContains(lower_, address)) continue;
    for (absl::string_view tv : kAddressingBrowsers) {
      if (absl::StrContains(lower_, tv)) return false;
    }
    return true;
  }
  return false;
}

}  // namespace kpistream
