#include "config/config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "aggregate/channel_groups.h"
#include "aggregate/kpi_catalog.h"
#include "aggregate/label_limiter.h"
#include "aggregate/label_values.h"
#include "aggregate/utf8.h"
#include "yaml-cpp/yaml.h"

namespace kpistream {

namespace {
// Keys and messages quote what the user wrote, which may hold a line break
// or another control character: escaped, so that each error stays one line
// (an audit: a target name with a line break split its error in two) and a
// terminal is sent no control sequence. Other bytes as they are (UTF-8).
void AppendOneLine(std::string* out, absl::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(out, "\\x%02x", u);
    } else {
      out->push_back(c);
    }
  }
}
}  // namespace

std::string ConfigError::ToString(absl::string_view file) const {
  std::string out;
  AppendOneLine(&out, file);
  if (line > 0) absl::StrAppend(&out, ":", line);
  if (line > 0 && column > 0) absl::StrAppend(&out, ":", column);
  absl::StrAppend(&out, ": ");
  if (!key.empty()) {
    AppendOneLine(&out, key);
    out.append(": ");
  }
  if (warning) absl::StrAppend(&out, "warning: ");
  AppendOneLine(&out, message);
  return out;
}

absl::string_view InputFormatName(InputFormat format) {
  switch (format) {
    case InputFormat::kProtobuf:
      return "protobuf";
    case InputFormat::kJson:
      return "json";
    case InputFormat::kCombinedLog:
      return "combined_log";
  }
  return "protobuf";
}

std::string RepartitionTopic(const Config& config) {
  return config.kafka.group_id + "-repartition";
}

bool NeedsRepartition(const Config& config) {
  for (const InputConfig& input : config.inputs) {
    if (input.kind == InputKind::kEvents && input.key == InputKey::kAny) {
      return true;
    }
  }
  return false;
}

std::map<std::string, std::map<std::string, std::string>>
ProducerTopicProperties(const Config& config) {
  std::map<std::string, std::map<std::string, std::string>> out;
  const auto& user = config.kafka.properties;
  if (user.count("compression.type") || user.count("compression.codec")) {
    return out;
  }
  if (NeedsRepartition(config)) {
    out[RepartitionTopic(config)] = {{"compression.type", "none"}};
  }
  if (!config.changelog_output.topic.empty()) {
    out[config.changelog_output.topic] = {{"compression.type", "none"}};
  }
  return out;
}

namespace {

constexpr char kNoInputs[] = "at least one input topic is required";

// The longest duration any key takes. The engine adds durations to event
// times in int64 microseconds (about 292,000 years): longer ones overflow.
constexpr absl::Duration kMaxConfigDuration = absl::Hours(24 * 36500);

// Why `brokers` is no list of HOST[:PORT] separated by commas (librdkafka's
// bootstrap.servers, an optional PROTOCOL:// before each), or "". librdkafka
// takes anything and fails to resolve it 30 s later ("foo bar,," passed
// check-config: an audit).
std::string BadBrokerList(const std::string& brokers) {
  for (absl::string_view entry : absl::StrSplit(brokers, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::StrCat(
          "\"", brokers,
          "\" has an empty entry: give HOST:PORT[,HOST:PORT...]");
    }
    const size_t scheme = entry.find("://");
    if (scheme != absl::string_view::npos) entry.remove_prefix(scheme + 3);
    for (const char c : entry) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
        return absl::StrCat("\"", entry,
                            "\" holds a space: separate brokers with commas, "
                            "e.g. kafka-1:9092,kafka-2:9092");
      }
    }
    // The port: after the last colon, unless that is inside [IPv6].
    const size_t colon = entry.rfind(':');
    const size_t bracket = entry.rfind(']');
    if (colon == absl::string_view::npos ||
        (bracket != absl::string_view::npos && colon < bracket)) {
      continue;  // no port: librdkafka's 9092
    }
    int port = 0;
    if (colon == 0 || !absl::SimpleAtoi(entry.substr(colon + 1), &port) ||
        port < 1 || port > 65535) {
      return absl::StrCat("\"", entry,
                          "\" is not HOST:PORT (a port from 1 to 65535)");
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDurationString(absl::string_view text) {
  const std::string original(text);
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected a duration with a unit like 250ms, 30s, 5m, 1h, 1d, got \"",
        original, "\""));
  };
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return bad();
  if (text.front() == '-') {  // "-5m" has its unit: the sign is what is wrong
    return absl::InvalidArgumentError(
        absl::StrCat("a duration cannot be negative, got \"", original, "\""));
  }
  absl::Duration total = absl::ZeroDuration();
  while (!text.empty()) {
    size_t digits = 0;
    while (digits < text.size() && absl::ascii_isdigit(text[digits])) ++digits;
    if (digits == 0) return bad();
    int64_t n = 0;
    if (!absl::SimpleAtoi(text.substr(0, digits), &n)) return bad();
    text.remove_prefix(digits);
    size_t unit_len = 0;
    while (unit_len < text.size() && absl::ascii_isalpha(text[unit_len])) {
      ++unit_len;
    }
    const absl::string_view unit = text.substr(0, unit_len);
    text.remove_prefix(unit_len);
    // absl's constructors and arithmetic saturate (to an infinite
    // duration) where int64 arithmetic would overflow.
    if (unit == "ms") {
      total += absl::Milliseconds(n);
    } else if (unit == "s") {
      total += absl::Seconds(n);
    } else if (unit == "m") {
      total += absl::Minutes(n);
    } else if (unit == "h") {
      total += absl::Hours(n);
    } else if (unit == "d") {
      total += absl::Hours(n) * 24;
    } else {
      return bad();
    }
    if (total > kMaxConfigDuration) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", original, "\" is longer than 36500d (100 years)"));
    }
  }
  return total;
}

absl::StatusOr<int64_t> ParseByteSizeString(absl::string_view text) {
  const std::string original(text);
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected a size with a unit like 512KiB, 64MiB, 1GiB (or kB, MB, "
        "GB: powers of 1000), got \"",
        original, "\""));
  };
  text = absl::StripAsciiWhitespace(text);
  size_t digits = 0;
  while (digits < text.size() && absl::ascii_isdigit(text[digits])) ++digits;
  int64_t n = 0;
  if (digits == 0 || digits > 15 ||
      !absl::SimpleAtoi(text.substr(0, digits), &n)) {
    return bad();
  }
  const absl::string_view unit =
      absl::StripLeadingAsciiWhitespace(text.substr(digits));
  static const auto* const kUnits =
      new std::vector<std::pair<absl::string_view, int64_t>>{
          {"B", 1},
          {"kB", 1000},
          {"KB", 1000},
          {"MB", 1000 * 1000},
          {"GB", int64_t{1000} * 1000 * 1000},
          {"TB", int64_t{1000} * 1000 * 1000 * 1000},
          {"KiB", int64_t{1} << 10},
          {"MiB", int64_t{1} << 20},
          {"GiB", int64_t{1} << 30},
          {"TiB", int64_t{1} << 40}};
  for (const auto& [name, factor] : *kUnits) {
    if (unit != name) continue;
    constexpr int64_t kMax = int64_t{1} << 40;
    if (n > kMax / factor) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", original, "\" is more than 1TiB"));
    }
    return n * factor;
  }
  return bad();
}

std::string FormatByteSize(int64_t bytes) {
  static constexpr absl::string_view kUnits[] = {"B", "KiB", "MiB", "GiB",
                                                 "TiB"};
  int unit = 0;
  while (unit < 4 && bytes >= (int64_t{1} << (10 * (unit + 1)))) ++unit;
  const int64_t factor = int64_t{1} << (10 * unit);
  if (bytes % factor == 0) return absl::StrCat(bytes / factor, kUnits[unit]);
  return absl::StrCat(
      absl::StrFormat("%.1f", static_cast<double>(bytes) / factor),
      kUnits[unit]);
}

namespace {

// What is wrong with a path glob (a funnel step's page, an access log's
// skip_paths), which is matched whole against a page's path: the part of
// its URL after the host, without the query string and fragment. Empty if
// nothing. A glob with `?`, `#` or `;` (path parameters are left out of
// the path), a whole URL, or one starting with neither `/` nor `*` could
// never match (an audit: funnels of such steps read nothing, and
// check-config said OK).
std::string PathGlobProblem(absl::string_view glob) {
  if (absl::StrContains(glob, "://")) {
    return "is a URL: give its path (\"/cart\" for "
           "\"https://shop.example/cart\"), which is what is matched";
  }
  if (absl::StrContains(glob, "?")) {
    return "holds a ?: the query string is not matched, and * is the only "
           "wildcard (\"/product*\" for a shell's \"/product?\")";
  }
  if (absl::StrContains(glob, "#")) {
    return "holds a #: the fragment is not matched";
  }
  if (absl::StrContains(glob, ";")) {
    return "holds a ;: path parameters (\";jsessionid=...\") are not matched, "
           "give the path without them (\"/cart\")";
  }
  if (!absl::StartsWith(glob, "/") && !absl::StartsWith(glob, "*")) {
    return "must start with / (a path, e.g. \"/cart\") or *";
  }
  return "";
}

// The host of a listen address: empty (every interface), an IPv4 address
// in four decimal parts, or a host name. Checked here, not by the HTTP
// server at the bind: it took "999.1.1.1" for 231.1.1.1 and listened there
// unreachable, and refused "127.1" or "http://..." with a message of its
// own (exit 1 where a bad config exits 2; audit).
absl::Status CheckListenHost(absl::string_view host,
                             absl::string_view address) {
  if (host.empty()) return absl::OkStatus();
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad host in \"", address, "\": ", why,
        " (e.g. 127.0.0.1:9464, 0.0.0.0:9464, localhost:9464, or :9464 for "
        "every interface)"));
  };
  if (host.front() == '[' || absl::StrContains(host, ':')) {
    if (absl::StrContains(host, "//")) return bad("a URL, not a host");
    return bad(
        "IPv6 addresses are not supported (the HTTP server kpistream uses, "
        "civetweb, is built without IPv6 here); listen on :PORT or an IPv4 "
        "address");
  }
  if (host.find_first_not_of("0123456789.") == absl::string_view::npos) {
    const std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
    if (parts.size() != 4) return bad("an IPv4 address has four parts");
    for (absl::string_view part : parts) {
      int value = -1;
      if (part.empty() || part.size() > 3 || !absl::SimpleAtoi(part, &value) ||
          value > 255) {
        return bad("each part of an IPv4 address is 0..255");
      }
    }
    return absl::OkStatus();
  }
  // A host name: labels of letters, digits and hyphens (RFC 1123).
  if (host.size() > 253) return bad("a host name is at most 253 characters");
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' ||
        label.back() == '-' ||
        label.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
            absl::string_view::npos) {
      return bad("not an IPv4 address or a host name");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseListenAddress(absl::string_view address, std::string* host,
                                int* port) {
  // ":9464" (no host) listens on every interface, as Go exporters write it.
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected host:port (e.g. 127.0.0.1:9464, or :9464 for every "
        "interface), got \"",
        address, "\""));
  }
  int p = -1;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad port in \"", address, "\" (0..65535)"));
  }
  const absl::string_view h = address.substr(0, colon);
  if (absl::Status valid = CheckListenHost(h, address); !valid.ok()) {
    return valid;
  }
  if (host) *host = std::string(h);
  if (port) *port = p;
  return absl::OkStatus();
}

