// Typed, validated configuration of kpistream (SPEC §8).
//
// LoadConfig() reads a YAML file, rejects unknown keys and bad values, and
// returns either a Config whose every field is valid or the complete list of
// errors, each naming the key path (e.g. "sessions.inactivity_timeout") and
// the line/column where yaml-cpp reports one. Nothing here throws: yaml-cpp
// exceptions are caught at this edge.
#ifndef KPISTREAM_CONFIG_CONFIG_H_
#define KPISTREAM_CONFIG_CONFIG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kpistream {

enum class InputFormat { kProtobuf, kJson, kCombinedLog };
enum class InputKind { kEvents, kAdCost };
// How an events input is keyed (SPEC §2): kAny (default) re-keys every
// record by its visitor_id through the internal topic
// RepartitionTopic(config), so that one visitor's events meet in one
// partition whatever the producer did; kVisitorId says the producer keys
// every record by its visitor_id: records are processed where they land (no
// hop), and one whose key is not its visitor_id is a dead letter
// ("miskeyed"), never sessionized in the wrong partition.
enum class InputKey { kAny, kVisitorId };
enum class OutputFormat { kProtobuf, kJson };
enum class Guarantee { kExactlyOnce, kAtLeastOnce };
// sessions.session_source: whose sessions (SPEC §2, `session_id`).
//   kEngine  the engine's alone (SPEC §3), the client's session_id unused.
//   kClient  the engine's, also split where the visitor's session_id
//            changes (events without one never split).
enum class SessionSource { kEngine, kClient };

struct KafkaConfig {
  std::string brokers = "127.0.0.1:9092";
  std::string group_id = "kpistream";
  // Passed to librdkafka as-is; ${VAR} references are expanded from the
  // environment at load time. Values may be secrets: never log them.
  std::map<std::string, std::string> properties;
};

struct InputConfig {
  std::string topic;
  InputKind kind = InputKind::kEvents;
  InputFormat format = InputFormat::kProtobuf;
  std::string site;  // site_id for formats that carry none (combined_log)
  // combined_log: the site's own host name, e.g. "www.example.com"; page
  // URLs become https://<host><path> so that referrers from the site itself
  // count as internal navigation, not as referral traffic.
  std::string host;
  InputKey key = InputKey::kAny;  // events inputs
  // combined_log: globs ('*' any run of characters, as funnel steps' pages)
  // on a line's path; a line whose path matches one is no page view (an
  // application's API or AJAX endpoints, which an access log cannot tell
  // from pages), dead-lettered not_pageview.
  std::vector<std::string> skip_paths;
};

struct OutputConfig {
  std::string topic;
  OutputFormat format = OutputFormat::kProtobuf;
  absl::Duration window = absl::Minutes(1);  // kpi output only; whole seconds
  bool enabled = true;
};

