// StreamThread: one consumer-group member and its work (Kafka Streams'
// StreamThread): it polls its share of the input partitions, routes each
// record to the partition's PartitionPipeline, drives the watermark, and
// every commit interval commits the outputs, the partitions' checkpoints
// and the input positions together (one Kafka transaction with
// exactly-once; flush, then offsets, with at-least-once).
//
// Rebalances: newly assigned partitions have their state restored from the
// changelog and the consumer sought to its position before their first
// record is processed (records fetched meanwhile are dropped and read again);
// revoked partitions are committed (state handed over, not closed) before they
// are given up; lost partitions are dropped. When a commit is aborted (a
// rebalance raced it, a timeout), the pending counters are forgotten and every
// partition is restored again from the changelog: work done since the last
// commit is redone, never counted twice.
//
// /metrics shows committed work (KpiCounters pending until the commit),
// plus live gauges (state, lag, watermark, restore).
//
// The thread calls Run() and owns everything but the published snapshot and
// the health, which other threads read (thread-safe).
#ifndef KPISTREAM_ENGINE_STREAM_THREAD_H_
#define KPISTREAM_ENGINE_STREAM_THREAD_H_

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
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
#include "engine/commit_schedule.h"
#include "engine/local_store.h"
#include "engine/partition_pipeline.h"
#include "engine/stream_io.h"
#include "ingest/watermark.h"
#include "kpistream/v1/session_record.pb.h"

namespace kpistream {

// Where time comes from (injected: tests drive it).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};
Clock* RealClock();

// What /readyz reports for a thread: ready once it has joined the consumer
// group (its first assignment, even of no partition), while every assigned
// partition is restored, the brokers are reachable and records waiting are
// being processed.
struct ThreadHealth {
  // A thread silent this long is hung: neither healthy (/healthz) nor ready
  // (/readyz, kpistream_ready), whatever it said last.
  static constexpr absl::Duration kHeartbeatTimeout = absl::Seconds(60);

  bool ready = false;
  std::string reason;                           // why not ready
  absl::Time heartbeat = absl::InfinitePast();  // last loop iteration

  // Silent this long, it is not ready (/readyz, kpistream_ready) while
  // still healthy: blocked in a Kafka call (librdkafka 2.0's
  // send_offsets_to_transaction waits, whatever its timeout, until the
  // transaction's records time out when no broker answers), its last report
  // is stale. Every wait of the engine's own beats more often.
  static constexpr absl::Duration kReadyHeartbeatTimeout = absl::Seconds(15);

  // Whether the thread has not run for `timeout` as of `now` (one waiting
  // on its output still beats; one that never ran is not judged).
  bool Stalled(absl::Time now,
               absl::Duration timeout = kHeartbeatTimeout) const {
    return heartbeat != absl::InfinitePast() && now - heartbeat > timeout;
  }
};

class StreamThread : public StreamInput::Listener, private PipelineOutput {
 public:
  struct Options {
    const Config* config = nullptr;
    const std::vector<TargetSpec>* targets = nullptr;
    Clock* clock = nullptr;
    std::function<bool()> stop_requested;
    // Called after each successful commit, once its counts are in
    // Snapshot() (may be empty).
    std::function<void()> committed;
    // The dead-letter topic's own record limit (its max.message.bytes), once
    // the brokers have said it (0 until then, or never): dead letters are
    // cut to it too, not only to the producer's message.max.bytes (a larger
    // one the brokers refuse, and the work is redone, refused again, for
    // good). Null: none.
    const std::atomic<size_t>* deadletter_topic_max_bytes = nullptr;
    std::string name = "stream-0";  // for logs
    // When to commit: engine/commit_schedule.h.
    absl::Duration commit_interval = absl::Seconds(1);
    absl::Duration min_commit_interval =
        ProcessingConfig::kDefaultMinCommitInterval;
    // Shorter than commit_interval (as left here): a fixed interval.
    absl::Duration max_commit_interval = absl::ZeroDuration();
    absl::Duration publish_interval = absl::Milliseconds(200);
    size_t poll_batch = 2000;
    // Partition counts of the `key: any` inputs and of the repartition
    // topic (config RepartitionTopic), when any input is re-keyed.
    std::map<std::string, int32_t> input_partitions;
    int32_t repartition_partitions = 0;
    // Where the partitions' long-lived state and a mirror of their
    // checkpoints live (engine/local_store.h); shared by the threads,
    // outlives them. Null: in RAM and in the checkpoints only (tests).
    LocalStore* local_store = nullptr;
    // Which label values /metrics admits, shared by the threads (each
    // counts into its own KpiCounters): label_values_max bounds a label's
    // values in the process, not per thread. Null: the thread's own.
    LabelAdmissions* label_admissions = nullptr;
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
  // After Run(): whether records it processed are left uncommitted at the
  // stop: its final commit was aborted, or an earlier one whose records it
  // had not read and committed again before the stop (they are read again
  // from the last committed state at the next start).
  bool work_left_uncommitted() const { return work_left_uncommitted_; }