bool IsRateKpi(absl::string_view kpi) {
  const KpiDef* def = FindKpi(kpi);
  return def != nullptr && def->kind == KpiKind::kRate;
}

bool IsCumulativeKpi(absl::string_view kpi) {
  const KpiDef* def = FindKpi(kpi);
  return def != nullptr && def->cumulative();
}

std::vector<std::string> KpiFilterLabels(absl::string_view kpi) {
  const KpiDef* def = FindKpi(kpi);
  if (def == nullptr) return {};
  return {def->filter_labels().begin(), def->filter_labels().end()};
}

bool IsKnownKpi(absl::string_view kpi) { return FindKpi(kpi) != nullptr; }

namespace {

// A name with a ${VAR} that ParseConfig left as written (ConfigChecks::
// expand_variables off, for `kpistream rules`): not checked as a Kafka name,
// as what it becomes is not known.
bool Unexpanded(const std::string& name) {
  return name.find("${") != std::string::npos;
}

bool ValidTopic(const std::string& t) {
  if (t.empty() || t.size() > 249 || t == "." || t == "..") return false;
  for (char c : t) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

// Walks a YAML document, collecting every error with its key path and mark.
class Parser {
 public:
  Parser(ConfigResult* result, const ConfigChecks& checks)
      : result_(result), checks_(checks) {}

  void Error(const std::string& key, const YAML::Node& node,
             const std::string& message) {
    ConfigError e;
    e.key = key;
    e.message = message;
    if (node.IsDefined()) {
      YAML::Mark mark = node.Mark();
      // A key without a value: its value's mark is the next token's, lines
      // further on past comments or at the end of the file (an audit), so
      // the key's, and said so.
      if (node.IsNull()) {
        for (const auto& [value, key_mark] : null_values_) {
          if (!value.is(node)) continue;
          mark = key_mark;
          e.message = absl::StrCat("has no value (", message, ")");
          break;
        }
      }
      if (mark.line >= 0) {
        e.line = mark.line + 1;
        e.column = mark.column + 1;
      }
    }
    result_->errors.push_back(std::move(e));
  }

  // Notes the mapping values of `node`, at any depth, that are null (a key
  // without a value), with their keys' marks, for Error.
  void NoteNullValues(const YAML::Node& node) {
    if (node.IsSequence()) {
      for (const YAML::Node& item : node) NoteNullValues(item);
    } else if (node.IsMap()) {
      for (const auto& entry : node) {
        if (entry.second.IsNull()) {
          null_values_.emplace_back(entry.second, entry.first.Mark());
        } else {
          NoteNullValues(entry.second);
        }
      }
    }
  }

  // Valid, but likely to give numbers the user does not expect.
  void Warn(const std::string& key, const YAML::Node& node,
            const std::string& message) {
    Error(key, node, message);
    result_->warnings.push_back(std::move(result_->errors.back()));
    result_->errors.pop_back();
    result_->warnings.back().warning = true;
  }

  // Reports keys of `map` not in `known`. Returns false if `map` is not a map.
  // `what`: how to name an unknown key, e.g. "label ... for kpi x".
  bool CheckMap(const std::string& key, const YAML::Node& map,
                const std::set<std::string>& known,
                const std::string& what = "") {
    if (!map.IsMap()) {
      Error(key, map, "expected a mapping");
      return false;
    }
    for (const auto& entry : map) {
      const std::string name = entry.first.Scalar();
      if (known.count(name)) continue;
      std::string hint;
      for (const std::string& k : known) {
        if (EditDistance(k, name) <= 2)
          hint = absl::StrCat(" (did you mean \"", k, "\"?)");
      }
      Error(Join(key, name), entry.first,
            absl::StrCat("unknown key \"", name, "\"", what, hint,
                         "; known: ", absl::StrJoin(known, ", ")));
    }
    return true;
  }

  // Reports every key that a mapping of `node` (at any depth) repeats:
  // YAML parsers keep one of them and drop the other without a word (a
  // second `processing:` section appended to a config changed nothing).
  void CheckDuplicates(const std::string& key, const YAML::Node& node) {
    if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); ++i) {
        CheckDuplicates(absl::StrCat(key, "[", i, "]"), node[i]);
      }
      return;
    }
    if (!node.IsMap()) return;
    std::map<std::string, int> first_line;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) continue;
      const std::string name = entry.first.Scalar();
      const int line = entry.first.Mark().line + 1;
      auto [it, inserted] = first_line.emplace(name, line);
      if (!inserted) {
        Error(Join(key, name), entry.first,
              absl::StrCat("duplicate key \"", name, "\" (first at line ",
                           it->second,
                           "): only one of the two would be read; merge them"));
        continue;
      }
      CheckDuplicates(Join(key, name), entry.second);
    }
  }

  // Values that become Prometheus label values (target, funnel and step
  // names, filter values): any printable text, UTF-8 as Prometheus
  // requires, without control characters. The generators escape quotes,
  // backslashes and braces.
  void LabelValue(const std::string& key, const YAML::Node& node,
                  const std::string& value) {
    if (!IsPrintableUtf8(value)) {
      Error(key, node,
            "must be printable UTF-8 text without control characters (it "
            "is a Prometheus label value)");
      return;
    }
    // The dashboard puts it in panel titles, legends and queries, where
    // Grafana replaces $name, ${...}, [[...]] and {{...}} (an audit: a
    // name with "$site" showed the site variable's value, and its query
    // selected another target).
    // (${...} is also this config's variables: left to their expansion.)
    static const std::regex kGrafanaSyntax(R"(\$[A-Za-z_]|\[\[|\{\{)");
    if (std::regex_search(value, kGrafanaSyntax)) {
      Warn(key, node,
           absl::StrCat("\"", value,
                        "\" holds Grafana variable or template syntax ($name, "
                        "[[...]], {{...}}): the generated dashboard's "
                        "panels would show and select something else; the "
                        "rules and /metrics are not affected"));
    }
  }

  // A value of a label that no event can ever carry: channels, devices,
  // countries and currencies must be values the engine produces (issue: a
  // target on `channel: Emial` was "on track" forever; an allowlist of it
  // sent every Email session to "(other)").
  void CheckLabelValue(const std::string& where, const YAML::Node& at,
                       const std::string& label, const std::string& value) {
    if (label == "channel") {
      if (std::find(kChannelGroups.begin(), kChannelGroups.end(), value) ==
          kChannelGroups.end()) {
        Error(where, at,
              absl::StrCat("unknown channel \"", value, "\"; channels are: ",
                           absl::StrJoin(kChannelGroups, ", ")));
      }
    } else if (label == "device") {
      if (value != "desktop" && value != "mobile" && value != "tablet" &&
          value != kOther && value != kNotSet) {
        Error(where, at,
              absl::StrCat("unknown device \"", value,
                           "\"; devices are: desktop, mobile, tablet, ", kOther,
                           ", ", kNotSet));
      }
    } else if (label == "country") {
      if (value != kNotSet &&
          (value.size() != 2 || !absl::ascii_isupper(value[0]) ||
           !absl::ascii_isupper(value[1]))) {
        Error(where, at,
              absl::StrCat("country \"", value,
                           "\" is not an ISO 3166-1 alpha-2 code (two "
                           "capital letters, e.g. DE) or ",
                           kNotSet));
      }
    } else if (label == "source" || label == "medium") {
      // The engine lowercases utm_source and utm_medium (GA4 does): an
      // allowlist or filter value in capitals matches nothing (an audit:
      // `source: [Google]` sent every Google session to "(other)").
      if (value != absl::AsciiStrToLower(value)) {
        Error(
            where, at,
            absl::StrCat(label, " \"", value,
                         "\" never matches: the engine lowercases utm_", label,
                         " (write \"", absl::AsciiStrToLower(value), "\")"));
      }
    } else if (label == "landing_page") {
      // The label holds the page's path, without host, query or fragment.
      if (value != kNotSet && value != kOther &&
          (value.empty() || value[0] != '/' ||
           value.find_first_of("?#") != std::string::npos)) {
        Error(where, at,
              absl::StrCat("landing_page \"", value,
                           "\" never matches: the label is the page's path "
                           "(e.g. /pricing), without host, query or "
                           "fragment"));
      }
    } else if (label == "currency") {
      if (value != kNotSet &&
          (value.size() != 3 || !absl::ascii_isupper(value[0]) ||
           !absl::ascii_isupper(value[1]) || !absl::ascii_isupper(value[2]))) {
        Error(where, at,
              absl::StrCat("currency \"", value,
                           "\" is not an ISO 4217 code (three capital "
                           "letters, e.g. EUR)"));
      }
    }
  }

  // A target's filter values: values the engine produces (above), and that
  // its counters can carry. A value that metrics.label_allowlists leaves
  // out is counted as "(other)", so the target's PromQL would never see it
  // while the engine's own gauges did.
  void CheckFilterValues(
      const std::string& key, const YAML::Node& node,
      const std::map<std::string, std::string>& filter,
      const std::map<std::string, std::vector<std::string>>& allowlists) {
    for (const auto& [label, value] : filter) {
      const YAML::Node at = node[label] ? node[label] : node;
      const std::string where = key + "." + label;
      CheckLabelValue(where, at, label, value);
      auto list = allowlists.find(label);
      if (list != allowlists.end() && value != kNotSet && value != kOther &&
          std::find(list->second.begin(), list->second.end(), value) ==
              list->second.end()) {
        Error(
            where, at,
            absl::StrCat("\"", value, "\" is not in metrics.label_allowlists.",
                         label, ", so its sessions are counted as \"", kOther,
                         "\" and the target's alerts never see it"));
      }
    }
  }

  static std::string Join(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : absl::StrCat(parent, ".", key);
  }

  bool String(const std::string& key, const YAML::Node& node,
              std::string* out) {
    if (!node.IsScalar()) {
      Error(key, node, "expected a string");
      return false;
    }
    *out = node.Scalar();
    return true;
  }

  // True when `*out` was set (here and in the helpers below).
  bool Bool(const std::string& key, const YAML::Node& node, bool* out) {
    const std::string v =
        node.IsScalar() ? absl::AsciiStrToLower(node.Scalar()) : "";
    if (v == "true" || v == "yes" || v == "on") {
      *out = true;
    } else if (v == "false" || v == "no" || v == "off") {
      *out = false;
    } else {
      Error(key, node, "expected true or false");
      return false;
    }
    return true;
  }

  bool Int(const std::string& key, const YAML::Node& node, int lo, int hi,
           int* out) {
    int v = 0;
    if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &v)) {
      Error(key, node, "expected a whole number");
      return false;
    }
    if (v < lo || v > hi) {
      Error(key, node,
            absl::StrCat("must be between ", lo, " and ", hi, ", got ", v));
      return false;
    }
    *out = v;
    return true;
  }

  bool Duration(const std::string& key, const YAML::Node& node, bool allow_zero,
                absl::Duration* out) {
    if (!node.IsScalar()) {
      Error(key, node, "expected a duration like 30s, 5m, 1h, 1d");
      return false;
    }
    auto d = ParseDurationString(node.Scalar());
    if (!d.ok()) {
      Error(key, node, std::string(d.status().message()));
      return false;
    }
    if (*d < absl::ZeroDuration() ||
        (!allow_zero && *d == absl::ZeroDuration())) {
      Error(key, node,
            allow_zero ? "must not be negative" : "must be greater than 0");
      return false;
    }
    *out = *d;
    return true;
  }

  bool ByteSize(const std::string& key, const YAML::Node& node, int64_t lo,
                int64_t* out) {
    if (!node.IsScalar()) {
      Error(key, node, "expected a size like 64MiB, 512MB, 1GiB");
      return false;
    }
    auto bytes = ParseByteSizeString(node.Scalar());
    if (!bytes.ok()) {
      Error(key, node, std::string(bytes.status().message()));
      return false;
    }
    if (*bytes < lo) {
      Error(key, node,
            absl::StrCat("must be at least ", FormatByteSize(lo), ", got ",
                         node.Scalar()));
      return false;
    }
    *out = *bytes;
    return true;
  }

  template <typename E>
  bool Enum(const std::string& key, const YAML::Node& node,
            const std::vector<std::pair<std::string, E>>& values, E* out) {
    std::vector<std::string> names;
    for (const auto& [name, value] : values) {
      names.push_back(name);
      if (node.IsScalar() && node.Scalar() == name) {
        *out = value;
        return true;
      }
    }
    Error(key, node,
          absl::StrCat("expected one of ", absl::StrJoin(names, " | "),
                       node.IsScalar()
                           ? absl::StrCat(", got \"", node.Scalar(), "\"")
                           : ""));
    return false;
  }

  // A value `rules` kept with its ${VAR} (Unexpanded), not to be checked.
  bool KeptAsWritten(const std::string& value) const {
    return !checks_.expand_variables && Unexpanded(value);
  }

  // Expands ${VAR} from the environment; the value is never echoed.
  bool Expand(const std::string& key, const YAML::Node& node,
              std::string* value) {
    if (!checks_.expand_variables) return true;
    std::string out;
    size_t pos = 0;
    while (true) {
      size_t start = value->find("${", pos);
      if (start == std::string::npos) break;
      size_t end = value->find('}', start);
      if (end == std::string::npos) {
        Error(key, node, "unterminated ${ in value");
        return false;
      }
      const std::string var = value->substr(start + 2, end - start - 2);
      const char* env = std::getenv(var.c_str());
      // Shells set HOSTNAME without exporting it (Kubernetes exports the
      // pod's name): SPEC §8's `instance_id: ${HOSTNAME}` is the host's
      // name wherever the variable is not set.
      char host[256] = {};
      if (env == nullptr && var == "HOSTNAME" &&
          gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') {
        env = host;
      }
      if (env == nullptr) {
        Error(key, node,
              absl::StrCat("environment variable ", var, " is not set"));
        return false;
      }
      out.append(*value, pos, start - pos);
      out.append(env);
      pos = end + 1;
    }
    out.append(*value, pos, std::string::npos);
    if (out != *value && !out.empty() &&
        absl::StartsWith(key, "kafka.properties.")) {
      expansions_.push_back({*value, out});
      result_->expanded_secrets.push_back(out);
    }
    *value = std::move(out);
    return true;
  }

  // Each value a `${VAR}` gave a kafka.properties entry (where secrets
  // are), in errors' messages, as written (an audit: a secret wired to the
  // wrong key, `security.protocol: ${KPI_SECRET}`, was printed in
  // librdkafka's "Invalid value"). Other keys' values stay shown: a topic
  // name's error says what its variable made of it.
  void Redact(std::vector<ConfigError>* errors) const {
    for (ConfigError& e : *errors) {
      for (const auto& [written, value] : expansions_) {
        e.message = absl::StrReplaceAll(e.message, {{value, written}});
      }
    }
  }

  bool Topic(const std::string& key, const YAML::Node& node, std::string* out) {
    std::string t;
    if (!String(key, node, &t) || !Expand(key, node, &t)) return false;
    if (!ValidTopic(t) && !KeptAsWritten(t)) {
      Error(key, node,
            absl::StrCat("\"", t,
                         "\" is not a valid Kafka topic name "
                         "([a-zA-Z0-9._-], at most 249 characters)"));
      return false;
    }
    *out = t;
    return true;
  }

  static int EditDistance(const std::string& a, const std::string& b) {
    std::vector<int> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
    for (size_t i = 1; i <= a.size(); ++i) {
      int prev = row[0];
      row[0] = static_cast<int>(i);
      for (size_t j = 1; j <= b.size(); ++j) {
        int cur = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                           prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
        prev = cur;
      }
    }
    return row[b.size()];
  }

  // One mapping or list being parsed, with its dotted key ("processing",
  // "targets[2]"), so that a field's key path is written once.
  struct Fields {
    std::string key;
    YAML::Node node;

    std::string Key(absl::string_view name) const {
      return absl::StrCat(key, ".", name);
    }
    YAML::Node operator[](const char* name) const { return node[name]; }
    YAML::Node operator[](const std::string& name) const { return node[name]; }
    // The mapping at `name` ("outputs" -> "outputs.kpi").
    Fields Field(absl::string_view name) const {
      return {Key(name), node[std::string(name)]};
    }
    // The list's element `i` ("inputs" -> "inputs[3]").
    Fields Item(size_t i) const {
      return {absl::StrCat(key, "[", i, "]"), node[i]};
    }
  };

  bool CheckMap(const Fields& map, const std::set<std::string>& known,
                const std::string& what = "") {
    return CheckMap(map.key, map.node, known, what);
  }

  // Reports a value that is not a list: "expected a list of `what`".
  bool CheckList(const Fields& list, absl::string_view what) {
    if (list.node.IsSequence()) return true;
    Error(list.key, list.node, absl::StrCat("expected a list of ", what));
    return false;
  }

  // Appends the strings of the list `node` to `*out`; false (and `*out`
  // untouched) when `node` is not a list.
  bool StringList(const std::string& key, const YAML::Node& node,
                  absl::string_view what, std::vector<std::string>* out) {
    const Fields list{key, node};
    if (!CheckList(list, what)) return false;
    for (size_t i = 0; i < node.size(); ++i) {
      std::string value;
      const Fields item = list.Item(i);
      if (String(item.key, item.node, &value)) out->push_back(value);
    }
    return true;
  }

  // The optional field `name` of the mapping `m`: each does nothing when
  // the field is absent and returns true when it set `*out`.
  bool String(const Fields& m, const char* name, std::string* out) {
    return m[name] && String(m.Key(name), m[name], out);
  }
  bool Bool(const Fields& m, const char* name, bool* out) {
    return m[name] && Bool(m.Key(name), m[name], out);
  }
  bool Int(const Fields& m, const char* name, int lo, int hi, int* out) {
    return m[name] && Int(m.Key(name), m[name], lo, hi, out);
  }
  bool Duration(const Fields& m, const char* name, bool allow_zero,
                absl::Duration* out) {
    return m[name] && Duration(m.Key(name), m[name], allow_zero, out);
  }
  // A time between commits: a duration of at least 10ms. True when set and
  // valid.
  bool CommitInterval(const Fields& m, const char* name, absl::Duration* out) {
    if (!Duration(m, name, false, out)) return false;
    if (*out >= absl::Milliseconds(10)) return true;
    Error(
        m.Key(name), m[name],
        absl::StrCat("must be at least 10ms, got ", absl::FormatDuration(*out),
                     " (every commit is a Kafka transaction)"));
    return false;
  }
  bool ByteSize(const Fields& m, const char* name, int64_t lo, int64_t* out) {
    return m[name] && ByteSize(m.Key(name), m[name], lo, out);
  }
  template <typename E>
  bool Enum(const Fields& m, const char* name,
            const std::vector<std::pair<std::string, E>>& values, E* out) {
    return m[name] && Enum<E>(m.Key(name), m[name], values, out);
  }
  bool Topic(const Fields& m, const char* name, std::string* out) {
    return m[name] && Topic(m.Key(name), m[name], out);
  }

  // A top-level section: its key and its parser.
  struct Section {
    const char* name;
    // `name:` without a value keeps the defaults; otherwise it is an error
    // (a mapping or a list was expected).
    bool null_keeps_defaults;
    void (Parser::*parse)(const Fields& section, Config* config);
  };

  void Parse(const YAML::Node& root) {
    // Parsed in this order: a section may read the ones above it (funnels
    // and targets read goals).
    static constexpr Section kSections[] = {
        {"kafka", false, &Parser::ParseKafka},
        {"inputs", false, &Parser::ParseInputs},
        {"outputs", false, &Parser::ParseOutputs},
        {"processing", false, &Parser::ParseProcessing},
        {"sessions", false, &Parser::ParseSessions},
        {"metrics", false, &Parser::ParseMetrics},
        {"goals", false, &Parser::ParseGoals},
        {"bots", true, &Parser::ParseBots},
        {"channels", true, &Parser::ParseChannels},
        {"funnels", true, &Parser::ParseFunnels},
        {"targets", true, &Parser::ParseTargets},
        {"rules", true, &Parser::ParseRules},
    };
    Config& c = result_->config;
    if (root.IsNull()) {
      Error("", root, "the config is empty");
      return;
    }
    CheckDuplicates("", root);
    std::set<std::string> known;
    for (const Section& section : kSections) known.insert(section.name);
    if (!CheckMap("", root, known)) return;
    for (const Section& section : kSections) {
      const YAML::Node node = root[section.name];
      if (!node || (section.null_keeps_defaults && node.IsNull())) continue;
      (this->*section.parse)(Fields{section.name, node}, &c);
    }
    // Defaults made of other sections.
    if (c.changelog_output.topic.empty()) {
      c.changelog_output.topic = c.kafka.group_id + "-changelog";
    }
  }

  void ParseKafka(const Fields& k, Config* c) {
    if (!CheckMap(k, {"brokers", "group_id", "properties"})) return;
    KafkaConfig& kc = c->kafka;
    if (String(k, "brokers", &kc.brokers)) {
      Expand(k.Key("brokers"), k["brokers"], &kc.brokers);
      if (kc.brokers.empty()) {
        Error(k.Key("brokers"), k["brokers"], "must not be empty");
      } else if (const std::string why = BadBrokerList(kc.brokers);
                 !why.empty() && !KeptAsWritten(kc.brokers)) {
        Error(k.Key("brokers"), k["brokers"], why);
      }
    }
    if (String(k, "group_id", &kc.group_id) &&
        Expand(k.Key("group_id"), k["group_id"], &kc.group_id) &&
        checks_.expand_variables && Unexpanded(kc.group_id)) {
      // Validate() takes a "${" for one that `rules` keeps as written.
      Error(k.Key("group_id"), k["group_id"],
            "its environment variable's value holds \"${\": use letters, "
            "digits, '.', '_' and '-' (it names the group's internal topics)");
    }
    const YAML::Node p = k["properties"];
    if (!p || p.IsNull()) return;
    if (!p.IsMap()) {
      Error(k.Key("properties"), p,
            "expected a mapping of librdkafka properties");
      return;
    }
    for (const auto& entry : p) {
      const std::string name = entry.first.Scalar();
      const std::string key = absl::StrCat(k.Key("properties"), ".", name);
      if (!entry.second.IsScalar()) {
        Error(key, entry.second, "expected a scalar value");
        continue;
      }
      // Properties the engine sets from its own keys: given here, some
      // silently won over the config (bootstrap.servers, while every log
      // line named kafka.brokers; transaction.timeout.ms, past the check
      // of the commit interval against it), others were silently replaced
      // (group.id). Review.
      static const auto* const kOwned = new std::map<std::string, std::string>{
          {"bootstrap.servers", "kafka.brokers"},
          {"metadata.broker.list", "kafka.brokers"},
          {"group.id", "kafka.group_id"},
          {"group.instance.id", "processing.instance_id"},
          {"transactional.id", "processing.instance_id"},
          {"transaction.timeout.ms", "processing.transaction_timeout"},
          {"enable.auto.commit", "processing.guarantee"},
          {"enable.auto.offset.store", "processing.guarantee"},
          {"isolation.level", "processing.guarantee"},
          {"enable.idempotence", "processing.guarantee"}};
      if (auto owned = kOwned->find(name); owned != kOwned->end()) {
        Error(key, entry.first,
              absl::StrCat("is set by the engine from ", owned->second,
                           ": set that instead"));
        continue;
      }
      std::string value = entry.second.Scalar();
      if (!Expand(key, entry.second, &value)) continue;
      // Plugins (plugin.library.paths) register properties of their own,
      // known only once loaded: not loaded (nor checked) here.
      if (checks_.kafka_property && !p["plugin.library.paths"]) {
        if (std::string why = checks_.kafka_property(name, value);
            !why.empty()) {
          Error(key, entry.first, why);
          continue;
        }
      }
      kc.properties[name] = value;
    }
  }

  void ParseInputs(const Fields& list, Config* c) {
    if (!CheckList(list, "inputs")) return;
    std::set<std::string> seen;
    for (size_t i = 0; i < list.node.size(); ++i) {
      const Fields in = list.Item(i);
      if (!CheckMap(in, {"topic", "kind", "format", "site", "host", "key",
                         "skip_paths"})) {
        continue;
      }
      InputConfig input;
      if (!in["topic"]) {
        Error(in.Key("topic"), in.node, "is required");
      } else if (Topic(in, "topic", &input.topic) &&
                 !seen.insert(input.topic).second) {
        Error(in.Key("topic"), in["topic"],
              absl::StrCat("topic \"", input.topic, "\" is listed twice"));
      }
      Enum<InputKind>(
          in, "kind",
          {{"events", InputKind::kEvents}, {"ad_cost", InputKind::kAdCost}},
          &input.kind);
      Enum<InputFormat>(in, "format",
                        {{"protobuf", InputFormat::kProtobuf},
                         {"json", InputFormat::kJson},
                         {"combined_log", InputFormat::kCombinedLog}},
                        &input.format);
      String(in, "site", &input.site);
      String(in, "host", &input.host);
      if (in["key"]) {
        Enum<InputKey>(
            in, "key",
            {{"any", InputKey::kAny}, {"visitor_id", InputKey::kVisitorId}},
            &input.key);
        if (input.kind == InputKind::kAdCost) {
          Error(in.Key("key"), in["key"],
                "applies to events inputs only (ad cost is not per visitor "
                "and is counted where it lands)");
        } else if (input.format == InputFormat::kCombinedLog &&
                   input.key == InputKey::kVisitorId) {
          Error(in.Key("key"), in["key"],
                "combined_log lines cannot be keyed by their visitor_id (the "
                "engine derives it from the client address and user agent): "
                "use key: any");
        }
      }
      // An ad_cost input is never combined_log (one error below, not the
      // combined_log input's requirements and warnings too).
      const bool access_log = input.format == InputFormat::kCombinedLog &&
                              input.kind == InputKind::kEvents;
      if (access_log && input.site.empty()) {
        Error(in.Key("site"), in.node,
              "is required with format: combined_log (its lines carry no "
              "site)");
      } else if (!input.site.empty()) {
        // The site label of every series of its lines (an audit: a control
        // character passed, and all the input's traffic was "(other)"; so
        // did a site longer than a label value may be).
        LabelValue(in.Key("site"), in["site"], input.site);
        if (input.site.size() > kMaxLabelValueBytes) {
          Error(in.Key("site"), in["site"],
                absl::StrCat("is ", input.site.size(),
                             " bytes long; a site is a label value of at most ",
                             kMaxLabelValueBytes,
                             " bytes (a longer one is \"(other)\")"));
        }
      }
      if (input.kind == InputKind::kAdCost &&
          input.format == InputFormat::kCombinedLog) {
        Error(in.Key("format"), in["format"],
              "ad_cost inputs are protobuf or json");
      }
      // Keys that would be ignored are refused (review: a site on an
      // ad-cost input, or a host on a JSON one, did nothing, silently).
      if (input.kind == InputKind::kAdCost && in["site"]) {
        Error(in.Key("site"), in["site"],
              "an ad_cost input takes no site: each record names its "
              "site_id");
      }
      if (in["host"] && input.format != InputFormat::kCombinedLog) {
        Error(in.Key("host"), in["host"],
              "only a format: combined_log input takes a host (its lines' "
              "paths are on it); events carry their page URLs whole");
      } else if (!input.host.empty() &&
                 (input.host.find_first_of("/ \t?#@") != std::string::npos ||
                  !IsPrintableUtf8(input.host))) {
        // "https://www.example.com" made page URLs of
        // "https://https://www.example.com/p", host "https": every
        // referrer from the site itself was a referral.
        Error(in.Key("host"), in["host"],
              absl::StrCat("\"", input.host,
                           "\" is not a host name: give the site's host, as "
                           "in www.example.com (a port may follow: "
                           "www.example.com:8080), without a scheme or path"));
      }
      if (in["skip_paths"]) {
        if (!access_log) {
          Error(in.Key("skip_paths"), in["skip_paths"],
                "only a format: combined_log events input takes skip_paths "
                "(events say what they are)");
        } else if (StringList(in.Key("skip_paths"), in["skip_paths"],
                              "path globs, e.g. [\"/api/*\"]",
                              &input.skip_paths)) {
          for (const YAML::Node& glob : in["skip_paths"]) {
            if (!glob.IsScalar()) continue;
            // "*.json" as a funnel step's page may be (an audit: README
            // says they take the same globs).
            if (!absl::StartsWith(glob.Scalar(), "/") &&
                !absl::StartsWith(glob.Scalar(), "*")) {
              Error(in.Key("skip_paths"), glob,
                    "each is a path glob starting with / or *, e.g. "
                    "\"/api/*\" or \"*.json\"");
            } else if (const std::string problem =
                           PathGlobProblem(glob.Scalar());
                       !problem.empty()) {
              Error(in.Key("skip_paths"), glob,
                    absl::StrCat("\"", glob.Scalar(), "\" ", problem));
            }
          }
        }
      }
      if (access_log && input.host.empty() && !in["host"]) {
        Warn(in.key, in.node,
             "a combined_log input without host: referrers from the site "
             "itself cannot be told from other sites', so a session that "
             "starts on one of its pages (a visitor back after the "
             "inactivity timeout, a page opened in a new tab) counts as "
             "Referral, not Direct (unless the log is Apache's "
             "vhost_combined, whose lines name their host); give the site's "
             "host, as in host: www.example.com");
      }
      c->inputs.push_back(std::move(input));
    }
  }

  void ParseOutputs(const Fields& o, Config* c) {
    if (!CheckMap(o, {"sessions", "kpi", "deadletter", "changelog"})) return;
    ParseOutput(o.Field("sessions"), {"topic", "format", "enabled"},
                &c->sessions_output);
    ParseOutput(o.Field("kpi"), {"topic", "format", "window", "enabled"},
                &c->kpi_output);
    ParseOutput(o.Field("deadletter"), {"topic"}, &c->deadletter_output);
    ParseOutput(o.Field("changelog"), {"topic"}, &c->changelog_output);
  }

  // outputs.<name>: `known` are the keys this output takes.
  void ParseOutput(const Fields& n, const std::set<std::string>& known,
                   OutputConfig* out) {
    if (!n.node || !CheckMap(n, known)) return;
    Topic(n, "topic", &out->topic);
    Enum<OutputFormat>(
        n, "format",
        {{"protobuf", OutputFormat::kProtobuf}, {"json", OutputFormat::kJson}},
        &out->format);
    // KpiWindows aligns windows on whole seconds of event time.
    if (Duration(n, "window", false, &out->window) &&
        out->window % absl::Seconds(1) != absl::ZeroDuration()) {
      Error(n.Key("window"), n["window"],
            "a KPI window is whole seconds, at least 1s");
    }
    Bool(n, "enabled", &out->enabled);
  }

  void ParseProcessing(const Fields& p, Config* c) {
    if (!CheckMap(
            p, {"guarantee", "max_out_of_orderness", "allowed_lateness",
                "idle_partition_timeout", "dedup_horizon", "max_future_skew",
                "instance_id", "threads", "transaction_timeout",
                "commit_interval", "min_commit_interval", "max_commit_interval",
                "state_dir", "input_buffer"})) {
      return;
    }
    ProcessingConfig& pc = c->processing;
    Enum<Guarantee>(p, "guarantee",
                    {{"exactly_once", Guarantee::kExactlyOnce},
                     {"at_least_once", Guarantee::kAtLeastOnce}},
                    &pc.guarantee);
    Duration(p, "max_out_of_orderness", true, &pc.max_out_of_orderness);
    Duration(p, "allowed_lateness", true, &pc.allowed_lateness);
    Duration(p, "idle_partition_timeout", false, &pc.idle_partition_timeout);
    if (Duration(p, "dedup_horizon", true, &pc.dedup_horizon) &&
        pc.dedup_horizon > absl::ZeroDuration() &&
        pc.dedup_horizon < pc.max_out_of_orderness + pc.allowed_lateness) {
      // Two copies the allowed disorder may bring in either order would be
      // kept or dropped as they arrive: the copy remembered bounds only
      // the copies after it (an audit: with 1m, a copy read after a copy
      // 3 minutes later was dropped, in time order both were kept).
      Error(
          p.Key("dedup_horizon"), p["dedup_horizon"],
          absl::StrCat("must be 0s (no deduplication) or at least "
                       "processing.max_out_of_orderness + allowed_lateness (",
                       absl::FormatDuration(pc.max_out_of_orderness +
                                            pc.allowed_lateness),
                       "): copies within the allowed disorder would be kept or "
                       "dropped as they arrive"));
    }
    if (!p["dedup_horizon"]) {
      // The default (1h) covers the allowed disorder too, for the reason
      // above: a longer max_out_of_orderness + allowed_lateness raises it.
      pc.dedup_horizon = std::max(
          pc.dedup_horizon, pc.max_out_of_orderness + pc.allowed_lateness);
    }
    Duration(p, "max_future_skew", true, &pc.max_future_skew);
    if (String(p, "instance_id", &pc.instance_id)) {
      if (Expand(p.Key("instance_id"), p["instance_id"], &pc.instance_id) &&
          checks_.expand_variables &&
          pc.instance_id.find_first_not_of(
              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
              "0123456789._-") != std::string::npos) {
        Error(p.Key("instance_id"), p["instance_id"],
              "use letters, digits, '.', '_' and '-' (it becomes the Kafka "
              "transactional.id and group.instance.id)");
      }
    }
    if (String(p, "state_dir", &pc.state_dir)) {
      Expand(p.Key("state_dir"), p["state_dir"], &pc.state_dir);
      if (pc.state_dir.empty()) {
        Error(p.Key("state_dir"), p["state_dir"],
              "must name a directory (leave the key out for the default)");
      }
    }
    Int(p, "threads", 1, 256, &pc.threads);
    ByteSize(p, "input_buffer", int64_t{1} << 20, &pc.input_buffer);
    if (Duration(p, "transaction_timeout", false, &pc.transaction_timeout)) {
      // librdkafka's transaction.timeout.ms is an int of milliseconds: 25d
      // passed here and failed at the start with a wrapped number (an
      // audit).
      if (pc.transaction_timeout > absl::Milliseconds(INT32_MAX) ||
          pc.transaction_timeout < absl::Seconds(1)) {
        Error(p.Key("transaction_timeout"), p["transaction_timeout"],
              "must be from 1s to 24d (the Kafka client's "
              "transaction.timeout.ms is 1000 to 2^31-1 milliseconds)");
      } else if (pc.transaction_timeout > absl::Minutes(15)) {
        Warn(p.Key("transaction_timeout"), p["transaction_timeout"],
             "is longer than the brokers' default transaction.max.timeout.ms "
             "(15m): they refuse the transactional producers at the start "
             "unless it is raised on every broker");
      }
    }
    if (CommitInterval(p, "commit_interval", &pc.commit_interval)) {
      if (pc.commit_interval >= pc.transaction_timeout) {
        Error(p.Key("commit_interval"), p["commit_interval"],
              absl::StrCat(
                  "must be shorter than processing.transaction_timeout (",
                  absl::FormatDuration(pc.transaction_timeout),
                  "): the broker aborts a transaction open that long"));
      }
    } else if (!p["commit_interval"] && p["transaction_timeout"] &&
               pc.commit_interval >= pc.transaction_timeout) {
      Error(p.Key("transaction_timeout"), p["transaction_timeout"],
            absl::StrCat("must be longer than processing.commit_interval (",
                         absl::FormatDuration(pc.commit_interval),
                         ", its default): the broker would abort every "
                         "transaction before its commit"));
    }
    if (CommitInterval(p, "min_commit_interval", &pc.min_commit_interval)) {
      if (pc.min_commit_interval > pc.commit_interval) {
        Error(p.Key("min_commit_interval"), p["min_commit_interval"],
              absl::StrCat("must not be longer than "
                           "processing.commit_interval (",
                           absl::FormatDuration(pc.commit_interval),
                           "); equal to it, a thread commits every "
                           "commit_interval only"));
      }
    } else if (!p["min_commit_interval"]) {
      pc.min_commit_interval =
          std::min(pc.min_commit_interval, pc.commit_interval);
    }
    if (CommitInterval(p, "max_commit_interval", &pc.max_commit_interval)) {
      if (pc.max_commit_interval < pc.commit_interval) {
        Error(p.Key("max_commit_interval"), p["max_commit_interval"],
              absl::StrCat("must not be shorter than "
                           "processing.commit_interval (",
                           absl::FormatDuration(pc.commit_interval),
                           "); equal to it, a thread commits every "
                           "commit_interval however long it stays behind"));
      } else if (pc.max_commit_interval >= pc.transaction_timeout) {
        Error(p.Key("max_commit_interval"), p["max_commit_interval"],
              absl::StrCat(
                  "must be shorter than processing.transaction_timeout (",
                  absl::FormatDuration(pc.transaction_timeout),
                  "): the broker aborts a transaction open that long"));
      }
    } else if (!p["max_commit_interval"]) {
      pc.max_commit_interval = DefaultMaxCommitInterval(pc);
    }
  }

  void ParseSessions(const Fields& s, Config* c) {
    if (!CheckMap(s,
                  {"inactivity_timeout", "max_length", "engaged_min_duration",
                   "engaged_min_pageviews", "long_min_duration",
                   "split_at_midnight", "split_on_campaign_change",
                   "session_source", "visitor_retention", "timezone"})) {
      return;
    }
    SessionsConfig& sc = c->sessions;
    Duration(s, "inactivity_timeout", false, &sc.inactivity_timeout);
    Duration(s, "max_length", false, &sc.max_length);
    Duration(s, "engaged_min_duration", true, &sc.engaged_min_duration);
    Int(s, "engaged_min_pageviews", 1, 1000, &sc.engaged_min_pageviews);
    Duration(s, "long_min_duration", false, &sc.long_min_duration);
    Bool(s, "split_at_midnight", &sc.split_at_midnight);
    absl::TimeZone tz;
    if (String(s, "timezone", &sc.timezone)) {
      if (sc.timezone == "localtime") {
        // The host's own zone: the rules generated in CI and each
        // instance's midnights and periods would follow their machines'.
        Error(s.Key("timezone"), s["timezone"],
              "\"localtime\" is each machine's own zone (rules generated in "
              "CI and every instance could disagree on a day): give an IANA "
              "name like Europe/Berlin");
      } else if (absl::LoadTimeZone(sc.timezone, &tz)) {
        period_zone_ = tz;
      } else {
        Error(s.Key("timezone"), s["timezone"],
              absl::StrCat("unknown time zone \"", sc.timezone,
                           "\" (expected an IANA name like Europe/Berlin)"));
      }
    }
    // Kept as the day (UTC) of each visitor's last session start: a part
    // of a day was cut off (an audit: 12h was 0 days, and a visitor back
    // 41 minutes later, past midnight UTC, was new).
    if (Duration(s, "visitor_retention", false, &sc.visitor_retention) &&
        (sc.visitor_retention < absl::Hours(24) ||
         sc.visitor_retention % absl::Hours(24) != absl::ZeroDuration())) {
      Error(s.Key("visitor_retention"), s["visitor_retention"],
            "must be whole days, 1d or more (e.g. 400d): what is kept of a "
            "visitor is the day of its last session");
    }
    Bool(s, "split_on_campaign_change", &sc.split_on_campaign_change);
    Enum<SessionSource>(s, "session_source",
                        {{"engine", SessionSource::kEngine},
                         {"client", SessionSource::kClient}},
                        &sc.session_source);
    if (sc.max_length < sc.inactivity_timeout) {
      Error(s.Key("max_length"), s["max_length"] ? s["max_length"] : s.node,
            "must not be shorter than sessions.inactivity_timeout");
    }
  }

  void ParseMetrics(const Fields& m, Config* c) {
    if (!CheckMap(m, {"listen", "label_values_max", "label_combinations_max",
                      "label_allowlists", "final_scrape_wait"})) {
      return;
    }
    MetricsConfig& mc = c->metrics;
    if (const Fields a = m.Field("label_allowlists");
        a.node && !a.node.IsNull()) {
      static const std::set<std::string> kLabels = {
          "site",   "channel", "device",   "country",     "currency",
          "source", "medium",  "campaign", "landing_page"};
      if (CheckMap(a, kLabels)) {
        for (const auto& entry : a.node) {
          const std::string label = entry.first.Scalar();
          std::vector<std::string> values;
          if (StringList(a.Key(label), entry.second, "label values", &values)) {
            const Fields items{a.Key(label), entry.second};
            for (size_t j = 0;
                 values.size() == entry.second.size() && j < values.size();
                 ++j) {
              LabelValue(items.Item(j).key, items.Item(j).node, values[j]);
              CheckLabelValue(items.Item(j).key, items.Item(j).node, label,
                              values[j]);
            }
            std::vector<std::string>& list = mc.label_allowlists[label];
            list.insert(list.end(), values.begin(), values.end());
          }
        }
      }
    }
    if (String(m, "listen", &mc.listen) &&
        Expand(m.Key("listen"), m["listen"], &mc.listen) &&
        !KeptAsWritten(mc.listen)) {
      const absl::Status st = ParseListenAddress(mc.listen, nullptr, nullptr);
      if (!st.ok())
        Error(m.Key("listen"), m["listen"], std::string(st.message()));
    }
    Int(m, "label_values_max", 1, 10000, &mc.label_values_max);
    Int(m, "label_combinations_max", 1, 10000000, &mc.label_combinations_max);
    Duration(m, "final_scrape_wait", true, &mc.final_scrape_wait);
  }

  void ParseGoals(const Fields& g, Config* c) {
    if (!CheckList(g, "goal names")) return;
    c->goals.clear();
    std::set<std::string> seen;
    for (size_t i = 0; i < g.node.size(); ++i) {
      const Fields item = g.Item(i);
      std::string goal;
      if (!String(item.key, item.node, &goal)) continue;
      bool ok = !goal.empty();
      for (char ch : goal) {
        if (!(absl::ascii_islower(ch) || absl::ascii_isdigit(ch) || ch == '_'))
          ok = false;
      }
      if (!ok) {
        Error(item.key, item.node,
              absl::StrCat("goal names are [a-z0-9_]+, got \"", goal, "\""));
      } else if (!seen.insert(goal).second) {
        Error(item.key, item.node,
              absl::StrCat("goal \"", goal, "\" is listed twice"));
      } else {
        c->goals.push_back(goal);
      }
    }
    if (c->goals.empty() && g.node.size() == 0) {
      Error(g.key, g.node, "list at least one goal");
    }
  }

  void ParseBots(const Fields& b, Config* c) {
    if (!CheckMap(b, {"user_agent_patterns", "empty_user_agent"})) return;
    Enum<bool>(b, "empty_user_agent", {{"human", false}, {"bot", true}},
               &c->empty_user_agent_is_bot);
    if (b["user_agent_patterns"] &&
        StringList(b.Key("user_agent_patterns"), b["user_agent_patterns"],
                   "substrings", &c->bot_patterns)) {
      // Patterns are lower-cased substrings: one that ordinary browsers'
      // user agents contain (a space, "mozilla") made every visit a bot,
      // and check-config said OK (an audit).
      static constexpr const char* kBrowsers[] = {
          "mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 "
          "(khtml, like gecko) chrome/124.0.0.0 safari/537.36",
          "mozilla/5.0 (iphone; cpu iphone os 17_4 like mac os x) "
          "applewebkit/605.1.15 (khtml, like gecko) version/17.4 "
          "mobile/15e148 safari/604.1",
          "mozilla/5.0 (x11; linux x86_64; rv:125.0) gecko/20100101 "
          "firefox/125.0"};
      for (size_t i = 0; i < c->bot_patterns.size(); ++i) {
        const std::string pattern = absl::AsciiStrToLower(c->bot_patterns[i]);
        const std::string key =
            absl::StrCat(b.Key("user_agent_patterns"), "[", i, "]");
        const YAML::Node node = b["user_agent_patterns"][i];
        for (const char* browser : kBrowsers) {
          if (pattern.empty() || !absl::StrContains(browser, pattern)) continue;
          Error(key, node,
                absl::StrCat("\"", c->bot_patterns[i],
                             "\" is in ordinary browsers' user agents (\"",
                             browser,
                             "\"): every visit would be a bot; give text only "
                             "bots' user agents have"));
          break;
        }
      }
    }
  }

  void ParseChannels(const Fields& ch, Config* c) {
    if (!CheckMap(ch, {"search_sources", "social_sources", "video_sources",
                       "shopping_sources"})) {
      return;
    }
    for (auto [name, list] :
         std::vector<std::pair<const char*, std::vector<std::string>*>>{
             {"search_sources", &c->channels.search_sources},
             {"social_sources", &c->channels.social_sources},
             {"video_sources", &c->channels.video_sources},
             {"shopping_sources", &c->channels.shopping_sources}}) {
      if (ch[name]) {
        StringList(ch.Key(name), ch[name], "source names or domains", list);
      }
    }
  }

  void ParseFunnels(const Fields& f, Config* c) {
    if (!CheckList(f, "funnels")) return;
    std::set<std::string> names;
    for (size_t i = 0; i < f.node.size(); ++i) {
      const Fields fi = f.Item(i);
      if (!CheckMap(fi, {"name", "steps"})) continue;
      FunnelConfig funnel;
      if (!String(fi, "name", &funnel.name) || funnel.name.empty()) {
        Error(fi.Key("name"), fi.node, "every funnel needs a name");
      } else if (!names.insert(funnel.name).second) {
        Error(fi.Key("name"), fi["name"],
              absl::StrCat("funnel \"", funnel.name, "\" is listed twice"));
      } else {
        LabelValue(fi.Key("name"), fi["name"], funnel.name);
      }
      const Fields steps = fi.Field("steps");
      if (!steps.node || !steps.node.IsSequence() || steps.node.size() < 1 ||
          steps.node.size() > 32) {
        Error(steps.key, steps.node ? steps.node : fi.node,
              "expected a list of 1 to 32 steps");
        continue;
      }
      std::set<std::string> step_names;
      for (size_t j = 0; j < steps.node.size(); ++j) {
        const Fields sj = steps.Item(j);
        if (!CheckMap(sj, {"name", "page", "goal"})) continue;
        FunnelStepConfig step;
        String(sj, "page", &step.page);
        String(sj, "goal", &step.goal);
        if (step.page.empty() == step.goal.empty()) {
          Error(sj.key, sj.node,
                "a step has either page (a path glob) or goal");
        } else if (const std::string problem = PathGlobProblem(step.page);
                   !step.page.empty() && !problem.empty()) {
          Error(sj.Key("page"), sj["page"],
                absl::StrCat("page \"", step.page, "\" ", problem));
        } else if (std::any_of(step.page.begin(), step.page.end(),
                               [](char ch) { return ch & 0x80; })) {
          Warn(sj.Key("page"), sj["page"],
               absl::StrCat("page \"", step.page,
                            "\" is not ASCII: it is matched against the path "
                            "as sent, and browsers send paths "
                            "percent-encoded (\"/caf%C3%A9\" for \"/café\")"));
        }
        if (!step.goal.empty() && std::find(c->goals.begin(), c->goals.end(),
                                            step.goal) == c->goals.end()) {
          Error(
              sj.Key("goal"), sj["goal"],
              absl::StrCat("unknown goal \"", step.goal, "\" (not in goals)"));
        }
        if (!sj["name"]) {
          step.name = step.page.empty() ? step.goal : step.page;
          // Named by its page: that is the step label (an audit: a page of
          // invalid UTF-8 passed, and `rules` died writing the dashboard).
          if (!step.page.empty()) {
            LabelValue(sj.Key("page"), sj["page"], step.page);
          }
        } else if (String(sj, "name", &step.name)) {
          if (step.name.empty()) {
            Error(sj.Key("name"), sj["name"],
                  "a step's name is its series' step label and cannot be "
                  "empty (leave name out: the step is named by its page or "
                  "goal)");
          } else {
            LabelValue(sj.Key("name"), sj["name"], step.name);
          }
        }
        // The name is the step label of web_funnel_step_sessions_total:
        // two steps of one name would be two series of one label set,
        // which Prometheus cannot tell apart.
        if (!step.name.empty() && !step_names.insert(step.name).second) {
          const bool named = static_cast<bool>(sj["name"]);
          const char* field = named               ? "name"
                              : step.page.empty() ? "goal"
                                                  : "page";
          Error(sj.Key(field), sj[field],
                absl::StrCat("step \"", step.name,
                             "\" is listed twice in funnel \"", funnel.name,
                             "\" (its name is the series' step label)",
                             named ? "" : ": give one of them a name"));
        }
        funnel.steps.push_back(std::move(step));
      }
      c->funnels.push_back(std::move(funnel));
    }
  }

  void ParseRules(const Fields& r, Config* c) {
    if (!CheckMap(r, {"job", "runbook_base_url", "grafana_url",
                      "dead_letter_ratio"})) {
      return;
    }
    RulesConfig* rules = &c->rules;
    if (String(r, "job", &rules->job)) {
      if (rules->job.empty())
        Error(r.Key("job"), r["job"], "must not be empty");
      LabelValue(r.Key("job"), r["job"], rules->job);
    }
    for (const auto& [name, out] :
         {std::pair<const char*, std::string*>{"runbook_base_url",
                                               &rules->runbook_base_url},
          {"grafana_url", &rules->grafana_url}}) {
      if (!String(r, name, out)) continue;
      if (!IsPrintableUtf8(*out) || absl::StrContains(*out, ' ')) {
        Error(r.Key(name), r[name], "expected a URL or path, without spaces");
      }
    }
    while (absl::EndsWith(rules->grafana_url, "/"))
      rules->grafana_url.pop_back();
    if (const YAML::Node d = r["dead_letter_ratio"]) {
      if (!d.IsScalar() ||
          !absl::SimpleAtod(d.Scalar(), &rules->dead_letter_ratio) ||
          !(rules->dead_letter_ratio > 0 && rules->dead_letter_ratio < 1)) {
        rules->dead_letter_ratio = 0.1;
        Error(r.Key("dead_letter_ratio"), d,
              "expected a share of the consumed records in (0, 1), e.g. 0.1");
      }
    }
  }

  void ParseTargets(const Fields& list, Config* c) {
    if (!CheckList(list, "targets")) return;
    std::set<std::string> names;
    for (size_t i = 0; i < list.node.size(); ++i) {
      TargetConfig t;
      if (ParseTarget(list.Item(i), c->goals, c->metrics.label_allowlists,
                      &names, &t)) {
        c->targets.push_back(std::move(t));
      }
    }
  }

  // targets[i]; false when it has no known kpi (or is not a mapping).
  // `names`: the names of the targets before it.
  // `allowlists`: metrics.label_allowlists (parsed before the targets).
  bool ParseTarget(
      const Fields& n, const std::vector<std::string>& goals,
      const std::map<std::string, std::vector<std::string>>& allowlists,
      std::set<std::string>* names, TargetConfig* t) {
    if (!CheckMap(n, {"name", "objective", "kpi", "filter", "direction",
                      "value", "tolerance", "window", "period", "for",
                      "severity", "min_sessions"})) {
      return false;
    }
    if (!String(n, "name", &t->name) || t->name.empty()) {
      Error(n.Key("name"), n.node, "every target needs a name");
    } else if (!names->insert(t->name).second) {
      Error(n.Key("name"), n["name"],
            absl::StrCat("target \"", t->name, "\" is listed twice"));
    } else {
      LabelValue(n.Key("name"), n["name"], t->name);  // the target label
    }
    if (String(n, "objective", &t->objective) &&
        !IsPrintableUtf8(absl::StrReplaceAll(
            t->objective, {{"\n", " "}, {"\r", " "}, {"\t", " "}}))) {
      Error(n.Key("objective"), n["objective"],
            "must be printable UTF-8 text without control characters but "
            "line breaks and tabs (it is quoted in the alerts' annotations)");
    }
    if (!String(n, "kpi", &t->kpi)) {
      Error(n.Key("kpi"), n.node, "every target names a kpi");
      return false;
    }
    const KpiDef* kpi = FindKpi(t->kpi);
    if (kpi == nullptr) {
      Error(n.Key("kpi"), n["kpi"],
            absl::StrCat("unknown KPI \"", t->kpi, "\"; known: ", KpiNames()));
      return false;
    }
    ParseTargetFilter(n, goals, allowlists, t);
    t->direction = kpi->direction == Direction::kAtMost
                       ? TargetDirection::kAtMost
                       : TargetDirection::kAtLeast;
    Enum<TargetDirection>(n, "direction",
                          {{"at_least", TargetDirection::kAtLeast},
                           {"at_most", TargetDirection::kAtMost}},
                          &t->direction);
    ParseTargetValue(n, t);
    if (Duration(n, "window", false, &t->window) &&
        (t->window < absl::Minutes(1) ||
         t->window % absl::Seconds(1) != absl::ZeroDuration())) {
      Error(n.Key("window"), n["window"],
            "a rolling window is at least 1m, in whole seconds");
    } else if (t->window > absl::ZeroDuration() &&
               t->window < absl::Minutes(4)) {
      // The rules read it with increase() over the window: with fewer than
      // two scrapes in it (a 1m window, scraped every minute, as
      // Prometheus does by default) a count reads 0, an at-least target
      // alerting for good, and a ratio nothing (an audit).
      Warn(n.Key("window"), n["window"],
           "a window shorter than 4m holds too few scrapes for the alert "
           "rules' increase() at Prometheus' default 1m scrape interval (a "
           "count reads 0 when it holds fewer than two): give 4m or more, "
           "at least 4 scrape intervals");
    }
    if (const Fields p = n.Field("period"); p.node) ParsePeriod(p, t);
    if ((t->window > absl::ZeroDuration()) == (n["period"].IsDefined())) {
      Error(n.key, n.node,
            "a target has either a rolling window or a period, exactly one");
    }
    Duration(n, "for", true, &t->for_duration);
    if (String(n, "severity", &t->severity) && t->severity != "page" &&
        t->severity != "ticket" && t->severity != "info") {
      Error(n.Key("severity"), n["severity"], "expected page, ticket or info");
    }
    if (n["min_sessions"]) {
      int min = 0;  // also when it is not a number: the config is invalid
      Int(n, "min_sessions", 0, 100000000, &min);
      t->min_sessions = min;
      if (kpi != nullptr && !kpi->session_denominator_family()) {
        // Accepted (a config that sets it everywhere stays valid), but said:
        // a count or sum is judged whatever the number of sessions.
        Warn(n.Key("min_sessions"), n["min_sessions"],
             absl::StrCat("has no effect on kpi ", t->kpi,
                          " (it guards rates and means per session only: "
                          "a count or sum is judged however few sessions "
                          "there are)"));
      }
    }
    return true;
  }

  // targets[i].filter: labels of the kpi's counters, values the engine
  // produces; a kpi counted per goal needs filter.goal.
  void ParseTargetFilter(
      const Fields& n, const std::vector<std::string>& goals,
      const std::map<std::string, std::vector<std::string>>& allowlists,
      TargetConfig* t) {
    const std::vector<std::string> labels = KpiFilterLabels(t->kpi);
    if (const Fields f = n.Field("filter"); f.node && !f.node.IsNull()) {
      if (CheckMap(
              f, {labels.begin(), labels.end()},
              absl::StrCat(" (not a label of kpi ", t->kpi, "'s counters)"))) {
        for (const auto& entry : f.node) {
          const std::string label = entry.first.Scalar();
          if (std::find(labels.begin(), labels.end(), label) == labels.end()) {
            continue;
          }
          std::string value;
          if (String(f.Key(label), entry.second, &value)) {
            if (value.empty()) {
              // No series carries an empty label value (an event without
              // a site is invalid; other labels say "(not set)"): the
              // target would read nothing forever (an audit).
              Error(f.Key(label), entry.second,
                    absl::StrCat("must not be empty: no series has an empty ",
                                 label));
              continue;
            }
            LabelValue(f.Key(label), entry.second, value);
            t->filter[label] = value;
          }
        }
      }
    }
    // A family with a goal label counts each goal apart (and "(any)"):
    // summed over goals it would count sessions more than once.
    const bool needs_goal =
        std::find(labels.begin(), labels.end(), "goal") != labels.end();
    auto goal = t->filter.find("goal");
    const KpiDef* kpi = FindKpi(t->kpi);
    // "(any)": a session converted to any goal (SPEC §3), where the KPI
    // counts that (conversion_rate).
    const bool any_goal = goal != t->filter.end() &&
                          goal->second == kAnyGoalValue && kpi != nullptr &&
                          kpi->has_any_goal();
    if (goal != t->filter.end() && !any_goal &&
        std::find(goals.begin(), goals.end(), goal->second) == goals.end()) {
      Error(n.Key("filter.goal"), n["filter"]["goal"],
            absl::StrCat("unknown goal \"", goal->second, "\" (not in goals",
                         kpi != nullptr && kpi->has_any_goal()
                             ? absl::StrCat(", nor ", kAnyGoalValue)
                             : std::string(),
                         ")"));
    } else if (needs_goal && goal == t->filter.end()) {
      Error(n.Key("filter"), n["filter"] ? n["filter"] : n.node,
            absl::StrCat("kpi ", t->kpi, " needs filter.goal"));
    }
    CheckFilterValues(n.Key("filter"), n["filter"], t->filter, allowlists);
    if (kpi != nullptr && kpi->money() && t->filter.count("currency") == 0) {
      // Money of two currencies has no sum: the engine's gauges read NaN
      // then (TargetTracker), rolling alerts judge each currency apart.
      Warn(n.Key("filter"), n["filter"] ? n["filter"] : n.node,
           absl::StrCat(
               "kpi ", t->kpi,
               " without filter.currency: 10 EUR and 10 USD are not 20 of "
               "anything, so the engine's kpi_* gauges of this target read "
               "NaN while its ",
               n["period"].IsDefined()  // parsed after the filter
                   ? "period holds money of more than one currency (and "
                     "its alerts, which read them, stay silent)"
                   : "window holds money of more than one currency, while "
                     "its alerts and dashboard panels judge each currency "
                     "apart",
               "; give filter.currency (e.g. EUR) unless every order is in "
               "one currency"));
    }
  }

  // targets[i].value and .tolerance, after the direction.
  void ParseTargetValue(const Fields& n, TargetConfig* t) {
    const bool rate = IsRateKpi(t->kpi);
    if (!n["value"] || !n["value"].IsScalar() ||
        !absl::SimpleAtod(n["value"].Scalar(), &t->value) ||
        !std::isfinite(t->value)) {
      Error(n.Key("value"), n["value"] ? n["value"] : n.node,
            "expected a number");
      t->value = 0;
    } else if (t->value <= 0 || (rate && t->value > 1)) {
      Error(n.Key("value"), n["value"],
            rate ? "a rate target is in (0, 1]" : "must be greater than 0");
    }
    if (n["tolerance"]) {
      if (!n["tolerance"].IsScalar() ||
          !absl::SimpleAtod(n["tolerance"].Scalar(), &t->tolerance) ||
          !(t->tolerance >= 0 && t->tolerance < 1)) {  // NaN too
        t->tolerance = 0;
        Error(n.Key("tolerance"), n["tolerance"],
              "expected a relative tolerance in [0, 1), e.g. 0.02 for within "
              "2 %");
      }
    }
    if (rate && t->direction == TargetDirection::kAtMost && t->value > 0 &&
        t->value * (1 + t->tolerance) >= 1) {
      Error(n.Key(n["tolerance"] ? "tolerance" : "value"),
            n["tolerance"] ? n["tolerance"] : n["value"],
            "value x (1 + tolerance) reaches 1: a rate never exceeds it, so "
            "this at_most target could never be off target");
    }
  }

  // targets[].period: days of sessions.timezone, the end one included;
  // cumulative KPIs only.
  void ParsePeriod(const Fields& p, TargetConfig* t) {
    if (!CheckMap(p, {"start", "end"})) return;
    auto date = [&](const char* field, absl::Time* out) {
      std::string text, error;
      if (!String(p, field, &text) ||
          !absl::ParseTime("%Y-%m-%d", text, out, &error)) {
        Error(p.Key(field), p[field] ? p[field] : p.node,
              "expected a date YYYY-MM-DD");
        return false;
      }
      return true;
    };
    absl::Time start, end;
    if (date("start", &start) && date("end", &end)) {
      if (end < start) {  // equal: a period of one day
        Error(p.Key("end"), p["end"], "must not be before period.start");
      } else {
        // Midnights of the site's time zone, as its days (a day of 23 or
        // 25 hours across a DST change): a Berlin shop's "2025-10-27" was
        // 01:00 to 01:00 local, as UTC's day.
        const absl::TimeZone utc = absl::UTCTimeZone();
        t->period_start =
            absl::FromCivil(absl::ToCivilDay(start, utc), period_zone_);
        t->period_last_day = absl::ToCivilDay(end, utc);
        t->period_end = absl::FromCivil(t->period_last_day + 1, period_zone_);
      }
    }
    if (!IsCumulativeKpi(t->kpi)) {
      Error(p.key, p.node,
            absl::StrCat("a period (cumulative, paced) target needs a count "
                         "KPI, not ",
                         t->kpi, "; use window for rates and averages"));
    }
  }

 private:
  ConfigResult* result_;
  const ConfigChecks& checks_;
  std::vector<std::pair<YAML::Node, YAML::Mark>> null_values_;  // keys' marks
  // sessions.timezone, whose days a target's period dates are.
  absl::TimeZone period_zone_ = absl::UTCTimeZone();
  // (as written, as expanded) of each kafka.properties value a `${VAR}`
  // changed (Redact).
  std::vector<std::pair<std::string, std::string>> expansions_;
};

}  // namespace

