// KpiWindows: KPI aggregates per event-time window (tumbling, `width`), site
// and channel, for the KPI snapshot topic (SPEC §5). A session belongs to the
// window of its start. Per partition (it moves with the partition's state):
// consumers add up the records of all partitions.
//
// Collect() hands out a snapshot for every window that changed since the
// last call (final = false) and, exactly once, the final one of a window when
// no session can start in it any more (its end is at or before the closing
// frontier, watermark - allowed lateness) and every session started in it
// has closed. The final record holds the window's complete totals; the
// window is then forgotten.
//
// Checkpoints: Checkpoint() hands out the keys of checkpointed windows
// forgotten since the last call, then every window changed since (all open
// windows with `full`); Restore*() applies them in that order.
//
// Time is passed in. Not thread-safe: one owner.
#ifndef KPISTREAM_AGGREGATE_KPI_WINDOWS_H_
#define KPISTREAM_AGGREGATE_KPI_WINDOWS_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/hash/hash.h"
#include "absl/time/time.h"
#include "aggregate/sessionizer.h"
#include "kpistream/v1/state.pb.h"

namespace kpistream {

struct WindowKpis {
  std::string site;
  std::string channel;  // "" = all channels of the site
  absl::Time start;
  absl::Time end;
  bool final = false;
  uint64_t sessions = 0;  // started in the window
  uint64_t sessions_closed = 0;
  uint64_t engaged = 0;
  uint64_t bounced = 0;
  uint64_t pageviews = 0;
  uint64_t orders = 0;
  // Summed in whole microseconds (session times are kept in those), so that
  // the sum does not depend on the order sessions close in: with a double,
  // a restart that closed them in another order changed the snapshots' last
  // digits.
  int64_t duration_micros_sum = 0;
  double duration_seconds_sum() const { return duration_micros_sum / 1e6; }
  std::map<std::string, uint32_t> conversions;  // by goal
  std::map<std::string, int64_t> revenue;       // micros by currency
  std::map<std::string, uint32_t> orders_by_currency;
};

class KpiWindows : public SessionObserver {
 public:
  // `width`: whole seconds, at least one (the config checks it).
  explicit KpiWindows(absl::Duration width) : width_(width) {}
  // Moved, never copied: At()'s answers point at the windows.
  KpiWindows(const KpiWindows&) = delete;
  KpiWindows& operator=(const KpiWindows&) = delete;
  KpiWindows(KpiWindows&&) = default;
  KpiWindows& operator=(KpiWindows&&) = default;

  void OnSessionStarted(const SessionAttributes& session,
                        const EventView& first) override;
  void OnEvent(const SessionAttributes&, const EventView&) override {}
  void OnSessionClosed(const ClosedSession& session) override;
  // The session moves to the windows of its new start and channel.
  void OnSessionStartMoved(const SessionAttributes& before,
                           absl::Time before_start,
                           const SessionAttributes& after,
                           const EventView& first) override;

  // Changed windows (final = false) and finished ones (final = true, once).
  std::vector<WindowKpis> Collect(absl::Time frontier);
  // The same, each handed to `emit` (valid during the call) instead of
  // copied into a vector.
  void Collect(absl::Time frontier,
               absl::FunctionRef<void(const WindowKpis&)> emit);

  size_t windows() const { return windows_.size(); }
  // The windows' memory: each window and its table slot, the table's free
  // slots, the recent answers and Collect()'s list; strings past their
  // inline buffer and the goal and currency entries (a few a window) are
  // left out. O(1).
  size_t ApproximateBytes() const;

  // `window` may take the state it is handed (swap it away).
  void Checkpoint(bool full,
                  absl::FunctionRef<void(const v1::WindowKey&)> removed,
                  absl::FunctionRef<void(v1::WindowState&)> window);
  void RestoreRemoved(const v1::WindowKey& key);
  // A window of another width (outputs.kpi.window changed) is not restored:
  // counted in restored_of_other_width().
  void Restore(const v1::WindowState& state);
  size_t restored_of_other_width() const { return other_width_; }
  // After such a restore: a restored open session starting at `start`,
  // counted in its windows of this width as if it had started there (a
  // session and an open one), unless a window was restored (of this width,
  // it counts the session already). Without it, a window of the new width
  // counted none of the old sessions open, went final as soon as it held
  // none of its own open, and each old session closing into it made it
  // again and final again: many finals for one key, and finals while
  // sessions counted in them were open (an audit).
  void AdoptOpen(absl::Time start, absl::string_view site,
                 absl::string_view channel);

