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

namespace {
// Remembered verdicts: at most this many, of user agents at most this long.
constexpr size_t kMaxVerdicts = 4096;
constexpr size_t kMaxRememberedLength = 512;
}  // namespace

bool BotFilter::IsBot(absl::string_view user_agent) const {
  if (user_agent.size() > kMaxRememberedLength) return Match(user_agent);
  auto it = verdicts_.find(user_agent);
  if (it != verdicts_.end()) return it->second;
  const bool bot = Match(user_agent);
  if (verdicts_.size() >= kMaxVerdicts) verdicts_.clear();
  verdicts_.emplace(user_agent, bot);
  return bot;
}

bool BotFilter::Match(absl::string_view user_agent) const {
  if (absl::StripAsciiWhitespace(user_agent).empty()) return empty_is_bot_;
  lower_.assign(user_agent.data(), user_agent.size());
  absl::AsciiStrToLower(&lower_);
  for (const std::string& p : patterns_) {
    if (absl::StrContains(lower_, p)) return true;
  }
  return false;
}

}  // namespace kpistream
