#include "aggregate/kpi_windows.h"

namespace kpistream {

KpiWindows::Window& KpiWindows::At(absl::Time session_start,
                                   absl::string_view site,
                                   absl::string_view channel) {
  const int64_t width_s = absl::ToInt64Seconds(width_);
  int64_t start = absl::ToUnixSeconds(session_start);
  start -= ((start % width_s) + width_s) % width_s;
  Window& w = windows_[Key{start, std::string(site), std::string(channel)}];
  if (w.kpis.site.empty()) {
    w.kpis.site = std::string(site);
    w.kpis.channel = std::string(channel);
    w.kpis.start = absl::FromUnixSeconds(start);
    w.kpis.end = w.kpis.start + width_;
  }
  w.dirty = true;
  return w;
}

void KpiWindows::OnSessionStarted(const SessionAttributes& session,
                                  const Event& first) {
  for (absl::string_view channel : {absl::string_view(), session.channel}) {
    Window& w = At(first.time, session.site_id, channel);
    ++w.kpis.sessions;
    ++w.open;
  }
}

void KpiWindows::OnSessionClosed(const ClosedSession& s) {
  for (absl::string_view channel :
       {absl::string_view(), absl::string_view(s.channel)}) {
    Window& w = At(s.start, s.site_id, channel);
    WindowKpis& k = w.kpis;
    --w.open;
    ++k.sessions_closed;
    k.engaged += s.engaged;
    k.bounced += s.bounced;
    k.pageviews += s.pageviews;
    k.orders += s.orders;
    k.duration_seconds_sum += absl::ToDoubleSeconds(s.duration());
    for (const auto& [goal, n] : s.conversions) k.conversions[goal] += n;
    for (const auto& [currency, micros] : s.revenue)
      k.revenue[currency] += micros;
    for (const auto& [currency, n] : s.orders_by_currency)
      k.orders_by_currency[currency] += n;
  }
}

std::vector<WindowKpis> KpiWindows::Collect(absl::Time frontier) {
  std::vector<WindowKpis> out;
  for (auto it = windows_.begin(); it != windows_.end();) {
    Window& w = it->second;
    const bool done = w.open == 0 && w.kpis.end <= frontier;
    if (done) {
      w.kpis.final = true;
      out.push_back(std::move(w.kpis));
      it = windows_.erase(it);
      continue;
    }
    if (w.dirty) {
      out.push_back(w.kpis);
      w.dirty = false;
    }
    ++it;
  }
  return out;
}

}  // namespace kpistream
