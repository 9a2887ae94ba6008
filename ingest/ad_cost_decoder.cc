#include "ingest/ad_cost_decoder.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "aggregate/event.h"
#include "google/protobuf/util/json_util.h"

namespace kpistream {

DecodeResult AdCostDecoder::Decode(absl::string_view bytes,
                                   v1::AdCost* cost) const {
  cost->Clear();
  if (format_ == InputFormat::kJson) {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    auto status = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(bytes.data(), bytes.size()), cost,
        options);
    if (!status.ok()) {
      return {false, "malformed",
              absl::StrCat("not a valid JSON AdCost: ",
                           status.message().as_string())};
    }
  } else if (!cost->ParseFromArray(bytes.data(),
                                   static_cast<int>(bytes.size()))) {
    return {false, "malformed", "not a valid protobuf AdCost"};
  }
  // Timestamps as google.protobuf.Timestamp allows them (JSON parsing
  // checks this already; binary input may carry anything).
  for (const auto& [name, ts] :
       {std::pair<const char*, const google::protobuf::Timestamp*>{
            "date_start", &cost->date_start()},
        {"date_end", &cost->date_end()},
        {"time", &cost->time()}}) {
    if (ts->seconds() < -62135596800 || ts->seconds() > 253402300799 ||
        ts->nanos() < 0 || ts->nanos() > 999999999) {
      return {false, "malformed",
              std::string(name) + " is not a valid timestamp"};
    }
  }
  if (cost->site_id().empty())
    return {false, "missing_site_id", "site_id is empty"};
  if (cost->cost_micros() <= 0) {
    return {false, "missing_cost", "cost_micros must be a positive amount"};
  }
  if (cost->has_date_start() && cost->has_date_end() &&
      (cost->date_end().seconds() < cost->date_start().seconds() ||
       (cost->date_end().seconds() == cost->date_start().seconds() &&
        cost->date_end().nanos() < cost->date_start().nanos()))) {
    return {false, "malformed", "date_end is before date_start"};
  }
  if (cost->currency().empty())
    return {false, "missing_currency", "currency is empty"};
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
        {"utm_campaign", &cost->utm_campaign()},
        {"currency", &cost->currency()}}) {
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

absl::Time AdCostDecoder::SpendTime(const v1::AdCost& cost) {
  const google::protobuf::Timestamp& ts = cost.has_date_start()
                                              ? cost.date_start()
                                          : cost.has_time() ? cost.time()
                                                            : cost.date_end();
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace kpistream
