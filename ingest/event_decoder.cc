#include "ingest/event_decoder.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "ingest/combined_log.h"
#include "kpistream/v1/web_event.pb.h"

namespace kpistream {
namespace {

constexpr int64_t kMinSeconds = -62135596800LL;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxSeconds = 253402300799LL;  // 9999-12-31T23:59:59Z

// The WebEvent fields the engine uses, as views into the bytes (or the
// message) they were parsed from. Fields the engine does not keep
// (session_id, page_title, utm_term, utm_content) are checked, not kept.
struct WebEventFields {
  absl::string_view event_id;
  absl::string_view site_id;
  absl::string_view visitor_id;
  absl::string_view user_id;
  absl::string_view page_url;
  absl::string_view referrer;
  absl::string_view utm_source;
  absl::string_view utm_medium;
  absl::string_view utm_campaign;
  absl::string_view click_id;
  absl::string_view device_category;
  absl::string_view country;
  absl::string_view user_agent;
  absl::string_view goal;
  absl::string_view currency;
  absl::string_view order_id;
  bool has_event_time = false;
  int64_t seconds = 0;
  int32_t nanos = 0;
  int32_t type = 0;  // open enum: any value the wire carries
  uint32_t session_number = 0;
  int64_t value_micros = 0;
};

// ---------------------------------------------------------------------------
// Binary WebEvent reader.
//
// Decoding the wire format straight into views, instead of through
// v1::WebEvent::ParseFromArray, is what keeps decoding at a fraction of the
// per-event budget: no message to clear, no string copied twice, no protobuf
// log line per bad record. It accepts and rejects exactly what
// ParseFromArray does (tests/ingest/event_decoder_test.cc checks it against
// the generated parser on valid, mutated and random input):
//   - varints up to 10 bytes, tags up to 5, sizes up to 5 (< 2 GiB); excess
//     high bits are dropped, as protobuf does;
//   - a known field number with another wire type is an unknown field;
//     unknown fields (including groups) are skipped; field number 0, wire
//     types 6 and 7, a stray end-group tag, or a tag 0 fail the parse;
//   - a repeated scalar or string field: the last one wins; a repeated
//     message field merges;
//   - every proto3 string field must be valid UTF-8;
//   - nesting (messages and groups) deeper than 100 levels fails.
// When proto/kpistream/v1/web_event.proto gains a field, add it here.
// ---------------------------------------------------------------------------

constexpr int kRecursionLimit = 100;  // protobuf's default

struct Cursor {
  const uint8_t* p;
  const uint8_t* end;
};

// Reads a varint of at most `max_bytes` bytes, modulo 2^64.
inline bool ReadVarint(Cursor& c, int max_bytes, uint64_t* out) {
  uint64_t result = 0;
  for (int i = 0; i < max_bytes; ++i) {
    if (c.p == c.end) return false;
    const uint8_t byte = *c.p++;
    result |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if (byte < 0x80) {
      *out = result;
      return true;
    }
  }
  return false;
}

inline bool ReadTag(Cursor& c, uint32_t* tag) {
  if (c.p != c.end && *c.p < 0x80) {
    *tag = *c.p++;
    return true;
  }
  uint64_t value;
  if (!ReadVarint(c, 5, &value)) return false;
  *tag = static_cast<uint32_t>(value);
  return true;
}

// A length prefix and the bytes it covers.
inline bool ReadDelimited(Cursor& c, Cursor* body) {
  uint64_t size;
  if (!ReadVarint(c, 5, &size)) return false;
  if (size > static_cast<uint64_t>(c.end - c.p)) return false;
  body->p = c.p;
  body->end = c.p + size;
  c.p = body->end;
  return true;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, <= U+10FFFF.
bool IsValidUtf8(const uint8_t* p, const uint8_t* end) {
  while (p != end) {
    // ASCII runs, 8 bytes at a time.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if (word & 0x8080808080808080ULL) break;
      p += 8;
    }
    if (p == end) return true;
    const uint8_t lead = *p;
    if (lead < 0x80) {
      ++p;
      continue;
    }
    int length;
    uint8_t min2 = 0x80, max2 = 0xbf;  // range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) min2 = 0xa0;  // overlong
      if (lead == 0xed) max2 = 0x9f;  // surrogates
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) min2 = 0x90;  // overlong
      if (lead == 0xf4) max2 = 0x8f;  // > U+10FFFF
    } else {
      return false;
    }
    if (end - p < length) return false;
    if (p[1] < min2 || p[1] > max2) return false;
    for (int i = 2; i < length; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
    }
    p += length;
  }
  return true;
}

