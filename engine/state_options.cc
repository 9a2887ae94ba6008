#include "engine/state_options.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "ingest/event_decoder.h"

namespace kpistream {
namespace {

std::vector<Funnel> FunnelsFrom(const Config& config) {
  std::vector<Funnel> funnels;
  for (const FunnelConfig& f : config.funnels) {
    Funnel funnel{f.name, {}};
    for (const FunnelStepConfig& step : f.steps) {
      funnel.steps.push_back({step.name, step.page, step.goal});
    }
    funnels.push_back(std::move(funnel));
  }
  return funnels;
}

}  // namespace

SessionRules SessionRulesFrom(const Config& config) {
  const SessionsConfig& s = config.sessions;
  SessionRules rules;
  rules.inactivity_timeout = s.inactivity_timeout;
  rules.max_length = s.max_length;
  rules.engaged_min_duration = s.engaged_min_duration;
  rules.engaged_min_pageviews = s.engaged_min_pageviews;
  rules.long_min_duration = s.long_min_duration;
  rules.visitor_retention = s.visitor_retention;
  rules.split_at_midnight = s.split_at_midnight;
  rules.split_on_campaign_change = s.split_on_campaign_change;
  rules.split_on_session_id = s.session_source == SessionSource::kClient;
  rules.funnels = FunnelsFrom(config);
  absl::LoadTimeZone(s.timezone, &rules.timezone);  // validated by the config
  return rules;
}

std::vector<TargetSpec> TargetSpecsFrom(const Config& config) {
  std::vector<TargetSpec> specs;
  for (const TargetConfig& t : config.targets) {
    TargetSpec spec;
    spec.name = t.name;
    spec.kpi = t.kpi;
    spec.filter = t.filter;
    spec.direction = t.direction == TargetDirection::kAtLeast
                         ? Direction::kAtLeast
                         : Direction::kAtMost;
    spec.value = t.value;
    spec.tolerance = t.tolerance;
    spec.window = t.window;
    spec.period_start = t.period_start;
    spec.period_end = t.period_end;
    // The zone whose days the period's dates are; validated by the config.
    absl::LoadTimeZone(config.sessions.timezone, &spec.period_zone);
    spec.min_sample = t.min_sessions;
    specs.push_back(std::move(spec));
  }
  return specs;
}

KpiCounters::Options CounterOptionsFrom(const Config& config) {
  KpiCounters::Options options;
  options.label_values_max = config.metrics.label_values_max;
  options.label_combinations_max = config.metrics.label_combinations_max;
  options.goals = config.goals;
  options.rules.funnels = FunnelsFrom(config);
  options.allowlists = config.metrics.label_allowlists;
  for (const TargetConfig& target : config.targets) {
    for (const auto& [label, value] : target.filter) {
      if (label != "goal") options.reserved[label].push_back(value);
    }
  }
  for (const InputConfig& input : config.inputs) {
    options.input_topics.push_back(input.topic);
    if (input.kind == InputKind::kEvents && input.key == InputKey::kAny) {
      options.repartitioned_topics.push_back(input.topic);
    }
  }
  if (NeedsRepartition(config)) {
    options.repartition_topic = RepartitionTopic(config);
  }
  for (absl::string_view reason : InvalidReasons()) {
    options.invalid_reasons.emplace_back(reason);
  }
  return options;
}

PartitionState::Options PartitionStateOptionsFrom(
    const Config& config, const std::vector<TargetSpec>* targets) {
  PartitionState::Options options;
  options.rules = SessionRulesFrom(config);
  options.allowed_lateness = config.processing.allowed_lateness;
  options.dedup_horizon = config.processing.dedup_horizon;
  options.kpi_window = config.kpi_output.window;
  options.targets = targets;
  return options;
}

ChannelClassifier::Options ChannelOptionsFrom(const Config& config) {
  return ChannelClassifier::Options{
      config.channels.search_sources, config.channels.social_sources,
      config.channels.video_sources, config.channels.shopping_sources};
}

std::string SeparatelySessionizedInputs(const Config& config) {
  std::vector<std::string> keyed, all;
  for (const InputConfig& input : config.inputs) {
    if (input.kind != InputKind::kEvents) continue;
    const std::string name = absl::StrCat("\"", input.topic, "\"");
    all.push_back(name);
    if (input.key == InputKey::kVisitorId) keyed.push_back(name);
  }
  // key: any inputs share the repartition topic (sessionized together);
  // a key: visitor_id input is sessionized apart from every other input.
  if (keyed.empty() || all.size() < 2) return "";
  return absl::StrCat(
      "events inputs ", absl::StrJoin(all, ", "),
      " are not all key: any: each key: visitor_id input (",
      absl::StrJoin(keyed, ", "),
      ") keeps its own sessions, apart from the other inputs', so a visitor "
      "with events on two of these topics has a session on each (and counts "
      "in web_active_visitors once for each, where different threads own "
      "them), and an order or event id sent on two of them (a page's "
      "purchase and the backend's) counts once on each: twice in orders, "
      "revenue and conversions; if one "
      "visitor's events span them, set key: any on all of them (re-keyed "
      "into one repartition topic, sessionized together)");
}

}  // namespace kpistream
