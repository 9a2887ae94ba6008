#include "config/config.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Errors(const ConfigResult& r) {
  std::string out;
  for (const ConfigError& e : r.errors) out += e.ToString("cfg.yaml") + "\n";
  return out;
}

// "key@line:column" of every error, each of which must say `what`.
std::vector<std::string> Places(const ConfigResult& r,
                                const std::string& what) {
  std::vector<std::string> places;
  for (const ConfigError& e : r.errors) {
    places.push_back(absl::StrCat(e.key, "@", e.line, ":", e.column));
    EXPECT_THAT(e.message, HasSubstr(what)) << e.ToString("cfg.yaml");
  }
  return places;
}

// Review: keys the engine would ignore, or that it sets from keys of its
// own, are refused with the key to use; a group whose name makes invalid
// internal topic names is refused at kafka.group_id, not at the broker.
TEST(ConfigTest, KeysTheEngineWouldIgnoreOrOverrideAreRefused) {
  ConfigResult r = ParseConfig(
      "kafka:\n"
      "  properties: {bootstrap.servers: 'k:9092', group.id: shop,\n"
      "               transaction.timeout.ms: '3000', linger.ms: '5'}\n"
      "inputs: [{topic: a}]\n");
  EXPECT_THAT(
      Places(r, "is set by the engine from"),
      ::testing::ElementsAre("kafka.properties.bootstrap.servers@2:16",
                             "kafka.properties.group.id@2:45",
                             "kafka.properties.transaction.timeout.ms@3:16"));
  EXPECT_THAT(r.errors[0].message, HasSubstr("kafka.brokers"));
  EXPECT_THAT(r.errors[2].message, HasSubstr("processing.transaction_timeout"));

  r = ParseConfig(
      "inputs:\n"
      "  - {topic: a, format: json, host: www.example.com}\n"
      "  - {topic: b, kind: ad_cost, format: json, site: shop}\n"
      "  - {topic: c, format: combined_log, site: www,\n"
      "     host: 'https://www.example.com'}\n"
      "  - {topic: d, format: combined_log, site: www,\n"
      "     host: 'www.example.com:8080'}\n");
  EXPECT_THAT(Places(r, ""), ::testing::ElementsAre("inputs[0].host@2:36",
                                                    "inputs[1].site@3:51",
                                                    "inputs[2].host@5:12"));

  for (const char* group : {"kpi:prod", "team/kpi"}) {
    r = ParseConfig(absl::StrCat("kafka: {group_id: '", group,
                                 "'}\ninputs: [{topic: a}]\n"));
    ASSERT_FALSE(r.ok()) << group;
    EXPECT_EQ(r.errors[0].key, "kafka.group_id");
    EXPECT_THAT(r.errors[0].message, HasSubstr("-changelog"));
  }
  // With its own changelog topic and no re-keyed input, the group names no
  // topic: any group id.
  r = ParseConfig(
      "kafka: {group_id: 'kpi:prod'}\n"
      "inputs: [{topic: a, key: visitor_id}]\n"
      "outputs: {changelog: {topic: kpi.state}}\n");
  EXPECT_TRUE(r.ok()) << Errors(r);
}

TEST(ConfigTest, MinimalConfigTakesTheDefaults) {
  ConfigResult r = ParseConfig("inputs:\n  - topic: web.events\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  const Config& c = r.config;
  EXPECT_EQ(c.kafka.group_id, "kpistream");
  EXPECT_EQ(c.inputs[0].format, InputFormat::kProtobuf);
  EXPECT_EQ(c.processing.guarantee, Guarantee::kExactlyOnce);
  EXPECT_EQ(c.processing.max_out_of_orderness, absl::Seconds(30));
  EXPECT_EQ(c.processing.allowed_lateness, absl::Minutes(5));
  EXPECT_EQ(c.sessions.inactivity_timeout, absl::Minutes(30));
  EXPECT_EQ(c.sessions.max_length, absl::Hours(24));
  EXPECT_EQ(c.sessions.engaged_min_pageviews, 2);
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9464");
  EXPECT_EQ(c.metrics.label_values_max, 50);
  EXPECT_EQ(c.metrics.label_combinations_max, 10000);
  EXPECT_THAT(c.goals, ::testing::ElementsAre("signup", "lead", "purchase"));
}

TEST(ConfigTest, TheShippedExampleIsValid) {
  const char* dir = std::getenv("KPISTREAM_SOURCE_DIR");
  if (dir == nullptr) dir = KPISTREAM_DEFAULT_SOURCE_DIR;
  ConfigResult r =
      LoadConfigFile(std::string(dir) + "/config/examples/kpistream.yaml");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.inputs.size(), 1u);
  EXPECT_EQ(r.config.kpi_output.window, absl::Minutes(1));
}

TEST(ConfigTest, UnknownKeysAreErrorsWithLineAndHint) {
  ConfigResult r = ParseConfig(
      "inputs:\n"
      "  - topic: web.events\n"
      "sessions:\n"
      "  inactivty_timeout: 20m\n"
      "colour: blue\n");
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "sessions.inactivty_timeout");
  EXPECT_EQ(r.errors[0].line, 4);
  EXPECT_EQ(r.errors[0].column, 3);
  EXPECT_THAT(r.errors[0].message,
              HasSubstr("did you mean \"inactivity_timeout\""));
  EXPECT_EQ(r.errors[1].key, "colour");
  EXPECT_EQ(r.errors[1].line, 5);
  EXPECT_EQ(r.errors[1].ToString("cfg.yaml"),
            "cfg.yaml:5:1: colour: " + r.errors[1].message);
}

// ConfigChecks.kafka_property (kpistream passes librdkafka's verdict) makes
// a refused property an error at its key and line; a config loading plugins
// is left alone (their properties are known once they are loaded).
TEST(ConfigTest, TheBinarysKafkaPropertyCheckNamesKeyAndLine) {
  ConfigChecks checks;
  checks.kafka_property = [](const std::string& name, const std::string&) {
    return name == "no.such" ? std::string("No such property") : "";
  };
  const std::string yaml =
      "inputs: [{topic: web.events}]\n"
      "kafka:\n"
      "  properties:\n"
      "    socket.timeout.ms: 1000\n"
      "    no.such: 1\n";
  ConfigResult r = ParseConfig(yaml, checks);
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].ToString("c.yaml"),
            "c.yaml:5:5: kafka.properties.no.such: No such property");
  EXPECT_TRUE(ParseConfig(yaml).ok());  // without the binary's checks
  ConfigResult plugins = ParseConfig(
      yaml + "    plugin.library.paths: monitoring-interceptor\n", checks);
  EXPECT_TRUE(plugins.ok()) << Errors(plugins);
  EXPECT_EQ(plugins.config.kafka.properties.at("no.such"), "1");
}

// A key repeated in a mapping is an error at any depth: YAML parsers read
// one of the two and drop the other silently (QA: a second `processing:`
// section appended to a config to override it changed nothing).
TEST(ConfigTest, ARepeatedKeyIsAnErrorAtAnyDepth) {
  ConfigResult r = ParseConfig(
      "kafka:\n"
      "  brokers: 127.0.0.1:9092\n"
      "  properties: {linger.ms: '5', linger.ms: '50'}\n"
      "inputs:\n"
      "  - {topic: web.events, format: json, format: protobuf}\n"
      "processing:\n"
      "  instance_id: a\n"
      "processing:\n"
      "  max_future_skew: banana\n");
  EXPECT_THAT(
      Places(r, "duplicate key"),
      ::testing::ElementsAre("kafka.properties.linger.ms@3:32",
                             "inputs[0].format@5:39", "processing@8:1"));
  EXPECT_THAT(r.errors.back().message, HasSubstr("first at line 6"));
}

// Every section's parser (and the mappings inside them) reports a key it
// does not know by its full path, line and column.
TEST(ConfigTest, EverySectionNamesItsUnknownKeyAndLine) {
  ConfigResult r = ParseConfig(
      "kafka: {brokrs: x}\n"
      "inputs: [{topic: a, formt: json}]\n"
      "outputs: {kpi: {windw: 1m}, sesions: {}}\n"
      "processing: {guarantees: exactly_once}\n"
      "sessions: {timezon: UTC}\n"
      "metrics: {listn: x, label_allowlists: {sit: [a]}}\n"
      "goals: [signup]\n"
      "funnels: [{name: f, steps: [{page: /a, pag: /b}], step: 1}]\n"
      "targets: [{name: t, kpi: sessions, value: 1, window: 1h, vale: 2,\n"
      "           period_: 1}]\n"
      "channels: {search: [a]}\n"
      "bots: {patterns: [a]}\n"
      "rules: {jobs: x}\n");
  EXPECT_THAT(
      Places(r, "unknown key"),
      ::testing::ElementsAre(
          "kafka.brokrs@1:9", "inputs[0].formt@2:21", "outputs.kpi.windw@3:17",
          "outputs.sesions@3:29", "processing.guarantees@4:14",
          "sessions.timezon@5:12", "metrics.listn@6:11",
          "metrics.label_allowlists.sit@6:40", "funnels[0].steps[0].pag@8:40",
          "funnels[0].step@8:51", "targets[0].vale@9:58",
          "targets[0].period_@10:12", "channels.search@11:12",
          "bots.patterns@12:8", "rules.jobs@13:9"))
      << Errors(r);
}

// A section written with no value: the list and mapping sections that have
// defaults keep them; the others expect their mapping or list, at the key
// (yaml-cpp marks an empty value where the next token starts: lines on,
// past comments, or past the end of the file: an audit).
TEST(ConfigTest, AnEmptySectionKeepsItsDefaultsOrIsAnError) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\nbots:\nchannels:\nfunnels:\ntargets:\nrules:\n");
  EXPECT_TRUE(r.ok()) << Errors(r);
  for (const char* section :
       {"kafka", "outputs", "processing", "sessions", "metrics"}) {
    r = ParseConfig(absl::StrCat("inputs: [{topic: a}]\n", section, ":\n"));
    EXPECT_THAT(Errors(r),
                HasSubstr(absl::StrCat("cfg.yaml:2:1: ", section,
                                       ": has no value (expected a mapping")));
  }
  r = ParseConfig("inputs: [{topic: a}]\ngoals:\n");
  EXPECT_THAT(Errors(r), HasSubstr("cfg.yaml:2:1: goals: has no value "
                                   "(expected a list of goal names"));
  r = ParseConfig("inputs:\n");
  EXPECT_THAT(Errors(r),
              HasSubstr("cfg.yaml:1:1: inputs: has no value (expected a list "
                        "of inputs"));
  r = ParseConfig(
      "inputs: [{topic: a}]\nsessions:\n  inactivity_timeout:\n  # a note\n"
      "\n  # another\nprocessing:\n  threads:\n");
  EXPECT_THAT(Errors(r),
              HasSubstr("cfg.yaml:3:3: sessions.inactivity_timeout: has no "
                        "value (expected a duration"));
  EXPECT_THAT(Errors(r), HasSubstr("cfg.yaml:8:3: processing.threads: has no "
                                   "value (expected a whole number"));
}

