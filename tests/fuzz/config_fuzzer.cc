// Fuzz target: the config loader (config/config.h ParseConfig) on any text,
// and what the engine builds from a config it accepts. Asserts:
//  - ParseConfig never throws; a rejected config has errors, each with a
//    message (and a printable form);
//  - an accepted config holds what the engine relies on (positive
//    timeouts and windows, a loadable time zone, a listen address that
//    parses, funnels of 1 to 32 steps each of a page or a goal, targets of
//    a known KPI with a window or a period);
//  - the engine's pieces built from it (engine/state_options.h: session
//    rules, targets, counters, channel grouping; a partition state; the
//    watermark; the bot filter; a decoder per input) process a short visit:
//    events offered as the watermark moves, KPI windows, target sums and
//    their evaluation, a checkpoint restored into a second state, a drain,
//    the counters' snapshot. Nothing crashes or is undefined.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "aggregate/bot_filter.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "config/config.h"
#include "engine/checkpoint_log.h"
#include "engine/state_options.h"
#include "ingest/event_decoder.h"
#include "ingest/watermark.h"
#include "tests/fuzz/fuzz_check.h"

namespace kpistream {
namespace {

void CheckAccepted(const Config& c, const std::string& where) {
  KPISTREAM_FUZZ_CHECK(!c.inputs.empty(), where);
  const ProcessingConfig& p = c.processing;
  KPISTREAM_FUZZ_CHECK(p.max_out_of_orderness >= absl::ZeroDuration() &&
                           p.allowed_lateness >= absl::ZeroDuration() &&
                           p.idle_partition_timeout > absl::ZeroDuration() &&
                           p.dedup_horizon >= absl::ZeroDuration() &&
                           p.max_future_skew >= absl::ZeroDuration() &&
                           p.transaction_timeout > absl::ZeroDuration() &&
                           p.threads >= 1,
                       where);
  // Commits: every commit_interval at the latest, within a transaction's
  // timeout; early ones no sooner than min_commit_interval.
  KPISTREAM_FUZZ_CHECK(p.commit_interval >= absl::Milliseconds(10) &&
                           p.commit_interval < p.transaction_timeout &&
                           p.min_commit_interval >= absl::Milliseconds(10) &&
                           p.min_commit_interval <= p.commit_interval,
                       where);
  const SessionsConfig& s = c.sessions;
  KPISTREAM_FUZZ_CHECK(s.inactivity_timeout > absl::ZeroDuration() &&
                           s.max_length > absl::ZeroDuration() &&
                           s.engaged_min_duration >= absl::ZeroDuration() &&
                           s.engaged_min_pageviews >= 1 &&
                           s.long_min_duration > absl::ZeroDuration() &&
                           s.visitor_retention > absl::ZeroDuration(),
                       where);
  absl::TimeZone tz;
  KPISTREAM_FUZZ_CHECK(absl::LoadTimeZone(s.timezone, &tz), where);
  KPISTREAM_FUZZ_CHECK(c.kpi_output.window > absl::ZeroDuration(), where);
  KPISTREAM_FUZZ_CHECK(c.metrics.label_values_max >= 1, where);
  KPISTREAM_FUZZ_CHECK(c.metrics.label_combinations_max >= 1, where);
  std::string host;
  int port = 0;
  KPISTREAM_FUZZ_CHECK(ParseListenAddress(c.metrics.listen, &host, &port).ok(),
                       where);
  for (const FunnelConfig& f : c.funnels) {
    KPISTREAM_FUZZ_CHECK(!f.steps.empty() && f.steps.size() <= 32, where);
    std::set<std::string> step_names;  // each its own series' step label
    for (const FunnelStepConfig& step : f.steps) {
      KPISTREAM_FUZZ_CHECK(step.page.empty() != step.goal.empty(), where);
      KPISTREAM_FUZZ_CHECK(step_names.insert(step.name).second, where);
    }
  }
  for (const TargetConfig& t : c.targets) {
    KPISTREAM_FUZZ_CHECK(IsKnownKpi(t.kpi), where);
    KPISTREAM_FUZZ_CHECK((t.window > absl::ZeroDuration()) != t.cumulative(),
                         where);
  }
}

// A short visit of two visitors, as decoded events.
std::vector<Event> Visit() {
  const absl::Time t0 = fuzz::kNow - absl::Hours(2);
  std::vector<Event> events;
  auto add = [&](const char* visitor, absl::Duration at, EventType type,
                 const char* page) {
    Event e;
    e.time = t0 + at;
    e.type = type;
    e.site_id = "shop";
    e.visitor_id = visitor;
    e.event_id = absl::StrCat(visitor, "-", events.size());
    e.page_url = absl::StrCat("https://shop.example", page);
    e.device_category = "mobile";
    e.country = "DE";
    if (type == EventType::kConversion) {
      e.goal = "purchase";
      e.order_id = "o1";
      e.currency = "EUR";
      e.value_micros = 25000000;
    }
    events.push_back(std::move(e));
  };
  add("v1", absl::Seconds(0), EventType::kPageView,
      "/products/1?utm_source=newsletter&utm_medium=email");
  add("v2", absl::Seconds(20), EventType::kPageView, "/blog/post");
  add("v1", absl::Seconds(50), EventType::kPageView, "/cart");
  add("v1", absl::Seconds(90), EventType::kConversion, "/thanks");
  add("v2", absl::Minutes(45), EventType::kPageView, "/");
  add("v1", absl::Minutes(100), EventType::kPageView, "/");
  events.push_back(events[2]);  // a repeat
  return events;
}

void Run(const std::string& yaml) {
  const ConfigResult result = ParseConfig(yaml);
  if (!result.ok()) {
    for (const ConfigError& e : result.errors) {
      KPISTREAM_FUZZ_CHECK(!e.message.empty(), e.key);
      KPISTREAM_FUZZ_CHECK(!e.ToString("fuzz.yaml").empty(), e.key);
    }
    return;
  }
  const Config& config = result.config;
  CheckAccepted(
      config,
      absl::StrCat("config \"", absl::CHexEscape(yaml.substr(0, 400)), "\""));

  const std::vector<TargetSpec> targets = TargetSpecsFrom(config);
  const ChannelClassifier channels(ChannelOptionsFrom(config));
  const BotFilter bots(config.bot_patterns, config.empty_user_agent_is_bot);
  KpiCounters counters(CounterOptionsFrom(config));
  const PartitionState::Options options =
      PartitionStateOptionsFrom(config, &targets);
  PartitionState state(options, &counters, &channels);
  WatermarkTracker watermark(config.processing.max_out_of_orderness,
                             config.processing.idle_partition_timeout);
  watermark.Assign(0, fuzz::kNow);

  for (const InputConfig& input : config.inputs) {
    if (input.kind != InputKind::kEvents) continue;
    EventDecoder decoder(input.format, config.processing.max_future_skew,
                         input.site, input.host);
    Event e;
    decoder.Decode(
        "83.149.9.216 - - [01/Jan/2026:09:00:00 +0000] \"GET "
        "/products/1?utm_source=google&utm_medium=cpc HTTP/1.1\" 200 123 \"-\" "
        "\"Mozilla/5.0 (Android; Mobile)\"",
        fuzz::kNow, &e);
  }
  bots.IsBot("Mozilla/5.0");

  for (const Event& e : Visit()) {
    if (bots.IsBot(e.user_agent)) continue;
    watermark.Observe(0, e.time, fuzz::kNow);
    const absl::Time w = watermark.Current(fuzz::kNow);
    if (state.Offer(e, w) == PartitionState::Admit::kAccepted) {
      counters.CountAccepted(e.site_id, e.type);
    }
    state.Advance(w);
    state.CollectWindows(w - options.allowed_lateness);
  }
  const absl::Time w = watermark.Current(fuzz::kNow);
  std::vector<TargetSums> sums;
  state.AddTargetSums(w, &sums);
  for (size_t i = 0; i < targets.size(); ++i) {
    EvaluateTarget(targets[i], sums[i], w);
  }

  CheckpointWriter writer({"web.events", 0});
  CheckpointReader reader;
  for (const ChangelogRecord& r : writer.Write(state, 7, w)) {
    reader.Add(r.key, r.value.value_or(""), !r.value.has_value());
  }
  KpiCounters counters2(CounterOptionsFrom(config));
  PartitionState restored(options, &counters2, &channels);
  const auto position = reader.RestoreInto({"web.events", 0}, &restored);
  KPISTREAM_FUZZ_CHECK(position.ok(), position.status().ToString());
  KPISTREAM_FUZZ_CHECK(restored.open_sessions() == state.open_sessions(),
                       "restored open sessions");
  state.Drain();
  restored.Drain();
  state.CollectWindows(absl::InfiniteFuture());
  counters.Commit();
  counters.Snapshot();
}

}  // namespace
}  // namespace kpistream

KPISTREAM_FUZZ_TARGET(kpistream::Run)