  // The latest published metrics (committed counters and live gauges).
  MetricsSnapshot Snapshot() const;
  ThreadHealth Health() const;

  // Target sums of this thread's partitions at its watermark (event time),
  // and that watermark; for the engine's kpi_* gauges. A thread with
  // nothing that has an event time (Timeless: none or only ad-cost
  // partitions for the idle timeout, or only idle empty ones) has no say in
  // the engine's watermark (InfiniteFuture) and sums at the engine's
  // target clock (SetTargetClock). One whose partitions are all idle
  // (`all_idle`) has a say only when every thread's are (InstanceWatermark).
  struct TargetShare {
    std::vector<TargetSums> sums;
    absl::Time watermark = absl::InfinitePast();
    bool all_idle = false;
  };
  TargetShare Targets() const;
  // Snapshot() and Targets() of one publish (two calls may straddle one,
  // and a commit's counters then met the sums of before it).
  void Published(MetricsSnapshot* metrics, TargetShare* targets) const;
  // The engine's clock for the targets (the instance's watermark, never
  // backwards), as last published.
  void SetTargetClock(absl::Time clock);
  // The instance's watermark (InstanceWatermark()) as last published: what
  // this thread's idle partitions adopt when none of its own is active.
  void SetInstanceWatermark(absl::Time watermark);

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
  void Changelog(const TopicPartition& input,
                 const ChangelogRecord& record) override;
  bool Repartition(const kafka::Record& record, absl::string_view visitor_id,
                   absl::Time watermark) override;
  // Sends the re-keyed inputs' partitions' watermarks to every partition of
  // the repartition topic (with the commit).
  // Sources handed over (revoked_, or all at the stop's commit) are sent
  // as active, so that the repartition partitions wait for their next
  // owner. The same watermarks as the last sent are sent again only after
  // WatermarksRefresh(): an idle instance wrote them at every commit.
  void SendUpstreamWatermarks(absl::Time now);
  absl::Duration WatermarksRefresh() const;

  struct Slot {
    std::unique_ptr<PartitionPipeline> pipeline;
    int32_t watermark_id = 0;
    bool restored = false;
    absl::Time watermark = absl::InfinitePast();  // the partition's, cached
    int64_t start_offset = -1;  // where reading resumed after the restore
    // The position of the last commit that went through (or where reading
    // resumed after the restore).
    int64_t committed_position = -1;
    // Restored since its assignment (a restore after an abort is not the
    // first).
    bool restored_once = false;
    // Not restored before this (after commits aborted in a row).
    absl::Time restore_after = absl::InfinitePast();
    absl::Time end_checked_at = absl::InfinitePast();  // last EndOffsets
    // The end the consumer reached that CheckDeletedUnread() last saw
    // (asked once per end: a transaction marker after the last record is
    // one offset past the position for good).
    int64_t deleted_checked_end = -1;
    // Offsets skipped [first, second) whose partition's start the consumer
    // could not tell when they were (CheckDeletedUnread), the earliest
    // kUncheckedGapsKept.
    std::vector<std::pair<int64_t, int64_t>> unchecked_gaps;
    // When CheckDeletedUnread last said it could not tell a gap.
    absl::Time ambiguous_gap_said_at = absl::InfinitePast();
    // With a local store: what it holds of the partition (set by the
    // restore, moved on by every commit).
    v1::LocalPartitionMeta local;
    // Records read again that the state holds already (the consumer's
    // position moved back: librdkafka's offset reset to the earliest after
    // "offset out of range"), skipped since the last one processed.
    int64_t skipped_again = 0;
    // The next offset to read: after the last record processed, or where
    // reading resumed.
    int64_t position() const {
      const int64_t next = pipeline->next_offset();
      return next >= 0 ? next : start_offset;
    }
  };

