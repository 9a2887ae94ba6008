#include "aggregate/kpi_windows.h"

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
  EXPECT_EQ(all.duration_seconds_sum, 30);
  EXPECT_TRUE(windows.Collect(T0 + absl::Minutes(10)).empty());  // final once
  EXPECT_EQ(windows.windows(), 2u);  // the 10:01 window, still open
}

}  // namespace
}  // namespace kpistream
