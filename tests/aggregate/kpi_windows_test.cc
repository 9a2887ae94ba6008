#include "aggregate/kpi_windows.h"

#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

const absl::Time T0 = absl::FromUnixSeconds(1767261600);  // 10:00:00

ClosedSession Closed(absl::Time start, absl::Duration length,
                     uint32_t pageviews, bool engaged) {
  ClosedSession s;
  s.site_id = "shop";
  s.visitor_id = "v";
  s.channel = "Email";
  s.start = start;
  s.end = start + length;
  s.pageviews = pageviews;
  s.engaged = engaged;
  s.bounced = !engaged;
  return s;
}

void Start(KpiWindows& w, absl::Time at) {
  SessionAttributes attrs;
  attrs.site_id = "shop";
  attrs.channel = "Email";
  Event e;
  e.time = at;
  w.OnSessionStarted(attrs, e);
}

TEST(KpiWindowsTest, ProvisionalUpdatesThenExactlyOneFinal) {
  KpiWindows windows(absl::Minutes(1));
  Start(windows, T0 + absl::Seconds(10));
  Start(windows, T0 + absl::Seconds(50));
  Start(windows, T0 + absl::Seconds(70));  // next window

  // Nothing closed: provisional records for both windows, site and channel.
  std::vector<WindowKpis> out = windows.Collect(T0 + absl::Minutes(5));
  ASSERT_EQ(out.size(), 4u);
  for (const WindowKpis& k : out) EXPECT_FALSE(k.final);
  EXPECT_TRUE(windows.Collect(T0 + absl::Minutes(5)).empty());  // unchanged

  windows.OnSessionClosed(
      Closed(T0 + absl::Seconds(10), absl::Seconds(30), 3, true));
  out = windows.Collect(T0 + absl::Minutes(5));
  ASSERT_EQ(out.size(),
            2u);  // the 10:00 window changed, still one session open
  EXPECT_FALSE(out[0].final);
  EXPECT_EQ(out[0].sessions, 2u);
  EXPECT_EQ(out[0].sessions_closed, 1u);

  windows.OnSessionClosed(
      Closed(T0 + absl::Seconds(50), absl::Seconds(0), 1, false));
  // All closed, but the window's end is not yet behind the frontier.
  out = windows.Collect(T0 + absl::Seconds(59));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FALSE(out[0].final);
  out = windows.Collect(T0 + absl::Minutes(1));
  ASSERT_EQ(out.size(), 2u);
  const WindowKpis& all = out[0].channel.empty() ? out[0] : out[1];
  EXPECT_TRUE(all.final);
  EXPECT_EQ(all.start, T0);
  EXPECT_EQ(all.end, T0 + absl::Minutes(1));
  EXPECT_EQ(all.sessions, 2u);
  EXPECT_EQ(all.sessions_closed, 2u);
  EXPECT_EQ(all.engaged, 1u);
  EXPECT_EQ(all.bounced, 1u);
  EXPECT_EQ(all.pageviews, 4u);
  EXPECT_EQ(all.duration_seconds_sum(), 30);
  EXPECT_TRUE(windows.Collect(T0 + absl::Minutes(10)).empty());  // final once
  EXPECT_EQ(windows.windows(), 2u);  // the 10:01 window, still open
}

// The sum of session durations does not depend on the order the sessions
// close in (a restart can close sessions due at one moment in another
// order): with a double summed in seconds, 0.1 + 0.2 + 0.3 was
// 0.6000000000000001 one way and 0.6 the other, and the final snapshots of
// a run with a restart differed from one without in their last digits.
TEST(KpiWindowsTest, TheDurationSumDoesNotDependOnTheOrderOfCloses) {
  const std::vector<absl::Duration> lengths = {absl::Milliseconds(100),
                                               absl::Milliseconds(200),
                                               absl::Milliseconds(300)};
  auto final_sum = [&](bool reversed) {
    KpiWindows windows(absl::Minutes(1));
    for (size_t i = 0; i < lengths.size(); ++i) Start(windows, T0);
    for (size_t i = 0; i < lengths.size(); ++i) {
      const absl::Duration length =
          lengths[reversed ? lengths.size() - 1 - i : i];
      windows.OnSessionClosed(Closed(T0, length, 1, false));
    }
    for (const WindowKpis& k : windows.Collect(T0 + absl::Minutes(2))) {
      if (k.channel.empty()) return k.duration_seconds_sum();
    }
    ADD_FAILURE() << "no snapshot of the site's window";
    return -1.0;
  };
  const double forward = final_sum(false);
  EXPECT_EQ(forward, final_sum(true));  // bit for bit
  EXPECT_EQ(forward, 0.6);
}

