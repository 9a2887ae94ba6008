#include "engine/partition_pipeline.h"

#include <algorithm>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "aggregate/time_text.h"
#include "cmd/log.h"
#include "kpistream/v1/state.pb.h"

namespace kpistream {

namespace {

constexpr size_t kForwardedPrefix = kForwardedMagic.size() + 4;

// The longest spend interval spread over its time for the KPI targets (a
// month's export, from a midnight of the account's zone to the next month's:
// 745 hours for October in Europe, whose clocks go back an hour in it; an
// audit's October row was dated at its start and its month's ROAS had no
// cost); a longer one is dated at its start.
constexpr absl::Duration kMaxSpreadSpend = absl::Hours(24 * 31 + 2);

// A re-keyed source partition the input did not have at the start, silent
// this long in the log's time, is taken for gone (its topic re-created with
// fewer partitions; a full checkpoint then forgets it for good). Well
// beyond the idle expiry: a live one's owner can be out for a consumer
// session timeout (45 s by default, up to the brokers' 30 min maximum: the
// engine's consumers are static members), a rebalance and a restore, and
// dropped, its events would be judged late (review).
constexpr absl::Duration kGoneSourceSilence = absl::Minutes(45);

// "<partition>/<offset>/<watermark>/<topic>[/<key>]" into `*source` and
// `*watermark_us`; false when malformed, and then neither is touched.
bool ParseSource(absl::string_view h, kafka::Record* source,
                 std::optional<int64_t>* watermark_us) {
  absl::string_view fields[3];
  for (absl::string_view& field : fields) {
    const size_t slash = h.find('/');
    if (slash == absl::string_view::npos) return false;
    field = h.substr(0, slash);
    h.remove_prefix(slash + 1);
  }
  (void)absl::SimpleAtoi(fields[0], &source->partition);
  (void)absl::SimpleAtoi(fields[1], &source->offset);
  int64_t us = 0;
  if (absl::SimpleAtoi(fields[2], &us)) *watermark_us = us;
  const size_t slash = h.find('/');
  source->topic = h.substr(0, slash);
  if (slash != absl::string_view::npos) {
    source->has_key = true;
    source->key = h.substr(slash + 1);
  }
  return true;
}

// The "now" an event's time is judged against for future_event_time (and
// ad spend's future dates): when its record was written where the record
// says so, never later than the clock. Judged against the clock alone, an
// event refused live as too far ahead was accepted when its record was read
// again after a crash's downtime or behind a backlog, and the state built
// again then differed from the state the first read built. A record without
// a timestamp, or written more than kJudgedByRecordFor before it is read (a
// producer that sets timestamps of its own, e.g. 0): the clock.
constexpr absl::Duration kJudgedByRecordFor = absl::Hours(24);

absl::Time JudgedNow(const kafka::Record& record, absl::Time now) {
  if (record.timestamp_ms < 0) return now;
  const absl::Time written = absl::FromUnixMillis(record.timestamp_ms);
  if (written >= now || written < now - kJudgedByRecordFor) return now;
  return written;
}

}  // namespace

void FormatForwarded(const kafka::Record& record, absl::Time watermark,
                     std::string* out) {
  out->assign(kForwardedMagic.data(), kForwardedMagic.size());
  out->append(4, '\0');  // the length, below
  absl::StrAppend(out, record.partition, "/", record.offset, "/");
  if (watermark != absl::InfinitePast()) {
    absl::StrAppend(out, absl::ToUnixMicros(watermark));
  }
  absl::StrAppend(out, "/", record.topic);
  if (record.has_key) absl::StrAppend(out, "/", record.key);
  absl::little_endian::Store32(
      out->data() + kForwardedMagic.size(),
      static_cast<uint32_t>(out->size() - kForwardedPrefix));
  out->append(record.value.data(), record.value.size());
}

void ParseForwarded(const kafka::Record& record, kafka::Record* source,
                    std::optional<int64_t>* watermark_us) {
  *source = record;
  source->topic = "";
  source->partition = -1;
  source->offset = -1;
  source->has_key = false;
  source->key = "";
  watermark_us->reset();
  const absl::string_view v = record.value;
  if (absl::StartsWith(v, kForwardedMagic)) {
    if (v.size() < kForwardedPrefix) return;  // cut short: origin unknown
    const uint32_t length =
        absl::little_endian::Load32(v.data() + kForwardedMagic.size());
    if (length > v.size() - kForwardedPrefix) return;
    if (ParseSource(v.substr(kForwardedPrefix, length), source, watermark_us)) {
      source->value = v.substr(kForwardedPrefix + length);
    }
    return;
  }
  if (std::optional<absl::string_view> h = record.Header(kSourceHeader)) {
    (void)ParseSource(*h, source, watermark_us);  // malformed: unknown
    return;
  }
  source->topic = record.Header(kSourceTopicHeader).value_or("");
  if (auto p = record.Header(kSourcePartitionHeader)) {
    (void)absl::SimpleAtoi(*p, &source->partition);
  }
  if (auto o = record.Header(kSourceOffsetHeader)) {
    (void)absl::SimpleAtoi(*o, &source->offset);
  }
  int64_t us = 0;
  if (auto w = record.Header(kSourceWatermarkHeader);
      w.has_value() && absl::SimpleAtoi(*w, &us)) {
    *watermark_us = us;
  }
  const std::optional<absl::string_view> key = record.Header(kSourceKeyHeader);
  source->has_key = key.has_value();
  source->key = key.value_or("");
}

bool UpstreamWatermarksOf(const kafka::Record& record,
                          absl::string_view* bytes) {
  if (absl::StartsWith(record.value, kWatermarksMagic)) {
    *bytes = record.value.substr(kWatermarksMagic.size());
    return true;
  }
  if (absl::StartsWith(record.value, kForwardedMagic) ||
      !record.Header(kWatermarkHeader).has_value()) {
    return false;
  }
  *bytes = record.value;  // an earlier version's
  return true;
}

PartitionPipeline::PartitionPipeline(TopicPartition tp,
                                     const InputReader* input,
                                     const PipelineContext* context,
                                     PipelineOutput* output)
    : tp_(std::move(tp)),
      name_(absl::StrCat(tp_.topic, ":", tp_.partition)),
      input_(input),
      ctx_(context),
      out_(output),
      state_(context->state, this, context->channels),
      writer_(tp_, context->checkpoint_chunk_bytes) {
  writer_.set_without_transaction(!context->checkpoints_in_transactions);
  writer_.set_group_id(context->group_id);
  // Ad-cost and forwarding partitions judge no event against a frontier.
  writer_.set_frontier_judges(!input_->ad_cost && !input_->rekey);
  if (context->active != nullptr) {
    active_owner_ = context->active->OwnerOf(tp_.topic, tp_.partition);
  }
  if (context->local_store != nullptr) {
    auto visitors =
        std::make_unique<RocksDayStore>(context->local_store, tp_, 'v');
    auto orders =
        std::make_unique<RocksDayStore>(context->local_store, tp_, 'o');
    visitor_days_ = visitors.get();
    order_days_ = orders.get();
    state_.UseDayStores(std::move(visitors), std::move(orders));
  }
}

PartitionPipeline::~PartitionPipeline() = default;

absl::StatusOr<int64_t> PartitionPipeline::Restore(
    const CheckpointReader& reader) {
  // The restore has written the changelog's day records into the local
  // store (StreamThread::ReadState): from here on only this pipeline writes
  // this partition's days.
  for (RocksDayStore* days : {visitor_days_, order_days_}) {
    if (days == nullptr) continue;
    if (absl::Status s = days->LoadFilter(); !s.ok()) return s;
  }
  auto position = reader.RestoreInto(tp_, &state_);
  if (!position.ok()) return position.status();
  if (!position->group_id.empty() && !ctx_->group_id.empty() &&
      position->group_id != ctx_->group_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        tp_.topic, "[", tp_.partition,
        "]: the changelog holds the state of "
        "consumer group \"",
        position->group_id, "\", not of \"", ctx_->group_id,
        "\": every group needs a changelog of its own (outputs.changelog."
        "topic; the default, <group_id>-changelog, is): its state and input "
        "positions are not this group's to take"));
  }
  if (position->skipped > 0) {
    KPI_LOG_WARN(
        "%s[%d]: the newest %d checkpoint(s) in the changelog are incomplete "
        "(written without a transaction, at-least-once, by a writer that "
        "stopped midway): resuming at the one before (none: from the "
        "start)",
        tp_.topic, tp_.partition, static_cast<int64_t>(position->skipped));
  }
  next_offset_ = position->next_offset;
  max_event_time_ = position->max_event_time;
  upstream_ = position->upstream;
  idle_upstream_.clear();  // the next watermark records say it again
  beyond_upstream_.clear();
  for (const auto& [tp, at] : upstream_) {
    if (Beyond(tp)) beyond_upstream_[tp] = absl::InfinitePast();
  }
  latest_written_ = absl::InfinitePast();
  heard_ = nullptr;
  upstream_changed_ = true;
  writer_.Resume(*std::move(position));
  replayed_ = replay_lost_ = 0;
  replay_until_ = -1;
  const int64_t from = state_.replay_from();
  if (from < 0) return next_offset_;
  if (next_offset_ < 0) {
    // No position to read up to (no state writes references without one):
    // they are lost, and said so.
    FinishReplay();
    return next_offset_;
  }
  replay_until_ = next_offset_;
  return std::min(from, next_offset_);
}

