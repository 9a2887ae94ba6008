#include "ingest/ad_cost_decoder.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "aggregate/event.h"
#include "google/protobuf/util/json_util.h"
#include "ingest/protobuf_log.h"

namespace kpistream {
namespace {

// `json` with each plain date given for dateStart or dateEnd (either
// spelling), "2026-10-01", made the timestamp of its midnight UTC,
// "2026-10-01T00:00:00Z"; "" when there is none. Ad platforms' daily
// exports date spend so, which the proto3 JSON mapping of a Timestamp
// refuses (review: every such record was dead-lettered, its spend missing
// from ROAS). Only the keys of the top-level object, the AdCost's own
// fields: a key's name inside a string is text, and one inside a nested
// object (an unknown field the parser ignores) is not the record's (an
// audit: an ignored "export":{"dateEnd":"2025-12-31"} moved the record's
// own end by a day, or without one had it refused). `*end_is_day`: whether
// the record's dateEnd (its last, as the parser takes it) was such a date
// (an inclusive end: 2026-10-01..2026-10-01 is that whole day).
std::string WithDatesAsTimestamps(absl::string_view json, bool* end_is_day) {
  *end_is_day = false;
  std::vector<size_t> at;  // where "T00:00:00Z" goes
  int depth = 0;           // of objects and arrays
  size_t i = 0;
  auto skip_space = [&] {
    while (i < json.size() && absl::ascii_isspace(json[i])) ++i;
  };
  // The string that starts at json[i] ('"'): i moves past it.
  auto skip_string = [&] {
    for (++i; i < json.size(); ++i) {
      if (json[i] == '\\') {
        ++i;
      } else if (json[i] == '"') {
        ++i;
        return;
      }
    }
  };
  while (i < json.size()) {
    const char c = json[i];
    if (c == '{' || c == '[') {
      ++depth;
      ++i;
    } else if (c == '}' || c == ']') {
      --depth;
      ++i;
    } else if (c != '"') {
      ++i;
    } else {
      const size_t key_begin = i;
      skip_string();
      if (depth != 1) continue;
      const absl::string_view key =
          json.substr(key_begin, i - key_begin);  // with its quotes
      const bool start = key == "\"dateStart\"" || key == "\"date_start\"";
      const bool end = key == "\"dateEnd\"" || key == "\"date_end\"";
      if (!start && !end) continue;
      skip_space();
      if (i >= json.size() || json[i] != ':') continue;  // a value, not a key
      ++i;
      skip_space();
      // "DDDD-DD-DD"
      bool date =
          i + 12 <= json.size() && json[i] == '"' && json[i + 11] == '"';
      for (size_t d = 0; date && d < 10; ++d) {
        const char digit = json[i + 1 + d];
        date = (d == 4 || d == 7) ? digit == '-' : absl::ascii_isdigit(digit);
      }
      if (date) at.push_back(i + 11);
      if (end) *end_is_day = date;
    }
  }
  if (at.empty()) return "";
  std::string out;
  out.reserve(json.size() + at.size() * 10);
  size_t from = 0;
  for (size_t pos : at) {
    absl::StrAppend(&out, json.substr(from, pos - from), "T00:00:00Z");
    from = pos;
  }
  absl::StrAppend(&out, json.substr(from));
  return out;
}

}  // namespace

DecodeResult AdCostDecoder::Decode(absl::string_view bytes,
                                   v1::AdCost* cost) const {
  cost->Clear();
  if (format_ == InputFormat::kJson) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    bool end_is_day = false;
    const std::string dated = WithDatesAsTimestamps(bytes, &end_is_day);
    if (!dated.empty()) bytes = dated;
    auto status = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(bytes.data(), bytes.size()), cost,
        options);
    if (!status.ok()) {
      return {false, "malformed",
              absl::StrCat(
                  "not a valid JSON AdCost: ", status.message().as_string(),
                  OtherFormatHint(bytes, format_))};
    }
    // A plain end date is inclusive, as ad platforms' daily rows say it
    // (dateStart and dateEnd both the day: review, it was an empty interval
    // dated at the day's start, out of a 1 d window the next morning): the
    // interval ends at the next midnight. Not the last day the Timestamp
    // can hold, nor an end given without a start (then the spend's date).
    if (end_is_day && cost->has_date_start() && cost->has_date_end() &&
        cost->date_end().seconds() <= kMaxEventTimeSeconds - 86400) {
      // A day before the start's is before it still (an audit: the day
      // added made "2026-12-04" after a start of "2026-12-05" an empty
      // interval, accepted): the interval must not end at its start.
      if (cost->date_end().seconds() + 86400 <= cost->date_start().seconds()) {
        return {false, "malformed", "date_end is before date_start"};
      }
      cost->mutable_date_end()->set_seconds(cost->date_end().seconds() + 86400);
    }
  } else {
    // libprotobuf names some causes only in its log (invalid UTF-8 in a
    // string field): the detail says it, and stderr gets no line of
    // libprotobuf's own for each bad record (an audit).
    ProtobufLogCapture capture;
    if (!cost->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return {false, "malformed",
              absl::StrCat("not a valid protobuf AdCost",
                           capture.text().empty() ? "" : ": ", capture.text(),
                           OtherFormatHint(bytes, format_))};
    }
  }
  // Timestamps as google.protobuf.Timestamp allows them (JSON parsing
  // checks this already; binary input may carry anything).
  for (const auto& [name, ts] :
       {std::pair<const char*, const google::protobuf::Timestamp*>{
            "date_start", &cost->date_start()},
        {"date_end", &cost->date_end()},
        {"time", &cost->time()}}) {
    if (ts->seconds() < kMinEventTimeSeconds ||
        ts->seconds() > kMaxEventTimeSeconds || ts->nanos() < 0 ||
        ts->nanos() > 999999999) {
      return {false, "malformed",
              std::string(name) + " is not a valid timestamp"};
    }
  }
  if (cost->site_id().empty())
    return {false, "missing_site_id", "site_id is empty"};
  // Zero is spend too: a paused campaign's day in a daily export (and
  // proto3 JSON leaves a 0 out, so that it reads as unset) is no bad
  // record (review: dead-lettered, it raised the dead-letter rate).
  if (cost->cost_micros() < 0) {
    return {false, "missing_cost", "cost_micros must not be negative"};
  }
  if (cost->cost_micros() > kMaxAmountMicros) {
    return {false, "malformed",
            TooLargeAmount("cost_micros", cost->cost_micros())};
  }
  if (cost->has_date_start() && cost->has_date_end() &&
      (cost->date_end().seconds() < cost->date_start().seconds() ||
       (cost->date_end().seconds() == cost->date_start().seconds() &&
        cost->date_end().nanos() < cost->date_start().nanos()))) {
    return {false, "malformed", "date_end is before date_start"};
  }
  if (cost->currency().empty())
    return {false, "missing_currency", "currency is empty"};
  if (!IsCurrencyCode(cost->currency())) {
    return {false, "malformed", NotACurrencyCode("currency", cost->currency())};
  }
  if (!cost->has_date_start() && !cost->has_time() && !cost->has_date_end()) {
    // Counted in web_ad_cost_total, it would have been dated 1970 for the
    // targets, which drop a bucket that old: spend lost without a word.
    return {false, "missing_event_time",
            "neither date_start, time nor date_end is set: the spend has no "
            "date"};
  }
  // Bounded as an event's are (aggregate/event.h): these become label
  // values and KPI-window keys.
  for (const auto& [name, value] :
       {std::pair<const char*, const std::string*>{"site_id", &cost->site_id()},
        {"utm_source", &cost->utm_source()},
        {"utm_medium", &cost->utm_medium()},
        {"utm_campaign", &cost->utm_campaign()}}) {
    if (value->size() > kMaxEventValueBytes) {
      return {false, "malformed",
              absl::StrCat(name, " is ", value->size(),
                           " bytes long, more than ", kMaxEventValueBytes)};
    }
  }
  // Upper case, as conversions' currencies are (EventDecoder): ROAS divides
  // revenue by cost of the same currency label.
  absl::AsciiStrToUpper(cost->mutable_currency());
  return {true, {}, {}};
}

namespace {

absl::Time TimeOf(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace

absl::Time AdCostDecoder::SpendTime(const v1::AdCost& cost) {
  return TimeOf(cost.has_date_start() ? cost.date_start()
                : cost.has_time()     ? cost.time()
                                      : cost.date_end());
}

absl::Time AdCostDecoder::SpendEnd(const v1::AdCost& cost) {
  return TimeOf(cost.date_end());
}

}  // namespace kpistream
