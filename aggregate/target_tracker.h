// TargetTracker: one input partition's share of every KPI target's actual
// value (SPEC §6), from its exact event-time state. The engine adds the
// shares of its partitions (TargetSums are additive) and evaluates them with
// EvaluateTarget.
//
// What counts where (deterministic from the input alone):
//   rolling window W: a closed session counts at its close time, i.e. its
//     last event + the inactivity timeout (the moment the watermark closes
//     it, in event time); the actual at time `now` covers close times in
//     [B - W, B), B = `now` rounded down to the bucket width (1 min when W
//     is whole minutes, else 1 s): the same sessions the counters' increase
//     over W shows, in event time instead of scrape time, when `now` is
//     where sessions are closed (PartitionState passes the watermark minus
//     the allowed lateness). Ad cost (ROAS) counts at its date_start (or
//     time).
//   period [start, end): a session counts when it started in the period
//     (SPEC §3: a session's KPIs belong to its first event); "to date" means
//     closed so far. `now` is the watermark.
//
// Filters are exact on the session's attributes: site, channel, device,
// country, goal (conversions), currency (revenue, orders, ad cost). A
// session matches a currency filter when it has revenue or orders in that
// currency (an ad cost record: its currency).
//
// Time is passed in. Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_TARGET_TRACKER_H_
#define KPISTREAM_AGGREGATE_TARGET_TRACKER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "aggregate/kpi_catalog.h"
#include "aggregate/kpi_target.h"
#include "aggregate/label_values.h"
#include "aggregate/saturating.h"
#include "aggregate/session.h"
#include "kpistream/v1/state.pb.h"

namespace kpistream {

struct TargetSpec {
  std::string name;
  std::string kpi;  // a name of the KPI catalog (aggregate/kpi_catalog.h)
  std::map<std::string, std::string> filter;
  Direction direction = Direction::kAtLeast;
  double value = 0;
  double tolerance = 0;
  absl::Duration window = absl::ZeroDuration();  // > 0: rolling
  // A period: [start, end), the midnights of its first day and of the day
  // after its last in `period_zone` (sessions.timezone).
  absl::Time period_start = absl::InfinitePast();
  absl::Time period_end = absl::InfinitePast();
  absl::TimeZone period_zone = absl::UTCTimeZone();
  int64_t min_sample = 0;  // sessions, for KPIs measured per session
  bool rolling() const { return window > absl::ZeroDuration(); }
};

// Numerator, denominator and the session sample of one target. Additive
// across partitions.
struct TargetSums {
  double numerator = 0;
  double denominator = 0;
  int64_t sample = 0;  // sessions behind the value (min_sample)
  // Sessions and ad cost records (each piece of a spread one) the filter
  // matched: only whether it is 0 is read (no_data).
  int64_t matched = 0;
  // A period's sessions by their close lag (last event - first event: a
  // session starting at t is counted once the close frontier passes t +
  // its duration): the sum of contribution x duration in seconds. Over the
  // numerator (contributions are never negative), the mean lag weighted as
  // the numerator is: how far behind the close frontier the period's count
  // is complete on average (PeriodCloseLag). 0 in rolling buckets and in
  // totals written before 2026-12-06, whose sessions then count as of no
  // duration.
  double lag_weighted_seconds = 0;
  // Money targets without filter.currency: the one currency the money
  // summed is in ("" while none), or `mixed_currencies` once there were
  // two, whose sum is no amount of anything (10 EUR and 10 USD are not
  // 20). Money without a currency ("(not set)") joins any.
  std::string currency;
  bool mixed_currencies = false;
  // ROAS without filter.channel (SPEC §3: "revenue / ad cost, per
  // campaign/channel where both are known"): revenue and ad cost by site
  // and channel, so that the revenue of channels with no cost in the window
  // (Direct, Organic Search), or of a site whose channel had none, is not
  // returned on the cost of others (as the rules judge it: `and on (site,
  // channel, currency)`). numerator and denominator above stay the totals.
  struct ChannelSums {
    double revenue = 0;
    double cost = 0;
  };
  using SiteChannel = std::pair<std::string, std::string>;
  std::map<SiteChannel, ChannelSums> channels;
  // The keys' bytes (with a map node's), in a bucket or period total the
  // tracker keeps at most kMaxChannelKeyBytes: a key beyond it is summed
  // under the site "(other)" (an audit: a new site id per revenue session
  // grew a bucket without bound, and one written whole past
  // message.max.bytes stopped the engine at every start). Sums of a window
  // (AddTo) and of the threads (operator+=) are not capped: a day's window
  // of 50 sites in 11 channels has more keys than a bucket, and put the
  // revenue of sites without cost beside other sites' cost (an audit: ROAS
  // 17.7 where the rules read 1).
  static constexpr size_t kMaxChannelKeyBytes = 64 << 10;
  static constexpr size_t kChannelEntryBytes = 96;  // node, pair, sums
  size_t channel_key_bytes = 0;
  ChannelSums& Channel(const SiteChannel& key, bool capped = true) {
    if (auto it = channels.find(key); it != channels.end()) return it->second;
    const size_t bytes =
        key.first.size() + key.second.size() + kChannelEntryBytes;
    if (capped && channel_key_bytes + bytes > kMaxChannelKeyBytes &&
        key.first != kOther) {
      return Channel({std::string(kOther), key.second});
    }
    channel_key_bytes += bytes;
    return channels[key];
  }
  // The revenue of the channels with ad cost.
  double RevenueOfPaidChannels() const {
    double revenue = 0;
    for (const auto& [channel, c] : channels) {
      if (c.cost > 0) revenue += c.revenue;
    }
    return revenue;
  }
  void AddCurrency(absl::string_view c) {
    if (c.empty() || mixed_currencies || c == currency) return;
    if (currency.empty()) {
      currency = std::string(c);
    } else {
      mixed_currencies = true;
    }
  }
  // `o` added, its channels whatever their number (a window's, the
  // threads' sums, held for a moment).
  TargetSums& operator+=(const TargetSums& o) {
    Add(o, /*capped=*/false);
    return *this;
  }
  // `o` added to sums the tracker keeps (a bucket, a period's total).
  void AddKept(const TargetSums& o) { Add(o, /*capped=*/true); }