TEST(ConfigTest, EveryErrorIsReportedAtOnce) {
  ConfigResult r = ParseConfig(
      "inputs:\n"
      "  - topic: web.events\n"
      "    format: xml\n"
      "processing:\n"
      "  guarantee: maybe\n"
      "  allowed_lateness: 30\n"
      "sessions:\n"
      "  engaged_min_pageviews: 0\n"
      "metrics:\n"
      "  listen: localhost\n"
      "  label_values_max: 100000\n"
      "  label_combinations_max: 0\n");
  EXPECT_EQ(r.errors.size(), 7u) << Errors(r);
  const std::string all = Errors(r);
  EXPECT_THAT(all, HasSubstr("cfg.yaml:3:13: inputs[0].format: expected one of "
                             "protobuf | json | combined_log, got \"xml\""));
  EXPECT_THAT(all, HasSubstr("cfg.yaml:5:14: processing.guarantee"));
  EXPECT_THAT(
      all, HasSubstr(
               "processing.allowed_lateness: expected a duration with a unit"));
  EXPECT_THAT(
      all,
      HasSubstr("sessions.engaged_min_pageviews: must be between 1 and 1000"));
  EXPECT_THAT(all, HasSubstr("metrics.listen: expected host:port"));
  EXPECT_THAT(all, HasSubstr("metrics.label_values_max"));
  EXPECT_THAT(all, HasSubstr("metrics.label_combinations_max: must be between "
                             "1 and 10000000"));
}

TEST(ConfigTest, ListenWithoutAHostMeansEveryInterface) {
  // ":9464" is how Go exporters (and many Helm charts) write "every
  // interface"; it was refused as "expected host:port".
  ConfigResult r = ParseConfig(
      "inputs: [{topic: web.events}]\n"
      "metrics: {listen: ':9464'}\n");
  EXPECT_TRUE(r.errors.empty()) << Errors(r);
  EXPECT_EQ(r.config.metrics.listen, ":9464");
  std::string host = "unset";
  int port = -1;
  ASSERT_TRUE(ParseListenAddress(":9464", &host, &port).ok());
  EXPECT_EQ(host, "");
  EXPECT_EQ(port, 9464);
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: web.events}]\n"
                                 "metrics: {listen: ':'}\n")),
              HasSubstr("metrics.listen: bad port"));
}

// The listen address's host is checked by check-config (exit 2), not left
// to the HTTP server's bind: it took "999.1.1.1" for 231.1.1.1 and
// listened there unreachable, and refused the others at the start with a
// message of its own, exit 1 (audit).
TEST(ConfigTest, AListenHostIsAnIPv4AddressOrAHostName) {
  for (const char* good :
       {"127.0.0.1:9464", "0.0.0.0:0", "255.255.255.255:1", "localhost:9464",
        "metrics-0.kpistream.svc.cluster.local:9464", ":9464"}) {
    SCOPED_TRACE(good);
    EXPECT_TRUE(ParseListenAddress(good, nullptr, nullptr).ok());
  }
  const std::pair<const char*, const char*> bad[] = {
      {"999.1.1.1:9464", "each part of an IPv4 address is 0..255"},
      {"256.256.256.256:9464", "each part of an IPv4 address is 0..255"},
      {"127.1:9464", "an IPv4 address has four parts"},
      {"1.2.3:9464", "an IPv4 address has four parts"},
      {"[::1]:9464", "IPv6 addresses are not supported"},
      {"http://127.0.0.1:9464", "a URL, not a host"},
      {"my_host:9464", "not an IPv4 address or a host name"},
      {"-x.example:9464", "not an IPv4 address or a host name"},
  };
  for (const auto& [address, why] : bad) {
    SCOPED_TRACE(address);
    const absl::Status s = ParseListenAddress(address, nullptr, nullptr);
    EXPECT_THAT(std::string(s.message()), HasSubstr(why));
    EXPECT_THAT(
        Errors(ParseConfig(absl::StrCat("inputs: [{topic: web.events}]\n"
                                        "metrics: {listen: '",
                                        address, "'}\n"))),
        HasSubstr("metrics.listen: bad host"));
  }
}

// An error quotes what the user wrote; a line break or another control
// character in it is escaped, so that each error is one line (an audit: a
// goal name with a line break split its error in two).
TEST(ConfigTest, AnErrorIsOneLineWhateverTheUserWrote) {
  const ConfigResult r = ParseConfig(
      "inputs: [{topic: web.events}]\n"
      "goals: [\"go\\nal\", \"b\\tc\\u001b[2J\"]\n");
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  EXPECT_EQ(r.errors[0].ToString("c.yaml"),
            "c.yaml:2:9: goals[0]: goal names are [a-z0-9_]+, got \"go\\nal\"");
  EXPECT_EQ(r.errors[1].ToString("c.yaml"),
            "c.yaml:2:19: goals[1]: goal names are [a-z0-9_]+, got "
            "\"b\\tc\\x1b[2J\"");
}

TEST(ConfigTest, InputsAreRequiredAndValidated) {
  EXPECT_THAT(Errors(ParseConfig("kafka: {group_id: g}\n")),
              HasSubstr("inputs: at least one input topic is required"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: 'bad topic!'}]\n")),
              HasSubstr("not a valid Kafka topic name"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}, {topic: a}]\n")),
              HasSubstr("listed twice"));
  EXPECT_THAT(
      Errors(ParseConfig("inputs: [{topic: a, format: combined_log}]\n")),
      HasSubstr("inputs[0].site: is required with format: combined_log"));
}

// An access log's application endpoints (an SPA's API calls) are paths the
// site names: skip_paths, globs on a combined_log input; refused elsewhere
// and when a glob is no path.
TEST(ConfigTest, SkipPathsAreAnAccessLogsPathGlobs) {
  ConfigResult r = ParseConfig(
      "inputs:\n"
      "  - {topic: a, format: combined_log, site: www, host: www.example.com,\n"
      "     skip_paths: ['/api/*', '/graphql', '*.json']}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_THAT(r.config.inputs[0].skip_paths,
              ::testing::ElementsAre("/api/*", "/graphql", "*.json"));
  r = ParseConfig(
      "inputs:\n"
      "  - {topic: a, format: json, skip_paths: ['/api/*']}\n"
      "  - {topic: b, format: combined_log, site: www, host: w.example,\n"
      "     skip_paths: 'api'}\n"
      "  - {topic: c, format: combined_log, site: www, host: w.example,\n"
      "     skip_paths: ['api/*', '/ok']}\n");
  EXPECT_THAT(Places(r, ""),
              ::testing::ElementsAre("inputs[0].skip_paths@2:42",
                                     "inputs[1].skip_paths@4:18",
                                     "inputs[2].skip_paths@6:19"));
  EXPECT_THAT(Errors(r), HasSubstr("only a format: combined_log"));
  EXPECT_THAT(Errors(r), HasSubstr("expected a list of path globs"));
  EXPECT_THAT(Errors(r), HasSubstr("a path glob starting with / or *"));
  // A site is a label value: one longer than 512 bytes would be "(other)"
  // (an audit: check-config said OK, every series was site="(other)").
  r = ParseConfig("inputs:\n  - {topic: a, format: combined_log, site: " +
                  std::string(513, 's') + "}\n");
  EXPECT_THAT(Errors(r), HasSubstr("inputs[0].site: is 513 bytes long"));
  r = ParseConfig("inputs:\n  - {topic: a, format: combined_log, site: " +
                  std::string(512, 's') + "}\n");
  EXPECT_TRUE(r.ok()) << Errors(r);
}