struct ProcessingConfig {
  Guarantee guarantee = Guarantee::kExactlyOnce;
  absl::Duration max_out_of_orderness = absl::Seconds(30);
  absl::Duration allowed_lateness = absl::Minutes(5);
  absl::Duration idle_partition_timeout = absl::Seconds(30);
  // Unset: 1h, or max_out_of_orderness + allowed_lateness where longer.
  absl::Duration dedup_horizon = absl::Hours(1);
  // Events further than this ahead of the processing clock are invalid.
  absl::Duration max_future_skew = absl::Minutes(10);
  // An accepted event ahead of the clock moves event time only up to the
  // clock (engine/partition_pipeline.h). Not a config key: only the demo,
  // whose generated time runs ahead of the clock, turns it off.
  bool event_time_capped_at_clock = true;
  // Names this instance stably across restarts (SPEC §5): the producers'
  // transactional.id and the consumers' group.instance.id are made of it,
  // so a restarted instance fences its predecessor at once and rejoins
  // without a rebalance. Empty: the host name.
  std::string instance_id;
  // Stream threads, each a group member owning a share of the partitions.
  int threads = 1;
  // A dead instance's open transaction is aborted by the broker after this.
  absl::Duration transaction_timeout = absl::Seconds(10);
  // How often a stream thread commits (outputs, changelog and offsets in
  // one transaction with exactly_once) under a backlog; /metrics shows
  // committed counts, so this bounds how fresh they are while a thread
  // keeps up. At least 10ms, below transaction_timeout.
  absl::Duration commit_interval = absl::Seconds(1);
  // The longest between a stream thread's commits: one behind a backlog
  // deeper than it processes in an interval waits twice as long before
  // each further commit, from commit_interval up to this, and is back to
  // commit_interval once it catches up (engine/commit_schedule.h). At
  // least commit_interval (equal: a fixed interval), below
  // transaction_timeout. Left out: DefaultMaxCommitInterval().
  absl::Duration max_commit_interval = absl::Seconds(4);
  // A stream thread that has caught up with its input commits sooner: this
  // long after its last commit started (and no sooner than that commit
  // took), so that counts are fresh at moderate rates; under a backlog it
  // commits every commit_interval (engine/commit_schedule.h). At least
  // 10ms, at most commit_interval (equal: commit every commit_interval
  // only). Left out: 100ms, or commit_interval if that is shorter.
  absl::Duration min_commit_interval = kDefaultMinCommitInterval;
  static constexpr absl::Duration kDefaultMinCommitInterval =
      absl::Milliseconds(100);
  // The local state store (engine/local_store.h) lives in
  // <state_dir>/<group_id>/<instance_id>. Empty: $TMPDIR (or /tmp)
  // followed by /kpistream, as Kafka Streams keeps /tmp/kafka-streams. It
  // may be lost at any time (the changelog rebuilds it), never shared.
  std::string state_dir;
  // The memory for fetched input not yet processed, across the instance's
  // consumers (one per thread), as Kafka Streams' input.buffer.max.bytes
  // (whose default, 512 MB, this follows: with 2 threads each consumer's
  // queue is then librdkafka's own default, 64 MiB, which librdkafka 2.0
  // refills about once a second, so a smaller share caps the rate):
  // each consumer's librdkafka queue and fetch size are derived from its
  // share (kafka/consumer.h, FetchBufferProperties) unless
  // kafka.properties sets them.
  int64_t input_buffer = kDefaultInputBuffer;
  static constexpr int64_t kDefaultInputBuffer = int64_t{512} << 20;
};

// processing.max_commit_interval when the config leaves it out: 4 times
// commit_interval, at most half of transaction_timeout, and at least
// commit_interval (4s with the defaults).
absl::Duration DefaultMaxCommitInterval(const ProcessingConfig& processing);

struct SessionsConfig {
  absl::Duration inactivity_timeout = absl::Minutes(30);
  absl::Duration max_length = absl::Hours(24);
  absl::Duration engaged_min_duration = absl::Seconds(10);
  int engaged_min_pageviews = 2;
  // Closed sessions lasting at least this are long (long_session_rate).
  absl::Duration long_min_duration = absl::Minutes(3);
  bool split_at_midnight = false;
  bool split_on_campaign_change = false;
  SessionSource session_source = SessionSource::kEngine;
  absl::Duration visitor_retention = absl::Hours(24 * 400);
  // IANA name: the days of split_at_midnight and of targets' periods.
  std::string timezone = "UTC";
};

struct MetricsConfig {
  std::string listen = "127.0.0.1:9464";
  int label_values_max = 50;
  // Distinct combinations of a family's labels per process; beyond, a new
  // one is counted with its labels but site, channel and currency under
  // "(other)" (values named here or by a target, and ad cost's campaigns,
  // excepted).
  int label_combinations_max = 10000;
  // Per label (site, channel, device, country, currency, source, medium,
  // campaign, landing_page): only these values, everything else "(other)".
  std::map<std::string, std::vector<std::string>> label_allowlists;
  // After its last commit on SIGTERM the engine keeps /metrics up until it
  // has been scraped once more, at most this long, so that the last
  // commit's counts reach Prometheus (set it to the scrape interval); 0: exit
  // at once. Once a scraper (MetricsEndpoint) has scraped the process, only
  // a scraper's scrape counts; when that one got series the last commit
  // made at 0 (new series are, once), it waits for one more, at most 1 s
  // longer.
  absl::Duration final_scrape_wait = absl::ZeroDuration();
};

// funnels[]: an ordered list of steps; each step is a page path glob or a
// goal (exactly one of them).
struct FunnelStepConfig {
  std::string name;
  std::string page;
  std::string goal;
};
struct FunnelConfig {
  std::string name;
  std::vector<FunnelStepConfig> steps;
};

