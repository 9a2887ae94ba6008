#include "engine/stream_thread.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "aggregate/metric_families.h"
#include "cmd/log.h"
#include "engine/state_options.h"
#include "export/dead_letter.h"
#include "export/session_record_codec.h"
#include "kafka/producer.h"
#include "kpistream/v1/state.pb.h"

namespace kpistream {
namespace {

// A full snapshot at least this often, so that even a changelog topic that
// deletes old records (instead of compacting) keeps a complete state.
constexpr absl::Duration kFullCheckpointInterval = absl::Hours(1);
constexpr absl::Duration kRestoreRetry = absl::Seconds(5);
// How long a thread stopped before its first assignment waits for it
// (AwaitFirstAssignment); within Kubernetes' default 30 s grace period.
constexpr absl::Duration kFirstAssignmentWait = absl::Seconds(15);
// How often a quiet partition's end is asked for, and how long at most.
constexpr absl::Duration kEndCheckInterval = absl::Seconds(2);
constexpr absl::Duration kEndCheckTimeout = absl::Seconds(2);
// The first retained offsets before reading buffered events again (as long
// as a seek may take).
constexpr absl::Duration kStartOffsetsTimeout = absl::Seconds(30);
// Longer than this without a record while records wait: "no progress".
constexpr absl::Duration kStallAfter = absl::Seconds(60);
// Unchanged watermarks are sent again after this (or a third of the time
// the readers wait for an idle source's word, if shorter).
constexpr absl::Duration kWatermarksRefresh = absl::Seconds(10);
// After the consumer or the producer said that a broker (or every one)
// cannot be reached: not ready for at least kUnreachableFor, and until a
// broker answers (asked every kOutageProbeInterval). librdkafka says that
// no broker can be once per outage, and a broker's own error again only
// after 30 s (rd_kafka_broker_fail's suppression), so with the 10 s alone a
// caught-up thread read as ready for 20 s of every 30 of an outage
// (review); one broker of several down is no outage of the cluster: the
// probe's partition has a leader again within seconds.
constexpr absl::Duration kUnreachableFor = absl::Seconds(10);
constexpr absl::Duration kOutageProbeInterval = absl::Seconds(5);
// This many commits aborted in a row: not ready (one is a rebalance or a
// broker's hiccup; every one, a commit that cannot go through).
constexpr int kAbortsBeforeNotReady = 3;
// After the second commit aborted in a row, the partitions are restored and
// read again only after a wait, doubled with every further one up to the
// most: an output that refuses every record (no write permission, records
// too large for the topic) made the thread read its input again every
// commit interval, for as long as it lasted.
constexpr absl::Duration kAbortBackoff = absl::Seconds(1);
constexpr absl::Duration kAbortBackoffMax = absl::Seconds(30);
// Waiting this long for room in the output's queue: not ready.
constexpr absl::Duration kOutputWaitBeforeNotReady = absl::Seconds(10);
// While a thread waits on its output: how often it asks the brokers for its
// partitions' ends (the consumer lag), and for how long at most.
constexpr absl::Duration kLagRefreshWhileWaiting = absl::Seconds(5);
constexpr absl::Duration kLagQueryTimeout = absl::Seconds(1);

class SystemClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

// At most one line per topic per interval.
void LogRejections(const std::vector<RejectionReporter::Summary>& summaries) {
  for (const RejectionReporter::Summary& summary : summaries) {
    Log(summary.OnlyExpected() ? LogLevel::kInfo : LogLevel::kWarn, "engine",
        summary.Text(), summary.Fields());
  }
}

KpiCounters::Options CounterOptions(const Config& config,
                                    LabelAdmissions* admissions) {
  KpiCounters::Options options = CounterOptionsFrom(config);
  options.admissions = admissions;
  return options;
}

}  // namespace

Clock* RealClock() {
  static SystemClock* clock = new SystemClock();
  return clock;
}

StreamThread::StreamThread(Options options)
    : options_(std::move(options)),
      config_(*options_.config),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      counters_(CounterOptions(config_, options_.label_admissions)),
      rejections_(RejectionReporterOptions(config_), clock_->Now()),
      bots_(config_.bot_patterns, config_.empty_user_agent_is_bot),
      log_bots_(config_.bot_patterns, /*empty_is_bot=*/true),
      channels_(ChannelOptionsFrom(config_)),
      watermark_(config_.processing.max_out_of_orderness,
                 config_.processing.idle_partition_timeout),
      commit_schedule_(options_.commit_interval, options_.min_commit_interval,
                       options_.max_commit_interval) {
  for (const InputConfig& input : config_.inputs) {
    InputReader reader;
    reader.topic = input.topic;
    if (input.kind == InputKind::kAdCost) {
      reader.ad_cost = true;
      cost_decoders_.push_back(std::make_unique<AdCostDecoder>(input.format));
      reader.costs = cost_decoders_.back().get();
    } else {
      decoders_.push_back(std::make_unique<EventDecoder>(
          input.format, config_.processing.max_future_skew, input.site,
          input.host));
      decoders_.back()->SetSkipPaths(input.skip_paths);
      reader.events = decoders_.back().get();
      // SPEC §9: an access-log line without a user agent is a bot; a
      // WebEvent's user agent is optional.
      reader.bots =
          input.format == InputFormat::kCombinedLog ? &log_bots_ : &bots_;
      reader.rekey = input.key == InputKey::kAny;
      reader.keyed_by_visitor = input.key == InputKey::kVisitorId;
      if (reader.rekey) {
        auto it = options_.input_partitions.find(input.topic);
        context_.upstream_sources.push_back(
            {input.topic,
             it != options_.input_partitions.end() ? it->second : 1});
      }
    }
    topic_index_.emplace(input.topic,
                         static_cast<int32_t>(topic_index_.size()));
    readers_.emplace(input.topic, std::move(reader));
  }
  if (NeedsRepartition(config_)) {
    repartition_topic_ = RepartitionTopic(config_);
    InputReader reader;
    reader.topic = repartition_topic_;
    reader.sources = &readers_;  // std::map: stable
    topic_index_.emplace(repartition_topic_,
                         static_cast<int32_t>(topic_index_.size()));
    readers_.emplace(repartition_topic_, std::move(reader));
  }
  context_.state = PartitionStateOptionsFrom(config_, options_.targets);
  context_.state.site_label = [this](absl::string_view site) {
    return counters_.SiteLabel(site);
  };
  context_.max_out_of_orderness = config_.processing.max_out_of_orderness;
  context_.channels = &channels_;
  context_.counters = &counters_;
  context_.active = &active_;
  context_.rejections = &rejections_;
  context_.max_future_skew = config_.processing.max_future_skew;
  context_.idle_source_silence = 3 * commit_schedule_.max_interval() +
                                 config_.processing.idle_partition_timeout;
  context_.event_time_capped_at_clock =
      config_.processing.event_time_capped_at_clock;
  context_.local_store = options_.local_store;
  context_.checkpoints_in_transactions =
      config_.processing.guarantee == Guarantee::kExactlyOnce;
  context_.group_id = config_.kafka.group_id;
  health_.reason = "starting";
}

StreamThread::~StreamThread() {
  // The consumer first, while every member is alive (input_ would go last):
  // closing it serves the group's callbacks, e.g. an assignment that came
  // meanwhile and its revocation, which would otherwise reach members
  // already destroyed (an engine whose start failed after its consumers
  // joined: std::out_of_range from a destroyed map). They change nothing
  // now: Run() closed the consumer after its last commit, and a thread that
  // failed or never ran has nothing to commit.
  destroying_ = true;
  input_.reset();
}

void StreamThread::Attach(std::unique_ptr<StreamInput> input,
                          std::unique_ptr<StreamOutput> output,
                          std::unique_ptr<ChangelogSource> changelog) {
  input_ = std::move(input);
  output_ = std::move(output);
  changelog_ = std::move(changelog);
  // Before any partition's pipeline is made (assignments come later).
  context_.checkpoint_chunk_bytes =
      CheckpointChunkBytes(output_->max_record_bytes());
  output_->SetWaitCallback([this] { WaitingForOutput(); });
  output_->SetGiveUpCallback(
      [this] { return options_.stop_requested && options_.stop_requested(); });
  Publish(clock_->Now());  // counters with known labels at 0 from the start
}

StreamThread::Slot StreamThread::NewSlot(const TopicPartition& tp) {
  Slot slot;
  slot.watermark_id = topic_index_.at(tp.topic) * 100000 + tp.partition;
  slot.pipeline =
      std::make_unique<PartitionPipeline>(tp, &readers_.at(tp.topic), &context_,
                                          static_cast<PipelineOutput*>(this));
  return slot;
}

absl::Status StreamThread::Run() {
  KPI_LOG_INFO("%s: consuming as group \"%s\" (%s)", options_.name,
               config_.kafka.group_id,
               output_->transactional() ? "exactly_once" : "at_least_once");
  absl::Time last_publish = absl::InfinitePast();
  absl::Time logged_error_at = absl::InfinitePast();
  while (!options_.stop_requested() && fatal_.ok()) {
    absl::Time now = clock_->Now();
    RestorePending(now);
    UpdateBacklogs(now);
    UpdateWatermarks(now);
    if (PausedForUnknownOutputs(now)) {
      if (now - last_publish >= options_.publish_interval) {
        Publish(now);
        last_publish = now;
      }
      continue;
    }
    // An idle input blocks here: at most until an early commit may be due.
    // Fewer records than asked for, and less than another poll's worth
    // left in the input topics: the thread has caught up with its input,
    // and may commit early (engine/commit_schedule.h). A poll also comes
    // back short when the thread has read all that was fetched while the
    // brokers hold more: that is not caught up.
    size_t polled = 0;
    input_->Poll(
        options_.poll_batch,
        std::min(absl::Milliseconds(100), commit_schedule_.min_interval()),
        [&](const kafka::Record& record) {
          ++polled;
          if (fatal_.ok()) Handle(record, now);
        });
    if (absl::Status s = input_->fatal(); !s.ok()) Fail(s);
    now = clock_->Now();
    UpdateWatermarks(now);
    for (auto& [tp, slot] : slots_) {
      if (slot.restored) slot.pipeline->Advance(slot.watermark);
    }
    // The producer's events (its errors among them) are served only while
    // it produces or commits: an idle thread serves them here, or they came
    // minutes late, at the next commit, and read as an outage then.
    output_->ServeEvents();
    TrackOutage(now);
    // A broker that cannot be reached: said at once, then every 10 s.
    if (input_->last_error_at() > logged_error_at &&
        now - logged_error_at >= absl::Seconds(10)) {
      logged_error_at = input_->last_error_at();
      KPI_LOG_WARN("%s: kafka: %s", options_.name, input_->last_error());
    }
    LogRejections(rejections_.Take(now));
    // What the input topics still hold (polled may count repartition
    // records too: then this is an underestimate, and caught up easier).
    const int64_t left = input_lag_ - static_cast<int64_t>(polled);
    const bool caught_up = polled < options_.poll_batch &&
                           left < static_cast<int64_t>(options_.poll_batch);
    if (commit_schedule_.Due(now, caught_up, processed_since_commit_ > 0)) {
      // More left than processed since the last commit: the backlog
      // outlasts another interval, which may then be longer.
      const bool deep_backlog =
          left > static_cast<int64_t>(processed_since_commit_);
      const absl::Duration interval = commit_schedule_.current_interval();
      CommitCycle(now, /*revoking=*/false, deep_backlog);
      if (commit_schedule_.current_interval() != interval) {
        KPI_LOG_DEBUG(
            "%s: commits every %s under a backlog now (%d record(s) "
            "left in the input topics)",
            options_.name,
            absl::FormatDuration(commit_schedule_.current_interval()),
            std::max<int64_t>(left, 0));
      }
    }
    if (now - last_publish >= options_.publish_interval) {
      Publish(now);
      last_publish = now;
    }
  }
  if (fatal_.ok() && BrokersLookUnreachable(clock_->Now()) &&
      !BrokerAnswers()) {
    // No broker answers (TrackOutage, and asked again now: an error of a
    // moment ago may have been one broker's blip): a commit would wait out
    // librdkafka's timeouts (45-53 s measured: adding the offsets, then an
    // abort that times out too) and fail, past a SIGTERM's grace period.
    // Not tried.
    work_left_uncommitted_ = true;
    KPI_LOG_WARN(
        "%s: stopping while no broker answers (%s): the final commit is "
        "not tried; the work since the last commit is redone from its state "
        "when the partitions are next assigned (nothing is lost)",
        options_.name, LastKafkaError().text);
    if (!output_->transactional()) output_->DropQueued();
    AwaitFirstAssignment();
    closing_ = true;
    input_->Close();
  } else if (fatal_.ok()) {
    KPI_LOG_INFO("%s: stopping: committing the state (open sessions are kept)",
                 options_.name);
    const uint64_t aborts = aborts_;
    stopping_ = true;
    CommitCycle(clock_->Now(), /*revoking=*/false);
    stopping_ = false;
    // Aborted, or (at-least-once) the outputs not acknowledged in time.
    if (aborts_ != aborts || flush_timed_out_) {
      work_left_uncommitted_ = true;
      KPI_LOG_WARN(
          "%s: the final commit failed (above): the work since the "
          "last commit is redone from its state when the partitions "
          "are next assigned (nothing is lost)",
          options_.name);
    } else if (!rolled_back_.empty()) {
      // A QA pass saw "stopped cleanly; the state is committed" right after
      // a commit aborted at the stop: true of the state, silent about the
      // records it had rolled back.
      work_left_uncommitted_ = true;
      std::string which;
      for (const auto& [tp, position] : rolled_back_) {
        absl::StrAppend(&which, which.empty() ? "" : ", ", tp.topic, "[",
                        tp.partition, "] up to offset ", position);
      }
      KPI_LOG_WARN(
          "%s: records rolled back (above) were not all read and "
          "committed again before the stop (%s): they are read "
          "and processed again from the last committed state when "
          "their partitions are next assigned (nothing is lost)",
          options_.name, which);
    }
    AwaitFirstAssignment();
    // The close revokes the partitions: their commit was the one above.
    // Outputs it could not flush in time are dropped first, as a failure
    // drops them (Fail()).
    if (flush_timed_out_) output_->DropQueued();
    closing_ = true;
    input_->Close();
  }
  LogRejections(rejections_.Flush(clock_->Now()));
  // Not ready from now on: the final Publish() computed "ready" afresh
  // before, and /readyz said 200 through final_scrape_wait.
  final_reason_ = fatal_.ok() ? "stopped" : fatal_.ToString();
  Publish(clock_->Now());
  return fatal_;
}

bool StreamThread::PausedForUnknownOutputs(absl::Time now) {
  std::string unknown = output_->UnknownTopics(now);
  if (unknown.empty()) {
    if (!unknown_outputs_.empty()) {
      KPI_LOG_INFO("%s: every output topic can be written: reading resumes",
                   options_.name);
      unknown_outputs_.clear();
      unknown_outputs_logged_ = absl::InfinitePast();
    }
    return false;
  }
  // Said at once, then every minute while it lasts.
  if (now - unknown_outputs_logged_ >= absl::Minutes(1)) {
    unknown_outputs_logged_ = now;
    KPI_LOG_WARN(
        "%s: reading is paused: the brokers do not know an output topic "
        "(%s); nothing is lost, the input waits until it can be written",
        options_.name, unknown);
  }
  unknown_outputs_ = std::move(unknown);
  Beat(now);
  // Nothing to wait on but the next asking: a short sleep, so that a stop
  // is seen at once.
  absl::SleepFor(absl::Milliseconds(50));
  return true;
}

void StreamThread::AwaitFirstAssignment() {
  if (joined_) return;
  KPI_LOG_INFO(
      "%s: waiting up to %d s for the consumer group's first "
      "assignment before closing (librdkafka 2.0 aborts the process "
      "when a cooperative-sticky consumer is destroyed before it, "
      "librdkafka issue #4312)",
      options_.name,
      static_cast<int>(absl::ToInt64Seconds(kFirstAssignmentWait)));
  const absl::Time until = clock_->Now() + kFirstAssignmentWait;
  while (!joined_ && fatal_.ok() && clock_->Now() < until) {
    // Nothing is processed any more: records fetched meanwhile are dropped
    // (not committed, so read again by the partitions' next owner).
    input_->Poll(options_.poll_batch, absl::Milliseconds(100),
                 [](const kafka::Record&) {});
  }
  if (!joined_) {
    KPI_LOG_WARN("%s: no assignment came within %d s; closing anyway",
                 options_.name,
                 static_cast<int>(absl::ToInt64Seconds(kFirstAssignmentWait)));
  }
}

void StreamThread::UpdateWatermarks(absl::Time now) {
  for (auto& [tp, slot] : slots_) {
    if (slot.restored && slot.pipeline->repartition()) {
      slot.pipeline->ExpireIdleSources();
      watermark_.SetExternal(slot.watermark_id,
                             slot.pipeline->UpstreamWatermark());
    }
  }
  // With none of its partitions active, the idle ones go on with the rest
  // of the instance (an audit: a quiet input partition alone on its thread
  // kept its last events buffered, their sessions open, and held the
  // instance's watermark and targets' clock back by an hour).
  const int64_t instance_us =
      instance_watermark_us_.load(std::memory_order_relaxed);
  const absl::Time instance = instance_us == INT64_MIN
                                  ? absl::InfinitePast()
                                  : absl::FromUnixMicros(instance_us);
  CheckIdleBeforeJump(now, watermark_.AdoptionBasis(now, instance));
  watermark_.Current(now);  // keeps the thread's (never backwards) current
  const absl::Time basis = watermark_.AdoptionBasis(now, instance);
  for (auto& [tp, slot] : slots_) {
    slot.watermark = watermark_.Of(slot.watermark_id, now, basis);
  }
}

void StreamThread::CheckIdleBeforeJump(absl::Time now, absl::Time basis) {
  // An idle partition's records behind the watermark it adopts are late. A
  // backlog that lands on every partition of an idle engine at once (a
  // collector's flush after an outage) is read one partition's run first:
  // the others, idle by the consumer's cached ends, took that run's event
  // time, and 30 % of the backlog was dead-lettered as late (an audit). So
  // before an idle partition follows a jump of more than the allowed
  // lateness (a minute at least), the brokers say whether it is still at
  // its end; a steady watermark it follows in small steps asks nothing.
  if (basis == absl::InfinitePast()) return;
  const absl::Duration jump =
      std::max(config_.processing.allowed_lateness, absl::Minutes(1));
  std::vector<TopicPartition> check;
  for (const auto& [tp, slot] : slots_) {
    if (slot.restored && basis - slot.watermark > jump &&
        watermark_.Idle(slot.watermark_id, now)) {
      check.push_back(tp);
    }
  }
  if (check.empty()) return;
  auto ends = input_->EndOffsets(check, kEndCheckTimeout);
  for (const TopicPartition& tp : check) {
    Slot& slot = slots_.at(tp);
    slot.end_checked_at = now;
    // Unconfirmed (no broker answered): not idle, as a quiet partition's
    // end that cannot be checked (UpdateBacklogs).
    if (!ends.ok()) watermark_.Uncaught(slot.watermark_id);
  }
  if (!ends.ok()) return;
  // A partition the answer leaves out (its leader away: the brokers
  // answered for the others) is unconfirmed too (an audit: a broker stopped
  // for 60 s, its partitions, left out, followed the others' jump as idle,
  // and what they held back was late when it came).
  std::set<TopicPartition> answered;
  for (const auto& [tp, end] : *ends) {
    answered.insert(tp);
    auto it = slots_.find(tp);
    if (it == slots_.end()) continue;
    const int64_t position = it->second.position();
    if (position < 0 || end - position > 1) {
      watermark_.Uncaught(it->second.watermark_id);
    }
  }
  for (const TopicPartition& tp : check) {
    if (!answered.count(tp)) watermark_.Uncaught(slots_.at(tp).watermark_id);
  }
}

void StreamThread::Handle(const kafka::Record& record, absl::Time now) {
  // Records come in runs of one partition: the last one's slot is cached.
  if (last_slot_ == nullptr || record.partition != last_tp_.partition ||
      record.topic != last_tp_.topic) {
    last_tp_.topic.assign(record.topic.data(), record.topic.size());
    last_tp_.partition = record.partition;
    auto it = slots_.find(last_tp_);
    last_slot_ = it == slots_.end() ? nullptr : &it->second;
  }
  if (last_slot_ == nullptr || !last_slot_->restored) {
    // Not ours (yet): read again once restored and sought to.
    ++dropped_records_;
    return;
  }
  Slot& slot = *last_slot_;
  if (record.offset > slot.pipeline->next_offset() &&
      slot.pipeline->next_offset() >= 0) [[unlikely]] {
    CheckDeletedUnread(slot, last_tp_, record.offset);
  }
  if (slot.pipeline->Processed(record.offset)) [[unlikely]] {
    // The consumer's position went back behind what the state holds:
    // librdkafka resets it to the earliest offset on "offset out of range"
    // (an audit: a broker stopped for 60 s, then partitions read again
    // from 0, 3,752 records dead-lettered as late and 185 as duplicates,
    // every one of them accepted before, and counted consumed twice). The
    // state is the truth: each is skipped until the position is reached.
    if (slot.skipped_again++ == 0) {
      KPI_LOG_WARN(
          "%s: %s[%d] read again from offset %d, behind offset %d that its "
          "state holds (the consumer's position reset, e.g. after \"offset "
          "out of range\" while a broker was away): the records before "
          "offset %d are skipped, not counted twice",
          options_.name, last_tp_.topic, last_tp_.partition, record.offset,
          slot.pipeline->next_offset(), slot.pipeline->next_offset());
    }
    return;
  }
  if (slot.skipped_again > 0) [[unlikely]] {
    KPI_LOG_INFO("%s: %s[%d]: %d record(s) read again were skipped",
                 options_.name, last_tp_.topic, last_tp_.partition,
                 slot.skipped_again);
    slot.skipped_again = 0;
  }
  const absl::Time event_time =
      slot.pipeline->Process(record, now, slot.watermark);
  // A watermark record of the repartition topic is no work: counted as
  // work, it made an idle re-keyed engine commit at min_commit_interval
  // forever, each commit's watermark records read as work by the next one
  // (audit: 6.6 transactions a second, idle). It is committed with the
  // next commit all the same.
  if (!slot.pipeline->processed_watermarks()) ++processed_since_commit_;
  if (event_time != absl::InfinitePast()) {
    watermark_.Observe(slot.watermark_id, event_time, now);
  }
  last_progress_ = now;
}

void StreamThread::UpdateBacklogs(absl::Time now) {
  // Called at every poll: the vectors are members, reused (with 256
  // partitions a thread, building them anew was 1.5 % of the samples).
  // Elements are overwritten in place, so their topic strings keep their
  // buffers.
  Offsets& positions = backlog_positions_;
  std::vector<int32_t>& ids = backlog_ids_;
  ids.clear();
  size_t n = 0;
  std::vector<TopicPartition> quiet;
  for (auto& [tp, slot] : slots_) {
    if (!slot.restored) continue;
    if (n == positions.size()) positions.emplace_back();
    positions[n].first = tp;
    positions[n].second = slot.position();
    ++n;
    ids.push_back(slot.watermark_id);
    if (watermark_.Quiet(slot.watermark_id, now) &&
        !watermark_.Idle(slot.watermark_id, now) &&
        now - slot.end_checked_at >= kEndCheckInterval) {
      quiet.push_back(tp);
    }
  }
  // One offset of "lag" after the last record can be a transaction's
  // commit marker (transactional producers upstream), never delivered.
  // An unknown backlog (its end not seen yet) counts as one.
  positions.resize(n);
  input_->Lag(positions, &backlog_lags_);
  input_lag_ = 0;
  const bool unchecked_gaps = std::exchange(unchecked_gaps_, false);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t lag = i < backlog_lags_.size() ? backlog_lags_[i] : -1;
    if (unchecked_gaps) {
      Slot& slot = slots_.at(positions[i].first);
      if (!slot.unchecked_gaps.empty()) {
        CheckUncheckedGaps(slot, positions[i].first);
        unchecked_gaps_ |= !slot.unchecked_gaps.empty();
      }
    }
    if (lag == 0) {
      // Read to its end: records between the position and that end which
      // were deleted before they were read get no record after them to
      // tell (an idle partition).
      const TopicPartition& tp = positions[i].first;
      const int64_t end = input_->ReachedEnd(tp);
      if (end > positions[i].second) {
        Slot& slot = slots_.at(tp);
        if (slot.deleted_checked_end != end && !slot.pipeline->replaying()) {
          slot.deleted_checked_end = end;
          CheckDeletedUnread(slot, tp, end);
        }
      }
    }
    watermark_.SetBacklog(ids[i], lag < 0 || lag > 1);
    if (lag > 0 && positions[i].first.topic != repartition_topic_) {
      input_lag_ += lag;
    }
  }
  if (quiet.empty()) return;
  // A quiet partition is idle only once its end, as the brokers say now,
  // shows nothing left to read: the consumer's cached view can be stale.
  auto ends = input_->EndOffsets(quiet, kEndCheckTimeout);
  for (const TopicPartition& tp : quiet) slots_.at(tp).end_checked_at = now;
  if (!ends.ok()) return;  // not confirmed: not idle
  for (const auto& [tp, end] : *ends) {
    auto it = slots_.find(tp);
    if (it == slots_.end()) continue;
    const int64_t position = it->second.position();
    if (position >= 0 && end - position <= 1) {
      watermark_.CaughtUp(it->second.watermark_id, now);
    } else {
      watermark_.SetBacklog(it->second.watermark_id, true);
    }
  }
}