absl::Duration DefaultMaxCommitInterval(const ProcessingConfig& processing) {
  return std::max(processing.commit_interval,
                  std::min(processing.commit_interval * 4,
                           processing.transaction_timeout / 2));
}

std::vector<ConfigError> Validate(const Config& config) {
  std::vector<ConfigError> errors;
  auto error = [&](std::string key, std::string message) {
    ConfigError e;
    e.key = std::move(key);
    e.message = std::move(message);
    errors.push_back(std::move(e));
  };
  if (config.kafka.group_id.empty()) {
    error("kafka.group_id", "must not be empty");
  }
  // The internal topics named after the group must be topic names (review:
  // "kpi:prod" passed check-config, then the start failed on the broker's
  // "Invalid topic", naming no key).
  std::vector<std::string> internal;
  if (config.changelog_output.topic == config.kafka.group_id + "-changelog") {
    internal.push_back(config.changelog_output.topic);
  }
  if (NeedsRepartition(config)) internal.push_back(RepartitionTopic(config));
  for (const std::string& topic : internal) {
    if (!config.kafka.group_id.empty() && !ValidTopic(topic) &&
        !Unexpanded(config.kafka.group_id)) {
      error("kafka.group_id",
            absl::StrCat("\"", topic,
                         "\", an internal topic named after the group, is not "
                         "a valid Kafka topic name ([a-zA-Z0-9._-], at most "
                         "249 characters): name the group so"));
      break;
    }
  }
  if (config.inputs.empty()) {
    error("inputs", kNoInputs);
  }
  if (NeedsRepartition(config)) {
    const std::string internal = RepartitionTopic(config);
    for (size_t i = 0; i < config.inputs.size(); ++i) {
      if (config.inputs[i].topic == internal) {
        error(absl::StrCat("inputs[", i, "].topic"),
              absl::StrCat("\"", internal,
                           "\" is the engine's internal repartition topic "
                           "(<kafka.group_id>-repartition): name another "
                           "input topic or group"));
      }
    }
  }
  // Every topic the engine writes is its own, never an input's nor another
  // output's (review: a dead-letter topic that was also the input read each
  // rejected record back, and dead-lettered it again, without end).
  std::vector<std::pair<std::string, std::string>> written;  // (key, topic)
  for (const auto& [key, output] :
       std::vector<std::pair<const char*, const OutputConfig*>>{
           {"outputs.sessions.topic", &config.sessions_output},
           {"outputs.kpi.topic", &config.kpi_output},
           {"outputs.deadletter.topic", &config.deadletter_output},
           {"outputs.changelog.topic", &config.changelog_output}}) {
    if (output->enabled && !output->topic.empty()) {
      written.emplace_back(key, output->topic);
    }
  }
  const size_t outputs = written.size();
  if (NeedsRepartition(config)) {  // an input's, checked above
    written.emplace_back("kafka.group_id", RepartitionTopic(config));
  }
  for (size_t w = 0; w < written.size(); ++w) {
    const auto& [key, topic] = written[w];
    for (size_t i = 0; i < config.inputs.size() && w < outputs; ++i) {
      if (config.inputs[i].topic == topic) {
        error(key, absl::StrCat("\"", topic, "\" is also inputs[", i,
                                "].topic: the engine would read what it "
                                "writes there back as input; name another "
                                "topic"));
      }
    }
    for (size_t v = 0; v < w; ++v) {
      if (written[v].second == topic) {
        error(key, absl::StrCat("\"", topic, "\" is also ", written[v].first,
                                ": each output needs a topic of its own"));
      }
    }
  }
  return errors;
}