// channels: extra sources for GA4's channel grouping lists (names like
// "kagi" or domains like "kagi.com"), added to the built-in ones.
struct ChannelsConfig {
  std::vector<std::string> search_sources;
  std::vector<std::string> social_sources;
  std::vector<std::string> video_sources;
  std::vector<std::string> shopping_sources;
};

// targets[] (SPEC §6): a SMART/OKR KPI target. Specific: a KPI of the
// catalog with label filters; measurable: `value`; achievable: `tolerance`
// (relative: 0.02 = within 2 % of the value counts as met); time-bound: a
// rolling event-time `window`, or a `period` [start, end) for cumulative
// count KPIs with linear pacing.
enum class TargetDirection { kAtLeast, kAtMost };
struct TargetConfig {
  std::string name;
  std::string objective;
  std::string kpi;
  std::map<std::string, std::string> filter;  // label -> value
  TargetDirection direction = TargetDirection::kAtLeast;
  double value = 0;
  double tolerance = 0;
  absl::Duration window = absl::ZeroDuration();  // rolling; zero with a period
  // A period: from the first day's midnight to the one after the last day,
  // days of sessions.timezone.
  absl::Time period_start = absl::InfinitePast();
  absl::Time period_end = absl::InfinitePast();
  absl::CivilDay period_last_day;  // the deadline, as written
  absl::Duration for_duration = absl::Minutes(15);
  std::string severity = "ticket";  // page | ticket | info
  // Rate KPIs and means per session: below this, never off target.
  int64_t min_sessions = 100;
  bool cumulative() const { return period_end != absl::InfinitePast(); }
};

// What targets may name: the KPI catalog (aggregate/kpi_catalog.h), by name.
bool IsRateKpi(absl::string_view kpi);        // ratios in [0, 1]
bool IsCumulativeKpi(absl::string_view kpi);  // counts and sums over a period
bool IsKnownKpi(absl::string_view kpi);
// The filter labels a target on `kpi` may use: those its numerator's family
// carries (SPEC §4), so that the engine's value and the generated PromQL
// agree; none for an unknown KPI.
std::vector<std::string> KpiFilterLabels(absl::string_view kpi);

// rules: what `kpistream rules` needs besides the targets: how Prometheus
// knows the engine (its alerts on itself, the dashboard's "Instances up")
// and the links every engine alert carries.
struct RulesConfig {
  std::string job = "kpistream";  // the `job` label of the engine's targets
  // An alert's runbook_url is this + "#" + the alert's name in lower case:
  // the README's runbook section of that name. Set it to where your team
  // reads kpistream's README, e.g. your Git server's web view of it.
  std::string runbook_base_url = "README.md";
  // An alert's dashboard link is this + "/d/kpistream"; empty: the path.
  std::string grafana_url;
  // KpistreamDeadLetterRateHigh: invalid + late + duplicate + bot records
  // over consumed records above this, in (0, 1).
  double dead_letter_ratio = 0.1;
};

struct Config {
  KafkaConfig kafka;
  std::vector<InputConfig> inputs;
  OutputConfig sessions_output{"web.sessions"};
  OutputConfig kpi_output{"web.kpi"};
  OutputConfig deadletter_output{"web.deadletter"};
  // outputs.changelog.topic: the engine's state changelog (compacted), by
  // default "<group_id>-changelog". Used when targets are configured.
  OutputConfig changelog_output{""};
  ProcessingConfig processing;
  SessionsConfig sessions;
  MetricsConfig metrics;
  std::vector<std::string> goals = {"signup", "lead", "purchase"};
  std::vector<FunnelConfig> funnels;
  ChannelsConfig channels;
  // bots.user_agent_patterns: more case-insensitive user-agent substrings
  // that mark bot traffic, added to SPEC §9's built-in list.
  std::vector<std::string> bot_patterns;
  // bots.empty_user_agent: whether a WebEvent without a user agent is a bot
  // (SPEC §9; default human). Access-log lines without one always are.
  bool empty_user_agent_is_bot = false;
  std::vector<TargetConfig> targets;
  RulesConfig rules;
};

// One problem found in a config file.
struct ConfigError {
  std::string
      key;  // dotted path, e.g. "inputs[1].format"; empty for file-level errors
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
  std::string message;
  // Valid, but likely not what is meant (ConfigResult::warnings).
  bool warning = false;

