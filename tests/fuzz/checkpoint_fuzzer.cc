// Fuzz target: the state changelog decoder (engine/checkpoint_log.h
// CheckpointReader, aggregate/partition_state.h Restore), and the state it
// restores. The input (checkpoint_setup.h) is changelog records — keys
// built from its bytes or raw, values raw bytes or PartitionCheckpoints with
// fuzzed fields — and a script. Asserts:
//  - RestoreInto() either restores partition 0's state or says why not
//    (DataLoss with a message), whatever the records;
//  - a restored state can be driven as the engine drives it: events offered
//    (as EventDecoder accepts them) against a watermark that only moves on,
//    Advance, KPI windows, target sums, ad cost, counters and their
//    snapshot, checkpoints through a CheckpointWriter resumed where the
//    restore left off; nothing crashes, hangs or is undefined;
//  - what the writer wrote continues the changelog: a second state restored
//    from the fuzzed records and the new ones holds the same open sessions
//    and buffered events, the same target sums, and when both are drained
//    closes the same sessions and finishes the same KPI windows.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/partition_state.h"
#include "engine/checkpoint_log.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/checkpoint_setup.h"
#include "tests/fuzz/fuzz_check.h"

namespace kpistream {
namespace {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  uint8_t U8() { return empty() ? 0 : *p_++; }
  uint16_t U16() {
    const uint16_t lo = U8();
    return static_cast<uint16_t>(lo | (U8() << 8));
  }
  std::string Bytes(size_t n) {
    n = std::min(n, static_cast<size_t>(end_ - p_));
    std::string out(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return out;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Sets one field of `c` (checkpoint_setup.h, Tweak).
void ApplyTweak(uint8_t field, uint8_t index, uint64_t bits,
                v1::PartitionCheckpoint* c) {
  const int64_t v = static_cast<int64_t>(bits);
  auto at = [&](auto* repeated) -> decltype(repeated->Mutable(0)) {
    if (repeated->empty()) return nullptr;
    return repeated->Mutable(index % repeated->size());
  };
  switch (field % fuzz::kTweakFields) {
    case fuzz::kFrontier:
      c->set_frontier_us(v);
      break;
    case fuzz::kMaxEventTime:
      c->set_max_event_time_us(v);
      break;
    case fuzz::kNextOffset:
      c->set_next_offset(v);
      break;
    case fuzz::kVisitorsNewestDay:
      c->set_visitors_newest_day(static_cast<int32_t>(v));
      break;
    case fuzz::kOrdersNewestDay:
      c->set_orders_newest_day(static_cast<int32_t>(v));
      break;
    case fuzz::kSessionFirst:
      if (auto* s = at(c->mutable_sessions())) s->set_first_us(v);
      break;
    case fuzz::kSessionLast:
      if (auto* s = at(c->mutable_sessions())) s->set_last_us(v);
      break;
    case fuzz::kSessionPageviews:
      if (auto* s = at(c->mutable_sessions())) {
        s->set_pageviews(static_cast<uint32_t>(v));
      }
      break;
    case fuzz::kSessionEvents:
      if (auto* s = at(c->mutable_sessions())) {
        s->set_events(static_cast<uint32_t>(v));
      }
      break;
    case fuzz::kSessionFunnelSteps:
      if (auto* s = at(c->mutable_sessions())) {
        std::string steps;
        for (int i = 0; i < index % 9; ++i) {
          steps.push_back(static_cast<char>(bits >> (8 * i)));
        }
        s->set_funnel_steps(steps);
      }
      break;
    case fuzz::kSessionRevenue:
      if (auto* s = at(c->mutable_sessions())) {
        v1::Revenue* r =
            s->revenue().empty() ? s->add_revenue() : s->mutable_revenue(0);
        if (r->currency().empty()) r->set_currency("EUR");
        r->set_value_micros(v);
        r->set_orders(static_cast<uint32_t>(bits >> 32));
      }
      break;
    case fuzz::kSessionConversions:
      if (auto* s = at(c->mutable_sessions())) {
        v1::GoalCount* g = s->conversions().empty() ? s->add_conversions()
                                                    : s->mutable_conversions(0);
        if (g->goal().empty()) g->set_goal("purchase");
        g->set_conversions(static_cast<uint32_t>(v));
      }
      break;
    case fuzz::kBufferedTime:
      if (auto* b = at(c->mutable_buffered())) b->set_time_us(v);
      break;
    case fuzz::kBufferedType:
      if (auto* b = at(c->mutable_buffered())) {
        b->set_type(static_cast<uint32_t>(v));
      }
      break;
    case fuzz::kBufferedValue:
      if (auto* b = at(c->mutable_buffered())) b->set_value_micros(v);
      break;
    case fuzz::kDedupMinute:
    case fuzz::kVisitorDay:
    case fuzz::kOrderDay: {
      v1::FingerprintMap* m = field % fuzz::kTweakFields == fuzz::kDedupMinute
                                  ? c->mutable_dedup()
                              : field % fuzz::kTweakFields == fuzz::kVisitorDay
                                  ? c->mutable_visitors()
                                  : c->mutable_orders();
      if (m->values().empty()) {
        m->add_keys(bits * 0x9E3779B97F4A7C15ull);
        m->add_values(static_cast<int32_t>(v));
      } else {
        m->set_values(index % m->values_size(), static_cast<int32_t>(v));
      }
      break;
    }
    case fuzz::kWindowStart:
      if (auto* w = at(c->mutable_windows())) w->mutable_key()->set_start_s(v);
      break;
    case fuzz::kWindowOpen:
      if (auto* w = at(c->mutable_windows())) w->set_open(v);
      break;
    case fuzz::kWindowSessions:
      if (auto* w = at(c->mutable_windows())) w->set_sessions(bits);
      break;
    case fuzz::kTargetBucket:
      if (auto* t = at(c->mutable_targets())) t->set_bucket(v);
      break;
    case fuzz::kTargetNumerator:
      if (auto* t = at(c->mutable_targets())) {
        double d;
        std::memcpy(&d, &bits, sizeof(d));
        t->set_numerator(d);
      }
      break;
    case fuzz::kTargetSample:
      if (auto* t = at(c->mutable_targets())) t->set_sample(v);
      break;
  }
}

std::string Describe(const ClosedSession& s) {
  std::string out = absl::StrCat(
      s.site_id, "|", s.visitor_id, "|", s.user_id, "|",
      absl::FormatTime(s.start), "|", absl::FormatTime(s.end), "|", s.pageviews,
      "|", s.events, "|", s.engaged, s.bounced, s.single_page, s.new_visitor,
      "|", s.channel, "|", s.source, "|", s.medium, "|", s.campaign, "|",
      s.landing_page, "|", s.exit_page, "|", s.device_category, "|", s.country,
      "|", s.orders);
  for (const auto& [goal, n] : s.conversions)
    absl::StrAppend(&out, "|", goal, n);
  for (const auto& [c, m] : s.revenue) absl::StrAppend(&out, "|", c, m);
  for (const auto& [c, n] : s.orders_by_currency) {
    absl::StrAppend(&out, "|", c, n);
  }
  for (uint8_t step : s.funnel_steps) absl::StrAppend(&out, "|f", step);
  return out;
}

std::string Describe(const WindowKpis& w) {
  std::string out = absl::StrCat(
      w.site, "|", w.channel, "|", absl::FormatTime(w.start), "|", w.final, "|",
      w.sessions, "|", w.sessions_closed, "|", w.engaged, "|", w.bounced, "|",
      w.pageviews, "|", w.orders, "|", w.duration_micros_sum);
  for (const auto& [goal, n] : w.conversions)
    absl::StrAppend(&out, "|", goal, n);
  for (const auto& [c, m] : w.revenue) absl::StrAppend(&out, "|", c, m);
  return out;
}

// The pipeline's observer: counts, and keeps what closed.
class Recorder : public SessionObserver {
 public:
  Recorder() : counters_(fuzz::CounterOptions()) {}
  void OnSessionStarted(const SessionAttributes& s,
                        const EventView& first) override {
    counters_.OnSessionStarted(s, first);
  }
  void OnEvent(const SessionAttributes& s, const EventView& e) override {
    counters_.OnEvent(s, e);
  }
  void OnSessionClosed(const ClosedSession& s) override {
    counters_.OnSessionClosed(s);
    closed_.push_back(Describe(s));
  }
  KpiCounters& counters() { return counters_; }
  std::vector<std::string>& closed() { return closed_; }

 private:
  KpiCounters counters_;
  std::vector<std::string> closed_;
};

// Event times as EventDecoder accepts them at processing time fuzz::kNow.
absl::Time ClampToAcceptedTime(absl::Time t) {
  return std::clamp(t, absl::FromUnixSeconds(kMinEventTimeSeconds),
                    fuzz::kNow + fuzz::kSkew);
}

std::vector<std::string> FinalWindows(PartitionState& state) {
  std::vector<std::string> out;
  for (const WindowKpis& w : state.CollectWindows(absl::InfiniteFuture())) {
    if (w.final) out.push_back(Describe(w));
  }
  return out;
}

std::string Sums(PartitionState& state, absl::Time now) {
  std::vector<TargetSums> sums;
  state.AddTargetSums(now, &sums);
  std::string out;
  for (const TargetSums& s : sums) {
    absl::StrAppend(&out, s.numerator, "/", s.denominator, "/", s.sample, "/",
                    s.matched, " ");
  }
  return out;
}

void Run(const uint8_t* data, size_t size) {
  Input in(data, size);
  std::vector<ChangelogRecord> changelog;
  CheckpointReader reader;
  while (!in.empty()) {
    const uint8_t op = in.U8();
    if (op & fuzz::kEndOfRecords) break;
    std::string key;
    if (op & fuzz::kRawKey) {
      key = in.Bytes(in.U8());
    } else {
      const TopicPartition tp{fuzz::kPartition.topic,
                              in.U8() % fuzz::kPartitions};
      const uint8_t seq = in.U8();
      key = CheckpointKey(tp, seq, in.U8());
    }
    std::string value = in.Bytes(in.U16());
    if (op & fuzz::kStructured) {
      v1::PartitionCheckpoint c;
      if (!c.ParseFromString(value)) c.Clear();
      TopicPartition tp;
      uint64_t seq = 0;
      uint32_t chunk = 0;
      if (ParseCheckpointKey(key, &tp, &seq, &chunk)) {
        c.set_seq(seq);
        c.set_chunk(chunk);
      }
      c.set_full(op & fuzz::kFull);
      c.set_last(op & fuzz::kLast);
      c.set_without_transaction(op & fuzz::kWithoutTransaction);
      for (int n = in.U8(); n > 0 && !in.empty(); --n) {
        const uint8_t field = in.U8();
        const uint8_t index = in.U8();
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits |= uint64_t{in.U8()} << (8 * i);
        ApplyTweak(field, index, bits, &c);
      }
      value = c.SerializeAsString();
    }
    const bool tombstone = op & fuzz::kTombstone;
    reader.Add(key, value, tombstone);
    changelog.push_back(
        {key, tombstone ? std::nullopt : std::optional<std::string>(value)});
  }

  static const auto* channels = new ChannelClassifier();
  const PartitionState::Options options = fuzz::StateOptions();
  Recorder recorder;
  PartitionState state(options, &recorder, channels);
  const absl::StatusOr<CheckpointPosition> position =
      reader.RestoreInto(fuzz::kPartition, &state);
  if (!position.ok()) {
    KPISTREAM_FUZZ_CHECK(absl::IsDataLoss(position.status()) &&
                             !position.status().message().empty(),
                         position.status().ToString());
    return;
  }

  // Drive it as a PartitionPipeline would.
  CheckpointWriter writer(fuzz::kPartition, /*chunk_bytes=*/4096,
                          /*min_full_interval_bytes=*/8192);
  writer.Resume(*position);
  absl::Time max_event_time =
      ClampToAcceptedTime(position->max_event_time) == position->max_event_time
          ? position->max_event_time
          : fuzz::kStart;
  absl::Time watermark = state.frontier();
  int64_t offset = std::max<int64_t>(position->next_offset, 0);
  std::vector<ChangelogRecord> written;
  // Bounded, so that one input takes milliseconds (a snapshot of the
  // counters costs what the engine spends on it every 200 ms, not per event).
  int steps = 0;
  int snapshots = 0;
  while (!in.empty() && ++steps <= fuzz::kMaxScriptSteps) {
    const uint8_t step = in.U8() % fuzz::kScriptSteps;
    switch (step) {
      case fuzz::kOfferPageView:
      case fuzz::kOfferEngagement:
      case fuzz::kOfferConversion:
      case fuzz::kOfferCustom: {
        fuzz::EventSpec spec;
        spec.who = in.U8();
        spec.delta = static_cast<int8_t>(in.U8());
        spec.what = in.U8();
        spec.extra = in.U8();
        const absl::Time time =
            ClampToAcceptedTime(max_event_time + spec.delta * absl::Seconds(7));
        const Event e =
            fuzz::MakeEvent(static_cast<EventType>(step + 1), spec, time);
        if (state.Offer(e, watermark) == PartitionState::Admit::kAccepted) {
          recorder.counters().CountAccepted(e.site_id, e.type);
        }
        max_event_time = std::max(max_event_time, time);
        ++offset;
        break;
      }
      case fuzz::kAdvance: {
        const absl::Time candidate =
            max_event_time - in.U8() * absl::Seconds(10);
        watermark = std::max(watermark, candidate);
        state.Advance(watermark);
        break;
      }
      case fuzz::kCheckpoint: {
        const bool full = in.U8() & 1;
        for (ChangelogRecord& r :
             writer.Write(state, offset, max_event_time, full)) {
          written.push_back(std::move(r));
        }
        recorder.counters().Commit();
        break;
      }
      case fuzz::kCollect: {
        state.CollectWindows(watermark - options.allowed_lateness);
        std::vector<TargetSums> sums;
        state.AddTargetSums(watermark, &sums);
        KPISTREAM_FUZZ_CHECK(sums.size() == fuzz::Targets().size(), "sums");
        for (size_t i = 0; i < sums.size(); ++i) {
          EvaluateTarget(fuzz::Targets()[i], sums[i], watermark);
        }
        recorder.counters().Commit();
        if (++snapshots <= 4) recorder.counters().Snapshot();
        state.ApproximateBytes();
        break;
      }
      case fuzz::kAdCost:
        state.OnAdCost("shop", "Paid Search", "EUR",
                       (1 + in.U8()) * int64_t{100000}, max_event_time);
        break;
    }
  }
  for (ChangelogRecord& r : writer.Write(state, offset, max_event_time)) {
    written.push_back(std::move(r));
  }

  // The changelog as it now stands restores the same state.
  CheckpointReader again;
  for (const std::vector<ChangelogRecord>* log : {&changelog, &written}) {
    for (const ChangelogRecord& r : *log) {
      again.Add(r.key, r.value.value_or(""), !r.value.has_value());
    }
  }
  Recorder recorder2;
  PartitionState restored(options, &recorder2, channels);
  const absl::StatusOr<CheckpointPosition> position2 =
      again.RestoreInto(fuzz::kPartition, &restored);
  KPISTREAM_FUZZ_CHECK(position2.ok(),
                       absl::StrCat("the changelog continued by the writer "
                                    "does not restore: ",
                                    position2.status().ToString()));
  KPISTREAM_FUZZ_CHECK(
      position2->next_offset == writer.position().next_offset &&
          position2->next_seq == writer.position().next_seq,
      "restored position");
  KPISTREAM_FUZZ_CHECK(
      restored.open_sessions() == state.open_sessions(),
      absl::StrCat("open sessions: ", state.open_sessions(), " written, ",
                   restored.open_sessions(), " restored"));
  KPISTREAM_FUZZ_CHECK(
      restored.buffered_events() == state.buffered_events(),
      absl::StrCat("buffered events: ", state.buffered_events(), " written, ",
                   restored.buffered_events(), " restored"));
  const std::string sums = Sums(state, watermark);
  const std::string sums2 = Sums(restored, watermark);
  KPISTREAM_FUZZ_CHECK(
      sums == sums2,
      absl::StrCat("target sums: written ", sums, "\n  restored ", sums2));
  recorder.closed().clear();
  state.Drain();
  restored.Drain();
  KPISTREAM_FUZZ_CHECK(
      recorder.closed() == recorder2.closed(),
      absl::StrCat("closed sessions differ:\n  written:  ",
                   absl::StrJoin(recorder.closed(), "\n            "),
                   "\n  restored: ",
                   absl::StrJoin(recorder2.closed(), "\n            ")));
  const std::vector<std::string> windows = FinalWindows(state);
  const std::vector<std::string> windows2 = FinalWindows(restored);
  KPISTREAM_FUZZ_CHECK(
      windows == windows2,
      absl::StrCat("final windows differ:\n  written:  ",
                   absl::StrJoin(windows, "\n            "), "\n  restored: ",
                   absl::StrJoin(windows2, "\n            ")));
  recorder.counters().Commit();
  recorder.counters().Snapshot();
  recorder2.counters().Commit();
  recorder2.counters().Snapshot();
}

}  // namespace
}  // namespace kpistream

KPISTREAM_FUZZ_QUIET_PROTOBUF()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kpistream::Run(data, size);
  return 0;
}
