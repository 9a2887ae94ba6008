#include "aggregate/metric_families.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"

namespace kpistream {
namespace {

constexpr MetricType kCounter = MetricType::kCounter;
constexpr MetricType kGauge = MetricType::kGauge;
constexpr MetricType kHistogram = MetricType::kHistogram;

// Label sets shared by several families.
constexpr absl::string_view kSite[] = {"site"};
constexpr absl::string_view kSiteChannel[] = {"site", "channel"};
// A session's attribution (SPEC §3: its first event's).
constexpr absl::string_view kSession[] = {"site", "channel", "device",
                                          "country"};
constexpr absl::string_view kSiteGoalChannel[] = {"site", "goal", "channel"};
constexpr absl::string_view kMoney[] = {"site", "channel", "currency"};
constexpr absl::string_view kCampaign[] = {"site", "source", "medium",
                                           "campaign"};
constexpr absl::string_view kCampaignMoney[] = {"site", "source", "medium",
                                                "campaign", "currency"};
constexpr absl::string_view kLandingPage[] = {"site", "landing_page"};
constexpr absl::string_view kTarget[] = {"target"};

constexpr absl::string_view kEventLabels[] = {"site", "type"};
constexpr absl::string_view kPageviewLabels[] = {"site", "channel", "device"};
constexpr absl::string_view kActiveLabels[] = {"site", "window"};
constexpr absl::string_view kFunnelLabels[] = {"site", "funnel", "step"};
constexpr absl::string_view kAdCostLabels[] = {"site", "channel", "campaign",
                                               "currency"};
constexpr absl::string_view kTopic[] = {"topic"};
constexpr absl::string_view kReason[] = {"reason"};
constexpr absl::string_view kLabel[] = {"label"};
constexpr absl::string_view kTopicPartition[] = {"topic", "partition"};
constexpr absl::string_view kVersion[] = {"version"};

}  // namespace

namespace families {

const MetricFamilyDef kEvents = {"web_events_total", kCounter, kEventLabels,
                                 "Events accepted into sessions, by event "
                                 "type."};
const MetricFamilyDef kPageviews = {
    "web_pageviews_total", kCounter, kPageviewLabels,
    "Page views, by the channel and device of their session."};
const MetricFamilyDef kSessionsStarted = {
    "web_sessions_started_total", kCounter, kSession,
    "Sessions opened, by the attribution of their first event."};
const MetricFamilyDef kSessionsClosed = {"web_sessions_closed_total", kCounter,
                                         kSession, "Sessions closed."};
const MetricFamilyDef kSessionsEngaged = {
    "web_sessions_engaged_total", kCounter, kSession,
    "Closed sessions that were engaged (long enough, two or more page views, "
    "or a conversion)."};
const MetricFamilyDef kSessionsBounced = {
    "web_sessions_bounced_total", kCounter, kSession,
    "Closed sessions that bounced (GA4: not engaged)."};
const MetricFamilyDef kSessionsSinglePage = {
    "web_sessions_single_page_total", kCounter, kSession,
    "Closed sessions with exactly one page view and no other event."};
const MetricFamilyDef kSessionsLong = {
    "web_sessions_long_total", kCounter, kSession,
    "Closed sessions lasting at least sessions.long_min_duration (3 min by "
    "default)."};
const MetricFamilyDef kSessionsNewVisitor = {
    "web_sessions_new_visitor_total", kCounter, kSiteChannel,
    "Sessions opened by new visitors."};
const MetricFamilyDef kSessionDuration = {
    "web_session_duration_seconds", kHistogram, kSiteChannel,
    "Duration of closed sessions (last event minus first), seconds.",
    kSessionDurationBounds};
const MetricFamilyDef kSessionPageviews = {
    "web_session_pageviews", kHistogram, kSite,
    "Page views per closed session.", kSessionPageviewBounds};
const MetricFamilyDef kConversions = {
    "web_conversions_total", kCounter, kSiteGoalChannel,
    "Conversions (an order_id once per goal in its session, and not again in "
    "the visitor's later sessions within 30 days), counted when their session "
    "closes."};
const MetricFamilyDef kSessionsConverted = {
    "web_sessions_converted_total", kCounter, kSiteGoalChannel,
    "Closed sessions with at least one conversion of the goal (goal=\"(any)\": "
    "of any goal)."};
const MetricFamilyDef kOrders = {
    "web_orders_total", kCounter, kMoney,
    "Distinct orders by the currency of their conversion, counted when their "
    "session closes (AOV per currency = web_revenue_total / "
    "web_orders_total)."};
const MetricFamilyDef kRevenue = {
    "web_revenue_total", kCounter, kMoney,
    "Conversion value in currency units, counted when its session closes."};
const MetricFamilyDef kOpenSessions = {"web_open_sessions", kGauge, kSite,
                                       "Sessions open now."};
const MetricFamilyDef kActiveVisitors = {
    "web_active_visitors", kGauge, kActiveLabels,
    "Distinct visitors with an event in the last 5 or 30 minutes of "
    "processing time."};
const MetricFamilyDef kCampaignSessions = {
    "web_campaign_sessions_total", kCounter, kCampaign,
    "Closed sessions by the source, medium and campaign of their first "
    "event."};
const MetricFamilyDef kCampaignConverted = {
    "web_campaign_sessions_converted_total", kCounter, kCampaign,
    "Closed sessions with at least one conversion, by source, medium and "
    "campaign."};
const MetricFamilyDef kCampaignRevenue = {
    "web_campaign_revenue_total", kCounter, kCampaignMoney,
    "Conversion value in currency units by source, medium and campaign, "
    "counted when the session closes."};
const MetricFamilyDef kLandingSessions = {
    "web_landing_page_sessions_total", kCounter, kLandingPage,
    "Closed sessions by landing page path."};
const MetricFamilyDef kLandingBounces = {
    "web_landing_page_bounces_total", kCounter, kLandingPage,
    "Closed sessions that bounced, by landing page path."};
const MetricFamilyDef kFunnelStepSessions = {
    "web_funnel_step_sessions_total", kCounter, kFunnelLabels,
    "Closed sessions that reached the funnel step, having reached every "
    "earlier step in order."};
const MetricFamilyDef kAdCost = {
    "web_ad_cost_total", kCounter, kAdCostLabels,
    "Ad spend in currency units, from the ad cost input; ROAS = "
    "web_revenue_total / web_ad_cost_total by channel."};

const MetricFamilyDef kEventsConsumed = {
    "kpistream_events_consumed_total", kCounter, kTopic,
    "Input messages consumed; equals accepted + invalid + late + duplicate + "
    "bot (+ kpistream_ad_cost_records_total for ad cost inputs)."};
const MetricFamilyDef kEventsRepartitioned = {
    "kpistream_events_repartitioned_total", kCounter, kTopic,
    "Input messages of key: any inputs forwarded to the repartition topic, "
    "re-keyed by visitor_id (counted as consumed where they are processed)."};
const MetricFamilyDef kInputRecordsDeleted = {
    "kpistream_input_records_deleted_total", kCounter, kTopic,
    "Input records deleted from their topic (retention) before the engine "
    "read them: lost, never consumed. Found when a partition resumes from "
    "its checkpoint, or when the consumer moved past them while the engine "
    "ran behind: the offsets between its position and the first retained "
    "record (transaction markers among them count too)."};
const MetricFamilyDef kEventsInvalid = {
    "kpistream_events_invalid_total", kCounter, kReason,
    "Input messages rejected as invalid, by reason."};
const MetricFamilyDef kEventsLate = {
    "kpistream_events_late_total",
    kCounter,
    {},
    "Events too late to change their session, sent to the dead-letter topic."};
const MetricFamilyDef kEventsDuplicate = {
    "kpistream_events_duplicate_total",
    kCounter,
    {},
    "Events dropped as duplicates of an event_id already seen."};
const MetricFamilyDef kBotEvents = {
    "kpistream_bot_events_total",
    kCounter,
    {},
    "Events from bots, excluded from the KPIs."};
const MetricFamilyDef kAdCostRecords = {
    "kpistream_ad_cost_records_total",
    kCounter,
    {},
    "Ad cost records accepted (counted in kpistream_events_consumed_total "
    "too)."};
const MetricFamilyDef kLabelOverflow = {
    "kpistream_label_overflow_total", kCounter, kLabel,
    "Label values replaced by \"(other)\" because the label's cardinality "
    "limit or allowlist did not admit them, or they held a control "
    "character."};

const MetricFamilyDef kWatermarkLag = {
    "kpistream_watermark_lag_seconds",
    kGauge,
    {},
    "Processing time minus the event-time watermark, seconds."};
const MetricFamilyDef kStateSessions = {
    "kpistream_state_sessions", kGauge, {}, "Open sessions held in state."};
const MetricFamilyDef kStateBytes = {
    "kpistream_state_bytes",
    kGauge,
    {},
    "Approximate bytes of aggregation state held in memory: open sessions, "
    "buffered events, duplicate fingerprints, KPI windows and targets, "
    "realtime visitors."};
const MetricFamilyDef kAssignedPartitions = {
    "kpistream_assigned_partitions",
    kGauge,
    {},
    "Partitions this instance owns now: of its input topics, and of the "
    "repartition topic for key: any inputs."};
const MetricFamilyDef kReorderBufferEvents = {
    "kpistream_reorder_buffer_events",
    kGauge,
    {},
    "Events waiting for the watermark to pass them."};
const MetricFamilyDef kConsumerLag = {
    "kpistream_consumer_lag_messages", kGauge, kTopicPartition,
    "Messages between the consumer position and the end of the partition."};
const MetricFamilyDef kCommits = {
    "kpistream_commits_total",
    kCounter,
    {},
    "Commits of outputs, state and input positions."};
const MetricFamilyDef kCommitAborts = {
    "kpistream_commit_aborts_total",
    kCounter,
    {},
    "Commits that did not go through (a rebalance raced them, or an output "
    "record was not delivered, also at-least-once): their work was redone "
    "from the last commit, not counted twice."};
const MetricFamilyDef kRestoreFailures = {
    "kpistream_restore_failures_total",
    kCounter,
    {},
    "State restores from the changelog that failed (retried every 5 s)."};
const MetricFamilyDef kRestoreSeconds = {
    "kpistream_restore_seconds",
    kGauge,
    {},
    "Duration of the last state restore, seconds (the longest of the stream "
    "threads' last ones: they restore at once).",
    {},
    MergeRule::kMax};
const MetricFamilyDef kRestoreRecords = {
    "kpistream_restore_records",
    kGauge,
    {},
    "Changelog records read by the last restore (of every stream thread)."};
const MetricFamilyDef kRestoreBytes = {
    "kpistream_restore_bytes",
    kGauge,
    {},
    "Changelog bytes read by the last restore (of every stream thread)."};

const MetricFamilyDef kReady = {
    "kpistream_ready",
    kGauge,
    {},
    "1 while the instance has joined its group, is connected, has its "
    "partitions restored and makes progress (as /readyz), else 0."};
const MetricFamilyDef kTargetValue = {"kpi_target_value", kGauge, kTarget,
                                      "The target's value (config)."};
const MetricFamilyDef kActualValue = {
    "kpi_actual_value", kGauge, kTarget,
    "The KPI's current value over the target's window or period, from this "
    "instance's exact event-time state (NaN: no data)."};
const MetricFamilyDef kAttainmentRatio = {
    "kpi_attainment_ratio", kGauge, kTarget,
    "actual / target (target / actual for at-most KPIs); >= 1 is met."};
const MetricFamilyDef kPaceRatio = {
    "kpi_pace_ratio", kGauge, kTarget,
    "Cumulative targets: actual to date / the linearly expected value to date "
    "(NaN before the period starts; no sample for rolling targets)."};
const MetricFamilyDef kProjectedValue = {
    "kpi_projected_value", kGauge, kTarget,
    "Cumulative targets: the actual projected linearly to the deadline."};
const MetricFamilyDef kOnTrack = {
    "kpi_on_track", kGauge, kTarget,
    "1 when the KPI (a period's projection) is within tolerance of the "
    "target, or the window has fewer than min_sessions sessions; else 0."};
const MetricFamilyDef kTargetNoData = {
    "kpi_target_no_data", kGauge, kTarget,
    "1 when nothing matched the target's filter over its whole window (a "
    "period: since its start) on this instance; kpi_on_track is then 1 for "
    "want of data, not because the target is met."};

const MetricFamilyDef kBuildInfo = {
    "kpistream_build_info", kGauge, kVersion,
    "Build of the running kpistream; always 1."};
const MetricFamilyDef kProcessCpuSeconds = {
    "process_cpu_seconds_total",
    kCounter,
    {},
    "Total user and system CPU time spent in seconds."};
const MetricFamilyDef kProcessOpenFds = {
    "process_open_fds", kGauge, {}, "Number of open file descriptors."};
const MetricFamilyDef kProcessMaxFds = {
    "process_max_fds", kGauge, {}, "Maximum number of open file descriptors."};
const MetricFamilyDef kProcessVirtualMemory = {"process_virtual_memory_bytes",
                                               kGauge,
                                               {},
                                               "Virtual memory size in bytes."};
const MetricFamilyDef kProcessResidentMemory = {
    "process_resident_memory_bytes",
    kGauge,
    {},
    "Resident memory size in bytes."};
const MetricFamilyDef kProcessStartTime = {
    "process_start_time_seconds",
    kGauge,
    {},
    "Start time of the process since unix epoch in seconds."};

}  // namespace families

namespace {

using namespace families;  // NOLINT: the lists of the families above

// In the order their source exports them.
const MetricFamilyDef* const kCounted[] = {&kEvents,
                                           &kPageviews,
                                           &kSessionsStarted,
                                           &kSessionsClosed,
                                           &kSessionsEngaged,
                                           &kSessionsBounced,
                                           &kSessionsSinglePage,
                                           &kSessionsLong,
                                           &kSessionsNewVisitor,
                                           &kSessionDuration,
                                           &kSessionPageviews,
                                           &kConversions,
                                           &kSessionsConverted,
                                           &kOrders,
                                           &kRevenue,
                                           &kOpenSessions,
                                           &kActiveVisitors,
                                           &kCampaignSessions,
                                           &kCampaignConverted,
                                           &kCampaignRevenue,
                                           &kLandingSessions,
                                           &kLandingBounces,
                                           &kFunnelStepSessions,
                                           &kAdCost,
                                           &kEventsConsumed,
                                           &kEventsRepartitioned,
                                           &kInputRecordsDeleted,
                                           &kEventsInvalid,
                                           &kEventsLate,
                                           &kEventsDuplicate,
                                           &kBotEvents,
                                           &kAdCostRecords,
                                           &kLabelOverflow};
const MetricFamilyDef* const kOthers[] = {&kWatermarkLag,
                                          &kStateSessions,
                                          &kStateBytes,
                                          &kAssignedPartitions,
                                          &kReorderBufferEvents,
                                          &kConsumerLag,
                                          &kCommits,
                                          &kCommitAborts,
                                          &kRestoreFailures,
                                          &kRestoreSeconds,
                                          &kRestoreRecords,
                                          &kRestoreBytes,
                                          &kReady,
                                          &kTargetValue,
                                          &kActualValue,
                                          &kAttainmentRatio,
                                          &kPaceRatio,
                                          &kProjectedValue,
                                          &kOnTrack,
                                          &kTargetNoData,
                                          &kBuildInfo,
                                          &kProcessCpuSeconds,
                                          &kProcessOpenFds,
                                          &kProcessMaxFds,
                                          &kProcessVirtualMemory,
                                          &kProcessResidentMemory,
                                          &kProcessStartTime};

}  // namespace

absl::Span<const MetricFamilyDef* const> CountedFamilies() { return kCounted; }

const std::vector<const MetricFamilyDef*>& AllMetricFamilies() {
  static const auto* all = [] {
    auto* families = new std::vector<const MetricFamilyDef*>(
        std::begin(kCounted), std::end(kCounted));
    families->insert(families->end(), std::begin(kOthers), std::end(kOthers));
    return families;
  }();
  return *all;
}

const MetricFamilyDef* FamilyOfSeries(absl::string_view series) {
  for (const MetricFamilyDef* family : AllMetricFamilies()) {
    if (family->name == series) return family;
    if (family->type != MetricType::kHistogram ||
        !absl::StartsWith(series, family->name)) {
      continue;
    }
    const absl::string_view suffix = series.substr(family->name.size());
    if (suffix == "_bucket" || suffix == "_sum" || suffix == "_count") {
      return family;
    }
  }
  return nullptr;
}

FamilySnapshot NewFamily(const MetricFamilyDef& def) {
  FamilySnapshot family;
  family.name = std::string(def.name);
  family.help = std::string(def.help);
  family.type = def.type;
  for (const absl::string_view label : def.labels) {
    family.label_names.emplace_back(label);
  }
  family.bucket_bounds.assign(def.bucket_bounds.begin(),
                              def.bucket_bounds.end());
  family.merge = def.merge;
  return family;
}

FamilySnapshot SingleSample(const MetricFamilyDef& def, double value) {
  FamilySnapshot family = NewFamily(def);
  family.samples.push_back({{}, value});
  return family;
}

SnapshotBuilder::SnapshotBuilder(
    absl::Span<const MetricFamilyDef* const> families)
    : defs_(families.begin(), families.end()) {
  snapshot_.reserve(defs_.size());
  for (const MetricFamilyDef* def : defs_) snapshot_.push_back(NewFamily(*def));
}

FamilySnapshot& SnapshotBuilder::Of(const MetricFamilyDef& family) {
  const size_t i =
      std::find(defs_.begin(), defs_.end(), &family) - defs_.begin();
  return snapshot_.at(i);  // a family outside the list is a bug: throws
}

void SnapshotBuilder::Add(const MetricFamilyDef& family,
                          std::vector<std::string> labels, double value) {
  MetricSample sample;
  sample.label_values = std::move(labels);
  sample.value = value;
  Of(family).samples.push_back(std::move(sample));
}

void SnapshotBuilder::AddHistogram(const MetricFamilyDef& family,
                                   std::vector<std::string> labels,
                                   absl::Span<const uint64_t> buckets,
                                   uint64_t count, double sum) {
  MetricSample sample;
  sample.label_values = std::move(labels);
  sample.value = sum;
  sample.count = count;
  sample.bucket_counts.assign(buckets.begin(), buckets.end());
  Of(family).samples.push_back(std::move(sample));
}

MetricsSnapshot SnapshotBuilder::Finish() && {
  for (FamilySnapshot& family : snapshot_) {
    std::sort(family.samples.begin(), family.samples.end(),
              [](const MetricSample& a, const MetricSample& b) {
                return a.label_values < b.label_values;
              });
  }
  return std::move(snapshot_);
}

}  // namespace kpistream