TEST(ConfigTest, InputsAreReKeyedUnlessKeyedByVisitor) {
  ConfigResult r = ParseConfig(
      "kafka: {group_id: shop}\n"
      "inputs: [{topic: a}, {topic: b, key: visitor_id},\n"
      "         {topic: c, kind: ad_cost}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.inputs[0].key, InputKey::kAny);  // the safe default
  EXPECT_EQ(r.config.inputs[1].key, InputKey::kVisitorId);
  EXPECT_TRUE(NeedsRepartition(r.config));
  EXPECT_EQ(RepartitionTopic(r.config), "shop-repartition");
  r = ParseConfig("inputs: [{topic: a, key: visitor_id}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_FALSE(NeedsRepartition(r.config));

  EXPECT_THAT(
      Errors(ParseConfig("inputs: [{topic: a, key: session}]\n")),
      HasSubstr(
          "inputs[0].key: expected one of any | visitor_id, got \"session\""));
  EXPECT_THAT(
      Errors(ParseConfig("inputs: [{topic: a, kind: ad_cost, key: any}]\n")),
      HasSubstr("inputs[0].key: applies to events inputs only"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a, format: combined_log, "
                                 "site: s, key: visitor_id}]\n")),
              HasSubstr("use key: any"));
  EXPECT_THAT(
      Errors(ParseConfig("kafka: {group_id: g}\n"
                         "inputs: [{topic: a}, {topic: g-repartition}]\n")),
      HasSubstr("inputs[1].topic: \"g-repartition\" is the engine's internal "
                "repartition topic"));
}

// The internal topics (repartition, changelog) are written uncompressed,
// unless the user chose a compression for every topic.
TEST(ConfigTest, InternalTopicsAreUncompressedUnlessTheUserSaysOtherwise) {
  using TopicProperties =
      std::map<std::string, std::map<std::string, std::string>>;
  const std::map<std::string, std::string> none = {
      {"compression.type", "none"}};
  ConfigResult r = ParseConfig(
      "kafka: {group_id: shop}\n"
      "inputs: [{topic: a}, {topic: b, key: visitor_id}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(
      ProducerTopicProperties(r.config),
      (TopicProperties{{"shop-repartition", none}, {"shop-changelog", none}}));
  for (const char* name : {"compression.type", "compression.codec"}) {
    r = ParseConfig(absl::StrCat("kafka: {group_id: shop, properties: {", name,
                                 ": zstd}}\n"
                                 "inputs: [{topic: a}]\n"));
    ASSERT_TRUE(r.ok()) << Errors(r);
    EXPECT_EQ(ProducerTopicProperties(r.config), TopicProperties{}) << name;
  }
  r = ParseConfig(
      "kafka: {group_id: shop}\n"
      "inputs: [{topic: a, key: visitor_id}]\n"
      "outputs: {changelog: {topic: shop.state}}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(ProducerTopicProperties(r.config),
            (TopicProperties{{"shop.state", none}}));
}
TEST(ConfigTest, StateDirDefaultsToTheTempDirAndTakesVariables) {
  ConfigResult r = ParseConfig("kafka: {group_id: g}\ninputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.state_dir, "");  // the engine's default
  setenv("KPISTREAM_TEST_STATE", "/var/lib/kpi", 1);
  r = ParseConfig(
      "kafka: {group_id: g}\ninputs: [{topic: a}]\n"
      "processing: {state_dir: '${KPISTREAM_TEST_STATE}/state'}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.state_dir, "/var/lib/kpi/state");
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {state_dir: ''}\n")),
              HasSubstr("cfg.yaml:2:25: processing.state_dir: must name a "
                        "directory"));
}

TEST(ConfigTest, CommitIntervalIsBoundedByTheTransactionTimeout) {
  ConfigResult r = ParseConfig("inputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.commit_interval, absl::Seconds(1));
  r = ParseConfig(
      "inputs: [{topic: a}]\nprocessing: {commit_interval: 200ms}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.commit_interval, absl::Milliseconds(200));

  EXPECT_THAT(
      Errors(ParseConfig(
          "inputs: [{topic: a}]\nprocessing: {commit_interval: 5ms}\n")),
      HasSubstr("cfg.yaml:2:31: processing.commit_interval: must be at least "
                "10ms, got 5ms"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {commit_interval: 10s}\n")),
              HasSubstr("processing.commit_interval: must be shorter than "
                        "processing.transaction_timeout (10s)"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {commit_interval: 0s}\n")),
              HasSubstr("processing.commit_interval: must be greater than 0"));
  r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "processing: {commit_interval: 20s, transaction_timeout: 60s}\n");
  EXPECT_TRUE(r.ok()) << Errors(r);
  EXPECT_TRUE(r.warnings.empty());
  // The Kafka client's limit (25d passed, and the start failed with a
  // wrapped number: an audit), and a warning past the brokers' default.
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {transaction_timeout: 25d}\n")),
              HasSubstr("processing.transaction_timeout: must be from 1s to "
                        "24d"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {transaction_timeout: 999ms, "
                                 "commit_interval: 100ms}\n")),
              HasSubstr("processing.transaction_timeout: must be from 1s"));
  r = ParseConfig(
      "inputs: [{topic: a}]\nprocessing: {transaction_timeout: 24d}\n");
  EXPECT_TRUE(r.ok()) << Errors(r);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_THAT(r.warnings[0].message,
              HasSubstr("transaction.max.timeout.ms (15m)"));
  // The default interval against a short timeout (was accepted, and every
  // transaction would have been aborted).
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {transaction_timeout: 1s}\n")),
              HasSubstr("cfg.yaml:2:35: processing.transaction_timeout: must "
                        "be longer than processing.commit_interval (1s, its "
                        "default)"));
  // An interval given but not a duration is that key's error alone.
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {commit_interval: soon, "
                                 "transaction_timeout: 1s}\n")),
              Not(HasSubstr("its default")));
}

// A caught-up thread commits min_commit_interval after its last commit
// (engine/commit_schedule.h): 100ms unless commit_interval is shorter.
TEST(ConfigTest, MinCommitIntervalIsBoundedByTheCommitInterval) {
  ConfigResult r = ParseConfig("inputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.min_commit_interval, absl::Milliseconds(100));
  r = ParseConfig(
      "inputs: [{topic: a}]\nprocessing: {commit_interval: 50ms}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.min_commit_interval, absl::Milliseconds(50));
  r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "processing: {commit_interval: 2s, min_commit_interval: 2s}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.min_commit_interval, absl::Seconds(2));

  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {min_commit_interval: 2s}\n")),
              HasSubstr("cfg.yaml:2:35: processing.min_commit_interval: must "
                        "not be longer than processing.commit_interval (1s)"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {min_commit_interval: 1ms}\n")),
              HasSubstr("processing.min_commit_interval: must be at least "
                        "10ms, got 1ms"));
}

// A thread that stays behind commits less often, up to max_commit_interval
// (engine/commit_schedule.h): 4 times commit_interval unless that reaches
// half of transaction_timeout, never below commit_interval.
TEST(ConfigTest, MaxCommitIntervalDefaultsAndBounds) {
  ConfigResult r = ParseConfig("inputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.max_commit_interval, absl::Seconds(4));
  r = ParseConfig(
      "inputs: [{topic: a}]\nprocessing: {commit_interval: 200ms}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.max_commit_interval, absl::Milliseconds(800));
  r = ParseConfig("inputs: [{topic: a}]\nprocessing: {commit_interval: 2s}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.max_commit_interval, absl::Seconds(5));
  r = ParseConfig("inputs: [{topic: a}]\nprocessing: {commit_interval: 8s}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.max_commit_interval, absl::Seconds(8));
  r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "processing: {commit_interval: 2s, max_commit_interval: 2s}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.max_commit_interval, absl::Seconds(2));
  r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "processing: {max_commit_interval: 30s, transaction_timeout: 60s}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.max_commit_interval, absl::Seconds(30));

  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {max_commit_interval: 500ms}\n")),
              HasSubstr("cfg.yaml:2:35: processing.max_commit_interval: must "
                        "not be shorter than processing.commit_interval (1s)"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {max_commit_interval: 10s}\n")),
              HasSubstr("processing.max_commit_interval: must be shorter than "
                        "processing.transaction_timeout (10s)"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {max_commit_interval: 5ms}\n")),
              HasSubstr("processing.max_commit_interval: must be at least "
                        "10ms, got 5ms"));
}

// An output is never an input nor another output: a dead-letter topic that
// was also the input read each rejected record back without end (review).
TEST(ConfigTest, OutputTopicsAreTheEnginesOwn) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: web.events, format: json}]\n"
      "outputs:\n"
      "  deadletter: {topic: web.events}\n"
      "  kpi: {topic: web.sessions}\n");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "outputs.deadletter.topic");
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_THAT(r.errors[0].message,
              HasSubstr("\"web.events\" is also inputs[0].topic"));
  EXPECT_EQ(r.errors[1].key, "outputs.kpi.topic");
  EXPECT_EQ(r.errors[1].line, 4);
  EXPECT_THAT(r.errors[1].message,
              HasSubstr("\"web.sessions\" is also outputs.sessions.topic"));
  // The changelog too, and an ad-cost input; a disabled output writes
  // nothing.
  r = ParseConfig(
      "inputs: [{topic: web.events}, {topic: ad.cost, kind: ad_cost}]\n"
      "outputs:\n"
      "  changelog: {topic: ad.cost}\n"
      "  sessions: {topic: web.events, enabled: false}\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "outputs.changelog.topic");
  EXPECT_THAT(r.errors[0].message, HasSubstr("is also inputs[1].topic"));
}

// A Config built in code (the demo's) gets the whole-config checks too;
// from YAML they carry the line of the key at fault.
TEST(ConfigTest, ValidateChecksAConfigBuiltInCode) {
  Config config;
  config.kafka.group_id = "";
  std::vector<ConfigError> errors = Validate(config);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].key, "kafka.group_id");
  EXPECT_EQ(errors[1].key, "inputs");
  config.kafka.group_id = "g";
  config.inputs.push_back({"g-repartition", InputKind::kEvents,
                           InputFormat::kJson, "", "", InputKey::kAny});
  errors = Validate(config);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].key, "inputs[0].topic");
  config.inputs[0].topic = "web.events";
  EXPECT_TRUE(Validate(config).empty());

  ConfigResult r = ParseConfig(
      "kafka: {group_id: g}\n"
      "inputs:\n"
      "  - {topic: a}\n"
      "  - {topic: g-repartition}\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].line, 4);
  EXPECT_THAT(r.errors[0].ToString("c.yaml"), HasSubstr("c.yaml:4:"));
  r = ParseConfig("kafka: {group_id: ''}\ninputs: [{topic: a}]\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_THAT(r.errors[0].ToString("c.yaml"),
              HasSubstr("c.yaml:1:19: kafka.group_id: must not be empty"));
}

TEST(ConfigTest, EnvironmentVariablesAreExpandedAndNeverEchoed) {
  setenv("KPI_TEST_SECRET", "s3cr3t", 1);
  ConfigResult r = ParseConfig(
      "kafka:\n  properties:\n    sasl.password: ${KPI_TEST_SECRET}\n"
      "inputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.kafka.properties.at("sasl.password"), "s3cr3t");
  unsetenv("KPI_TEST_SECRET_MISSING");
  r = ParseConfig(
      "kafka:\n  properties:\n    sasl.password: x${KPI_TEST_SECRET_MISSING}\n"
      "inputs: [{topic: a}]\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].key, "kafka.properties.sasl.password");
  EXPECT_THAT(r.errors[0].message,
              HasSubstr("KPI_TEST_SECRET_MISSING is not set"));
}

// A value from the environment given to kafka.properties (where secrets
// are) is echoed by no error, as wired to the wrong key (an audit:
// librdkafka's "Invalid value" quoted the secret for security.protocol,
// and metrics.listen's error did for the same variable); those values are
// kept for the logs' redaction.
TEST(ConfigTest, AnErrorShowsAnExpandedValueAsWritten) {
  setenv("KPI_TEST_SECRET", "S3cr3tPa55", 1);
  ConfigChecks checks;
  checks.kafka_property = [](const std::string& name,
                             const std::string& value) -> std::string {
    if (name != "security.protocol") return "";
    return absl::StrCat("Invalid value \"", value, "\" for ", name);
  };
  ConfigResult r = ParseConfig(
      "kafka:\n  properties:\n    security.protocol: ${KPI_TEST_SECRET}\n"
      "    sasl.password: ${KPI_TEST_SECRET}\n"
      "inputs: [{topic: a}]\nmetrics: {listen: '${KPI_TEST_SECRET}'}\n",
      checks);
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  for (const ConfigError& e : r.errors) {
    EXPECT_THAT(e.message, Not(HasSubstr("S3cr3tPa55"))) << e.key;
    EXPECT_THAT(e.message, HasSubstr("${KPI_TEST_SECRET}")) << e.key;
  }
  EXPECT_THAT(r.expanded_secrets, ::testing::Contains("S3cr3tPa55"));
}

// SPEC §8's `instance_id: ${HOSTNAME}` passes where the shell set HOSTNAME
// without exporting it (review: "HOSTNAME is not set", and a second error
// about the characters of the unexpanded text); a variable that is not set
// is one error.
TEST(ConfigTest, HostnameIsTheHostsNameWhereNotExported) {
  const char* exported = std::getenv("HOSTNAME");
  const std::string saved = exported != nullptr ? exported : "";
  unsetenv("HOSTNAME");
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\nprocessing:\n  instance_id: ${HOSTNAME}\n");
  if (exported != nullptr) setenv("HOSTNAME", saved.c_str(), 1);
  ASSERT_TRUE(r.ok()) << Errors(r);
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(r.config.processing.instance_id, host);
  EXPECT_FALSE(r.config.processing.instance_id.empty());

  unsetenv("KPI_TEST_INSTANCE_MISSING");
  r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "processing:\n  instance_id: ${KPI_TEST_INSTANCE_MISSING}\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "processing.instance_id");
  EXPECT_THAT(r.errors[0].message,
              HasSubstr("KPI_TEST_INSTANCE_MISSING is not set"));
}

// Topic names and the group differ per environment ("prod.web.events"):
// ${VAR} is expanded in them as in the brokers and secrets (before
// 2026-12-05 `topic: ${ENV}.web.events` was "not a valid Kafka topic
// name"). `rules`, which expands nothing, takes them as written.
TEST(ConfigTest, TopicsAndTheGroupTakeEnvironmentVariables) {
  setenv("KPI_TEST_ENV", "prod", 1);
  const std::string yaml =
      "kafka: {group_id: '${KPI_TEST_ENV}-kpi'}\n"
      "inputs: [{topic: '${KPI_TEST_ENV}.web.events'}]\n"
      "outputs:\n"
      "  sessions: {topic: '${KPI_TEST_ENV}.web.sessions'}\n"
      "  deadletter: {topic: 'dl.${KPI_TEST_ENV}'}\n";
  ConfigResult r = ParseConfig(yaml);
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.kafka.group_id, "prod-kpi");
  EXPECT_EQ(r.config.inputs.at(0).topic, "prod.web.events");
  EXPECT_EQ(r.config.sessions_output.topic, "prod.web.sessions");
  EXPECT_EQ(r.config.deadletter_output.topic, "dl.prod");
  EXPECT_EQ(r.config.changelog_output.topic, "prod-kpi-changelog");
  EXPECT_EQ(RepartitionTopic(r.config), "prod-kpi-repartition");
  setenv("KPI_TEST_LISTEN", "127.0.0.7:9464", 1);
  r = ParseConfig(
      "inputs: [{topic: a}]\nmetrics: {listen: '${KPI_TEST_LISTEN}'}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.metrics.listen, "127.0.0.7:9464");

  // A value that is no topic name is one error, naming the key.
  setenv("KPI_TEST_ENV", "pr od", 1);
  r = ParseConfig("inputs: [{topic: '${KPI_TEST_ENV}.web.events'}]\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "inputs[0].topic");
  EXPECT_THAT(r.errors[0].message,
              HasSubstr("\"pr od.web.events\" is not a valid Kafka topic"));
  setenv("KPI_TEST_ENV", "${X}", 1);
  r = ParseConfig(
      "kafka: {group_id: '${KPI_TEST_ENV}'}\ninputs: [{topic: a}]\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "kafka.group_id");

  unsetenv("KPI_TEST_ENV");
  r = ParseConfig(yaml);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(Errors(r), HasSubstr("KPI_TEST_ENV is not set"));
  ConfigChecks as_written;
  as_written.expand_variables = false;
  r = ParseConfig(yaml, as_written);
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.inputs.at(0).topic, "${KPI_TEST_ENV}.web.events");
  r = ParseConfig(
      "inputs: [{topic: a}]\nmetrics: {listen: '${KPI_TEST_LISTEN}'}\n",
      as_written);
  ASSERT_TRUE(r.ok()) << Errors(r);
}

TEST(ConfigTest, YamlSyntaxErrorHasALine) {
  ConfigResult r = ParseConfig("inputs:\n  - topic: [unclosed\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_GT(r.errors[0].line, 0);
  EXPECT_THAT(r.errors[0].message, HasSubstr("YAML syntax error"));
}

// A rolling window the rules' increase() reads with too few scrapes (a 1m
// window at Prometheus' default 1m interval: a count read 0 and an
// at-least target alerted for good; an audit) is warned about.
TEST(ConfigTest, AWindowOfFewScrapesIsWarnedAbout) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\ntargets:\n"
      "  - {name: s, kpi: sessions, value: 5, window: 90s}\n"
      "  - {name: t, kpi: sessions, value: 5, window: 4m}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].key, "targets[0].window");
  EXPECT_THAT(r.warnings[0].message, HasSubstr("shorter than 4m"));
}

// The checks of the whole config (topics, the group) are said beside other
// keys' errors (an audit: a topic clash only after a typo in `sessions` was
// mended), but not when a key they read has an error of its own.
TEST(ConfigTest, TopicClashesAreSaidBesideOtherErrors) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: web.events}]\n"
      "outputs: {sessions: {topic: web.events}}\n"
      "sessions: {inactivty_timeout: 30m}\n");
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  EXPECT_THAT(Errors(r), HasSubstr("cfg.yaml:2:29: outputs.sessions.topic: "
                                   "\"web.events\" is also inputs[0].topic"));
  EXPECT_THAT(Errors(r), HasSubstr("sessions.inactivty_timeout"));
  r = ParseConfig(
      "inputs: [{topic: web.events, format: yaml}]\n"
      "outputs: {sessions: {topic: web.events}}\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "inputs[0].format");
}

// Names the dashboard would read as Grafana variables or templates are
// warned about (an audit: "$site" in a target's name showed the site
// variable's value); ${...} is this config's own variables.
TEST(ConfigTest, NamesGrafanaWouldReadAsVariablesAreWarnedAbout) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\ntargets:\n"
      "  - {name: 'cost $site', kpi: sessions, value: 5, window: 1h}\n"
      "  - {name: 'a {{x}}', kpi: sessions, value: 5, window: 1h}\n"
      "  - {name: 'US$ 5 [x]', kpi: sessions, value: 5, window: 1h}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_EQ(r.warnings[0].key, "targets[0].name");
  EXPECT_THAT(r.warnings[0].message, HasSubstr("Grafana variable"));
  EXPECT_EQ(r.warnings[1].key, "targets[1].name");
}

