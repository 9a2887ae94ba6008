#include "aggregate/kpi_windows.h"

#include <iterator>

#include "absl/hash/hash.h"
#include "aggregate/label_values.h"
#include "aggregate/memory_estimate.h"
#include "aggregate/proto_sums.h"
#include "aggregate/saturating.h"

namespace kpistream {

namespace {

// The view of a map node's key (whose strings stay where they are).
std::tuple<int64_t, std::string_view, std::string_view> ViewOf(
    const std::tuple<int64_t, std::string, std::string>& key) {
  return {std::get<0>(key), std::get<1>(key), std::get<2>(key)};
}

}  // namespace

void KpiWindows::Index(Windows::iterator it) {
  index_.insert_or_assign(ViewOf(it->first), &it->second);
}

void KpiWindows::Unindex(Windows::iterator it) {
  index_.erase(ViewOf(it->first));
  ForgetLookups();
}

size_t KpiWindows::ApproximateBytes() const {
  // A map node: its value and the tree's links (three pointers and a
  // colour).
  constexpr size_t kNode = MallocBytes(sizeof(Windows::value_type) + 32);
  return windows_.size() * kNode +
         FlatMapBytes<KeyView, Window*>(index_.capacity()) + sizeof(lookups_) +
         removed_.capacity() * sizeof(Key);
}

void KpiWindows::ForgetLookups() {
  for (Lookup& l : lookups_) l.all = l.one = nullptr;
}

KpiWindows::Window* KpiWindows::Get(int64_t start, absl::string_view site,
                                    absl::string_view channel) {
  const KeyView key{start, std::string_view(site.data(), site.size()),
                    std::string_view(channel.data(), channel.size())};
  Window* w;
  if (auto found = index_.find(key); found != index_.end()) {
    w = found->second;
  } else {
    // New (every window is indexed): one walk down the tree to place it.
    auto it =
        windows_
            .try_emplace(Key{start, std::string(site), std::string(channel)})
            .first;
    Index(it);
    w = &it->second;
  }
  if (w->kpis.site.empty()) {
    w->kpis.site = std::string(site);
    w->kpis.channel = std::string(channel);
    w->kpis.start = absl::FromUnixSeconds(start);
    w->kpis.end = w->kpis.start + width_;
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
  for (Window* w : {all, one}) {
    ++w->kpis.sessions;
    w->open = SaturatingAdd(w->open, 1);  // it may come from a checkpoint
  }
}

void KpiWindows::OnSessionStartMoved(const SessionAttributes& before,
                                     absl::Time before_start,
                                     const SessionAttributes& after,
                                     const EventView& first) {
  const auto [all, one] = At(before_start, before.site_id, before.channel);
  for (Window* w : {all, one}) {
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
  for (Window* w : {all, one}) {
    WindowKpis& k = w->kpis;
    // Counted there at the start, unless that was before a restore that
    // left out the windows of another width (Restore): nothing to take back.
    if (w->open > 0) w->open = SaturatingAdd(w->open, -1);
    ++k.sessions_closed;
    k.engaged += s.engaged;
    k.bounced += s.bounced;
    k.pageviews += s.pageviews;
    k.orders += s.orders;
    k.duration_seconds_sum += absl::ToDoubleSeconds(s.duration());
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
  for (auto it = windows_.begin(); it != windows_.end();) {
    Window& w = it->second;
    const bool done = w.open == 0 && w.kpis.end <= frontier;
    if (done) {
      if (w.checkpointed) removed_.push_back(it->first);
      w.kpis.final = true;
      emit(w.kpis);
      Unindex(it);
      it = windows_.erase(it);
      continue;
    }
    if (w.dirty) {
      emit(w.kpis);
      w.dirty = false;
    }
    ++it;
  }
  // A burst of windows (a backlog read at a start, a replay) grows the
  // index, and absl's table never shrinks by itself: once its windows are
  // final, it is made to fit what is left when an eighth or less of it is
  // in use (not a quarter: a working set that swings by half between
  // commits would rehash at each). Its entries point into windows_' nodes,
  // which stay put.
  if (index_.capacity() > kShrinkFrom &&
      index_.size() * 8 < index_.capacity()) {
    index_.rehash(0);
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
  for (auto& [k, w] : windows_) {
    if (!full && !w.changed) continue;
    st.Clear();
    st.mutable_key()->set_start_s(std::get<0>(k));
    st.mutable_key()->set_site(std::get<1>(k));
    st.mutable_key()->set_channel(std::get<2>(k));
    const WindowKpis& x = w.kpis;
    st.set_open(w.open);
    st.set_sessions(x.sessions);
    st.set_sessions_closed(x.sessions_closed);
    st.set_engaged(x.engaged);
    st.set_bounced(x.bounced);
    st.set_pageviews(x.pageviews);
    st.set_orders(x.orders);
    st.set_duration_seconds_sum(x.duration_seconds_sum);
    st.set_width_s(absl::ToInt64Seconds(width_));
    AddGoalCounts(x.conversions, st.mutable_conversions());
    AddRevenues(x.revenue, x.orders_by_currency, st.mutable_revenue());
    window(st);
    w.changed = false;
    w.checkpointed = true;
  }
}

void KpiWindows::RestoreRemoved(const v1::WindowKey& key) {
  auto it = windows_.find(KeyView{key.start_s(), key.site(), key.channel()});
  if (it == windows_.end()) return;
  Unindex(it);
  windows_.erase(it);
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
  auto it =
      windows_.try_emplace(Key{start_s, st.key().site(), st.key().channel()})
          .first;
  Index(it);
  Window& w = it->second;
  WindowKpis& x = w.kpis;
  x = WindowKpis{};
  x.site = st.key().site();
  x.channel = st.key().channel();
  x.start = absl::FromUnixSeconds(st.key().start_s());
  x.end = x.start + width_;
  x.sessions = st.sessions();
  x.sessions_closed = st.sessions_closed();
  x.engaged = st.engaged();
  x.bounced = st.bounced();
  x.pageviews = st.pageviews();
  x.orders = st.orders();
  x.duration_seconds_sum = st.duration_seconds_sum();
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