int64_t PartitionPipeline::SkipDeleted(int64_t first) {
  if (replay_until_ < 0) return next_offset_;
  size_t missing = 0;
  state_.WantsReplay(first, &missing);  // drops the references before it
  if (state_.pending_replays() == 0) {
    replay_lost_ += missing;
    FinishReplay();
    return next_offset_;
  }
  // Said now, not when the others are read again: that ends only at the
  // partition's next record, which an idle partition may not get for long
  // (an audit: 436 events lost, said 106 s later, at a record sent to it).
  if (missing > 0) {
    KPI_LOG_ERROR(
        "%s: %d buffered event(s) of the checkpoint could not be read again "
        "from their records (deleted from the topic by retention before "
        "offset %d): they are lost; the other %d are read again",
        name_, static_cast<int64_t>(missing), first,
        static_cast<int64_t>(state_.pending_replays()));
  }
  return std::min(state_.replay_from(), next_offset_);
}

void PartitionPipeline::Replay(const kafka::Record& record, absl::Time now) {
  size_t missing = 0;
  const bool wanted = state_.WantsReplay(record.offset, &missing);
  replay_lost_ += missing;
  if (!wanted) return;
  const InputReader* reader = input_;
  kafka::Record source = record;
  if (input_->sources != nullptr) {
    std::optional<int64_t> watermark_us;
    reader = SourceOf(record, &source, &watermark_us);
  }
  EventView view;  // record_offset -1: Replay() refuses it
  if (reader != nullptr && reader->events != nullptr &&
      reader->events->Decode(source.value, JudgedNow(source, now), &event_)
          .ok) {
    view = event_;
    view.record_offset = record.offset;
  }
  if (state_.Replay(view)) {
    ++replayed_;
  } else {
    ++replay_lost_;
  }
  // The records after the last one, up to the restored position, are
  // skipped all the same: they were processed before the checkpoint.
}

