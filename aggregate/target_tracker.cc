#include "aggregate/target_tracker.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "aggregate/kpi_catalog.h"
#include "aggregate/label_values.h"
#include "aggregate/saturating.h"

namespace kpistream {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Floor of (t - epoch) / width.
int64_t BucketOf(absl::Time t, absl::Duration width) {
  absl::Duration rem;
  int64_t q = absl::IDivDuration(t - absl::UnixEpoch(), width, &rem);
  if (rem < absl::ZeroDuration()) --q;
  return q;
}

// A filter's value for `label` (null: any).
const std::string* Find(const std::map<std::string, std::string>& filter,
                        const char* label) {
  auto it = filter.find(label);
  return it == filter.end() ? nullptr : &it->second;
}

// A filter value says "(not set)" for a value that is missing, as /metrics
// does; a session holds a missing value as "" (currency) or as "(not set)"
// (device and country, as the decoders set them): both match it.
bool Matches(const std::string* want, absl::string_view value) {
  return want == nullptr || *want == OrNotSet(value);
}

// Whether the session has revenue or orders in `currency`.
bool HasCurrency(const ClosedSession& s, const std::string& currency) {
  for (const auto& [c, micros] : s.revenue) {
    if (Matches(&currency, c)) return true;
  }
  for (const auto& [c, n] : s.orders_by_currency) {
    if (Matches(&currency, c)) return true;
  }
  return false;
}

}  // namespace

bool IsRatioKpi(absl::string_view kpi) {
  const KpiDef* def = FindKpi(kpi);
  return def != nullptr && !def->cumulative();
}

bool IsSessionSampledKpi(absl::string_view kpi) {
  const KpiDef* def = FindKpi(kpi);
  return def != nullptr && def->per_session;
}

absl::Duration TargetBucketWidth(absl::Duration window) {
  return window % absl::Minutes(1) == absl::ZeroDuration() ? absl::Minutes(1)
                                                           : absl::Seconds(1);
}

namespace {

// Whether the target's sums are by channel (TargetSums::channels): ROAS of
// every channel.
bool ByChannel(const TargetSpec& spec) {
  const KpiDef* kpi = FindKpi(spec.kpi);
  return kpi != nullptr && kpi->ad_cost_denominator() &&
         spec.filter.count("channel") == 0;
}

TargetStatus EvaluateValue(const TargetSpec& spec, const TargetSums& sums,
                           absl::Time now) {
  if (!spec.rolling()) {
    if (now != absl::InfinitePast()) now -= PeriodCloseLag(sums);
    return EvaluateCumulative(spec.direction, spec.value, spec.tolerance,
                              sums.numerator, spec.period_start,
                              spec.period_end, now);
  }
  if (!IsRatioKpi(spec.kpi)) {
    return EvaluateRolling(spec.direction, spec.value, spec.tolerance,
                           sums.numerator, 1, 0);
  }
  if (sums.denominator == 0) {
    TargetStatus s =
        EvaluateRolling(spec.direction, spec.value, spec.tolerance, kNaN, 0, 1);
    s.attainment = kNaN;
    return s;
  }
  const bool sampled = IsSessionSampledKpi(spec.kpi);
  const double numerator =
      ByChannel(spec) ? sums.RevenueOfPaidChannels() : sums.numerator;
  return EvaluateRolling(
      spec.direction, spec.value, spec.tolerance, numerator / sums.denominator,
      sampled ? sums.sample : 1, sampled ? spec.min_sample : 0);
}

}  // namespace

absl::Duration PeriodCloseLag(const TargetSums& sums) {
  // Over the whole numerator: a total restored from before the lag was kept
  // counts as of no duration, so that the first sessions after an upgrade
  // (a long one) do not move the pace of a period whose total they are a
  // small part of (a review).
  if (!(sums.numerator > 0) || !(sums.lag_weighted_seconds > 0)) {
    return absl::ZeroDuration();
  }
  return absl::Seconds(sums.lag_weighted_seconds / sums.numerator);
}

