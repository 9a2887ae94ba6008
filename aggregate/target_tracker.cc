#include "aggregate/target_tracker.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

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

const std::string* Find(const std::map<std::string, std::string>& filter,
                        const char* label) {
  auto it = filter.find(label);
  return it == filter.end() ? nullptr : &it->second;
}

bool Matches(const std::map<std::string, std::string>& filter,
             const char* label, absl::string_view value) {
  const std::string* want = Find(filter, label);
  return want == nullptr || *want == value;
}

// Revenue in currency units, of the filter's currency or of all.
double Revenue(const ClosedSession& s,
               const std::map<std::string, std::string>& filter) {
  const std::string* currency = Find(filter, "currency");
  int64_t micros = 0;
  for (const auto& [c, m] : s.revenue) {
    if (currency == nullptr || *currency == c) micros += m;
  }
  return static_cast<double>(micros) / 1e6;
}

// Conversions of the filter's goal (or of any goal).
uint32_t Conversions(const ClosedSession& s,
                     const std::map<std::string, std::string>& filter) {
  const std::string* goal = Find(filter, "goal");
  uint32_t n = 0;
  for (const auto& [g, count] : s.conversions) {
    if (goal == nullptr || *goal == g) n += count;
  }
  return n;
}

// The session's contribution to `spec`'s KPI; false when it has none.
bool Contribution(const TargetSpec& spec, const ClosedSession& s,
                  TargetSums* out) {
  const auto& f = spec.filter;
  if (!Matches(f, "site", s.site_id) || !Matches(f, "channel", s.channel) ||
      !Matches(f, "device", s.device_category) ||
      !Matches(f, "country", s.country)) {
    return false;
  }
  const absl::string_view kpi = spec.kpi;
  TargetSums c;
  if (IsSessionSampledKpi(kpi)) {
    c.denominator = 1;
    c.sample = 1;
    if (kpi == "bounce_rate") {
      c.numerator = s.bounced;
    } else if (kpi == "engagement_rate") {
      c.numerator = s.engaged;
    } else if (kpi == "single_page_rate") {
      c.numerator = s.single_page;
    } else if (kpi == "conversion_rate") {
      c.numerator = Conversions(s, f) > 0 ? 1 : 0;
    } else if (kpi == "new_visitor_share") {
      c.numerator = s.new_visitor;
    } else if (kpi == "pageviews_per_session") {
      c.numerator = s.pageviews;
    } else {  // avg_session_duration
      c.numerator = absl::ToDoubleSeconds(s.duration());
    }
  } else if (kpi == "average_order_value") {
    c.numerator = Revenue(s, f);
    c.denominator = s.orders;
  } else if (kpi == "roas") {
    c.numerator = Revenue(s, f);  // the ad cost comes from OnAdCost
  } else if (kpi == "sessions") {
    c.numerator = 1;
  } else if (kpi == "engaged_sessions") {
    c.numerator = s.engaged;
  } else if (kpi == "pageviews") {
    c.numerator = s.pageviews;
  } else if (kpi == "conversions") {
    c.numerator = Conversions(s, f);
  } else if (kpi == "orders") {
    c.numerator = s.orders;
  } else if (kpi == "revenue") {
    c.numerator = Revenue(s, f);
  } else {
    return false;
  }
  if (c.numerator == 0 && c.denominator == 0) return false;
  *out = c;
  return true;
}

}  // namespace

bool IsRatioKpi(absl::string_view kpi) {
  return IsSessionSampledKpi(kpi) || kpi == "average_order_value" ||
         kpi == "roas";
}

bool IsSessionSampledKpi(absl::string_view kpi) {
  return kpi == "bounce_rate" || kpi == "engagement_rate" ||
         kpi == "single_page_rate" || kpi == "conversion_rate" ||
         kpi == "new_visitor_share" || kpi == "pageviews_per_session" ||
         kpi == "avg_session_duration";
}

absl::Duration TargetBucketWidth(absl::Duration window) {
  return window % absl::Minutes(1) == absl::ZeroDuration() ? absl::Minutes(1)
                                                           : absl::Seconds(1);
}

TargetStatus EvaluateTarget(const TargetSpec& spec, const TargetSums& sums,
                            absl::Time now) {
  if (!spec.rolling()) {
    return EvaluateCumulative(spec.direction, spec.value, spec.tolerance,
                              sums.numerator, spec.period_start,
                              spec.period_end, now);
  }
  if (!IsRatioKpi(spec.kpi)) {
    return EvaluateRolling(spec.direction, spec.value, spec.tolerance,
                           sums.numerator, 1, 0);
  }
  if (sums.denominator == 0) {
    TargetStatus s = EvaluateRolling(spec.direction, spec.value,
                                     spec.tolerance, kNaN, 0, 1);
    s.attainment = kNaN;
    return s;
  }
  const bool sampled = IsSessionSampledKpi(spec.kpi);
  return EvaluateRolling(spec.direction, spec.value, spec.tolerance,
                         sums.numerator / sums.denominator,
                         sampled ? sums.sample : 1,
                         sampled ? spec.min_sample : 0);
}

TargetTracker::TargetTracker(const std::vector<TargetSpec>* specs,
                             absl::Duration inactivity_timeout)
    : specs_(specs),
      inactivity_timeout_(inactivity_timeout),
      targets_(specs->size()) {}

void TargetTracker::Add(size_t i, absl::Time at, const TargetSums& sums) {
  const TargetSpec& spec = (*specs_)[i];
  State& state = targets_[i];
  if (spec.rolling()) {
    const int64_t bucket = BucketOf(at, TargetBucketWidth(spec.window));
    state.buckets[bucket] += sums;
    dirty_.insert({i, bucket});
  } else {
    state.total += sums;
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
    if (t.numerator != 0 || t.denominator != 0 || t.sample != 0) {
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

std::string TargetFingerprint(const TargetSpec& spec) {
  std::string out = spec.kpi;
  for (const auto& [label, value] : spec.filter) {
    absl::StrAppend(&out, "|", label, "=", value);
  }
  if (spec.rolling()) {
    absl::StrAppend(&out, "|window=", absl::ToInt64Seconds(spec.window), "s");
  } else {
    absl::StrAppend(&out, "|period=", absl::ToUnixSeconds(spec.period_start),
                    "..", absl::ToUnixSeconds(spec.period_end));
  }
  return out;
}

void TargetTracker::OnSessionClosed(const ClosedSession& session) {
  for (size_t i = 0; i < specs_->size(); ++i) {
    const TargetSpec& spec = (*specs_)[i];
    TargetSums c;
    if (!Contribution(spec, session, &c)) continue;
    if (spec.rolling()) {
      Add(i, session.end + inactivity_timeout_, c);
    } else if (session.start >= spec.period_start &&
               session.start < spec.period_end) {
      Add(i, session.start, c);
    }
  }
}

void TargetTracker::OnAdCost(absl::string_view site, absl::string_view channel,
                             absl::string_view currency, int64_t micros,
                             absl::Time time) {
  for (size_t i = 0; i < specs_->size(); ++i) {
    const TargetSpec& spec = (*specs_)[i];
    if (spec.kpi != "roas" || !spec.rolling() ||
        !Matches(spec.filter, "site", site) ||
        !Matches(spec.filter, "channel", channel) ||
        !Matches(spec.filter, "currency", currency)) {
      continue;
    }
    TargetSums c;
    c.denominator = static_cast<double>(micros) / 1e6;
    Add(i, time, c);
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