void StreamThread::OnAssigned(const std::vector<TopicPartition>& partitions) {
  if (destroying_) return;
  const absl::Time now = clock_->Now();
  joined_ = true;
  lost_ = false;
  // The realtime visitors of partitions dropped before (DropSlots): kept
  // for those given back, forgotten for the others.
  for (const TopicPartition& tp : partitions) {
    const uint32_t owner = active_.OwnerOf(tp.topic, tp.partition);
    set_aside_owners_.erase(
        std::remove(set_aside_owners_.begin(), set_aside_owners_.end(), owner),
        set_aside_owners_.end());
  }
  active_.Forget(std::exchange(set_aside_owners_, {}));
  for (const TopicPartition& tp : partitions) {
    if (!readers_.count(tp.topic)) continue;
    if (slots_.count(tp)) continue;
    Slot slot = NewSlot(tp);
    if (!slot.pipeline->timeless()) {
      watermark_.Assign(slot.watermark_id, now, absl::InfinitePast(),
                        absl::InfinitePast(), slot.pipeline->repartition());
    }
    slots_.emplace(tp, std::move(slot));
    last_slot_ = nullptr;
    KPI_LOG_INFO("%s: assigned %s[%d]", options_.name, tp.topic, tp.partition);
  }
}

void StreamThread::OnRevoked(const std::vector<TopicPartition>& partitions) {
  if (destroying_) return;
  bool ours = false;
  for (const TopicPartition& tp : partitions) ours |= slots_.count(tp) > 0;
  // Hand the state over: commit it (and everything else pending) first.
  // (Not when the thread closes its input: it has just made its final
  // commit; another would only wait again on an output that timed out.)
  if (ours && !closing_) {
    revoked_ = &partitions;
    CommitCycle(clock_->Now(), /*revoking=*/true);
    revoked_ = nullptr;
  }
  DropSlots(partitions, /*log=*/true);
}

