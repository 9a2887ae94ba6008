#include "aggregate/kpi_windows.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <memory>

#include "absl/hash/hash.h"
#include "aggregate/label_values.h"
#include "aggregate/memory_estimate.h"
#include "aggregate/proto_sums.h"
#include "aggregate/saturating.h"

namespace kpistream {

void KpiWindows::Erase(const Window& w) {
  windows_.erase(KeyOf(w));  // destroys w
  ForgetLookups();
}

size_t KpiWindows::ApproximateBytes() const {
  // A window on the heap, its table slot (the key's view and the pointer).
  constexpr size_t kWindow = MallocBytes(sizeof(Window));
  return windows_.size() * kWindow +
         FlatMapBytes<KeyView, std::unique_ptr<Window>>(windows_.capacity()) +
         sizeof(lookups_) + collected_.capacity() * sizeof(Window*) +
         removed_.capacity() * sizeof(Key);
}

void KpiWindows::Gather(absl::FunctionRef<bool(const Window&)> wanted) {
  collected_.clear();
  for (const auto& [key, w] : windows_) {
    if (wanted(*w)) collected_.push_back(w.get());
  }
  std::sort(
      collected_.begin(), collected_.end(),
      [](const Window* a, const Window* b) { return KeyOf(*a) < KeyOf(*b); });
}

void KpiWindows::Release() {
  collected_.clear();
  // After a burst (see Collect()), with the table's margin: a commit that
  // hands out the windows gone final and as many new ones (twice the
  // windows left) must not free and grow it again at each call.
  if (collected_.capacity() > kShrinkFrom &&
      collected_.capacity() > 8 * windows_.size()) {
    collected_.shrink_to_fit();
  }
}

void KpiWindows::ForgetLookups() {
  for (Lookup& l : lookups_) l.all = l.one = nullptr;
}

KpiWindows::Window* KpiWindows::Get(int64_t start, absl::string_view site,
                                    absl::string_view channel) {
  const KeyView key{start, std::string_view(site.data(), site.size()),
                    std::string_view(channel.data(), channel.size())};
  Window* w;
  if (auto found = windows_.find(key); found != windows_.end()) {
    w = found->second.get();
  } else {
    auto made = std::make_unique<Window>();
    w = made.get();
    w->start_s = start;
    w->kpis.site = std::string(site);
    w->kpis.channel = std::string(channel);
    w->kpis.start = absl::FromUnixSeconds(start);
    w->kpis.end = w->kpis.start + width_;
    windows_.emplace(KeyOf(*w), std::move(made));
  }
  w->dirty = true;
  w->changed = true;
  return w;
}

std::pair<KpiWindows::Window*, KpiWindows::Window*> KpiWindows::At(
    absl::Time session_start, absl::string_view site,
    absl::string_view channel) {
  const int64_t width_s = absl::ToInt64Seconds(width_);
  int64_t start = absl::ToUnixSeconds(session_start);
  start -= ((start % width_s) + width_s) % width_s;
  Lookup& lookup = lookups_[absl::HashOf(start, site, channel) % kLookups];
  if (lookup.all != nullptr && lookup.start == start && lookup.site == site &&
      lookup.channel == channel) {
    for (Window* w : {lookup.all, lookup.one}) w->dirty = w->changed = true;
    return {lookup.all, lookup.one};
  }
  Window* all = Get(start, site, {});
  Window* one = channel.empty() ? all : Get(start, site, channel);
  lookup.start = start;
  lookup.site.assign(site.data(), site.size());
  lookup.channel.assign(channel.data(), channel.size());
  lookup.all = all;
  lookup.one = one;
  return {all, one};
}

void KpiWindows::OnSessionStarted(const SessionAttributes& session,
                                  const EventView& first) {
  const auto [all, one] = At(first.time, session.site_id, session.channel);
  for (Window* w : Distinct(all, one)) {
    ++w->kpis.sessions;
    w->open = SaturatingAdd(w->open, 1);  // it may come from a checkpoint
  }
}

void KpiWindows::OnSessionStartMoved(const SessionAttributes& before,
                                     absl::Time before_start,
                                     const SessionAttributes& after,
                                     const EventView& first) {
  const auto [all, one] = At(before_start, before.site_id, before.channel);
  for (Window* w : Distinct(all, one)) {
    // Counted there at the start, unless that was before a restore with
    // another window width: then there is nothing to take back.
    if (w->kpis.sessions > 0) --w->kpis.sessions;
    if (w->open > 0) w->open = SaturatingAdd(w->open, -1);
  }
  OnSessionStarted(after, first);
}

namespace {

// What a window keeps per goal (currency): so many sessions' worth of
// distinct values that its KPI snapshot record stays far within what a
// Kafka producer takes (values of up to kMaxEventValueBytes each), however
// many a hostile client sends; beyond kMaxWindowKeys the others count
// under "(other)".
constexpr size_t kMaxWindowKeys = 64;

template <typename Map>
typename Map::mapped_type& Entry(Map& map, const std::string& key) {
  auto it = map.find(key);
  if (it != map.end()) return it->second;
  if (map.size() >= kMaxWindowKeys) return map[std::string(kOther)];
  return map[key];
}

}  // namespace

void KpiWindows::OnSessionClosed(const ClosedSession& s) {
  const auto [all, one] = At(s.start, s.site_id, s.channel);
  for (Window* w : Distinct(all, one)) {
    WindowKpis& k = w->kpis;
    // Counted there at the start, unless that was before a restore that
    // left out the windows of another width (Restore): nothing to take back.
    if (w->open > 0) w->open = SaturatingAdd(w->open, -1);
    ++k.sessions_closed;
    k.engaged += s.engaged;
    k.bounced += s.bounced;
    k.pageviews += s.pageviews;
    k.orders += s.orders;
    k.duration_micros_sum = SaturatingAdd(
        k.duration_micros_sum, absl::ToInt64Microseconds(s.duration()));
    for (const auto& [goal, n] : s.conversions) {
      Entry(k.conversions, goal) += n;
    }
    for (const auto& [currency, micros] : s.revenue) {
      int64_t& sum = Entry(k.revenue, currency);
      sum = SaturatingAdd(sum, micros);
    }
    for (const auto& [currency, n] : s.orders_by_currency) {
      Entry(k.orders_by_currency, currency) += n;
    }
  }
}

std::vector<WindowKpis> KpiWindows::Collect(absl::Time frontier) {
  std::vector<WindowKpis> out;
  Collect(frontier, [&](const WindowKpis& w) { out.push_back(w); });
  return out;
}

void KpiWindows::Collect(absl::Time frontier,
                         absl::FunctionRef<void(const WindowKpis&)> emit) {
  const auto done = [frontier](const Window& w) {
    return w.open == 0 && w.kpis.end <= frontier;
  };
  Gather([&](const Window& w) { return w.dirty || done(w); });
  for (Window* w : collected_) {
    if (done(*w)) {
      if (w->checkpointed) {
        removed_.emplace_back(w->start_s, w->kpis.site, w->kpis.channel);
      }
      w->kpis.final = true;
      emit(w->kpis);
      Erase(*w);
      continue;
    }
    emit(w->kpis);
    w->dirty = false;
  }
  Release();
  // A burst of windows (a backlog read at a start, a replay) grows the
  // table, and absl's table never shrinks by itself: once its windows are
  // final, it is made to fit what is left when an eighth or less of it is
  // in use (not a quarter: a working set that swings by half between
  // commits would rehash at each). Its entries point at the windows, which
  // stay put.
  if (windows_.capacity() > kShrinkFrom &&
      windows_.size() * 8 < windows_.capacity()) {
    windows_.rehash(0);
  }
}

}  // namespace kpistream

