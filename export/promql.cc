#include "export/promql.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kpistream {

std::string PromqlString(absl::string_view value) {
  std::string out = "\"";
  for (const char ch : value) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\x%02x", c);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
  return out;
}

Selector::Selector(absl::string_view metric) : metric_(metric) {}

Selector& Selector::Equal(absl::string_view label, absl::string_view value) {
  matchers_.push_back(absl::StrCat(label, "=", PromqlString(value)));
  return *this;
}

Selector& Selector::Regex(absl::string_view label, absl::string_view regex) {
  matchers_.push_back(absl::StrCat(label, "=~", PromqlString(regex)));
  return *this;
}

Selector& Selector::NotEqual(absl::string_view label, absl::string_view value) {
  matchers_.push_back(absl::StrCat(label, "!=", PromqlString(value)));
  return *this;
}

std::string Selector::str() const {
  if (matchers_.empty()) return metric_;
  return absl::StrCat(metric_, "{", absl::StrJoin(matchers_, ","), "}");
}

std::string PromqlDuration(absl::Duration d) {
  const absl::Duration day = absl::Hours(24);
  if (d > absl::ZeroDuration() && d % day == absl::ZeroDuration())
    return absl::StrCat(d / day, "d");
  if (d > absl::ZeroDuration() && d % absl::Hours(1) == absl::ZeroDuration())
    return absl::StrCat(d / absl::Hours(1), "h");
  if (d % absl::Minutes(1) == absl::ZeroDuration())
    return absl::StrCat(d / absl::Minutes(1), "m");
  if (d % absl::Seconds(1) == absl::ZeroDuration())
    return absl::StrCat(absl::ToInt64Seconds(d), "s");
  // Prometheus' smallest unit: `for: 250ms` was written as 0s (no wait at
  // all). Less than a millisecond more counts as one more.
  return absl::StrCat(
      absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1))), "ms");
}

std::string PromqlNumber(double v) { return absl::StrFormat("%.10g", v); }

std::string NonZeroDenominator(absl::string_view den) {
  return absl::StrCat("(", den, " > 0 or ", den, " * NaN)");
}

}  // namespace kpistream
