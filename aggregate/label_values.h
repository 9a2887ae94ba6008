// The two reserved values of every dimension, in metrics labels, session
// records and KPI snapshots alike (SPEC §4): a value that is missing is
// "(not set)" (GA4's wording); a value that a label's cardinality limit or
// allowlist does not admit is "(other)".
#ifndef KPISTREAM_AGGREGATE_LABEL_VALUES_H_
#define KPISTREAM_AGGREGATE_LABEL_VALUES_H_

#include "absl/strings/string_view.h"

namespace kpistream {

inline constexpr absl::string_view kNotSet = "(not set)";
inline constexpr absl::string_view kOther = "(other)";
// The goal label of sessions converted to any goal, beside each goal's.
inline constexpr absl::string_view kAnyGoalValue = "(any)";

// `value`, or "(not set)" when it is empty.
inline absl::string_view OrNotSet(absl::string_view value) {
  return value.empty() ? kNotSet : value;
}

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_LABEL_VALUES_H_
