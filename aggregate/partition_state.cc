#include "aggregate/partition_state.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace kpistream {
namespace {

int64_t MicrosOrZero(absl::Time t) {
  return t == absl::InfinitePast() ? INT64_MIN : absl::ToUnixMicros(t);
}

absl::Time TimeOf(int64_t us) {
  return us == INT64_MIN ? absl::InfinitePast() : absl::FromUnixMicros(us);
}

// The frontier is a watermark: an event time less a configured lag (at most
// 100 years, config/config.h); this allows ten times that.
bool IsFrontierInRange(int64_t us) {
  constexpr int64_t kMargin = int64_t{1000} * 366 * 86400 * 1000000;
  return us >= kMinEventTimeSeconds * 1000000 - kMargin &&
         us < (kMaxEventTimeSeconds + 1) * 1000000;
}

// Whether the times and days in `c` are ones the engine can have written:
// event times in range and days of them, a frontier that lags them. Anything
// else is a corrupt checkpoint, and restoring it would overflow the state's
// int64 arithmetic on times and days (counts and money saturate instead:
// aggregate/saturating.h).
absl::Status CheckRanges(const v1::PartitionCheckpoint& c) {
  auto corrupt = [](absl::string_view what, const auto&... more) {
    return absl::DataLossError(absl::StrCat(what, more..., " is out of range"));
  };
  for (const v1::SessionState& s : c.sessions()) {
    if (!IsEventTimeInRange(s.first_us()) || !IsEventTimeInRange(s.last_us())) {
      return corrupt("the time of an open session (", s.first_us(), "..",
                     s.last_us(), " us)");
    }
  }
  for (const v1::BufferedEvent& b : c.buffered()) {
    if (!IsEventTimeInRange(b.time_us())) {
      return corrupt("the time of a buffered event (", b.time_us(), " us)");
    }
  }
  const v1::BufferedRefs& refs = c.buffered_refs();
  if (refs.offsets_size() != refs.time_us_size()) {
    return absl::DataLossError(
        absl::StrCat("buffered event references with ", refs.offsets_size(),
                     " offsets and ", refs.time_us_size(), " times"));
  }
  for (int i = 0; i < refs.offsets_size(); ++i) {
    if (refs.offsets(i) < 0) {
      return corrupt("the offset of a buffered event (", refs.offsets(i), ")");
    }
    if (!IsEventTimeInRange(refs.time_us(i))) {
      return corrupt("the time of a buffered event (", refs.time_us(i), " us)");
    }
  }
  // 0 and INT64_MIN: no frontier (yet).
  if (c.frontier_us() != 0 && c.frontier_us() != INT64_MIN &&
      !IsFrontierInRange(c.frontier_us())) {
    return corrupt("the frontier (", c.frontier_us(), " us)");
  }
  if (c.closed_up_to_us() != 0 && c.closed_up_to_us() != INT64_MIN &&
      !IsFrontierInRange(c.closed_up_to_us())) {
    return corrupt("the time sessions are closed up to (", c.closed_up_to_us(),
                   " us)");
  }
  // 0 and INT32_MIN: no newest day (yet).
  for (const int32_t day : {c.visitors_newest_day(), c.orders_newest_day()}) {
    if (day != 0 && day != INT32_MIN && !IsDayInRange(day)) {
      return corrupt("the newest day ", day);
    }
  }
  for (const v1::FingerprintMap* days : {&c.visitors(), &c.orders()}) {
    for (const int32_t day : days->values()) {
      if (!IsDayInRange(day)) return corrupt("the day ", day);
    }
  }
  return absl::OkStatus();
}

}  // namespace

// Fans the sessionizer's reports out to the caller's observer, the KPI
// windows and the targets.
class PartitionState::Fanout : public SessionObserver {
 public:
  Fanout(SessionObserver* outer, KpiWindows* windows)
      : outer_(outer), windows_(windows) {}
  void set_targets(TargetTracker* targets) { targets_ = targets; }

