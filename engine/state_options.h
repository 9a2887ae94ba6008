// How the engine builds its aggregation core from the config: the session
// rules, the KPI targets, the counters' options, a partition state's options
// and the channel grouping's. One place, for the stream threads, the engine
// and the config fuzz target (tests/fuzz/config_fuzzer.cc). No Kafka.
#ifndef KPISTREAM_ENGINE_STATE_OPTIONS_H_
#define KPISTREAM_ENGINE_STATE_OPTIONS_H_

#include <string>
#include <vector>

#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "aggregate/sessionizer.h"
#include "aggregate/target_tracker.h"
#include "config/config.h"

namespace kpistream {

// The sessions part of the config, as the aggregation core takes it.
SessionRules SessionRulesFrom(const Config& config);

// The config's targets, in config order.
std::vector<TargetSpec> TargetSpecsFrom(const Config& config);

// A stream thread's counters: labels, goals, funnels, allowlists, the input
// topics and invalid reasons known in advance.
KpiCounters::Options CounterOptionsFrom(const Config& config);

// Every partition's state; `targets` (may be null) outlives the states.
PartitionState::Options PartitionStateOptionsFrom(
    const Config& config, const std::vector<TargetSpec>* targets);

ChannelClassifier::Options ChannelOptionsFrom(const Config& config);

// The warning the engine logs at start when there are two or more events
// inputs and any of them is `key: visitor_id` ("" when not): such an input's
// partitions keep their own sessions, apart from every other input's, so a
// visitor whose events are on two inputs (page views on one topic, a
// backend's orders on another) has two sessions. `key: any` on all of them
// re-keys them into one repartition topic, sessionized together.
std::string SeparatelySessionizedInputs(const Config& config);

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_STATE_OPTIONS_H_
