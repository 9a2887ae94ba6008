// PartitionPipeline: the unit of work and of state of one input partition
// (Kafka Streams' StreamTask): it takes the partition's records in offset
// order — decode and validate, bot filter, dedup, reorder, sessionize, count
// — holds all the partition's state (aggregate/PartitionState), and writes
// what it produces through a narrow PipelineOutput: session records, KPI
// window snapshots, dead letters, and its checkpoints for the state
// changelog. It reads no clock and knows no Kafka client: the stream thread
// passes time, the watermark and records in, and owns the commit cycle.
//
// Counting: every consumed record is exactly one of accepted, invalid
// (reason), late, duplicate or bot in the thread's KpiCounters (pending until
// the commit that holds this work).
//
// Re-keying (SPEC §2, config inputs[].key): a partition of a `key: any`
// input decodes each record only to learn its visitor_id and forwards it,
// bytes unchanged, to the repartition topic keyed by that visitor_id (bots
// and invalid records end here, counted); a partition of the repartition
// topic processes the forwarded records as its source input would, counts
// them as consumed from that input, and takes its watermark from the
// sources: each source partition's watermark rides on every record forwarded
// from it and arrives as a watermark record at every commit, and the
// partition's watermark is the minimum over the source partitions that are
// not idle (none before every one has reported; the maximum when all are
// idle), so that a source partition that lags (a restart, a slow owner) never
// makes another's events late, and an idle one holds none back. A forwarded
// event is judged against it as of its record. Not thread-safe: owned by one
// stream thread.
#ifndef KPISTREAM_ENGINE_PARTITION_PIPELINE_H_
#define KPISTREAM_ENGINE_PARTITION_PIPELINE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "aggregate/active_visitors.h"
#include "aggregate/bot_filter.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "engine/checkpoint_log.h"
#include "engine/local_store.h"
#include "engine/rejection_reporter.h"
#include "ingest/ad_cost_decoder.h"
#include "ingest/event_decoder.h"
#include "kafka/record.h"
#include "kpistream/v1/web_event.pb.h"