  void OnSessionStarted(const SessionAttributes& s,
                        const EventView& first) override {
    outer_->OnSessionStarted(s, first);
    windows_->OnSessionStarted(s, first);
  }
  void OnEvent(const SessionAttributes& s, const EventView& e) override {
    outer_->OnEvent(s, e);
  }
  void OnSessionStartMoved(const SessionAttributes& before,
                           absl::Time before_start,
                           const SessionAttributes& after,
                           const EventView& first) override {
    outer_->OnSessionStartMoved(before, before_start, after, first);
    windows_->OnSessionStartMoved(before, before_start, after, first);
  }
  void OnSessionClosed(const ClosedSession& s) override {
    outer_->OnSessionClosed(s);
    windows_->OnSessionClosed(s);
    if (targets_ != nullptr) targets_->OnSessionClosed(s);
  }

 private:
  SessionObserver* outer_;
  KpiWindows* windows_;
  TargetTracker* targets_ = nullptr;
};

PartitionState::PartitionState(Options options, SessionObserver* observer,
                               const SessionAttribution* attribution)
    : options_(std::move(options)),
      fanout_(std::make_unique<Fanout>(observer, &windows_)),
      windows_(options_.kpi_window),
      targets_(options_.targets != nullptr && !options_.targets->empty()
                   ? std::make_unique<TargetTracker>(
                         options_.targets, options_.rules.inactivity_timeout,
                         options_.site_label)
                   : nullptr),
      sessionizer_(options_.rules, fanout_.get(), attribution),
      dedup_(options_.dedup_horizon, options_.allowed_lateness) {
  fanout_->set_targets(targets_.get());
}

PartitionState::~PartitionState() = default;

PartitionState::Admit PartitionState::Offer(const EventView& event,
                                            absl::Time watermark,
                                            absl::Time judged_by) {
  // Never behind what was released already: an event buffered behind the
  // frontier would be released after newer ones, or dropped by a restore
  // (the watermark a caller gives can fall back: a re-keyed partition's
  // sources as of a record, when an idle one comes back).
  watermark = std::max(watermark, frontier_);
  judged_by = std::max(judged_by, watermark);
  if ((judged_by != absl::InfinitePast() &&
       event.time < judged_by - options_.allowed_lateness) ||
      event.time < closed_up_to_) {
    return Admit::kLate;
  }
  if (dedup_.SeenBefore(event.site_id, event.visitor_id, event.event_id,
                        event.time)) {
    return Admit::kDuplicate;
  }
  if (watermark != absl::InfinitePast() && event.time < watermark) {
    if (pending_replays() > 0) {
      // Nothing is released before the buffered events read again are back
      // (the engine reads them before any new record, so this is for
      // callers that do not): one the frontier has not passed waits with
      // them, an older one goes on as below, without the release.
      if (event.time >= frontier_) {
        buffer_.Push(event);
        return Admit::kAccepted;
      }
      return sessionizer_.Add(event) == Sessionizer::AddResult::kApplied
                 ? Admit::kAccepted
                 : Admit::kLate;
    }
    // Behind the watermark but within the allowed lateness. Everything
    // buffered before the watermark goes first, so that the sessionizer
    // still sees buffered events in order after this one.
    Release(watermark);
    return sessionizer_.Add(event) == Sessionizer::AddResult::kApplied
               ? Admit::kAccepted
               : Admit::kLate;
  }
  buffer_.Push(event);
  return Admit::kAccepted;
}

size_t PartitionState::Advance(absl::Time watermark) {
  // Buffered events still to be read again would be released out of order.
  if (watermark == absl::InfinitePast() || pending_replays() > 0) return 0;
  Release(watermark);
  dedup_.Expire(watermark);
  const absl::Time close = watermark - options_.allowed_lateness;
  if (close != absl::InfiniteFuture()) {
    closed_up_to_ = std::max(closed_up_to_, close);
  }
  return sessionizer_.CloseUpTo(close);
}

