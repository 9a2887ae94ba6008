// The comparison behind the JSON differential tests, shared by
// tests/ingest/json_differential_test.cc and the JSON fuzz target
// (tests/fuzz/json_event_fuzzer.cc): the JSON WebEvent decoder
// (EventDecoder with format json: JsonEventReader, simdjson) against the
// reference it replaces, libprotobuf 3.21's
// JsonStringToMessage(ignore_unknown_fields = true) followed by the same
// validation (EventDecoder::DecodeMessage). For every input both must accept
// with equal Events (every field) and equal DecodeResult.time, or reject
// with the same reason. The one intended difference (issue 10, item 14): a
// `type` string that names no EventType is invalid_type, where libprotobuf
// drops it and the reference says missing_type.
#ifndef KPISTREAM_TESTS_INGEST_JSON_DIFFERENTIAL_H_
#define KPISTREAM_TESTS_INGEST_JSON_DIFFERENTIAL_H_

#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "ingest/event_decoder.h"
#include "ingest/json_event_reader.h"
#include "kpistream/v1/web_event.pb.h"
#include "nlohmann/json.hpp"

namespace kpistream {
namespace json_differential {

inline const absl::Time kNow =
    absl::FromUnixSeconds(1767261600);  // 2026-01-01T10:00Z
inline const absl::Duration kSkew = absl::Minutes(10);

// ---------------------------------------------------------------------------
// The comparison.

struct Decoded {
  DecodeResult result;
  Event event;
};

inline bool SameEvent(const Event& a, const Event& b) {
  return a.time == b.time && a.type == b.type &&
         a.session_number == b.session_number &&
         a.value_micros == b.value_micros && a.event_id == b.event_id &&
         a.site_id == b.site_id && a.visitor_id == b.visitor_id &&
         a.user_id == b.user_id && a.page_url == b.page_url &&
         a.referrer == b.referrer && a.utm_source == b.utm_source &&
         a.utm_medium == b.utm_medium && a.utm_campaign == b.utm_campaign &&
         a.click_id == b.click_id && a.device_category == b.device_category &&
         a.country == b.country && a.user_agent == b.user_agent &&
         a.goal == b.goal && a.currency == b.currency &&
         a.order_id == b.order_id;
}

inline std::string Describe(const Decoded& d) {
  if (!d.result.ok) {
    return absl::StrCat("reject ", d.result.reason, " (", d.result.detail,
                        ") time=", absl::FormatTime(d.result.time));
  }
  const Event& e = d.event;
  return absl::StrCat(
      "accept time=", absl::FormatTime(e.time), " type=", e.type,
      " session_number=", e.session_number, " value_micros=", e.value_micros,
      " event_id=\"", absl::CHexEscape(e.event_id), "\" site_id=\"",
      absl::CHexEscape(e.site_id), "\" visitor_id=\"",
      absl::CHexEscape(e.visitor_id), "\" user_id=\"",
      absl::CHexEscape(e.user_id), "\" page_url=\"",
      absl::CHexEscape(e.page_url), "\" referrer=\"",
      absl::CHexEscape(e.referrer), "\" utm=\"", absl::CHexEscape(e.utm_source),
      "/", absl::CHexEscape(e.utm_medium), "/",
      absl::CHexEscape(e.utm_campaign), "\" click_id=\"",
      absl::CHexEscape(e.click_id), "\" device=\"", e.device_category,
      "\" country=\"", e.country, "\" user_agent=\"",
      absl::CHexEscape(e.user_agent), "\" goal=\"", absl::CHexEscape(e.goal),
      "\" currency=\"", absl::CHexEscape(e.currency), "\" order_id=\"",
      absl::CHexEscape(e.order_id), "\"");
}

inline bool IsKnownTypeString(const std::string& s) {
  if (v1::EventType_descriptor()->FindValueByName(s) != nullptr) return true;
  // libprotobuf also takes a known number in a string (safe_strto32):
  // [+-]digits, no spaces, any number of leading zeros.
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (i == s.size()) return false;
  int64_t value = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    value = value * 10 + (s[i] - '0');
    if (value > (int64_t{1} << 32)) return false;  // past int32 either way
  }
  if (s[0] == '-') value = -value;
  if (value < INT32_MIN || value > INT32_MAX) return false;  // not an int32
  return v1::EventType_IsValid(static_cast<int>(value));
}

// Independently of both decoders (nlohmann's strict SAX parser): is the
// input strict JSON, nested at most 128 deep (objects and arrays, the top
// level's object one), whose last non-null top-level "type" is a string that
// names no EventType? Then the intended difference applies (deeper input
// is judged by libprotobuf, which drops the name: missing_type).
inline bool LastTypeIsAnUnknownName(const std::string& json) {
  struct Sax : nlohmann::json_sax<nlohmann::json> {
    int depth = 0;
    int deepest = 0;
    bool pending = false;  // the next value is the top-level "type"
    int kind = 0;          // 0 none/null, 1 unknown name, 2 anything else
    void Value(int k) {
      if (pending && depth == 1) kind = k;
      pending = false;
    }
    bool null() override {
      pending = false;
      return true;
    }
    bool boolean(bool) override { return Value(2), true; }
    bool number_integer(number_integer_t) override { return Value(2), true; }
    bool number_unsigned(number_unsigned_t) override { return Value(2), true; }
    bool number_float(number_float_t, const string_t&) override {
      return Value(2), true;
    }
    bool string(string_t& s) override {
      return Value(IsKnownTypeString(s) ? 2 : 1), true;
    }
    bool binary(binary_t&) override { return Value(2), true; }
    bool start_object(std::size_t) override {
      Value(2);
      deepest = std::max(deepest, ++depth);
      return true;
    }
    bool key(string_t& k) override {
      pending = depth == 1 && k == "type";
      return true;
    }
    bool end_object() override { return --depth, true; }
    bool start_array(std::size_t) override {
      Value(2);
      deepest = std::max(deepest, ++depth);
      return true;
    }
    bool end_array() override { return --depth, true; }
    bool parse_error(std::size_t, const std::string&,
                     const nlohmann::detail::exception&) override {
      return false;
    }
  } sax;
  if (!nlohmann::json::sax_parse(json, &sax)) return false;
  return sax.kind == 1 && sax.deepest <= 128;
}

class Differential {
 public:
  enum Route { kRead, kMalformed, kNotStrict };

