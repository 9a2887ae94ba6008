// PromQL text built from data. Label values (target names, filter values,
// funnel and step names: whatever a user writes in the config) are escaped
// as PromQL string literals, never glued into a query as they are.
#ifndef KPISTREAM_EXPORT_PROMQL_H_
#define KPISTREAM_EXPORT_PROMQL_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kpistream {

// `value` as a double-quoted PromQL string literal: backslash, double quote,
// newline, carriage return and tab as \\ \" \n \r \t, other control bytes as
// \xNN; every other byte (UTF-8 included) as it is.
std::string PromqlString(absl::string_view value);

// A vector selector: `metric{label="value",label=~"regex"}`, the matchers in
// the order they are added, each value through PromqlString(); `metric`
// alone without matchers. The metric may be empty when a __name__ matcher
// names the series.
class Selector {
 public:
  explicit Selector(absl::string_view metric);

  // label="value"
  Selector& Equal(absl::string_view label, absl::string_view value);
  // label=~"regex" (an RE2 regex, anchored by Prometheus).
  Selector& Regex(absl::string_view label, absl::string_view regex);
  // label!="value" (a series without the label matches).
  Selector& NotEqual(absl::string_view label, absl::string_view value);

  std::string str() const;

 private:
  std::string metric_;
  std::vector<std::string> matchers_;
};

// A PromQL duration in its largest whole unit: 1d, 6h, 30m, 45s; 250ms
// (rounded up to whole milliseconds) when not whole seconds.
std::string PromqlDuration(absl::Duration d);

// A number in up to 10 significant digits (`%.10g`: 0.05, 1500, 1.5e+12,
// nan, inf), as a PromQL literal, a promtool series value and the generated
// rules' and dashboard's text read it.
std::string PromqlNumber(double v);

// `den`, an instant-vector expression, as a ratio's denominator: its series
// above 0 as they are, those at 0 as NaN, so that x / 0 is NaN ("cannot be
// computed"), as 0 / 0 is, not +Inf: `(den > 0 or den * NaN)`.
std::string NonZeroDenominator(absl::string_view den);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_PROMQL_H_