namespace {

// The line (1-based) of a `---` that starts a second YAML document with
// something in it, or 0. A `---` at a line's start ends any scalar (YAML
// forbids it inside one), so lines tell documents apart.
int SecondDocumentLine(absl::string_view text) {
  bool content = false;  // the first document has something
  int marker = 0;        // the `---` after it: the second document's start
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    absl::string_view body = line;
    if (absl::StartsWith(line, "---") &&
        (line.size() == 3 || line[3] == ' ' || line[3] == '\t')) {
      if (content && marker == 0) marker = number;
      body = line.substr(3);  // the rest of its line is the document's
    }
    body = absl::StripAsciiWhitespace(body);
    if (body.empty() || body.front() == '#') continue;
    if (marker != 0) return marker;
    content = true;
  }
  return 0;
}

// The node at a dotted key ("inputs[1].topic"), or the deepest one on its
// path that exists (for an error's line). Walked with reset(): a YAML::Node
// assigned (`node = next`) writes into the node it refers to, and so into
// the tree: each lookup rewrote the config's tree, and the errors after the
// first pointed at wrong lines (an audit: outputs.deadletter.topic at the
// line of `sessions:`). Looked up through const references, which add no
// keys.
YAML::Node NodeAt(const YAML::Node& root, absl::string_view key) {
  YAML::Node node;
  node.reset(root);
  for (absl::string_view part : absl::StrSplit(key, '.', absl::SkipEmpty())) {
    size_t index = std::string::npos;
    const size_t bracket = part.find('[');
    if (bracket != absl::string_view::npos) {
      size_t i = 0;
      if (absl::SimpleAtoi(part.substr(bracket + 1, part.size() - bracket - 2),
                           &i)) {
        index = i;
      }
      part = part.substr(0, bracket);
    }
    const YAML::Node& here = node;
    if (!here.IsMap() || !here[std::string(part)]) return node;
    YAML::Node next;
    next.reset(here[std::string(part)]);
    if (index != std::string::npos) {
      const YAML::Node& list = next;
      if (!list.IsSequence() || index >= list.size()) return next;
      YAML::Node element;
      element.reset(list[index]);
      next.reset(element);
    }
    node.reset(next);
  }
  return node;
}