// YAML aliases make the tree a graph: one inside what its anchor names
// crashed every walk of the config (its stack), aliases of aliases made one
// run for minutes (an audit). Both are errors; aliases themselves are fine.
TEST(ConfigTest, AliasesThatNeverEndAreErrors) {
  for (const char* yaml :
       {"a: &a [*a]\n", "inputs: [{topic: a}]\ngoals: &g [signup, *g]\n",
        "inputs: &i [{topic: a}, *i]\n"}) {
    const ConfigResult r = ParseConfig(yaml);
    ASSERT_EQ(r.errors.size(), 1u) << yaml << Errors(r);
    EXPECT_THAT(r.errors[0].message, HasSubstr("alias inside what its anchor"));
    EXPECT_GT(r.errors[0].line, 0);
  }
  std::string bomb = "a: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    absl::StrAppend(&bomb, "b", i, ": &a", i, " [");
    for (int j = 0; j < 10; ++j)
      absl::StrAppend(&bomb, j ? ", " : "", "*a", i - 1);
    absl::StrAppend(&bomb, "]\n");
  }
  const ConfigResult r = ParseConfig(bomb);
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_THAT(r.errors[0].message, HasSubstr("more than 100000 values"));
  const ConfigResult shared = ParseConfig(
      "inputs: [{topic: a}]\ngoals: [signup]\nfunnels:\n"
      "  - {name: f, steps: &s [{name: a, page: /a}, {name: b, goal: "
      "signup}]}\n"
      "  - {name: g, steps: *s}\n");
  EXPECT_TRUE(shared.ok()) << Errors(shared);
}

// A second YAML document is an error at its `---` (it was ignored: its
// keys never applied, and check-config said OK); a `---` before the first,
// or a trailing one, is no second document.
TEST(ConfigTest, ASecondYamlDocumentIsAnError) {
  ConfigResult r =
      ParseConfig("inputs: [{topic: a}]\n---\nprocessing: {threads: 2}\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].line, 2);  // its `---`
  EXPECT_THAT(r.errors[0].message, HasSubstr("a second YAML document"));
  r = ParseConfig("---\ninputs: [{topic: a}]\n---\n# nothing more\n");
  EXPECT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.inputs.at(0).topic, "a");
  r = ParseConfig("inputs: [{topic: a}]\n--- {processing: {threads: 2}}\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].line, 2);
  // A `---` inside a block scalar's text is indented: no document.
  r = ParseConfig(
      "inputs: [{topic: a}]\ntargets:\n  - name: t\n    objective: |\n"
      "      ---\n      more\n    kpi: sessions\n    value: 1\n"
      "    window: 1d\n");
  EXPECT_TRUE(r.ok()) << Errors(r);
}

// What the config fuzzer found: YAML::LoadAll never returned on these 14
// bytes (the check of a second document used it for a while).
TEST(ConfigTest, AFuzzerFoundInputEndsWithAnError) {
  const ConfigResult r = ParseConfig(",npukss:\n  -\x9d");
  EXPECT_FALSE(r.ok());
}

// kafka.brokers is a list of HOST[:PORT] (librdkafka took "foo bar,," and
// failed to resolve it 30 s into a run).
TEST(ConfigTest, AMalformedBrokerListIsAnError) {
  for (const char* ok :
       {"127.0.0.1:9092", "kafka-1:9092, kafka-2:9092", "kafka", "[::1]:9092",
        "SASL_SSL://kafka.example.com:9093,PLAINTEXT://b:9092"}) {
    ConfigResult r = ParseConfig(
        absl::StrCat("kafka: {brokers: '", ok, "'}\ninputs: [{topic: a}]\n"));
    EXPECT_TRUE(r.ok()) << ok << ": " << Errors(r);
  }
  for (const auto& [bad, says] :
       std::vector<std::pair<const char*, const char*>>{
           {"foo bar,,", "holds a space"},
           {"a:9092,,b:9092", "has an empty entry"},
           {"a:99999", "is not HOST:PORT"},
           {"a:", "is not HOST:PORT"}}) {
    ConfigResult r = ParseConfig(
        absl::StrCat("kafka: {brokers: '", bad, "'}\ninputs: [{topic: a}]\n"));
    ASSERT_EQ(r.errors.size(), 1u) << bad;
    EXPECT_EQ(r.errors[0].key, "kafka.brokers");
    EXPECT_THAT(r.errors[0].message, HasSubstr(says)) << bad;
  }
}

// The whole config's checks point at their own keys' lines, however many
// (looking one up rewrote the YAML tree, and the errors after the first
// pointed at the wrong lines: outputs.deadletter.topic at `sessions:`).
TEST(ConfigTest, EveryCrossKeyErrorHasItsKeysLine) {
  ConfigResult r = ParseConfig(
      "inputs:\n"
      "  - topic: web.events\n"
      "outputs:\n"
      "  sessions: {topic: web.events}\n"
      "  deadletter: {topic: web.events}\n");
  ASSERT_EQ(r.errors.size(), 3u) << Errors(r);
  std::map<std::string, std::set<int>> lines;
  for (const ConfigError& e : r.errors) lines[e.key].insert(e.line);
  EXPECT_EQ(lines["outputs.sessions.topic"], std::set<int>{4});
  EXPECT_EQ(lines["outputs.deadletter.topic"], std::set<int>{5});
}

TEST(ConfigTest, UnreadableFileNamesTheProblem) {
  ConfigResult r = LoadConfigFile("/nonexistent/kpistream.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].ToString("/nonexistent/kpistream.yaml"),
              HasSubstr("cannot read config file"));
  EXPECT_TRUE(r.unreadable);
  r = LoadConfigFile(::testing::TempDir());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].message, HasSubstr("it is a directory"));
  EXPECT_TRUE(r.unreadable);
  // A file without end (it ran the process out of memory: an audit).
  r = LoadConfigFile("/dev/zero");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].message, HasSubstr("larger than 16 MiB"));
  EXPECT_TRUE(r.unreadable);
  // A file read, with errors, is not unreadable (run then points to
  // check-config).
  const std::string path = ::testing::TempDir() + "/unclosed.yaml";
  std::ofstream(path) << "inputs: [\n";
  r = LoadConfigFile(path);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.unreadable);
  std::remove(path.c_str());
}

TEST(DurationTest, Table) {
  struct Case {
    const char* text;
    absl::Duration want;
  };
  for (const Case& c :
       {Case{"250ms", absl::Milliseconds(250)}, Case{"30s", absl::Seconds(30)},
        Case{"5m", absl::Minutes(5)}, Case{"1h", absl::Hours(1)},
        Case{"1d", absl::Hours(24)}, Case{"1h30m", absl::Minutes(90)},
        Case{"0s", absl::ZeroDuration()}}) {
    auto d = ParseDurationString(c.text);
    ASSERT_TRUE(d.ok()) << c.text;
    EXPECT_EQ(*d, c.want) << c.text;
  }
  for (const char* bad : {"30", "", "5 minutes", "-5m", "1w", "m5", "1.5h"}) {
    EXPECT_FALSE(ParseDurationString(bad).ok()) << bad;
  }
  // A negative one is told so ("with a unit like 5m" answered "-5m").
  EXPECT_THAT(std::string(ParseDurationString("-5m").status().message()),
              HasSubstr("cannot be negative"));
}

