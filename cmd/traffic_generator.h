// TrafficGenerator: realistic synthetic web traffic, seeded and reproducible
// (same options and seed: the same events in the same order).
//
// A population of visitors (a share of them returning) runs sessions of
// several page views separated by think times, with a share of single-page
// visits, engagement pings, channels from utm parameters / referrers / click
// ids, devices, countries, and conversions of several goals with revenue and
// order ids. The event-time clock starts at `start` and advances with the
// configured rate (events per second of event time), optionally with a
// diurnal shape.
//
// Acquisition is a GA4-style mix: direct, organic search (Google, Bing),
// Google Ads landings that are auto-tagged (a gclid and no utm parameters;
// referred by Google, by a search partner or by nothing at all) or tagged by
// hand (utm google / cpc plus a gclid), organic social (Facebook's fbclid,
// which proves no paid click), paid social, newsletter emails, referrals and
// display. Campaign parameters are on a session's first page view only.
#ifndef KPISTREAM_CMD_TRAFFIC_GENERATOR_H_
#define KPISTREAM_CMD_TRAFFIC_GENERATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "kpistream/v1/web_event.pb.h"

namespace kpistream {

struct TrafficOptions {
  uint64_t seed = 1;
  int64_t visitors = 10000;                              // population size
  double events_per_second = 1000;                       // event-time rate
  absl::Time start = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
  std::vector<std::string> sites = {"shop"};
  std::vector<std::string> goals = {"signup", "lead", "purchase"};
  bool diurnal = false;
  // Browsers' user agents; false: none at all, as server-side collectors and
  // backend conversion events send them.
  bool user_agent = true;
  // Where a landing page view carries its campaign: false, in the utm_* and
  // click_id fields; true, only in its page_url's query string
  // ("https://shop.example.com/?utm_source=newsletter&utm_medium=email&
  // utm_campaign=weekly-digest", ".../products/7?gclid=Cj0...") with those
  // fields empty, as collectors that send just the page location do. The
  // events are otherwise the same, and so are the sessions and channels the
  // engine derives from them (SPEC §2).
  bool campaign_in_url = false;
  // Each event carries its session's client session id ("<visitor_id>-<n>",
  // n: the visitor's session number), as a GA4-style tag sends one: for
  // sessions.session_source: client. A session that starts while another of
  // the visitor's is under way (a second tab) has that one's id and number.
  // False: none, as before.
  bool session_ids = false;
};

class TrafficGenerator {
 public:
  explicit TrafficGenerator(TrafficOptions options);
  ~TrafficGenerator();

  // Fills `event` with the next event (overwritten). Events come in
  // event-time order.
  void Next(kpistream::v1::WebEvent* event);

  int64_t generated() const;

  // How far event time runs ahead of the events' count at the rate
  // (n / events_per_second) once sessions are under way. The event clock
  // advances with session arrivals, so while every event is still a
  // session's first page view it runs up to ~5 times as fast, until the
  // sessions' later events fill in (about five minutes of event time); it
  // then stays about this far ahead (~2 min with the default mix).
  // Measured on a generator made from `options`, at most at 1000 events per
  // second (faster, the lead hardly changes): about a second of CPU at most.
  // loadgen paced in real time starts this long before now, so that its events
  // follow the wall clock instead of running ahead of it.
  static absl::Duration SteadyLead(TrafficOptions options);

  // Sessions a generator with `options` starts per second of event time, on
  // average. A visitor starts one every options.visitors / this seconds:
  // where that is not well over an engine's 30 min inactivity timeout, a
  // visitor's sessions run into each other and rarely close.
  static double SessionsPerSecond(const TrafficOptions& options);

  // loadgen's default population for `options`' rate: a visitor back about
  // every 4 h of event time (a session in eight then runs into the
  // visitor's previous one, under 30 min apart, as quick returns do),
  // 10,000 to 1,000,000 visitors (loadgen's RSS with a million: 92 MB).
  static int64_t DefaultVisitors(const TrafficOptions& options);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpistream

#endif  // KPISTREAM_CMD_TRAFFIC_GENERATOR_H_