void StreamThread::DropSlots(const std::vector<TopicPartition>& partitions,
                             bool log) {
  // Their realtime visitors go with them: the new owner counts them from
  // their next event (kept, web_active_visitors summed over threads and
  // instances counted them twice for up to 30 minutes). Set aside until
  // the next assignment, which forgets them unless it gives the partition
  // back (an audit: partitions lost in a broker's stall and assigned to
  // the same instance again read 0 active visitors for 30 minutes).
  for (const TopicPartition& tp : partitions) {
    if (slots_.count(tp)) {
      set_aside_owners_.push_back(active_.OwnerOf(tp.topic, tp.partition));
    }
  }
  for (const TopicPartition& tp : partitions) {
    auto it = slots_.find(tp);
    if (it == slots_.end()) continue;
    watermark_.Revoke(it->second.watermark_id);
    slots_.erase(it);
    rolled_back_.erase(tp);  // its next owner reads it
    last_slot_ = nullptr;
    if (log) {
      KPI_LOG_INFO("%s: revoked %s[%d]", options_.name, tp.topic, tp.partition);
    }
  }
}

void StreamThread::OnLost(const std::vector<TopicPartition>& partitions) {
  if (destroying_) return;
  if (partitions.empty()) {
    // The group moved on while this thread owned nothing (an audit: "0
    // partition(s) lost" was a warning of nothing).
    KPI_LOG_DEBUG("%s: the group moved on; this thread owned no partition",
                  options_.name);
  } else {
    KPI_LOG_WARN(
        "%s: %d partition(s) lost without a commit (the group moved on): "
        "their uncommitted work is dropped, the rest restored",
        options_.name, static_cast<int>(partitions.size()));
  }
  if (absl::Status s = output_->Abort(); !s.ok()) Fail(s);
  DropSlots(partitions, /*log=*/false);
  ResetAll();
  lost_ = true;
}

void StreamThread::ResetAll() {
  // Before the pipelines are made afresh: how far each had read.
  for (const auto& [tp, slot] : slots_) {
    if (!slot.restored || slot.position() <= slot.committed_position) {
      continue;
    }
    int64_t& reached = rolled_back_[tp];
    reached = std::max(reached, slot.position());
  }
  counters_.Rollback();
  KPI_LOG_DEBUG(
      "%s: %d processed record(s) rolled back; every partition "
      "restores",
      options_.name, static_cast<int64_t>(processed_since_commit_));
  processed_since_commit_ = 0;
  produced_since_commit_ = 0;
  closed_since_commit_ = false;
  // The watermarks go back to the last commit too (RestorePending assigns
  // each partition its checkpointed clock): records read again must meet
  // the watermark they met the first time, not the one their own first
  // reading moved on, or an event that started a session would now be late.
  watermark_ = WatermarkTracker(config_.processing.max_out_of_orderness,
                                config_.processing.idle_partition_timeout);
  const absl::Time now = clock_->Now();
  for (auto& [tp, slot] : slots_) {
    slot.pipeline = std::make_unique<PartitionPipeline>(
        tp, &readers_.at(tp.topic), &context_,
        static_cast<PipelineOutput*>(this));
    slot.restored = false;
    slot.watermark = absl::InfinitePast();
    if (slot.pipeline->timeless()) continue;
    watermark_.Assign(slot.watermark_id, now, absl::InfinitePast(),
                      absl::InfinitePast(), slot.pipeline->repartition());
  }
}

absl::Status StreamThread::RebaseRecreatedLogs(
    const std::vector<Slot*>& pending, const std::vector<TopicPartition>& tps,
    Offsets* start) {
  std::vector<TopicPartition> positioned;
  for (size_t i = 0; i < pending.size(); ++i) {
    if (pending[i]->pipeline->next_offset() > 0) positioned.push_back(tps[i]);
  }
  if (positioned.empty()) return absl::OkStatus();
  auto ends = input_->EndOffsets(positioned, kStartOffsetsTimeout);
  if (!ends.ok()) return ends.status();
  const std::map<TopicPartition, int64_t> end_of(ends->begin(), ends->end());
  std::vector<size_t> shorter;
  std::vector<TopicPartition> shorter_tps;
  for (size_t i = 0; i < pending.size(); ++i) {
    auto it = end_of.find(tps[i]);
    if (it == end_of.end() || it->second < 0 ||
        it->second >= pending[i]->pipeline->next_offset()) {
      continue;
    }
    shorter.push_back(i);
    shorter_tps.push_back(tps[i]);
  }
  if (shorter.empty()) return absl::OkStatus();
  auto first = input_->StartOffsets(shorter_tps, kStartOffsetsTimeout);
  if (!first.ok()) return first.status();
  const std::map<TopicPartition, int64_t> first_of(first->begin(),
                                                   first->end());
  for (size_t i : shorter) {
    const TopicPartition& tp = tps[i];
    auto it = first_of.find(tp);
    const int64_t from =
        it == first_of.end() ? 0 : std::max<int64_t>(it->second, 0);
    KPI_LOG_WARN(
        "%s: %s[%d] ends at offset %d, before the checkpoint's position %d: "
        "it is not the log the state was read from (the topic was deleted "
        "and created again, or cut short by an unclean leader election); "
        "its records are read from its start (offset %d), and the "
        "checkpoint's %d buffered event(s) are lost",
        options_.name, tp.topic, tp.partition, end_of.at(tp),
        pending[i]->pipeline->next_offset(), from,
        static_cast<int64_t>(pending[i]->pipeline->state().pending_replays()));
    (*start)[i].second = pending[i]->pipeline->Rebase(from);
  }
  return absl::OkStatus();
}

absl::Status StreamThread::SkipDeletedRecords(
    const std::vector<Slot*>& pending, const std::vector<TopicPartition>& tps,
    Offsets* start, std::vector<UnreadDeleted>* unread) {
  // Every partition resuming from a checkpoint: its records from there on
  // may be deleted already (retention, while the engine was down); left to
  // librdkafka, the reset said so in a log line of its own only (an audit),
  // and with auto.offset.reset=latest skipped the retained ones too.
  std::vector<TopicPartition> resuming, rereading;
  for (size_t i = 0; i < pending.size(); ++i) {
    if ((*start)[i].second < 0) continue;
    resuming.push_back(tps[i]);
    if (pending[i]->pipeline->replaying()) rereading.push_back(tps[i]);
  }
  if (resuming.empty()) return absl::OkStatus();
  auto first = input_->StartOffsets(resuming, kStartOffsetsTimeout);
  if (!first.ok()) {
    // The check is worth no failed restore (a leader that just died): only
    // the partitions with buffered events to read again need the answer.
    KPI_LOG_WARN(
        "%s: cannot tell whether records of the %d resuming partition(s) "
        "were deleted before they were read (%s); %s",
        options_.name, static_cast<int64_t>(resuming.size()),
        first.status().message(),
        rereading.empty() ? "reading on" : "asking for those to read again");
    if (rereading.empty()) return absl::OkStatus();
    first = input_->StartOffsets(rereading, kStartOffsetsTimeout);
    if (!first.ok()) return first.status();
  }
  const std::map<TopicPartition, int64_t> first_of(first->begin(),
                                                   first->end());
  std::string unchecked;  // left out of the answer (their leader's error)
  for (size_t i = 0; i < pending.size(); ++i) {
    if ((*start)[i].second < 0) continue;
    auto it = first_of.find(tps[i]);
    if (it == first_of.end()) {
      if (!pending[i]->pipeline->replaying()) {
        absl::StrAppend(&unchecked, unchecked.empty() ? "" : ", ", tps[i].topic,
                        "[", tps[i].partition, "]");
        continue;
      }
      return absl::UnavailableError(
          absl::StrCat("cannot find the first retained record of ",
                       tps[i].topic, "[", tps[i].partition,
                       "] (to read buffered events again): its leader "
                       "did not answer"));
    }
    if (pending[i]->pipeline->replaying()) {
      (*start)[i].second = pending[i]->pipeline->SkipDeleted(it->second);
    }
    if (it->second > (*start)[i].second) {
      unread->push_back({i, (*start)[i].second, it->second});
      (*start)[i].second = it->second;
    }
  }
  if (!unchecked.empty()) {
    KPI_LOG_WARN(
        "%s: cannot tell whether records of %s were deleted before they "
        "were read (their leader did not answer); reading on",
        options_.name, unchecked);
  }
  return absl::OkStatus();
}

void StreamThread::SayDeletedUnread(const TopicPartition& tp, int64_t from,
                                    int64_t first, int64_t resumes_at) {
  KPI_LOG_ERROR(
      "%s: %s[%d]: offsets %d to %d were deleted from the topic "
      "(retention) before they were read: %d input record(s) lost "
      "(transaction markers among them count too; "
      "kpistream_input_records_deleted_total); reading on at %d",
      options_.name, tp.topic, tp.partition, from, first - 1, first - from,
      resumes_at);
  counters_.CountDeletedUnread(tp.topic, static_cast<uint64_t>(first - from));
}