inline bool ReadString(Cursor& c, absl::string_view* out) {
  Cursor body;
  if (!ReadDelimited(c, &body)) return false;
  if (!IsValidUtf8(body.p, body.end)) return false;
  *out = absl::string_view(reinterpret_cast<const char*>(body.p),
                           static_cast<size_t>(body.end - body.p));
  return true;
}

bool SkipGroup(Cursor& c, uint32_t start_tag, int depth);

// Skips the value of an unknown field whose tag has been read. `depth` is
// the nesting budget left at the field's level.
bool SkipUnknownField(Cursor& c, uint32_t tag, int depth) {
  if (tag == 0 || (tag & 7) == 4) return false;  // not inside a group here
  if ((tag >> 3) == 0) return false;
  switch (tag & 7) {
    case 0: {
      uint64_t ignored;
      return ReadVarint(c, 10, &ignored);
    }
    case 1:
      if (c.end - c.p < 8) return false;
      c.p += 8;
      return true;
    case 2: {
      Cursor ignored;
      return ReadDelimited(c, &ignored);
    }
    case 3:
      return SkipGroup(c, tag, depth - 1);
    case 5:
      if (c.end - c.p < 4) return false;
      c.p += 4;
      return true;
    default:
      return false;
  }
}

bool SkipGroup(Cursor& c, uint32_t start_tag, int depth) {
  if (depth < 0) return false;
  while (c.p != c.end) {
    uint32_t tag;
    if (!ReadTag(c, &tag)) return false;
    if (tag == 0 || (tag & 7) == 4) return tag == start_tag + 1;
    if (!SkipUnknownField(c, tag, depth)) return false;
  }
  return false;  // no end-group tag
}

constexpr uint32_t Tag(uint32_t field, uint32_t wire_type) {
  return field << 3 | wire_type;
}
constexpr uint32_t kVarint = 0;
constexpr uint32_t kDelimited = 2;

bool ParseTimestamp(Cursor c, int depth, WebEventFields* f) {
  while (c.p != c.end) {
    uint32_t tag;
    if (!ReadTag(c, &tag)) return false;
    uint64_t value;
    switch (tag) {
      case Tag(1, kVarint):
        if (!ReadVarint(c, 10, &value)) return false;
        f->seconds = static_cast<int64_t>(value);
        continue;
      case Tag(2, kVarint):
        if (!ReadVarint(c, 10, &value)) return false;
        f->nanos = static_cast<int32_t>(static_cast<uint32_t>(value));
        continue;
    }
    if (!SkipUnknownField(c, tag, depth)) return false;
  }
  return true;
}

bool ParseConversion(Cursor c, int depth, WebEventFields* f) {
  while (c.p != c.end) {
    uint32_t tag;
    if (!ReadTag(c, &tag)) return false;
    uint64_t value;
    switch (tag) {
      case Tag(1, kDelimited):
        if (!ReadString(c, &f->goal)) return false;
        continue;
      case Tag(2, kVarint):
        if (!ReadVarint(c, 10, &value)) return false;
        f->value_micros = static_cast<int64_t>(value);
        continue;
      case Tag(3, kDelimited):
        if (!ReadString(c, &f->currency)) return false;
        continue;
      case Tag(4, kDelimited):
        if (!ReadString(c, &f->order_id)) return false;
        continue;
    }
    if (!SkipUnknownField(c, tag, depth)) return false;
  }
  return true;
}