int64_t PartitionPipeline::Rebase(int64_t first) {
  if (replay_until_ >= 0) {
    size_t missing = 0;
    state_.WantsReplay(INT64_MAX, &missing);  // drops every reference
    replay_lost_ += missing;
    FinishReplay();
  }
  next_offset_ = first;
  return first;
}

void PartitionPipeline::FinishReplay() {
  replay_until_ = -1;
  replay_lost_ += state_.AbandonReplays();
  if (replay_lost_ > 0) {
    KPI_LOG_ERROR(
        "%s: %d buffered event(s) of the checkpoint could not be read again "
        "from their records (deleted from the topic by retention, or decoded "
        "differently by this config): they are lost; %d were read again",
        name_, static_cast<int64_t>(replay_lost_),
        static_cast<int64_t>(replayed_));
  } else {
    KPI_LOG_DEBUG("%s: %d buffered event(s) read again from their records",
                  name_, static_cast<int64_t>(replayed_));
  }
  replayed_ = replay_lost_ = 0;
}

absl::Time PartitionPipeline::UpstreamWatermark() const {
  // Asked for every partition at every poll: computed again only after a
  // source partition's watermark moved. upstream_ is ordered by (topic,
  // partition), so each topic's partitions are a run of it.
  if (!upstream_changed_) return upstream_watermark_;
  upstream_changed_ = false;
  upstream_watermark_ = absl::InfinitePast();
  // As WatermarkTracker's: the lowest of the active sources, idle ones held
  // back by none (review: a source partition that never had an event, on
  // a thread with no other, stopped every session of the input); when all
  // are idle, the highest.
  absl::Time active_low = absl::InfiniteFuture();
  absl::Time idle_high = absl::InfinitePast();
  bool any = false, any_active = false;
  // The partition count read at the start is a floor: a partition added
  // to the input later holds the watermark back from its first record here
  // on, while it reports (ExpireIdleSources); it was never counted, and its
  // events were judged against the others' watermark until every instance
  // restarted (review).
  for (const auto& [topic, partitions] : ctx_->upstream_sources) {
    int32_t counted = 0;  // of its partitions 0..partitions-1
    for (auto it = upstream_.lower_bound(TopicPartition{topic, 0});
         it != upstream_.end() && it->first.topic == topic; ++it) {
      counted += it->first.partition < partitions;
      any = true;
      if (idle_upstream_.count(it->first) > 0) {
        idle_high = std::max(idle_high, it->second);
      } else {
        any_active = true;
        active_low = std::min(active_low, it->second);
      }
    }
    if (counted < partitions) return upstream_watermark_;  // not all heard
  }
  if (any) upstream_watermark_ = any_active ? active_low : idle_high;
  return upstream_watermark_;
}