TargetStatus EvaluateTarget(const TargetSpec& spec, const TargetSums& sums,
                            absl::Time now) {
  TargetStatus s = EvaluateValue(spec, sums, now);
  if (sums.mixed_currencies) {
    // No amount to judge: as a ratio with nothing to divide by.
    s.actual = s.attainment = s.pace = s.projected = kNaN;
    s.on_track = true;
    s.mixed_currencies = true;
  }
  // A period has data to expect only once it has started.
  s.no_data = sums.matched == 0 && (spec.rolling() || now >= spec.period_start);
  return s;
}

TargetTracker::TargetTracker(const std::vector<TargetSpec>* specs,
                             absl::Duration inactivity_timeout,
                             SiteLabel site_label)
    : specs_(specs),
      inactivity_timeout_(inactivity_timeout),
      site_label_(std::move(site_label)),
      targets_(specs->size()) {
  for (const TargetSpec& spec : *specs) {
    Compiled c;
    c.kpi = FindKpi(spec.kpi);
    c.site = Find(spec.filter, "site");
    c.channel = Find(spec.filter, "channel");
    c.device = Find(spec.filter, "device");
    c.country = Find(spec.filter, "country");
    c.goal = Find(spec.filter, "goal");
    if (c.goal != nullptr && *c.goal == kAnyGoalValue) {
      c.goal = nullptr;  // a session converted to any goal (KpiSelection)
    }
    c.currency = Find(spec.filter, "currency");
    c.track_currency =
        c.kpi != nullptr && c.kpi->money() && c.currency == nullptr;
    c.by_channel = ByChannel(spec);
    c.width = TargetBucketWidth(spec.window);
    compiled_.push_back(c);
    fingerprints_.push_back(TargetFingerprint(spec));
  }
}

bool TargetTracker::Contribution(const Compiled& f, const ClosedSession& s,
                                 TargetSums* out) const {
  if (!Matches(f.site, s.site_id) || !Matches(f.channel, s.channel) ||
      !Matches(f.device, s.device_category) || !Matches(f.country, s.country) ||
      (f.currency != nullptr && !HasCurrency(s, *f.currency))) {
    return false;
  }
  if (f.kpi == nullptr) return false;
  const KpiSelection selection{f.goal, f.currency};
  TargetSums c;
  c.matched = 1;
  c.numerator = f.kpi->session_numerator(s, selection);
  if (f.kpi->per_session) {
    c.denominator = 1;
    c.sample = 1;
  } else if (f.kpi->session_denominator != nullptr) {
    c.denominator = f.kpi->session_denominator(s, selection);
  }
  if (f.by_channel && c.numerator != 0) {
    c.channels[{std::string(SiteOf(s.site_id)), s.channel}].revenue =
        c.numerator;
  }
  if (f.track_currency) {
    for (const auto& [currency, micros] : s.revenue) c.AddCurrency(currency);
    for (const auto& [currency, n] : s.orders_by_currency) {
      c.AddCurrency(currency);
    }
  }
  *out = c;
  return true;
}

void TargetTracker::Add(size_t i, absl::Time at, const TargetSums& sums) {
  const TargetSpec& spec = (*specs_)[i];
  State& state = targets_[i];
  if (spec.rolling()) {
    const int64_t bucket = BucketOf(at, compiled_[i].width);
    state.buckets[bucket].AddKept(sums);
    dirty_.insert({i, bucket});
  } else {
    state.total.AddKept(sums);
    dirty_.insert({i, kTotal});
  }
}

std::vector<TargetTracker::Change> TargetTracker::TakeChanges() {
  std::vector<Change> changes;
  changes.reserve(dirty_.size());
  for (const auto& [i, bucket] : dirty_) {
    Change c;
    c.target = i;
    c.bucket = bucket;
    if (bucket == kTotal) {
      c.sums = targets_[i].total;
    } else if (auto it = targets_[i].buckets.find(bucket);
               it != targets_[i].buckets.end()) {
      c.sums = it->second;
    } else {
      c.erased = true;
    }
    changes.push_back(c);
  }
  dirty_.clear();
  return changes;
}