namespace kpistream {

// Where a pipeline's products go.
class PipelineOutput {
 public:
  virtual ~PipelineOutput() = default;
  virtual void Session(const ClosedSession& session) = 0;
  // `partition`: "topic:partition" of the pipeline.
  virtual void Window(const WindowKpis& window,
                      const std::string& partition) = 0;
  // The input record as it came, with why it was not used.
  virtual void DeadLetter(const kafka::Record& record, absl::string_view reason,
                          absl::string_view detail) = 0;
  virtual void Changelog(const TopicPartition& input,
                         const ChangelogRecord& record) = 0;
  // A record of a `key: any` input, to be re-keyed by `visitor_id`;
  // `watermark` is its partition's when it was read (InfinitePast: none yet).
  // False: it is too large to forward (the output's max_record_bytes), and
  // nothing was produced.
  virtual bool Repartition(const kafka::Record& record,
                           absl::string_view visitor_id,
                           absl::Time watermark) = 0;
};

// A record of the repartition topic is one of
//
//   kForwardedMagic, the length of <source> (4 bytes, little-endian),
//   <source>, the original value: a forwarded record;
//   kWatermarksMagic, a v1::UpstreamWatermarks: source partitions'
//   watermarks;
//
// with <source> = "<partition>/<offset>/<watermark>/<topic>[/<key>]": the
// source partition's watermark (unix microseconds) when the record was
// forwarded, empty for none; the original key only when it had one (it may
// hold '/', a topic name cannot). In the value, not in headers: librdkafka
// parses a consumed record's headers on every look (an allocation, even
// for a record without any), which with their production and release was
// ~10 % of the re-keyed path's CPU. Records without either prefix come from
// earlier versions, which said the same in headers (below), still read
// (an earlier version's record is taken for a new one only if its original
// value starts with a prefix, which no valid input does: 0xff starts no
// UTF-8 text, JSON or access-log line, and no protobuf message starts with
// the tag 0xff 0x6b, of wire type 7).
inline constexpr absl::string_view kForwardedMagic(
    "\xff"
    "kpf",
    4);
inline constexpr absl::string_view kWatermarksMagic(
    "\xff"
    "kpw",
    4);
// The header of earlier versions' forwarded records, as <source> above.
inline constexpr char kSourceHeader[] = "kpistream-source";
// The headers of still earlier versions (one per field), still read.
inline constexpr char kSourceTopicHeader[] = "kpistream-source-topic";
inline constexpr char kSourcePartitionHeader[] = "kpistream-source-partition";
inline constexpr char kSourceOffsetHeader[] = "kpistream-source-offset";
inline constexpr char kSourceKeyHeader[] = "kpistream-source-key";
inline constexpr char kSourceWatermarkHeader[] = "kpistream-source-watermark";
// Marked earlier versions' records of source partitions' watermarks.
inline constexpr char kWatermarkHeader[] = "kpistream-watermark";

// The value of the repartition topic's record for `record` (its topic,
// partition, offset, key and value) forwarded at `watermark`
// (InfinitePast: none), into `*out`.
void FormatForwarded(const kafka::Record& record, absl::Time watermark,
                     std::string* out);
// Reads a forwarded record's origin into `*source` (topic, partition,
// offset, key; -1 and an empty topic where unknown), its original value
// into source->value, and its source partition's watermark (unix
// microseconds) into `*watermark_us` when it has one; from the value as
// FormatForwarded() writes it, else from the headers of earlier versions.
// Not for watermark records (UpstreamWatermarksOf()).
void ParseForwarded(const kafka::Record& record, kafka::Record* source,
                    std::optional<int64_t>* watermark_us);
// Whether `record` of the repartition topic carries watermarks, and if so
// their serialized v1::UpstreamWatermarks into `*bytes`.
bool UpstreamWatermarksOf(const kafka::Record& record,
                          absl::string_view* bytes);

// How one input topic's records are read: its decoder and bot filter (per
// stream thread: decoders reuse their buffers).
struct InputReader {
  std::string topic;
  bool ad_cost = false;
  EventDecoder* events = nullptr;   // events inputs
  AdCostDecoder* costs = nullptr;   // ad_cost inputs
  const BotFilter* bots = nullptr;  // events inputs
  // Events inputs: `key: any` (re-keyed through the repartition topic) or
  // `key: visitor_id` (every record must be keyed by its visitor_id).
  bool rekey = false;
  bool keyed_by_visitor = false;
  // Set for the repartition topic only: the inputs its records come from.
  const std::map<std::string, InputReader, std::less<>>* sources = nullptr;
};

// What the pipelines of a stream thread share; outlives them.
struct PipelineContext {
  PartitionState::Options state;
  const ChannelClassifier* channels = nullptr;
  KpiCounters* counters = nullptr;  // pending until commit
  ActiveVisitors* active = nullptr;
  RejectionReporter* rejections = nullptr;  // the log's summary
  absl::Duration max_future_skew = absl::Minutes(10);
  // An event's time moves its partition's event time (the watermark's
  // basis) only up to when its record was written (the record's timestamp;
  // the processing clock for a record without one): an event from a client
  // whose clock runs fast (accepted within max_future_skew) waits in the
  // reorder buffer, and does not make the other visitors' events late. Off
  // only where event time is meant to run ahead of the clock (the demo).
  bool event_time_capped_at_clock = true;
  // What a partition's own watermark trails its highest event time by.
  absl::Duration max_out_of_orderness = absl::Seconds(30);
  // A source partition that said it is idle, and then sent nothing for
  // this long in the repartition log's time (the records' timestamps; its
  // owners send at every commit), is active again: no one reads it (a
  // crashed owner; one handing over says so), and it holds the repartition
  // partitions back until its next owner reports. Zero: never.
  absl::Duration idle_source_silence = absl::ZeroDuration();
  // The re-keyed inputs and their partition counts: the source partitions
  // a repartition partition waits to hear from.
  std::vector<std::pair<std::string, int32_t>> upstream_sources;
  // Where the visitors' and orders' days live (engine/local_store.h); null:
  // in RAM, in the checkpoints (tests).
  LocalStore* local_store = nullptr;
  // Exactly-once: checkpoints are written in the output's transactions.
  bool checkpoints_in_transactions = true;
  // kafka.group_id: written into every checkpoint; a restore refuses
  // another group's.
  std::string group_id;
  // Where a checkpoint's records are cut (CheckpointChunkBytes of the
  // output's record limit).
  size_t checkpoint_chunk_bytes = 512 << 10;
};

class PartitionPipeline : private SessionObserver {
 public:
  // `input`, `context` and `output` outlive the pipeline.
  PartitionPipeline(TopicPartition tp, const InputReader* input,
                    const PipelineContext* context, PipelineOutput* output);
  ~PartitionPipeline() override;