// Parses a binary WebEvent; false where ParseFromArray would fail.
bool ParseWebEvent(absl::string_view bytes, WebEventFields* f) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return false;  // beyond what protobuf parses
  }
  Cursor c{reinterpret_cast<const uint8_t*>(bytes.data()),
           reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size()};
  const int depth = kRecursionLimit;
  absl::string_view ignored;
  while (c.p != c.end) {
    uint32_t tag;
    if (!ReadTag(c, &tag)) return false;
    uint64_t value = 0;
    Cursor body;
    bool ok;
    switch (tag) {
      case Tag(1, kDelimited):
        ok = ReadString(c, &f->event_id);
        break;
      case Tag(2, kDelimited):
        f->has_event_time = true;
        ok = ReadDelimited(c, &body) && ParseTimestamp(body, depth - 1, f);
        break;
      case Tag(3, kDelimited):
        ok = ReadString(c, &f->site_id);
        break;
      case Tag(4, kDelimited):
        ok = ReadString(c, &f->visitor_id);
        break;
      case Tag(5, kDelimited):
        ok = ReadString(c, &f->user_id);
        break;
      case Tag(6, kDelimited):   // session_id
      case Tag(9, kDelimited):   // page_title
      case Tag(14, kDelimited):  // utm_term
      case Tag(15, kDelimited):  // utm_content
        ok = ReadString(c, &ignored);
        break;
      case Tag(7, kVarint):
        ok = ReadVarint(c, 10, &value);
        f->type = static_cast<int32_t>(static_cast<uint32_t>(value));
        break;
      case Tag(8, kDelimited):
        ok = ReadString(c, &f->page_url);
        break;
      case Tag(10, kDelimited):
        ok = ReadString(c, &f->referrer);
        break;
      case Tag(11, kDelimited):
        ok = ReadString(c, &f->utm_source);
        break;
      case Tag(12, kDelimited):
        ok = ReadString(c, &f->utm_medium);
        break;
      case Tag(13, kDelimited):
        ok = ReadString(c, &f->utm_campaign);
        break;
      case Tag(16, kDelimited):
        ok = ReadString(c, &f->click_id);
        break;
      case Tag(17, kDelimited):
        ok = ReadString(c, &f->device_category);
        break;
      case Tag(18, kDelimited):
        ok = ReadString(c, &f->country);
        break;
      case Tag(19, kDelimited):
        ok = ReadString(c, &f->user_agent);
        break;
      case Tag(20, kVarint):
        ok = ReadVarint(c, 10, &value);
        f->session_number = static_cast<uint32_t>(value);
        break;
      case Tag(21, kDelimited):
        ok = ReadDelimited(c, &body) && ParseConversion(body, depth - 1, f);
        break;
      default:
        ok = SkipUnknownField(c, tag, depth);
        break;
    }
    if (!ok) return false;
  }
  return true;
}

// The same views over a message parsed from JSON.
void FieldsOf(const v1::WebEvent& m, WebEventFields* f) {
  f->event_id = m.event_id();
  f->site_id = m.site_id();
  f->visitor_id = m.visitor_id();
  f->user_id = m.user_id();
  f->page_url = m.page_url();
  f->referrer = m.referrer();
  f->utm_source = m.utm_source();
  f->utm_medium = m.utm_medium();
  f->utm_campaign = m.utm_campaign();
  f->click_id = m.click_id();
  f->device_category = m.device_category();
  f->country = m.country();
  f->user_agent = m.user_agent();
  f->goal = m.conversion().goal();
  f->currency = m.conversion().currency();
  f->order_id = m.conversion().order_id();
  f->has_event_time = m.has_event_time();
  f->seconds = m.event_time().seconds();
  f->nanos = m.event_time().nanos();
  f->type = static_cast<int32_t>(m.type());
  f->session_number = m.session_number();
  f->value_micros = m.conversion().value_micros();
}

// ---------------------------------------------------------------------------
// Validation and mapping, shared by the binary and the JSON path.
// ---------------------------------------------------------------------------