absl::Time PartitionPipeline::Process(const kafka::Record& record,
                                      absl::Time now, absl::Time watermark) {
  processed_watermarks_ = false;
  if (replay_until_ >= 0) {
    if (record.offset < replay_until_) {
      Replay(record, now);
      return absl::InfinitePast();
    }
    FinishReplay();
  }
  next_offset_ = record.offset + 1;
  absl::Time event_time = absl::InfinitePast();
  if (input_->sources != nullptr) {
    ProcessForwarded(record, now, watermark, &event_time);
  } else if (input_->ad_cost) {
    Consumed(input_->topic);
    ProcessAdCost(record, now, &event_time);
  } else if (input_->rekey) {
    ForwardEvent(record, now, watermark, &event_time);
  } else {
    Consumed(input_->topic);
    // Judged against the partition's watermark as of this record, not as of
    // the poll batch (`watermark`): whether an event is late, or applied
    // out of order, must not depend on where the polls cut the records
    // (review: it differed after a crash, read again in other batches).
    absl::Time own = watermark;
    if (max_event_time_ != absl::InfinitePast()) {
      own = std::max(own, max_event_time_ - ctx_->max_out_of_orderness);
    }
    ProcessEvent(*input_, record, record.offset, now, own, &event_time);
  }
  if (event_time != absl::InfinitePast()) {
    event_time = Counted(event_time, record, now);
    max_event_time_ = std::max(max_event_time_, event_time);
  }
  return event_time;
}

absl::Time PartitionPipeline::Counted(absl::Time event_time,
                                      const kafka::Record& record,
                                      absl::Time now) const {
  if (!ctx_->event_time_capped_at_clock) return event_time;
  // At most when its record was written (its timestamp), not when it is
  // read: the same records read again after a crash, or behind a backlog,
  // move event time alike, and judge the same events late (an audit: capped
  // at the clock, a fast client's event read again 10 minutes later moved
  // the watermark 9 minutes on, and two events accepted the first time were
  // committed as late). Never more than max_future_skew below the event's
  // own time (record timestamps far behind, or 0, hold event time back no
  // further). A record without a timestamp: the clock. A timestamp ahead
  // of the clock is believed (up to max_future_skew, as the event's time):
  // capped at the clock, a record read again after a crash or behind a
  // backlog judged its partition's next events otherwise than when read
  // live (a review of such a cap); so one record a producer stamps minutes
  // ahead, with an event as far ahead, makes its partition's next events
  // late for that long less the allowed lateness (README, "Event time").
  if (record.timestamp_ms < 0) return std::min(event_time, now);
  const absl::Time written = absl::FromUnixMillis(record.timestamp_ms);
  if (event_time <= written) return event_time;  // most: no arithmetic
  return std::max(written, event_time - ctx_->max_future_skew);
}

void PartitionPipeline::Consumed(absl::string_view topic) {
  ctx_->counters->CountConsumed(topic);
  ctx_->rejections->Consumed(topic);
}

void PartitionPipeline::Reject(const kafka::Record& record,
                               absl::string_view reason,
                               absl::string_view detail,
                               absl::string_view topic) {
  ctx_->counters->CountInvalid(reason);
  ctx_->rejections->Rejected(topic, reason, detail);
  out_->DeadLetter(record, reason, detail);
}