TEST(ByteSizeTest, Table) {
  struct Case {
    const char* text;
    int64_t want;
  };
  for (const Case& c :
       {Case{"4096B", 4096}, Case{"512KiB", 512 << 10},
        Case{"64MiB", int64_t{64} << 20}, Case{"1GiB", int64_t{1} << 30},
        Case{"1TiB", int64_t{1} << 40}, Case{"500kB", 500000},
        Case{"500KB", 500000}, Case{"64MB", 64000000}, Case{"2GB", 2000000000},
        Case{" 256 MiB ", int64_t{256} << 20}}) {
    auto bytes = ParseByteSizeString(c.text);
    ASSERT_TRUE(bytes.ok()) << c.text << ": " << bytes.status();
    EXPECT_EQ(*bytes, c.want) << c.text;
  }
  for (const char* bad : {"64", "", "MiB", "64 megabytes", "-64MiB", "1.5GiB",
                          "64mib", "64Mb", "64M", "64MiB64KiB"}) {
    auto bytes = ParseByteSizeString(bad);
    EXPECT_FALSE(bytes.ok()) << bad;
    EXPECT_THAT(bytes.status().message(), HasSubstr("64MiB")) << bad;
  }
  // At most 1TiB, and no int64 overflow on the way.
  for (const char* bad : {"2TB", "1025GiB", "1099511627777B",
                          "9223372036854775807TiB", "999999999999999TiB"}) {
    EXPECT_FALSE(ParseByteSizeString(bad).ok()) << bad;
  }
}

TEST(ByteSizeTest, FormatsInTheLargestWholeBinaryUnit) {
  EXPECT_EQ(FormatByteSize(17), "17B");
  EXPECT_EQ(FormatByteSize(int64_t{256} << 20), "256MiB");
  EXPECT_EQ(FormatByteSize(int64_t{3} << 29), "1.5GiB");
  EXPECT_EQ(FormatByteSize(1000000), "976.6KiB");
}

TEST(ConfigTest, InputBufferIsASizeNamedInItsErrors) {
  ConfigResult r = ParseConfig("inputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.input_buffer, int64_t{512} << 20);
  r = ParseConfig("inputs: [{topic: a}]\nprocessing: {input_buffer: 64MB}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.input_buffer, 64000000);
  EXPECT_THAT(Errors(ParseConfig(
                  "inputs: [{topic: a}]\nprocessing: {input_buffer: 64}\n")),
              HasSubstr("cfg.yaml:2:28: processing.input_buffer: expected a "
                        "size with a unit like 512KiB, 64MiB, 1GiB"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {input_buffer: 512KiB}\n")),
              HasSubstr("processing.input_buffer: must be at least 1MiB, got "
                        "512KiB"));
  EXPECT_THAT(Errors(ParseConfig("inputs: [{topic: a}]\n"
                                 "processing: {input_buffer: [1, 2]}\n")),
              HasSubstr("processing.input_buffer: expected a size"));
}

// Found reading the code tests/fuzz/config_fuzzer drives (it reproduces
// both on corpus/config/huge_durations.yaml): "<n>d" computed 24 * n in
// int64 (an overflow for n > 384307168202282325), and durations of
// centuries passed, which the sessionizer then added to event times in
// int64 microseconds (sessions.inactivity_timeout: 200000000d overflowed on
// the first event).
TEST(DurationTest, AtMostAHundredYears) {
  EXPECT_EQ(*ParseDurationString("36500d"), absl::Hours(24 * 36500));
  EXPECT_EQ(*ParseDurationString("36499d23h59m59s1000ms"),
            absl::Hours(24 * 36500));
  for (const char* bad :
       {"36500d1ms", "36501d", "200000000d", "999999999999999999d",
        "9223372036854775807h", "9223372036854775807ms9223372036854775807ms"}) {
    const auto d = ParseDurationString(bad);
    EXPECT_FALSE(d.ok()) << bad;
    EXPECT_THAT(d.status().message(), testing::HasSubstr("36500d")) << bad;
  }
  ConfigResult r = ParseConfig(
      "inputs: [{topic: web.events}]\n"
      "sessions: {inactivity_timeout: 200000000d, max_length: 200000000d}\n");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].key, "sessions.inactivity_timeout");
  EXPECT_EQ(r.errors[1].key, "sessions.max_length");
}

// Found reading the code tests/fuzz/config_fuzzer drives (it reproduces it
// on corpus/config/kpi_window_500ms.yaml): outputs.kpi.window: 500ms was
// valid, and KpiWindows, which aligns windows on whole seconds, divided by
// zero on the first session.
TEST(ConfigTest, AKpiWindowIsWholeSeconds) {
  for (const char* window : {"500ms", "1500ms", "1m1ms"}) {
    ConfigResult r = ParseConfig(absl::StrCat(
        "inputs: [{topic: web.events}]\noutputs: {kpi: {window: ", window,
        "}}\n"));
    ASSERT_EQ(r.errors.size(), 1u) << window;
    EXPECT_EQ(r.errors[0].key, "outputs.kpi.window");
    EXPECT_EQ(r.errors[0].line, 2);
    EXPECT_THAT(r.errors[0].message, testing::HasSubstr("whole seconds"));
  }
  ConfigResult r = ParseConfig(
      "inputs: [{topic: web.events}]\noutputs: {kpi: {window: 1s}}\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.kpi_output.window, absl::Seconds(1));
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

TEST(ConfigFunnelTest, FunnelsParseAndValidate) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "funnels:\n"
      "  - name: checkout\n"
      "    steps:\n"
      "      - {name: product, page: '/products/*'}\n"
      "      - {page: /cart}\n"
      "      - {goal: purchase}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  ASSERT_EQ(r.config.funnels.size(), 1u);
  EXPECT_EQ(r.config.funnels[0].steps.size(), 3u);
  EXPECT_EQ(r.config.funnels[0].steps[1].name, "/cart");
  EXPECT_EQ(r.config.funnels[0].steps[2].goal, "purchase");

  r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "funnels:\n"
      "  - name: f\n"
      "    steps:\n"
      "      - {goal: refund}\n"
      "      - {page: /a, goal: signup}\n");
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "funnels[0].steps[0].goal");
  EXPECT_EQ(r.errors[0].line, 5);
  EXPECT_EQ(r.errors[1].key, "funnels[0].steps[1]");
}

// A step's name is the step label of web_funnel_step_sessions_total: two
// steps of one funnel with one name (by default the page or goal) would be
// two series with one label set.
TEST(ConfigFunnelTest, TwoStepsOfOneNameAreAnError) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "funnels:\n"
      "  - name: f\n"
      "    steps:\n"
      "      - {page: /cart}\n"
      "      - {page: /checkout}\n"
      "      - {page: /cart}\n"
      "      - {name: paid, goal: purchase}\n"
      "      - {name: paid, page: /thanks}\n");
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "funnels[0].steps[2].page");
  EXPECT_EQ(r.errors[0].line, 7);
  EXPECT_THAT(r.errors[0].message,
              HasSubstr("step \"/cart\" is listed twice in funnel \"f\""));
  EXPECT_THAT(r.errors[0].message, HasSubstr("give one of them a name"));
  EXPECT_EQ(r.errors[1].key, "funnels[0].steps[4].name");
  EXPECT_THAT(r.errors[1].message, Not(HasSubstr("give one")));

  // An empty name is no name either.
  r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "funnels: [{name: f, steps: [{name: '', page: /a}, {page: /b}]}]\n");
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "funnels[0].steps[0].name");
  EXPECT_THAT(r.errors[0].message, HasSubstr("cannot be empty"));

  // Named apart, they are two steps; one name in two funnels is two series.
  r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "funnels:\n"
      "  - name: f\n"
      "    steps:\n"
      "      - {page: /cart}\n"
      "      - {page: /checkout}\n"
      "      - {name: back to cart, page: /cart}\n"
      "  - name: g\n"
      "    steps: [{page: /cart}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.funnels[0].steps.size(), 3u);
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

TEST(ConfigAllowlistTest, LabelAllowlistsParseAndRejectUnknownLabels) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "metrics:\n"
      "  label_allowlists:\n"
      "    site: [shop, blog]\n"
      "    campaign: [winter-sale]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.metrics.label_allowlists.at("site"),
            (std::vector<std::string>{"shop", "blog"}));
  r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "metrics: {label_allowlists: {goal: [x]}}\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].key, "metrics.label_allowlists.goal");
}

// Values the engine never produces: a source or medium in capitals (it
// lowercases utm_source and utm_medium), a landing page that is not a path
// (the label holds the path alone). An audit's `source: [Google]` passed
// check-config and sent every Google session to "(other)".
TEST(ConfigAllowlistTest, SourcesInCapitalsAndLandingPageUrlsAreRefused) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "metrics:\n"
      "  label_allowlists:\n"
      "    source: [Google, newsletter]\n"
      "    medium: [CPC, email, (not set)]\n"
      "    landing_page: ['https://shop.example/pricing', /pricing,\n"
      "                   '/p?x=1', (other)]\n");
  ASSERT_EQ(r.errors.size(), 4u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "metrics.label_allowlists.source[0]");
  EXPECT_THAT(r.errors[0].message,
              HasSubstr("source \"Google\" never matches: the engine "
                        "lowercases utm_source (write \"google\")"));
  EXPECT_EQ(r.errors[1].key, "metrics.label_allowlists.medium[0]");
  EXPECT_EQ(r.errors[2].key, "metrics.label_allowlists.landing_page[0]");
  EXPECT_THAT(r.errors[2].message, HasSubstr("the label is the page's path"));
  EXPECT_EQ(r.errors[3].key, "metrics.label_allowlists.landing_page[2]");
}

// An allowlist's values are checked as a target filter's are (an allowlist
// of "Emial" sent every Email session to "(other)"), and a target's filter
// value must be in its label's allowlist: else its sessions are "(other)"
// and the target's PromQL never sees them.
TEST(ConfigAllowlistTest, AllowlistsAndTargetFiltersAgree) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "metrics:\n"
      "  label_allowlists:\n"
      "    channel: [Email, Emial]\n"
      "    country: [US, de]\n"
      "targets:\n"
      "  - {name: br, kpi: sessions, filter: {country: BR}, value: 1,\n"
      "     window: 1h}\n"
      "  - {name: us, kpi: sessions, filter: {country: US, channel: Email},\n"
      "     value: 1, window: 1h}\n"
      "  - {name: unset, kpi: sessions, filter: {country: (not set)},\n"
      "     value: 1, window: 1h}\n");
  ASSERT_EQ(r.errors.size(), 3u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "metrics.label_allowlists.channel[1]");
  EXPECT_THAT(r.errors[0].message, HasSubstr("unknown channel \"Emial\""));
  EXPECT_EQ(r.errors[1].key, "metrics.label_allowlists.country[1]");
  EXPECT_EQ(r.errors[2].key, "targets[0].filter.country");
  EXPECT_THAT(r.errors[2].message,
              HasSubstr("\"BR\" is not in metrics.label_allowlists.country"));
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