// A window checkpointed before the sum was kept in microseconds (only the
// sum in seconds written) is restored with that sum, and checkpointed again
// with both.
TEST(KpiWindowsTest, ASumWrittenInSecondsOnlyIsRestored) {
  v1::WindowState old;
  old.mutable_key()->set_start_s(absl::ToUnixSeconds(T0));
  old.mutable_key()->set_site("shop");
  old.set_sessions(2);
  old.set_sessions_closed(2);
  old.set_duration_seconds_sum(12.25);
  old.set_width_s(60);
  KpiWindows windows(absl::Minutes(1));
  windows.Restore(old);
  std::vector<v1::WindowState> written;
  windows.Checkpoint(
      true, [](const v1::WindowKey&) {},
      [&](const v1::WindowState& w) { written.push_back(w); });
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].duration_micros_sum(), 12250000);
  EXPECT_EQ(written[0].duration_seconds_sum(), 12.25);

  // A state written now carries both; the sum in microseconds wins.
  v1::WindowState now = written[0];
  now.set_duration_micros_sum(12250001);
  KpiWindows again(absl::Minutes(1));
  again.Restore(now);
  written.clear();
  again.Checkpoint(
      true, [](const v1::WindowKey&) {},
      [&](const v1::WindowState& w) { written.push_back(w); });
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].duration_micros_sum(), 12250001);
}

// outputs.kpi.window changed across a restart (1 min to 5 min): the old
// windows are not restored (a review found them overlapping the new ones,
// and neither kind ever final), and the sessions they held close into
// windows of the new width, which become final once.
TEST(KpiWindowsTest, WindowsOfAnotherWidthAreNotRestored) {
  KpiWindows before(absl::Minutes(1));
  Start(before, T0 + absl::Seconds(150));  // 10:02, not on the 5 min grid
  Start(before, T0 + absl::Seconds(10));   // 10:00, on both grids
  (void)before.Collect(T0);
  KpiWindows after(absl::Minutes(5));
  before.Checkpoint(
      true, [](const v1::WindowKey&) {},
      [&](const v1::WindowState& w) { after.Restore(w); });
  EXPECT_EQ(after.restored_of_other_width(), 4u);  // site and channel, twice
  EXPECT_EQ(after.windows(), 0u);
  after.OnSessionClosed(
      Closed(T0 + absl::Seconds(150), absl::Seconds(30), 2, true));
  after.OnSessionClosed(
      Closed(T0 + absl::Seconds(10), absl::Seconds(0), 1, false));
  std::vector<WindowKpis> out = after.Collect(T0 + absl::Minutes(10));
  ASSERT_EQ(out.size(), 2u);
  for (const WindowKpis& k : out) {
    EXPECT_TRUE(k.final);
    EXPECT_EQ(k.start, T0);
    EXPECT_EQ(k.end, T0 + absl::Minutes(5));
    EXPECT_EQ(k.sessions_closed, 2u);
  }
  EXPECT_EQ(after.windows(), 0u);

  // Of the same width, every window is restored.
  KpiWindows same(absl::Minutes(1));
  before.Checkpoint(
      true, [](const v1::WindowKey&) {},
      [&](const v1::WindowState& w) { same.Restore(w); });
  EXPECT_EQ(same.restored_of_other_width(), 0u);
  EXPECT_EQ(same.windows(), 4u);
}

