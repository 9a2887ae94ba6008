// KpiCounters: the domain and input-accounting counters of one stream
// thread's partitions (processing.threads: one KpiCounters each), kept in
// plain C++ (no Prometheus types) and handed to exporters as a
// MetricsSnapshot. Metric names and labels are those of SPEC §4.
//
// Every label value that comes from outside (site, goal, currency, country,
// topic ...) passes through a LabelLimiter: at most `label_values_max`
// distinct values per label (goal: the configured goals), everything else is
// "(other)" and counted in kpistream_label_overflow_total{label}; empty
// values are "(not set)"; and the distinct combinations of a family's labels
// are bounded too (Options::label_combinations_max). The overflow counter
// counts lookups, not values: a session of an overflowing site adds one at its
// start, one per event and one at its close. The series count is bounded
// whatever the input.
//
// When counts appear. Event counters (web_events_total, web_pageviews_total)
// move with every event, session starts and web_sessions_new_visitor_total
// with every start. Everything derived from a whole session moves when the
// session closes: closed/engaged/bounced/single-page/long, the duration and
// page-view histograms, and also conversions, converted sessions, orders and
// revenue — counting conversions from the closed session is what makes an
// order_id count once per session. Once a label combination has been seen,
// every family sharing its labels exports it (at 0 if nothing happened), so
// PromQL ratios of those counters never miss a series.
//
// Committed work only (SPEC §10): everything is counted into a pending set;
// Commit() adds it to what Snapshot() shows, when the Kafka transaction that
// holds the same work has committed; Rollback() forgets it when that
// transaction was aborted (the work will be redone from the last commit), so
// that nothing is ever counted twice. The gauges (web_open_sessions,
// web_active_visitors) are set whole from live state.
//
// Not thread-safe: owned by one stream thread, which calls Snapshot() to
// publish a copy.
#ifndef KPISTREAM_AGGREGATE_KPI_COUNTERS_H_
#define KPISTREAM_AGGREGATE_KPI_COUNTERS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "aggregate/active_visitors.h"
#include "aggregate/label_limiter.h"
#include "aggregate/metrics_snapshot.h"
#include "aggregate/sessionizer.h"

namespace kpistream {

class KpiCounters : public SessionObserver {
 public:
  struct Options {
    int label_values_max = 50;
    std::vector<std::string> goals = {"signup", "lead", "purchase"};
    SessionRules rules;  // funnels: names of web_funnel_step_sessions_total
    // Label name -> the only values admitted (others are "(other)").
    std::map<std::string, std::vector<std::string>> allowlists;
    // Label name -> values admitted beyond label_values_max, whatever came
    // first: the targets' filter values, so that the series their alerts
    // select are never "(other)" (the engine's own gauges count them
    // exactly). An allowlist still decides alone.
    std::map<std::string, std::vector<std::string>> reserved;
    // Label values known in advance, exported at 0 from the start so that
    // rate() and alerts see them before the first occurrence (SPEC §7):
    // kpistream_events_consumed_total{topic},
    // kpistream_events_repartitioned_total{topic} (the re-keyed inputs) and
    // kpistream_events_invalid_total{reason}.
    // kpistream_input_records_deleted_total{topic} too.
    std::vector<std::string> input_topics;
    std::vector<std::string> repartitioned_topics;
    // The topic `key: any` inputs are re-keyed through ("": none), read as
    // an input: kpistream_input_records_deleted_total names it.
    std::string repartition_topic;
    std::vector<std::string> invalid_reasons;
    // Shared by the KpiCounters of one process (the engine's stream
    // threads), so that label_values_max bounds the values of each label
    // on /metrics, not per thread; nullptr: this instance's own. Outlives
    // the KpiCounters.
    LabelAdmissions* admissions = nullptr;
    // Distinct label combinations per set of labels whose values visitors
    // choose (the families of {site,channel,device,country}, of
    // {site,source,medium,campaign}, and its revenue's with currency), per
    // process: beyond, a new combination is counted with every label but
    // site, channel and currency under "(other)", except values the
    // configuration names (allowlisted, or a target's filter) and campaigns
    // an ad cost record named; each such label's overflow counted once.
    // The bound per label leaves a family its labels' product (an audit's
    // flood of 50 values per label, mixed: 1.74 million series); totals per
    // site, channel and currency stay exact.
    int label_combinations_max = 10000;
  };

  explicit KpiCounters(Options options);
  ~KpiCounters() override;

  // SessionObserver: web_* counters.
  void OnSessionStarted(const SessionAttributes& session,
                        const EventView& first) override;
  void OnEvent(const SessionAttributes& session,
               const EventView& event) override;
  void OnSessionClosed(const ClosedSession& session) override;

  // Input accounting (kpistream_*):
  //   consumed = accepted + invalid + late + duplicate + bot (+ accepted
  //   ad cost records, CountAdCost)
  void CountConsumed(absl::string_view topic, uint64_t n = 1);
  // kpistream_events_repartitioned_total{topic}: a record of a `key: any`
  // input forwarded to the repartition topic (consumed is counted where it
  // is processed, so that every consumed record has its outcome).
  void CountRepartitioned(absl::string_view topic);
  // kpistream_input_records_deleted_total{topic}: `n` offsets of a
  // partition of `topic` deleted (retention) before they were read.
  void CountDeletedUnread(absl::string_view topic, uint64_t n);
  // web_events_total{site,type}: an event was admitted (it may still wait in
  // the ReorderBuffer; session-level counters follow when it is applied).
  // Returns the site's label value (the site, "(other)" or "(not set)"),
  // valid for the counters' lifetime: what the realtime visitors are
  // counted under (ActiveVisitors keeps one table per label value, not per
  // site: an audit's 500,000 sites took the engine to 1,200 events/s).
  absl::string_view CountAccepted(absl::string_view site, EventType type);

  // web_active_visitors{site,window}: replaces the realtime visitor counts
  // (sites beyond the label limit add up in "(other)").
  // web_ad_cost_total{site,channel,campaign,currency}: one accepted AdCost
  // record (its input accounting: kpistream_ad_cost_records_total).
  void CountAdCost(absl::string_view site, absl::string_view channel,
                   absl::string_view campaign, absl::string_view currency,
                   int64_t micros);

  void SetActiveVisitors(
      const std::map<std::string, ActiveVisitors::Counts>& counts);
  // web_open_sessions{site}: replaces the open sessions per site.
  void SetOpenSessions(const std::map<std::string, int64_t>& open);
  // The same in parts, without a map of every site (a flood of sites):
  // ClearOpenSessions(), then AddOpenSessions() per site and partition.
  // `cache`, when given, is the caller's for this site (0 at first): the
  // site's label as found last, so that a publish adds integers instead of
  // looking every open site up again (an audit: 285k open sessions of
  // distinct sites, past the site label's bound, took 58 % of a core at
  // five publishes a second, idle).
  void ClearOpenSessions();
  void AddOpenSessions(absl::string_view site, int64_t n,
                       uint64_t* cache = nullptr);
  // The site label value of `site` ("(other)" past the label's bound), as
  // the metrics name it; a lookup that counts no overflow.
  absl::string_view SiteLabel(absl::string_view site);
  void CountInvalid(absl::string_view reason);
  void CountLate();
  void CountDuplicate();
  void CountBot();

  // The pending counts become visible / are forgotten (see above).
  void Commit();
  void Rollback();

  // Copy of every committed family (families with no samples included, so
  // that the metric names are always listed).
  MetricsSnapshot Snapshot() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_KPI_COUNTERS_H_