TEST(ConfigChannelsTest, ExtraSourceListsParse) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\n"
      "channels: {search_sources: [kagi, search.example], social_sources: "
      "[bsky.app]}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.channels.search_sources,
            (std::vector<std::string>{"kagi", "search.example"}));
  EXPECT_EQ(r.config.channels.social_sources,
            (std::vector<std::string>{"bsky.app"}));
  EXPECT_EQ(ParseConfig("inputs: [{topic: a}]\nchannels: {search: [x]}\n")
                .errors.at(0)
                .key,
            "channels.search");
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

TEST(ConfigTargetsTest, SpecExampleTargetsParse) {
  ConfigResult r = ParseConfig(R"(
inputs: [{topic: a}]
targets:
  - name: signup_conversion
    objective: "Raise signup conversion from email to 10% in Q4"
    kpi: conversion_rate
    filter: {site: shop, goal: signup, channel: Email}
    direction: at_least
    value: 0.10
    tolerance: 0.02
    window: 1d
    for: 15m
    severity: page
  - name: bounce
    kpi: bounce_rate
    value: 0.4
    window: 1h
  - name: q4_orders
    kpi: orders
    filter: {site: shop}
    value: 50
    period: {start: 2026-10-01, end: 2026-12-31}
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  ASSERT_EQ(r.config.targets.size(), 3u);
  const TargetConfig& a = r.config.targets[0];
  EXPECT_EQ(a.filter.at("goal"), "signup");
  EXPECT_EQ(a.window, absl::Hours(24));
  EXPECT_EQ(a.for_duration, absl::Minutes(15));
  EXPECT_EQ(a.tolerance, 0.02);
  EXPECT_FALSE(a.cumulative());
  EXPECT_EQ(r.config.targets[1].direction,
            TargetDirection::kAtMost);  // bounce default
  const TargetConfig& q = r.config.targets[2];
  EXPECT_TRUE(q.cumulative());
  EXPECT_EQ(q.period_start, absl::FromUnixSeconds(1790812800));  // 2026-10-01
  EXPECT_EQ(q.period_end, absl::FromUnixSeconds(1798761600));    // 2027-01-01
}

// Target names, filter values, funnel and step names are label values:
// quotes, backslashes, braces and any printable Unicode are fine (the
// generators escape them); control characters and broken UTF-8 are not.
TEST(ConfigTargetsTest, LabelValuesMayHoldAnyPrintableText) {
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
funnels:
  - name: 'ché"ck\out {x}'
    steps: [{name: "pay \"now\"", page: /pay}]
targets:
  - name: 'Umsatz "Q4" \ {{ $value }} ✓'
    kpi: sessions
    filter: {site: 'sh"op\ü {x}', channel: Email}
    value: 5
    window: 1d
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.targets[0].name, "Umsatz \"Q4\" \\ {{ $value }} ✓");
  EXPECT_EQ(r.config.targets[0].filter.at("site"), "sh\"op\\ü {x}");
  EXPECT_EQ(r.config.funnels[0].name, "ché\"ck\\out {x}");
  EXPECT_EQ(r.config.funnels[0].steps[0].name, "pay \"now\"");

  ConfigResult bad = ParseConfig(
      "inputs: [{topic: a}]\n"
      "funnels: [{name: \"a\\u0085b\", steps: [{page: /}]}]\n"
      "targets: [{name: \"x\\x7fy\", kpi: sessions, value: 5, window: 1d,\n"
      "           filter: {site: \"s\\u0000\"}}]\n");
  const std::string all = Errors(bad);
  EXPECT_THAT(all, HasSubstr("funnels[0].name: must be printable UTF-8"));
  EXPECT_THAT(all, HasSubstr("targets[0].name: must be printable UTF-8"));
  EXPECT_THAT(all, HasSubstr("targets[0].filter.site: must be printable"));

  // Label values that come from elsewhere than a name (an audit: each of
  // these passed): a funnel step named by its page, an access-log input's
  // site, a label allowlist's values. Invalid UTF-8 (0xFF) and controls.
  ConfigResult more = ParseConfig(
      "inputs: [{topic: a, format: combined_log, site: \"w\\x01w\"},\n"
      "         {topic: b, format: combined_log, site: \"\xff\"}]\n"
      "goals: [buy]\n"
      "funnels: [{name: f, steps: [{page: \"/a\xff\"}, {page: \"/b\\x02\"},\n"
      "                            {goal: buy}]}]\n"
      "metrics: {label_allowlists: {campaign: [\"bad\\x01ctl\", ok],\n"
      "                             source: [\"\xfe\"]}}\n");
  const std::string errors = Errors(more);
  for (const char* key :
       {"inputs[0].site", "inputs[1].site", "funnels[0].steps[0].page",
        "funnels[0].steps[1].page", "metrics.label_allowlists.campaign[0]",
        "metrics.label_allowlists.source[0]"}) {
    EXPECT_THAT(errors,
                HasSubstr(absl::StrCat(key,
                                       ": must be printable UTF-8 text without "
                                       "control characters")));
  }
  EXPECT_THAT(errors, Not(HasSubstr("campaign[1]")));
  EXPECT_THAT(errors, Not(HasSubstr("steps[2]")));
}

// A dedup horizon shorter than the disorder the engine allows would keep
// or drop a copy as the copies arrive (an audit): refused, naming the key;
// 0s (no deduplication) and the bound itself are taken.
TEST(ConfigTest, ADedupHorizonCoversTheAllowedDisorder) {
  const std::string base =
      "inputs: [{topic: a}]\nprocessing: {max_out_of_orderness: 30s, "
      "allowed_lateness: 5m, dedup_horizon: ";
  const std::string errors = Errors(ParseConfig(base + "1m}\n"));
  EXPECT_THAT(errors, HasSubstr("processing.dedup_horizon: must be 0s (no "
                                "deduplication) or at least "
                                "processing.max_out_of_orderness + "
                                "allowed_lateness (5m30s)"));
  for (const char* ok : {"0s}\n", "5m30s}\n", "1h}\n"}) {
    ConfigResult r = ParseConfig(base + ok);
    EXPECT_TRUE(r.ok()) << ok << Errors(r);
  }
}