// Aliases make a YAML tree a graph: one inside what it names (`a: &a [*a]`)
// never ends, and aliases of aliases multiply (a "billion laughs"): every
// walk of the config crashed (its stack) or did not return (an audit). A
// config is far smaller than either bound. Sets `*at` where one is passed.
constexpr int kMaxConfigDepth = 64;
constexpr size_t kMaxConfigValues = 100'000;

std::string UnboundedTree(const YAML::Node& node, int depth, size_t* values,
                          YAML::Mark* at) {
  *at = node.Mark();
  if (depth > kMaxConfigDepth) {
    return absl::StrCat("the config nests deeper than ", kMaxConfigDepth,
                        " levels here (a YAML alias inside what its anchor "
                        "names?)");
  }
  if (++*values > kMaxConfigValues) {
    return absl::StrCat("the config has more than ", kMaxConfigValues,
                        " values (YAML aliases that repeat each other?)");
  }
  if (node.IsSequence() || node.IsMap()) {
    for (const auto& entry : node) {
      for (const YAML::Node& child :
           node.IsMap() ? std::vector<YAML::Node>{entry.first, entry.second}
                        : std::vector<YAML::Node>{entry}) {
        std::string why = UnboundedTree(child, depth + 1, values, at);
        if (!why.empty()) return why;
      }
    }
  }
  return "";
}

}  // namespace

