#include "aggregate/bot_filter.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace kpistream {

BotFilter::BotFilter(std::vector<std::string> extra_patterns, bool empty_is_bot)
    : patterns_{"bot",      "spider",          "crawl",
                "slurp",    "bingpreview",     "facebookexternalhit",
                "headless", "python-requests", "curl/",
                "wget/"},
      empty_is_bot_(empty_is_bot) {
  for (std::string& p : extra_patterns) {
    if (!p.empty()) patterns_.push_back(absl::AsciiStrToLower(p));
  }
}

bool BotFilter::IsBot(absl::string_view user_agent) const {
  if (absl::StripAsciiWhitespace(user_agent).empty()) return empty_is_bot_;
  thread_local std::string lower;
  lower.assign(user_agent.data(), user_agent.size());
  absl::AsciiStrToLower(&lower);
  for (const std::string& p : patterns_) {
    if (absl::StrContains(lower, p)) return true;
  }
  return false;
}

}  // namespace kpistream
