// BotFilter: recognises automated traffic by its user agent (SPEC §9).
// Built in: a user agent containing (case-insensitively) any of SPEC's bot,
// spider, crawl, slurp, bingpreview, facebookexternalhit, headless,
// python-requests, curl/, wget/, and of the clients that fill real access
// logs without being visitors (kBuiltInPatterns in bot_filter.cc: health
// checks, monitors, HTTP libraries, scanners, link previews, feed readers,
// link checkers, crawlers without those words), a user agent that names a web
// address (a crawler's "+http://...": browsers name none, but smart TVs'
// HbbTV ones and IE's EmbeddedWB component, which stay visitors) and one that
// is only a language's name
// ("Ruby"). "bot" inside a phone's name (CUBOT, a maker of Android phones) is
// not one. More patterns can be added from config.
//
// An empty (or blank) user agent is a bot only when the filter is built with
// `empty_is_bot`: access-log lines without one ("-") always are, while a
// WebEvent's user_agent is optional (server-side collectors and backend
// conversions send none) and is a bot only with `bots.empty_user_agent: bot`.
// Bot events are counted (kpistream_bot_events_total) and excluded from KPIs.
//
// Verdicts are remembered per user agent (a few thousand at most, then
// forgotten at once): real traffic repeats a few hundred user agents, and a
// lookup is cheaper than matching every pattern. Not thread-safe: one owner
// (each stream thread has its own).
#ifndef KPISTREAM_AGGREGATE_BOT_FILTER_H_
#define KPISTREAM_AGGREGATE_BOT_FILTER_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace kpistream {

class BotFilter {
 public:
  // `extra_patterns` are matched like the built-in ones (substring, any case).
  explicit BotFilter(std::vector<std::string> extra_patterns = {},
                     bool empty_is_bot = false);

  bool IsBot(absl::string_view user_agent) const;

 private:
  bool Match(absl::string_view user_agent) const;

  std::vector<std::string> patterns_;  // lower case
  bool empty_is_bot_;
  mutable absl::flat_hash_map<std::string, bool> verdicts_;
  mutable std::string lower_;  // Match()'s buffer
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_BOT_FILTER_H_