bool StreamThread::CheckDeletedUnread(Slot& slot, const TopicPartition& tp,
                                      int64_t reached) {
  const int64_t next = slot.pipeline->next_offset();
  if (next < 0 || reached <= next) return false;
  // Offsets skipped are not always deleted records: transaction markers,
  // and aborted records under read_committed, are never handed out. Only
  // those before where the partition starts, as the consumer heard with
  // (or after) the fetch that brought `reached`, are gone.
  const int64_t first = input_->FirstRetained(tp);
  if (first < 0) {
    // Not known (an error answer to a later fetch said nothing of it):
    // asked again at the next polls (CheckUncheckedGaps). The earliest
    // few are kept (a reset's gap comes before the markers after it).
    if (slot.unchecked_gaps.size() < kUncheckedGapsKept) {
      slot.unchecked_gaps.push_back({next, reached});
    }
    unchecked_gaps_ = true;
    return false;
  }
  if (first <= next) return false;
  if (first > reached) {
    // The consumer's view is newer than the fetch that brought `reached`:
    // the records handed out were deleted since they were fetched, and
    // the offsets skipped can be markers or aborted records, fetched while
    // retained (review: counted as lost), or a reset's gap, when its first
    // record waited in the consumer's queue while retention ran on. Which
    // cannot be told: said, not counted.
    if (reached - next > 1 &&
        clock_->Now() - slot.ambiguous_gap_said_at >= kAmbiguousGapRelog) {
      slot.ambiguous_gap_said_at = clock_->Now();
      KPI_LOG_WARN(
          "%s: %s[%d]: offsets %d to %d were not read, and the consumer "
          "says the partition now starts at %d, past them: the engine reads "
          "records deleted since they were fetched (it is behind "
          "retention); whether those offsets were records lost to "
          "retention or transaction markers cannot be told, and they are "
          "not counted (said at most every %s per partition)",
          options_.name, tp.topic, tp.partition, next, reached - 1, first,
          absl::FormatDuration(kAmbiguousGapRelog));
    }
    return false;
  }
  slot.pipeline->SkipUnread(first);
  SayDeletedUnread(tp, next, first, reached);
  // The moved position is work to commit: else the next restore, from the
  // checkpoint before it, finds them and counts them again.
  ++processed_since_commit_;
  return true;
}

void StreamThread::CheckUncheckedGaps(Slot& slot, const TopicPartition& tp) {
  const int64_t first = input_->FirstRetained(tp);
  if (first < 0) return;  // not yet
  for (const auto& [from, reached] : slot.unchecked_gaps) {
    if (first <= from || first > reached) continue;
    // After a record, the position is past them already (in the work of
    // this commit or a later one); at the partition's end it is not, and
    // moves past them as CheckDeletedUnread moves it (else the next record,
    // or the next restore, found them and counted them again: review).
    if (slot.pipeline->next_offset() < first) {
      slot.pipeline->SkipUnread(first);
      ++processed_since_commit_;
    }
    SayDeletedUnread(tp, from, first, slot.position());
  }
  slot.unchecked_gaps.clear();
}

absl::Status StreamThread::LostStateError(
    const std::vector<TopicPartition>& tps,
    const std::vector<bool>& no_checkpoint) const {
  // The engine commits a partition's offset only with (exactly-once) or
  // after (at-least-once) its checkpoint in the changelog: an offset it
  // committed and no checkpoint means the changelog lost the state (the
  // topic deleted and created again, or its records expired). Going on from
  // nothing lost the open sessions and buffered events and counted
  // returning visitors as new, without a word (an audit).
  std::vector<size_t> lost;
  for (size_t i = 0; i < tps.size() && i < no_checkpoint.size(); ++i) {
    if (no_checkpoint[i] && input_->GroupOffsetHasState(tps[i])) {
      lost.push_back(i);
    }
  }
  if (lost.empty()) return absl::OkStatus();
  for (size_t i : lost) {
    auto before = changelog_partition_before_.find(tps[i]);
    if (before == changelog_partition_before_.end()) continue;
    // Not lost: written where the partition count of then put it (an
    // audit: after partitions were added to the changelog, this error said
    // to reset the offsets, which would have thrown that state away).
    return absl::FailedPreconditionError(absl::StrCat(
        tps[i].topic, "[", tps[i].partition, "]: its state is in partition ",
        before->second, " of the changelog \"", config_.changelog_output.topic,
        "\" (its local state says so), which the engine no longer reads for "
        "it: partitions were added to the topic (it has ",
        changelog_->partitions(),
        " now; input partition p's state is in changelog partition p mod "
        "their count), and nothing is counted from this partition. Do not "
        "reset the group's offsets (that state would be thrown away): Kafka "
        "cannot remove partitions, so copy the changelog's records, partition "
        "by partition, to a new compacted topic with the partition count of "
        "before, and set outputs.changelog.topic to it"));
  }
  const TopicPartition& first = tps[lost.front()];
  std::string more;
  for (size_t j = 1; j < lost.size(); ++j) {
    absl::StrAppend(&more, j == 1 ? " (so did " : ", ", tps[lost[j]].topic, "[",
                    tps[lost[j]].partition, "]",
                    j + 1 == lost.size() ? ")" : "");
  }
  return absl::FailedPreconditionError(absl::StrCat(
      first.topic, "[", first.partition, "]: the changelog \"",
      config_.changelog_output.topic, "\" holds no state of it, but group \"",
      config_.kafka.group_id, "\" committed offset ",
      input_->GroupOffset(first), " for it with its state", more,
      ": that state is lost (the changelog topic was deleted, or its records "
      "expired: it must be compacted), and nothing is counted from these "
      "partitions. To go on without it, reset the group's offsets of the "
      "partitions (kafka-consumer-groups --reset-offsets: an offset set by "
      "hand carries no state), or start under a new kafka.group_id",
      RenamedChangelogHint(tps, lost)));
}

std::string StreamThread::RenamedChangelogHint(
    const std::vector<TopicPartition>& tps,
    const std::vector<size_t>& lost) const {
  for (size_t i : lost) {
    auto before = changelog_before_.find(tps[i]);
    if (before == changelog_before_.end()) continue;
    return absl::StrCat(
        ". The local state of ", tps[i].topic, "[", tps[i].partition,
        "] was of changelog \"", before->second, "\" (rebuilt from \"",
        config_.changelog_output.topic,
        "\" since): if outputs.changelog.topic was changed, set it back to \"",
        before->second, "\", which holds that state");
  }
  return "";
}

