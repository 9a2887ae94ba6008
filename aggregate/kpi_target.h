// KpiTarget: the arithmetic of SMART/OKR targets (SPEC §6), apart from where
// the actual values come from. Pure functions of their inputs.
//
//   attainment = actual / target (at_least)  or  target / actual (at_most)
//   rolling target on track: actual within `tolerance` (relative) of the
//     target on the right side, or fewer than `min_sample` observations
//   cumulative target over [start, end): elapsed fraction f of the period,
//     expected-to-date = target * f, pace = actual / expected-to-date,
//     projected = actual / f, on track when the projection (after the end:
//     the actual) is within tolerance of the target
//
// Zero denominators: attainment of a zero target is 1 when met; an at_most
// KPI with actual 0 is infinitely attained (+inf); pace is undefined (NaN)
// before the period starts; Prometheus renders NaN and +Inf as such.
#ifndef KPISTREAM_AGGREGATE_KPI_TARGET_H_
#define KPISTREAM_AGGREGATE_KPI_TARGET_H_

#include <cstdint>

#include "absl/time/time.h"

namespace kpistream {

enum class Direction { kAtLeast, kAtMost };

// The limit a target's KPI must stay on the right side of: target x (1 -
// tolerance) at least, target x (1 + tolerance) at most, rounded to 10
// significant digits, as the generated rules and dashboard write it: 0.1 x
// 0.9 is 0.09000000000000001 in binary, and a conversion rate of exactly
// 0.09 read off target in the engine while the alert (written "< 0.09")
// held it within.
double ToleranceLimit(bool at_least, double target, double tolerance);

struct TargetStatus {
  double target = 0;
  double actual = 0;
  double attainment = 0;  // >= 1: met
  double pace = 0;        // cumulative only; NaN otherwise or before the start
  double projected = 0;   // cumulative only; NaN otherwise
  bool on_track = true;
  bool no_data = false;  // nothing matched the target's filter (see tracker)
  // Money of more than one currency summed (see TargetSums): no value.
  bool mixed_currencies = false;
};

// A rolling-window target: `actual` over the window, from `sample`
// observations (e.g. sessions) of which at least `min_sample` are needed
// before the target can be off track.
TargetStatus EvaluateRolling(Direction direction, double target,
                             double tolerance, double actual, int64_t sample,
                             int64_t min_sample);

// A cumulative target over the period [start, end) at time `now`, with
// `actual` accumulated since `start`.
TargetStatus EvaluateCumulative(Direction direction, double target,
                                double tolerance, double actual,
                                absl::Time start, absl::Time end,
                                absl::Time now);

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_KPI_TARGET_H_