  // Rebuilds the state from the changelog's checkpoints (before the first
  // record). Returns where the input resumes: the checkpointed position, or
  // the record of the first buffered event checkpointed by reference when
  // there is one (PartitionState: the records from there to the position
  // only give their buffered events back; they count nowhere else), or -1
  // when the partition has none (then the group's committed offset).
  absl::StatusOr<int64_t> Restore(const CheckpointReader& reader);
  // Whether buffered events are still to be read again (after Restore()).
  bool replaying() const { return replay_until_ >= 0; }
  // While replaying(), before the input is sought: `first` is the
  // partition's first retained offset, as the brokers say now. References
  // to records before it are lost at once (logged as such), not when a
  // later record comes: a partition that gets none would hold its releases
  // meanwhile. With none left, reading again is over. Returns where the
  // input resumes (never a deleted offset, where the consumer's reset
  // policy would decide, and `latest` would skip records never read).
  int64_t SkipDeleted(int64_t first);
  // After the restore, or while reading (StreamThread::CheckDeletedUnread):
  // the records before `first` (the first retained offset) were never read
  // and are gone: the position moves there, so the next checkpoint holds it
  // (an idle partition's stayed before them, and every later restore found
  // them again). No-op when it is there already.
  void SkipUnread(int64_t first) {
    if (next_offset_ >= 0 && next_offset_ < first) next_offset_ = first;
  }
  // After Restore(), before the input is sought: the partition's log ends
  // before the restored position, so it is not the log the checkpoint read
  // (the topic deleted and created again, or cut short by an unclean leader
  // election). Buffered events' references point into the old log: lost,
  // and logged as such. Reading resumes at `first`, the log's first
  // offset, which is returned.
  int64_t Rebase(int64_t first);

  // Processes one record of this partition at processing time `now`, given
  // the thread's watermark. Returns the event time the record carried, at
  // most `now` (PipelineContext::event_time_capped_at_clock), for the
  // watermark (every timestamped record moves it, SPEC §3), or
  // InfinitePast().
  absl::Time Process(const kafka::Record& record, absl::Time now,
                     absl::Time watermark);

  // Applies the watermark: releases buffered events, closes sessions.
  void Advance(absl::Time watermark);
  // Writes the KPI windows changed since the last call (final ones up to
  // `frontier`).
  void EmitWindows(absl::Time frontier);
  // Writes a checkpoint of the state (as of the records processed so far)
  // to the changelog through the output; with a local store, also the
  // changes of the persistent day stores, one record per entry.
  // `last_event_at`: when the partition's last event was read (processing
  // time, the thread's WatermarkTracker), kept with the checkpoint.
  void Checkpoint(bool force_full = false,
                  absl::Time last_event_at = absl::InfinitePast());
  // Not OK once the local store could not be read: the records processed
  // since the last commit were counted from a wrong answer (a returning
  // visitor as new), and the commit must not go through.
  absl::Status StoreError() const;
  // The commit holding the last Checkpoint() succeeded: with a local store,
  // its records (and the day stores' changes) go into `batch`.
  void Committed(LocalStore::Batch* batch);

  const TopicPartition& tp() const { return tp_; }
  const std::string& name() const { return name_; }
  // The next offset to read (-1: nothing read and nothing restored).
  int64_t next_offset() const { return next_offset_; }
  // Whether the record at `offset` is one the state holds already: before
  // the next offset, and not a buffered event read again after a restore.
  bool Processed(int64_t offset) const {
    return replay_until_ < 0 && next_offset_ >= 0 && offset < next_offset_;
  }
  // The seq of the next checkpoint (how many the changelog holds).
  uint64_t checkpoints_restored() const { return writer_.position().next_seq; }
  absl::Time max_event_time() const { return max_event_time_; }
  // As restored: when the partition's last event was read (InfinitePast:
  // unknown).
  absl::Time restored_last_event_at() const {
    return writer_.position().last_event_at;
  }
  // Sources idle and silent for ctx idle_source_silence, in the times the
  // records read since were written, are active again; sources beyond
  // their topic's partition count at the start, silent for 45 minutes, are
  // dropped (once a poll, before UpstreamWatermark()).
  void ExpireIdleSources();
  // A repartition partition: the minimum of its source partitions'
  // watermarks, of those not idle (the maximum when all are), as of the
  // last record read; InfinitePast() until every one has reported.
  absl::Time UpstreamWatermark() const;
  bool repartition() const { return input_->sources != nullptr; }
  // Whether the record Process() took last was a repartition topic's
  // watermark record (no work of its own: StreamThread::Handle).
  bool processed_watermarks() const { return processed_watermarks_; }
  // Its records carry no event time (ad spend, for a date): it has no
  // watermark of its own and holds no other back.
  bool timeless() const { return input_->ad_cost; }
  const PartitionState& state() const { return state_; }
  PartitionState& state() { return state_; }