// Unset, the horizon is 1h, or the allowed disorder where that is longer
// (the 1h default beside 2h of allowed lateness kept or dropped copies as
// they arrived).
TEST(ConfigTest, TheDefaultDedupHorizonCoversTheAllowedDisorder) {
  ConfigResult r = ParseConfig("inputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.dedup_horizon, absl::Hours(1));
  r = ParseConfig(
      "inputs: [{topic: a}]\nprocessing: {max_out_of_orderness: 10m, "
      "allowed_lateness: 2h}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.dedup_horizon, absl::Minutes(130));
  r = ParseConfig(
      "inputs: [{topic: a}]\nprocessing: {max_out_of_orderness: 10m, "
      "allowed_lateness: 2h, dedup_horizon: 0s}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.processing.dedup_horizon, absl::ZeroDuration());
}

// An audit: an objective with a NUL or an escape sequence went into the
// alerts' annotations, and a target on `site: ""` (no series has it: an
// event without a site is invalid) was off target forever.
TEST(ConfigTargetsTest, ObjectivesArePrintableAndFilterValuesNotEmpty) {
  ConfigResult bad = ParseConfig(
      "inputs: [{topic: a}]\n"
      "targets:\n"
      "  - {name: a, kpi: sessions, value: 5, window: 1d,\n"
      "     objective: \"nul\\u0000x\\u001b[31mred\"}\n"
      "  - {name: b, kpi: sessions, value: 5, window: 1d, filter: {site: ''}}\n"
      "  - {name: c, kpi: bounce_rate, value: 0.4, window: 1d,\n"
      "     filter: {site: shop, device: \"\"}}\n");
  const std::string all = Errors(bad);
  EXPECT_THAT(all, HasSubstr("targets[0].objective: must be printable UTF-8 "
                             "text without control characters but line "
                             "breaks and tabs"));
  EXPECT_THAT(all, HasSubstr("targets[1].filter.site: must not be empty"));
  EXPECT_THAT(all, HasSubstr("targets[2].filter.device: must not be empty"));
  ConfigResult good = ParseConfig(
      "inputs: [{topic: a}]\n"
      "targets: [{name: a, kpi: sessions, value: 5, window: 1d,\n"
      "           objective: \"Raise \\\"Q4\\\" {{ $value }} ✓\\n\\tby "
      "Q4\"}]\n");
  EXPECT_TRUE(good.ok()) << Errors(good);
}

// rules: the engine's job, the alerts' links and the dead-letter threshold.
TEST(ConfigRulesTest, DefaultsAndValues) {
  ConfigResult r = ParseConfig("inputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.rules.job, "kpistream");
  EXPECT_EQ(r.config.rules.runbook_base_url, "README.md");
  EXPECT_EQ(r.config.rules.grafana_url, "");
  EXPECT_EQ(r.config.rules.dead_letter_ratio, 0.1);
  r = ParseConfig(R"(inputs: [{topic: a}]
rules:
  job: web-kpis
  runbook_base_url: https://git.example.com/ops/kpistream/README.md
  grafana_url: https://grafana.example.com/
  dead_letter_ratio: 0.25
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.rules.job, "web-kpis");
  EXPECT_EQ(r.config.rules.grafana_url, "https://grafana.example.com");
  EXPECT_EQ(r.config.rules.dead_letter_ratio, 0.25);
  r = ParseConfig(R"(inputs: [{topic: a}]
rules: {job: "", dead_letter_ratio: 1.5, grafana_ur: x}
)");
  const std::string all = Errors(r);
  EXPECT_THAT(all, HasSubstr("rules.job: must not be empty"));
  EXPECT_THAT(all, HasSubstr("rules.dead_letter_ratio: expected a share"));
  EXPECT_THAT(all, HasSubstr("rules.grafana_ur: unknown key"));
}

// web_orders_total carries the order's currency (SPEC §4), so order counts
// and AOV can be targeted per currency.
TEST(ConfigTargetsTest, OrdersAndAovFilterOnCurrency) {
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
targets:
  - {name: eur_orders, kpi: orders, filter: {site: shop, currency: EUR},
     value: 50, period: {start: 2026-10-01, end: 2026-12-31}}
  - {name: eur_aov, kpi: average_order_value, filter: {currency: EUR},
     value: 40, window: 1d}
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.targets[0].filter.at("currency"), "EUR");
  EXPECT_EQ(KpiFilterLabels("orders"),
            (std::vector<std::string>{"site", "channel", "currency"}));
  EXPECT_EQ(KpiFilterLabels("average_order_value"),
            (std::vector<std::string>{"site", "channel", "currency"}));
}

// Valid configs whose numbers surprise are warned about, with the key and
// line (an access log without host made every self-referral a Referral; a
// money target without a currency adds EUR to USD in the engine's kpi_*).
TEST(ConfigWarningsTest, NumbersThatSurpriseAreWarnedAboutNotRefused) {
  ConfigResult r = ParseConfig(R"(inputs:
  - {topic: a, format: combined_log, site: www}
  - {topic: b, format: combined_log, site: blog, host: blog.example.com}
  - {topic: c}
targets:
  - {name: aov, kpi: average_order_value, filter: {site: www}, value: 40,
     window: 1d}
  - {name: eur_aov, kpi: average_order_value, filter: {currency: EUR},
     value: 40, window: 1d}
  - {name: roas, kpi: roas, value: 3, window: 1d}
  - {name: revenue, kpi: revenue, value: 1000,
     period: {start: 2026-10-01, end: 2026-12-31}}
  - {name: orders, kpi: orders, value: 50,
     period: {start: 2026-10-01, end: 2026-12-31}}
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  ASSERT_EQ(r.warnings.size(), 4u);
  EXPECT_EQ(r.warnings[0].key, "inputs[0]");
  EXPECT_EQ(r.warnings[0].line, 2);
  EXPECT_THAT(r.warnings[0].message, HasSubstr("without host"));
  EXPECT_THAT(r.warnings[0].ToString("k.yaml"),
              HasSubstr("k.yaml:2:5: inputs[0]: warning: a combined_log"));
  EXPECT_EQ(r.warnings[1].key, "targets[0].filter");
  EXPECT_EQ(r.warnings[1].line, 6);
  EXPECT_THAT(r.warnings[1].message,
              HasSubstr("kpi average_order_value without filter.currency"));
  EXPECT_THAT(r.warnings[1].message, HasSubstr("judge each currency apart"));
  EXPECT_EQ(r.warnings[2].key, "targets[2].filter");
  EXPECT_THAT(r.warnings[2].message,
              HasSubstr("kpi roas without filter.currency"));
  // ROAS of every channel returns the revenue of channels with ad cost
  // only (SPEC §3: "per campaign/channel where both are known"): no
  // surprise left to warn of.
  for (const ConfigError& w : r.warnings) {
    EXPECT_THAT(w.message, Not(HasSubstr("without filter.channel")));
  }
  EXPECT_EQ(r.warnings[3].key, "targets[3].filter");
  // A period's alerts read the engine's gauges: NaN with two currencies.
  EXPECT_THAT(r.warnings[3].message, HasSubstr("kpi revenue without"));
  EXPECT_THAT(r.warnings[3].message, HasSubstr("read NaN while its period"));
  EXPECT_THAT(r.warnings[3].message, Not(HasSubstr("judge each currency")));
  // None with a host, currencies everywhere and ROAS of one channel.
  r = ParseConfig(R"(inputs:
  - {topic: a, format: combined_log, site: www, host: www.example.com}
targets:
  - {name: roas, kpi: roas, filter: {currency: USD, channel: Paid Search},
     value: 3, window: 1d}
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings[0].message;
}

// min_sessions guards rates and means per session: on a count or a sum it
// changes nothing, which check-config says (a review found it accepted in
// silence); on a rate it is no warning.
TEST(ConfigTest, MinSessionsOnACountIsAWarning) {
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
targets:
  - {name: visits, kpi: sessions, value: 1000, window: 1d, min_sessions: 50}
  - {name: bounce, kpi: bounce_rate, value: 0.4, window: 1d, min_sessions: 50}
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].key, "targets[0].min_sessions");
  EXPECT_EQ(r.warnings[0].line, 3);
  EXPECT_THAT(r.warnings[0].message,
              HasSubstr("has no effect on kpi sessions"));
  EXPECT_EQ(r.config.targets[0].min_sessions, 50);  // still what it says
}

// Missing inputs are said with the other errors (SPEC §7: every error at
// once; an audit: said only once a bad duration was mended), also for an
// empty list (at its line); never twice.
TEST(ConfigTest, MissingInputsAreSaidWithOtherErrors) {
  ConfigResult r = ParseConfig(R"(kafka: {brokers: "a:1"}
sessions: {inactivity_timeout: 30}
)");
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "sessions.inactivity_timeout");
  EXPECT_EQ(r.errors[1].key, "inputs");
  EXPECT_EQ(r.errors[1].message, "at least one input topic is required");

  r = ParseConfig(R"(sessions: {inactivity_timeout: 30}
inputs: []
)");
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  EXPECT_EQ(r.errors[1].key, "inputs");
  EXPECT_EQ(r.errors[1].line, 2);

  r = ParseConfig("kafka: {brokers: \"a:1\"}\n");  // alone: once
  ASSERT_EQ(r.errors.size(), 1u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "inputs");
}

// A period's dates are days of sessions.timezone (an audit: a Berlin shop's
// one-day period ran from 01:00 to 01:00 local, UTC's day, with no word): a
// day across the end of DST has 25 hours, and a site's day starts at its
// midnight whichever side of UTC it is.
TEST(ConfigTargetsTest, APeriodsDaysAreThoseOfTheSessionsTimeZone) {
  auto period = [](const std::string& zone) {
    ConfigResult r = ParseConfig(absl::StrCat(R"(inputs: [{topic: a}]
sessions: {timezone: )",
                                              zone, R"(}
targets:
  - {name: day, kpi: sessions, value: 50,
     period: {start: 2025-10-26, end: 2025-10-26}}
)"));
    EXPECT_TRUE(r.ok()) << Errors(r);
    EXPECT_EQ(r.config.targets.size(), 1u);
    return r.config.targets.empty() ? TargetConfig{} : r.config.targets[0];
  };
  const absl::Time utc_day = absl::FromUnixSeconds(1761436800);  // 10-26
  TargetConfig t = period("UTC");
  EXPECT_EQ(t.period_start, utc_day);
  EXPECT_EQ(t.period_end - t.period_start, absl::Hours(24));
  t = period("Europe/Berlin");  // CEST (+2) until 01:00 UTC, then CET (+1)
  EXPECT_EQ(t.period_start, utc_day - absl::Hours(2));
  EXPECT_EQ(t.period_end - t.period_start, absl::Hours(25));
  EXPECT_EQ(absl::FormatCivilTime(t.period_last_day), "2025-10-26");
  t = period("America/New_York");  // EDT (-4); its DST ends a week later
  EXPECT_EQ(t.period_start, utc_day + absl::Hours(4));
  EXPECT_EQ(t.period_end - t.period_start, absl::Hours(24));
  EXPECT_EQ(absl::FormatCivilTime(t.period_last_day), "2025-10-26");
  // A midnight that does not exist: Santiago's clocks go from 00:00 to 01:00
  // on 2026-09-06; its day starts at the change (04:00 UTC) and has 23 hours.
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
sessions: {timezone: America/Santiago}
targets:
  - {name: day, kpi: sessions, value: 50,
     period: {start: 2026-09-06, end: 2026-09-06}}
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  t = r.config.targets.at(0);
  EXPECT_EQ(t.period_start, absl::FromCivil(absl::CivilHour(2026, 9, 6, 4),
                                            absl::UTCTimeZone()));
  EXPECT_EQ(t.period_end - t.period_start, absl::Hours(23));
}

// A period's end date is included: a period of one day starts and ends on
// it (review: refused as "must be after period.start"); an end before the
// start is refused.
TEST(ConfigTargetsTest, APeriodMayBeOneDay) {
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
targets:
  - {name: launch, kpi: orders, value: 50,
     period: {start: 2026-10-01, end: 2026-10-01}}
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  ASSERT_EQ(r.config.targets.size(), 1u);
  EXPECT_EQ(r.config.targets[0].period_start,
            absl::FromUnixSeconds(1790812800));  // 2026-10-01
  EXPECT_EQ(r.config.targets[0].period_end,
            absl::FromUnixSeconds(1790812800 + 86400));
  r = ParseConfig(R"(inputs: [{topic: a}]
targets:
  - {name: launch, kpi: orders, value: 50,
     period: {start: 2026-10-02, end: 2026-10-01}}
)");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(Errors(r), HasSubstr("targets[0].period.end: must not be "
                                   "before period.start"));
}

// SPEC §3: the conversion rate "also for any goal": a target on it says
// goal "(any)" (web_sessions_converted_total's label for it); conversions
// are counted per goal only, so a count of "(any)" is refused.
TEST(ConfigTargetsTest, AConversionRateTargetMayBeForAnyGoal) {
  ConfigResult r = ParseConfig(R"yaml(inputs: [{topic: a}]
targets:
  - {name: any, kpi: conversion_rate, filter: {goal: "(any)"}, value: 0.1,
     window: 1d}
)yaml");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.targets[0].filter.at("goal"), "(any)");
  r = ParseConfig(R"yaml(inputs: [{topic: a}]
targets:
  - {name: all, kpi: conversions, filter: {goal: "(any)"}, value: 10,
     window: 1d}
  - {name: typo, kpi: conversion_rate, filter: {goal: any}, value: 0.1,
     window: 1d}
)yaml");
  ASSERT_EQ(r.errors.size(), 2u) << Errors(r);
  EXPECT_EQ(r.errors[0].key, "targets[0].filter.goal");
  EXPECT_THAT(r.errors[0].message, HasSubstr("(not in goals)"));
  EXPECT_THAT(r.errors[1].message,
              HasSubstr("unknown goal \"any\" (not in goals, nor (any))"));
}

TEST(ConfigTargetsTest, BadTargetsNameTheKeyAtFault) {
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
targets:
  - {name: a, kpi: happiness, value: 1, window: 1d}
  - {name: b, kpi: conversion_rate, filter: {goal: refund}, value: 0.1, window: 1d}
  - {name: c, kpi: bounce_rate, filter: {campaign: x}, value: 0.4, window: 1d}
  - {name: d, kpi: bounce_rate, value: 0.4}
  - {name: e, kpi: bounce_rate, value: 0.4, window: 1d, tolerance: 1.5}
  - {name: f, kpi: bounce_rate, value: 1.4, window: 1d}
  - {name: g, kpi: bounce_rate, value: 0.3, period: {start: 2026-10-01, end: 2026-12-31}}
  - {name: h, kpi: conversion_rate, filter: {goal: signup, device: mobile}, value: 0.1, window: 1d}
  - {name: i, kpi: bounce_rate, value: 0.9, tolerance: 0.2, window: 1d}
  - {name: "j\tk", kpi: sessions, filter: {site: "sh\nop"}, value: 5, window: 1d}
  - {name: l, kpi: sessions, value: nan, tolerance: nan, window: 30s}
)");
  const std::string all = Errors(r);
  EXPECT_THAT(
      all,
      HasSubstr("cfg.yaml:3:20: targets[0].kpi: unknown KPI \"happiness\""));
  EXPECT_THAT(all,
              HasSubstr("targets[1].filter.goal: unknown goal \"refund\""));
  EXPECT_THAT(all, HasSubstr("targets[2].filter.campaign: unknown key"));
  EXPECT_THAT(
      all, HasSubstr(
               "targets[3]: a target has either a rolling window or a period"));
  EXPECT_THAT(all,
              HasSubstr("targets[4].tolerance: expected a relative tolerance"));
  EXPECT_THAT(all, HasSubstr("targets[5].value: a rate target is in (0, 1]"));
  EXPECT_THAT(all, HasSubstr("targets[6].period: a period (cumulative, paced) "
                             "target needs a count KPI"));
  // web_sessions_converted_total has no device label: the PromQL and the
  // engine's value could not agree on such a filter.
  EXPECT_THAT(all, HasSubstr("targets[7].filter.device: unknown key "
                             "\"device\" (not a label of kpi "
                             "conversion_rate's counters); known: channel, "
                             "goal, site"));
  EXPECT_THAT(all, HasSubstr("targets[8].tolerance: value x (1 + tolerance) "
                             "reaches 1"));
  // Label values: any printable text, but no control characters.
  EXPECT_THAT(all, HasSubstr("targets[9].name: must be printable UTF-8 text "
                             "without control characters"));
  EXPECT_THAT(all, HasSubstr("targets[9].filter.site: must be printable"));
  EXPECT_THAT(all, HasSubstr("targets[10].value: expected a number"));
  EXPECT_THAT(all, HasSubstr("targets[10].tolerance: expected a relative"));
  EXPECT_THAT(all, HasSubstr("targets[10].window: a rolling window is at "
                             "least 1m"));
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

TEST(ConfigBotsTest, ExtraUserAgentPatterns) {
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\nbots: {user_agent_patterns: [UptimeRobot, "
      "pingdom]}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.bot_patterns,
            (std::vector<std::string>{"UptimeRobot", "pingdom"}));
  // One that ordinary browsers' user agents contain made every visit a bot
  // (an audit: ' ' was accepted).
  r = ParseConfig(
      "inputs: [{topic: a}]\nbots:\n  user_agent_patterns: [pingdom, ' ', "
      "Mobile, Safari/]\n");
  EXPECT_EQ(r.errors.size(), 3u) << Errors(r);
  EXPECT_THAT(Errors(r),
              HasSubstr("cfg.yaml:3:34: bots.user_agent_patterns[1]: \" \" is "
                        "in ordinary browsers' user agents"));
  EXPECT_THAT(Errors(r), HasSubstr("bots.user_agent_patterns[2]: \"Mobile\""));
  EXPECT_THAT(Errors(r), HasSubstr("bots.user_agent_patterns[3]: \"Safari/\""));
}

}  // namespace
}  // namespace kpistream