// A late first event moves its session to the window of its start and
// channel: the window it left counts it no more, holds no open session
// (its final record comes), and its close lands where it moved.
TEST(KpiWindowsTest, ASessionWhoseStartMovesChangesWindows) {
  KpiWindows windows(absl::Minutes(1));
  Start(windows, T0 + absl::Seconds(10));  // Email, 10:00
  ASSERT_EQ(windows.Collect(T0).size(), 2u);
  SessionAttributes before;
  before.site_id = "shop";
  before.channel = "Email";
  SessionAttributes after = before;
  after.channel = "Organic Search";
  Event first;
  first.time = T0 - absl::Seconds(20);  // 09:59:40
  windows.OnSessionStartMoved(before, T0 + absl::Seconds(10), after, first);
  ClosedSession s = Closed(first.time, absl::Seconds(60), 2, true);
  s.channel = "Organic Search";
  windows.OnSessionClosed(s);
  std::map<std::tuple<absl::Time, std::string>, WindowKpis> got;
  for (const WindowKpis& k : windows.Collect(T0 + absl::Minutes(2))) {
    EXPECT_TRUE(k.final);
    got[{k.start, k.channel}] = k;
  }
  ASSERT_EQ(got.size(), 4u);  // 10:00 all and Email, 09:59 all and Search
  EXPECT_EQ((got[{T0, ""}].sessions), 0u);
  EXPECT_EQ((got[{T0, "Email"}].sessions), 0u);
  EXPECT_EQ((got[{T0 - absl::Minutes(1), ""}].sessions), 1u);
  EXPECT_EQ((got[{T0 - absl::Minutes(1), ""}].sessions_closed), 1u);
  EXPECT_EQ((got[{T0 - absl::Minutes(1), "Organic Search"}].sessions), 1u);
  EXPECT_EQ(windows.windows(), 0u);
}

// A hostile client's many distinct goals and currencies (each up to 1 KiB)
// over many sessions of one window: the window keeps 64 of each and counts
// the rest under "(other)", so that its snapshot record stays within what a
// Kafka producer takes (it stopped the engine, at every restart).
TEST(KpiWindowsTest, AWindowOfManyGoalsAndCurrenciesStaysBounded) {
  KpiWindows windows(absl::Minutes(1));
  const std::string pad(1000, 'x');
  for (int i = 0; i < 1100; ++i) {
    Start(windows, T0 + absl::Seconds(10));
    ClosedSession c = Closed(T0 + absl::Seconds(10), absl::Seconds(1), 1, true);
    c.conversions = {{pad + "g" + std::to_string(i), 1u}};
    c.revenue = {{pad + "c" + std::to_string(i), 1'000'000}};
    c.orders_by_currency = {{pad + "c" + std::to_string(i), 1u}};
    windows.OnSessionClosed(c);
  }
  const std::vector<WindowKpis> out = windows.Collect(T0 + absl::Minutes(5));
  ASSERT_EQ(out.size(), 2u);
  for (const WindowKpis& k : out) {
    EXPECT_EQ(k.conversions.size(), 65u);
    EXPECT_EQ(k.revenue.size(), 65u);
    EXPECT_EQ(k.orders_by_currency.size(), 65u);
    EXPECT_EQ(k.conversions.at("(other)"), 1100u - 64u);
    EXPECT_EQ(k.revenue.at("(other)"), int64_t{1'000'000} * (1100 - 64));
    EXPECT_EQ(k.orders_by_currency.at("(other)"), 1100u - 64u);
  }
}

// A window handed out as final is forgotten: a session that starts in it
// later (a frontier that went back) opens a new one, not the old one again.
TEST(KpiWindowsTest, AForgottenWindowIsMadeAnew) {
  KpiWindows windows(absl::Minutes(1));
  Start(windows, T0 + absl::Seconds(10));
  windows.OnSessionClosed(
      Closed(T0 + absl::Seconds(10), absl::Seconds(5), 2, true));
  std::vector<WindowKpis> out = windows.Collect(T0 + absl::Minutes(2));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].final);
  EXPECT_EQ(windows.windows(), 0u);

  Start(windows, T0 + absl::Seconds(20));
  EXPECT_EQ(windows.windows(), 2u);
  out = windows.Collect(T0 - absl::Minutes(1));
  ASSERT_EQ(out.size(), 2u);
  for (const WindowKpis& k : out) {
    EXPECT_FALSE(k.final);
    EXPECT_EQ(k.sessions, 1u);
    EXPECT_EQ(k.sessions_closed, 0u);
    EXPECT_EQ(k.pageviews, 0u);
  }
}

