#include "ingest/combined_log.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "aggregate/label_values.h"
#include "aggregate/sessionizer.h"
#include "aggregate/text_search.h"
#include "aggregate/time_text.h"
#include "aggregate/utf8.h"
#include "ingest/page_url.h"

namespace kpistream {

uint64_t StableHash64(absl::string_view bytes) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

namespace {

DecodeResult Malformed(absl::string_view why) {
  return {false, "malformed", absl::StrCat("not a combined log line: ", why)};
}

// Reads up to the next space.
bool Token(absl::string_view& in, absl::string_view* out) {
  const size_t space = in.find(' ');
  if (space == 0 || in.empty()) return false;
  *out = in.substr(0, space);
  in.remove_prefix(space == absl::string_view::npos ? in.size() : space + 1);
  return true;
}

// Reads a "quoted" field; leaves `in` after it and a space (false when
// something else follows its closing quote). Undoes the
// servers' escapes: \" and \\ (both), and \xHH for a byte outside
// printable ASCII (Apache for control bytes, nginx for those and every byte
// above 126: "/caf\xC3\xA9" is "/café"). A control byte (\xHH, or Apache's
// \b \n \r \t \v) is written %HH, as a URL carries it: no label value or
// record gets a raw one. Any other backslash stands for the character after
// it.
bool Quoted(absl::string_view& in, std::string* out) {
  if (in.empty() || in[0] != '"') return false;
  out->clear();
  size_t i = 1;
  for (; i < in.size() && in[i] != '"'; ++i) {
    if (in[i] != '\\' || i + 1 >= in.size()) {
      out->push_back(in[i]);
      continue;
    }
    char c = in[++i];
    if (c == 'x' && HexByte(in.substr(i + 1), &c)) {
      i += 2;
    } else if (const size_t k = absl::string_view("bnrtv").find(c);
               k != absl::string_view::npos) {
      c = "\b\n\r\t\v"[k];
    }
    const unsigned char byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      absl::StrAppendFormat(out, "%%%02X", byte);
    } else {
      out->push_back(c);
    }
  }
  if (i >= in.size()) return false;
  // The field ends at its quote: a character other than a space after it
  // (`"GET / HTTP/1.1"200`) is no field boundary, and was taken for one (the
  // status read as "00").
  if (i + 1 < in.size() &&
      !absl::ascii_isspace(static_cast<unsigned char>(in[i + 1]))) {
    return false;
  }
  in.remove_prefix(std::min(in.size(), i + 2));
  return true;
}

// Whether `value` names a feed format: rss, atom or rdf and a version
// (rss20, rss2, atom10, rss_0.92), nothing else (atomic, rdfa are not).
bool IsFeedFormat(absl::string_view value) {
  for (absl::string_view format : {"rss", "atom", "rdf"}) {
    if (!absl::StartsWithIgnoreCase(value, format)) continue;
    const absl::string_view version = value.substr(format.size());
    return std::all_of(version.begin(), version.end(), [](char c) {
      return absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.' ||
             c == '_';
    });
  }
  return false;
}

// A feed's path (lower case, path parameters removed): a last segment
// `feed`, `rss` or `atom`, a slash after it or not, or a feed format under
// `feed` (WordPress's /feed/atom/, /feed/rss2/, /comments/feed/rdf: an
// audit found them counted as page views).
bool IsFeedPath(absl::string_view lower) {
  if (absl::EndsWith(lower, "/")) lower.remove_suffix(1);
  const size_t slash = lower.rfind('/');
  if (slash == absl::string_view::npos) return false;
  const absl::string_view last = lower.substr(slash + 1);
  if (last == "feed" || last == "rss" || last == "atom") return true;
  return IsFeedFormat(last) && absl::EndsWith(lower.substr(0, slash), "/feed");
}

bool IsAsset(absl::string_view path) {
  // Lower case, without path parameters (`/css/site.css;jsessionid=8F3A`:
  // Java servers add the session id to every URL of a new visitor's first
  // page, before the cookie is set), which name no file.
  std::string without;
  std::string lower(WithoutPathParameters(path, &without));
  absl::AsciiStrToLower(&lower);
  // A favicon is a last path segment named so (favicon.ico, favicon-32x32
  // .png); a page about one ("/blog/how-to-make-a-favicon") is a page.
  const absl::string_view last =
      absl::string_view(lower).substr(lower.rfind('/') + 1);
  if (lower == "/robots.txt" || absl::StartsWith(last, "favicon") ||
      IsFeedPath(lower)) {
    return true;
  }
  // Machine endpoints no visitor opens: RFC 8615's well-known URIs (ACME
  // challenges, traffic-advice, app-site associations, security.txt) and
  // WordPress's cron, AJAX, REST and XML-RPC endpoints (its own loopback and
  // a page's scripts call them).
  if (absl::StartsWith(lower, "/.well-known/") || last == "wp-json" ||
      absl::StrContains(lower, "/wp-json/") || last == "wp-cron.php" ||
      last == "admin-ajax.php" || last == "xmlrpc.php") {
    return true;
  }
  const size_t slash = lower.rfind('/');
  const size_t dot = lower.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) {
    return false;
  }
  // An .xml file is a page (a document a browser shows, often styled by an
  // .xsl that is an asset: /resume.xml) unless its name is one of a feed
  // (rss.xml, feed.xml, atom10.xml, blog-feed.xml, Hugo's index.xml), a
  // sitemap or one that browsers and plugins fetch on their own.
  if (absl::string_view(lower).substr(dot) == ".xml") {
    const absl::string_view stem = last.substr(0, last.size() - 4);
    for (absl::string_view feed : {"rss", "feed", "atom", "sitemap"}) {
      if (absl::StartsWith(stem, feed) || absl::EndsWith(stem, feed)) {
        return true;
      }
    }
    for (absl::string_view fetched :
         {"index", "browserconfig", "crossdomain", "clientaccesspolicy",
          "opensearch", "osd"}) {
      if (stem == fetched) return true;
    }
    return false;
  }
  // Styles (and XSL stylesheets), scripts, data, images, fonts, feeds, text,
  // media (and streaming segments), archives, installers and applets.
  // Documents (.pdf ...) stay page views: SPEC names assets only.
  static const char* const kAssets[] = {
      "css", "js",   "mjs",  "map",  "json", "wasm", "webmanifest", "png",
      "jpg", "jpeg", "gif",  "svg",  "ico",  "webp", "avif",        "bmp",
      "tif", "tiff", "heic", "heif", "jxl",  "woff", "woff2",       "ttf",
      "otf", "eot",  "rss",  "atom", "xsl",  "xslt", "txt",         "mp4",
      "m4v", "webm", "mov",  "avi",  "wmv",  "mkv",  "mpg",         "mpeg",
      "ogv", "m3u8", "m4s",  "ts",   "mpd",  "mp3",  "m4a",         "aac",
      "ogg", "oga",  "opus", "wav",  "flac", "wma",  "mid",         "midi",
      "zip", "gz",   "tgz",  "bz2",  "xz",   "7z",   "rar",         "tar",
      "jar", "swf",  "exe",  "msi",  "dmg",  "pkg",  "deb",         "rpm",
      "apk", "iso"};
  const absl::string_view ext = absl::string_view(lower).substr(dot + 1);
  for (const char* a : kAssets) {
    if (ext == a) return true;
  }
  return false;
}

