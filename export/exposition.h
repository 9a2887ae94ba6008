// The Prometheus text exposition format (version 0.0.4) of metric
// snapshots: what /metrics serves.
//
// Written straight into one string: prometheus-cpp's TextSerializer, which
// rendered the page before, wrote it through an ostream and printf, and
// first needed every label copied into its own families (BENCHMARKS.md,
// "/metrics": several times slower). The bytes are TextSerializer's
// (tests/export/exposition_test.cc holds them to it), but for HELP text,
// which escapes backslash and newline as the format asks (TextSerializer
// wrote it as it came; no HELP text of ours holds either).
#ifndef KPISTREAM_EXPORT_EXPOSITION_H_
#define KPISTREAM_EXPORT_EXPOSITION_H_

#include <string>

#include "aggregate/metrics_snapshot.h"

namespace kpistream {

// Appends `family`: its HELP (when not empty) and TYPE lines, then one line
// per sample (histograms: _count, _sum, then a cumulative _bucket per bound
// and one at le="+Inf" that equals _count).
void AppendExposition(const FamilySnapshot& family, std::string* out);

// Appends a sample value as TextSerializer writes it: "%.16g", +Inf, -Inf;
// and NaN as the exposition formats spell it (TextSerializer writes "Nan",
// which Prometheus reads but OpenMetrics parsers refuse).
void AppendExpositionValue(double value, std::string* out);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_EXPOSITION_H_