// A site's all-channels window removed on its own (a restored checkpoint's
// removal) while its channel's window stays: the next session of that
// channel counts in a new all-channels window, not in the removed one
// (windows are found by a table of them, which must forget it).
TEST(KpiWindowsTest, ARemovedAllChannelsWindowIsMadeAnew) {
  KpiWindows windows(absl::Minutes(1));
  Start(windows, T0 + absl::Seconds(10));
  ASSERT_EQ(windows.Collect(T0).size(), 2u);
  v1::WindowKey all;
  all.set_start_s(absl::ToUnixSeconds(T0));
  all.set_site("shop");
  windows.RestoreRemoved(all);
  EXPECT_EQ(windows.windows(), 1u);
  Start(windows, T0 + absl::Seconds(20));
  std::vector<WindowKpis> out = windows.Collect(T0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].channel, "");
  EXPECT_EQ(out[0].sessions, 1u);
  EXPECT_EQ(out[1].channel, "Email");
  EXPECT_EQ(out[1].sessions, 2u);
}

// A checkpoint's delta restored over the full snapshot before it (the
// changelog read in order) replaces the window it names: its figures are
// the delta's, the window is found by its key afterwards (a site name past
// a string's inline buffer: the key views the window's own strings), and
// it is one window, not two.
TEST(KpiWindowsTest, ARestoredWindowReplacesTheOneHeldAlready) {
  const std::string site(40, 's');
  KpiWindows windows(absl::Minutes(1));
  SessionAttributes attrs;
  attrs.site_id = site;
  Event e;
  e.time = T0 + absl::Seconds(10);
  windows.OnSessionStarted(attrs, e);
  std::vector<v1::WindowState> full, delta;
  windows.Checkpoint(
      true, [](const v1::WindowKey&) {},
      [&](v1::WindowState& w) { full.push_back(w); });
  windows.OnSessionStarted(attrs, e);
  windows.Checkpoint(
      false, [](const v1::WindowKey&) {},
      [&](v1::WindowState& w) { delta.push_back(w); });
  ASSERT_EQ(full.size(), 1u);
  ASSERT_EQ(delta.size(), 1u);

  KpiWindows restored(absl::Minutes(1));
  restored.Restore(full[0]);
  restored.Restore(delta[0]);
  EXPECT_EQ(restored.windows(), 1u);
  restored.OnSessionStarted(attrs, e);  // found by its key, not made again
  EXPECT_EQ(restored.windows(), 1u);
  std::vector<WindowKpis> out = restored.Collect(T0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].site, site);
  EXPECT_EQ(out[0].sessions, 3u);
}

// The windows' memory follows the windows: it grows by at least a window's
// size for each window made, and what the final windows held goes with them
// (but the table's slots, which stay for the next ones).
TEST(KpiWindowsTest, ApproximateBytesFollowTheWindows) {
  KpiWindows windows(absl::Minutes(1));
  const size_t empty = windows.ApproximateBytes();
  for (int i = 0; i < 100; ++i) Start(windows, T0 + absl::Minutes(i));
  ASSERT_EQ(windows.windows(), 200u);
  const size_t peak = windows.ApproximateBytes();
  EXPECT_GE(peak, empty + 200 * sizeof(WindowKpis));
  for (int i = 0; i < 100; ++i) {
    windows.OnSessionClosed(
        Closed(T0 + absl::Minutes(i), absl::Seconds(1), 1, false));
  }
  (void)windows.Collect(T0 + absl::Hours(3));
  ASSERT_EQ(windows.windows(), 0u);
  EXPECT_LE(windows.ApproximateBytes() + 200 * sizeof(WindowKpis), peak);
}

