// Prometheus rule files and promtool test files as data, written with
// YAML::Emitter, so that whatever a user writes in the config (target
// names, filter values, objectives) is escaped as YAML needs; and the text
// of alert labels and annotations, which Prometheus expands as Go
// templates, with the user's text kept literal.
#ifndef KPISTREAM_EXPORT_RULE_FILE_H_
#define KPISTREAM_EXPORT_RULE_FILE_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace YAML {
class Emitter;
}

namespace kpistream {

// The text of an alert label or annotation: literal text (shown as it is,
// braces included), the alert's label values and its value. Template() is
// what the rule file holds, Render() what Prometheus makes of it (for the
// expectations of promtool tests).
class AlertText {
 public:
  AlertText() = default;
  explicit AlertText(absl::string_view literal) { Text(literal); }

  AlertText& Text(absl::string_view literal);
  // The value of the alert's label `name` ({{ $labels.name }}).
  AlertText& Label(absl::string_view name);
  // `before`, the value of label `name` and `after`, only where the alert
  // has that label (not empty): {{ with $labels.name }}...{{ end }}.
  AlertText& LabelIfAny(absl::string_view before, absl::string_view name,
                        absl::string_view after);
  // The alert's value as FormatAlertValue prints it.
  AlertText& Value();
  // The alert's value as a percentage ({{ $value | humanizePercentage }}).
  AlertText& ValuePercent();

  std::string Template() const;
  // `labels` must hold every label the text refers to with Label().
  std::string Render(const std::map<std::string, std::string>& labels,
                     double value) const;

 private:
  enum class Kind { kText, kLabel, kLabelIfAny, kValue, kValuePercent };
  struct Part {
    Kind kind;
    std::string text;           // the literal, or the label's name
    std::string before, after;  // kLabelIfAny's
  };
  std::vector<Part> parts_;
};

// An alert's value as its annotations print it (Value()): 4 significant
// digits (%.4g: 0.4669, 1234), whole from 9,999.5 on, either sign (%.0f:
// 48000 and 10000, where %.4g wrote 4.8e+04 and 1e+04).
std::string FormatAlertValue(double value);
// The place value of the last digit FormatAlertValue prints of a finite,
// non-zero `value` (0.0001 for 0.4669, 1 for 1234 and for 48000).
double AlertValueLastDigit(double value);

// Labels or annotations in the order they are written.
using TextMap = std::vector<std::pair<std::string, std::string>>;

// One rule: a recording rule (`record` set) or an alerting rule (`alert`
// set, with `for`, labels and annotations as Go templates).
struct Rule {
  std::string record;
  std::string alert;
  std::string expr;
  absl::Duration for_duration = absl::ZeroDuration();
  TextMap labels;
  TextMap annotations;
};

// An alerting rule as the generators write it: a severity label and a
// summary and description that may quote the alert's labels and value.
struct Alert {
  std::string name;
  std::string expr;
  absl::Duration for_duration;
  std::string severity;
  AlertText summary;
  AlertText description;

  // The rule: labels severity then `labels`, annotations summary and
  // description then `annotations`.
  Rule ToRule(TextMap labels, TextMap annotations) const;
};

struct RuleGroup {
  std::string name;
  absl::Duration interval = absl::ZeroDuration();  // zero: Prometheus' own
  std::vector<Rule> rules;
};

// Emits `groups` as the value of a rule file's (or a PrometheusRule's)
// `groups` key: a block sequence of groups, `[]` when empty.
void EmitRuleGroups(const std::vector<RuleGroup>& groups, YAML::Emitter* out);

// A Prometheus rule file: `comment` (lines, each becomes a # comment), then
// `groups:`.
std::string RuleFileYaml(absl::string_view comment,
                         const std::vector<RuleGroup>& groups);

// promtool test rules: series with their values ('0+60x20'), and at an
// evaluation time the alerts of a name that are firing (labels besides
// alertname, annotations; none: the alert is not firing).
struct InputSeries {
  std::string series;  // a PromQL series selector, e.g. from Selector
  std::string values;
};
struct ExpectedAlert {
  TextMap labels;
  TextMap annotations;
};
struct AlertTest {
  absl::Duration eval_time;
  std::string alertname;
  std::vector<ExpectedAlert> firing;
};
struct RuleTest {
  std::string name;
  std::vector<InputSeries> input_series;
  std::vector<AlertTest> alert_tests;
  // Between the input series' samples; zero: 1m. (Rules are evaluated
  // every 1m whatever it is.)
  absl::Duration interval = absl::ZeroDuration();
};

// A promtool test file reading `rule_files` (paths relative to it), with
// an evaluation interval of 1m and each test's series interval.
std::string RuleTestFileYaml(absl::string_view comment,
                             const std::vector<std::string>& rule_files,
                             const std::vector<RuleTest>& tests);

// Emits `text` as a YAML scalar: plain when YAML reads it back as the same
// string (names, durations), else double-quoted with YAML's escapes.
void EmitString(absl::string_view text, YAML::Emitter* out);
// The same for PromQL, where a line break more at the end changes nothing:
// a literal block when it spans lines (readable; YAML reads it back with
// one line break at its end).
void EmitPromql(absl::string_view expr, YAML::Emitter* out);

}  // namespace kpistream

#endif  // KPISTREAM_EXPORT_RULE_FILE_H_
