#include "ingest/event_decoder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "aggregate/label_values.h"
#include "aggregate/sessionizer.h"
#include "aggregate/time_text.h"
#include "aggregate/utf8.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "ingest/combined_log.h"
#include "ingest/json_event_reader.h"
#include "ingest/page_url.h"
#include "ingest/protobuf_event_reader.h"
#include "kpistream/v1/web_event.pb.h"

namespace kpistream {
namespace {

DecodeResult Invalid(absl::string_view reason, std::string detail) {
  return DecodeResult{false, reason, std::move(detail)};
}

// SPEC §2 and §4: a known device category, "(not set)" when missing,
// "(other)" for anything else; static storage either way.
absl::string_view NormalizedDevice(absl::string_view device) {
  if (device.empty()) return kNotSet;
  for (absl::string_view known :
       {absl::string_view("desktop"), absl::string_view("mobile"),
        absl::string_view("tablet")}) {
    if (absl::EqualsIgnoreCase(device, known)) return known;
  }
  return kOther;
}

// An ISO 3166-1 alpha-2 code in upper case; "(not set)" when missing or not
// of that shape (GA4's wording for an unknown dimension value). A view of
// `country` when it is upper case already, else of *storage.
absl::string_view NormalizedCountry(absl::string_view country,
                                    std::string* storage) {
  if (country.size() != 2 || !absl::ascii_isalpha(country[0]) ||
      !absl::ascii_isalpha(country[1])) {
    return kNotSet;
  }
  if (absl::ascii_isupper(country[0]) && absl::ascii_isupper(country[1])) {
    return country;
  }
  storage->assign(country.data(), country.size());
  absl::AsciiStrToUpper(storage);
  return *storage;
}

// `text` in ASCII upper case: a view of it when it is already, else of
// *storage.
absl::string_view AsciiUpper(absl::string_view text, std::string* storage) {
  if (std::none_of(text.begin(), text.end(), absl::ascii_islower)) return text;
  storage->assign(text.data(), text.size());
  absl::AsciiStrToUpper(storage);
  return *storage;
}

// Copies a view's fields into an Event's own strings.
void CopyInto(const EventView& view, Event* event) {
  event->time = view.time;
  event->type = view.type;
  event->session_number = view.session_number;
  event->value_micros = view.value_micros;
#define KPISTREAM_COPY_FIELD(f) event->f.assign(view.f.data(), view.f.size());
  KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_COPY_FIELD)
#undef KPISTREAM_COPY_FIELD
  event->user_agent.assign(view.user_agent.data(), view.user_agent.size());
}

// A view of a message's string field.
absl::string_view View(const std::string& field) { return field; }

// The first line of a libprotobuf message (its parse errors add the input
// around the error on further lines).
absl::string_view FirstLine(absl::string_view message) {
  return message.substr(0, message.find('\n'));
}

}  // namespace

std::string NotACurrencyCode(absl::string_view field,
                             absl::string_view currency) {
  return absl::StrCat(field, " \"", absl::CHexEscape(currency.substr(0, 32)),
                      "\" is not an ISO 4217 code (three letters, as in EUR)");
}

std::string TooLargeAmount(absl::string_view field, int64_t micros) {
  return absl::StrCat(field, " ", micros,
                      " is beyond +/-1e17 (a hundred billion of the "
                      "currency's units): a unit mix-up?");
}