void StreamThread::RestorePending(absl::Time now) {
  absl::Time& next_attempt = next_restore_attempt_;
  std::vector<Slot*> pending;
  std::vector<TopicPartition> tps;
  auto gather = [&] {
    pending.clear();
    tps.clear();
    for (auto& [tp, slot] : slots_) {
      if (slot.restored || now < slot.restore_after) continue;
      pending.push_back(&slot);
      tps.push_back(tp);
    }
  };
  gather();
  if (pending.empty() || now < next_attempt) return;
  // Exactly-once, partitions assigned while the thread holds work: that
  // work is committed first. A restore can outlast
  // processing.transaction_timeout (a lost local store rebuilt from the
  // changelog), and the broker would abort a transaction holding records
  // produced before it: the work read again, and every partition restored
  // again, the rebuilt one from the start (its local store is said to be
  // whole only at a commit).
  absl::Time begun = now;
  if (output_->transactional() &&
      (processed_since_commit_ > 0 || produced_since_commit_ > 0)) {
    CommitCycle(now, /*revoking=*/false);
    if (!fatal_.ok()) return;
    gather();  // an aborted commit restores every partition (or later)
    if (pending.empty()) return;
    begun = clock_->Now();
  }
  restore_ = RestoreUnderWay{};
  restore_.started = restore_.heartbeat = restore_.logged = begun;
  restore_.what = absl::StrCat("restoring the state of ", pending.size(),
                               " partition(s) from the changelog");
  // After an abort that made the thread not ready, its cause stays said.
  restore_.after = aborts_in_a_row_ >= kAbortsBeforeNotReady
                       ? absl::StrCat(", after ", AbortsReason())
                       : "";
  Beat(begun, absl::StrCat(restore_.what, restore_.after));
  const absl::Time started = absl::Now();
  CheckpointReader reader;
  RestoreCounts counts;
  absl::Status status = ReadState(pending, tps, &reader, &counts);
  Offsets start;
  std::string resumes;
  size_t sessions = 0, buffered = 0, dropped = 0;
  std::set<std::string> dropped_names;
  // The partition whose restore failed (none: another step's failure).
  std::optional<TopicPartition> failed;
  for (size_t i = 0; status.ok() && i < pending.size(); ++i) {
    auto offset = pending[i]->pipeline->Restore(reader);
    if (!offset.ok()) {
      status = offset.status();
      failed = tps[i];
      break;
    }
    start.push_back({tps[i], *offset});
    status = MirrorRestored(*pending[i], tps[i], reader,
                            counts.changed.count(tps[i]) > 0);
    reader.Release(tps[i]);
    if (!status.ok()) break;
    sessions += pending[i]->pipeline->state().open_sessions();
    buffered += pending[i]->pipeline->state().buffered_events();
    dropped += pending[i]->pipeline->state().dropped_target_buckets();
    for (const std::string& name :
         pending[i]->pipeline->state().dropped_target_names()) {
      if (dropped_names.size() < PartitionState::kMaxDroppedNames) {
        dropped_names.insert(name);
      }
    }
    ++restore_.restored;
    RestoreProgress();
  }
  RestoreProgress();
  if (status.ok()) status = RebaseRecreatedLogs(pending, tps, &start);
  std::vector<UnreadDeleted> unread;
  if (status.ok()) status = SkipDeletedRecords(pending, tps, &start, &unread);
  RestoreProgress();
  // Which partitions the changelog holds no checkpoint of (they resume at
  // the group's committed offset, or by the reset policy).
  std::vector<bool> no_checkpoint;
  for (const auto& [tp, offset] : start) no_checkpoint.push_back(offset < 0);
  Offsets sought;
  if (status.ok()) {
    auto resolved = input_->Seek(start);
    if (resolved.ok()) {
      sought = *std::move(resolved);
    } else {
      status = resolved.status();
    }
  }
  if (status.ok()) status = LostStateError(tps, no_checkpoint);
  if (!status.ok() && !sought.empty()) {
    // Read nothing until the next attempt seeks them again (what was
    // fetched meanwhile was dropped and fetched again at each attempt).
    input_->Pause(tps);
  }
  if (!status.ok()) {
    next_attempt = now + kRestoreRetry;
    const bool stopping =
        absl::IsCancelled(status) && options_.stop_requested();
    // Records missing with the local store's part of the state: that part
    // may be of another changelog (the topic deleted and created again,
    // and longer by now than the local store's position, which went
    // unnoticed), which retrying would read every 5 s forever. Dropped,
    // and the state rebuilt from the changelog alone at once; a changelog
    // that lost records fails that way too, and is retried as before. Only
    // when the partition that failed read a part from the store: partitions
    // restored before it are mirrored by now, and their parts read at the
    // next attempt dropped every state again, every 5 s (a review).
    const bool failed_with_local_part = failed.has_value()
                                            ? counts.local.count(*failed) > 0
                                            : counts.local_records > 0;
    if (absl::IsDataLoss(status) && failed_with_local_part &&
        options_.local_store != nullptr) {
      absl::Status wiped;
      for (const TopicPartition& tp : tps) {
        if (wiped.ok()) wiped = options_.local_store->Wipe(tp);
      }
      if (wiped.ok()) {
        KPI_LOG_WARN(
            "%s: restoring the state from the local store in \"%s\" and the "
            "changelog failed (%s): the local state of %d partition(s) is "
            "dropped and rebuilt from the changelog alone (was the changelog "
            "topic created again?)",
            options_.name, options_.local_store->dir(), status.message(),
            static_cast<int>(tps.size()));
        next_attempt = now;
      }
    }
    if (stopping) {
      // Stopping: no failure (no kpistream_restore_failures_total, no
      // "failed" reason on the final scrape).
      KPI_LOG_INFO("%s: restoring the state stopped: %s", options_.name,
                   status.message());
    } else {
      ++restore_failures_;
      // The same failure again (one an operator must act on, as a lost
      // state, fails every 5 s until then): said once a minute, with how
      // many attempts failed so, not every attempt.
      const bool again = restore_error_ == status.message();
      restore_error_ = std::string(status.message());
      if (!again) {
        restore_error_repeats_ = 0;
        restore_error_logged_ = absl::InfinitePast();
      }
      ++restore_error_repeats_;
      if (now - restore_error_logged_ >= kRestoreErrorRelog) {
        KPI_LOG_ERROR(
            "%s: restoring the state failed%s (retrying %s): %s", options_.name,
            restore_error_repeats_ > 1
                ? absl::StrCat(" again, ", restore_error_repeats_,
                               " attempts in a row")
                : std::string(),
            next_attempt <= now
                ? std::string("at once")
                : absl::StrCat("every ",
                               absl::ToInt64Seconds(next_attempt - now),
                               " s; said again each minute while it fails "
                               "alike"),
            status.message());
        restore_error_logged_ = now;
      }
    }
    for (size_t i = 0; i < pending.size(); ++i) {
      pending[i]->pipeline = std::make_unique<PartitionPipeline>(
          tps[i], &readers_.at(tps[i].topic), &context_,
          static_cast<PipelineOutput*>(this));
    }
    if (stopping) return;
    std::lock_guard<std::mutex> lock(mu_);
    health_.reason =
        absl::StrCat("restoring the state failed: ", status.message());
    return;
  }
  // Seek answers in the order asked.
  const absl::Time restored_at = clock_->Now();
  std::string moved;  // group offsets the checkpoints overrule
  for (size_t i = 0; i < pending.size(); ++i) {
    // Equal under exactly-once (one transaction commits both): an operator
    // reset the group's offsets (kafka-consumer-groups --reset-offsets), or
    // at-least-once stopped between a checkpoint and its offsets' commit.
    const int64_t group = input_->GroupOffset(tps[i]);
    const int64_t position = pending[i]->pipeline->next_offset();
    if (!pending[i]->restored_once && start[i].second >= 0 && group >= 0 &&
        position >= 0 && group != position) {
      absl::StrAppend(&moved, moved.empty() ? "" : ", ", tps[i].topic, "[",
                      tps[i].partition, "] ", group, " (checkpoint ", position,
                      ")");
    }
    pending[i]->restored_once = true;
    pending[i]->restored = true;
    changelog_before_.erase(tps[i]);
    changelog_partition_before_.erase(tps[i]);
    pending[i]->start_offset = sought.at(i).second;
    pending[i]->committed_position = pending[i]->start_offset;
    pending[i]->deleted_checked_end = -1;
    pending[i]->unchecked_gaps.clear();
    // A repartition partition's watermark is its sources' (restored with
    // its state), never its own events' minus the bound: a fast source's
    // events would make a slow one's late.
    if (!pending[i]->pipeline->timeless()) {
      watermark_.Assign(pending[i]->watermark_id, restored_at,
                        pending[i]->pipeline->max_event_time(),
                        pending[i]->pipeline->state().frontier(),
                        pending[i]->pipeline->repartition(),
                        pending[i]->pipeline->restored_last_event_at());
    }
    absl::StrAppend(
        &resumes, resumes.empty() ? "" : ", ", tps[i].topic, "[",
        tps[i].partition, "]@", sought.at(i).second, " (",
        start[i].second < 0 ? "the group's committed offset" : "checkpoint",
        ", ", pending[i]->pipeline->checkpoints_restored(),
        " changelog record(s)",
        pending[i]->pipeline->state().pending_replays() > 0
            ? absl::StrCat(", ",
                           pending[i]->pipeline->state().pending_replays(),
                           " buffered event(s) to read again before ",
                           pending[i]->pipeline->next_offset())
            : std::string(),
        ")");
  }
  // Said and counted once the restore stands (a failed attempt is retried
  // and would say it again), and the position moved past them, so that the
  // next checkpoint holds it (an idle partition's stayed before them, and
  // every restore counted them again: review).
  for (const UnreadDeleted& u : unread) {
    pending[u.slot]->pipeline->SkipUnread(u.first);
    SayDeletedUnread(tps[u.slot], u.from, u.first, u.first);
  }
  restore_error_.clear();
  last_restore_seconds_ = absl::ToDoubleSeconds(absl::Now() - started);
  last_restore_records_ = static_cast<double>(counts.changelog_records);
  last_restore_bytes_ = static_cast<double>(counts.changelog_bytes);
  KPI_LOG_INFO(
      "%s: restored %d partition(s) from changelog \"%s\"%s in %.3f s: %d "
      "record(s), %d bytes from the changelog%s; %d open session(s), %d "
      "buffered event(s); %d bucket(s) of removed or redefined targets "
      "dropped%s; resuming at %s",
      options_.name, static_cast<int>(pending.size()),
      config_.changelog_output.topic,
      options_.local_store == nullptr ? "" : " and the local store",
      last_restore_seconds_, static_cast<int64_t>(counts.changelog_records),
      static_cast<int64_t>(counts.changelog_bytes),
      options_.local_store == nullptr
          ? std::string()
          : absl::StrCat(
                ", ", counts.local_records, " record(s), ", counts.local_bytes,
                " bytes from the local store",
                counts.wiped > 0
                    ? absl::StrCat(" (", counts.wiped, " partition(s) rebuilt)")
                    : std::string()),
      static_cast<int64_t>(sessions), static_cast<int64_t>(buffered),
      static_cast<int64_t>(dropped),
      dropped_names.empty()
          ? std::string()
          : absl::StrCat(" (", absl::StrJoin(dropped_names, ", "),
                         ": a renamed or redefined target's sums start again "
                         "here)"),
      resumes);
  if (!moved.empty()) {
    KPI_LOG_INFO(
        "%s: the group's committed offsets differ from the checkpoints' "
        "positions: %s; reading resumes at the checkpoints', which the state "
        "is of (offsets reset with kafka-consumer-groups move nothing: to "
        "read the input again, start under a new kafka.group_id)",
        options_.name, moved);
  }
}

absl::Status StreamThread::ReadState(const std::vector<Slot*>& slots,
                                     const std::vector<TopicPartition>& tps,
                                     CheckpointReader* reader,
                                     RestoreCounts* counts) {
  LocalStore* store = options_.local_store;
  const int n = changelog_->partitions();
  std::map<int32_t, int64_t> from;  // changelog partition -> first offset
  // Per partition: its records before this offset are in the local store.
  std::map<TopicPartition, int64_t> known;
  // Per partition: the lineage of the local store's checkpoints (0: none
  // known), and whether the changelog's after them are of another.
  std::map<TopicPartition, uint64_t> local_lineage;
  std::map<TopicPartition, uint64_t> foreign;
  for (const TopicPartition& tp : tps) from[tp.partition % n] = 0;
  if (store != nullptr) {
    std::vector<int32_t> partitions;
    for (const auto& [c, offset] : from) partitions.push_back(c);
    auto ends = changelog_->Ends(partitions);
    if (!ends.ok()) return ends.status();
    for (auto& [c, offset] : from) offset = INT64_MAX;
    for (size_t i = 0; i < tps.size(); ++i) {
      const TopicPartition& tp = tps[i];
      const int32_t c = tp.partition % n;
      const int64_t end = ends->ends[c];
      auto stored = store->Meta(tp);
      std::optional<v1::LocalPartitionMeta> meta;
      std::string distrust;
      if (!stored.ok()) {
        // Rebuilt, as one that does not match: the changelog holds it all.
        distrust = absl::StrCat("unreadable (", stored.status().message(), ")");
      } else if (stored->has_value()) {
        meta = **stored;
        if (meta->cluster_id() != ends->cluster_id) {
          distrust = absl::StrCat("of Kafka cluster \"", meta->cluster_id(),
                                  "\", the changelog is in \"",
                                  ends->cluster_id, "\"");
        } else if (meta->changelog_topic() != changelog_->topic() ||
                   meta->changelog_partition() != c) {
          distrust = absl::StrCat("of changelog \"", meta->changelog_topic(),
                                  "\" partition ", meta->changelog_partition());
          if (meta->changelog_topic() != changelog_->topic()) {
            changelog_before_[tp] = meta->changelog_topic();
          } else {
            changelog_partition_before_[tp] = meta->changelog_partition();
          }
        } else if (meta->next_offset() > end) {
          distrust = absl::StrCat("ahead of the changelog (at offset ",
                                  meta->next_offset(), ", its end is ", end,
                                  "; was the topic recreated?)");
        }
      }
      if (!meta.has_value() || !distrust.empty()) {
        if (!distrust.empty()) {
          KPI_LOG_WARN(
              "%s: the local state of %s[%d] in \"%s\" is %s: "
              "rebuilding it from the changelog",
              options_.name, tp.topic, tp.partition, store->dir(), distrust);
          ++counts->wiped;
        }
        if (absl::Status s = store->Wipe(tp); !s.ok()) return s;
        known[tp] = 0;
      } else {
        known[tp] = meta->next_offset();
        uint64_t& lineage = local_lineage[tp];
        absl::Status s = store->ForEachMirrored(
            tp, [&](absl::string_view key, absl::string_view value) {
              if (lineage == 0) lineage = CheckpointLineage(value);
              reader->Add(key, value, /*tombstone=*/false);
              ++counts->local_records;
              counts->local.insert(tp);
              counts->local_bytes += key.size() + value.size();
              ++restore_.records;
              restore_.bytes += key.size() + value.size();
              RestoreProgress();
            });
        if (!s.ok()) return s;
      }
      from[c] = std::min(from[c], known[tp]);
      v1::LocalPartitionMeta& local = slots[i]->local;
      local.set_changelog_topic(changelog_->topic());
      local.set_changelog_partition(c);
      local.set_next_offset(end);
      local.set_cluster_id(ends->cluster_id);
    }
  }
  // Day records go straight into the store.
  std::optional<DayRecordWriter> days;
  if (store != nullptr) days.emplace(store);
  absl::Status bad;
  absl::Status status = changelog_->Read(from, [&](const ChangelogEntry& e) {
    KPI_LOG_DEBUG("%s: changelog read %s (%s)", options_.name, e.key,
                  e.tombstone ? std::string("tombstone")
                              : absl::StrCat(e.value.size(), " bytes"));
    ++restore_.records;
    restore_.bytes += e.key.size() + e.value.size();
    RestoreProgress();
    if (store == nullptr) {
      reader->Add(e.key, e.value, e.tombstone);
      ++counts->changelog_records;
      counts->changelog_bytes += e.key.size() + e.value.size();
      return;
    }
    TopicPartition tp;
    uint64_t seq = 0, fingerprint = 0;
    uint32_t chunk = 0;
    char kind = 0;
    const bool checkpoint = ParseCheckpointKey(e.key, &tp, &seq, &chunk);
    if (!checkpoint && !ParseDayKey(e.key, &tp, &kind, &fingerprint)) return;
    auto k = known.find(tp);
    if (k == known.end() || e.offset < k->second) return;  // not needed
    ++counts->changelog_records;
    counts->changelog_bytes += e.key.size() + e.value.size();
    if (checkpoint) {
      counts->changed.insert(tp);
      if (!e.tombstone) {
        auto local = local_lineage.find(tp);
        const uint64_t lineage =
            local == local_lineage.end() || local->second == 0
                ? 0
                : CheckpointLineage(e.value);
        if (lineage != 0 && lineage != local->second) foreign[tp] = lineage;
      }
      reader->Add(e.key, e.value, e.tombstone);
      return;
    }
    int32_t day = 0;
    if (!e.tombstone && !ParseDayValue(e.value, &day)) {
      if (bad.ok()) {
        bad = absl::DataLossError(
            absl::StrCat("changelog \"", changelog_->topic(), "\" partition ",
                         e.partition, " offset ", e.offset, ": record ", e.key,
                         " holds no day in range"));
      }
      return;
    }
    days->Apply(tp, kind, fingerprint,
                e.tombstone ? std::nullopt : std::optional<int32_t>(day));
  });
  if (days.has_value()) {
    if (absl::Status s = days->Finish(); !s.ok() && bad.ok()) bad = s;
  }
  if (!status.ok()) return status;
  if (!foreign.empty()) {
    // The local store's checkpoints and the changelog's after them are of
    // two lineages: the store mirrors a changelog topic deleted since and
    // created again (longer by now than its position, so it looked
    // current). Not mixed: dropped, and rebuilt from the changelog alone
    // (RestorePending retries at once).
    std::string which;
    for (const auto& [tp, lineage] : foreign) {
      if (absl::Status s = store->Wipe(tp); !s.ok()) return s;
      absl::StrAppend(&which, which.empty() ? "" : ", ", tp.topic, "[",
                      tp.partition, "]");
    }
    return absl::DataLossError(absl::StrCat(
        "the local state of ", which, " is of another changelog \"",
        changelog_->topic(),
        "\" than the one in Kafka (its checkpoints "
        "and the changelog's after them are of different lineages)"));
  }
  return bad;
}

