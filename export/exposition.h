// The Prometheus text exposition format (version 0.0.4) of metric
// snapshots: what /metrics serves.
//
// Written straight into one string: prometheus-cpp's TextSerializer, which
// rendered the page before, wrote it through an ostream and printf (and
// first needed every label copied into its own families), about 1.7 us a
// series: 17 ms for 10,000 series, and ~2.5 % of the engine's CPU on the
// end-to-end benchmark, which polls /metrics every 100 ms. The bytes are
// TextSerializer's (tests/export/exposition_test.cc holds them to it),
// except where it broke the format: a newline in a label value is written
// `\n` (TextSerializer wrote a backslash and the newline itself), and HELP
// text escapes backslash and newline as the format asks.
#ifndef KPISTREAM_EXPORT_EXPOSITION_H_
#define KPISTREAM_EXPORT_EXPOSITION_H_

#include <string>

#include "aggregate/metrics_snapshot.h"

namespace kpistream {

// Appends `family`: its HELP (when not empty) and TYPE lines, then one line
// per sample (histograms: _count, _sum, then a cumulative _bucket per bound
// and one at le="+Inf" that equals _count).
void AppendExposition(const FamilySnapshot& family, std::string* out);

// Appends a sample value as TextSerializer writes it: "%.16g", and Nan,
// +Inf, -Inf.
void AppendExpositionValue(double value, std::string* out);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_EXPOSITION_H_