  Differential()
      : decoder_(InputFormat::kJson, kSkew),
        reference_(InputFormat::kProtobuf, kSkew) {
    options_.ignore_unknown_fields = true;
  }

  // "" when both decoders agree on `json`, else what differs.
  std::string Check(const std::string& json) {
    Decoded ref = Reference(json);
    Decoded got;
    got.result = decoder_.Decode(json, kNow, &got.event);
    EventView scratch;
    WebEventHeader header;
    std::string detail;
    Route route = kNotStrict;
    switch (reader_.Read(json, &scratch, &header, &detail)) {
      case JsonEventReader::Status::kRead:
        route = kRead;
        break;
      case JsonEventReader::Status::kMalformed:
        route = kMalformed;
        break;
      case JsonEventReader::Status::kNotStrictJson:
        break;
    }
    ++routes_[route];
    ++outcomes_[ref.result.ok ? "accepted" : std::string(ref.result.reason)];

    std::string why;
    const bool divergence = ref.result.reason == "missing_type" &&
                            got.result.reason == "invalid_type";
    if (divergence) {
      ++divergences_;
      if (!LastTypeIsAnUnknownName(json)) why = "invalid_type unexpectedly";
    } else if (ref.result.ok != got.result.ok ||
               ref.result.reason != got.result.reason) {
      why = "outcome";
    } else if (ref.result.time != got.result.time) {
      why = "DecodeResult.time";
    } else if (ref.result.ok && !SameEvent(ref.event, got.event)) {
      why = "Event";
    } else if (!ref.result.ok && got.result.detail.empty()) {
      why = "no detail";
    } else if (ref.result.reason == "missing_type" &&
               LastTypeIsAnUnknownName(json)) {
      why = "missing_type where invalid_type was intended";
    }
    if (why.empty()) return "";
    return absl::StrCat(why, " differs on \"", absl::CHexEscape(json),
                        "\" (reader route ", route,
                        ")\n  protobuf: ", Describe(ref),
                        "\n  simdjson: ", Describe(got));
  }

  std::string Counts() const {
    std::string out = absl::StrFormat(
        "reader: %d read, %d malformed, %d not strict JSON (libprotobuf); "
        "%d invalid_type divergences; reference outcomes:",
        Count(routes_, kRead), Count(routes_, kMalformed),
        Count(routes_, kNotStrict), divergences_);
    for (const auto& [outcome, n] : outcomes_) {
      absl::StrAppend(&out, " ", outcome, "=", n);
    }
    return out;
  }
  int routes(Route r) const { return Count(routes_, r); }

 private:
  template <typename K>
  static int Count(const std::map<K, int>& m, const K& k) {
    auto it = m.find(k);
    return it == m.end() ? 0 : it->second;
  }

  Decoded Reference(const std::string& json) {
    Decoded d;
    message_.Clear();
    auto status =
        google::protobuf::util::JsonStringToMessage(json, &message_, options_);
    if (!status.ok()) {
      d.result.reason = "malformed";
      d.result.detail = status.message().as_string();
      return d;
    }
    d.result = reference_.DecodeMessage(&message_, kNow, &d.event);
    return d;
  }

  EventDecoder decoder_;
  EventDecoder reference_;  // only its DecodeMessage()
  JsonEventReader reader_;
  google::protobuf::util::JsonParseOptions options_;
  v1::WebEvent message_;
  std::map<Route, int> routes_;
  std::map<std::string, int> outcomes_;
  int divergences_ = 0;
};

}  // namespace json_differential
}  // namespace kpistream

#endif  // KPISTREAM_TESTS_INGEST_JSON_DIFFERENTIAL_H_