void PartitionState::Release(absl::Time watermark) {
  // Released events are in order and no later than any event applied
  // directly (see Offer), so the sessionizer never refuses them.
  buffer_.ReleaseBefore(watermark, [this](absl::Span<const EventView> events) {
    sessionizer_.AddAll(events);
  });
  frontier_ = std::max(frontier_, watermark);
}

size_t PartitionState::Drain() {
  buffer_.ReleaseAll([this](absl::Span<const EventView> events) {
    sessionizer_.AddAll(events);
  });
  return sessionizer_.CloseAll();
}

std::vector<WindowKpis> PartitionState::CollectWindows(absl::Time frontier) {
  return windows_.Collect(frontier);
}

void PartitionState::CollectWindows(
    absl::Time frontier, absl::FunctionRef<void(const WindowKpis&)> emit) {
  windows_.Collect(frontier, emit);
}

void PartitionState::OnAdCost(absl::string_view site, absl::string_view channel,
                              absl::string_view currency, int64_t micros,
                              absl::Time time, absl::Time until) {
  if (targets_ != nullptr) {
    targets_->OnAdCost(site, channel, currency, micros, time, until);
  }
}

void PartitionState::AddTargetSums(absl::Time now,
                                   std::vector<TargetSums>* sums) {
  if (targets_ == nullptr) return;
  // A rolling window ends where sessions are closed (Advance closes them
  // up to the watermark minus the allowed lateness): ending at the
  // watermark left its newest allowed_lateness empty of sessions, a window
  // of W minus the lateness (a 1 h window 8 % short at the 5 min default).
  // A period's total needs no clock.
  targets_->AddTo(
      now == absl::InfinitePast() ? now : now - options_.allowed_lateness,
      sums);
}

size_t PartitionState::ApproximateBytes() const {
  return sessionizer_.ApproximateBytes() + buffer_.ApproximateBytes() +
         dedup_.ApproximateBytes() + windows_.ApproximateBytes() +
         (targets_ != nullptr ? targets_->ApproximateBytes() : 0);
}