ConfigResult ParseConfig(absl::string_view yaml_text,
                         const ConfigChecks& checks) {
  ConfigResult result;
  Parser parser(&result, checks);
  try {
    // One document: a second (after a `---`) was read by no one, and a key
    // in it silently ignored (an audit: `processing: {threads: 2}` there,
    // "OK", and the engine ran with 1 thread). Found in the text, not with
    // YAML::LoadAll, which never returns on some malformed input (the
    // config fuzzer: 14 bytes).
    if (const int line = SecondDocumentLine(yaml_text); line > 0) {
      ConfigError error;
      error.message =
          "a second YAML document starts here (a `---` line): a config is one "
          "document, and this one would be ignored; move its keys into the "
          "first";
      error.line = line;
      error.column = 1;
      result.errors.push_back(std::move(error));
    }
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    size_t values = 0;
    YAML::Mark at;
    if (std::string why = UnboundedTree(root, 0, &values, &at); !why.empty()) {
      ConfigError error;
      error.message = std::move(why);
      if (at.line >= 0) {
        error.line = at.line + 1;
        error.column = at.column + 1;
      }
      result.errors.push_back(std::move(error));
      return result;
    }
    parser.NoteNullValues(root);
    parser.Parse(root);
    // A config without inputs says so also when other keys have errors
    // (SPEC §7: every error at once; an audit: said only once the others
    // were mended). It depends on no other key.
    if (!result.errors.empty() && root.IsMap()) {
      const YAML::Node inputs = root["inputs"];
      if (!inputs.IsDefined() || inputs.IsNull() ||
          (inputs.IsSequence() && inputs.size() == 0)) {
        ConfigError e;
        e.key = "inputs";
        e.message = kNoInputs;
        if (inputs.IsDefined() && inputs.Mark().line >= 0) {
          e.line = inputs.Mark().line + 1;
          e.column = inputs.Mark().column + 1;
        }
        result.errors.push_back(std::move(e));
      }
    }
    // The checks of the whole config (topics and the group), also when
    // other keys have errors, unless one of the keys they read has (its
    // default would stand in for what the user meant): SPEC §7, every error
    // at once (an audit: a topic clash was said only after a typo in
    // `sessions` was mended).
    const bool read_keys_parsed = std::none_of(
        result.errors.begin(), result.errors.end(), [](const ConfigError& e) {
          return e.key.empty() || absl::StartsWith(e.key, "kafka") ||
                 absl::StartsWith(e.key, "inputs") ||
                 absl::StartsWith(e.key, "outputs");
        });
    if (read_keys_parsed && !root.IsNull()) {
      for (ConfigError& e : Validate(result.config)) {
        const YAML::Mark mark = NodeAt(root, e.key).Mark();
        if (mark.line >= 0) {
          e.line = mark.line + 1;
          e.column = mark.column + 1;
        }
        result.errors.push_back(std::move(e));
      }
    }
  } catch (const YAML::Exception& e) {
    ConfigError error;
    error.message = absl::StrCat("YAML syntax error: ", e.msg);
    if (e.mark.line >= 0) {
      error.line = e.mark.line + 1;
      error.column = e.mark.column + 1;
    }
    result.errors.push_back(std::move(error));
  }
  for (std::vector<ConfigError>* list : {&result.errors, &result.warnings}) {
    parser.Redact(list);
    std::stable_sort(list->begin(), list->end(), InFileOrder);
  }
  return result;
}