 private:
  void Add(const TargetSums& o, bool capped) {
    numerator += o.numerator;
    denominator += o.denominator;
    // Restored from a checkpoint: saturate.
    sample = SaturatingAdd(sample, o.sample);
    matched = SaturatingAdd(matched, o.matched);
    lag_weighted_seconds += o.lag_weighted_seconds;
    if (o.mixed_currencies) mixed_currencies = true;
    AddCurrency(o.currency);
    for (const auto& [channel, c] : o.channels) {
      ChannelSums& mine = Channel(channel, capped);
      mine.revenue += c.revenue;
      mine.cost += c.cost;
    }
  }
};

// True when the KPI is a ratio numerator / denominator (rates and
// averages), false for counts and sums.
bool IsRatioKpi(absl::string_view kpi);

// True when min_sample (sessions) guards the KPI: rates and per-session
// averages.
bool IsSessionSampledKpi(absl::string_view kpi);

// What a target's sums are sums of (kpi, filter, window or period): a
// checkpoint written for another definition does not apply.
std::string TargetFingerprint(const TargetSpec& spec);

// Bucket width of a rolling window.
absl::Duration TargetBucketWidth(absl::Duration window);

// How far behind the close frontier a period's sums are complete, on
// average: the mean duration of its sessions, weighted by what each added
// to the numerator (0 without any). With sessions starting at a steady
// rate, those counted by frontier F are those started before F - duration:
// as many as a frontier of F - PeriodCloseLag would count if every session
// closed at its start. Paced at the frontier itself, a period exactly on
// pace read behind by the mean session's duration over the time elapsed
// (an audit: 0.51 after 20 minutes of 10-minute sessions, 0.96 after 4
// hours; KpiBehindPace fired with the default tolerance 0).
absl::Duration PeriodCloseLag(const TargetSums& sums);

// The target's status from the sums of all partitions at event time `now`
// (a period: the close frontier, paced at now - PeriodCloseLag).
// A ratio with no denominator (or fewer than min_sample sessions) has actual
// NaN, or its value, and is on track: no data is not off target. Money of
// mixed currencies (a money target without filter.currency) has actual,
// attainment, pace and projection NaN and is on track, for want of an
// amount to judge: `mixed_currencies` says so. But a
// target whose filter matched nothing over its whole window (a period: since
// its start) says so in `no_data`, so that a filter that never matches is
// not "on track" silently.
TargetStatus EvaluateTarget(const TargetSpec& spec, const TargetSums& sums,
                            absl::Time now);

class TargetTracker {
 public:
  // How a site is named in ROAS targets' sums by site and channel: its
  // site label value, "(other)" past the label's bound, as the generated
  // rules see it (an audit: a new 1 KB site id per revenue session filled
  // every minute's bucket of a 1 d ROAS target to its 64 KiB of keys, 92 MB
  // a partition, re-summed five times a second). Empty: the site as it is.
  using SiteLabel = std::function<absl::string_view(absl::string_view)>;

  // `specs` outlives the tracker. `inactivity_timeout`: the sessions' close
  // delay after their last event.
  TargetTracker(const std::vector<TargetSpec>* specs,
                absl::Duration inactivity_timeout,
                SiteLabel site_label = nullptr);