void PartitionState::Checkpoint(bool full, CheckpointSink* sink) {
  sessionizer_.Checkpoint(
      full,
      [&](absl::string_view site, absl::string_view visitor) {
        v1::SessionKey* key = sink->chunk()->add_closed();
        key->set_site_id(site.data(), site.size());
        key->set_visitor_id(visitor.data(), visitor.size());
        sink->Added(site.size() + visitor.size() + 6);
      },
      [&](absl::string_view session) { sink->AddSession(session); });
  auto add_ref = [&](int64_t offset, int64_t time_us) {
    v1::BufferedRefs* refs = sink->chunk()->mutable_buffered_refs();
    refs->add_offsets(offset);
    refs->add_time_us(time_us);
    sink->Added(16);
  };
  if (full) {
    for (size_t i = replay_next_; i < replay_.size(); ++i) {
      add_ref(replay_[i].offset, replay_[i].time_us);
    }
  }
  auto add_event = [&](const EventView& e) {
    v1::BufferedEvent* b = sink->chunk()->add_buffered();
    b->set_time_us(absl::ToUnixMicros(e.time));
    b->set_type(static_cast<uint32_t>(e.type));
    b->set_session_number(e.session_number);
    b->set_value_micros(e.value_micros);
#define KPISTREAM_SET_FIELD(f) b->set_##f(e.f.data(), e.f.size());
    KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_SET_FIELD)
#undef KPISTREAM_SET_FIELD
    sink->Added(b->ByteSizeLong() + 4);
  };
  buffer_.Checkpoint(full, add_event, add_ref);
  dedup_.Checkpoint(full, [&](uint64_t key, int32_t minute) {
    v1::FingerprintMap* m = sink->chunk()->mutable_dedup();
    m->add_keys(key);
    m->add_values(minute);
    sink->Added(14);
  });
  for (auto [days, field] :
       {std::make_pair(&sessionizer_.visitors(),
                       &v1::PartitionCheckpoint::mutable_visitors),
        std::make_pair(&sessionizer_.orders(),
                       &v1::PartitionCheckpoint::mutable_orders)}) {
    // A copy: C++17 lambdas cannot capture a structured binding (clang
    // rejects it; the fuzz targets are built with clang).
    // A persistent store writes its own changelog records.
    FingerprintStore* memory = days->store().memory();
    if (memory == nullptr) continue;
    memory->Checkpoint(full, [&, field = field](uint64_t key, int32_t day) {
      v1::FingerprintMap* m = (sink->chunk()->*field)();
      m->add_keys(key);
      m->add_values(day);
      sink->Added(14);
    });
  }
  windows_.Checkpoint(
      full,
      [&](const v1::WindowKey& key) {
        *sink->chunk()->add_removed_windows() = key;
        sink->Added(key.ByteSizeLong() + 4);
      },
      [&](v1::WindowState& window) {
        v1::WindowState* added = sink->chunk()->add_windows();
        added->Swap(&window);  // no copy of its strings and maps
        sink->Added(added->ByteSizeLong() + 4);
      });
  if (targets_ != nullptr) {
    targets_->Checkpoint(full, [&](const v1::TargetBucket& bucket) {
      *sink->chunk()->add_targets() = bucket;
      sink->Added(bucket.ByteSizeLong() + 4);
    });
  }
  // A full checkpoint supersedes the ones before: nothing of theirs to
  // erase.
  if (!full) {
    for (const auto& [target, fingerprint, bucket] : dropped_buckets_) {
      v1::TargetBucket* erased = sink->chunk()->add_targets();
      erased->set_target(target);
      erased->set_fingerprint(fingerprint);
      erased->set_bucket(bucket);
      erased->set_erased(true);
      sink->Added(erased->ByteSizeLong() + 4);
    }
  }
  dropped_buckets_.clear();
  // The clocks go with the last chunk (the caller marks it).
  v1::PartitionCheckpoint* last = sink->chunk();
  last->set_frontier_us(MicrosOrZero(frontier_));
  last->set_closed_up_to_us(MicrosOrZero(closed_up_to_));
  last->set_visitors_newest_day(sessionizer_.visitors().newest_day());
  last->set_orders_newest_day(sessionizer_.orders().newest_day());
}

absl::Status PartitionState::Restore(const v1::PartitionCheckpoint& c) {
  if (absl::Status status = CheckRanges(c); !status.ok()) return status;
  for (const v1::SessionKey& key : c.closed()) {
    sessionizer_.RestoreClosed(key.site_id(), key.visitor_id());
  }
  for (const v1::SessionState& session : c.sessions()) {
    sessionizer_.RestoreSession(session);
  }
  for (const v1::BufferedEvent& b : c.buffered()) {
    if (b.type() < 1 || b.type() > 4) {
      return absl::DataLossError(
          absl::StrCat("a buffered event of unknown type ", b.type()));
    }
    EventView e;
    e.time = absl::FromUnixMicros(b.time_us());
    e.type = static_cast<EventType>(b.type());
    e.session_number = b.session_number();
    e.value_micros = b.value_micros();
#define KPISTREAM_GET_FIELD(f) e.f = b.f();
    KPISTREAM_EVENT_STRING_FIELDS(KPISTREAM_GET_FIELD)
#undef KPISTREAM_GET_FIELD
    buffer_.Restore(e);
  }
  const v1::BufferedRefs& refs = c.buffered_refs();
  for (int i = 0; i < refs.offsets_size(); ++i) {
    replay_.push_back({refs.offsets(i), refs.time_us(i)});
  }
  dedup_.Restore(c.dedup());
  sessionizer_.visitors().Restore(c.visitors(), c.visitors_newest_day());
  sessionizer_.orders().Restore(c.orders(), c.orders_newest_day());
  for (const v1::WindowKey& key : c.removed_windows()) {
    windows_.RestoreRemoved(key);
  }
  for (const v1::WindowState& window : c.windows()) windows_.Restore(window);
  for (const v1::TargetBucket& bucket : c.targets()) {
    if (targets_ != nullptr && targets_->Restore(bucket)) continue;
    auto key =
        std::make_tuple(bucket.target(), bucket.fingerprint(), bucket.bucket());
    if (bucket.erased()) {  // a bucket gone already: nothing dropped
      dropped_buckets_.erase(key);
      continue;
    }
    dropped_buckets_.insert(std::move(key));
    ++dropped_target_buckets_;
    if (dropped_target_names_.size() < kMaxDroppedNames) {
      dropped_target_names_.insert(bucket.target());
    }
  }
  if (c.last() && c.frontier_us() != 0) {
    frontier_ = std::max(frontier_, TimeOf(c.frontier_us()));
  }
  // 0: written before it was (sessions closed up to an unknown time).
  if (c.last() && c.closed_up_to_us() != 0) {
    closed_up_to_ = std::max(closed_up_to_, TimeOf(c.closed_up_to_us()));
  }
  return absl::OkStatus();
}

