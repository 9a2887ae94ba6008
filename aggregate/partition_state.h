// PartitionState: all aggregation state of one input partition (SPEC §5) —
// the ReorderBuffer that restores event-time order inside the watermark's
// out-of-orderness, the Deduplicator, the Sessionizer with its visitor and
// order memories, the partition's KPI windows and its share of the KPI
// targets — and the checkpoints that move it with the partition.
//
// Admission of an event, given the current watermark W:
//   time <  W - allowed_lateness  -> kLate (caller counts and dead-letters it)
//   a repeat of (site, visitor, event_id)
//                                 -> kDuplicate (same)
//   time <  W                     -> straight to the Sessionizer, which may
//                                    still refuse it as late
//   otherwise                     -> buffered until the watermark passes it
// Advance(W) releases buffered events with time < W in (time, record
// offset, event_id) order, then closes sessions up to W - allowed_lateness.
//
// What happens is reported to the observer (counters, session records): a
// session's start and events when they are applied, its end when it
// closes. The KPI windows and targets are fed internally.
//
// Checkpoints (SPEC §5): Checkpoint() writes the changes since the last
// checkpoint (everything with `full`) through a CheckpointSink, which may
// cut them into several records; Restore() applies checkpoint records in
// order (the last full one, then every later one), FinishRestore() once
// after the last. A restored state behaves exactly as the state that wrote
// the checkpoints did at that point: same sessions, same buffered events,
// same memories, same windows and targets. Restore() refuses (DataLoss) a
// record that no state can have written: times outside the event-time range
// (aggregate/event.h), days of such times, an unknown event type. Funnel
// progress is cut to the configured funnels (the config may have changed
// since the checkpoint).
//
// Time is passed in. Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_PARTITION_STATE_H_
#define KPISTREAM_AGGREGATE_PARTITION_STATE_H_

#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "aggregate/deduplicator.h"
#include "aggregate/event.h"
#include "aggregate/kpi_windows.h"
#include "aggregate/reorder_buffer.h"
#include "aggregate/sessionizer.h"
#include "aggregate/target_tracker.h"
#include "kpistream/v1/state.pb.h"

namespace kpistream {

// Receives a checkpoint as it is written: elements are added to chunk(),
// and Added() is told the encoded size of each, so that the sink can close
// the chunk (and start an empty one) when it is large enough.
class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  virtual v1::PartitionCheckpoint* chunk() = 0;
  virtual void Added(size_t bytes) = 0;
  // An open session of the chunk, serialized (to be read as if it were in
  // chunk()->sessions()); calls Added() too.
  virtual void AddSession(absl::string_view serialized) = 0;
};

class PartitionState {
 public:
  enum class Admit { kAccepted, kLate, kDuplicate };

  struct Options {
    SessionRules rules;
    absl::Duration allowed_lateness = absl::Minutes(5);
    absl::Duration dedup_horizon = absl::ZeroDuration();  // zero: no dedup
    absl::Duration kpi_window = absl::Minutes(1);
    // The KPI targets (outlive the state); null or empty: none.
    const std::vector<TargetSpec>* targets = nullptr;
    // The targets' site names (TargetTracker::SiteLabel).
    TargetTracker::SiteLabel site_label;
  };

  // `observer` (counters, session output) and `attribution` (may be null)
  // outlive the state.
  PartitionState(Options options, SessionObserver* observer,
                 const SessionAttribution* attribution = nullptr);
  // The sessions alone (no KPI window output to collect, no targets).
  PartitionState(SessionRules rules, absl::Duration allowed_lateness,
                 SessionObserver* observer,
                 const SessionAttribution* attribution = nullptr,
                 absl::Duration dedup_horizon = absl::ZeroDuration())
      : PartitionState(Options{std::move(rules), allowed_lateness,
                               dedup_horizon, absl::Minutes(1), nullptr},
                       observer, attribution) {}
  ~PartitionState();

  // Offers one validated event (copied when kept). On kLate and kDuplicate
  // nothing changes (the caller dead-letters the original). `judged_by`,
  // when later than `watermark`, is the watermark its lateness is judged
  // against (a re-keyed event: its source partition's as of its record);
  // `watermark` releases what it passes.
  Admit Offer(const EventView& event, absl::Time watermark,
              absl::Time judged_by = absl::InfinitePast());

  // Releases buffered events older than `watermark` and closes sessions that
  // can no longer change. Returns the number of sessions closed.
  size_t Advance(absl::Time watermark);

  // Releases every buffered event and closes every open session (end of a
  // bounded input, tests).
  size_t Drain();

  // KPI windows changed since the last call, and finished ones (final) up to
  // `frontier` (KpiWindows::Collect).
  std::vector<WindowKpis> CollectWindows(absl::Time frontier);
  void CollectWindows(absl::Time frontier,
                      absl::FunctionRef<void(const WindowKpis&)> emit);