  void OnSessionClosed(const ClosedSession& session);
  // The heap the rolling buckets and period totals hold (estimate).
  size_t ApproximateBytes() const;
  // Ad spend, for ROAS targets: at `time`, or spread evenly over [time,
  // until) when `until` is later (a daily export's day: dated at its
  // start alone, a day's spend arriving the next morning was already out
  // of a 1 d window, and ROAS had no cost; review).
  void OnAdCost(absl::string_view site, absl::string_view channel,
                absl::string_view currency, int64_t micros, absl::Time time,
                absl::Time until = absl::InfinitePast());

  // Adds this partition's sums at event time `now` to `sums` (one per spec)
  // and forgets buckets that no window at or after `now` can reach. Before
  // any watermark (`now` infinite past) rolling windows are empty; period
  // totals are added all the same.
  void AddTo(absl::Time now, std::vector<TargetSums>* sums);

  // Checkpointing. A bucket of a rolling target, or a period target's total
  // (bucket kTotal), whose sums changed or that was dropped (erased) since
  // the last TakeChanges().
  static constexpr int64_t kTotal = INT64_MIN;
  struct Change {
    size_t target = 0;  // index into the specs
    int64_t bucket = 0;
    bool erased = false;
    TargetSums sums;
  };
  std::vector<Change> TakeChanges();
  bool changed() const { return !dirty_.empty(); }
  // Marks every bucket and non-empty total as changed, so that the next
  // TakeChanges() rewrites the whole state (a changelog that is not
  // compacted but deletes old records then still holds all of it).
  void MarkAllChanged();
  // Sets a bucket (or kTotal) from a checkpoint; not a change.
  void Restore(size_t target, int64_t bucket, const TargetSums& sums);

  // The partition checkpoint's form of the above: the buckets changed since
  // the last call (every bucket and total with `full`), each with its
  // target's name and fingerprint.
  void Checkpoint(bool full,
                  absl::FunctionRef<void(const v1::TargetBucket&)> write);
  // Applies a checkpointed bucket; false (and nothing applied) when no
  // configured target has its name and fingerprint (removed or redefined).
  bool Restore(const v1::TargetBucket& bucket);

  size_t buckets() const;

 private:
  absl::string_view SiteOf(absl::string_view site) const {
    return site_label_ ? site_label_(site) : site;
  }

  void Add(size_t i, absl::Time at, const TargetSums& sums);
  // `sums`' denominator spread over [from, to) (rolling targets), in at
  // most kMaxSpreadPieces pieces of whole buckets, or more where those
  // would be longer than a kPiecesAWindow-th of the window (at most
  // kMaxPiecesARecord); every piece matched.
  void AddSpread(size_t i, absl::Time from, absl::Time to,
                 const TargetSums& sums);
  // A day in 15 minute pieces: ROAS over a window is then off by at most a
  // piece's share of an interval's spend, and a record makes at most this
  // many buckets.
  static constexpr int64_t kMaxSpreadPieces = 96;
  // A window's share of a longer interval's spend is then off by at most
  // about two pieces, 3 % of the window's (a month's row in a day's window:
  // 16 minute pieces, 2,700 of them).
  static constexpr int64_t kPiecesAWindow = 64;
  static constexpr int64_t kMaxPiecesARecord = 4096;

  // A spec prepared for the per-session path: its KPI's catalog row
  // (nullptr: unknown) and its filter values (nullptr: any).
  struct Compiled {
    const KpiDef* kpi = nullptr;
    const std::string* site = nullptr;
    const std::string* channel = nullptr;
    const std::string* device = nullptr;
    const std::string* country = nullptr;
    const std::string* goal = nullptr;
    const std::string* currency = nullptr;
    // A money KPI without a currency filter: the sums say which currencies
    // their money was in (TargetSums::currency).
    bool track_currency = false;
    // ROAS without a channel filter: the sums by channel (ChannelSums).
    bool by_channel = false;
    absl::Duration width;  // rolling bucket width
  };
  bool Contribution(const Compiled& c, const ClosedSession& s,
                    TargetSums* out) const;

  const std::vector<TargetSpec>* specs_;
  std::vector<Compiled> compiled_;
  std::vector<std::string> fingerprints_;  // TargetFingerprint of each spec
  absl::Duration inactivity_timeout_;
  SiteLabel site_label_;
  struct State {
    std::map<int64_t, TargetSums> buckets;  // rolling
    TargetSums total;                       // period
  };
  std::vector<State> targets_;
  std::set<std::pair<size_t, int64_t>> dirty_;  // (target, bucket)
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_TARGET_TRACKER_H_