 private:
  // An event time as its partition's event time counts it: at most its
  // record's timestamp (`now` without one), unless the context says
  // otherwise.
  absl::Time Counted(absl::Time event_time, const kafka::Record& record,
                     absl::Time now) const;
  // SessionObserver: counters and session records.
  void OnSessionStarted(const SessionAttributes& session,
                        const EventView& first) override;
  void OnEvent(const SessionAttributes& session,
               const EventView& event) override;
  void OnSessionClosed(const ClosedSession& session) override;

  // `record` is as the input had it (for a forwarded one: its source's
  // topic, partition, offset and key); `reader` reads its input; `offset`
  // is the record's in this partition.
  // `judged_by`: as PartitionState::Offer's.
  void ProcessEvent(const InputReader& reader, const kafka::Record& record,
                    int64_t offset, absl::Time now, absl::Time watermark,
                    absl::Time* event_time,
                    absl::Time judged_by = absl::InfinitePast());
  // A record before the restored position: gives back its buffered event,
  // if it had one.
  void Replay(const kafka::Record& record, absl::Time now);
  // Replay is over (the restored position is reached): references still
  // waiting are lost, and said so.
  void FinishReplay();
  void ForwardEvent(const kafka::Record& record, absl::Time now,
                    absl::Time watermark, absl::Time* event_time);
  // A forwarded record's source (its topic, partition, offset, key and
  // watermark, from its headers) and the events input that reads it; null
  // when its topic is not one.
  const InputReader* SourceOf(const kafka::Record& record,
                              kafka::Record* source,
                              std::optional<int64_t>* watermark_us) const;
  // A source partition's watermark is at least `at`; it is `idle` (a
  // watermark record says so) or not (a record forwarded from it).
  // `written`: the record's time (InfiniteFuture: none).
  void Heard(absl::string_view topic, int32_t partition, absl::Time at,
             absl::Time written, bool idle);
  // Whether `tp` is beyond its re-keyed topic's partition count at the
  // start (ctx upstream_sources).
  bool Beyond(const TopicPartition& tp) const;
  void ProcessForwarded(const kafka::Record& record, absl::Time now,
                        absl::Time watermark, absl::Time* event_time);
  void Consumed(absl::string_view topic);
  void ProcessAdCost(const kafka::Record& record, absl::Time now,
                     absl::Time* event_time);
  // A bot's record (its user agent): counted, dead-lettered; a conversion
  // also said in the rejection summary.
  void CountBot(const kafka::Record& record, absl::string_view topic);
  void Reject(const kafka::Record& record, absl::string_view reason,
              absl::string_view detail, absl::string_view topic);

  TopicPartition tp_;
  uint32_t active_owner_ = 0;  // its id in ctx_->active
  std::string name_;           // "topic:partition"
  const InputReader* input_;
  const PipelineContext* ctx_;
  PipelineOutput* out_;
  PartitionState state_;
  CheckpointWriter writer_;
  int64_t next_offset_ = -1;
  bool processed_watermarks_ = false;  // processed_watermarks()
  // While >= 0: records before it are read again for their buffered events.
  int64_t replay_until_ = -1;
  size_t replayed_ = 0, replay_lost_ = 0;
  absl::Time max_event_time_ = absl::InfinitePast();
  // A repartition partition's source partitions' watermarks, and those of
  // them that said they are idle.
  std::map<TopicPartition, absl::Time> upstream_;
  // Those that said they are idle, with when they said it last (the
  // record's time), and the latest time of a record read here.
  std::map<TopicPartition, absl::Time> idle_upstream_;
  absl::Time latest_written_ = absl::InfinitePast();
  // Sources beyond their topic's partition count at the start (added to
  // it since, or of a topic since re-created with fewer), with when they
  // were last heard from in the log's time (InfinitePast: restored, not
  // heard from yet).
  std::map<TopicPartition, absl::Time> beyond_upstream_;
  // Heard()'s cache: the entry of the last source partition heard from,
  // whether it is in idle_upstream_, and whether in beyond_upstream_.
  TopicPartition heard_tp_;
  absl::Time* heard_ = nullptr;
  bool heard_idle_ = false;
  bool heard_beyond_ = false;
  // UpstreamWatermark()'s cache, computed again when upstream_ changed.
  mutable bool upstream_changed_ = true;
  mutable absl::Time upstream_watermark_ = absl::InfinitePast();
  // With a local store: the day stores (owned by state_) and the records of
  // the last checkpoint, mirrored into the store once committed.
  RocksDayStore* visitor_days_ = nullptr;
  RocksDayStore* order_days_ = nullptr;
  std::vector<ChangelogRecord> unmirrored_;
  // The decoded record: views of it or of its decoder's buffers, valid
  // while the record is being processed.
  EventView event_;
  v1::AdCost ad_cost_;  // decode target, reused
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_PARTITION_PIPELINE_H_
