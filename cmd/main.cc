// kpistream: one binary, one subcommand per job (SPEC §7). This file only
// parses the command line; each subcommand lives in cmd/*_command.cc.
// Exit codes: 0 success, 2 bad usage or config, 1 runtime failure.
#include <cstdio>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "cmd/allocator.h"
#include "cmd/commands.h"
#include "cmd/log.h"
#include "cmd/signals.h"
#include "ingest/protobuf_log.h"

namespace {

constexpr char kDescription[] =
    "kpistream: reads web visit and conversion events from Kafka, sessionizes "
    "them in event time, and publishes marketing KPIs to Prometheus and "
    "Kafka.";

constexpr char kFooter[] = R"(
Examples:
  kpistream demo                                  everything in one process, /metrics on 127.0.0.1:9464
  kpistream broker --topic web.events:4           a local Kafka-protocol broker for development
  kpistream loadgen --brokers 127.0.0.1:PORT --topic web.events --rate 500 --duration 60s
  kpistream check-config kpistream.yaml           validate a config file
  kpistream run --config kpistream.yaml           the engine
  kpistream --log-format json run --config kpistream.yaml   logs as one JSON object per line
  kpistream rules --config kpistream.yaml --out rules/   Prometheus rules, alerts, Grafana dashboard

Logs go to stderr, one line per event: text, or with --log-format json one
JSON object per line (ts, level, component, msg, fields); librdkafka's own
messages go through the same logger.

Exit codes: 0 success, 2 bad usage or config, 1 runtime failure.
Run 'kpistream COMMAND --help' for the options of a command.)";

constexpr char kRunFooter[] = R"(
Examples:
  kpistream run --config kpistream.yaml
  kpistream run --config kpistream.yaml --summary-interval 10s --log-format json
  kpistream run --config kpistream.yaml --summary-interval 0      no summary lines

Every --summary-interval a line on stderr says what the engine did:
  INFO  run: last 30 s: 1234 events/s in | sessions open 5021, closed 812 (+37) |
  dead letters 12 (10 malformed, 2 late) | watermark lag 4.2 s | consumer lag 0
  messages on 4 partitions
Rejected input is summarised per topic at most every 10 s (WARN engine: ...).
SIGTERM or Ctrl-C: stop consuming, flush, commit, exit 0 (open sessions are kept
in the committed state, not closed early).
State: checkpointed to the changelog topic (<group_id>-changelog) and kept in a
local store, processing.state_dir/<group_id>/<instance_id> (default
$TMPDIR/kpistream): a restart reads only the changelog records written since;
a lost store is rebuilt from the changelog. Give every instance its own
processing.instance_id.
Memory: input fetched but not yet processed is bounded by
processing.input_buffer (default 512MiB, split across processing.threads).)";

constexpr char kDemoFooter[] = R"(
Examples:
  kpistream demo                                /metrics on 127.0.0.1:9464
  kpistream demo --listen 127.0.0.1:9465        when 9464 is taken
  kpistream demo --listen 127.0.0.1:0           any free port (printed first)
  kpistream demo --rate 500 --duration 60s)";

constexpr char kCheckConfigFooter[] = R"(
Examples:
  kpistream check-config kpistream.yaml
  kpistream check-config config/examples/kpistream.yaml   every key, documented

Every error and warning is printed, in the file's order, as
FILE:LINE:COLUMN: KEY: MESSAGE (a warning's message starts "warning: ").
Exit codes: 0 valid (warnings may be printed), 2 not valid.)";