absl::Status StreamThread::MirrorRestored(const Slot& slot,
                                          const TopicPartition& tp,
                                          const CheckpointReader& reader,
                                          bool changed) {
  LocalStore* store = options_.local_store;
  if (store == nullptr) return absl::OkStatus();
  // One partition a batch (a batch is held whole until written: the whole
  // thread's state in one was a restore's peak, an audit).
  LocalStore::Batch batch;
  if (changed) {
    batch.ClearMirror(tp);
    reader.ForEachLive(tp,
                       [&](const std::string& key, const std::string& value) {
                         batch.Mirror(tp, key, value);
                       });
  }
  batch.SetMeta(tp, slot.local);
  return store->Write(&batch);
}

void StreamThread::SaveLocal() {
  LocalStore* store = options_.local_store;
  if (store == nullptr) return;
  const std::map<int32_t, int64_t> written = output_->TakeChangelogOffsets();
  LocalStore::Batch& batch = local_batch_;
  batch.Clear();
  for (auto& [tp, slot] : slots_) {
    if (!slot.restored) continue;
    slot.pipeline->Committed(&batch);
    // Every record of this partition before the commit's last one in its
    // changelog partition is in the store now.
    auto it = written.find(slot.local.changelog_partition());
    if (it != written.end() && it->second + 1 > slot.local.next_offset()) {
      slot.local.set_next_offset(it->second + 1);
      batch.SetMeta(tp, slot.local);
    }
  }
  const absl::Time started = absl::Now();
  if (absl::Status s = store->Write(&batch); !s.ok()) Fail(s);
  KPI_LOG_DEBUG("%s: local store written in %.1f ms", options_.name,
                absl::ToDoubleMilliseconds(absl::Now() - started));
}

void StreamThread::CommitCycle(absl::Time now, bool revoking,
                               bool deep_backlog) {
  if (!fatal_.ok()) return;
  absl::Cleanup scheduled = [&] {
    commit_schedule_.Committed(now, clock_->Now(), deep_backlog);
  };
  // Counted from a local store that could not be read (a returning visitor
  // as new): no checkpoint of it is written, nothing of it committed. The
  // thread stops; a restart restores the partitions and reads them again.
  for (auto& [tp, slot] : slots_) {
    if (!slot.restored) continue;
    if (absl::Status s = slot.pipeline->StoreError(); !s.ok()) {
      processed_since_commit_ = 0;
      Fail(s);
      return;
    }
  }
  // Records read, or outputs made of them (sessions closed as the
  // watermark moved, dead letters, records re-keyed), since the last commit:
  // not the commit's own (windows, watermarks, checkpoints).
  const bool carries_work =
      processed_since_commit_ > 0 || produced_since_commit_ > 0;
  const bool full = now - last_full_checkpoint_ >= kFullCheckpointInterval;
  if (full) last_full_checkpoint_ = now;
  SendUpstreamWatermarks(now);
  // Wall time of the cycle's parts, for the debug log (the clock_ may be a
  // test's manual clock).
  const absl::Time started = absl::Now();
  Offsets offsets;
  for (auto& [tp, slot] : slots_) {
    if (!slot.restored) continue;
    slot.pipeline->EmitWindows(slot.watermark -
                               config_.processing.allowed_lateness);
  }
  if (!output_->transactional()) {
    // At-least-once: the output records of what was processed are
    // acknowledged before the checkpoint that says it was is written. A
    // restore resumes at the checkpoint, so one acknowledged before an
    // output record that then failed (a crash mid-flush, a record given up)
    // would lose that record for good.
    absl::Status s = output_->Flush();
    if (absl::IsAborted(s)) {
      // A record given up (after message.timeout.ms) or refused: nothing
      // is committed, and what was read since the last checkpoint is read
      // again, its outputs made again.
      Aborted(s, revoking, now);
      return;
    }
    if (absl::IsDeadlineExceeded(s) && !revoking) {
      // A slow or unavailable output (SPEC §10): no checkpoint and no
      // offsets now; the records wait in the producer's queue, reading
      // pauses once it is full, and a later commit flushes them again.
      flush_timed_out_ = true;
      ++flush_timeouts_in_a_row_;
      last_flush_timeout_ = std::string(s.message());
      KPI_LOG_WARN(
          "%s: %s; nothing is committed until they are (the next commit "
          "waits again)",
          options_.name, s.message());
      return;
    }
    if (!s.ok()) {
      // Also a timeout while the partitions are handed over: the new owner
      // must not wait on this output (Fail() drops what is unsent).
      processed_since_commit_ = 0;
      Fail(s);
      return;
    }
    flush_timed_out_ = false;
    flush_timeouts_in_a_row_ = 0;
  }
  for (auto& [tp, slot] : slots_) {
    if (!slot.restored) continue;
    slot.pipeline->Checkpoint(full, watermark_.LastEventAt(slot.watermark_id));
    if (slot.pipeline->next_offset() >= 0) {
      offsets.push_back({tp, slot.pipeline->next_offset()});
    }
  }
  if (!fatal_.ok()) return;
  // Said before the commit too: a commit that hangs is seen as one, and a
  // test that kills the process between commits knows none is under way.
  KPI_LOG_DEBUG("%s: committing %d record(s) processed since the last%s",
                options_.name, static_cast<int64_t>(processed_since_commit_),
                revoking ? " (revoking)" : "");
  const absl::Time checkpointed = absl::Now();
  absl::Status status;
  if (output_->transactional()) {
    status = output_->Commit(offsets);
  } else {
    status = output_->Flush();  // the checkpoint
    // Not redone here: without a transaction, some partitions' checkpoints
    // (and day records) may be in the changelog already, and those
    // partitions would resume after work whose counts are rolled back. The
    // thread stops, as at a crash; a restart resumes at each partition's
    // last complete checkpoint.
    if (absl::IsAborted(status)) {
      status = absl::UnavailableError(absl::StrCat(
          status.message(), " (a checkpoint record: the thread stops)"));
    }
    if (status.ok()) {
      absl::Status commit = input_->CommitSync(offsets);
      // The changelog holds the positions too: a restore resumes there.
      if (!commit.ok()) KPI_LOG_WARN("%s: %s", options_.name, commit.message());
    }
  }
  if (LogEnabled(LogLevel::kDebug)) {
    std::string positions;
    for (const auto& [tp, offset] : offsets) {
      absl::StrAppend(&positions, positions.empty() ? "" : " ", tp.topic, "[",
                      tp.partition, "]@", offset);
    }
    const absl::Time committed = absl::Now();
    KPI_LOG_DEBUG(
        "%s: commit%s of %d record(s) processed since the last: "
        "%s; outputs and checkpoints %.1f ms, %s %.1f ms; "
        "positions %s",
        options_.name, revoking ? " (revoking)" : "",
        static_cast<int64_t>(processed_since_commit_), status.ToString(),
        absl::ToDoubleMilliseconds(checkpointed - started),
        output_->transactional() ? "transaction" : "flush and commit",
        absl::ToDoubleMilliseconds(committed - checkpointed),
        positions.empty() ? "-" : positions);
  }
  if (status.ok()) {
    // Only a commit that carries work says the failures are over: one
    // with nothing read since the last restore (its own records only, a
    // checkpoint or windows) may go through whatever refuses the work's
    // outputs. A thread left without partitions has nothing to fail.
    if (carries_work || slots_.empty()) aborts_in_a_row_ = 0;
    processed_since_commit_ = 0;
    produced_since_commit_ = 0;
    closed_since_commit_ = false;
    for (auto& [tp, slot] : slots_) {
      if (!slot.restored) continue;
      slot.committed_position = slot.position();
      auto it = rolled_back_.find(tp);
      if (it != rolled_back_.end() && slot.committed_position >= it->second) {
        rolled_back_.erase(it);
      }
    }
    counters_.Commit();
    SaveLocal();
    ++commits_;
    Publish(now);
    if (options_.committed) options_.committed();
    return;
  }
  sent_watermarks_.clear();  // perhaps never written: said again
  if (absl::IsAborted(status)) {
    Aborted(status, revoking, now);
    return;
  }
  processed_since_commit_ = 0;
  Fail(status);
}

void StreamThread::Aborted(const absl::Status& status, bool revoking,
                           absl::Time now) {
  sent_watermarks_.clear();  // the watermark records went with the rest
  ++aborts_;
  ++aborts_in_a_row_;
  last_abort_ = std::string(status.message());
  if (!output_->transactional()) {
    // What is queued is newer than the last checkpoint: made again.
    flush_timed_out_ = false;
    if (absl::Status s = output_->Restart(); !s.ok()) {
      processed_since_commit_ = 0;
      Fail(s);
      return;
    }
  }
  absl::Duration wait = absl::ZeroDuration();
  for (int i = 1; i < aborts_in_a_row_ && wait < kAbortBackoffMax; ++i) {
    wait = wait == absl::ZeroDuration() ? kAbortBackoff : 2 * wait;
  }
  wait = std::min(wait, kAbortBackoffMax);
  KPI_LOG_WARN(
      "%s: %s; %s%s", options_.name, status.message(),
      revoking ? "the revoked partitions' new owner re-reads them; "
                 "the others are restored and re-read here"
               : "every partition is restored and re-read",
      wait == absl::ZeroDuration()
          ? ""
          : absl::StrCat(" in ", absl::FormatDuration(wait), " (",
                         aborts_in_a_row_, " commits in a row failed)"));
  ResetAll();  // counts the records it rolls back, then forgets them
  // (Partitions assigned meanwhile are restored at once.)
  for (auto& [tp, slot] : slots_) slot.restore_after = now + wait;
}

void StreamThread::WaitingForOutput() {
  // The thread is alive, waiting on its output: /healthz must not have it
  // restarted (an output outage outlasts kHeartbeatTimeout, 60 s), and
  // after a while /readyz says why nothing moves.
  const absl::Time now = clock_->Now();
  if (output_waiting_since_ == absl::InfinitePast()) {
    output_waiting_since_ = now;
  }
  if (now - output_heartbeat_ < absl::Seconds(1)) return;
  output_heartbeat_ = now;
  const absl::Duration waited = now - output_waiting_since_;
  if (!BrokersLookUnreachable(now)) RefreshLagWhileWaiting(now);
  // The brokers said unreachable (the consumer's last error): not ready at
  // once, as Publish() would say, which does not run during the wait.
  const std::string error = LastKafkaError().text;
  if (BrokersLookUnreachable(now)) {
    Beat(now,
         absl::StrCat(
             "brokers unreachable: ", error, " (waiting on the outputs for ",
             absl::FormatDuration(absl::Trunc(waited, absl::Seconds(1))), ")"));
    return;
  }
  if (waited < kOutputWaitBeforeNotReady) {
    Beat(now);
    return;
  }
  Beat(now,
       absl::StrCat(
           "waiting ",
           absl::FormatDuration(absl::Trunc(waited, absl::Seconds(1))),
           " for the brokers to take output records or confirm the commit "
           "(the producer's queue is full, or the transaction waits; reading "
           "is paused)"));
}