// Whether a request's query asks for a feed rather than a page: a parameter
// `feed` without a value or naming a feed (WordPress: ?feed, ?feed=rss2,
// ?feed=comments-atom), or one of the names feed software selects its
// flavour with set to a feed format (Blosxom's ?flav=rss20 or ?flav=atom,
// Blogger's ?alt=rss, ?format=atom, ?type=rss, ?output=rss). Feed readers
// poll these every few minutes: counted as page views they made a quarter
// of a real blog log's page views and most of its bounces.
bool IsFeedQuery(absl::string_view query) {
  for (absl::string_view param : absl::StrSplit(query, absl::ByAnyChar("&;"))) {
    // Views, no copies: this runs for every parameter of every line.
    const size_t eq = param.find('=');
    const absl::string_view name = param.substr(0, eq);
    const absl::string_view value = eq == absl::string_view::npos
                                        ? absl::string_view()
                                        : param.substr(eq + 1);
    auto is = [&](absl::string_view n) {
      return absl::EqualsIgnoreCase(name, n);
    };
    if (is("feed")) {
      const std::string v = absl::AsciiStrToLower(value);
      if (v.empty() || absl::StrContains(v, "rss") ||
          absl::StrContains(v, "atom") || absl::StrContains(v, "rdf")) {
        return true;
      }
      continue;
    }
    if ((is("flav") || is("alt") || is("format") || is("type") ||
         is("output")) &&
        IsFeedFormat(value)) {
      return true;
    }
  }
  return false;
}