void PartitionPipeline::CountBot(const kafka::Record& record,
                                 absl::string_view topic) {
  ctx_->counters->CountBot();
  out_->DeadLetter(record, "bot", "");
  // A conversion sent by a backend with its HTTP library's user agent
  // (python-requests, curl/, okhttp …: bots by SPEC §9's list) counts in no
  // KPI: said in the input's rejection summary (an audit: every purchase of
  // such a backend went to bots without a word). Other bots are not.
  if (event_.type == EventType::kConversion) {
    // The user agent first: the example is cut at 160 bytes.
    ctx_->rejections->Rejected(
        topic, "bot",
        event_.user_agent.empty()
            ? std::string("conversion, in no KPI: no user agent "
                          "(bots.empty_user_agent: bot)")
            : absl::StrCat("conversion, in no KPI: user agent \"",
                           event_.user_agent, "\""));
  }
}

// A `key: any` input: the record goes on to the repartition topic, keyed by
// its visitor_id, unless it is invalid or a bot (counted and dead-lettered
// here, where it was consumed). Forwarded records are counted as consumed
// where they are processed.
void PartitionPipeline::ForwardEvent(const kafka::Record& record,
                                     absl::Time now, absl::Time watermark,
                                     absl::Time* event_time) {
  // Only the verdict, visitor_id, user agent and time matter here: the
  // record is decoded in full where it is processed.
  DecodeResult decoded = input_->events->DecodeForRouting(
      record.value, JudgedNow(record, now), &event_);
  *event_time = decoded.time;
  if (!decoded.ok) {
    Consumed(input_->topic);
    Reject(record, decoded.reason, decoded.detail, input_->topic);
    return;
  }
  if (input_->bots->IsBot(event_.user_agent)) {
    Consumed(input_->topic);
    CountBot(record, input_->topic);
    return;
  }
  // The partition's watermark as of this record (the thread's `watermark`
  // is as of the poll batch): the destination then judges lateness as
  // closely as a keyed input would be judged here.
  absl::Time own = watermark;
  const absl::Time highest =
      decoded.time == absl::InfinitePast()
          ? max_event_time_
          : std::max(max_event_time_, Counted(decoded.time, record, now));
  if (highest != absl::InfinitePast()) {
    own = std::max(own, highest - ctx_->max_out_of_orderness);
  }
  if (!out_->Repartition(record, event_.visitor_id, own)) {
    Consumed(input_->topic);
    Reject(record, "too_large",
           absl::StrCat("a record of ", record.value.size(),
                        " bytes is too large to re-key through the "
                        "repartition topic (the producer's "
                        "message.max.bytes); key it by visitor_id"),
           input_->topic);
  }
}

// A record of the repartition topic: a source partition's watermarks, or a
// forwarded record, processed as its input would process it.
void PartitionPipeline::ProcessForwarded(const kafka::Record& record,
                                         absl::Time now, absl::Time watermark,
                                         absl::Time* event_time) {
  // When the record was written (its producer's clock): the repartition
  // log's own time, which a source's silence is measured in. None: never
  // silent.
  const absl::Time written = record.timestamp_ms >= 0
                                 ? absl::FromUnixMillis(record.timestamp_ms)
                                 : absl::InfiniteFuture();
  if (record.timestamp_ms >= 0) {
    latest_written_ = std::max(latest_written_, written);
  }
  if (absl::string_view bytes; UpstreamWatermarksOf(record, &bytes)) {
    processed_watermarks_ = true;
    v1::UpstreamWatermarks marks;
    if (!marks.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return;  // not ours to judge: a foreign record in an internal topic
    }
    for (const v1::SourceWatermark& m : marks.sources()) {
      // An idle source with no event yet: no watermark (INT64_MIN).
      const absl::Time at = m.watermark_us() == INT64_MIN
                                ? absl::InfinitePast()
                                : absl::FromUnixMicros(m.watermark_us());
      Heard(m.topic(), m.partition(), at, written, m.idle());
    }
    return;
  }
  kafka::Record source;
  std::optional<int64_t> watermark_us;
  const InputReader* reader = SourceOf(record, &source, &watermark_us);
  if (watermark_us.has_value()) {
    Heard(source.topic, source.partition, absl::FromUnixMicros(*watermark_us),
          written, /*idle=*/false);
  }
  if (reader == nullptr) {
    // Forwarded from an input no longer configured: kept as a dead letter,
    // as its original (key, value, topic, partition, offset: an audit, it
    // carried the repartition record's key and position) where the record
    // says what that was; else as the repartition record it is.
    Consumed(input_->topic);
    Reject(source.topic.empty() ? record : source, "unknown_topic",
           absl::StrCat("forwarded from \"", source.topic,
                        "\", which is not an events input of this config"),
           input_->topic);
    return;
  }
  Consumed(source.topic);
  // Released as of this record, not of the poll batch (as Process() does
  // for a keyed partition): the lowest of the watermarks its sources'
  // records and watermark records before it carried. Judged late against
  // its own source partition's watermark as of its record (what a keyed
  // input's partition judges by), not against that lowest one: whether an
  // event is late depends on its partition's events only, not on how far
  // the other sources' owners had got when it was read (it did: from 3,415
  // to 3,976 of the benchmark's 5,065 late events by run, none on Kafka).
  ProcessEvent(*reader, source, record.offset, now,
               std::max(watermark, UpstreamWatermark()), event_time,
               watermark_us.has_value() ? absl::FromUnixMicros(*watermark_us)
                                        : absl::InfinitePast());
}