  // "file:line:col: key: message" (parts omitted when unknown); a warning's
  // message starts "warning: ".
  std::string ToString(absl::string_view file) const;
};

// File order, as an editor walks the file: by line, then column; those of
// no line (not tied to a place in the file) last. The loader's errors and
// warnings come sorted so.
bool InFileOrder(const ConfigError& a, const ConfigError& b);

struct ConfigResult {
  Config config;
  std::vector<ConfigError> errors;  // empty: config is valid
  // A valid config's keys that give numbers users may not expect (a
  // combined_log input without host, a money target without a currency):
  // check-config prints them and exits 0, `run` logs them at start.
  std::vector<ConfigError> warnings;
  // The file could not be read (LoadConfigFile): its one error says why,
  // and there was no config to check.
  bool unreadable = false;
  // The values `${VAR}`s in kafka.properties gave (passwords, keys): the
  // binary keeps them out of its logs (SPEC §8). The errors and warnings
  // above already show them as written (`${VAR}`), wherever they appear.
  std::vector<std::string> expanded_secrets;
  bool ok() const { return errors.empty(); }
};

// Checks the binary adds to the config's own, with what only it can ask.
struct ConfigChecks {
  // A `kafka.properties` entry (its value expanded): "" when the Kafka
  // client takes it, else why not (librdkafka's words). The config library
  // knows no Kafka client; kpistream passes kafka::PropertyError, so that
  // check-config finds what `run` would refuse, with its key and line.
  std::function<std::string(const std::string& name, const std::string& value)>
      kafka_property;
  // False: `${VAR}` is kept as written, not read from the environment (for
  // `kpistream rules`, whose files need no broker address, secret or state
  // directory: generating them in CI failed on an unset KAFKA_PASSWORD).
  bool expand_variables = true;
};

// Parses and validates YAML text. `source` names the text in messages.
ConfigResult ParseConfig(absl::string_view yaml_text,
                         const ConfigChecks& checks = {});

// Reads and parses `path`; an unreadable file is one error with an empty key.
ConfigResult LoadConfigFile(const std::string& path,
                            const ConfigChecks& checks = {});

// Parses "250ms", "30s", "5m", "1h", "1d" (also combinations like "1h30m").
// A bare number without a unit is an error, and so is anything longer than
// 36500d (100 years).
absl::StatusOr<absl::Duration> ParseDurationString(absl::string_view text);

// Parses a byte size: a whole number and a unit, "512KiB", "64MiB", "1GiB",
// "1TiB" (powers of 1024) or "500kB", "64MB", "1GB", "1TB" (powers of 1000),
// "4096B". A bare number without a unit is an error (is "64" bytes or
// megabytes?), and so is anything above 1TiB.
absl::StatusOr<int64_t> ParseByteSizeString(absl::string_view text);

// "256MiB", "1.5GiB", "900KiB", "17B": the size in the largest binary unit
// that keeps it at least 1 (one decimal when not whole), for messages and
// logs.
std::string FormatByteSize(int64_t bytes);

// The config's name of `format`: "protobuf", "json", "combined_log".
absl::string_view InputFormatName(InputFormat format);

// The checks that need the whole config rather than one key: ParseConfig
// runs them once every key parses (with the lines of the keys at fault), and
// Engine::Create runs them on a Config built in code (the demo's). Empty: OK.
std::vector<ConfigError> Validate(const Config& config);

// The internal topic that re-keys `key: any` inputs by visitor_id:
// "<group_id>-repartition" (SPEC §2).
std::string RepartitionTopic(const Config& config);
// Whether any input is re-keyed through it.
bool NeedsRepartition(const Config& config);
// librdkafka topic-level properties of the engine's producers, per topic:
// its internal topics, the repartition topic (read once, at once) and the
// state changelog (read at a restore), are written uncompressed, as Kafka
// Streams writes its internal topics, unless kafka.properties sets
// compression.type (or compression.codec), which then applies to them as to
// every output.
std::map<std::string, std::map<std::string, std::string>>
ProducerTopicProperties(const Config& config);

// Splits "host:port" into its parts; port must be 0..65535. ":port" (no
// host) means every interface; `host` is then empty.
absl::Status ParseListenAddress(absl::string_view address, std::string* host,
                                int* port);

}  // namespace kpistream

#endif  // KPISTREAM_CONFIG_CONFIG_H_
