// StreamThread: one consumer-group member and its work (Kafka Streams'
// StreamThread): it polls its share of the input partitions, routes each
// record to the partition's PartitionPipeline, drives the watermark, and
// every commit interval commits the outputs, the partitions' checkpoints
// and the input positions together (one Kafka transaction with
// exactly-once; flush, then offsets, with at-least-once).
//
// Rebalances: newly assigned partitions are paused and their state restored
// from the changelog before their first record; revoked partitions are
// committed (state handed over, not closed) before they are given up; lost
// partitions are dropped. When a commit is aborted (a rebalance raced it, a
// timeout), the pending counters are forgotten and every partition is
// restored again from the changelog: work done since the last commit is
// redone, never counted twice.
//
// /metrics shows committed work (KpiCounters pending until the commit),
// plus live gauges (state, lag, watermark, restore).
//
// The thread calls Run() and owns everything but the published snapshot and
// the health, which other threads read (thread-safe).
#ifndef KPISTREAM_ENGINE_STREAM_THREAD_H_
#define KPISTREAM_ENGINE_STREAM_THREAD_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "aggregate/active_visitors.h"
#include "aggregate/bot_filter.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/metrics_snapshot.h"
#include "aggregate/target_tracker.h"
#include "config/config.h"
#include "engine/partition_pipeline.h"
#include "engine/stream_io.h"
#include "ingest/watermark.h"

namespace kpistream {

// Where time comes from (injected: tests drive it).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};
Clock* RealClock();

// What /readyz reports for a thread.
struct ThreadHealth {
  bool ready = false;
  std::string reason;  // why not ready
  absl::Time heartbeat = absl::InfinitePast();  // last loop iteration
};

class StreamThread : public StreamInput::Listener, private PipelineOutput {
 public:
  struct Options {
    const Config* config = nullptr;
    const std::vector<TargetSpec>* targets = nullptr;
    Clock* clock = nullptr;
    std::function<bool()> stop_requested;
    std::string name = "stream-0";  // for logs
    absl::Duration commit_interval = absl::Seconds(1);
    absl::Duration publish_interval = absl::Milliseconds(200);
    size_t poll_batch = 2000;
  };

  // The IO objects are set with Attach() before Run().
  explicit StreamThread(Options options);
  ~StreamThread() override;

  void Attach(std::unique_ptr<StreamInput> input,
              std::unique_ptr<StreamOutput> output,
              std::unique_ptr<ChangelogSource> changelog);
  // The Listener the input must report to (this).
  StreamInput::Listener* listener() { return this; }

  // Consumes until stop_requested(), then commits the state (open sessions
  // are kept, not closed) and stops. A runtime failure (a fatal Kafka error,
  // a changelog that lost records) returns an error status.
  absl::Status Run();

  // The latest published metrics (committed counters and live gauges).
  MetricsSnapshot Snapshot() const;
  ThreadHealth Health() const;

  // Target sums of this thread's partitions at `now` (event time), and its
  // watermark; for the engine's kpi_* gauges.
  struct TargetShare {
    std::vector<TargetSums> sums;
    absl::Time watermark = absl::InfinitePast();
  };
  TargetShare Targets() const;

 private:
  // StreamInput::Listener
  void OnAssigned(const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;
  void OnLost(const std::vector<TopicPartition>& partitions) override;

  // PipelineOutput
  void Session(const ClosedSession& session) override;
  void Window(const WindowKpis& window, const std::string& partition) override;
  void DeadLetter(const kafka::Record& record, absl::string_view reason,
                  absl::string_view detail) override;
  void Changelog(const TopicPartition& input, ChangelogRecord record) override;

  struct Slot {
    std::unique_ptr<PartitionPipeline> pipeline;
    int32_t watermark_id = 0;
    bool restored = false;
  };

  void Handle(const kafka::Record& record, absl::Time now,
              absl::Time watermark);
  void RestorePending(absl::Time now);
  // Tells the watermark which partitions have records waiting.
  void UpdateBacklogs();
  // Commits the cycle's work. `revoking`: partitions are being given up.
  void CommitCycle(absl::Time now, bool revoking);
  // After an aborted commit: forget uncommitted work, restore every
  // partition again.
  void ResetAll();
  void Produce(absl::string_view topic, absl::string_view key,
               std::optional<absl::string_view> value,
               const Headers& headers = {}, int32_t partition = -1);
  void Fail(const absl::Status& status);
  void Publish(absl::Time now);
  Slot NewSlot(const TopicPartition& tp);

  Options options_;
  const Config& config_;
  Clock* clock_;
  std::unique_ptr<StreamInput> input_;
  std::unique_ptr<StreamOutput> output_;
  std::unique_ptr<ChangelogSource> changelog_;

  KpiCounters counters_;
  ActiveVisitors active_;
  RejectionReporter rejections_;
  BotFilter bots_;      // WebEvent inputs
  BotFilter log_bots_;  // access-log inputs
  ChannelClassifier channels_;
  std::vector<std::unique_ptr<EventDecoder>> decoders_;
  std::vector<std::unique_ptr<AdCostDecoder>> cost_decoders_;
  std::map<std::string, InputReader> readers_;  // by topic
  std::map<std::string, int32_t> topic_index_;
  PipelineContext context_;
  WatermarkTracker watermark_;
  std::map<TopicPartition, Slot> slots_;
  absl::Status fatal_;
  absl::Time last_commit_ = absl::InfinitePast();
  absl::Time last_full_checkpoint_ = absl::InfinitePast();
  absl::Time last_progress_ = absl::InfinitePast();
  uint64_t commits_ = 0;
  uint64_t aborts_ = 0;
  uint64_t restore_failures_ = 0;
  double last_restore_seconds_ = 0;
  double last_restore_records_ = 0;
  double last_restore_bytes_ = 0;
  std::string restore_error_;
  absl::Time next_restore_attempt_ = absl::InfinitePast();
  uint64_t dropped_records_ = 0;  // of partitions not (yet) ours

  mutable std::mutex mu_;  // guards what other threads read
  MetricsSnapshot published_;
  ThreadHealth health_;
  TargetShare targets_;
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_STREAM_THREAD_H_