const InputReader* PartitionPipeline::SourceOf(
    const kafka::Record& record, kafka::Record* source,
    std::optional<int64_t>* watermark_us) const {
  ParseForwarded(record, source, watermark_us);
  auto it = input_->sources->find(source->topic);
  if (it == input_->sources->end() || it->second.events == nullptr) {
    return nullptr;
  }
  return &it->second;
}

void PartitionPipeline::Heard(absl::string_view topic, int32_t partition,
                              absl::Time at, absl::Time written, bool idle) {
  // Forwarded records come in runs from one source partition: its entry is
  // cached (ExpireIdleSources and Restore reset the cache when they erase).
  if (heard_ == nullptr || partition != heard_tp_.partition ||
      topic != heard_tp_.topic) {
    heard_tp_.topic.assign(topic.data(), topic.size());
    heard_tp_.partition = partition;
    auto [it, inserted] =
        upstream_.try_emplace(heard_tp_, absl::InfinitePast());
    heard_ = &it->second;
    heard_idle_ = idle_upstream_.count(heard_tp_) > 0;
    heard_beyond_ = Beyond(heard_tp_);
    upstream_changed_ |= inserted;
  }
  if (heard_beyond_) beyond_upstream_[heard_tp_] = written;
  // Asked for at every forwarded record: computed again only when it may
  // have moved. An active source above the lowest does not move the lowest
  // (an idle one above it moves it only when every source is idle).
  if (at > *heard_) {
    upstream_changed_ |= *heard_ <= upstream_watermark_ ||
                         upstream_watermark_ == absl::InfinitePast() ||
                         (idle && at > upstream_watermark_);
    *heard_ = at;
  }
  if (idle != heard_idle_) {  // no map lookup per forwarded record
    if (idle) {
      idle_upstream_[heard_tp_] = written;
    } else {
      idle_upstream_.erase(heard_tp_);
    }
    heard_idle_ = idle;
    upstream_changed_ = true;
  } else if (idle) {
    idle_upstream_[heard_tp_] = written;  // a watermark record: said again
  }
}

bool PartitionPipeline::Beyond(const TopicPartition& tp) const {
  for (const auto& [topic, partitions] : ctx_->upstream_sources) {
    if (tp.topic == topic) return tp.partition >= partitions;
  }
  return false;
}

void PartitionPipeline::ExpireIdleSources() {
  if (ctx_->idle_source_silence <= absl::ZeroDuration()) return;
  // A source partition the input did not have at the start reports at
  // every commit of its owner while it has one. Silent for
  // kGoneSourceSilence, it is dropped, and counts again once it reports:
  // held, one of a topic re-created with fewer partitions (its last record
  // read again after a restore, or its watermark restored from the
  // checkpoints) held every session here open for good (review). One
  // restored is timed from the first record read here.
  for (auto it = beyond_upstream_.begin(); it != beyond_upstream_.end();) {
    if (it->second == absl::InfinitePast()) it->second = latest_written_;
    if (it->second == absl::InfinitePast() ||
        latest_written_ - it->second <= kGoneSourceSilence) {
      ++it;
      continue;
    }
    KPI_LOG_WARN(
        "%s: %s[%d], not a partition of its topic at the start, sent "
        "nothing in %s of records written here by others: taken for gone "
        "(a topic re-created with fewer partitions); it counts again once "
        "it reports",
        name_, it->first.topic, it->first.partition,
        absl::FormatDuration(latest_written_ - it->second));
    upstream_.erase(it->first);
    idle_upstream_.erase(it->first);
    if (heard_ != nullptr && it->first == heard_tp_) heard_ = nullptr;
    it = beyond_upstream_.erase(it);
    upstream_changed_ = true;
  }
  if (idle_upstream_.empty()) return;
  // In the log's time, not the reader's: a reader that lags, or stalls,
  // judges each source by what was written meanwhile (review).
  for (auto it = idle_upstream_.begin(); it != idle_upstream_.end();) {
    if (latest_written_ - it->second <= ctx_->idle_source_silence) {
      ++it;
      continue;
    }
    KPI_LOG_INFO(
        "%s: %s[%d] said it was idle, and then nothing in %s of records "
        "written here by others: no one reads it; its watermark holds this "
        "partition back until its next owner reports",
        name_, it->first.topic, it->first.partition,
        absl::FormatDuration(latest_written_ - it->second));
    if (heard_ != nullptr && it->first == heard_tp_) heard_idle_ = false;
    it = idle_upstream_.erase(it);
    upstream_changed_ = true;
  }
}

