#include "export/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace kpistream {
namespace {

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// HELP text: backslash and newline escaped.
void AppendHelp(absl::string_view help, std::string* out) {
  for (char c : help) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

// A label value: backslash, double quote and newline escaped.
void AppendLabelValue(absl::string_view value, std::string* out) {
  size_t plain = 0;  // the start of the run not yet appended
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out->append(value.data() + plain, i - plain);
    out->push_back('\\');
    out->push_back(c == '\n' ? 'n' : c);
    plain = i + 1;
  }
  out->append(value.data() + plain, value.size() - plain);
}

// `name``suffix`{labels[,extra_name="extra_value"]} and a space.
void AppendHead(const FamilySnapshot& family, const MetricSample& sample,
                absl::string_view suffix, absl::string_view extra_name,
                absl::string_view extra_value, std::string* out) {
  out->append(family.name);
  out->append(suffix.data(), suffix.size());
  const size_t labels =
      std::min(family.label_names.size(), sample.label_values.size());
  if (labels > 0 || !extra_name.empty()) {
    out->push_back('{');
    for (size_t i = 0; i < labels; ++i) {
      if (i > 0) out->push_back(',');
      out->append(family.label_names[i]);
      out->append("=\"");
      AppendLabelValue(sample.label_values[i], out);
      out->push_back('"');
    }
    if (!extra_name.empty()) {
      if (labels > 0) out->push_back(',');
      out->append(extra_name.data(), extra_name.size());
      out->append("=\"");
      AppendLabelValue(extra_value, out);
      out->push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(' ');
}

void AppendCount(uint64_t count, std::string* out) {
  char buffer[24];
  const std::to_chars_result r =
      std::to_chars(buffer, buffer + sizeof(buffer), count);
  out->append(buffer, r.ptr - buffer);
}

}  // namespace

void AppendExpositionValue(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out->append(value < 0 ? "-Inf" : "+Inf");
    return;
  }
  // Whole numbers below 10^16 (counts, most values) are what "%.16g" writes
  // of them: their digits, no exponent (and they fit an int64).
  if (std::fabs(value) < 1e16 && std::trunc(value) == value) {
    if (value == 0 && std::signbit(value)) {
      out->append("-0");
      return;
    }
    char buffer[24];
    const std::to_chars_result r = std::to_chars(
        buffer, buffer + sizeof(buffer), static_cast<int64_t>(value));
    out->append(buffer, r.ptr - buffer);
    return;
  }
  // As printf's "%.16g" in the C locale, whatever the process's locale.
  char buffer[32];
  const std::to_chars_result r = std::to_chars(
      buffer, buffer + sizeof(buffer), value, std::chars_format::general, 16);
  out->append(buffer, r.ptr - buffer);
}

void AppendExposition(const FamilySnapshot& family, std::string* out) {
  if (!family.help.empty()) {
    out->append("# HELP ");
    out->append(family.name);
    out->push_back(' ');
    AppendHelp(family.help, out);
    out->push_back('\n');
  }
  absl::StrAppend(out, "# TYPE ", family.name, " ", TypeName(family.type),
                  "\n");
  std::string bound;
  for (const MetricSample& sample : family.samples) {
    if (family.type != MetricType::kHistogram) {
      AppendHead(family, sample, {}, {}, {}, out);
      AppendExpositionValue(sample.value, out);
      out->push_back('\n');
      continue;
    }
    // Snapshot buckets are per-bucket counts; Prometheus wants them
    // cumulative. Every finite bound is written even when the sample
    // carries fewer counts, and +Inf always equals _count.
    AppendHead(family, sample, "_count", {}, {}, out);
    AppendCount(sample.count, out);
    out->push_back('\n');
    AppendHead(family, sample, "_sum", {}, {}, out);
    AppendExpositionValue(sample.value, out);
    out->push_back('\n');
    uint64_t cumulative = 0;
    for (size_t i = 0; i < family.bucket_bounds.size(); ++i) {
      if (i < sample.bucket_counts.size()) {
        cumulative += sample.bucket_counts[i];
      }
      bound.clear();
      AppendExpositionValue(family.bucket_bounds[i], &bound);
      AppendHead(family, sample, "_bucket", "le", bound, out);
      AppendCount(cumulative, out);
      out->push_back('\n');
    }
    AppendHead(family, sample, "_bucket", "le", "+Inf", out);
    AppendCount(sample.count, out);
    out->push_back('\n');
  }
}

}  // namespace kpistream
