// Fuzz target: the ad-cost decoder (ingest/ad_cost_decoder.h), built twice:
// KPISTREAM_FUZZ_AD_COST_JSON=1 for proto3 JSON input, 0 for binary
// protobuf. The input is one record. Asserts, for any bytes:
//  - an accepted record has a site, a cost of at least 0 (0: no spend), a
//    currency and timestamps in google.protobuf.Timestamp's range; a
//    rejected one has a known reason (InvalidReasons()) and a detail;
//  - and then goes where the engine sends it (PartitionPipeline::
//    ProcessAdCost): the channel its utm parameters imply, the counters, and
//    a ROAS target's rolling buckets, evaluated at the record's time.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/target_tracker.h"
#include "google/protobuf/stubs/logging.h"
#include "ingest/ad_cost_decoder.h"
#include "tests/fuzz/fuzz_check.h"

#ifndef KPISTREAM_FUZZ_AD_COST_JSON
#error "build with -DKPISTREAM_FUZZ_AD_COST_JSON=0 or 1"
#endif

namespace kpistream {
namespace {

bool InRange(const google::protobuf::Timestamp& ts) {
  return ts.seconds() >= -62135596800 && ts.seconds() <= 253402300799 &&
         ts.nanos() >= 0 && ts.nanos() <= 999999999;
}

const std::vector<TargetSpec>& Targets() {
  static const auto* specs = [] {
    auto* v = new std::vector<TargetSpec>();
    TargetSpec roas;
    roas.name = "roas";
    roas.kpi = "roas";
    roas.value = 4;
    roas.window = absl::Hours(24);
    v->push_back(roas);
    roas.name = "roas_eur_shop";
    roas.filter = {{"site", "shop"}, {"currency", "EUR"}};
    roas.window = absl::Seconds(90);
    v->push_back(roas);
    return v;
  }();
  return *specs;
}

void Run(const std::string& input) {
  static const auto* decoder =
      new AdCostDecoder(KPISTREAM_FUZZ_AD_COST_JSON ? InputFormat::kJson
                                                    : InputFormat::kProtobuf);
  static const auto* channels = new ChannelClassifier();
  v1::AdCost cost;
  const DecodeResult r = decoder->Decode(input, &cost);
  const std::string where = absl::StrCat(
      "input \"", absl::CHexEscape(input.substr(0, 300)), "\", result ",
      r.ok ? "ok" : std::string(r.reason), " (", r.detail, ")");
  if (!r.ok) {
    KPISTREAM_FUZZ_CHECK(fuzz::IsKnownReason(r.reason), where);
    KPISTREAM_FUZZ_CHECK(!r.detail.empty(), where);
    return;
  }
  KPISTREAM_FUZZ_CHECK(r.reason.empty() && r.detail.empty(), where);
  KPISTREAM_FUZZ_CHECK(!cost.site_id().empty(), where);
  KPISTREAM_FUZZ_CHECK(cost.cost_micros() >= 0, where);
  KPISTREAM_FUZZ_CHECK(!cost.currency().empty(), where);
  KPISTREAM_FUZZ_CHECK(InRange(cost.date_start()) && InRange(cost.date_end()) &&
                           InRange(cost.time()),
                       where);

  // As PartitionPipeline::ProcessAdCost uses it.
  const absl::string_view channel = channels->Classify(
      {cost.utm_source(), cost.utm_medium(), cost.utm_campaign(), "", "", ""});
  KpiCounters counters{KpiCounters::Options{}};
  counters.CountAdCost(cost.site_id(), channel, cost.utm_campaign(),
                       cost.currency(), cost.cost_micros());
  counters.Commit();
  counters.Snapshot();
  const google::protobuf::Timestamp& ts =
      cost.has_date_start() ? cost.date_start() : cost.time();
  const absl::Time at =
      absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  if (at > fuzz::kNow + fuzz::kSkew) return;
  TargetTracker targets(&Targets(), absl::Minutes(30));
  targets.OnAdCost(cost.site_id(), channel, cost.currency(), cost.cost_micros(),
                   at);
  // A minute later: the record's bucket is in every window.
  const absl::Time later = at + absl::Seconds(61);
  std::vector<TargetSums> sums;
  targets.AddTo(later, &sums);
  KPISTREAM_FUZZ_CHECK(sums.size() == Targets().size(), where);
  KPISTREAM_FUZZ_CHECK(
      sums[0].denominator == static_cast<double>(cost.cost_micros()) / 1e6 &&
          sums[0].matched == 1,
      where);
  for (size_t i = 0; i < sums.size(); ++i) {
    EvaluateTarget(Targets()[i], sums[i], later);
  }
}

}  // namespace
}  // namespace kpistream

KPISTREAM_FUZZ_QUIET_PROTOBUF()
KPISTREAM_FUZZ_TARGET(kpistream::Run)