bool InFileOrder(const ConfigError& a, const ConfigError& b) {
  const int la = a.line > 0 ? a.line : INT32_MAX;
  const int lb = b.line > 0 ? b.line : INT32_MAX;
  return la != lb ? la < lb : a.column < b.column;
}

ConfigResult LoadConfigFile(const std::string& path,
                            const ConfigChecks& checks) {
  // A directory opens as an empty stream (review: "the config is empty").
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    ConfigResult result;
    result.unreadable = true;
    result.errors.push_back(
        {"", 0, 0, "cannot read config file: it is a directory, not a file"});
    return result;
  }
  std::ifstream in(path);
  if (!in) {
    ConfigResult result;
    result.unreadable = true;
    result.errors.push_back(
        {"", 0, 0,
         absl::StrCat("cannot read config file: ", std::strerror(errno))});
    return result;
  }
  // Read up to a bound: `/dev/zero` or a log given by mistake ran the
  // process out of memory (an audit).
  constexpr size_t kMaxConfigBytes = 16 << 20;
  std::string text;
  char chunk[1 << 16];
  while (text.size() <= kMaxConfigBytes &&
         (in.read(chunk, sizeof(chunk)) || in.gcount() > 0)) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
  }
  if (text.size() > kMaxConfigBytes) {
    ConfigResult result;
    result.unreadable = true;
    result.errors.push_back(
        {"", 0, 0,
         "cannot read config file: it is larger than 16 MiB (a config is a "
         "few KB; is this the right file?)"});
    return result;
  }
  return ParseConfig(text, checks);
}

}  // namespace kpistream
