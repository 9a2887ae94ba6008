// Engine: one kpistream instance (SPEC §1): `processing.threads` stream
// threads (each a consumer-group member with its own transactional producer
// and a share of the input partitions, like Kafka Streams' stream threads),
// the HTTP endpoint (/metrics, /healthz, /readyz) and the KPI targets'
// evaluation over every thread's state.
//
//   input topics -> StreamThread(s) -> PartitionPipeline per partition
//                   (decode, dedup, reorder, sessionize, count, windows,
//                    targets; checkpoints to the state changelog)
//                -> outputs, changelog and input positions, one transaction
//
// Instances are named by `processing.instance_id` (default: the host name):
// thread i's transactional.id is "<group_id>-<instance_id>-<i>" and its
// group.instance.id "<instance_id>-<i>".
#ifndef KPISTREAM_ENGINE_ENGINE_H_
#define KPISTREAM_ENGINE_ENGINE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "aggregate/metrics_snapshot.h"
#include "config/config.h"

namespace kpistream {

class Engine {
 public:
  // Validates what the config alone cannot (e.g. the /metrics address is
  // free, the changelog topic exists or can be created) and connects to
  // Kafka. Does not start consuming. Run() returns once `stop_requested`
  // says so (polled every ~100 ms; SIGTERM in the binary).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(
      const Config& config, std::function<bool()> stop_requested);
  ~Engine();

  // Consumes until stop is requested, then commits the state (open sessions
  // are kept for the next start) and returns. A runtime failure returns an
  // error status.
  absl::Status Run();

  // The bound /metrics port.
  int metrics_port() const;

  // The latest metrics, as /metrics serves them (thread-safe).
  MetricsSnapshot Snapshot() const;

 private:
  Engine() = default;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The instance id to use: `configured`, or the host name.
std::string InstanceId(const std::string& configured);
// Where the instance keeps its local state (engine/local_store.h):
// <processing.state_dir>/<group_id>/<instance_id>, the state dir defaulting
// to $TMPDIR/kpistream (/tmp/kpistream).
std::string LocalStateDir(const Config& config, const std::string& instance_id);

// Sum of every sample of family `name` in `snapshot` whose label `label` (if
// non-empty) equals `value`; for histograms, the observation count.
double SumSamples(const MetricsSnapshot& snapshot, const std::string& name,
                  const std::string& label = "", const std::string& value = "");

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_ENGINE_H_
