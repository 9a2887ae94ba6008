#include "config/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_join.h"
#include "aggregate/channel_groups.h"
#include "aggregate/kpi_catalog.h"
#include "aggregate/label_values.h"
#include "yaml-cpp/yaml.h"

namespace kpistream {

std::string ConfigError::ToString(absl::string_view file) const {
  std::string out(file);
  if (line > 0) absl::StrAppend(&out, ":", line);
  if (line > 0 && column > 0) absl::StrAppend(&out, ":", column);
  absl::StrAppend(&out, ": ");
  if (!key.empty()) absl::StrAppend(&out, key, ": ");
  absl::StrAppend(&out, message);
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

namespace {

// The longest duration any key takes. The engine adds durations to event
// times in int64 microseconds (about 292,000 years): longer ones overflow.
constexpr absl::Duration kMaxConfigDuration = absl::Hours(24 * 36500);

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

absl::Status ParseListenAddress(absl::string_view address, std::string* host,
                                int* port) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected host:port (e.g. 127.0.0.1:9464), got \"", address, "\""));
  }
  int p = -1;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad port in \"", address, "\" (0..65535)"));
  }
  if (host) *host = std::string(address.substr(0, colon));
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

// Walks a YAML document, collecting every error with its key path and mark.
class Parser {
 public:
  explicit Parser(ConfigResult* result) : result_(result) {}