// After a burst of windows, gone final, the table is let go too: the bytes
// come back to about an empty instance's, and windows made afterwards are
// found as before.
TEST(KpiWindowsTest, AfterABurstTheIndexIsLetGo) {
  KpiWindows windows(absl::Minutes(1));
  const size_t empty = windows.ApproximateBytes();
  for (int i = 0; i < 5000; ++i) Start(windows, T0 + absl::Minutes(i));
  ASSERT_EQ(windows.windows(), 10000u);
  for (int i = 0; i < 5000; ++i) {
    windows.OnSessionClosed(
        Closed(T0 + absl::Minutes(i), absl::Seconds(1), 1, false));
  }
  // One window left open: the index is not empty when it shrinks.
  const absl::Time later = T0 + absl::Hours(200);
  Start(windows, later);
  ASSERT_EQ(windows.Collect(later).size(), 10002u);
  ASSERT_EQ(windows.windows(), 2u);
  EXPECT_LE(windows.ApproximateBytes(), empty + 4096);
  // The one left and a new one are counted where they belong.
  Start(windows, later);
  Start(windows, later + absl::Minutes(1));
  std::vector<WindowKpis> out = windows.Collect(later - absl::Hours(1));
  ASSERT_EQ(out.size(), 4u);
  for (const WindowKpis& k : out) {
    EXPECT_EQ(k.sessions, k.start == later ? 2u : 1u);
  }
}

// Windows of many channels and minutes, each counted in its own window.
TEST(KpiWindowsTest, ManyWindowsAtOnceEachCountTheirOwn) {
  KpiWindows windows(absl::Minutes(1));
  SessionAttributes attrs;
  // (site, minute, channel; -1: the site's all-channels window)
  std::map<std::tuple<std::string, int, int>, uint64_t> expected;
  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) {
    // Two sites, so that a site's windows of a minute lie between the
    // other's in key order; "" sorts before every channel.
    const std::string site = rng() % 2 ? "shop" : "blog";
    const int minute = static_cast<int>(rng() % 4);
    const int channel = static_cast<int>(rng() % 12);
    // Views: the strings outlive the call (a temporary's view did not).
    const std::string channel_name = absl::StrCat("channel-", channel);
    attrs.site_id = site;
    attrs.channel = channel_name;
    Event e;
    e.time = T0 + absl::Minutes(minute) + absl::Seconds(rng() % 60);
    windows.OnSessionStarted(attrs, e);
    ++expected[{site, minute, channel}];
    ++expected[{site, minute, -1}];
  }
  std::vector<WindowKpis> out = windows.Collect(T0 - absl::Minutes(1));
  ASSERT_EQ(out.size(), expected.size());
  for (const WindowKpis& k : out) {
    const int minute = static_cast<int>(absl::ToInt64Minutes(k.start - T0));
    int channel = -1;
    if (!k.channel.empty()) {
      ASSERT_TRUE(absl::SimpleAtoi(k.channel.substr(8), &channel));
    }
    EXPECT_EQ(k.sessions, (expected[{k.site, minute, channel}]))
        << k.site << " " << k.channel;
  }
}