void TargetTracker::MarkAllChanged() {
  for (size_t i = 0; i < targets_.size(); ++i) {
    for (const auto& [bucket, sums] : targets_[i].buckets) {
      dirty_.insert({i, bucket});
    }
    const TargetSums& t = targets_[i].total;
    if (t.numerator != 0 || t.denominator != 0 || t.sample != 0 ||
        t.matched != 0 || !t.currency.empty()) {
      dirty_.insert({i, kTotal});
    }
  }
}

void TargetTracker::Restore(size_t target, int64_t bucket,
                            const TargetSums& sums) {
  if (bucket == kTotal) {
    targets_[target].total = sums;
  } else {
    targets_[target].buckets[bucket] = sums;
  }
}

void TargetTracker::Checkpoint(
    bool full, absl::FunctionRef<void(const v1::TargetBucket&)> write) {
  if (full) MarkAllChanged();
  v1::TargetBucket out;
  for (const Change& c : TakeChanges()) {
    if (full && c.erased) continue;
    out.Clear();
    out.set_target((*specs_)[c.target].name);
    out.set_fingerprint(fingerprints_[c.target]);
    out.set_bucket(c.bucket);
    out.set_erased(c.erased);
    out.set_numerator(c.sums.numerator);
    out.set_denominator(c.sums.denominator);
    out.set_sample(c.sums.sample);
    out.set_matched(c.sums.matched);
    out.set_currency(c.sums.currency);
    out.set_mixed_currencies(c.sums.mixed_currencies);
    out.set_lag_weighted_seconds(c.sums.lag_weighted_seconds);
    for (const auto& [site_channel, sums] : c.sums.channels) {
      v1::TargetBucket::ChannelSums* by = out.add_channels();
      by->set_site(site_channel.first);
      by->set_channel(site_channel.second);
      by->set_revenue(sums.revenue);
      by->set_cost(sums.cost);
    }
    write(out);
  }
}

namespace {

// A period's days in a fingerprint: "YYYY-MM-DD..YYYY-MM-DD", its first and
// last day (in its zone); before 2026-12-06, "<start>..<end>" in Unix
// seconds, the UTC midnights before the first and after the last day.
struct PeriodDays {
  absl::string_view what;  // KPI and filter
  absl::CivilDay first, last;
};
bool ParsePeriodDays(absl::string_view f, PeriodDays* p) {
  const size_t at = f.rfind("|period=");
  if (at == absl::string_view::npos) return false;
  p->what = f.substr(0, at);
  const absl::string_view bounds = f.substr(at + 8);
  const size_t dots = bounds.find("..");
  if (dots == absl::string_view::npos) return false;
  const absl::string_view first = bounds.substr(0, dots);
  const absl::string_view last = bounds.substr(dots + 2);
  if (absl::ParseCivilTime(first, &p->first) &&
      absl::ParseCivilTime(last, &p->last)) {
    return true;
  }
  int64_t start = 0, end = 0;
  if (!absl::SimpleAtoi(first, &start) || !absl::SimpleAtoi(last, &end)) {
    return false;
  }
  const absl::TimeZone utc = absl::UTCTimeZone();
  p->first = absl::ToCivilDay(absl::FromUnixSeconds(start), utc);
  p->last =
      absl::ToCivilDay(absl::FromUnixSeconds(end) - absl::Seconds(1), utc);
  return true;
}

// Whether sums of a period target under fingerprint `old` are the sums of
// `now` too: the same KPI, filter and first day, and the same or a later
// last day (a deadline extended: every session counted is still in the
// period), whatever time zone the days are in (periods were UTC days
// before 2026-12-06; sessions.timezone may change). Another first day, or
// an earlier last day, counts other sessions: dropped. Kept across a zone
// change, the total holds what the old days held: the sessions between the
// two zones' midnights at either end are counted or missed accordingly.
bool PeriodKept(absl::string_view old, absl::string_view now) {
  PeriodDays o, n;
  return ParsePeriodDays(old, &o) && ParsePeriodDays(now, &n) &&
         o.what == n.what && o.first == n.first && n.last >= o.last;
}

}  // namespace

