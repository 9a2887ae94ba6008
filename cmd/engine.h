// Engine: the wiring of one kpistream instance (SPEC §1):
//
//   KafkaSource -> EventDecoder -> WatermarkTracker -> PartitionState
//     (ReorderBuffer -> Sessionizer) -> KpiCounters -> MetricsEndpoint
//                                    -> KafkaSink (sessions, dead letters)
//
// One thread (the caller of Run) owns every partition's state; the metrics
// endpoint reads a snapshot that this thread publishes a few times a second.
//
// Commit cycle: every `commit_interval`, the records produced since the last
// cycle and the input positions are committed together (one Kafka
// transaction with exactly_once; flush-then-commit with at_least_once).
//
// Until state checkpointing lands, a partition's open sessions are closed
// early when the partition is revoked or the engine stops (so that nothing
// consumed is lost); a crash loses the open sessions of the last commit.
#ifndef KPISTREAM_CMD_ENGINE_H_
#define KPISTREAM_CMD_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "aggregate/metrics_snapshot.h"
#include "config/config.h"

namespace kpistream {

class Engine {
 public:
  // Validates what the config alone cannot (e.g. the /metrics address is
  // free) and connects to Kafka. Does not start consuming.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const Config& config);
  ~Engine();

  // Consumes until StopRequested(), then stops consuming, closes the open
  // state, flushes, commits and returns. A runtime failure (Kafka delivery or
  // transaction error) returns an error status.
  absl::Status Run();

  // The bound /metrics port.
  int metrics_port() const;

  // The latest published snapshot (thread-safe).
  MetricsSnapshot Snapshot() const;

 private:
  Engine() = default;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Sum of every sample of family `name` in `snapshot` whose label `label` (if
// non-empty) equals `value`; for histograms, the observation count.
double SumSamples(const MetricsSnapshot& snapshot, const std::string& name,
                  const std::string& label = "", const std::string& value = "");

}  // namespace kpistream

#endif  // KPISTREAM_CMD_ENGINE_H_