namespace kpistream {

void KpiWindows::Checkpoint(
    bool full, absl::FunctionRef<void(const v1::WindowKey&)> removed,
    absl::FunctionRef<void(v1::WindowState&)> window) {
  v1::WindowKey key;
  if (!full) {
    for (const Key& k : removed_) {
      key.set_start_s(std::get<0>(k));
      key.set_site(std::get<1>(k));
      key.set_channel(std::get<2>(k));
      removed(key);
    }
  }
  removed_.clear();
  v1::WindowState st;
  Gather([full](const Window& w) { return full || w.changed; });
  for (Window* held : collected_) {
    Window& w = *held;
    st.Clear();
    st.mutable_key()->set_start_s(w.start_s);
    st.mutable_key()->set_site(w.kpis.site);
    st.mutable_key()->set_channel(w.kpis.channel);
    const WindowKpis& x = w.kpis;
    st.set_open(w.open);
    st.set_sessions(x.sessions);
    st.set_sessions_closed(x.sessions_closed);
    st.set_engaged(x.engaged);
    st.set_bounced(x.bounced);
    st.set_pageviews(x.pageviews);
    st.set_orders(x.orders);
    st.set_duration_micros_sum(x.duration_micros_sum);
    st.set_duration_seconds_sum(x.duration_seconds_sum());  // for older ones
    st.set_width_s(absl::ToInt64Seconds(width_));
    AddGoalCounts(x.conversions, st.mutable_conversions());
    AddRevenues(x.revenue, x.orders_by_currency, st.mutable_revenue());
    window(st);
    w.changed = false;
    w.checkpointed = true;
  }
  Release();
}

void KpiWindows::AdoptOpen(absl::Time start, absl::string_view site,
                           absl::string_view channel) {
  if (other_width_ == 0) return;  // the restored windows count them
  const auto [all, one] = At(start, site, channel);
  for (Window* w : Distinct(all, one)) {
    if (w->restored) continue;
    ++w->kpis.sessions;
    w->open = SaturatingAdd(w->open, 1);
  }
}

void KpiWindows::RestoreRemoved(const v1::WindowKey& key) {
  auto it = windows_.find(KeyView{key.start_s(), key.site(), key.channel()});
  if (it == windows_.end()) return;
  Erase(*it->second);
}

void KpiWindows::Restore(const v1::WindowState& st) {
  // A window of another width (outputs.kpi.window changed across the
  // restart; before width_s was written, one whose start is not on this
  // width's grid) is left out: restored with this width, it overlapped the
  // new windows and, its sessions closing into those, never became final.
  // Its snapshots so far stay the last word on it.
  const int64_t width_s = absl::ToInt64Seconds(width_);
  const int64_t start_s = st.key().start_s();
  if ((st.width_s() != 0 && st.width_s() != width_s) ||
      ((start_s % width_s) + width_s) % width_s != 0) {
    ++other_width_;
    return;
  }
  // A window held already is replaced: the key views its strings.
  if (auto it =
          windows_.find(KeyView{start_s, st.key().site(), st.key().channel()});
      it != windows_.end()) {
    Erase(*it->second);
  }
  auto made = std::make_unique<Window>();
  Window& w = *made;
  w.start_s = start_s;
  w.restored = true;
  WindowKpis& x = w.kpis;
  x.site = st.key().site();
  x.channel = st.key().channel();
  x.start = absl::FromUnixSeconds(start_s);
  x.end = x.start + width_;
  windows_.emplace(KeyOf(w), std::move(made));
  x.sessions = st.sessions();
  x.sessions_closed = st.sessions_closed();
  x.engaged = st.engaged();
  x.bounced = st.bounced();
  x.pageviews = st.pageviews();
  x.orders = st.orders();
  // Written before 2026-12-06: the sum in seconds only (a state that does
  // not hold a plausible one, as read from a damaged record, counts as 0).
  x.duration_micros_sum = st.duration_micros_sum();
  if (const double old = st.duration_seconds_sum() * 1e6;
      x.duration_micros_sum == 0 && old >= 1 && old < 9e18) {
    x.duration_micros_sum = std::llround(old);
  }
  for (const v1::GoalCount& g : st.conversions()) {
    x.conversions[g.goal()] = g.conversions();
  }
  for (const v1::Revenue& r : st.revenue()) {
    if (r.value_micros() != 0) x.revenue[r.currency()] = r.value_micros();
    if (r.orders() != 0) x.orders_by_currency[r.currency()] = r.orders();
  }
  w.open = st.open();
  w.dirty = false;
  w.changed = false;
  w.checkpointed = true;
}

}  // namespace kpistream