DecodeResult Invalid(absl::string_view reason, std::string detail) {
  return DecodeResult{false, reason, std::move(detail)};
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

const char* DeviceCategory(absl::string_view device) {
  for (const char* known : {"desktop", "mobile", "tablet"}) {
    if (absl::EqualsIgnoreCase(device, known)) return known;
  }
  return "(other)";
}

void SetCountry(absl::string_view country, std::string* out) {
  if (country.size() == 2 && absl::ascii_isalpha(country[0]) &&
      absl::ascii_isalpha(country[1])) {
    out->assign(country.data(), 2);
    absl::AsciiStrToUpper(out);
  } else {
    out->assign("(other)");
  }
}

inline void Set(absl::string_view value, std::string* out) {
  out->assign(value.data(), value.size());
}

DecodeResult ValidateAndFill(const WebEventFields& f,
                             absl::string_view default_site, absl::Time now,
                             absl::Duration max_future_skew, Event* event) {
  absl::string_view site = f.site_id;
  if (site.empty()) {
    if (default_site.empty()) {
      return Invalid("missing_site_id", "site_id is empty");
    }
    site = default_site;
  }
  if (f.visitor_id.empty()) {
    return Invalid("missing_visitor_id", "visitor_id is empty");
  }
  if (!f.has_event_time || (f.seconds == 0 && f.nanos == 0)) {
    return Invalid("missing_event_time", "event_time is not set");
  }
  if (f.seconds < kMinSeconds || f.seconds > kMaxSeconds || f.nanos < 0 ||
      f.nanos >= 1000000000) {
    return Invalid(
        "malformed",
        absl::StrCat("event_time {seconds: ", f.seconds, ", nanos: ", f.nanos,
                     "} is outside 0001-01-01..9999-12-31"));
  }
  const absl::Time time =
      absl::FromUnixSeconds(f.seconds) + absl::Nanoseconds(f.nanos);
  EventType type;
  switch (f.type) {
    case v1::PAGE_VIEW:
      type = EventType::kPageView;
      break;
    case v1::ENGAGEMENT:
      type = EventType::kEngagement;
      break;
    case v1::CONVERSION:
      type = EventType::kConversion;
      break;
    case v1::CUSTOM:
      type = EventType::kCustom;
      break;
    case v1::EVENT_TYPE_UNSPECIFIED:
      return Invalid("missing_type", "type is not set");
    default:
      return Invalid("missing_type", absl::StrCat("type ", f.type,
                                                  " is not a known EventType"));
  }
  if (type == EventType::kConversion && f.goal.empty()) {
    return Invalid("missing_goal", "a CONVERSION event needs conversion.goal");
  }
  if (time > now + max_future_skew) {
    return Invalid(
        "future_event_time",
        absl::StrCat("event_time ", FormatUtc(time), " is ",
                     absl::FormatDuration(time - now), " ahead of now (",
                     FormatUtc(now), "); max_future_skew is ",
                     absl::FormatDuration(max_future_skew)));
  }

  event->time = time;
  event->type = type;
  event->session_number = f.session_number;
  Set(f.event_id, &event->event_id);
  Set(site, &event->site_id);
  Set(f.visitor_id, &event->visitor_id);
  Set(f.user_id, &event->user_id);
  Set(f.page_url, &event->page_url);
  Set(f.referrer, &event->referrer);
  Set(f.utm_source, &event->utm_source);
  Set(f.utm_medium, &event->utm_medium);
  Set(f.utm_campaign, &event->utm_campaign);
  Set(f.click_id, &event->click_id);
  Set(f.user_agent, &event->user_agent);
  event->device_category.assign(DeviceCategory(f.device_category));
  SetCountry(f.country, &event->country);
  if (type == EventType::kConversion) {
    Set(f.goal, &event->goal);
    Set(f.order_id, &event->order_id);
    Set(f.currency, &event->currency);
    absl::AsciiStrToUpper(&event->currency);
    event->value_micros = f.value_micros;
  } else {
    event->goal.clear();
    event->order_id.clear();
    event->currency.clear();
    event->value_micros = 0;
  }
  return DecodeResult{true, {}, {}};
}

}  // namespace

const std::vector<absl::string_view>& InvalidReasons() {
  static const auto* reasons = new std::vector<absl::string_view>{
      "malformed",          "missing_site_id", "missing_visitor_id",
      "missing_event_time", "missing_type",    "missing_goal",
      "future_event_time",  "not_pageview"};
  return *reasons;
}

struct EventDecoder::Impl {
  InputFormat format;
  absl::Duration max_future_skew;
  std::string default_site;
  std::string host;
  v1::WebEvent message;  // JSON only: reused across calls
  google::protobuf::util::JsonParseOptions json_options;
};

EventDecoder::EventDecoder(InputFormat format, absl::Duration max_future_skew,
                           std::string default_site, std::string host)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->format = format;
  impl_->max_future_skew = max_future_skew;
  impl_->default_site = std::move(default_site);
  impl_->json_options.ignore_unknown_fields = true;
}

EventDecoder::~EventDecoder() = default;

DecodeResult EventDecoder::Decode(absl::string_view bytes, absl::Time now,
                                  Event* event) {
  WebEventFields fields;
  switch (impl_->format) {
    case InputFormat::kProtobuf:
      if (!ParseWebEvent(bytes, &fields)) {
        return Invalid("malformed",
                       absl::StrCat("not a valid protobuf WebEvent (",
                                    bytes.size(), " bytes)"));
      }
      break;
    case InputFormat::kJson: {
      v1::WebEvent& m = impl_->message;
      m.Clear();
      auto status = google::protobuf::util::JsonStringToMessage(
          google::protobuf::StringPiece(bytes.data(), bytes.size()), &m,
          impl_->json_options);
      if (!status.ok()) {
        return Invalid("malformed", absl::StrCat("not a valid JSON WebEvent: ",
                                                 status.message().as_string()));
      }
      FieldsOf(m, &fields);
      break;
    }
    case InputFormat::kCombinedLog:
      return ParseCombinedLogLine(bytes, impl_->default_site, now,
                                  impl_->max_future_skew, event, impl_->host);
  }
  return ValidateAndFill(fields, impl_->default_site, now,
                         impl_->max_future_skew, event);
}

}  // namespace kpistream
