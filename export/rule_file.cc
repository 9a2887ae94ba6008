#include "export/rule_file.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "export/promql.h"
#include "yaml-cpp/yaml.h"

namespace kpistream {
namespace {

// `text` as Go template text that renders as `text`: as it is without
// braces, else a string constant in an action, {{ "text" }} (Go's string
// escapes are PromQL's).
std::string GoTemplateLiteral(absl::string_view text) {
  if (!absl::StrContains(text, '{') && !absl::StrContains(text, '}')) {
    return std::string(text);
  }
  return absl::StrCat("{{ ", PromqlString(text), " }}");
}

// YAML 1.1 reads these plain scalars as booleans or null (case aside).
bool IsYamlKeyword(absl::string_view text) {
  static const char* const kKeywords[] = {"y",     "n",  "yes", "no",   "true",
                                          "false", "on", "off", "null", "~"};
  for (const char* keyword : kKeywords) {
    if (absl::EqualsIgnoreCase(text, keyword)) return true;
  }
  return false;
}

// A duration like 15m or 1d: a number, then letters.
bool IsDurationText(absl::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && absl::ascii_isdigit(text[digits])) ++digits;
  if (digits == 0 || digits == text.size()) return false;
  for (size_t i = digits; i < text.size(); ++i) {
    if (!absl::ascii_islower(text[i])) return false;
  }
  return true;
}

// True when YAML reads `text` back, unquoted, as the same string: a name
// of letters, digits and _ . : / - starting with a letter or _, that is not
// a YAML keyword; or a duration.
bool IsPlainSafe(absl::string_view text) {
  if (IsDurationText(text)) return true;
  if (text.empty() || IsYamlKeyword(text)) return false;
  if (!absl::ascii_isalpha(text[0]) && text[0] != '_') return false;
  for (const char c : text) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != ':' &&
        c != '/' && c != '-') {
      return false;
    }
  }
  return true;
}

void EmitTextMap(const TextMap& map, YAML::Emitter* out) {
  if (map.empty()) {
    *out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
    return;
  }
  *out << YAML::BeginMap;
  for (const auto& [key, value] : map) {
    *out << YAML::Key;
    EmitString(key, out);
    *out << YAML::Value;
    EmitString(value, out);
  }
  *out << YAML::EndMap;
}

void EmitRule(const Rule& rule, YAML::Emitter* out) {
  *out << YAML::BeginMap;
  if (!rule.record.empty()) {
    *out << YAML::Key << "record" << YAML::Value;
    EmitString(rule.record, out);
  } else {
    *out << YAML::Key << "alert" << YAML::Value;
    EmitString(rule.alert, out);
  }
  *out << YAML::Key << "expr" << YAML::Value;
  EmitPromql(rule.expr, out);
  if (rule.record.empty()) {
    *out << YAML::Key << "for" << YAML::Value
         << PromqlDuration(rule.for_duration);
  }
  if (!rule.labels.empty()) {
    *out << YAML::Key << "labels" << YAML::Value;
    EmitTextMap(rule.labels, out);
  }
  if (!rule.annotations.empty()) {
    *out << YAML::Key << "annotations" << YAML::Value;
    EmitTextMap(rule.annotations, out);
  }
  *out << YAML::EndMap;
}

std::string Finish(const YAML::Emitter& out) {
  return absl::StrCat(out.c_str(), "\n");
}

// FormatAlertValue as a Go template of Prometheus: whole numbers from
// kWholeFrom on (float literals: Go templates compare no int with a float).
// From 9999.5, not 10000: %.4g rounds those to 1e+04, and a value of 10000
// that promtool computes a few ulps below printed so, where its expected
// text said 10000 (a review).
constexpr char kValueTemplate[] =
    "{{ if or (ge $value 9999.5) (le $value -9999.5) }}"
    "{{ printf \"%.0f\" $value }}{{ else }}{{ printf \"%.4g\" $value }}"
    "{{ end }}";
constexpr double kWholeFrom = 9999.5;

}  // namespace

std::string FormatAlertValue(double value) {
  if (std::abs(value) >= kWholeFrom) return absl::StrFormat("%.0f", value);
  return absl::StrFormat("%.4g", value);
}

double AlertValueLastDigit(double value) {
  const double a = std::abs(value);
  if (a >= kWholeFrom) return 1;
  return std::pow(10.0, std::floor(std::log10(a)) - 3);
}

Rule Alert::ToRule(TextMap labels, TextMap annotations) const {
  Rule rule;
  rule.alert = name;
  rule.expr = expr;
  rule.for_duration = for_duration;
  rule.labels = {{"severity", severity}};
  rule.labels.insert(rule.labels.end(), labels.begin(), labels.end());
  rule.annotations = {{"summary", summary.Template()},
                      {"description", description.Template()}};
  rule.annotations.insert(rule.annotations.end(), annotations.begin(),
                          annotations.end());
  return rule;
}

AlertText& AlertText::Text(absl::string_view literal) {
  parts_.push_back({Kind::kText, std::string(literal), "", ""});
  return *this;
}

AlertText& AlertText::Label(absl::string_view name) {
  parts_.push_back({Kind::kLabel, std::string(name), "", ""});
  return *this;
}

AlertText& AlertText::LabelIfAny(absl::string_view before,
                                 absl::string_view name,
                                 absl::string_view after) {
  parts_.push_back({Kind::kLabelIfAny, std::string(name), std::string(before),
                    std::string(after)});
  return *this;
}

AlertText& AlertText::Value() {
  parts_.push_back({Kind::kValue, "", "", ""});
  return *this;
}

AlertText& AlertText::ValuePercent() {
  parts_.push_back({Kind::kValuePercent, "", "", ""});
  return *this;
}