  // Ad spend for ROAS targets: at `time`, or spread over [time, until)
  // (TargetTracker::OnAdCost).
  void OnAdCost(absl::string_view site, absl::string_view channel,
                absl::string_view currency, int64_t micros, absl::Time time,
                absl::Time until = absl::InfinitePast());
  // This partition's share of every target at event time `now` (the
  // watermark): rolling windows end `allowed_lateness` before it, where
  // sessions are closed.
  void AddTargetSums(absl::Time now, std::vector<TargetSums>* sums);

  // Keeps the visitors' and orders' days in these stores (before the first
  // event or restore); by default they are in RAM and in the checkpoints.
  // A persistent store (memory() null) is left out of the checkpoints: it
  // writes its own changelog records.
  void UseDayStores(std::unique_ptr<DayStore> visitors,
                    std::unique_ptr<DayStore> orders);

  // A buffered event with a record offset (EventView::record_offset) is
  // checkpointed by reference, as (offset, time), not in full: on restore it
  // is read again from its record. After FinishRestore() the references the
  // frontier has not passed wait, in offset order: the caller reads its
  // input again from replay_from() and offers each record before the
  // checkpoint's position to WantsReplay(), and the event of each one it
  // accepts to Replay(). Until the last is back nothing is released:
  // Advance() does nothing (no session closed either), Offer() buffers an
  // event behind the watermark unless the frontier passed it; and a full
  // checkpoint writes the waiting references again.
  void Checkpoint(bool full, CheckpointSink* sink);
  absl::Status Restore(const v1::PartitionCheckpoint& checkpoint);
  void FinishRestore();

  // The offset of the first record to read again; -1: none.
  int64_t replay_from() const;
  size_t pending_replays() const { return replay_.size() - replay_next_; }
  // Whether the record at `offset` (offered in increasing order) holds an
  // event to add again. References to records before it were never offered
  // (deleted from the topic?): they are dropped and added to *missing.
  bool WantsReplay(int64_t offset, size_t* missing);
  // Adds again the event of the record WantsReplay() accepted last. False,
  // and nothing added, when its event time is not the one checkpointed
  // (the record was decoded differently).
  bool Replay(const EventView& event);
  // Drops the references still waiting; returns how many.
  size_t AbandonReplays();

  // Checkpointed target buckets restore dropped: of targets removed or
  // redefined since they were written.
  size_t dropped_target_buckets() const { return dropped_target_buckets_; }
  // The names of the targets they were of (at most kMaxDroppedNames).
  const std::set<std::string>& dropped_target_names() const {
    return dropped_target_names_;
  }
  static constexpr size_t kMaxDroppedNames = 32;
  // The watermark the buffer has released up to.
  absl::Time frontier() const { return frontier_; }
  size_t open_sessions() const { return sessionizer_.open_sessions(); }
  absl::Duration allowed_lateness() const { return options_.allowed_lateness; }
  // Whether sessions look at the events' client session ids
  // (sessions.session_source: client); otherwise the ids need not be kept.
  bool uses_session_ids() const { return options_.rules.split_on_session_id; }
  // Waiting references included.
  size_t buffered_events() const { return buffer_.size() + pending_replays(); }
  const Sessionizer& sessionizer() const { return sessionizer_; }
  size_t ApproximateBytes() const;

 private:
  class Fanout;
  void Release(absl::Time watermark);

  Options options_;
  std::unique_ptr<Fanout> fanout_;
  KpiWindows windows_;
  std::unique_ptr<TargetTracker> targets_;  // null without targets
  Sessionizer sessionizer_;
  ReorderBuffer buffer_;
  Deduplicator dedup_;
  absl::Time frontier_ = absl::InfinitePast();
  // Sessions are closed up to here (the newest watermark less the allowed
  // lateness when they were): an event before it is late whatever the
  // allowed lateness is now. Checkpointed: a lateness raised across a
  // restart (as the dead-letter runbook advises) let events of sessions
  // closed under the old one in again, each starting a session of its own,
  // and a repeat of one counted again (an audit).
  absl::Time closed_up_to_ = absl::InfinitePast();
  size_t dropped_target_buckets_ = 0;
  std::set<std::string> dropped_target_names_;
  // The buckets restored that no target took (target, fingerprint, bucket):
  // erased in the next checkpoint, so that a target removed and later put
  // back does not find its old sums again in the checkpoints before the
  // removal (an audit: a period target re-added read 5 + 2 where the docs
  // say 2, its sums starting again at the re-adding).
  std::set<std::tuple<std::string, std::string, int64_t>> dropped_buckets_;
  struct BufferedRef {
    int64_t offset;
    int64_t time_us;
  };
  // References to read again, by offset; the first replay_next_ are done.
  std::vector<BufferedRef> replay_;
  size_t replay_next_ = 0;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_PARTITION_STATE_H_
