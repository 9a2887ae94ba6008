#include "aggregate/kpi_target.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace kpistream {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

double Attainment(Direction direction, double target, double actual) {
  if (direction == Direction::kAtLeast) {
    if (target == 0) return 1;
    return actual / target;
  }
  if (actual == 0) return kInf;
  return target / actual;
}

// Within tolerance of the target on the side that counts.
bool Met(Direction direction, double target, double tolerance, double value) {
  const bool at_least = direction == Direction::kAtLeast;
  const double limit = ToleranceLimit(at_least, target, tolerance);
  return at_least ? value >= limit : value <= limit;
}

}  // namespace

double ToleranceLimit(bool at_least, double target, double tolerance) {
  const double limit =
      at_least ? target * (1 - tolerance) : target * (1 + tolerance);
  if (!std::isfinite(limit)) return limit;
  char text[32];
  std::snprintf(text, sizeof(text), "%.10g", limit);
  return std::strtod(text, nullptr);
}

TargetStatus EvaluateRolling(Direction direction, double target,
                             double tolerance, double actual, int64_t sample,
                             int64_t min_sample) {
  TargetStatus s;
  s.target = target;
  s.actual = actual;
  s.attainment = Attainment(direction, target, actual);
  s.pace = kNaN;
  s.projected = kNaN;
  s.on_track = sample < min_sample || Met(direction, target, tolerance, actual);
  return s;
}

TargetStatus EvaluateCumulative(Direction direction, double target,
                                double tolerance, double actual,
                                absl::Time start, absl::Time end,
                                absl::Time now) {
  TargetStatus s;
  s.target = target;
  s.actual = actual;
  s.attainment = Attainment(direction, target, actual);
  if (now <= start) {
    // Not started: nothing expected yet, nothing to project.
    s.pace = kNaN;
    s.projected = kNaN;
    s.on_track = true;
    return s;
  }
  const double f =
      now >= end ? 1.0 : absl::FDivDuration(now - start, end - start);
  const double expected = target * f;
  s.pace = expected == 0 ? kNaN : actual / expected;
  s.projected = actual / f;
  s.on_track = Met(direction, target, tolerance, s.projected);
  return s;
}

}  // namespace kpistream