// An Android browser ("Mozilla/...") without "Mobile" is a tablet: what
// Android tablets' browsers send (Google's own rule for telling them from
// phones). Other Android clients (apps' Dalvik, Opera Mini, TV apps) say
// neither, phones mostly: mobile, as before.
// "Tablet PC 2.0" is a token Windows 7's Internet Explorer sends from
// desktops with the Tablet PC components on (the default): not a tablet.
bool SaysTablet(absl::string_view ua) {
  for (size_t at = ua.find("Tablet"); at != absl::string_view::npos;
       at = ua.find("Tablet", at + 1)) {
    if (!absl::StartsWith(ua.substr(at), "Tablet PC")) return true;
  }
  return false;
}

// The authority (host[:port], after any userinfo) of an absolute-form
// request target ("http://host:port/path"); a null view for any other form.
absl::string_view AbsoluteFormAuthority(absl::string_view target) {
  for (absl::string_view scheme : {"http://", "https://"}) {
    if (!absl::StartsWithIgnoreCase(target, scheme)) continue;
    const absl::string_view rest = target.substr(scheme.size());
    return rest.substr(0, rest.find_first_of("/?#"));
  }
  return {};
}

// A host without its port: "example.com:8080" example.com, "[::1]:8080"
// [::1].
absl::string_view WithoutPort(absl::string_view host) {
  if (absl::StartsWith(host, "[")) {
    const size_t close = host.find(']');
    return close == absl::string_view::npos ? host : host.substr(0, close + 1);
  }
  return host.substr(0, host.find(':'));
}

// Whether an absolute-form target's authority names the input's host: the
// same name (any case, any port on either, any userinfo), with or without
// "www." (the input's host may carry a port, as config allows: an audit,
// the site's own requests were taken for proxy requests then).
bool SameSite(absl::string_view authority, absl::string_view host) {
  if (host.empty()) return false;
  if (const size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  authority = WithoutPort(authority);
  host = WithoutPort(host);
  for (absl::string_view* name : {&authority, &host}) {
    if (absl::StartsWithIgnoreCase(*name, "www.")) name->remove_prefix(4);
  }
  return absl::EqualsIgnoreCase(authority, host);
}

// "%v:%p" of vhost_combined: a name, a colon, a port number.
bool IsVhostAndPort(absl::string_view token) {
  const size_t colon = token.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      colon + 1 == token.size() || token.size() - colon > 6) {
    return false;
  }
  return std::all_of(token.begin() + colon + 1, token.end(),
                     [](char c) { return absl::ascii_isdigit(c); });
}

// Smart TVs, their streaming sticks and game consoles, as their browsers
// and apps name themselves: Samsung's Tizen ("SMART-TV"), LG's webOS
// ("Web0S", "SmartTV"), HbbTV sets, Android and Google TV (whose browsers
// leave "Mobile" out, which read "tablet"), Sony's BRAVIA, Amazon's Fire
// TV ("; AFT" and its model letters), Chromecast ("CrKey"), Apple TV,
// Roku; PlayStation, Xbox (which says "Windows NT" too: "desktop" before)
// and Nintendo. None is a phone, tablet or computer: SPEC §2 has no
// category for them, so "(other)".
// Whether `ua` names a device model starting with `prefix` ("; AFT",
// "; KF") followed by a capital letter (AFTMM, KFAPWI; not "; AFTER").
bool HasModel(absl::string_view ua, absl::string_view prefix) {
  for (size_t at = ua.find(prefix); at != absl::string_view::npos;
       at = ua.find(prefix, at + 1)) {
    const size_t next = at + prefix.size();
    if (next < ua.size() && absl::ascii_isupper(ua[next])) return true;
  }
  return false;
}