std::string AlertText::Template() const {
  std::string out;
  for (const Part& part : parts_) {
    switch (part.kind) {
      case Kind::kText:
        out += GoTemplateLiteral(part.text);
        break;
      case Kind::kLabel:
        absl::StrAppend(&out, "{{ $labels.", part.text, " }}");
        break;
      case Kind::kLabelIfAny:
        absl::StrAppend(&out, "{{ with $labels.", part.text, " }}",
                        GoTemplateLiteral(part.before), "{{ . }}",
                        GoTemplateLiteral(part.after), "{{ end }}");
        break;
      case Kind::kValue:
        out += kValueTemplate;
        break;
      case Kind::kValuePercent:
        out += "{{ $value | humanizePercentage }}";
        break;
    }
  }
  return out;
}

std::string AlertText::Render(const std::map<std::string, std::string>& labels,
                              double value) const {
  std::string out;
  for (const Part& part : parts_) {
    switch (part.kind) {
      case Kind::kText:
        out += part.text;
        break;
      case Kind::kLabel:
        out += labels.at(part.text);
        break;
      case Kind::kLabelIfAny:
        if (auto it = labels.find(part.text);
            it != labels.end() && !it->second.empty()) {
          absl::StrAppend(&out, part.before, it->second, part.after);
        }
        break;
      case Kind::kValue:
        out += FormatAlertValue(value);
        break;
      case Kind::kValuePercent:  // Prometheus: fmt.Sprintf("%.4g%%", v*100)
        out += absl::StrFormat("%.4g%%", value * 100);
        break;
    }
  }
  return out;
}

void EmitString(absl::string_view text, YAML::Emitter* out) {
  const std::string s(text);
  if (IsPlainSafe(text)) {
    *out << s;
  } else {
    // Double-quoted, escapes and all, also across lines: a literal block
    // (`|`) read back with a line break at its end that the text did not
    // have, and with "\r\n" as "\n" (review: an objective's line break
    // failed the generated promtool test).
    *out << YAML::DoubleQuoted << s;
  }
}

void EmitPromql(absl::string_view expr, YAML::Emitter* out) {
  if (absl::StrContains(expr, '\n') && !absl::StrContains(expr, '\r')) {
    *out << YAML::Literal << std::string(expr);
  } else {
    EmitString(expr, out);
  }
}

void EmitRuleGroups(const std::vector<RuleGroup>& groups, YAML::Emitter* out) {
  if (groups.empty()) {
    *out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
    return;
  }
  *out << YAML::BeginSeq;
  for (const RuleGroup& group : groups) {
    *out << YAML::BeginMap << YAML::Key << "name" << YAML::Value;
    EmitString(group.name, out);
    if (group.interval > absl::ZeroDuration()) {
      *out << YAML::Key << "interval" << YAML::Value
           << PromqlDuration(group.interval);
    }
    *out << YAML::Key << "rules" << YAML::Value;
    if (group.rules.empty()) {
      *out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
    } else {
      *out << YAML::BeginSeq;
      for (const Rule& rule : group.rules) EmitRule(rule, out);
      *out << YAML::EndSeq;
    }
    *out << YAML::EndMap;
  }
  *out << YAML::EndSeq;
}

std::string RuleFileYaml(absl::string_view comment,
                         const std::vector<RuleGroup>& groups) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::Comment(std::string(comment)) << YAML::Newline;
  out << YAML::BeginMap << YAML::Key << "groups" << YAML::Value;
  EmitRuleGroups(groups, &out);
  out << YAML::EndMap;
  return Finish(out);
}

std::string RuleTestFileYaml(absl::string_view comment,
                             const std::vector<std::string>& rule_files,
                             const std::vector<RuleTest>& tests) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::Comment(std::string(comment)) << YAML::Newline;
  out << YAML::BeginMap << YAML::Key << "rule_files" << YAML::Value
      << YAML::BeginSeq;
  for (const std::string& file : rule_files) EmitString(file, &out);
  out << YAML::EndSeq << YAML::Key << "evaluation_interval" << YAML::Value
      << "1m" << YAML::Key << "tests" << YAML::Value;
  if (tests.empty()) out << YAML::Flow;
  out << YAML::BeginSeq;
  for (const RuleTest& test : tests) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value;
    EmitString(test.name, &out);
    out << YAML::Key << "interval" << YAML::Value
        << (test.interval > absl::ZeroDuration() ? PromqlDuration(test.interval)
                                                 : std::string("1m"))
        << YAML::Key << "input_series" << YAML::Value << YAML::BeginSeq;
    for (const InputSeries& s : test.input_series) {
      out << YAML::BeginMap << YAML::Key << "series" << YAML::Value;
      EmitString(s.series, &out);
      out << YAML::Key << "values" << YAML::Value;
      EmitString(s.values, &out);
      out << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::Key << "alert_rule_test" << YAML::Value
        << YAML::BeginSeq;
    for (const AlertTest& a : test.alert_tests) {
      out << YAML::BeginMap << YAML::Key << "eval_time" << YAML::Value
          << PromqlDuration(a.eval_time) << YAML::Key << "alertname"
          << YAML::Value;
      EmitString(a.alertname, &out);
      out << YAML::Key << "exp_alerts" << YAML::Value;
      if (a.firing.empty()) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const ExpectedAlert& e : a.firing) {
        out << YAML::BeginMap << YAML::Key << "exp_labels" << YAML::Value;
        EmitTextMap(e.labels, &out);
        out << YAML::Key << "exp_annotations" << YAML::Value;
        EmitTextMap(e.annotations, &out);
        out << YAML::EndMap;
      }
      out << YAML::EndSeq << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return Finish(out);
}

}  // namespace kpistream