std::string OtherFormatHint(absl::string_view bytes, InputFormat format) {
  const absl::string_view head =
      absl::StripLeadingAsciiWhitespace(bytes.substr(0, 256));
  InputFormat looks;
  if (!head.empty() && (head.front() == '{' || head.front() == '[')) {
    looks = InputFormat::kJson;
  } else if (std::any_of(head.begin(), head.end(), [](char c) {
               const auto u = static_cast<unsigned char>(c);
               return (u < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
                      u == 0x7f;
             })) {
    looks = InputFormat::kProtobuf;
  } else {
    // An access-log line: host, identity and user, then "[time]".
    const std::vector<absl::string_view> fields =
        absl::StrSplit(head, absl::MaxSplits(' ', 3));
    if (fields.size() < 4 || fields[0].empty() ||
        !absl::StartsWith(fields[3], "[")) {
      return "";
    }
    looks = InputFormat::kCombinedLog;
  }
  if (looks == format) return "";
  const absl::string_view like = looks == InputFormat::kJson ? "JSON"
                                 : looks == InputFormat::kProtobuf
                                     ? "binary (protobuf)"
                                     : "an access-log line";
  return absl::StrCat(kOtherFormatHintStart, like, ": is the input's format ",
                      InputFormatName(looks), "?");
}

const std::vector<absl::string_view>& InvalidReasons() {
  static const auto* reasons = new std::vector<absl::string_view>{
      "malformed", "missing_site_id", "missing_visitor_id",
      "missing_event_time", "missing_type", "invalid_type", "missing_goal",
      "future_event_time", "not_pageview",
      // AdCostDecoder
      "missing_cost", "missing_currency",
      // the engine: a record of a topic that is not an input; a record of a
      // `key: visitor_id` input not keyed by its visitor_id
      "unknown_topic", "miskeyed",
      // a record of a `key: any` input too large to forward to the
      // repartition topic
      "too_large"};
  return *reasons;
}

struct EventDecoder::Impl {
  InputFormat format;
  absl::Duration max_future_skew;
  std::string default_site;
  std::string host;
  std::vector<std::string> skip_paths;
  std::string path;  // a page's path without parameters (skip_paths)
  v1::WebEvent message;
  google::protobuf::util::JsonParseOptions json_options;
  JsonEventReader json;
  WebEventHeader header;
  std::string detail;
  bool normalize = true;  // false within DecodeForRouting()
  // What the views of the last decoded event may view besides the input.
  Event line;                // an access-log line's event
  std::string country;       // normalized, when the input's was not
  std::string currency;      // likewise
  CampaignStorage campaign;  // campaign parameters from the page URL
  EventView view;            // the Event overloads' decode target

  // The checks every format shares, on what the wire carried.
  DecodeResult Validate(absl::Time now, EventView* event);
  // DecodeMessage() into views of *m.
  DecodeResult ValidateMessage(const v1::WebEvent& m, absl::Time now,
                               EventView* event);
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

void EventDecoder::SetSkipPaths(std::vector<std::string> globs) {
  impl_->skip_paths = std::move(globs);
}

DecodeResult EventDecoder::Decode(absl::string_view bytes, absl::Time now,
                                  EventView* event) {
  DecodeResult result = DecodeAsFormat(bytes, now, event);
  if (!result.ok && result.reason == "malformed") {
    absl::StrAppend(&result.detail, OtherFormatHint(bytes, impl_->format));
  }
  return result;
}

DecodeResult EventDecoder::DecodeAsFormat(absl::string_view bytes,
                                          absl::Time now, EventView* event) {
  v1::WebEvent& m = impl_->message;
  switch (impl_->format) {
    case InputFormat::kProtobuf:
      if (!ReadProtobufEvent(bytes, event, &impl_->header, &impl_->detail)) {
        *event = EventView();  // it may still view an earlier record
        return Invalid(
            "malformed",
            absl::StrCat("not a valid protobuf WebEvent: ", impl_->detail));
      }
      return impl_->Validate(now, event);
    case InputFormat::kJson:
      switch (impl_->json.Read(bytes, event, &impl_->header, &impl_->detail)) {
        case JsonEventReader::Status::kRead:
          return impl_->Validate(now, event);
        case JsonEventReader::Status::kMalformed:
          return Invalid(
              "malformed",
              absl::StrCat("not a valid JSON WebEvent: ", impl_->detail));
        case JsonEventReader::Status::kNotStrictJson:
          break;
      }
      {
        // Not strict JSON: only libprotobuf knows its own dialect.
        m.Clear();
        auto status = google::protobuf::util::JsonStringToMessage(
            google::protobuf::StringPiece(bytes.data(), bytes.size()), &m,
            impl_->json_options);
        if (!status.ok()) {
          const google::protobuf::StringPiece message = status.message();
          return Invalid("malformed",
                         absl::StrCat("not a valid JSON WebEvent: ",
                                      FirstLine(absl::string_view(
                                          message.data(), message.size()))));
        }
      }
      return impl_->ValidateMessage(m, now, event);
    case InputFormat::kCombinedLog: {
      DecodeResult result = ParseCombinedLogLine(bytes, impl_->default_site,
                                                 now, impl_->max_future_skew,
                                                 &impl_->line, impl_->host);
      *event = impl_->line.view();
      if (result.ok && !impl_->skip_paths.empty()) {
        const absl::string_view path =
            WithoutPathParameters(UrlPath(event->page_url), &impl_->path);
        for (const std::string& glob : impl_->skip_paths) {
          if (!GlobMatch(glob, path)) continue;
          result.ok = false;
          result.reason = "not_pageview";
          result.detail =
              absl::StrCat("not a page view: ",
                           absl::string_view(
                               path.data(), std::min<size_t>(path.size(), 200)),
                           " matches skip_paths \"", glob, "\"");
          break;
        }
      }
      return result;
    }
  }
  return Invalid("malformed", "unknown input format");
}

DecodeResult EventDecoder::Decode(absl::string_view bytes, absl::Time now,
                                  Event* event) {
  DecodeResult result = Decode(bytes, now, &impl_->view);
  CopyInto(impl_->view, event);
  return result;
}

DecodeResult EventDecoder::DecodeForRouting(absl::string_view bytes,
                                            absl::Time now, EventView* event) {
  impl_->normalize = false;
  DecodeResult result = Decode(bytes, now, event);
  impl_->normalize = true;
  return result;
}

DecodeResult EventDecoder::DecodeForRouting(absl::string_view bytes,
                                            absl::Time now, Event* event) {
  DecodeResult result = DecodeForRouting(bytes, now, &impl_->view);
  CopyInto(impl_->view, event);
  return result;
}

DecodeResult EventDecoder::DecodeMessage(const v1::WebEvent* m, absl::Time now,
                                         Event* event) {
  DecodeResult result = impl_->ValidateMessage(*m, now, &impl_->view);
  CopyInto(impl_->view, event);
  return result;
}

DecodeResult EventDecoder::Impl::ValidateMessage(const v1::WebEvent& m,
                                                 absl::Time now,
                                                 EventView* event) {
  WebEventHeader& h = header;
  h.has_event_time = m.has_event_time();
  h.event_time_seconds = m.event_time().seconds();
  h.event_time_nanos = m.event_time().nanos();
  h.type = m.type();
  h.unknown_type_name = false;
  event->session_number = m.session_number();
  event->event_id = View(m.event_id());
  event->site_id = View(m.site_id());
  event->visitor_id = View(m.visitor_id());
  event->user_id = View(m.user_id());
  event->session_id = View(m.session_id());
  event->page_url = View(m.page_url());
  event->referrer = View(m.referrer());
  event->utm_source = View(m.utm_source());
  event->utm_medium = View(m.utm_medium());
  event->utm_campaign = View(m.utm_campaign());
  event->click_id = View(m.click_id());
  event->user_agent = View(m.user_agent());
  event->device_category = View(m.device_category());
  event->country = View(m.country());
  // Without a conversion (or with an empty one) its fields are empty.
  const v1::Conversion& c = m.conversion();
  event->goal = View(c.goal());
  event->order_id = View(c.order_id());
  event->currency = View(c.currency());
  event->value_micros = c.value_micros();
  return Validate(now, event);
}

DecodeResult EventDecoder::Impl::Validate(absl::Time now, EventView* event) {
  const WebEventHeader& h = header;
  // The event time first: it moves the watermark even when the record is
  // rejected for another reason (SPEC §3). The reasons keep their order.
  absl::Time time = absl::InfinitePast();
  const bool has_time = h.has_event_time &&
                        (h.event_time_seconds != 0 || h.event_time_nanos != 0);
  const int64_t seconds = h.event_time_seconds;
  const int32_t nanos = h.event_time_nanos;
  const bool time_in_range = seconds >= kMinEventTimeSeconds &&
                             seconds <= kMaxEventTimeSeconds && nanos >= 0 &&
                             nanos < 1000000000;
  if (has_time && time_in_range) {
    time = absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
  }
  const bool future =
      time != absl::InfinitePast() && time > now + max_future_skew;
  DecodeResult result;
  if (!future) result.time = time;
  auto invalid = [&](absl::string_view reason, std::string detail) {
    result.reason = reason;
    result.detail = std::move(detail);
    return result;
  };

  if (event->site_id.empty()) {
    if (default_site.empty()) {
      // A JSON object of another schema decodes to an empty WebEvent
      // (unknown fields are ignored): say so (an audit read
      // {"hello":"world"} as only a missing site).
      const bool none = event->visitor_id.empty() && !has_time &&
                        h.type == v1::EVENT_TYPE_UNSPECIFIED &&
                        !h.unknown_type_name;
      return invalid("missing_site_id",
                     none ? "site_id is empty, and so are visitor_id, "
                            "event_time and type: is the record a WebEvent?"
                          : "site_id is empty");
    }
    event->site_id = default_site;
  }
  if (event->visitor_id.empty()) {
    return invalid("missing_visitor_id", "visitor_id is empty");
  }
  if (!has_time) {
    return invalid("missing_event_time",
                   "event_time is not set (or is the zero time, "
                   "1970-01-01T00:00:00Z)");
  }
  if (!time_in_range) {
    return invalid("malformed", "event_time is out of range");
  }
  EventType type;
  switch (h.type) {
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
      if (h.unknown_type_name) {
        return invalid("invalid_type",
                       absl::StrCat("type \"", absl::CHexEscape(h.type_name),
                                    "\" is not a known EventType (PAGE_VIEW, "
                                    "ENGAGEMENT, CONVERSION, CUSTOM)"));
      }
      return invalid("missing_type", "type is not set");
    default:
      return invalid("invalid_type", absl::StrCat("type ", h.type,
                                                  " is not a known EventType"));
  }
  if (type == EventType::kConversion && event->goal.empty()) {
    return invalid("missing_goal", "a CONVERSION event needs conversion.goal");
  }
  if (type == EventType::kConversion && !event->currency.empty() &&
      !IsCurrencyCode(event->currency)) {
    return invalid("malformed",
                   NotACurrencyCode("conversion.currency", event->currency));
  }
  if (type == EventType::kConversion &&
      (event->value_micros > kMaxAmountMicros ||
       event->value_micros < -kMaxAmountMicros)) {
    return invalid("malformed", TooLargeAmount("conversion.value_micros",
                                               event->value_micros));
  }
  for (const auto& [name, value] :
       {std::pair<const char*, absl::string_view>{"event_id", event->event_id},
        {"site_id", event->site_id},
        {"visitor_id", event->visitor_id},
        {"user_id", event->user_id},
        {"utm_source", event->utm_source},
        {"utm_medium", event->utm_medium},
        {"utm_campaign", event->utm_campaign},
        {"click_id", event->click_id},
        {"conversion.goal", event->goal},
        {"conversion.currency", event->currency},
        {"conversion.order_id", event->order_id}}) {
    if (value.size() > kMaxEventValueBytes) {
      return invalid("malformed", absl::StrCat(name, " is ", value.size(),
                                               " bytes long, more than ",
                                               kMaxEventValueBytes));
    }
  }
  if (future) {
    return invalid("future_event_time",
                   absl::StrCat("event_time ", TimeText(time),
                                " is ahead of when its record was written "
                                "(or of the clock) by more than ",
                                absl::FormatDuration(max_future_skew)));
  }

  event->time = time;
  event->type = type;
  result.ok = true;
  if (!normalize) return result;
  // Campaign parameters from the whole page URL, before it is cut (a tag
  // past kMaxUrlBytes is still the visit's; cut there, a percent-escape
  // split in two kept the value undecoded): the values view the record's
  // bytes or `campaign`, not the cut view.
  FillCampaignFromPageUrl(event, &campaign);
  event->page_url = CutUtf8(event->page_url, kMaxUrlBytes);
  event->referrer = CutUtf8(event->referrer, kMaxUrlBytes);
  // Kept by open sessions and session records with
  // sessions.session_source: client: cut, not refused (it was read and
  // dropped before 2026-12-04, whatever its length).
  event->session_id = CutUtf8(event->session_id, kMaxEventValueBytes);
  event->device_category = NormalizedDevice(event->device_category);
  event->country = NormalizedCountry(event->country, &country);
  if (type == EventType::kConversion) {
    event->currency = AsciiUpper(event->currency, &currency);
  } else {
    event->goal = event->order_id = event->currency = absl::string_view();
    event->value_micros = 0;
  }
  return result;
}

}  // namespace kpistream