 private:
  // start, site, channel: what a forgotten window's key is kept as.
  using Key = std::tuple<int64_t, std::string, std::string>;
  // A window's key as a view of its own strings (its kpis' site and
  // channel), to find a window without copying strings.
  using KeyView = std::tuple<int64_t, std::string_view, std::string_view>;
  struct Window {
    WindowKpis kpis;  // its site and channel: the key's strings
    int64_t start_s = 0;
    int64_t open = 0;
    bool dirty = false;         // changed since the last Collect()
    bool changed = false;       // changed since the last Checkpoint()
    bool checkpointed = false;  // the changelog holds it
    bool restored = false;      // by Restore() (AdoptOpen())
  };
  static KeyView KeyOf(const Window& w) {
    return {w.start_s, w.kpis.site, w.kpis.channel};
  }
  // The site's all-channels window and `channel`'s window (the same one when
  // `channel` is empty) of the window holding `session_start`, made when
  // missing, marked changed.
  std::pair<Window*, Window*> At(absl::Time session_start,
                                 absl::string_view site,
                                 absl::string_view channel);
  // At()'s pair, each window once: a session of no channel counts once in
  // its site's window, which is both.
  struct Distinct {
    Distinct(Window* all, Window* one) : w{all, one}, n(all == one ? 1 : 2) {}
    Window* const* begin() const { return w.data(); }
    Window* const* end() const { return w.data() + n; }
    std::array<Window*, 2> w;
    size_t n;
  };
  // The window of (start, site, channel), made when missing, marked
  // changed.
  Window* Get(int64_t start, absl::string_view site, absl::string_view channel);
  // Forgets the window (and At()'s answers).
  void Erase(const Window& w);
  // The windows `wanted` picks into collected_, in key order (start, site,
  // channel: what Collect() hands out and Checkpoint() writes stays in the
  // order it had when a tree held the windows); Release() empties it.
  void Gather(absl::FunctionRef<bool(const Window&)> wanted);
  void Release();

  // Every window, by a view of its own key; a window lives on the heap,
  // where it stays until erased (At()'s answers and the keys point into
  // it). Not a tree: most windows of a partition hold a session or two (a
  // few sessions a minute spread over the channels), so most session
  // starts made a window, and a walk down a std::map of them comparing
  // strings, then an index entry, were 2 % of the engine's samples
  // (end-to-end benchmark, protobuf, keyed, 2026-12-02). Collect() sorts
  // what it hands out (a few windows a commit).
  struct KeyViewHash {
    size_t operator()(const KeyView& k) const {
      return absl::HashOf(std::get<0>(k), std::get<1>(k), std::get<2>(k));
    }
  };
  using Windows =
      absl::flat_hash_map<KeyView, std::unique_ptr<Window>, KeyViewHash>;

  // At()'s recent answers, by a hash of (start, site, channel), in front of
  // the table: where a partition's sessions start in a few windows (many
  // events a second) one hash and compare answers, not two table lookups
  // (aggregate_bench's DecodeSessionizeCount, 1 M starts: 1.4 % more
  // instructions without it). Forgotten whenever a window is erased.
  struct Lookup {
    int64_t start = 0;
    std::string site;
    std::string channel;
    Window* all = nullptr;  // nullptr: empty
    Window* one = nullptr;
  };
  static constexpr size_t kLookups = 16;
  // At or below this capacity the table is left as it is (Collect()).
  static constexpr size_t kShrinkFrom = 64;
  void ForgetLookups();

  absl::Duration width_;
  Windows windows_;
  std::array<Lookup, kLookups> lookups_;
  std::vector<Window*> collected_;  // Gather()'s, reused
  std::vector<Key> removed_;        // checkpointed windows forgotten since
  size_t other_width_ = 0;          // windows Restore() left out
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_KPI_WINDOWS_H_