  void Handle(const kafka::Record& record, absl::Time now);
  // Caches every partition's watermark at `now` in its slot.
  void UpdateWatermarks(absl::Time now);
  // Asks the brokers for the ends of idle partitions about to follow their
  // thread's (or the instance's) watermark `basis` further than
  // kIdleJumpChecked past their own: those with records to read are not
  // idle (UpdateWatermarks).
  void CheckIdleBeforeJump(absl::Time now, absl::Time basis);
  // LostStateError's hint for `lost` (indices into `tps`) whose local
  // state was of another changelog topic, or "".
  std::string RenamedChangelogHint(const std::vector<TopicPartition>& tps,
                                   const std::vector<size_t>& lost) const;
  // An error when a partition without a checkpoint resumes at an offset
  // the engine committed with its state: the changelog lost it.
  absl::Status LostStateError(const std::vector<TopicPartition>& tps,
                              const std::vector<bool>& no_checkpoint) const;
  void RestorePending(absl::Time now);
  // Before closing a consumer that never had an assignment: polls (dropping
  // what it reads) until the first one comes, for a while. librdkafka
  // 2.0.2 asserts (the process aborts) when a cooperative-sticky consumer
  // is destroyed before its first assignment (librdkafka #4312, fixed in
  // 2.3.0).
  void AwaitFirstAssignment();
  // What a restore read, for the log and /metrics.
  struct RestoreCounts {
    size_t local_records = 0, local_bytes = 0;  // from the local store
    size_t changelog_records = 0, changelog_bytes = 0;
    size_t wiped = 0;  // local states not trusted (rebuilt)
    // Partitions whose checkpoints the changelog had records of after the
    // local store's position (all it had, for one without a store).
    std::set<TopicPartition> changed;
    // Partitions with records read from the local store.
    std::set<TopicPartition> local;
  };
  // Reads the partitions' checkpoints into `reader`: from the local store
  // and the changelog after its position (the whole changelog without a
  // store, or for a partition whose local state cannot be trusted); the
  // day records go straight into the store.
  absl::Status ReadState(const std::vector<Slot*>& slots,
                         const std::vector<TopicPartition>& tps,
                         CheckpointReader* reader, RestoreCounts* counts);
  // After a partition's restore: the store mirrors its live checkpoints
  // (written again only where the changelog `changed` them: the store holds
  // the rest as they are) and its position.
  absl::Status MirrorRestored(const Slot& slot, const TopicPartition& tp,
                              const CheckpointReader& reader, bool changed);
  // For the restored partitions with a position: asks the brokers where
  // their logs end; one that ends before its position is not the log the
  // checkpoint read (re-created: its offsets start again at 0). Its records
  // up to the old position were taken for the buffered events' records and
  // skipped, uncounted (by hand on Kafka 4.4: the first 36,969 records of a
  // re-created four-partition input topic). It is read from its start
  // (PartitionPipeline::Rebase).
  absl::Status RebaseRecreatedLogs(const std::vector<Slot*>& slots,
                                   const std::vector<TopicPartition>& tps,
                                   Offsets* start);
  // For the partitions resuming from a checkpoint: asks the brokers for
  // their first retained offsets; for those with buffered events to read
  // again drops the references to deleted records
  // (PartitionPipeline::SkipDeleted); moves `(*start)[i]` (where slot i
  // resumes) past deleted records, and adds those never read to `unread`.
  struct UnreadDeleted {
    size_t slot;    // index into `slots`
    int64_t from;   // the checkpoint's position
    int64_t first;  // the first retained offset
  };
  absl::Status SkipDeletedRecords(const std::vector<Slot*>& slots,
                                  const std::vector<TopicPartition>& tps,
                                  Offsets* start,
                                  std::vector<UnreadDeleted>* unread);
  // Records of `tp` from `from` to `first` - 1 were deleted before they
  // were read: said (ERROR, with where reading resumes) and counted
  // (kpistream_input_records_deleted_total).
  void SayDeletedUnread(const TopicPartition& tp, int64_t from, int64_t first,
                        int64_t resumes_at);
  // While running: the consumer handed out `reached` (a record's offset, or
  // the partition's end) with the records from the slot's position on not
  // read. When the consumer last heard that the partition starts after that
  // position (and not after `reached`), the records between were deleted
  // unread (retention ran past a reading that lagged behind; librdkafka's
  // offset reset skipped them with a log line of its own only): said and
  // counted, the position moved. Where it says the partition starts after
  // `reached`, which cannot be told (WARN, not counted). Returns whether
  // they were counted.
  bool CheckDeletedUnread(Slot& slot, const TopicPartition& tp,
                          int64_t reached);
  // The slot's unchecked_gaps, once the consumer tells where the partition
  // starts: said and counted where records in one were deleted unread.
  void CheckUncheckedGaps(Slot& slot, const TopicPartition& tp);
  static constexpr size_t kUncheckedGapsKept = 8;
  static constexpr absl::Duration kAmbiguousGapRelog = absl::Minutes(10);
  // After a successful commit: its changes and positions into the store.
  void SaveLocal();
  // Tells the watermark which partitions have records waiting, and asks
  // the brokers for the ends of quiet ones (at most every few seconds).
  void UpdateBacklogs(absl::Time now);
  // Commits the cycle's work. `revoking`: partitions are being given up.
  // `deep_backlog`: the input holds more than the thread processed since
  // its last commit (CommitSchedule::Committed).
  void CommitCycle(absl::Time now, bool revoking, bool deep_backlog = false);
  // Forgets the partitions' slots (revoked or lost), logging each with
  // `log`.
  void DropSlots(const std::vector<TopicPartition>& partitions, bool log);
  // After an aborted commit: forget uncommitted work, restore every
  // partition again.
  void ResetAll();
  // A commit aborted (exactly-once), or an output record not delivered
  // (at-least-once: the output restarts): counted, logged, every partition
  // restored and read again, after a wait once they fail in a row.
  void Aborted(const absl::Status& status, bool revoking, absl::Time now);
  void Produce(absl::string_view topic, absl::string_view key,
               std::optional<absl::string_view> value,
               const Headers& headers = {}, int32_t partition = -1);
  // Called while Produce() waits for room in the output's queue: keeps the
  // heartbeat, and says why the thread is not ready after a while.
  void WaitingForOutput();
  // While it waits on its output (reading is paused, Publish() does not
  // run): the published consumer lag from the brokers' ends, every few
  // seconds (it stayed at its value before the wait, flat while records
  // came in, and the lag alerts could not fire: an audit).
  void RefreshLagWhileWaiting(absl::Time now);
  // A restore's steps (each record read, each partition's state restored,
  // ...): keeps the heartbeat, says how far it is on /readyz and, every
  // 10 s, in the log.
  void RestoreProgress();
  // Moves the thread's heartbeat on to `now` (never back, for /healthz);
  // with a reason, the thread is not ready for it (/readyz).
  void Beat(absl::Time now, std::string not_ready = "");
  void Fail(const absl::Status& status);
  void Publish(absl::Time now);
  // Whether the thread has no say in the engine's watermark at `now`.
  bool Timeless(absl::Time now);
  Slot NewSlot(const TopicPartition& tp);