void PartitionPipeline::ProcessEvent(const InputReader& reader,
                                     const kafka::Record& record,
                                     int64_t offset, absl::Time now,
                                     absl::Time watermark,
                                     absl::Time* event_time,
                                     absl::Time judged_by) {
  DecodeResult decoded =
      reader.events->Decode(record.value, JudgedNow(record, now), &event_);
  // Event time advances with every timestamped record, whatever becomes of
  // it (SPEC §3).
  *event_time = decoded.time;
  if (!decoded.ok) {
    Reject(record, decoded.reason, decoded.detail, reader.topic);
    return;
  }
  if (reader.bots->IsBot(event_.user_agent)) {
    CountBot(record, reader.topic);
    return;
  }
  if (reader.keyed_by_visitor &&
      (!record.has_key || record.key != event_.visitor_id)) {
    Reject(record, "miskeyed",
           absl::StrCat(
               "the record's key is ",
               record.has_key ? absl::StrCat("\"", record.key, "\"")
                              : std::string("null"),
               ", not its visitor_id \"", event_.visitor_id,
               "\": with inputs[].key: visitor_id every record must be keyed "
               "by it (key: any re-keys such input)"),
           reader.topic);
    return;
  }
  EventView view = event_;
  view.record_offset = offset;
  // Not buffered for nothing: a client's ids (up to 1 KB each) would take
  // room in the reorder buffer that sessions in engine mode never read.
  if (!state_.uses_session_ids()) view.session_id = {};
  switch (state_.Offer(view, watermark, judged_by)) {
    case PartitionState::Admit::kAccepted: {
      // Realtime visitors per site label value: sites beyond the label's
      // limit share "(other)" there, as on /metrics.
      const absl::string_view site_label =
          ctx_->counters->CountAccepted(view.site_id, view.type);
      ctx_->active->Observe(site_label, view.visitor_id, now, active_owner_,
                            view.site_id);
      break;
    }
    case PartitionState::Admit::kLate: {
      ctx_->counters->CountLate();
      // What Offer judged by: never behind what the partition released
      // (its frontier), which a restore or an idle partition's return can
      // leave ahead of the watermark given (an audit: "behind the watermark
      // infinite-past" after a restart).
      const absl::Time judged =
          std::max({watermark, judged_by, state_.frontier()});
      // Within the allowed lateness an event is late only when its
      // visitor's open session cannot take it: before the session's start
      // as its new first event, or inside it where a split that can no
      // longer be made would have ended it (README, "Event time").
      const std::string detail =
          view.time < judged - state_.allowed_lateness()
              ? absl::StrCat("event time ", TimeText(view.time),
                             " is behind the watermark ", TimeText(judged),
                             " by more than the allowed lateness (",
                             absl::FormatDuration(state_.allowed_lateness()),
                             ")")
              : absl::StrCat("event time ", TimeText(view.time),
                             " is behind the watermark ", TimeText(judged),
                             " and its visitor's open session cannot take "
                             "it (before it: the inactivity timeout, a split "
                             "or the maximum length; inside it: a campaign "
                             "or client session split)");
      // In the input's rejection summary too: dead-lettered, in no KPI (an
      // audit: 8,892 late events of a partition left idle were in the
      // run's final summary only).
      ctx_->rejections->Rejected(reader.topic, "late", detail);
      out_->DeadLetter(record, "late", detail);
      break;
    }
    case PartitionState::Admit::kDuplicate:
      ctx_->counters->CountDuplicate();
      out_->DeadLetter(
          record, "duplicate",
          absl::StrCat("event_id \"", view.event_id, "\" was seen before"));
      break;
  }
}