bool IsTvOrConsole(absl::string_view ua) {
  static constexpr absl::string_view kNames[] = {
      "SMART-TV", "SmartTV",    "Smart-TV",  "SMART TV", "Smart TV",
      "HbbTV",    "Android TV", "AndroidTV", "GoogleTV", "Google TV",
      "BRAVIA",   "CrKey/",     "AppleTV",   "Apple TV", "tvOS",
      "Roku/",    "(Roku",      "Web0S",     "NetCast",  "PlayStation",
      "Xbox",     "Nintendo",
  };
  for (absl::string_view name : kNames) {
    if (absl::StrContains(ua, name)) return true;
  }
  return HasModel(ua, "; AFT");
}

// Amazon's Kindles: e-readers ("Kindle/3.0"), and Fire tablets, whose Silk
// browser's desktop mode says neither Android nor Mobile ("(Linux; U;
// en-us; KFAPWI Build/JDQ39) ... Silk/3.13"); BlackBerry's PlayBook.
bool IsOtherTablet(absl::string_view ua) {
  return absl::StrContains(ua, "Kindle") || absl::StrContains(ua, "Silk/") ||
         absl::StrContains(ua, "PlayBook") || HasModel(ua, "; KF");
}

// Phones whose browsers say neither "Mobi" nor iPhone nor Android: feature
// phones' WAP and J2ME browsers (MIDP, CLDC, Openwave's UP.Browser,
// MediaTek's MAUI, Opera Mini), BlackBerry, Symbian and Windows Phone (an
// audit found them "desktop" in a real log).
bool IsOtherPhone(absl::string_view ua) {
  static constexpr absl::string_view kNames[] = {
      "Opera Mini", "MIDP",     "CLDC",      "UP.Browser",    "Openwave",
      "MAUI",       "J2ME",     "Obigo",     "BlackBerry",    "BB10",
      "Symbian",    "Series60", "Series 60", "Windows Phone", "Windows CE",
  };
  for (absl::string_view name : kNames) {
    if (absl::StrContains(ua, name)) return true;
  }
  return false;
}

std::string Device(absl::string_view ua) {
  if (IsTvOrConsole(ua)) return std::string(kOther);
  if (absl::StrContains(ua, "iPad") || SaysTablet(ua) || IsOtherTablet(ua)) {
    return "tablet";
  }
  if (absl::StrContains(ua, "Mobi") || absl::StrContains(ua, "iPhone") ||
      IsOtherPhone(ua)) {
    return "mobile";
  }
  if (absl::StrContains(ua, "Android")) {
    return absl::StartsWith(ua, "Mozilla/") ? "tablet" : "mobile";
  }
  return "desktop";
}

}  // namespace

