// AdCostDecoder: decodes and validates an AdCost record (protobuf or the
// canonical proto3 JSON mapping) from an input of `kind: ad_cost`, for ROAS
// (revenue / ad cost). Reasons: "malformed" (also: date_end before
// date_start; a site_id or utm field longer than kMaxEventValueBytes; a
// currency that is not three letters, IsCurrencyCode), "missing_site_id",
// "missing_cost" (a negative cost_micros; 0 or unset is no spend, accepted),
// "missing_currency", "missing_event_time" (no date_start, time or date_end:
// the spend has no date for the KPI targets). The currency comes out in upper
// case, as conversions' do. JSON takes dateStart and dateEnd as plain dates too
// ("2026-10-01": its midnight UTC), as ad platforms' daily exports give them.
#ifndef KPISTREAM_INGEST_AD_COST_DECODER_H_
#define KPISTREAM_INGEST_AD_COST_DECODER_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "ingest/event_decoder.h"
#include "kpistream/v1/web_event.pb.h"

namespace kpistream {

class AdCostDecoder {
 public:
  explicit AdCostDecoder(InputFormat format) : format_(format) {}

  // Decodes `bytes` into `*cost` (overwritten).
  DecodeResult Decode(absl::string_view bytes, v1::AdCost* cost) const;

  // The date a decoded record's spend counts at in the KPI targets: its
  // date_start, else its time, else its date_end (Decode() refuses a record
  // with none).
  static absl::Time SpendTime(const v1::AdCost& cost);
  // The end of its interval (date_end; check has_date_end()).
  static absl::Time SpendEnd(const v1::AdCost& cost);

 private:
  InputFormat format_;
};

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_AD_COST_DECODER_H_