void StreamThread::RefreshLagWhileWaiting(absl::Time now) {
  if (now - lag_refreshed_at_ < kLagRefreshWhileWaiting) return;
  lag_refreshed_at_ = now;
  Offsets positions;
  std::vector<TopicPartition> tps;
  for (const auto& [tp, slot] : slots_) {
    if (!slot.restored || slot.position() < 0) continue;
    positions.push_back({tp, slot.position()});
    tps.push_back(tp);
  }
  if (tps.empty()) return;
  auto ends = input_->EndOffsets(tps, kLagQueryTimeout);
  if (!ends.ok()) return;  // the last value stays
  std::map<TopicPartition, int64_t> end_of(ends->begin(), ends->end());
  FamilySnapshot lag = NewFamily(families::kConsumerLag);
  for (const auto& [tp, position] : positions) {
    const auto end = end_of.find(tp);
    if (end == end_of.end() || end->second < 0) continue;
    // As Lag(): read to its end, a transaction's commit marker after the
    // last record is no record waiting (a review: 1 for every idle
    // partition an exactly-once producer writes).
    const int64_t from = std::max(position, input_->ReachedEnd(tp));
    lag.samples.push_back(
        {{tp.topic, absl::StrCat(tp.partition)},
         static_cast<double>(std::max<int64_t>(end->second - from, 0))});
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (FamilySnapshot& family : published_) {
    if (family.name == lag.name) {
      family = std::move(lag);
      break;
    }
  }
}

void StreamThread::RestoreProgress() {
  // A rebuild of a lost local store reads every day record of the
  // changelog (~5 s per million): minutes for a large site. A stale
  // heartbeat would have /healthz restart the instance in the middle, and
  // the next start would rebuild from the beginning again.
  const absl::Time now = clock_->Now();
  if (now - restore_.heartbeat < absl::Seconds(1)) return;
  restore_.heartbeat = now;
  std::string progress =
      absl::StrCat(restore_.what, ": ", restore_.records, " record(s), ",
                   restore_.bytes, " bytes read");
  if (restore_.restored > 0) {
    absl::StrAppend(&progress, ", ", restore_.restored,
                    " partition(s) restored from them");
  }
  absl::StrAppend(&progress, " in ",
                  absl::FormatDuration(
                      absl::Trunc(now - restore_.started, absl::Seconds(1))));
  if (now - restore_.logged >= absl::Seconds(10)) {
    restore_.logged = now;
    KPI_LOG_INFO("%s: %s so far", options_.name, progress);
  }
  Beat(now, absl::StrCat(progress, " so far", restore_.after));
}

void StreamThread::Beat(absl::Time now, std::string not_ready) {
  std::lock_guard<std::mutex> lock(mu_);
  health_.heartbeat = std::max(health_.heartbeat, now);
  if (!not_ready.empty()) {
    health_.ready = false;
    health_.reason = std::move(not_ready);
  }
}

void StreamThread::Produce(absl::string_view topic, absl::string_view key,
                           std::optional<absl::string_view> value,
                           const Headers& headers, int32_t partition) {
  if (!fatal_.ok()) return;
  ++produced_since_commit_;
  absl::Status status = output_->Produce(topic, key, value, headers, partition);
  output_waiting_since_ = absl::InfinitePast();
  if (!status.ok()) Fail(status);
}

void StreamThread::Session(const ClosedSession& session) {
  closed_since_commit_ = true;
  if (!config_.sessions_output.enabled) return;
  EncodeSessionRecord(session, config_.sessions_output.format, &session_record_,
                      &session_bytes_);
  Produce(config_.sessions_output.topic, session.visitor_id, session_bytes_);
}

void StreamThread::Window(const WindowKpis& w, const std::string& partition) {
  if (!config_.kpi_output.enabled) return;
  // One key per series of snapshots: its site, channel, window and input
  // partition (each partition's sessions make their own snapshots of a
  // window; without the partition, a compacted topic or a table keyed on
  // the key kept one partition's and dropped the others': an audit).
  window_key_.clear();
  absl::StrAppend(&window_key_, w.site, "/", w.channel, "/",
                  absl::ToUnixSeconds(w.start), "/", partition);
  EncodeKpiSnapshot(w, partition, config_.kpi_output.format, &kpi_snapshot_,
                    &window_bytes_);
  Produce(config_.kpi_output.topic, window_key_, window_bytes_);
}

void StreamThread::DeadLetter(const kafka::Record& record,
                              absl::string_view reason,
                              absl::string_view detail) {
  absl::string_view key = record.has_key ? record.key : absl::string_view();
  absl::string_view value = record.value;
  KafkaHeaders headers = DeadLetterHeaders(reason, detail, record.topic,
                                           record.partition, record.offset);
  size_t limit = output_->max_record_bytes();
  if (options_.deadletter_topic_max_bytes != nullptr) {
    const size_t topic = options_.deadletter_topic_max_bytes->load();
    if (topic > 0) limit = std::min(limit, topic);
  }
  FitDeadLetter(limit, &key, &value, &headers);
  Produce(config_.deadletter_output.topic, key, value, headers);
}

void StreamThread::Changelog(const TopicPartition& input,
                             const ChangelogRecord& record) {
  KPI_LOG_DEBUG("%s: changelog write %s (%s) to partition %d", options_.name,
                record.key,
                record.value ? absl::StrCat(record.value->size(), " bytes")
                             : std::string("tombstone"),
                input.partition % changelog_->partitions());
  Produce(config_.changelog_output.topic, record.key,
          record.value ? std::optional<absl::string_view>(*record.value)
                       : std::nullopt,
          {}, input.partition % changelog_->partitions());
}

bool StreamThread::Repartition(const kafka::Record& record,
                               absl::string_view visitor_id,
                               absl::Time watermark) {
  // One record per event: the buffer is reused (no allocation once its
  // capacity is there).
  FormatForwarded(record, watermark, &forwarded_);
  if (visitor_id.size() + forwarded_.size() + kRecordFramingBytes >
      output_->max_record_bytes()) {
    return false;
  }
  // The partition is chosen here, as librdkafka's default partitioner
  // would: the producer's partitioner depends on its settings (a
  // `partitioner` in kafka.properties reached this topic only where
  // compression.type was set too), and a visitor must stay on one partition
  // for the group's life (an audit: adding compression.type re-routed every
  // visitor, splitting sessions and counting returning visitors new).
  Produce(repartition_topic_, visitor_id, forwarded_, {},
          options_.repartition_partitions > 0
              ? kafka::KeyPartition(visitor_id, options_.repartition_partitions)
              : -1);
  counters_.CountRepartitioned(record.topic);
  // Input keyed by visitor_id already could skip the hop: say so once.
  auto hint = key_hints_.find(record.topic);
  if (hint == key_hints_.end()) {
    hint = key_hints_.emplace(std::string(record.topic), KeyHint{}).first;
  }
  KeyHint& h = hint->second;
  ++h.forwarded;
  h.keyed += record.has_key && record.key == visitor_id;
  if (!h.logged && h.forwarded == 10000) {
    h.logged = true;
    if (h.keyed == h.forwarded) {
      KPI_LOG_INFO(
          "%s: the first %d records of %s were all keyed by their visitor_id: "
          "with inputs[].key: visitor_id they would be processed where they "
          "land, without the hop through %s (if it is the only events input: "
          "such an input keeps its sessions apart from the other inputs'; "
          "under a new kafka.group_id: this group's re-keyed sessions live "
          "in that topic's state, and the engine refuses to leave them)",
          options_.name, static_cast<int64_t>(h.forwarded), record.topic,
          repartition_topic_);
    }
  }
  return true;
}

absl::Duration StreamThread::WatermarksRefresh() const {
  return std::min(kWatermarksRefresh, context_.idle_source_silence / 3);
}

void StreamThread::SendUpstreamWatermarks(absl::Time now) {
  if (repartition_topic_.empty() || options_.repartition_partitions <= 0) {
    return;
  }
  v1::UpstreamWatermarks marks;
  for (const auto& [tp, slot] : slots_) {
    if (!slot.restored) continue;
    auto reader = readers_.find(tp.topic);
    if (reader == readers_.end() || !reader->second.rekey) continue;
    const bool handing_over =
        stopping_ ||
        (revoked_ != nullptr &&
         std::find(revoked_->begin(), revoked_->end(), tp) != revoked_->end());
    // An idle source partition says so, with no watermark yet too: it
    // holds the repartition partitions back no more than it holds back
    // this thread (SourceWatermark.idle). Not when it is handed over: an
    // idle flag would stand until its next owner's first commit, while no
    // one reads it, and the others' watermarks would pass its events
    // written meanwhile, judged late when read (review); active, with its
    // watermark (none yet too), it holds them back until then, as a keyed
    // partition's restore holds its own.
    const bool idle = !handing_over && watermark_.Idle(slot.watermark_id, now);
    if (!idle && !handing_over && slot.watermark == absl::InfinitePast()) {
      continue;
    }
    v1::SourceWatermark* m = marks.add_sources();
    m->set_topic(tp.topic);
    m->set_partition(tp.partition);
    m->set_watermark_us(absl::ToUnixMicros(slot.watermark));
    m->set_idle(idle);
  }
  if (marks.sources_size() == 0) return;
  std::string value(kWatermarksMagic);
  marks.AppendToString(&value);
  // Unchanged (an idle source, or none of its events since): said again
  // only now and then, for a repartition partition's new owner (which
  // forgets who was idle) and well before its readers take a silent idle
  // source for one no one reads (PipelineContext::idle_source_silence).
  if (value == sent_watermarks_ &&
      now - sent_watermarks_at_ < WatermarksRefresh()) {
    return;
  }
  sent_watermarks_ = value;
  sent_watermarks_at_ = now;
  for (int32_t p = 0; p < options_.repartition_partitions; ++p) {
    Produce(repartition_topic_, "", value, {}, p);
  }
}

void StreamThread::Fail(const absl::Status& status) {
  if (!fatal_.ok()) return;
  KPI_LOG_ERROR("%s: %s", options_.name, status.ToString());
  fatal_ = status;
  // At-least-once: what the thread has not sent yet is newer than its last
  // checkpoint, and its partitions' next owner makes it again from there.
  // Dropped at once (also inside a revocation, before the partitions are
  // handed over) rather than retried until the process is gone, arriving
  // after the next owner's.
  if (output_ != nullptr && !output_->transactional()) output_->DropQueued();
}

void StreamThread::Publish(absl::Time now) {
  const absl::Time watermark = watermark_.Current(now);
  const bool timeless = Timeless(now);
  // Rolling targets' windows are summed at the engine's clock (the slowest
  // thread's watermark, SetTargetClock) once there is one, as the engine
  // evaluates them there: summed at its own watermark, a thread ahead of
  // another (catching up after a restart) added its [11:00, 12:00) to the
  // other's [10:00, 11:00) (review).
  // A thread without a watermark yet (only ad-cost partitions, before the
  // idle timeout makes it timeless; or nothing read yet) sums there too:
  // at its own none, its partitions' spend was left out of ROAS for the
  // idle timeout after every start and assignment (an audit).
  absl::Time sums_at = watermark;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (timeless || watermark == absl::InfinitePast()) {
      sums_at = target_clock_;
    } else if (target_clock_ != absl::InfinitePast()) {
      sums_at = std::min(watermark, target_clock_);
    }
  }
  counters_.SetActiveVisitors(active_.CountsAt(now));
  counters_.ClearOpenSessions();  // added per partition below
  double open = 0, state_bytes = 0, buffered = 0;
  bool all_restored = true;
  Offsets positions;
  TargetShare share;
  share.watermark = timeless ? absl::InfiniteFuture() : watermark;
  share.all_idle = !timeless && watermark_.AllIdle(now);
  // The sums of the state as committed: summed afresh only when nothing
  // since the last commit changed them (right after a commit, or idle) and
  // no partition is being restored again (after an abort); otherwise those
  // of then (the published ones, kept). The counters beside them on
  // /metrics are the committed ones: the live sums made a period target
  // count sessions the counters did not count yet (a test saw 619 against
  // 106), and fell to 0 while an abort's restore ran. A partition not yet
  // restored since its assignment has nothing to add, and does not hold the
  // others' sums back.
  bool sum_targets = options_.targets != nullptr &&
                     processed_since_commit_ == 0 &&
                     produced_since_commit_ == 0 && !closed_since_commit_;
  for (const auto& [tp, slot] : slots_) {
    if (!slot.restored && slot.restored_once) sum_targets = false;
  }
  if (sum_targets) share.sums.resize(options_.targets->size());
  for (auto& [tp, slot] : slots_) {
    if (!slot.restored) {
      all_restored = false;
      continue;
    }
    const PartitionState& state = slot.pipeline->state();
    state.sessionizer().ForEachSiteOpen(
        [&](absl::string_view site, int64_t n, uint64_t* cache) {
          counters_.AddOpenSessions(site, n, cache);
        });
    open += static_cast<double>(state.open_sessions());
    state_bytes += static_cast<double>(state.ApproximateBytes());
    buffered += static_cast<double>(state.buffered_events());
    if (slot.position() >= 0) positions.push_back({tp, slot.position()});
    if (sum_targets) slot.pipeline->state().AddTargetSums(sums_at, &share.sums);
  }
  // Realtime visitors are the thread's, not a partition's: per site seen in
  // the last 30 minutes, a visitor table and two queues (an audit: 100k
  // sites held ~180 MB that kpistream_state_bytes did not show).
  state_bytes += static_cast<double>(active_.ApproximateBytes());
  MetricsSnapshot snapshot = counters_.Snapshot();
  // kpistream_watermark_lag_seconds is the engine's (now minus the lowest
  // thread's watermark, share.watermark): a thread's own sample was merged
  // into it as a sum, which doubled the lag on /metrics.
  snapshot.push_back(SingleSample(families::kStateSessions, open));
  snapshot.push_back(SingleSample(families::kStateBytes, state_bytes));
  snapshot.push_back(SingleSample(families::kAssignedPartitions,
                                  static_cast<double>(slots_.size())));
  snapshot.push_back(SingleSample(families::kReorderBufferEvents, buffered));
  FamilySnapshot consumer_lag = NewFamily(families::kConsumerLag);
  std::vector<int64_t> lags;
  input_->Lag(positions, &lags);
  int64_t waiting = 0;
  for (size_t i = 0; i < positions.size() && i < lags.size(); ++i) {
    if (lags[i] < 0) continue;  // its end not known yet
    const TopicPartition& tp = positions[i].first;
    consumer_lag.samples.push_back(
        {{tp.topic, absl::StrCat(tp.partition)}, static_cast<double>(lags[i])});
    waiting += lags[i];
  }
  snapshot.push_back(std::move(consumer_lag));
  snapshot.push_back(
      SingleSample(families::kCommits, static_cast<double>(commits_)));
  snapshot.push_back(
      SingleSample(families::kCommitAborts, static_cast<double>(aborts_)));
  snapshot.push_back(SingleSample(families::kRestoreFailures,
                                  static_cast<double>(restore_failures_)));
  snapshot.push_back(
      SingleSample(families::kRestoreSeconds, last_restore_seconds_));
  snapshot.push_back(
      SingleSample(families::kRestoreRecords, last_restore_records_));
  snapshot.push_back(
      SingleSample(families::kRestoreBytes, last_restore_bytes_));
  // Readiness: connected, restored, making progress.
  ThreadHealth health;
  health.heartbeat = now;
  health.ready = true;
  const std::string error = LastKafkaError().text;
  if (!final_reason_.empty()) {
    health.ready = false;
    health.reason = final_reason_;
  } else if (!unknown_outputs_.empty()) {
    health.ready = false;
    health.reason = absl::StrCat(
        "reading is paused until the brokers know every output topic "
        "(create it, grant the write permission, or fix the key): ",
        unknown_outputs_);
  } else if (!joined_) {
    // Before the group's first assignment no partition can be restored
    // yet: ready now would let a probe (or a user) count on records that
    // nobody reads.
    health.ready = false;
    health.reason = "joining the consumer group";
  } else if (lost_ && slots_.empty()) {
    health.ready = false;
    health.reason =
        "its partitions were lost (the group moved on without it): "
        "rejoining the consumer group";
  } else if (aborts_in_a_row_ >= kAbortsBeforeNotReady) {
    health.ready = false;
    health.reason = AbortsReason();
  } else if (flush_timeouts_in_a_row_ >= kAbortsBeforeNotReady) {
    health.ready = false;
    health.reason = absl::StrCat(
        flush_timeouts_in_a_row_,
        " commits in a row found their outputs not acknowledged in time, "
        "nothing committed since; the last: ",
        last_flush_timeout_);
  } else if (!all_restored) {
    health.ready = false;
    health.reason =
        restore_error_.empty()
            ? "restoring the state from the changelog"
            : absl::StrCat("restoring the state failed: ", restore_error_);
  } else if (BrokersLookUnreachable(now)) {
    health.ready = false;
    health.reason = absl::StrCat("brokers unreachable: ", error);
  } else if (waiting > 0 && last_progress_ != absl::InfinitePast() &&
             now - last_progress_ > kStallAfter) {
    health.ready = false;
    health.reason = absl::StrCat("no progress for ",
                                 absl::FormatDuration(now - last_progress_),
                                 " with ", waiting, " record(s) waiting");
  }
  std::lock_guard<std::mutex> lock(mu_);
  published_ = std::move(snapshot);
  if (!sum_targets) share.sums = std::move(targets_.sums);
  targets_ = std::move(share);
  // `now` may be older than a heartbeat WaitingForOutput() gave meanwhile
  // (a wait inside the commit cycle): never back.
  health.heartbeat = std::max(health.heartbeat, health_.heartbeat);
  health_ = std::move(health);
}

