#include "engine/partition_pipeline.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace kpistream {

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
      writer_(tp_) {}

PartitionPipeline::~PartitionPipeline() = default;

absl::StatusOr<int64_t> PartitionPipeline::Restore(
    const CheckpointReader& reader) {
  auto position = reader.RestoreInto(tp_, &state_);
  if (!position.ok()) return position.status();
  next_offset_ = position->next_offset;
  max_event_time_ = position->max_event_time;
  writer_.Resume(*std::move(position));
  return next_offset_;
}

absl::Time PartitionPipeline::Process(const kafka::Record& record,
                                      absl::Time now, absl::Time watermark) {
  next_offset_ = record.offset + 1;
  ctx_->counters->CountConsumed(input_->topic);
  ctx_->rejections->Consumed(input_->topic);
  absl::Time event_time = absl::InfinitePast();
  if (input_->ad_cost) {
    ProcessAdCost(record, now, &event_time);
  } else {
    ProcessEvent(record, now, watermark, &event_time);
  }
  if (event_time != absl::InfinitePast()) {
    max_event_time_ = std::max(max_event_time_, event_time);
  }
  return event_time;
}

void PartitionPipeline::Reject(const kafka::Record& record,
                               absl::string_view reason,
                               absl::string_view detail) {
  ctx_->counters->CountInvalid(reason);
  ctx_->rejections->Rejected(input_->topic, reason, detail);
  out_->DeadLetter(record, reason, detail);
}

void PartitionPipeline::ProcessEvent(const kafka::Record& record,
                                     absl::Time now, absl::Time watermark,
                                     absl::Time* event_time) {
  DecodeResult decoded = input_->events->Decode(record.value, now, &event_);
  // Event time advances with every timestamped record, whatever becomes of
  // it (SPEC §3).
  *event_time = decoded.time;
  if (!decoded.ok) {
    Reject(record, decoded.reason, decoded.detail);
    return;
  }
  if (input_->bots->IsBot(event_.user_agent)) {
    ctx_->counters->CountBot();
    out_->DeadLetter(record, "bot", "");
    return;
  }
  const EventView view = event_.view();
  switch (state_.Offer(view, watermark)) {
    case PartitionState::Admit::kAccepted:
      ctx_->counters->CountAccepted(view.site_id, view.type);
      ctx_->active->Observe(view.site_id, view.visitor_id, now);
      break;
    case PartitionState::Admit::kLate:
      ctx_->counters->CountLate();
      out_->DeadLetter(record, "late",
                       absl::StrCat("event time ", absl::FormatTime(view.time),
                                    " is behind the watermark ",
                                    absl::FormatTime(watermark),
                                    " by more than the allowed lateness"));
      break;
    case PartitionState::Admit::kDuplicate:
      ctx_->counters->CountDuplicate();
      out_->DeadLetter(record, "duplicate",
                       absl::StrCat("event_id \"", view.event_id,
                                    "\" was seen before"));
      break;
  }
}

// Ad spend for ROAS: attributed to the channel its utm parameters imply.
void PartitionPipeline::ProcessAdCost(const kafka::Record& record,
                                      absl::Time now,
                                      absl::Time* event_time) {
  DecodeResult decoded = input_->costs->Decode(record.value, &ad_cost_);
  if (!decoded.ok) {
    Reject(record, decoded.reason, decoded.detail);
    return;
  }
  const absl::string_view channel = ctx_->channels->Classify(
      {ad_cost_.utm_source(), ad_cost_.utm_medium(), ad_cost_.utm_campaign(),
       "", "", ""});
  ctx_->counters->CountAdCost(ad_cost_.site_id(), channel,
                              ad_cost_.utm_campaign(), ad_cost_.currency(),
                              ad_cost_.cost_micros());
  const google::protobuf::Timestamp& ts =
      ad_cost_.has_date_start() ? ad_cost_.date_start() : ad_cost_.time();
  const absl::Time at =
      absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  // Spend dated beyond the allowed skew into the future would sit in target
  // state until then: counted (above), not attributed to targets.
  if (at > now + ctx_->max_future_skew) return;
  state_.OnAdCost(ad_cost_.site_id(), channel, ad_cost_.currency(),
                  ad_cost_.cost_micros(), at);
}

void PartitionPipeline::Advance(absl::Time watermark) {
  state_.Advance(watermark);
}

void PartitionPipeline::EmitWindows(absl::Time frontier) {
  for (const WindowKpis& w : state_.CollectWindows(frontier)) {
    out_->Window(w, name_);
  }
}

void PartitionPipeline::Checkpoint(bool force_full) {
  for (ChangelogRecord& r :
       writer_.Write(state_, next_offset_, max_event_time_, force_full)) {
    out_->Changelog(tp_, std::move(r));
  }
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