namespace kpistream {
namespace {

// SPEC §9: WebEvents without a user agent are human unless configured.
TEST(ConfigBotsTest, EmptyUserAgentPolicy) {
  ConfigResult r = ParseConfig("inputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_FALSE(r.config.empty_user_agent_is_bot);
  r = ParseConfig("inputs: [{topic: a}]\nbots: {empty_user_agent: bot}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_TRUE(r.config.empty_user_agent_is_bot);
  r = ParseConfig("inputs: [{topic: a}]\nbots: {empty_user_agent: robot}\n");
  EXPECT_THAT(Errors(r), HasSubstr("bots.empty_user_agent: expected one of "
                                   "human | bot, got \"robot\""));
}

// sessions.session_source (SPEC §2's `session_source: client` mode):
// engine by default, client on request, anything else named in the error.
TEST(ConfigTest, SessionSourceIsEngineOrClient) {
  ConfigResult r = ParseConfig("inputs: [{topic: a}]\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.sessions.session_source, SessionSource::kEngine);
  r = ParseConfig("inputs: [{topic: a}]\nsessions: {session_source: client}\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.sessions.session_source, SessionSource::kClient);
  r = ParseConfig(
      "inputs: [{topic: a}]\nsessions: {session_source: browser}\n");
  EXPECT_THAT(Errors(r), HasSubstr("sessions.session_source: expected one of "
                                   "engine | client, got \"browser\""));
}

// A filter value no event can carry would give a target without data,
// "on track" forever: channels, devices, countries and currencies are
// checked against what the engine produces.
TEST(ConfigTargetsTest, FilterValuesMustBeValuesTheEngineProduces) {
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
targets:
  - {name: a, kpi: sessions, filter: {channel: Emial}, value: 5, window: 1d}
  - {name: b, kpi: revenue, filter: {currency: euro}, value: 5, window: 1d}
  - {name: c, kpi: sessions, filter: {device: phone}, value: 5, window: 1d}
  - {name: d, kpi: sessions, filter: {country: Germany}, value: 5, window: 1d}
  - {name: e, kpi: sessions, filter: {country: de}, value: 5, window: 1d}
)");
  const std::string all = Errors(r);
  EXPECT_THAT(all, HasSubstr("cfg.yaml:3:48: targets[0].filter.channel: "
                             "unknown channel \"Emial\"; channels are: "
                             "Direct, Cross-network,"));
  EXPECT_THAT(all, HasSubstr("targets[1].filter.currency: currency \"euro\" "
                             "is not an ISO 4217 code"));
  EXPECT_THAT(all, HasSubstr("targets[2].filter.device: unknown device "
                             "\"phone\""));
  EXPECT_THAT(all, HasSubstr("targets[3].filter.country: country \"Germany\" "
                             "is not an ISO 3166-1 alpha-2 code"));
  EXPECT_THAT(all, HasSubstr("targets[4].filter.country: country \"de\""));
  EXPECT_EQ(r.errors.size(), 5u) << all;

  r = ParseConfig(R"(inputs: [{topic: a}]
targets:
  - {name: a, kpi: sessions, filter: {channel: Paid Search, device: mobile, country: DE}, value: 5, window: 1d}
  - {name: b, kpi: revenue, filter: {currency: EUR}, value: 5, window: 1d}
  - {name: c, kpi: sessions, filter: {country: (not set)}, value: 5, window: 1d}
)");
  EXPECT_TRUE(r.ok()) << Errors(r);
}

// sessions.long_min_duration (long_session_rate): a duration string like
// the other session keys, 3m by default, more than zero.
TEST(ConfigTest, LongMinDurationIsADuration) {
  ConfigResult d = ParseConfig("inputs: [{topic: a}]\n");
  ASSERT_TRUE(d.ok()) << Errors(d);
  EXPECT_EQ(d.config.sessions.long_min_duration, absl::Minutes(3));
  ConfigResult r = ParseConfig(
      "inputs: [{topic: a}]\nsessions:\n  long_min_duration: 2m30s\n");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.sessions.long_min_duration, absl::Seconds(150));
  for (const char* bad : {"180", "0s", "three minutes", "[3m]"}) {
    SCOPED_TRACE(bad);
    ConfigResult e = ParseConfig(absl::StrCat(
        "inputs: [{topic: a}]\nsessions:\n  long_min_duration: ", bad, "\n"));
    ASSERT_EQ(e.errors.size(), 1u) << Errors(e);
    EXPECT_EQ(e.errors[0].key, "sessions.long_min_duration");
    EXPECT_EQ(e.errors[0].line, 3);
  }
}

// long_session_rate is a rate KPI of the catalog: at_least by default,
// filtered by the session labels, in (0, 1], over a rolling window.
TEST(ConfigTargetsTest, LongSessionRateIsATargetKpi) {
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
targets:
  - {name: stay, kpi: long_session_rate, value: 0.25, window: 1d,
     filter: {site: shop, channel: Email, device: mobile, country: DE}}
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.targets[0].direction, TargetDirection::kAtLeast);
  EXPECT_EQ(r.config.targets[0].filter.size(), 4u);
  EXPECT_TRUE(IsRateKpi("long_session_rate"));
  EXPECT_FALSE(IsCumulativeKpi("long_session_rate"));
  ConfigResult bad = ParseConfig(R"(inputs: [{topic: a}]
targets:
  - {name: a, kpi: long_session_rate, value: 1.5, window: 1d}
  - {name: b, kpi: long_session_rate, filter: {goal: signup}, value: 0.2,
     window: 1d}
  - {name: c, kpi: long_session_rate, value: 0.2,
     period: {start: 2026-10-01, end: 2026-12-31}}
)");
  const std::string all = Errors(bad);
  EXPECT_THAT(all, HasSubstr("targets[0].value: a rate target is in (0, 1]"));
  EXPECT_THAT(all, HasSubstr("targets[1].filter.goal: unknown key"));
  EXPECT_THAT(all, HasSubstr("targets[2].period: a period (cumulative, "
                             "paced) target needs a count KPI"));
}

// Path globs that could never match are errors (an audit: funnels of such
// steps read nothing, and check-config said OK): a query string, fragment
// or path parameter (left out of the path), a whole URL, a glob starting
// with neither / nor *. A page of
// non-ASCII characters is a warning: browsers send paths percent-encoded.
TEST(ConfigTest, PathGlobsThatCannotMatchAreErrors) {
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
funnels:
  - name: f
    steps:
      - {page: '/cart?x=1'}
      - {page: 'https://shop.example/checkout'}
      - {page: cart}
      - {page: '/x#y'}
      - {page: '/cart;*'}
      - {page: '*/thanks'}
      - {page: '/products/*'}
)");
  EXPECT_THAT(Places(r, "page \""),
              ::testing::ElementsAre("funnels[0].steps[0].page@5:16",
                                     "funnels[0].steps[1].page@6:16",
                                     "funnels[0].steps[2].page@7:16",
                                     "funnels[0].steps[3].page@8:16",
                                     "funnels[0].steps[4].page@9:16"));
  EXPECT_THAT(r.errors[0].message, HasSubstr("* is the only wildcard"));
  EXPECT_THAT(r.errors[1].message, HasSubstr("is a URL: give its path"));
  EXPECT_THAT(r.errors[2].message, HasSubstr("must start with /"));
  EXPECT_THAT(r.errors[3].message, HasSubstr("fragment is not matched"));
  EXPECT_THAT(r.errors[4].message, HasSubstr("path parameters"));

  r = ParseConfig(R"(inputs: [{topic: a}]
funnels: [{name: f, steps: [{page: /café}, {page: /caf%C3%A9}]}]
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].key, "funnels[0].steps[0].page");
  EXPECT_THAT(r.warnings[0].message, HasSubstr("percent-encoded"));

  r = ParseConfig(
      "inputs:\n"
      "  - {topic: a, format: combined_log, site: www, host: w.example,\n"
      "     skip_paths: ['/api?v=1', '/ok', '/x#y']}\n");
  EXPECT_THAT(Places(r, " is not matched"),
              ::testing::ElementsAre("inputs[0].skip_paths@3:19",
                                     "inputs[0].skip_paths@3:38"));
}

// sessions.timezone is a zone every machine reads alike (an audit:
// `localtime` made the generated rules' period ends follow the machine
// that made them); visitor_retention is whole days, as it is kept (12h was
// 0 days: a visitor back 41 minutes later, past midnight UTC, was new).
TEST(ConfigTest, TheSessionsZoneAndRetentionAreEveryMachinesAlike) {
  ConfigResult r = ParseConfig(R"(inputs: [{topic: a}]
sessions: {timezone: localtime, visitor_retention: 12h}
)");
  EXPECT_THAT(Places(r, ""),
              ::testing::ElementsAre("sessions.timezone@2:22",
                                     "sessions.visitor_retention@2:52"));
  EXPECT_THAT(r.errors[0].message, HasSubstr("each machine's own zone"));
  EXPECT_THAT(r.errors[1].message, HasSubstr("must be whole days"));
  r = ParseConfig(R"(inputs: [{topic: a}]
sessions: {visitor_retention: 36h}
)");
  EXPECT_THAT(Places(r, "must be whole days"),
              ::testing::ElementsAre("sessions.visitor_retention@2:31"));
  r = ParseConfig(R"(inputs: [{topic: a}]
sessions: {timezone: Europe/Berlin, visitor_retention: 1d}
)");
  ASSERT_TRUE(r.ok()) << Errors(r);
  EXPECT_EQ(r.config.sessions.visitor_retention, absl::Hours(24));
}

}  // namespace
}  // namespace kpistream
