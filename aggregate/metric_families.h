// Every metric family kpistream exports (SPEC §4), described once as data:
// name, type, label names, help and, for histograms, bucket bounds.
//
// The code that counts builds its FamilySnapshots from these (KpiCounters,
// the stream threads' and the engine's own gauges, the process metrics of
// /metrics), and what reads the metrics names them from here (the KPI
// catalog's numerators and denominators, the generated rules' series). A
// family's labels are in the order its samples carry them.
//
// Plain data, safe to read from any thread.
#ifndef KPISTREAM_AGGREGATE_METRIC_FAMILIES_H_
#define KPISTREAM_AGGREGATE_METRIC_FAMILIES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "aggregate/metrics_snapshot.h"

namespace kpistream {

struct MetricFamilyDef {
  absl::string_view name;
  MetricType type = MetricType::kCounter;
  absl::Span<const absl::string_view> labels;
  absl::string_view help;
  absl::Span<const double> bucket_bounds;  // histograms only, ascending
  // How the stream threads' samples of one series add up (MergeSnapshot):
  // summed, or the largest (a duration of what the threads did at once).
  MergeRule merge = MergeRule::kSum;
};

// Upper bounds of web_session_duration_seconds's buckets (SPEC §4: 10, 30,
// 60, 180, 600, 1800 s among them) and of web_session_pageviews's.
inline constexpr double kSessionDurationBounds[] = {
    1, 5, 10, 30, 60, 180, 600, 1800, 3600, 7200, 86400};
inline constexpr double kSessionPageviewBounds[] = {1, 2, 3, 5, 10, 20, 50};

namespace families {

// Domain metrics (web_*), counted by KpiCounters.
extern const MetricFamilyDef kEvents;              // web_events_total
extern const MetricFamilyDef kPageviews;           // web_pageviews_total
extern const MetricFamilyDef kSessionsStarted;     // web_sessions_started_total
extern const MetricFamilyDef kSessionsClosed;      // web_sessions_closed_total
extern const MetricFamilyDef kSessionsEngaged;     // web_sessions_engaged_total
extern const MetricFamilyDef kSessionsBounced;     // web_sessions_bounced_total
extern const MetricFamilyDef kSessionsSinglePage;  // ..._single_page_total
extern const MetricFamilyDef kSessionsLong;        // web_sessions_long_total
extern const MetricFamilyDef kSessionsNewVisitor;  // ..._new_visitor_total
extern const MetricFamilyDef kSessionDuration;   // web_session_duration_seconds
extern const MetricFamilyDef kSessionPageviews;  // web_session_pageviews
extern const MetricFamilyDef kConversions;       // web_conversions_total
extern const MetricFamilyDef kSessionsConverted;  // ..._converted_total
extern const MetricFamilyDef kOrders;             // web_orders_total
extern const MetricFamilyDef kRevenue;            // web_revenue_total
extern const MetricFamilyDef kOpenSessions;       // web_open_sessions
extern const MetricFamilyDef kActiveVisitors;     // web_active_visitors
extern const MetricFamilyDef kCampaignSessions;   // web_campaign_sessions_total
extern const MetricFamilyDef
    kCampaignConverted;                         // ..._sessions_converted_total
extern const MetricFamilyDef kCampaignRevenue;  // web_campaign_revenue_total
extern const MetricFamilyDef kLandingSessions;  // ..._page_sessions_total
extern const MetricFamilyDef kLandingBounces;   // ..._page_bounces_total
extern const MetricFamilyDef kFunnelStepSessions;  // ..._step_sessions_total
extern const MetricFamilyDef kAdCost;              // web_ad_cost_total

// Input accounting (kpistream_*), counted by KpiCounters.
extern const MetricFamilyDef kEventsConsumed;
extern const MetricFamilyDef kEventsRepartitioned;
extern const MetricFamilyDef kInputRecordsDeleted;
extern const MetricFamilyDef kEventsInvalid;
extern const MetricFamilyDef kEventsLate;
extern const MetricFamilyDef kEventsDuplicate;
extern const MetricFamilyDef kBotEvents;
extern const MetricFamilyDef kAdCostRecords;
extern const MetricFamilyDef kLabelOverflow;

// The stream threads' health.
extern const MetricFamilyDef kWatermarkLag;  // kpistream_watermark_lag_seconds
extern const MetricFamilyDef kStateSessions;
extern const MetricFamilyDef kStateBytes;
extern const MetricFamilyDef kAssignedPartitions;
extern const MetricFamilyDef kReorderBufferEvents;
extern const MetricFamilyDef kConsumerLag;  // kpistream_consumer_lag_messages
extern const MetricFamilyDef kCommits;
extern const MetricFamilyDef kCommitAborts;
extern const MetricFamilyDef kRestoreFailures;
extern const MetricFamilyDef kRestoreSeconds;
extern const MetricFamilyDef kRestoreRecords;
extern const MetricFamilyDef kRestoreBytes;

// The engine's: readiness and the KPI targets' gauges (SPEC §6).
extern const MetricFamilyDef kReady;
extern const MetricFamilyDef kTargetValue;
extern const MetricFamilyDef kActualValue;
extern const MetricFamilyDef kAttainmentRatio;
extern const MetricFamilyDef kPaceRatio;
extern const MetricFamilyDef kProjectedValue;
extern const MetricFamilyDef kOnTrack;
extern const MetricFamilyDef kTargetNoData;

// The /metrics endpoint's: the build, and the process as client_golang's
// process collector names it.
extern const MetricFamilyDef kBuildInfo;
extern const MetricFamilyDef kProcessCpuSeconds;
extern const MetricFamilyDef kProcessOpenFds;
extern const MetricFamilyDef kProcessMaxFds;
extern const MetricFamilyDef kProcessVirtualMemory;
extern const MetricFamilyDef kProcessResidentMemory;
extern const MetricFamilyDef kProcessStartTime;

}  // namespace families

// The families KpiCounters counts (web_* and the input accounting), in the
// order of its Snapshot().
absl::Span<const MetricFamilyDef* const> CountedFamilies();

// Every family above.
const std::vector<const MetricFamilyDef*>& AllMetricFamilies();

// The family a series of the exposition belongs to: its own name, or a
// histogram's name + "_bucket", "_sum" or "_count"; nullptr when none.
const MetricFamilyDef* FamilyOfSeries(absl::string_view series);

// An empty FamilySnapshot of `family`.
FamilySnapshot NewFamily(const MetricFamilyDef& family);

// A FamilySnapshot of an unlabelled `family` holding one sample.
FamilySnapshot SingleSample(const MetricFamilyDef& family, double value);

// Builds a snapshot of a fixed list of families, in that order, families
// without samples included (so that their names are always listed).
class SnapshotBuilder {
 public:
  explicit SnapshotBuilder(absl::Span<const MetricFamilyDef* const> families);

  // A sample of `family`, which must be one of the list; `labels` parallel
  // to its label names.
  void Add(const MetricFamilyDef& family, std::vector<std::string> labels,
           double value);
  // A histogram's sample: `buckets` not cumulative, the last one +Inf.
  void AddHistogram(const MetricFamilyDef& family,
                    std::vector<std::string> labels,
                    absl::Span<const uint64_t> buckets, uint64_t count,
                    double sum);

  // The families, each one's samples sorted by their label values.
  MetricsSnapshot Finish() &&;

 private:
  FamilySnapshot& Of(const MetricFamilyDef& family);

  std::vector<const MetricFamilyDef*> defs_;
  MetricsSnapshot snapshot_;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_METRIC_FAMILIES_H_