void PartitionState::UseDayStores(std::unique_ptr<DayStore> visitors,
                                  std::unique_ptr<DayStore> orders) {
  sessionizer_.visitors().set_store(std::move(visitors));
  sessionizer_.orders().set_store(std::move(orders));
}

void PartitionState::FinishRestore() {
  buffer_.DropBefore(frontier_);
  // As DropBefore: what the frontier passed was released before the last
  // checkpoint.
  if (frontier_ != absl::InfinitePast()) {
    const int64_t frontier_us = frontier_ == absl::InfiniteFuture()
                                    ? INT64_MAX
                                    : absl::ToUnixMicros(frontier_);
    replay_.erase(std::remove_if(replay_.begin(), replay_.end(),
                                 [&](const BufferedRef& r) {
                                   return r.time_us < frontier_us;
                                 }),
                  replay_.end());
  }
  std::sort(replay_.begin(), replay_.end(),
            [](const BufferedRef& a, const BufferedRef& b) {
              return a.offset < b.offset;
            });
  replay_.erase(std::unique(replay_.begin(), replay_.end(),
                            [](const BufferedRef& a, const BufferedRef& b) {
                              return a.offset == b.offset;
                            }),
                replay_.end());
  replay_next_ = 0;
  sessionizer_.FinishRestore();
  if (windows_.restored_of_other_width() > 0) {
    sessionizer_.ForEachOpen(
        [&](absl::Time start, const SessionAttributes& session) {
          windows_.AdoptOpen(start, session.site_id, session.channel);
        });
  }
  if (frontier_ != absl::InfinitePast()) dedup_.Expire(frontier_);
}

int64_t PartitionState::replay_from() const {
  return pending_replays() > 0 ? replay_[replay_next_].offset : -1;
}

bool PartitionState::WantsReplay(int64_t offset, size_t* missing) {
  while (replay_next_ < replay_.size() &&
         replay_[replay_next_].offset < offset) {
    ++replay_next_;
    ++*missing;
  }
  return replay_next_ < replay_.size() &&
         replay_[replay_next_].offset == offset;
}

bool PartitionState::Replay(const EventView& event) {
  if (pending_replays() == 0) return false;
  const BufferedRef ref = replay_[replay_next_++];
  if (event.record_offset != ref.offset ||
      absl::ToUnixMicros(event.time) != ref.time_us) {
    return false;
  }
  buffer_.Restore(event);
  if (pending_replays() == 0) {
    replay_.clear();
    replay_next_ = 0;
  }
  return true;
}

size_t PartitionState::AbandonReplays() {
  const size_t n = pending_replays();
  replay_.clear();
  replay_next_ = 0;
  return n;
}

}  // namespace kpistream