  void Error(const std::string& key, const YAML::Node& node,
             const std::string& message) {
    ConfigError e;
    e.key = key;
    e.message = message;
    if (node.IsDefined()) {
      const YAML::Mark mark = node.Mark();
      if (mark.line >= 0) {
        e.line = mark.line + 1;
        e.column = mark.column + 1;
      }
    }
    result_->errors.push_back(std::move(e));
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
    }
  }

  // True when `text` is valid UTF-8 holding no control character (C0,
  // DEL, C1).
  static bool IsPrintableUtf8(absl::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
      const unsigned char c = static_cast<unsigned char>(text[i]);
      uint32_t cp = 0;
      size_t len = 0;
      if (c < 0x80) {
        cp = c, len = 1;
      } else if ((c & 0xe0) == 0xc0) {
        cp = c & 0x1f, len = 2;
      } else if ((c & 0xf0) == 0xe0) {
        cp = c & 0x0f, len = 3;
      } else if ((c & 0xf8) == 0xf0) {
        cp = c & 0x07, len = 4;
      } else {
        return false;
      }
      if (i + len > text.size()) return false;
      for (size_t j = 1; j < len; ++j) {
        const unsigned char cc = static_cast<unsigned char>(text[i + j]);
        if ((cc & 0xc0) != 0x80) return false;
        cp = (cp << 6) | (cc & 0x3f);
      }
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return false;  // overlong, out of range or a surrogate
      if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return false;
      i += len;
    }
    return true;
  }

  // A filter value that no event can ever carry gives a target that never
  // has data (issue: `channel: Emial` was "on track" forever): channels,
  // devices, countries and currencies must be values the engine produces.
  void CheckFilterValues(const std::string& key, const YAML::Node& node,
                         const std::map<std::string, std::string>& filter) {
    for (const auto& [label, value] : filter) {
      const YAML::Node at = node[label] ? node[label] : node;
      const std::string where = key + "." + label;
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
                             "\"; devices are: desktop, mobile, tablet, ",
                             kOther, ", ", kNotSet));
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
      } else if (label == "currency") {
        if (value != kNotSet &&
            (value.size() != 3 || !absl::ascii_isupper(value[0]) ||
             !absl::ascii_isupper(value[1]) ||
             !absl::ascii_isupper(value[2]))) {
          Error(where, at,
                absl::StrCat("currency \"", value,
                             "\" is not an ISO 4217 code (three capital "
                             "letters, e.g. EUR)"));
        }
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

  void Bool(const std::string& key, const YAML::Node& node, bool* out) {
    const std::string v =
        node.IsScalar() ? absl::AsciiStrToLower(node.Scalar()) : "";
    if (v == "true" || v == "yes" || v == "on") {
      *out = true;
    } else if (v == "false" || v == "no" || v == "off") {
      *out = false;
    } else {
      Error(key, node, "expected true or false");
    }
  }

  void Int(const std::string& key, const YAML::Node& node, int lo, int hi,
           int* out) {
    int v = 0;
    if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &v)) {
      Error(key, node, "expected a whole number");
      return;
    }
    if (v < lo || v > hi) {
      Error(key, node,
            absl::StrCat("must be between ", lo, " and ", hi, ", got ", v));
      return;
    }
    *out = v;
  }

  // True when `*out` was set.
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

  template <typename E>
  void Enum(const std::string& key, const YAML::Node& node,
            const std::vector<std::pair<std::string, E>>& values, E* out) {
    std::vector<std::string> names;
    for (const auto& [name, value] : values) {
      names.push_back(name);
      if (node.IsScalar() && node.Scalar() == name) {
        *out = value;
        return;
      }
    }
    Error(key, node,
          absl::StrCat("expected one of ", absl::StrJoin(names, " | "),
                       node.IsScalar()
                           ? absl::StrCat(", got \"", node.Scalar(), "\"")
                           : ""));
  }

  // Expands ${VAR} from the environment; the value is never echoed.
  bool Expand(const std::string& key, const YAML::Node& node,
              std::string* value) {
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
    *value = std::move(out);
    return true;
  }

  static bool ValidTopic(const std::string& t) {
    if (t.empty() || t.size() > 249 || t == "." || t == "..") return false;
    for (char c : t) {
      if (!(absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'))
        return false;
    }
    return true;
  }

  void Topic(const std::string& key, const YAML::Node& node, std::string* out) {
    std::string t;
    if (!String(key, node, &t)) return;
    if (!ValidTopic(t)) {
      Error(key, node,
            absl::StrCat("\"", t,
                         "\" is not a valid Kafka topic name "
                         "([a-zA-Z0-9._-], at most 249 characters)"));
      return;
    }
    *out = t;
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

  void Parse(const YAML::Node& root) {
    Config& c = result_->config;
    if (root.IsNull()) {
      Error("", root, "the config is empty");
      return;
    }
    if (!CheckMap(
            "", root,
            {"kafka", "inputs", "outputs", "processing", "sessions", "metrics",
             "goals", "funnels", "targets", "channels", "bots", "rules"})) {
      return;
    }
    if (const YAML::Node k = root["kafka"]) {
      if (CheckMap("kafka", k, {"brokers", "group_id", "properties"})) {
        if (k["brokers"] &&
            String("kafka.brokers", k["brokers"], &c.kafka.brokers)) {
          Expand("kafka.brokers", k["brokers"], &c.kafka.brokers);
          if (c.kafka.brokers.empty())
            Error("kafka.brokers", k["brokers"], "must not be empty");
        }
        if (k["group_id"]) {
          String("kafka.group_id", k["group_id"], &c.kafka.group_id);
        }
        if (const YAML::Node p = k["properties"]) {
          if (p.IsNull()) {
          } else if (!p.IsMap()) {
            Error("kafka.properties", p,
                  "expected a mapping of librdkafka properties");
          } else {
            for (const auto& entry : p) {
              const std::string name = entry.first.Scalar();
              const std::string key = absl::StrCat("kafka.properties.", name);
              std::string value;
              if (!entry.second.IsScalar()) {
                Error(key, entry.second, "expected a scalar value");
                continue;
              }
              value = entry.second.Scalar();
              if (Expand(key, entry.second, &value))
                c.kafka.properties[name] = value;
            }
          }
        }
      }
    }
    if (const YAML::Node inputs = root["inputs"]) {
      if (!inputs.IsSequence()) {
        Error("inputs", inputs, "expected a list of inputs");
      } else {
        std::set<std::string> seen;
        for (size_t i = 0; i < inputs.size(); ++i) {
          const std::string key = absl::StrCat("inputs[", i, "]");
          const YAML::Node in = inputs[i];
          if (!CheckMap(key, in,
                        {"topic", "kind", "format", "site", "host", "key"}))
            continue;
          InputConfig input;
          if (!in["topic"]) {
            Error(key + ".topic", in, "is required");
          } else {
            Topic(key + ".topic", in["topic"], &input.topic);
            if (!input.topic.empty() && !seen.insert(input.topic).second) {
              Error(
                  key + ".topic", in["topic"],
                  absl::StrCat("topic \"", input.topic, "\" is listed twice"));
            }
          }
          if (in["kind"]) {
            Enum<InputKind>(key + ".kind", in["kind"],
                            {{"events", InputKind::kEvents},
                             {"ad_cost", InputKind::kAdCost}},
                            &input.kind);
          }
          if (in["format"]) {
            Enum<InputFormat>(key + ".format", in["format"],
                              {{"protobuf", InputFormat::kProtobuf},
                               {"json", InputFormat::kJson},
                               {"combined_log", InputFormat::kCombinedLog}},
                              &input.format);
          }
          if (in["site"]) String(key + ".site", in["site"], &input.site);
          if (in["host"]) String(key + ".host", in["host"], &input.host);
          if (in["key"]) {
            Enum<InputKey>(key + ".key", in["key"],
                           {{"any", InputKey::kAny},
                            {"visitor_id", InputKey::kVisitorId}},
                           &input.key);
            if (input.kind == InputKind::kAdCost) {
              Error(key + ".key", in["key"],
                    "applies to events inputs only (ad cost is not per "
                    "visitor and is counted where it lands)");
            } else if (input.format == InputFormat::kCombinedLog &&
                       input.key == InputKey::kVisitorId) {
              Error(key + ".key", in["key"],
                    "combined_log lines cannot be keyed by their visitor_id "
                    "(the engine derives it from the client address and user "
                    "agent): use key: any");
            }
          }
          if (input.format == InputFormat::kCombinedLog && input.site.empty()) {
            Error(key + ".site", in,
                  "is required with format: combined_log (its lines carry no "
                  "site)");
          }
          if (input.kind == InputKind::kAdCost &&
              input.format == InputFormat::kCombinedLog) {
            Error(key + ".format", in["format"],
                  "ad_cost inputs are protobuf or json");
          }
          c.inputs.push_back(std::move(input));
        }
      }
    }
    if (const YAML::Node o = root["outputs"]) {
      if (CheckMap("outputs", o,
                   {"sessions", "kpi", "deadletter", "changelog"})) {
        auto output = [&](const char* name, OutputConfig* out,
                          std::set<std::string> keys) {
          const YAML::Node n = o[name];
          if (!n) return;
          const std::string key = absl::StrCat("outputs.", name);
          if (!CheckMap(key, n, keys)) return;
          if (n["topic"]) Topic(key + ".topic", n["topic"], &out->topic);
          if (n["format"]) {
            Enum<OutputFormat>(key + ".format", n["format"],
                               {{"protobuf", OutputFormat::kProtobuf},
                                {"json", OutputFormat::kJson}},
                               &out->format);
          }
          if (n["window"]) {
            Duration(key + ".window", n["window"], false, &out->window);
            // KpiWindows aligns windows on whole seconds of event time.
            if (out->window % absl::Seconds(1) != absl::ZeroDuration()) {
              Error(key + ".window", n["window"],
                    "a KPI window is whole seconds, at least 1s");
            }
          }
          if (n["enabled"]) Bool(key + ".enabled", n["enabled"], &out->enabled);
        };
        output("sessions", &c.sessions_output, {"topic", "format", "enabled"});
        output("kpi", &c.kpi_output, {"topic", "format", "window", "enabled"});
        output("deadletter", &c.deadletter_output, {"topic"});
        output("changelog", &c.changelog_output, {"topic"});
      }
    }
    if (c.changelog_output.topic.empty()) {
      c.changelog_output.topic = c.kafka.group_id + "-changelog";
    }
    if (const YAML::Node p = root["processing"]) {
      if (CheckMap(
              "processing", p,
              {"guarantee", "max_out_of_orderness", "allowed_lateness",
               "idle_partition_timeout", "dedup_horizon", "max_future_skew",
               "instance_id", "threads", "transaction_timeout",
               "commit_interval", "state_dir"})) {
        ProcessingConfig& pc = c.processing;
        if (p["guarantee"]) {
          Enum<Guarantee>("processing.guarantee", p["guarantee"],
                          {{"exactly_once", Guarantee::kExactlyOnce},
                           {"at_least_once", Guarantee::kAtLeastOnce}},
                          &pc.guarantee);
        }
        if (p["max_out_of_orderness"])
          Duration("processing.max_out_of_orderness", p["max_out_of_orderness"],
                   true, &pc.max_out_of_orderness);
        if (p["allowed_lateness"])
          Duration("processing.allowed_lateness", p["allowed_lateness"], true,
                   &pc.allowed_lateness);
        if (p["idle_partition_timeout"])
          Duration("processing.idle_partition_timeout",
                   p["idle_partition_timeout"], false,
                   &pc.idle_partition_timeout);
        if (p["dedup_horizon"])
          Duration("processing.dedup_horizon", p["dedup_horizon"], true,
                   &pc.dedup_horizon);
        if (p["max_future_skew"])
          Duration("processing.max_future_skew", p["max_future_skew"], true,
                   &pc.max_future_skew);
        if (p["instance_id"] &&
            String("processing.instance_id", p["instance_id"],
                   &pc.instance_id)) {
          Expand("processing.instance_id", p["instance_id"], &pc.instance_id);
          if (pc.instance_id.find_first_not_of(
                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789._-") != std::string::npos) {
            Error("processing.instance_id", p["instance_id"],
                  "use letters, digits, '.', '_' and '-' (it becomes the "
                  "Kafka transactional.id and group.instance.id)");
          }
        }
        if (p["state_dir"] &&
            String("processing.state_dir", p["state_dir"], &pc.state_dir)) {
          Expand("processing.state_dir", p["state_dir"], &pc.state_dir);
          if (pc.state_dir.empty()) {
            Error("processing.state_dir", p["state_dir"],
                  "must name a directory (leave the key out for the "
                  "default)");
          }
        }
        if (p["threads"])
          Int("processing.threads", p["threads"], 1, 256, &pc.threads);
        if (p["transaction_timeout"])
          Duration("processing.transaction_timeout", p["transaction_timeout"],
                   false, &pc.transaction_timeout);
        if (p["commit_interval"] &&
            Duration("processing.commit_interval", p["commit_interval"],
                     false, &pc.commit_interval)) {
          if (pc.commit_interval < absl::Milliseconds(10)) {
            Error("processing.commit_interval", p["commit_interval"],
                  absl::StrCat("must be at least 10ms, got ",
                               absl::FormatDuration(pc.commit_interval),
                               " (every commit is a Kafka transaction)"));
          } else if (pc.commit_interval >= pc.transaction_timeout) {
            Error("processing.commit_interval", p["commit_interval"],
                  absl::StrCat(
                      "must be shorter than processing.transaction_timeout (",
                      absl::FormatDuration(pc.transaction_timeout),
                      "): the broker aborts a transaction open that long"));
          }
        }
      }
    }
    if (const YAML::Node s = root["sessions"]) {
      if (CheckMap("sessions", s,
                   {"inactivity_timeout", "max_length", "engaged_min_duration",
                    "engaged_min_pageviews", "long_min_duration",
                    "split_at_midnight", "split_on_campaign_change",
                    "visitor_retention", "timezone"})) {
        SessionsConfig& sc = c.sessions;
        if (s["inactivity_timeout"])
          Duration("sessions.inactivity_timeout", s["inactivity_timeout"],
                   false, &sc.inactivity_timeout);
        if (s["max_length"])
          Duration("sessions.max_length", s["max_length"], false,
                   &sc.max_length);
        if (s["engaged_min_duration"])
          Duration("sessions.engaged_min_duration", s["engaged_min_duration"],
                   true, &sc.engaged_min_duration);
        if (s["engaged_min_pageviews"])
          Int("sessions.engaged_min_pageviews", s["engaged_min_pageviews"], 1,
              1000, &sc.engaged_min_pageviews);
        if (s["long_min_duration"])
          Duration("sessions.long_min_duration", s["long_min_duration"], false,
                   &sc.long_min_duration);
        if (s["split_at_midnight"])
          Bool("sessions.split_at_midnight", s["split_at_midnight"],
               &sc.split_at_midnight);
        if (s["timezone"] &&
            String("sessions.timezone", s["timezone"], &sc.timezone)) {
          absl::TimeZone tz;
          if (!absl::LoadTimeZone(sc.timezone, &tz)) {
            Error(
                "sessions.timezone", s["timezone"],
                absl::StrCat("unknown time zone \"", sc.timezone,
                             "\" (expected an IANA name like Europe/Berlin)"));
          }
        }
        if (s["visitor_retention"])
          Duration("sessions.visitor_retention", s["visitor_retention"], false,
                   &sc.visitor_retention);
        if (s["split_on_campaign_change"])
          Bool("sessions.split_on_campaign_change",
               s["split_on_campaign_change"], &sc.split_on_campaign_change);
        if (sc.max_length < sc.inactivity_timeout) {
          Error("sessions.max_length", s["max_length"] ? s["max_length"] : s,
                "must not be shorter than sessions.inactivity_timeout");
        }
      }
    }
    if (const YAML::Node m = root["metrics"]) {
      if (CheckMap("metrics", m,
                   {"listen", "label_values_max", "label_allowlists",
                    "final_scrape_wait"})) {
        if (const YAML::Node a = m["label_allowlists"]; a && !a.IsNull()) {
          static const std::set<std::string> kLabels = {
              "site",   "channel", "device",   "country",     "currency",
              "source", "medium",  "campaign", "landing_page"};
          if (CheckMap("metrics.label_allowlists", a, kLabels)) {
            for (const auto& entry : a) {
              const std::string label = entry.first.Scalar();
              const std::string key = "metrics.label_allowlists." + label;
              if (!entry.second.IsSequence()) {
                Error(key, entry.second, "expected a list of label values");
                continue;
              }
              std::vector<std::string>& values =
                  c.metrics.label_allowlists[label];
              for (size_t i = 0; i < entry.second.size(); ++i) {
                std::string value;
                if (String(absl::StrCat(key, "[", i, "]"), entry.second[i],
                           &value)) {
                  values.push_back(value);
                }
              }
            }
          }
        }
        if (m["listen"] &&
            String("metrics.listen", m["listen"], &c.metrics.listen)) {
          absl::Status st =
              ParseListenAddress(c.metrics.listen, nullptr, nullptr);
          if (!st.ok())
            Error("metrics.listen", m["listen"], std::string(st.message()));
        }
        if (m["label_values_max"])
          Int("metrics.label_values_max", m["label_values_max"], 1, 10000,
              &c.metrics.label_values_max);
        if (m["final_scrape_wait"])
          Duration("metrics.final_scrape_wait", m["final_scrape_wait"], true,
                   &c.metrics.final_scrape_wait);
      }
    }
    if (const YAML::Node g = root["goals"]) {
      if (!g.IsSequence()) {
        Error("goals", g, "expected a list of goal names");
      } else {
        c.goals.clear();
        std::set<std::string> seen;
        for (size_t i = 0; i < g.size(); ++i) {
          const std::string key = absl::StrCat("goals[", i, "]");
          std::string goal;
          if (!String(key, g[i], &goal)) continue;
          bool ok = !goal.empty();
          for (char ch : goal) {
            if (!(absl::ascii_islower(ch) || absl::ascii_isdigit(ch) ||
                  ch == '_'))
              ok = false;
          }
          if (!ok) {
            Error(
                key, g[i],
                absl::StrCat("goal names are [a-z0-9_]+, got \"", goal, "\""));
          } else if (!seen.insert(goal).second) {
            Error(key, g[i],
                  absl::StrCat("goal \"", goal, "\" is listed twice"));
          } else {
            c.goals.push_back(goal);
          }
        }
        if (c.goals.empty() && g.size() == 0)
          Error("goals", g, "list at least one goal");
      }
    }
    if (const YAML::Node b = root["bots"]; b && !b.IsNull()) {
      if (CheckMap("bots", b, {"user_agent_patterns", "empty_user_agent"})) {
        if (b["empty_user_agent"]) {
          Enum<bool>("bots.empty_user_agent", b["empty_user_agent"],
                     {{"human", false}, {"bot", true}},
                     &c.empty_user_agent_is_bot);
        }
        const YAML::Node list = b["user_agent_patterns"];
        if (list && !list.IsSequence()) {
          Error("bots.user_agent_patterns", list,
                "expected a list of substrings");
        } else if (list) {
          for (size_t i = 0; i < list.size(); ++i) {
            std::string pattern;
            if (String(absl::StrCat("bots.user_agent_patterns[", i, "]"),
                       list[i], &pattern)) {
              c.bot_patterns.push_back(pattern);
            }
          }
        }
      }
    }
    if (const YAML::Node ch = root["channels"]; ch && !ch.IsNull()) {
      if (CheckMap("channels", ch,
                   {"search_sources", "social_sources", "video_sources",
                    "shopping_sources"})) {
        for (auto [name, list] :
             std::vector<std::pair<const char*, std::vector<std::string>*>>{
                 {"search_sources", &c.channels.search_sources},
                 {"social_sources", &c.channels.social_sources},
                 {"video_sources", &c.channels.video_sources},
                 {"shopping_sources", &c.channels.shopping_sources}}) {
          const YAML::Node n = ch[name];
          if (!n) continue;
          const std::string key = absl::StrCat("channels.", name);
          if (!n.IsSequence()) {
            Error(key, n, "expected a list of source names or domains");
            continue;
          }
          for (size_t i = 0; i < n.size(); ++i) {
            std::string value;
            if (String(absl::StrCat(key, "[", i, "]"), n[i], &value))
              list->push_back(value);
          }
        }
      }
    }
    if (const YAML::Node f = root["funnels"]; f && !f.IsNull()) {
      if (!f.IsSequence()) {
        Error("funnels", f, "expected a list of funnels");
      } else {
        std::set<std::string> names;
        for (size_t i = 0; i < f.size(); ++i) {
          const std::string key = absl::StrCat("funnels[", i, "]");
          if (!CheckMap(key, f[i], {"name", "steps"})) continue;
          FunnelConfig funnel;
          if (!f[i]["name"] ||
              !String(key + ".name", f[i]["name"], &funnel.name) ||
              funnel.name.empty()) {
            Error(key + ".name", f[i], "every funnel needs a name");
          } else if (!names.insert(funnel.name).second) {
            Error(key + ".name", f[i]["name"],
                  absl::StrCat("funnel \"", funnel.name, "\" is listed twice"));
          } else {
            LabelValue(key + ".name", f[i]["name"], funnel.name);
          }
          const YAML::Node steps = f[i]["steps"];
          if (!steps || !steps.IsSequence() || steps.size() < 1 ||
              steps.size() > 32) {
            Error(key + ".steps", steps ? steps : f[i],
                  "expected a list of 1 to 32 steps");
            continue;
          }
          for (size_t j = 0; j < steps.size(); ++j) {
            const std::string step_key = absl::StrCat(key, ".steps[", j, "]");
            if (!CheckMap(step_key, steps[j], {"name", "page", "goal"}))
              continue;
            FunnelStepConfig step;
            if (steps[j]["page"])
              String(step_key + ".page", steps[j]["page"], &step.page);
            if (steps[j]["goal"])
              String(step_key + ".goal", steps[j]["goal"], &step.goal);
            if (step.page.empty() == step.goal.empty()) {
              Error(step_key, steps[j],
                    "a step has either page (a path glob) or goal");
            }
            if (!step.goal.empty() && std::find(c.goals.begin(), c.goals.end(),
                                                step.goal) == c.goals.end()) {
              Error(step_key + ".goal", steps[j]["goal"],
                    absl::StrCat("unknown goal \"", step.goal,
                                 "\" (not in goals)"));
            }
            if (steps[j]["name"]) {
              if (String(step_key + ".name", steps[j]["name"], &step.name))
                LabelValue(step_key + ".name", steps[j]["name"], step.name);
            } else {
              step.name = step.page.empty() ? step.goal : step.page;
            }
            funnel.steps.push_back(std::move(step));
          }
          c.funnels.push_back(std::move(funnel));
        }
      }
    }
    if (const YAML::Node t = root["targets"]; t && !t.IsNull()) {
      if (!t.IsSequence()) {
        Error("targets", t, "expected a list of targets");
      } else {
        ParseTargets(t, c);
      }
    }
    if (const YAML::Node r = root["rules"]; r && !r.IsNull()) {
      ParseRules(r, &c.rules);
    }
  }

  void ParseRules(const YAML::Node& r, RulesConfig* rules) {
    if (!CheckMap("rules", r,
                  {"job", "runbook_base_url", "grafana_url",
                   "dead_letter_ratio"})) {
      return;
    }
    if (r["job"] && String("rules.job", r["job"], &rules->job)) {
      if (rules->job.empty()) Error("rules.job", r["job"], "must not be empty");
      LabelValue("rules.job", r["job"], rules->job);
    }
    for (const auto& [name, out] :
         {std::pair<const char*, std::string*>{"runbook_base_url",
                                               &rules->runbook_base_url},
          {"grafana_url", &rules->grafana_url}}) {
      const std::string key = absl::StrCat("rules.", name);
      if (!r[name] || !String(key, r[name], out)) continue;
      if (!IsPrintableUtf8(*out) || absl::StrContains(*out, ' ')) {
        Error(key, r[name], "expected a URL or path, without spaces");
      }
    }
    while (absl::EndsWith(rules->grafana_url, "/")) rules->grafana_url.pop_back();
    if (const YAML::Node d = r["dead_letter_ratio"]) {
      if (!d.IsScalar() ||
          !absl::SimpleAtod(d.Scalar(), &rules->dead_letter_ratio) ||
          !(rules->dead_letter_ratio > 0 && rules->dead_letter_ratio < 1)) {
        rules->dead_letter_ratio = 0.1;
        Error("rules.dead_letter_ratio", d,
              "expected a share of the consumed records in (0, 1), e.g. 0.1");
      }
    }
  }

  void ParseTargets(const YAML::Node& list, Config& c) {
    std::set<std::string> names;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string key = absl::StrCat("targets[", i, "]");
      const YAML::Node n = list[i];
      if (!CheckMap(key, n,
                    {"name", "objective", "kpi", "filter", "direction", "value",
                     "tolerance", "window", "period", "for", "severity",
                     "min_sessions"})) {
        continue;
      }
      TargetConfig t;
      if (!n["name"] || !String(key + ".name", n["name"], &t.name) ||
          t.name.empty()) {
        Error(key + ".name", n, "every target needs a name");
      } else if (!names.insert(t.name).second) {
        Error(key + ".name", n["name"],
              absl::StrCat("target \"", t.name, "\" is listed twice"));
      } else {
        LabelValue(key + ".name", n["name"], t.name);  // the target label
      }
      if (n["objective"])
        String(key + ".objective", n["objective"], &t.objective);
      if (!n["kpi"] || !String(key + ".kpi", n["kpi"], &t.kpi)) {
        Error(key + ".kpi", n, "every target names a kpi");
        continue;
      }
      const KpiDef* kpi = FindKpi(t.kpi);
      if (kpi == nullptr) {
        Error(key + ".kpi", n["kpi"],
              absl::StrCat("unknown KPI \"", t.kpi, "\"; known: ", KpiNames()));
        continue;
      }
      if (const YAML::Node f = n["filter"]; f && !f.IsNull()) {
        const std::vector<std::string> labels = KpiFilterLabels(t.kpi);
        if (CheckMap(
                key + ".filter", f, {labels.begin(), labels.end()},
                absl::StrCat(" (not a label of kpi ", t.kpi, "'s counters)"))) {
          for (const auto& entry : f) {
            if (std::find(labels.begin(), labels.end(), entry.first.Scalar()) ==
                labels.end()) {
              continue;
            }
            std::string value;
            const std::string label = entry.first.Scalar();
            if (String(key + ".filter." + label, entry.second, &value)) {
              LabelValue(key + ".filter." + label, entry.second, value);
              t.filter[label] = value;
            }
          }
        }
      }
      // A family with a goal label counts each goal apart (and "(any)"):
      // summed over goals it would count sessions more than once.
      const std::vector<std::string> labels = KpiFilterLabels(t.kpi);
      const bool needs_goal =
          std::find(labels.begin(), labels.end(), "goal") != labels.end();
      auto goal = t.filter.find("goal");
      if (goal != t.filter.end() && std::find(c.goals.begin(), c.goals.end(),
                                              goal->second) == c.goals.end()) {
        Error(
            key + ".filter.goal", n["filter"]["goal"],
            absl::StrCat("unknown goal \"", goal->second, "\" (not in goals)"));
      } else if (needs_goal && goal == t.filter.end()) {
        Error(key + ".filter", n["filter"] ? n["filter"] : n,
              absl::StrCat("kpi ", t.kpi, " needs filter.goal"));
      }
      CheckFilterValues(key + ".filter", n["filter"], t.filter);
      t.direction = kpi->direction == Direction::kAtMost
                        ? TargetDirection::kAtMost
                        : TargetDirection::kAtLeast;
      if (n["direction"]) {
        Enum<TargetDirection>(key + ".direction", n["direction"],
                              {{"at_least", TargetDirection::kAtLeast},
                               {"at_most", TargetDirection::kAtMost}},
                              &t.direction);
      }
      if (!n["value"] || !n["value"].IsScalar() ||
          !absl::SimpleAtod(n["value"].Scalar(), &t.value) ||
          !std::isfinite(t.value)) {
        Error(key + ".value", n["value"] ? n["value"] : n, "expected a number");
        t.value = 0;
      } else if (t.value <= 0 || (IsRateKpi(t.kpi) && t.value > 1)) {
        Error(key + ".value", n["value"],
              IsRateKpi(t.kpi) ? "a rate target is in (0, 1]"
                               : "must be greater than 0");
      }
      if (n["tolerance"]) {
        if (!n["tolerance"].IsScalar() ||
            !absl::SimpleAtod(n["tolerance"].Scalar(), &t.tolerance) ||
            !(t.tolerance >= 0 && t.tolerance < 1)) {  // NaN too
          t.tolerance = 0;
          Error(key + ".tolerance", n["tolerance"],
                "expected a relative tolerance in [0, 1), e.g. 0.02 for within "
                "2 %");
        }
      }
      if (IsRateKpi(t.kpi) && t.direction == TargetDirection::kAtMost &&
          t.value > 0 && t.value * (1 + t.tolerance) >= 1) {
        Error(key + (n["tolerance"] ? ".tolerance" : ".value"),
              n["tolerance"] ? n["tolerance"] : n["value"],
              "value x (1 + tolerance) reaches 1: a rate never exceeds it, so "
              "this at_most target could never be off target");
      }
      if (n["window"]) {
        Duration(key + ".window", n["window"], false, &t.window);
        if (t.window > absl::ZeroDuration() &&
            (t.window < absl::Minutes(1) ||
             t.window % absl::Seconds(1) != absl::ZeroDuration())) {
          Error(key + ".window", n["window"],
                "a rolling window is at least 1m, in whole seconds");
        }
      }
      if (const YAML::Node p = n["period"]) {
        if (CheckMap(key + ".period", p, {"start", "end"})) {
          auto date = [&](const char* field, absl::Time* out) {
            std::string text, error;
            if (!p[field] ||
                !String(absl::StrCat(key, ".period.", field), p[field],
                        &text) ||
                !absl::ParseTime("%Y-%m-%d", text, out, &error)) {
              Error(absl::StrCat(key, ".period.", field),
                    p[field] ? p[field] : p, "expected a date YYYY-MM-DD");
              return false;
            }
            return true;
          };
          absl::Time start, end;
          if (date("start", &start) && date("end", &end)) {
            if (end <= start) {
              Error(key + ".period.end", p["end"],
                    "must be after period.start");
            } else {
              t.period_start = start;
              t.period_end = end + absl::Hours(24);  // the end date is included
            }
          }
          if (!IsCumulativeKpi(t.kpi)) {
            Error(key + ".period", p,
                  absl::StrCat("a period (cumulative, paced) target needs a "
                               "count KPI, not ",
                               t.kpi, "; use window for rates and averages"));
          }
        }
      }
      if ((t.window > absl::ZeroDuration()) == (n["period"].IsDefined())) {
        Error(key, n,
              "a target has either a rolling window or a period, exactly one");
      }
      if (n["for"]) Duration(key + ".for", n["for"], true, &t.for_duration);
      if (n["severity"]) {
        String(key + ".severity", n["severity"], &t.severity);
        if (t.severity != "page" && t.severity != "ticket" &&
            t.severity != "info") {
          Error(key + ".severity", n["severity"],
                "expected page, ticket or info");
        }
      }
      if (n["min_sessions"]) {
        int min = 0;
        Int(key + ".min_sessions", n["min_sessions"], 0, 100000000, &min);
        t.min_sessions = min;
      }
      c.targets.push_back(std::move(t));
    }
  }

 private:
  ConfigResult* result_;
};

}  // namespace

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
  if (config.inputs.empty()) {
    error("inputs", "at least one input topic is required");
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
  return errors;
}

namespace {

// The node at a dotted key ("inputs[1].topic"), or the deepest one on its
// path that exists (for an error's line).
YAML::Node NodeAt(const YAML::Node& root, absl::string_view key) {
  YAML::Node node = root;
  for (absl::string_view part : absl::StrSplit(key, '.', absl::SkipEmpty())) {
    size_t index = std::string::npos;
    const size_t bracket = part.find('[');
    if (bracket != absl::string_view::npos) {
      size_t i = 0;
      if (absl::SimpleAtoi(part.substr(bracket + 1,
                                       part.size() - bracket - 2),
                           &i)) {
        index = i;
      }
      part = part.substr(0, bracket);
    }
    if (!node.IsMap() || !node[std::string(part)]) return node;
    YAML::Node next = node[std::string(part)];
    if (index != std::string::npos) {
      if (!next.IsSequence() || index >= next.size()) return next;
      next = next[index];
    }
    node = next;
  }
  return node;
}

}  // namespace

ConfigResult ParseConfig(absl::string_view yaml_text) {
  ConfigResult result;
  Parser parser(&result);
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    parser.Parse(root);
    // The checks of the whole config, once every key parses.
    if (result.errors.empty() && !root.IsNull()) {
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
  // In file order, as an editor shows them.
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     const int la = a.line > 0 ? a.line : INT32_MAX;
                     const int lb = b.line > 0 ? b.line : INT32_MAX;
                     return la != lb ? la < lb : a.column < b.column;
                   });
  return result;
}

ConfigResult LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ConfigResult result;
    result.errors.push_back(
        {"", 0, 0,
         absl::StrCat("cannot read config file: ", std::strerror(errno))});
    return result;
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str());
}

}  // namespace kpistream