DecodeResult ParseCombinedLogLine(absl::string_view line,
                                  absl::string_view site, absl::Time now,
                                  absl::Duration max_future_skew, Event* event,
                                  absl::string_view host) {
  line = absl::StripTrailingAsciiWhitespace(line);
  // A UTF-8 byte order mark (a log's first line, written by some editors and
  // Windows tools) is no part of the client address.
  if (absl::StartsWith(line, "\xEF\xBB\xBF")) line.remove_prefix(3);
  // One line per record: a shipper that batches lines into one message
  // would otherwise have all but the first dropped unseen. A bare carriage
  // return ends a line too (servers escape one inside a field: \r), as in
  // old Mac line endings (an audit: "line1\rline2" was line1 alone).
  if (const size_t newline = line.find_first_of("\r\n");
      newline != absl::string_view::npos) {
    return Malformed(absl::StrCat(
        "the record holds more than one line (a line break at byte ", newline,
        "); send one access-log line per record"));
  }
  const absl::string_view whole = line;
  // The fields before the time: client address, ident and user, or
  // Apache's vhost_combined (Debian's other_vhosts_access.log) with the
  // virtual host and port ("%v:%p") before them, shaped name:port. Apache
  // writes an authenticated user's name as sent, spaces and all ("- John
  // Doe"), and some servers pad the address with a second space: the time
  // is found first (" [" and a day/month/year), and the fields are the
  // words before it.
  size_t bracket = line.find(" [");
  for (size_t at = bracket; at != absl::string_view::npos;
       at = line.find(" [", at + 1)) {
    const absl::string_view time_start = line.substr(at + 2, 3);
    if (time_start.size() == 3 && absl::ascii_isdigit(time_start[0]) &&
        absl::ascii_isdigit(time_start[1]) && time_start[2] == '/') {
      bracket = at;
      break;
    }
  }
  if (bracket == absl::string_view::npos) {
    return Malformed(
        "expected [time] after the client address, ident and user (the "
        "combined format, or vhost_combined with a leading host:port)");
  }
  const absl::string_view before_time = line.substr(0, bracket);
  std::vector<absl::string_view> fields =
      absl::StrSplit(before_time, ' ', absl::SkipEmpty());
  if (fields.size() < 3) {
    return Malformed("expected client address, ident and user");
  }
  absl::string_view vhost;
  size_t first = 0;  // the client address's field
  // vhost_combined: host:port, then the client address (never "-"), then
  // an ident, then the user: one word, or several after an ident of "-"
  // (an audit: "- John Doe" after a host:port was refused).
  if (fields.size() >= 4 && IsVhostAndPort(fields[0]) && fields[1] != "-" &&
      (fields.size() == 4 || fields[2] == "-")) {
    vhost = fields[0].substr(0, fields[0].rfind(':'));
    first = 1;
  }
  if (fields.size() - first > 3 &&
      (fields[first + 1] != "-" || fields[first + 2] == "-")) {
    // More words than a user name with spaces explains (that comes after
    // an ident of "-", and is no "-" itself): a field of another format.
    return Malformed(
        "expected [time] after the client address, ident and user (the "
        "combined format, or vhost_combined with a leading host:port)");
  }
  const absl::string_view client = fields[first];
  line.remove_prefix(bracket + 1);
  const size_t close = line.find(']');
  if (close == absl::string_view::npos) return Malformed("unterminated [time]");
  absl::Time time;
  std::string error;
  if (!absl::ParseTime("%d/%b/%Y:%H:%M:%S %z",
                       std::string(line.substr(1, close - 1)), &time, &error)) {
    return Malformed(absl::StrCat("bad time: ", error));
  }
  // %Y takes any year, also one before year 1 (or beyond 9999): an event
  // time no other format can carry, and one the aggregation core's
  // microsecond arithmetic does not expect.
  if (!IsEventTimeInRange(time)) {
    return Malformed(absl::StrCat("time ", TimeText(time), " is out of range"));
  }
  line.remove_prefix(std::min(line.size(), close + 2));
  // From here on the line has a time: it moves the watermark whatever becomes
  // of the line (SPEC §3), unless it lies beyond the future skew.
  const bool future = time > now + max_future_skew;
  auto timed = [&](DecodeResult r) {
    if (!future) r.time = time;
    return r;
  };
  std::string request, referrer, agent;
  if (!Quoted(line, &request)) return timed(Malformed("expected \"request\""));
  absl::string_view status_text, bytes_text;
  if (!Token(line, &status_text) || !Token(line, &bytes_text)) {
    return timed(Malformed("expected status and size"));
  }
  // Three digits, as servers write it (SimpleAtoi would take "+200").
  int status = 0;
  if (status_text.size() != 3 ||
      !std::all_of(status_text.begin(), status_text.end(),
                   [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(status_text, &status))
    return timed(Malformed("bad status"));
  if (!Quoted(line, &referrer) || !Quoted(line, &agent)) {
    return timed(Malformed("expected \"referrer\" \"user agent\""));
  }
  // Words apart however many spaces (a request line with two between
  // method and target is still that target).
  std::vector<absl::string_view> parts =
      absl::StrSplit(request, ' ', absl::SkipEmpty());
  if (request == "-" || parts.size() < 2) {
    // What Apache and nginx log for a connection that sent no request (a
    // 400 or 408: "-" or ""), or no HTTP (a TLS handshake on the plain
    // port, a scanner's bytes): a well-formed line, not a page view.
    return timed({false, "not_pageview",
                  absl::StrCat("no request line (answered ", status,
                               ") is not a page view")});
  }
  const absl::string_view method = parts[0];
  absl::string_view target = parts[1];
  // An absolute-form target ("GET http://other.example/ HTTP/1.1") is what a
  // client sends a proxy; a browser never sends one to the site itself. The
  // server answers it with a page of its own (often 200), so open-proxy scans
  // would count as page views: only one naming this site's host (`host`,
  // with or without "www.") is, with its path.
  std::string origin_form;
  // The site's host: the input's, else the line's virtual host.
  const absl::string_view site_host = host.empty() ? vhost : host;
  if (const absl::string_view authority = AbsoluteFormAuthority(target);
      authority.data() != nullptr) {
    if (!SameSite(authority, site_host)) {
      return timed(
          {false, "not_pageview",
           absl::StrCat("a proxy request for ", authority,
                        " (absolute-form target) is not a page view",
                        site_host.empty() ? " (no input host to match)" : "")});
    }
    const absl::string_view rest =
        target.substr(authority.data() + authority.size() - target.data());
    origin_form = absl::StrCat(absl::StartsWith(rest, "/") ? "" : "/", rest);
    target = origin_form;
  } else if (!absl::StartsWith(target, "/") && target != "*") {
    // "GET index.html" (no leading slash; a server may serve it): the path
    // from the root, as an origin-form target is (an audit: with `host` the
    // page was "https://www.example.comindex.html", and its path "/").
    origin_form = absl::StrCat("/", target);
    target = origin_form;
  }
  // The path ends at the query or at a fragment (a browser sends none, a
  // scanner may: "/site.css#v1" is a stylesheet); the query ends at the
  // fragment, and a '?' inside the fragment starts none.
  const size_t path_end = FindFirstOf(target, "?#");
  const absl::string_view path = target.substr(0, path_end);
  absl::string_view query;
  if (path_end != absl::string_view::npos && target[path_end] == '?') {
    query = target.substr(path_end + 1);
    query = query.substr(0, query.find('#'));
  }
  // A 206 Partial Content is one range of a file already being shown (a
  // browser's PDF viewer reads a document in ranges after its 200, 16 of
  // them for one opening in the real log): the 200 was the page view.
  if ((method != "GET" && method != "HEAD") ||
      !((status >= 200 && status < 300 && status != 206) || status == 304) ||
      IsAsset(path)) {
    return timed({false, "not_pageview",
                  absl::StrCat(method, " ", path, " answered ", status,
                               " is not a page view")});
  }
  if (IsFeedQuery(query)) {
    return timed({false, "not_pageview",
                  absl::StrCat("a feed, not a page view: ", method, " ", path,
                               "?", query)});
  }
  if (future) {
    return {false, "future_event_time",
            absl::StrCat("time ", TimeText(time), " is in the future")};
  }
  *event = Event{};
  event->time = time;
  event->type = EventType::kPageView;
  event->site_id = std::string(site);
  event->visitor_id = absl::StrFormat(
      "h-%016x", StableHash64(absl::StrCat(client, "\x1f", agent)));
  event->event_id = absl::StrFormat("l-%016x", StableHash64(whole));
  // A log line promises no encoding; the outputs need UTF-8 (a label value
  // that is not makes Prometheus refuse the whole scrape): bytes outside
  // valid sequences are %-escaped, as a URL would carry them.
  event->page_url = EscapeInvalidUtf8(
      site_host.empty() ? std::string(target)
                        : absl::StrCat("https://", site_host, target));
  event->referrer = referrer == "-" ? "" : EscapeInvalidUtf8(referrer);
  // Campaign parameters from the whole URL, before it is cut: a tag past
  // the cut is still the visit's (EventDecoder reads them in that order too).
  FillCampaignFromPageUrl(event);
  // Bounded as every format's are (EventDecoder, "Sizes").
  event->page_url.resize(CutUtf8(event->page_url, kMaxUrlBytes).size());
  event->referrer.resize(CutUtf8(event->referrer, kMaxUrlBytes).size());
  event->user_agent = agent == "-" ? "" : EscapeInvalidUtf8(agent);
  event->device_category = Device(agent);
  event->country = std::string(kNotSet);  // an access log has none
  return timed({true, {}, {}});
}

}  // namespace kpistream