bool TargetTracker::Restore(const v1::TargetBucket& b) {
  for (size_t i = 0; i < specs_->size(); ++i) {
    if ((*specs_)[i].name != b.target() ||
        (fingerprints_[i] != b.fingerprint() &&
         !PeriodKept(b.fingerprint(), fingerprints_[i]))) {
      continue;
    }
    if (b.erased()) {
      if (b.bucket() == kTotal) {
        targets_[i].total = TargetSums{};
      } else {
        targets_[i].buckets.erase(b.bucket());
      }
      return true;
    }
    TargetSums sums;
    sums.numerator = b.numerator();
    sums.denominator = b.denominator();
    sums.sample = b.sample();
    sums.matched = b.matched();
    sums.currency = b.currency();
    sums.mixed_currencies = b.mixed_currencies();
    sums.lag_weighted_seconds = b.lag_weighted_seconds();
    for (const v1::TargetBucket::ChannelSums& by : b.channels()) {
      // As written (no bound applied again: the restored bucket must
      // behave as the one checkpointed, whose "(other)" may sort first),
      // each site named as this process names it (SiteLabel): the site
      // label's admissions are this process's, and checkpoints written
      // before sites were named so hold site ids (an audit: after an
      // upgrade or a restart a site's revenue and its restored cost were
      // under two names, and ROAS left the revenue out).
      auto [it, inserted] = sums.channels.try_emplace(
          {std::string(SiteOf(by.site())), by.channel()});
      if (inserted) {
        sums.channel_key_bytes += it->first.first.size() + by.channel().size() +
                                  TargetSums::kChannelEntryBytes;
      }
      TargetSums::ChannelSums& c = it->second;
      c.revenue += by.revenue();
      c.cost += by.cost();
    }
    Restore(i, b.bucket(), sums);
    return true;
  }
  return false;
}

size_t TargetTracker::ApproximateBytes() const {
  size_t bytes = 0;
  for (const State& state : targets_) {
    bytes += state.total.channel_key_bytes;
    for (const auto& [bucket, sums] : state.buckets) {
      bytes += sizeof(sums) + 48 + sums.channel_key_bytes;  // with its node
    }
  }
  return bytes;
}

std::string TargetFingerprint(const TargetSpec& spec) {
  std::string out = spec.kpi;
  for (const auto& [label, value] : spec.filter) {
    absl::StrAppend(&out, "|", label, "=", value);
  }
  if (spec.rolling()) {
    absl::StrAppend(&out, "|window=", absl::ToInt64Seconds(spec.window), "s");
  } else {
    // Its days, not its instants: the same dates in another zone are the
    // same period (PeriodKept).
    const absl::CivilDay first =
        absl::ToCivilDay(spec.period_start, spec.period_zone);
    const absl::CivilDay last = absl::ToCivilDay(
        spec.period_end - absl::Nanoseconds(1), spec.period_zone);
    absl::StrAppend(&out, "|period=", absl::FormatCivilTime(first), "..",
                    absl::FormatCivilTime(last));
  }
  return out;
}

void TargetTracker::OnSessionClosed(const ClosedSession& session) {
  for (size_t i = 0; i < specs_->size(); ++i) {
    const TargetSpec& spec = (*specs_)[i];
    TargetSums c;
    if (!Contribution(compiled_[i], session, &c)) continue;
    if (spec.rolling()) {
      Add(i, session.end + inactivity_timeout_, c);
    } else if (session.start >= spec.period_start &&
               session.start < spec.period_end) {
      c.lag_weighted_seconds =
          c.numerator * absl::ToDoubleSeconds(session.duration());
      Add(i, session.start, c);
    }
  }
}