// Ad spend for ROAS: attributed to the channel its utm parameters imply.
void PartitionPipeline::ProcessAdCost(const kafka::Record& record,
                                      absl::Time now, absl::Time* event_time) {
  DecodeResult decoded = input_->costs->Decode(record.value, &ad_cost_);
  if (!decoded.ok) {
    Reject(record, decoded.reason, decoded.detail, input_->topic);
    return;
  }
  const absl::string_view channel =
      ctx_->channels->Classify({ad_cost_.utm_source(), ad_cost_.utm_medium(),
                                ad_cost_.utm_campaign(), "", "", ""});
  ctx_->counters->CountAdCost(ad_cost_.site_id(), channel,
                              ad_cost_.utm_campaign(), ad_cost_.currency(),
                              ad_cost_.cost_micros());
  const absl::Time at = AdCostDecoder::SpendTime(ad_cost_);
  // An interval's spend is spread over it (a daily export's day, a week's,
  // a month's); a longer one, dated at its start as before.
  absl::Time until = absl::InfinitePast();
  if (ad_cost_.has_date_start() && ad_cost_.has_date_end() &&
      AdCostDecoder::SpendEnd(ad_cost_) - at <= kMaxSpreadSpend) {
    until = AdCostDecoder::SpendEnd(ad_cost_);
  }
  // Spend dated beyond the allowed skew into the future would sit in target
  // state until then: counted (above), not attributed to targets. An
  // interval may start up to 14 h ahead of the clock: a plain day is its
  // midnight UTC, and an account's "today so far" row, sent from a zone east
  // of UTC (up to UTC+14), starts that far ahead (an audit: a Tokyo
  // account's rows of its first 9 hours a day were left out of ROAS).
  constexpr absl::Duration kFurthestZoneAhead = absl::Hours(14);
  const absl::Duration skew =
      until > at ? std::max(ctx_->max_future_skew, kFurthestZoneAhead)
                 : ctx_->max_future_skew;
  if (at > JudgedNow(record, now) + skew) return;
  state_.OnAdCost(ad_cost_.site_id(), channel, ad_cost_.currency(),
                  ad_cost_.cost_micros(), at, until);
}

void PartitionPipeline::Advance(absl::Time watermark) {
  state_.Advance(watermark);
}

void PartitionPipeline::EmitWindows(absl::Time frontier) {
  state_.CollectWindows(frontier,
                        [&](const WindowKpis& w) { out_->Window(w, name_); });
}

void PartitionPipeline::Checkpoint(bool force_full, absl::Time last_event_at) {
  const bool local = ctx_->local_store != nullptr;
  for (ChangelogRecord& r :
       writer_.Write(state_, next_offset_, max_event_time_, force_full,
                     upstream_, last_event_at)) {
    out_->Changelog(tp_, r);  // the producer copies it
    if (local) unmirrored_.push_back(std::move(r));
  }
  if (!local) return;
  std::vector<ChangelogRecord> days;
  visitor_days_->ChangelogRecords(&days);
  order_days_->ChangelogRecords(&days);
  for (const ChangelogRecord& r : days) out_->Changelog(tp_, r);
}

absl::Status PartitionPipeline::StoreError() const {
  if (ctx_->local_store == nullptr) return absl::OkStatus();
  if (!visitor_days_->error().ok()) return visitor_days_->error();
  return order_days_->error();
}

void PartitionPipeline::Committed(LocalStore::Batch* batch) {
  if (ctx_->local_store == nullptr) return;
  for (const ChangelogRecord& r : unmirrored_) {
    batch->Mirror(tp_, r.key, r.value);
  }
  unmirrored_.clear();
  visitor_days_->Committed(batch);
  order_days_->Committed(batch);
}

void PartitionPipeline::OnSessionStarted(const SessionAttributes& session,
                                         const EventView& first) {
  ctx_->counters->OnSessionStarted(session, first);
}

void PartitionPipeline::OnEvent(const SessionAttributes& session,
                                const EventView& event) {
  ctx_->counters->OnEvent(session, event);
}

void PartitionPipeline::OnSessionClosed(const ClosedSession& session) {
  ctx_->counters->OnSessionClosed(session);
  out_->Session(session);
}

}  // namespace kpistream
