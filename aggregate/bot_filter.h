// BotFilter: recognises automated traffic by its user agent (SPEC §9).
// Built in: a user agent containing (case-insensitively) any of bot, spider,
// crawl, slurp, bingpreview, facebookexternalhit, headless, python-requests,
// curl/, wget/. More patterns can be added from config.
//
// An empty (or blank) user agent is a bot only when the filter is built with
// `empty_is_bot`: access-log lines without one ("-") always are, while a
// WebEvent's user_agent is optional (server-side collectors and backend
// conversions send none) and is a bot only with `bots.empty_user_agent: bot`.
// Bot events are counted (kpistream_bot_events_total) and excluded from KPIs.
#ifndef KPISTREAM_AGGREGATE_BOT_FILTER_H_
#define KPISTREAM_AGGREGATE_BOT_FILTER_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace kpistream {

class BotFilter {
 public:
  // `extra_patterns` are matched like the built-in ones (substring, any case).
  explicit BotFilter(std::vector<std::string> extra_patterns = {},
                     bool empty_is_bot = false);

  bool IsBot(absl::string_view user_agent) const;

 private:
  std::vector<std::string> patterns_;  // lower case
  bool empty_is_bot_;
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_BOT_FILTER_H_