void TargetTracker::OnAdCost(absl::string_view site, absl::string_view channel,
                             absl::string_view currency, int64_t micros,
                             absl::Time time, absl::Time until) {
  for (size_t i = 0; i < specs_->size(); ++i) {
    const TargetSpec& spec = (*specs_)[i];
    const Compiled& f = compiled_[i];
    if (f.kpi == nullptr || !f.kpi->ad_cost_denominator() || !spec.rolling() ||
        !Matches(f.site, site) || !Matches(f.channel, channel) ||
        !Matches(f.currency, currency)) {
      continue;
    }
    TargetSums c;
    c.denominator = static_cast<double>(micros) / 1e6;
    c.matched = 1;
    if (f.track_currency) c.AddCurrency(currency);
    if (f.by_channel) {
      c.channels[{std::string(SiteOf(site)), std::string(channel)}].cost =
          c.denominator;
    }
    if (until > time) {
      AddSpread(i, time, until, c);
    } else {
      Add(i, time, c);
    }
  }
}

void TargetTracker::AddSpread(size_t i, absl::Time from, absl::Time to,
                              const TargetSums& sums) {
  const absl::Duration width = compiled_[i].width;
  const absl::Duration span = to - from;
  // Whole buckets a piece, so that a week's spend is not 10,080 minutes; a
  // power of two of them, so that the pieces of every interval fall on one
  // nested set of grids (review: a grid per length, and records of many
  // lengths, made buckets without bound).
  absl::Duration rem;
  const int64_t buckets = absl::IDivDuration(span, width, &rem) + 1;
  int64_t buckets_a_piece = 1;
  while (buckets_a_piece * kMaxSpreadPieces < buckets) buckets_a_piece *= 2;
  // Yet no piece longer than a 64th of the window (an audit: a month's row
  // in 8.5 h pieces put a 1 d window's cost off by up to 30 %), unless the
  // record would take more than kMaxPiecesARecord pieces.
  const int64_t window_buckets =
      std::max<int64_t>(1, (*specs_)[i].window / width);
  int64_t fine = 1;
  while (fine * 2 * kPiecesAWindow <= window_buckets) fine *= 2;
  buckets_a_piece = std::min(buckets_a_piece, fine);
  while (buckets_a_piece * kMaxPiecesARecord < buckets) buckets_a_piece *= 2;
  for (absl::Time t = from; t < to;) {
    const int64_t bucket = BucketOf(t, width);
    const int64_t piece_end =
        (bucket >= 0 ? bucket / buckets_a_piece
                     : (bucket - buckets_a_piece + 1) / buckets_a_piece) *
            buckets_a_piece +
        buckets_a_piece;
    const absl::Time next = std::min(to, absl::UnixEpoch() + width * piece_end);
    TargetSums piece;
    piece.denominator = sums.denominator * absl::FDivDuration(next - t, span);
    // Every piece counts as matched: a window holding only some of a row's
    // pieces has its spend (an audit: matched in the last piece alone, a
    // 1 h ROAS window at noon over a day's row read no_data with spend).
    piece.matched = sums.matched;
    piece.currency = sums.currency;
    for (const auto& [channel, c] : sums.channels) {
      piece.channels[channel].cost =
          c.cost * absl::FDivDuration(next - t, span);
    }
    Add(i, t, piece);
    t = next;
  }
}

void TargetTracker::AddTo(absl::Time now, std::vector<TargetSums>* sums) {
  sums->resize(specs_->size());
  for (size_t i = 0; i < specs_->size(); ++i) {
    const TargetSpec& spec = (*specs_)[i];
    State& state = targets_[i];
    if (!spec.rolling()) {
      (*sums)[i] += state.total;  // a period's total to date needs no clock
      continue;
    }
    if (now == absl::InfinitePast()) continue;  // no watermark yet
    const absl::Duration width = TargetBucketWidth(spec.window);
    const int64_t end = BucketOf(now, width);  // exclusive
    const int64_t begin = end - spec.window / width;
    // Buckets before `begin` are out of every later window.
    for (auto it = state.buckets.begin();
         it != state.buckets.end() && it->first < begin;) {
      dirty_.insert({i, it->first});
      it = state.buckets.erase(it);
    }
    for (auto it = state.buckets.begin();
         it != state.buckets.end() && it->first < end; ++it) {
      (*sums)[i] += it->second;
    }
  }
}

size_t TargetTracker::buckets() const {
  size_t n = 0;
  for (const State& s : targets_) n += s.buckets.size();
  return n;
}

}  // namespace kpistream