constexpr char kRulesFooter[] = R"(
Examples:
  kpistream rules --config kpistream.yaml --out rules/
  promtool check rules rules/*.rules.yml
  cd rules && promtool test rules kpistream-alerts.test.yml kpistream-engine.test.yml

The config's ${VAR}s need not be set: no broker or secret is used.)";

constexpr char kBrokerFooter[] = R"(
Examples:
  kpistream broker --topic web.events:4 --topic web.deadletter
  kpistream broker --port 9092 --topic web.events:4     bootstrap 127.0.0.1:9092
  kcat -b 127.0.0.1:9092 -L

--port: librdkafka's mock cluster always listens on ephemeral ports; --port
puts a TCP forwarder on 127.0.0.1:PORT in front of the first broker. It is a
fixed bootstrap address: clients then connect to the brokers' advertised
127.0.0.1 ports, so it works on this host, not through a port mapping.)";

constexpr char kLoadgenFooter[] = R"(
Examples:
  kpistream loadgen --brokers 127.0.0.1:9092 --topic web.events --rate 500 --duration 60s
  kpistream loadgen --brokers 127.0.0.1:9092 --topic web.events --format json \
      --rate 2000 --event-rate 20 --duration 2m --start-time 2026-01-01T00:00:00Z
                    event time 100x the wall clock, from a day in the past
  kpistream loadgen --brokers 127.0.0.1:9092 --topic web.events --garbage 0.02
  kpistream loadgen --brokers 127.0.0.1:9092 --topic web.events --format json \
      --no-user-agent --campaign-in-url --rate 0 --events 40000 --event-rate 0.1 \
      --start-time 2026-01-01T00:00:00Z
                    a server-side collector's log: 40000 events over 4.6 days
                    of event time, no user agents, campaigns only in page URLs
  kpistream loadgen --brokers 127.0.0.1:9092 --topic web.events --rate 0 \
      --events 1000000 --disorder 20s     a backlog, delivered out of order

Traffic: visitors (some returning) with sessions of page views, engagement
events and conversions (signup, lead, purchase with an order id and USD or EUR
revenue), on devices and in countries; acquired directly, by organic search,
Google Ads (auto-tagged gclid only, or utm google/cpc plus a gclid), organic
social (with fbclid), paid social, a newsletter (utm email), referrals and
display. Campaign parameters are on each session's landing page view.)";

struct LogOptions {
  std::string format = "text";
  std::string level = "info";
};

// --log-format and --log-level, accepted before the subcommand and by the
// ones that log.
void AddLogOptions(CLI::App* app, LogOptions* log) {
  app->add_option("--log-format", log->format,
                  "text (default) or json: one JSON object per line on "
                  "stderr with ts, level, component, msg and fields")
      ->check(CLI::IsMember({"text", "json"}));
  app->add_option("--log-level", log->level,
                  "info (default), warn, error, or debug: also every "
                  "commit with its input offsets and the time of its parts "
                  "(outputs and checkpoints, the transaction, the local "
                  "store), every changelog record written and read")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
}

// A count or a rate that only means something above 0 ("--events 0" would
// otherwise run without end). CLI's PositiveNumber says "not in range 0 to
// 1.79769e+308" of a 0.
const CLI::Validator kAboveZero(
    [](std::string& value) -> std::string {
      double number = 0;
      if (CLI::detail::lexical_cast(value, number) && number > 0) return "";
      return "must be a number greater than 0, got " + value;
    },
    "> 0");

// An option for a share of the generated events, 0..1: "share of events
// <what> (0..1)".
void AddShareOption(CLI::App* cmd, const char* name, double* share,
                    const char* what) {
  cmd->add_option(name, *share,
                  std::string("share of events ") + what + " (0..1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kpistream;
  CLI::App app{kDescription, "kpistream"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.set_version_flag("--version", "kpistream " KPISTREAM_VERSION
                                    "\nallocator: " +
                                        kpistream::AllocatorDescription());
  LogOptions log;
  AddLogOptions(&app, &log);

  RunCommandOptions run;
  CLI::App* run_cmd = app.add_subcommand(
      "run",
      "Run the engine: consume the configured input topics, publish "
      "KPIs on /metrics and write session records to Kafka.");
  run_cmd
      ->add_option("-c,--config", run.config_path,
                   "YAML config file (see "
                   "config/examples/kpistream.yaml)")
      ->required();
  run_cmd
      ->add_option("--summary-interval", run.summary_interval,
                   "log a one-line summary this often (e.g. 10s); 0: never")
      ->capture_default_str();
  AddLogOptions(run_cmd, &log);
  run_cmd->footer(kRunFooter);

  DemoCommandOptions demo;
  CLI::App* demo_cmd = app.add_subcommand(
      "demo",
      "No setup, no config: an embedded Kafka-protocol broker, a synthetic "
      "traffic generator and the engine in one process. Serves /metrics and "
      "prints a one-line KPI summary every few seconds. Ctrl-C stops it.");
  demo_cmd->add_option("--rate", demo.rate, "generated events per second")
      ->capture_default_str()
      ->check(kAboveZero);
  demo_cmd->add_option("--listen", demo.listen, "address of /metrics")
      ->capture_default_str();
  demo_cmd->add_option(
      "--duration", demo.duration,
      "stop after this long (e.g. 30s); default: until Ctrl-C");
  AddLogOptions(demo_cmd, &log);
  demo_cmd->footer(kDemoFooter);

  BrokerCommandOptions broker;
  CLI::App* broker_cmd = app.add_subcommand(
      "broker",
      "A local Kafka-protocol broker (librdkafka's mock cluster) for "
      "development and tests. Prints its bootstrap address as the first line "
      "of stdout and runs until SIGINT/SIGTERM. It keeps only ~5 MB per "
      "partition: not for production.");
  broker_cmd->add_option("--brokers", broker.brokers, "number of brokers")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  broker_cmd->add_option("--topic", broker.topics,
                         "create a topic, NAME[:PARTITIONS] (repeatable)");
  broker_cmd
      ->add_option("--port", broker.port,
                   "a fixed bootstrap port on 127.0.0.1 (default: "
                   "ephemeral; see below)")
      ->check(CLI::Range(1, 65535));
  AddLogOptions(broker_cmd, &log);
  broker_cmd->footer(kBrokerFooter);

  LoadgenCommandOptions loadgen;
  CLI::App* loadgen_cmd = app.add_subcommand(
      "loadgen",
      "Produce realistic synthetic web traffic (visitors, sessions, channels, "
      "conversions, revenue), keyed by visitor_id. Same --seed, same events.");
  loadgen_cmd->add_option("--brokers", loadgen.brokers, "bootstrap servers")
      ->required();
  loadgen_cmd->add_option("--topic", loadgen.topic, "topic to produce to")
      ->required();
  loadgen_cmd->add_option("--format", loadgen.format, "protobuf | json")
      ->capture_default_str();
  loadgen_cmd
      ->add_option("--rate", loadgen.rate,
                   "events per second of wall clock (0: as fast as "
                   "possible)")
      ->capture_default_str();
  loadgen_cmd
      ->add_option("--visitors", loadgen.visitors,
                   "size of the visitor population (default: enough for a "
                   "visitor to come back about every 4 h of event time, "
                   "10000 to 1000000; too few and their sessions run into "
                   "each other and rarely close, which loadgen warns of)")
      ->check(kAboveZero);
  loadgen_cmd
      ->add_option("--events", loadgen.events, "stop after this many events")
      ->check(kAboveZero);
  loadgen_cmd->add_option("--duration", loadgen.duration,
                          "stop after this long (e.g. 60s)");
  loadgen_cmd->add_option("--seed", loadgen.seed, "random seed")
      ->capture_default_str();
  loadgen_cmd->add_option("--start-time", loadgen.start_time,
                          "event time of the first event, RFC 3339 "
                          "(default: now; paced in real time, --event-rate "
                          "= --rate, about two minutes before now, so that "
                          "event time follows the wall clock once the first "
                          "sessions are under way: loadgen logs how much)");

  loadgen_cmd
      ->add_option("--event-rate", loadgen.event_rate,
                   "events per second of event time (default: --rate, "
                   "or 1000 with --rate 0); lower than --rate makes "
                   "event time run faster than the wall clock (e.g. "
                   "--rate 2000 --event-rate 20: 100x), so sessions "
                   "close sooner, as long as event time stays behind "
                   "the wall clock: start it in the past "
                   "(--start-time). The engine takes events at most "
                   "processing.max_future_skew (10m) ahead of when "
                   "their records were written, and those move its "
                   "event time only up to then")
      ->check(kAboveZero);
  AddShareOption(loadgen_cmd, "--duplicates", &loadgen.duplicates,
                 "sent twice");
  AddShareOption(loadgen_cmd, "--late", &loadgen.late,
                 "followed by a copy 1 h in the past");
  AddShareOption(loadgen_cmd, "--bots", &loadgen.bots,
                 "with a crawler's user agent");
  loadgen_cmd->add_option(
      "--disorder", loadgen.disorder,
      "arrival disorder: each event is produced up to this much event time "
      "late (e.g. 20s; keep it under the engine's "
      "processing.max_out_of_orderness for exact sessions; none by default)");
  loadgen_cmd
      ->add_option("--key", loadgen.key,
                   "record key: visitor (its visitor_id) | none (null: the "
                   "producer spreads records over partitions) | random")
      ->check(CLI::IsMember({"visitor", "none", "random"}))
      ->capture_default_str();
  AddShareOption(loadgen_cmd, "--garbage", &loadgen.garbage,
                 "followed by a record of random bytes");
  loadgen_cmd->add_flag("--no-user-agent", loadgen.no_user_agent,
                        "send no user agent, as a server-side collector or a "
                        "backend does (such events are visitors, not bots, "
                        "unless bots.empty_user_agent: bot)");
  loadgen_cmd->add_flag(
      "--campaign-in-url", loadgen.campaign_in_url,
      "put landing pages' utm_* parameters and click ids (gclid, fbclid) only "
      "in their page URL's query string, leaving the event's utm and "
      "click_id fields empty; the engine reads them from there");
  loadgen_cmd->add_flag(
      "--session-ids", loadgen.session_ids,
      "give every event its session's client session id (\"<visitor_id>-<n>\", "
      "as a GA4-style tag sends one), for an engine with "
      "sessions.session_source: client");
  AddLogOptions(loadgen_cmd, &log);
  loadgen_cmd->footer(kLoadgenFooter);

  std::string check_path;
  CLI::App* check_cmd = app.add_subcommand(
      "check-config",
      "Validate a config file: exit 0 when valid, else print every error "
      "with its key and line and exit 2.");
  check_cmd->add_option("file", check_path, "YAML config file")->required();
  check_cmd->footer(kCheckConfigFooter);

  std::string rules_config, rules_out;
  CLI::App* rules_cmd = app.add_subcommand(
      "rules",
      "Generate, from a config: Prometheus recording rules for every ratio "
      "KPI (bounce, engagement, single-page and long-session rate, "
      "conversion rate per goal, new-visitor share, pages per session, "
      "average session duration, AOV, ROAS) by site over 5m, 1h and 1d; "
      "alerting rules for every target (off target, multiwindow burn rate, "
      "behind pace, projected to miss the deadline) with a promtool test "
      "file that fires and clears each one; alerts on the engine itself "
      "(down, absent, not ready, restore failing, lag growing, watermark "
      "stalled, dead letters; job, runbook and dashboard links from the "
      "config's rules: section) with their promtool tests; a Grafana "
      "dashboard; a PrometheusRule manifest; an Alertmanager example.");
  rules_cmd->add_option("-c,--config", rules_config, "YAML config file")
      ->required();
  rules_cmd->add_option("-o,--out", rules_out, "output directory")->required();
  rules_cmd->footer(kRulesFooter);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // prints help, returns 0
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A command that is not one ("kpistream rnu"): CLI11 says only that a
    // subcommand is required; the word typed is named.
    std::string unknown;
    if (app.get_subcommands().empty()) {
      for (int i = 1; i < argc && unknown.empty(); ++i) {
        const std::string arg = argv[i];
        const std::string before = i > 1 ? argv[i - 1] : "";
        if (arg.empty() || arg[0] == '-' || before == "--log-level" ||
            before == "--log-format") {
          continue;
        }
        unknown = arg;
      }
    }
    std::string commands;
    for (const CLI::App* sub :
         app.get_subcommands([](CLI::App*) { return true; })) {
      commands += (commands.empty() ? "" : ", ") + sub->get_name();
    }
    const std::vector<CLI::App*> used = app.get_subcommands();
    // An option the binary does not have, before any command ("kpistream
    // -v" said only that a command is required: an audit).
    if (used.empty() && unknown.empty()) {
      for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.size() < 2 || arg[0] != '-') continue;
        const std::string name = arg.substr(0, arg.find('='));
        if (app.get_option_no_throw(name) != nullptr) continue;
        std::cerr << "kpistream: unknown option \"" << name
                  << "\" (a command first: " << commands
                  << "; its options after it)\n"
                  << "Run 'kpistream --help' for usage.\n";
        return 2;
      }
    }
    // With no command given, the one thing required of the binary itself
    // is a command (it has no required option).
    if (!unknown.empty() ||
        (used.empty() && dynamic_cast<const CLI::RequiredError*>(&e))) {
      std::cerr << "kpistream: "
                << (unknown.empty() ? std::string("a command is required")
                                    : "unknown command \"" + unknown + "\"")
                << " (the commands: " << commands << ")\n"
                << "Run 'kpistream --help' for usage.\n";
      return 2;
    }
    // CLI11's message, named by the command, and one hint: the command's
    // help (CLI11 adds "Run with --help for more information.").
    const std::string command =
        used.empty() ? "kpistream" : "kpistream " + used.back()->get_name();
    // A required option missing because its name was mistyped ("run
    // --confg x.yaml" said only "--config is required"): the words CLI11
    // did not take are named too.
    std::string not_taken;
    if (dynamic_cast<const CLI::RequiredError*>(&e) && !used.empty()) {
      for (const std::string& arg : used.back()->remaining()) {
        not_taken += (not_taken.empty() ? "" : " ") + arg;
      }
    }
    std::cerr << command << ": " << e.what()
              << (not_taken.empty() ? std::string()
                                    : " (not understood: " + not_taken + ")")
              << "\n"
              << "Run '" << command << " --help' for usage.\n";
    return 2;
  }

  SetLogFormat(ParseLogFormat(log.format).value_or(LogFormat::kText));
  SetLogLevel(ParseLogLevel(log.level).value_or(LogLevel::kInfo));
  InstallKafkaLogger();
  SetProtobufLogSink([](bool error, absl::string_view message) {
    Log(error ? LogLevel::kError : LogLevel::kWarn, "protobuf", message);
  });
  InstallStopHandlers();
  if (*run_cmd) return RunEngineCommand(run);
  if (*demo_cmd) return RunDemoCommand(demo);
  if (*broker_cmd) return RunBrokerCommand(broker);
  if (*loadgen_cmd) return RunLoadgenCommand(loadgen);
  if (*check_cmd) return RunCheckConfigCommand(check_path);
  if (*rules_cmd) return RunRulesCommand(rules_config, rules_out);
  return 2;
}
