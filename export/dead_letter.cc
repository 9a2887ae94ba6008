#include "export/dead_letter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "aggregate/utf8.h"

namespace kpistream {
namespace {

constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

absl::string_view DefaultDetail(absl::string_view reason) {
  if (reason == "bot") {
    return "the user agent matches a bot pattern (the built-in list or "
           "bots.user_agent_patterns), or is empty where that makes a bot "
           "(bots.empty_user_agent: bot; always in combined_log input)";
  }
  if (reason == "late") {
    return "event time is behind the watermark by more than "
           "processing.allowed_lateness, or would move its session's start";
  }
  if (reason == "duplicate") {
    return "the same site_id and event_id were seen within "
           "processing.dedup_horizon";
  }
  return "";
}

std::string SanitizeDetail(absl::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes + 4));
  // Sanitise up to just past the limit: enough to know whether it is cut.
  while (!text.empty() && out.size() <= max_bytes) {
    const size_t length = Utf8SequenceLength(text);
    if (length == 0) {
      out.append(kReplacement.data(), kReplacement.size());
      text.remove_prefix(1);
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(text[0]);
    if (length == 1 && (c < 0x20 || c == 0x7F)) {
      out.push_back(' ');
    } else {
      out.append(text.data(), length);
    }
    text.remove_prefix(length);
  }
  if (out.size() <= max_bytes && text.empty()) return out;
  constexpr absl::string_view kCut = "...";
  size_t keep = max_bytes - kCut.size();
  // Back to the start of the character at `keep` (out is valid UTF-8).
  while (keep > 0 && (static_cast<unsigned char>(out[keep]) & 0xC0) == 0x80) {
    --keep;
  }
  out.resize(keep);
  out.append(kCut.data(), kCut.size());
  return out;
}

KafkaHeaders DeadLetterHeaders(absl::string_view reason,
                               absl::string_view detail,
                               absl::string_view source_topic,
                               int32_t source_partition,
                               int64_t source_offset) {
  return {
      {"reason", std::string(reason)},
      {"detail", SanitizeDetail(detail.empty() ? DefaultDetail(reason) : detail,
                                kDeadLetterDetailMaxBytes)},
      {"source_topic", std::string(source_topic)},
      {"source_partition", absl::StrCat(source_partition)},
      {"source_offset", absl::StrCat(source_offset)},
  };
}

void FitDeadLetter(size_t max_record_bytes, absl::string_view* key,
                   absl::string_view* value, KafkaHeaders* headers) {
  // The truncation headers' own room: names and a 20-digit size each.
  constexpr size_t kTruncationHeaders = 2 * (20 + 20);
  size_t fixed = kRecordFramingBytes;
  for (const auto& [name, text] : *headers) fixed += name.size() + text.size();
  if (max_record_bytes == SIZE_MAX ||
      fixed + key->size() + value->size() <= max_record_bytes) {
    return;
  }
  fixed += kTruncationHeaders;
  const size_t room = max_record_bytes > fixed ? max_record_bytes - fixed : 0;
  headers->emplace_back("value_truncated_from", absl::StrCat(value->size()));
  if (key->size() > room) {
    headers->emplace_back("key_truncated_from", absl::StrCat(key->size()));
    *key = key->substr(0, room);
  }
  *value = value->substr(0, room - key->size());
}

}  // namespace kpistream