// Collect() and Checkpoint() against a model of their contract (the header's):
// the same records in the same (key) order, whatever the order of starts,
// closes, frontiers (some going back), incremental checkpoints and restores
// from a full one; every window final exactly once.
TEST(KpiWindowsTest, HandsOutWhatAWalkOverEveryWindowDoes) {
  using Key = std::tuple<int64_t, std::string, std::string>;
  struct Model {
    int64_t open = 0;
    uint64_t sessions = 0, closed = 0;
    bool dirty = false, changed = false, checkpointed = false;
  };
  std::map<Key, Model> model;
  std::vector<Key> model_removed;
  auto at = [&](absl::Time start, const std::string& channel) -> Model& {
    int64_t s = absl::ToUnixSeconds(start);
    s -= s % 60;
    Model& m = model[Key{s, "shop", channel}];
    m.dirty = m.changed = true;
    return m;
  };
  auto record = [](const WindowKpis& k) {
    return absl::StrCat(absl::ToUnixSeconds(k.start), "/", k.channel,
                        k.final ? " final " : " ", k.sessions, " ",
                        k.sessions_closed);
  };

  std::mt19937 rng(5);
  auto windows = std::make_unique<KpiWindows>(absl::Minutes(1));
  const char* const kChannels[] = {"Email", "Direct", "Organic Search"};
  struct Open {
    absl::Time start;
    std::string channel;
  };
  std::vector<Open> open;
  absl::Time now = T0;
  absl::Time frontier = T0 - absl::Minutes(5);
  size_t finals = 0;
  for (int step = 0; step < 3000; ++step) {
    now += absl::Seconds(rng() % 5);
    const int op = static_cast<int>(rng() % 10);
    if (op < 4) {  // a session starts now
      Open o{now, kChannels[rng() % 3]};
      SessionAttributes attrs;
      attrs.site_id = "shop";
      attrs.channel = o.channel;
      Event e;
      e.time = o.start;
      windows->OnSessionStarted(attrs, e);
      for (const std::string& ch : {std::string(), o.channel}) {
        Model& m = at(o.start, ch);
        ++m.sessions;
        ++m.open;
      }
      open.push_back(o);
    } else if (op < 7 && !open.empty()) {  // one closes
      const size_t i = rng() % open.size();
      ClosedSession c = Closed(open[i].start, absl::Seconds(1), 1, true);
      c.channel = open[i].channel;
      windows->OnSessionClosed(c);
      for (const std::string& ch : {std::string(), c.channel}) {
        Model& m = at(c.start, ch);
        --m.open;
        ++m.closed;
      }
      open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (op < 9) {  // a commit: collect at a frontier (now and then back)
      frontier = rng() % 8 == 0 ? frontier - absl::Seconds(rng() % 200)
                                : now - absl::Seconds(rng() % 120);
      std::vector<std::string> got, want;
      windows->Collect(frontier,
                       [&](const WindowKpis& k) { got.push_back(record(k)); });
      for (auto it = model.begin(); it != model.end();) {
        Model& m = it->second;
        const absl::Time end =
            absl::FromUnixSeconds(std::get<0>(it->first)) + absl::Minutes(1);
        WindowKpis k;
        k.start = absl::FromUnixSeconds(std::get<0>(it->first));
        k.channel = std::get<2>(it->first);
        k.sessions = m.sessions;
        k.sessions_closed = m.closed;
        if (m.open == 0 && end <= frontier) {
          k.final = true;
          want.push_back(record(k));
          if (m.checkpointed) model_removed.push_back(it->first);
          it = model.erase(it);
          ++finals;
          continue;
        }
        if (m.dirty) want.push_back(record(k));
        m.dirty = false;
        ++it;
      }
      ASSERT_EQ(got, want) << "step " << step;
      if (rng() % 2 == 0) {  // and checkpoint
        std::vector<std::string> got_ck, want_ck;
        windows->Checkpoint(
            false,
            [&](const v1::WindowKey& k) {
              got_ck.push_back(
                  absl::StrCat("- ", k.start_s(), "/", k.channel()));
            },
            [&](const v1::WindowState& w) {
              got_ck.push_back(absl::StrCat(w.key().start_s(), "/",
                                            w.key().channel(), " ",
                                            w.sessions(), " ", w.open()));
            });
        for (const Key& k : model_removed) {
          want_ck.push_back(
              absl::StrCat("- ", std::get<0>(k), "/", std::get<2>(k)));
        }
        model_removed.clear();
        for (auto& [k, m] : model) {
          if (!m.changed) continue;
          want_ck.push_back(absl::StrCat(std::get<0>(k), "/", std::get<2>(k),
                                         " ", m.sessions, " ", m.open));
          m.changed = false;
          m.checkpointed = true;
        }
        ASSERT_EQ(got_ck, want_ck) << "step " << step;
      }
    } else if (step % 7 == 0) {  // a restart: restored from a full checkpoint
      auto restored = std::make_unique<KpiWindows>(absl::Minutes(1));
      windows->Checkpoint(
          true, [](const v1::WindowKey&) {},
          [&](const v1::WindowState& w) { restored->Restore(w); });
      windows = std::move(restored);
      model_removed.clear();
      for (auto& [k, m] : model) {
        m.dirty = m.changed = false;
        m.checkpointed = true;
      }
    }
  }
  EXPECT_GT(finals, 150u);
  EXPECT_EQ(windows->windows(), model.size());
}

}  // namespace
}  // namespace kpistream