  Options options_;
  const Config& config_;
  Clock* clock_;
  std::unique_ptr<StreamInput> input_;
  std::unique_ptr<StreamOutput> output_;
  std::unique_ptr<ChangelogSource> changelog_;

  KpiCounters counters_;
  ActiveVisitors active_;
  // Owners (ActiveVisitors::OwnerOf) of partitions dropped since the last
  // assignment, whose visitors it forgets unless it gives them back.
  std::vector<uint32_t> set_aside_owners_;
  RejectionReporter rejections_;
  BotFilter bots_;      // WebEvent inputs
  BotFilter log_bots_;  // access-log inputs
  ChannelClassifier channels_;
  std::vector<std::unique_ptr<EventDecoder>> decoders_;
  std::vector<std::unique_ptr<AdCostDecoder>> cost_decoders_;
  std::map<std::string, InputReader, std::less<>> readers_;  // by topic
  std::map<std::string, int32_t> topic_index_;
  PipelineContext context_;
  WatermarkTracker watermark_;
  std::map<TopicPartition, Slot> slots_;
  // Handle()'s cache: the slot of the last record's partition (null: none;
  // reset whenever slots_ loses or gains an entry).
  TopicPartition last_tp_;
  Slot* last_slot_ = nullptr;
  absl::Status fatal_;
  CommitSchedule commit_schedule_;
  absl::Time last_full_checkpoint_ = absl::InfinitePast();
  absl::Time last_progress_ = absl::InfinitePast();
  // When the consumer or the producer last said that a broker cannot be
  // reached (librdkafka says that no broker can be once per outage, a
  // broker's own error again only after 30 s); InfinitePast() once a broker
  // answered the probe TrackOutage() makes every few seconds. Not a record:
  // records fetched before the outage are still read from the consumer's
  // queue, and cleared it (/readyz said ready, on and off, through a whole
  // outage: an audit).
  absl::Time cluster_down_at_ = absl::InfinitePast();
  absl::Time error_seen_at_ = absl::InfinitePast();  // the consumer's
  absl::Time producer_error_seen_at_ = absl::InfinitePast();
  absl::Time outage_probed_at_ = absl::InfinitePast();
  uint64_t commits_ = 0;
  uint64_t aborts_ = 0;
  // Commits aborted since the last one that went through, and why the last
  // was: a thread whose every commit aborts (a missing output topic, no
  // write permission) re-reads its records and looks busy, but commits
  // nothing: not ready.
  int aborts_in_a_row_ = 0;
  std::string last_abort_;
  // Why the thread is not ready after those aborts (readiness' reason).
  std::string AbortsReason() const;
  // The newer of the consumer's and the producer's last error events.
  struct KafkaError {
    std::string text;
    absl::Time at = absl::InfinitePast();
    bool from_producer = false;
  };
  // The consumer's, then the producer's.
  std::array<KafkaError, 2> KafkaErrors() const;
  // For a reason's text: the newer of those that say the brokers cannot be
  // reached, else the newer.
  KafkaError LastKafkaError() const;
  // Notes an unreachable-broker error of the consumer or the producer, and
  // asks a broker every few seconds while one is noted, until one answers.
  void TrackOutage(absl::Time now);
  // Whether a broker answers a question about an input partition now (up
  // to kEndCheckTimeout).
  bool BrokerAnswers();
  // Whether the brokers look unreachable: within 10 s of such an error, or
  // since one that no broker's answer has followed.
  bool BrokersLookUnreachable(absl::Time now) const;
  // Set as Run() ends ("stopped", or the fatal error): the last Publish()
  // keeps the thread not ready with it.
  std::string final_reason_;
  // The output topics the brokers do not know (StreamOutput::
  // UnknownTopics()): while set, Run() reads nothing and the thread is not
  // ready with them as the reason.
  std::string unknown_outputs_;
  // Asks the output about unknown topics; true (after a short sleep, with
  // a heartbeat) while there are some.
  bool PausedForUnknownOutputs(absl::Time now);
  absl::Time unknown_outputs_logged_ = absl::InfinitePast();
  bool work_left_uncommitted_ = false;
  // At-least-once: the last commit's flush of the outputs timed out, and
  // how many did since one last went through (not ready from
  // kAbortsBeforeNotReady; an abort between them does not reset it), the
  // last one's message.
  bool flush_timed_out_ = false;
  int flush_timeouts_in_a_row_ = 0;
  std::string last_flush_timeout_;
  bool closing_ = false;   // the final commit is made; the input closes
  bool stopping_ = false;  // the stop's final commit is under way
  // The partitions being revoked, during their revocation's commit.
  const std::vector<TopicPartition>* revoked_ = nullptr;
  // Partitions whose processed records were rolled back (an aborted commit,
  // other partitions lost), each with the position it had reached: until
  // a commit reaches that position again (or the partition is revoked, to
  // be read by its new owner).
  std::map<TopicPartition, int64_t> rolled_back_;
  uint64_t restore_failures_ = 0;
  double last_restore_seconds_ = 0;
  double last_restore_records_ = 0;
  double last_restore_bytes_ = 0;
  std::string restore_error_;
  // Partitions whose local state was of another changelog topic (by
  // name): it, for the lost-state error's hint (outputs.changelog.topic
  // changed). Kept across the restore's attempts (the first drops that
  // local state).
  std::map<TopicPartition, std::string> changelog_before_;
  // Likewise, of another partition of the same changelog topic: that
  // partition (the topic's partition count changed; a partition's state
  // goes to input partition mod the count).
  std::map<TopicPartition, int32_t> changelog_partition_before_;
  // Attempts in a row that failed with restore_error_, and when that was
  // last logged.
  uint64_t restore_error_repeats_ = 0;
  absl::Time restore_error_logged_ = absl::InfinitePast();
  static constexpr absl::Duration kRestoreErrorRelog = absl::Minutes(1);
  absl::Time next_restore_attempt_ = absl::InfinitePast();
  uint64_t dropped_records_ = 0;  // of partitions not (yet) ours
  // The debug log's, the schedule's, and whether a commit ends aborts in a
  // row (with produced_since_commit_).
  uint64_t processed_since_commit_ = 0;
  // Some slot has unchecked_gaps (UpdateBacklogs asks again).
  bool unchecked_gaps_ = false;
  uint64_t produced_since_commit_ = 0;  // output and changelog records
  // The watermark record last sent (SendUpstreamWatermarks), and when;
  // cleared when a commit does not go through.
  std::string sent_watermarks_;
  absl::Time sent_watermarks_at_ = absl::InfinitePast();
  // A session closed since the last commit (it changes the target sums
  // also when no session record is written).
  bool closed_since_commit_ = false;
  // Since when Produce() waits for room in the output's queue
  // (InfinitePast: it does not), and its last heartbeat meanwhile.
  absl::Time output_waiting_since_ = absl::InfinitePast();
  absl::Time output_heartbeat_ = absl::InfinitePast();
  absl::Time lag_refreshed_at_ = absl::InfinitePast();  // while waiting
  // The restore under way: since when, what /readyz says of it, and when
  // RestoreProgress() last kept the heartbeat and logged.
  struct RestoreUnderWay {
    absl::Time started, heartbeat, logged;
    std::string what;   // "restoring the state of N partition(s) ..."
    std::string after;  // the aborts before it ("" when none)
    // Records read (the local store's, the changelog's needed or not).
    size_t records = 0, bytes = 0;
    size_t restored = 0;  // partitions whose state is restored from them
  } restore_;
  // The consumer group has given this member its first assignment (possibly
  // of no partition at all); not ready before (/readyz).
  bool joined_ = false;
  // Its assignment lost (the group moved on without it) and none since:
  // not ready, as while joining (it said ready with no partition until the
  // next assignment, an audit: 1-5 s).
  bool lost_ = false;
  // Since when the watermark tracker has had no partition (Timeless).
  absl::Time no_partitions_since_ = absl::InfiniteFuture();
  // Set by the destructor: the group's callbacks that closing the consumer
  // still serves change nothing (see ~StreamThread).
  bool destroying_ = false;
  // Re-keying: the repartition topic (empty: none), and per `key: any`
  // input how many records were forwarded and how many of those were keyed
  // by their visitor_id already (a hint to set key: visitor_id, logged once).
  std::string repartition_topic_;
  struct KeyHint {
    uint64_t forwarded = 0;
    uint64_t keyed = 0;
    bool logged = false;
  };
  std::map<std::string, KeyHint, std::less<>> key_hints_;
  std::string forwarded_;  // Repartition()'s record value, reused
  // UpdateBacklogs()'s, reused: positions, their watermark ids and lags.
  Offsets backlog_positions_;
  std::vector<int32_t> backlog_ids_;
  std::vector<int64_t> backlog_lags_;
  // The records of the input topics' partitions (not the repartition
  // topic's) between what was processed and their ends as last fetched,
  // at the last UpdateBacklogs(): 0 where not known. The repartition
  // topic's end counts records of transactions still open (read_committed
  // cannot read them yet), so it does not say whether a thread is behind.
  int64_t input_lag_ = 0;
  LocalStore::Batch local_batch_;  // SaveLocal()'s, reused (its buffer kept)
  // Session()'s, reused: a closed session's record and its bytes.
  v1::SessionRecord session_record_;
  std::string session_bytes_;
  // Window()'s, reused: a window's key, snapshot and its bytes.
  std::string window_key_;
  v1::KpiSnapshot kpi_snapshot_;
  std::string window_bytes_;

  mutable std::mutex mu_;  // guards what other threads read
  MetricsSnapshot published_;
  ThreadHealth health_;
  TargetShare targets_;
  absl::Time target_clock_ = absl::InfinitePast();
  // SetInstanceWatermark()'s, in unix microseconds (INT64_MIN: none): read
  // at every poll, without the lock.
  std::atomic<int64_t> instance_watermark_us_{INT64_MIN};
};

// The instance's watermark from its threads' TargetShares: the lowest of
// the threads with an active partition; when every thread with an event
// time has all its partitions idle, the highest of those (as a thread's
// watermark is made of its partitions'). Threads without an event time
// (InfiniteFuture) have no say; none with one: InfiniteFuture.
absl::Time InstanceWatermark(
    const std::vector<StreamThread::TargetShare>& shares);

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_STREAM_THREAD_H_