std::array<StreamThread::KafkaError, 2> StreamThread::KafkaErrors() const {
  return {KafkaError{input_->last_error(), input_->last_error_at(), false},
          KafkaError{output_->last_error(), output_->last_error_at(), true}};
}

namespace {
// An error event saying that brokers cannot be reached: every one, a name
// that does not resolve, or, the consumer's, a broker's connection failing.
// The producer's connection failing counts only when connecting failed (not
// "in state UP"): an instance whose consumer reads nothing from a broker
// that went down still writes to the output partitions it led, and its
// producer is the one to tell, retrying the connection (BrokerOutageTest:
// an instance never unready while a leader was down); but a broker closes
// the producer's idle connections (connections.max.idle.ms), and
// librdkafka raises an error event for such a close when the connection
// was idle for less than 60 s (seen with a broker's 20 s: "Disconnected
// (after 20003ms in state UP)" every 40 s; it logs one idle longer at
// debug level only, no event). Requests that timed out on a connection
// that was up ("2 request(s) timed out: disconnect (after 59735ms in state
// UP)") are no idle close: a broker hung, or the network drops packets.
bool UnreachableError(absl::string_view error, bool from_producer) {
  if (absl::StrContains(error, "ALL_BROKERS_DOWN") ||
      absl::StrContains(error, "_RESOLVE") ||
      // librdkafka's code for these is _TIMED_OUT, not _TRANSPORT (a review
      // of the first fix, which looked for them among _TRANSPORT's).
      absl::StrContains(error, "request(s) timed out")) {
    return true;
  }
  if (!absl::StrContains(error, "_TRANSPORT")) return false;
  return !from_producer || !absl::StrContains(error, "in state UP");
}
}  // namespace

StreamThread::KafkaError StreamThread::LastKafkaError() const {
  // The newer of those that say the brokers cannot be reached, else the
  // newer: the reason names an outage while one is noted.
  const std::array<KafkaError, 2> errors = KafkaErrors();
  const KafkaError* best = nullptr;
  for (const KafkaError& e : errors) {
    if (!UnreachableError(e.text, e.from_producer)) continue;
    if (best == nullptr || e.at > best->at) best = &e;
  }
  if (best != nullptr) return *best;
  return errors[1].at > errors[0].at ? errors[1] : errors[0];
}

bool StreamThread::BrokerAnswers() {
  // A thread without partitions asks about the first input's first one:
  // an outage long enough takes every partition away (the consumer's
  // session times out), and "none to ask about" said ready, on and off,
  // through the outage (review).
  const TopicPartition probe =
      slots_.empty() ? TopicPartition{config_.inputs.front().topic, 0}
                     : slots_.begin()->first;
  return input_->EndOffsets({probe}, kEndCheckTimeout).ok();
}

void StreamThread::TrackOutage(absl::Time now) {
  // Each poll: the error texts are copied only when a client has a new one.
  if (input_->last_error_at() > error_seen_at_ ||
      output_->last_error_at() > producer_error_seen_at_) {
    for (const KafkaError& error : KafkaErrors()) {
      absl::Time& seen =
          error.from_producer ? producer_error_seen_at_ : error_seen_at_;
      if (error.at <= seen) continue;
      seen = error.at;
      if (UnreachableError(error.text, error.from_producer)) {
        cluster_down_at_ = std::max(cluster_down_at_, error.at);
      }
    }
  }
  if (cluster_down_at_ == absl::InfinitePast()) return;
  if (now - outage_probed_at_ < kOutageProbeInterval) return;
  outage_probed_at_ = now;
  if (BrokerAnswers()) {
    cluster_down_at_ = absl::InfinitePast();  // a broker answered
  }
}

bool StreamThread::BrokersLookUnreachable(absl::Time now) const {
  if (cluster_down_at_ != absl::InfinitePast()) return true;
  for (const KafkaError& error : KafkaErrors()) {
    if (now - error.at < kUnreachableFor &&
        UnreachableError(error.text, error.from_producer)) {
      return true;
    }
  }
  return false;
}

std::string StreamThread::AbortsReason() const {
  return absl::StrCat(aborts_in_a_row_,
                      " commits in a row aborted, none went through (the "
                      "records are read again each time); the last: ",
                      last_abort_);
}

MetricsSnapshot StreamThread::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return published_;
}

ThreadHealth StreamThread::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

StreamThread::TargetShare StreamThread::Targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_;
}

void StreamThread::Published(MetricsSnapshot* metrics,
                             TargetShare* targets) const {
  std::lock_guard<std::mutex> lock(mu_);
  *metrics = published_;
  *targets = targets_;
}

bool StreamThread::Timeless(absl::Time now) {
  // As an idle partition has no say in its thread's watermark, a thread
  // has none in the engine's once nothing it owns has an event time to go
  // by: its partitions all idle without one, or none (an ad-cost one has no
  // event time) for the idle timeout, so that a rebalance's short gap
  // between a revocation and an assignment keeps its say. Without this, a
  // thread left without partitions (more threads than input partitions)
  // or with only empty ones kept the engine's lag and targets unknown.
  if (!joined_) return false;
  if (!watermark_.empty()) {
    no_partitions_since_ = absl::InfiniteFuture();
    return watermark_.NoEventTime(now);
  }
  if (no_partitions_since_ == absl::InfiniteFuture()) {
    no_partitions_since_ = now;
  }
  return now - no_partitions_since_ >=
         config_.processing.idle_partition_timeout;
}

void StreamThread::SetTargetClock(absl::Time clock) {
  std::lock_guard<std::mutex> lock(mu_);
  target_clock_ = std::max(target_clock_, clock);
}

void StreamThread::SetInstanceWatermark(absl::Time watermark) {
  if (watermark == absl::InfinitePast() ||
      watermark == absl::InfiniteFuture()) {
    return;
  }
  const int64_t us = absl::ToUnixMicros(watermark);
  int64_t seen = instance_watermark_us_.load(std::memory_order_relaxed);
  while (us > seen && !instance_watermark_us_.compare_exchange_weak(
                          seen, us, std::memory_order_relaxed)) {
  }
}

absl::Time InstanceWatermark(
    const std::vector<StreamThread::TargetShare>& shares) {
  absl::Time active_min = absl::InfiniteFuture();
  absl::Time idle_max = absl::InfinitePast();
  bool any_active = false, any_idle = false;
  for (const StreamThread::TargetShare& share : shares) {
    if (share.watermark == absl::InfiniteFuture()) continue;  // no say
    if (share.all_idle) {
      any_idle = true;
      idle_max = std::max(idle_max, share.watermark);
    } else {
      any_active = true;
      active_min = std::min(active_min, share.watermark);
    }
  }
  if (any_active) return active_min;
  return any_idle ? idle_max : absl::InfiniteFuture();
}

}  // namespace kpistream
