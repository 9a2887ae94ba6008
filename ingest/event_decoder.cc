#include "ingest/event_decoder.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "aggregate/label_values.h"
#include "aggregate/time_text.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "ingest/combined_log.h"
#include "ingest/json_event_reader.h"
#include "ingest/protobuf_event_reader.h"
#include "ingest/page_url.h"
#include "kpistream/v1/web_event.pb.h"

namespace kpistream {
namespace {

DecodeResult Invalid(absl::string_view reason, std::string detail) {
  return DecodeResult{false, reason, std::move(detail)};
}

// Moves a string out of a message field: no copy.
void Take(std::string* field, std::string* out) { out->swap(*field); }

// SPEC §2 and §4: a known device category, "(not set)" when missing,
// "(other)" for anything else. In place: no allocation.
void NormalizeDevice(std::string* device) {
  if (device->empty()) {
    device->assign(kNotSet.data(), kNotSet.size());
    return;
  }
  absl::AsciiStrToLower(device);
  if (*device != "desktop" && *device != "mobile" && *device != "tablet") {
    device->assign(kOther.data(), kOther.size());
  }
}

// An ISO 3166-1 alpha-2 code in upper case; "(not set)" when missing or not
// of that shape (GA4's wording for an unknown dimension value).
void NormalizeCountry(std::string* country) {
  if (country->size() == 2 && absl::ascii_isalpha((*country)[0]) &&
      absl::ascii_isalpha((*country)[1])) {
    absl::AsciiStrToUpper(country);
    return;
  }
  country->assign(kNotSet.data(), kNotSet.size());
}

// The first line of a libprotobuf message (its parse errors add the input
// around the error on further lines).
absl::string_view FirstLine(absl::string_view message) {
  return message.substr(0, message.find('\n'));
}

}  // namespace

const std::vector<absl::string_view>& InvalidReasons() {
  static const auto* reasons = new std::vector<absl::string_view>{
      "malformed", "missing_site_id", "missing_visitor_id",
      "missing_event_time", "missing_type", "invalid_type", "missing_goal",
      "future_event_time", "not_pageview",
      // AdCostDecoder
      "missing_cost", "missing_currency",
      // the engine: a record of a topic that is not an input; a record of a
      // `key: visitor_id` input not keyed by its visitor_id
      "unknown_topic", "miskeyed"};
  return *reasons;
}

struct EventDecoder::Impl {
  InputFormat format;
  absl::Duration max_future_skew;
  std::string default_site;
  std::string host;
  v1::WebEvent message;
  google::protobuf::util::JsonParseOptions json_options;
  JsonEventReader json;
  WebEventHeader header;
  std::string detail;
  bool normalize = true;  // false within DecodeForRouting()

  // The checks every format shares, on what the wire carried.
  DecodeResult Validate(absl::Time now, Event* event);
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
  v1::WebEvent& m = impl_->message;
  switch (impl_->format) {
    case InputFormat::kProtobuf:
      if (!ReadProtobufEvent(bytes, event, &impl_->header, &impl_->detail,
                             /*routing_only=*/!impl_->normalize)) {
        return Invalid("malformed",
                       absl::StrCat("not a valid protobuf WebEvent: ",
                                    impl_->detail));
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
      return DecodeMessage(&m, now, event);
    case InputFormat::kCombinedLog:
      return ParseCombinedLogLine(bytes, impl_->default_site, now,
                                  impl_->max_future_skew, event, impl_->host);
  }
  return Invalid("malformed", "unknown input format");
}

DecodeResult EventDecoder::DecodeForRouting(absl::string_view bytes,
                                           absl::Time now, Event* event) {
  impl_->normalize = false;
  DecodeResult result = Decode(bytes, now, event);
  impl_->normalize = true;
  return result;
}

DecodeResult EventDecoder::DecodeMessage(v1::WebEvent* m, absl::Time now,
                                         Event* event) {
  WebEventHeader& h = impl_->header;
  h.has_event_time = m->has_event_time();
  h.event_time_seconds = m->event_time().seconds();
  h.event_time_nanos = m->event_time().nanos();
  h.type = m->type();
  h.unknown_type_name = false;
  event->session_number = m->session_number();
  Take(m->mutable_event_id(), &event->event_id);
  Take(m->mutable_site_id(), &event->site_id);
  Take(m->mutable_visitor_id(), &event->visitor_id);
  Take(m->mutable_user_id(), &event->user_id);
  Take(m->mutable_page_url(), &event->page_url);
  Take(m->mutable_referrer(), &event->referrer);
  Take(m->mutable_utm_source(), &event->utm_source);
  Take(m->mutable_utm_medium(), &event->utm_medium);
  Take(m->mutable_utm_campaign(), &event->utm_campaign);
  Take(m->mutable_click_id(), &event->click_id);
  Take(m->mutable_user_agent(), &event->user_agent);
  Take(m->mutable_device_category(), &event->device_category);
  Take(m->mutable_country(), &event->country);
  if (m->has_conversion()) {  // mutable_conversion() would allocate one
    v1::Conversion* c = m->mutable_conversion();
    Take(c->mutable_goal(), &event->goal);
    Take(c->mutable_order_id(), &event->order_id);
    Take(c->mutable_currency(), &event->currency);
    event->value_micros = c->value_micros();
  } else {
    event->goal.clear();
    event->order_id.clear();
    event->currency.clear();
    event->value_micros = 0;
  }
  return impl_->Validate(now, event);
}

DecodeResult EventDecoder::Impl::Validate(absl::Time now, Event* event) {
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
      return invalid("missing_site_id", "site_id is empty");
    }
    event->site_id = default_site;
  }
  if (event->visitor_id.empty()) {
    return invalid("missing_visitor_id", "visitor_id is empty");
  }
  if (!has_time) {
    return invalid("missing_event_time", "event_time is not set");
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
  if (future) {
    return invalid("future_event_time",
                   absl::StrCat("event_time ", TimeText(time),
                                " is ahead of now by more than ",
                                absl::FormatDuration(max_future_skew)));
  }

  event->time = time;
  event->type = type;
  result.ok = true;
  if (!normalize) return result;
  NormalizeDevice(&event->device_category);
  NormalizeCountry(&event->country);
  if (type == EventType::kConversion) {
    absl::AsciiStrToUpper(&event->currency);
  } else {
    event->goal.clear();
    event->order_id.clear();
    event->currency.clear();
    event->value_micros = 0;
  }
  FillCampaignFromPageUrl(event);
  return result;
}

}  // namespace kpistream
