#include "engine/rejection_reporter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "export/dead_letter.h"
#include "ingest/event_decoder.h"

namespace kpistream {
namespace {

// An example in a log line: shorter than a dead letter's header.
constexpr size_t kExampleMaxBytes = 160;

// `detail` cut to an example, its hint of another format kept whole (an
// audit: a combined_log input's message of ~150 bytes cut the "looks like
// JSON" hint away, the one thing the summary should have said).
std::string Example(absl::string_view detail) {
  const size_t hint = detail.rfind(kOtherFormatHintStart);
  if (detail.size() <= kExampleMaxBytes || hint == absl::string_view::npos) {
    return SanitizeDetail(detail, kExampleMaxBytes);
  }
  return absl::StrCat(SanitizeDetail(detail.substr(0, hint), kExampleMaxBytes),
                      SanitizeDetail(detail.substr(hint), kExampleMaxBytes));
}

}  // namespace

bool RejectionReporter::Summary::OnlyExpected() const {
  return !reasons.empty() &&
         std::all_of(reasons.begin(), reasons.end(), [](const Reason& r) {
           return r.reason == "not_pageview";
         });
}

std::string RejectionReporter::Summary::Text() const {
  std::vector<std::string> parts;
  for (const Reason& r : reasons) {
    parts.push_back(r.example.empty() ? absl::StrCat(r.count, " ", r.reason)
                                      : absl::StrCat(r.count, " ", r.reason,
                                                     " (", r.example, ")"));
  }
  std::string text = absl::StrFormat(
      "%d/%d records on %s rejected in the last %.0f s: %s", rejected,
      std::max(records, rejected), topic, absl::ToDoubleSeconds(interval),
      absl::StrJoin(parts, ", "));
  if (!format.empty()) {
    absl::StrAppend(&text, "; the input format of ", topic, " is ", format);
  }
  return text;
}

std::vector<LogField> RejectionReporter::Summary::Fields() const {
  std::vector<LogField> fields = {
      {"topic", topic},
      {"records", std::max(records, rejected)},
      {"rejected", rejected},
      {"interval_seconds", absl::ToDoubleSeconds(interval)},
      {"format", format}};
  for (const Reason& r : reasons) {
    fields.push_back({absl::StrCat("rejected_", r.reason), r.count});
  }
  return fields;
}

RejectionReporter::RejectionReporter(Options options, absl::Time now)
    : options_(std::move(options)), started_(now) {}

void RejectionReporter::Consumed(absl::string_view topic) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) it = topics_.emplace(topic, TopicCounts()).first;
  ++it->second.records;
}

void RejectionReporter::Rejected(absl::string_view topic,
                                 absl::string_view reason,
                                 absl::string_view detail) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) it = topics_.emplace(topic, TopicCounts()).first;
  TopicCounts& counts = it->second;
  ++counts.rejected;
  auto r = counts.reasons.find(reason);
  if (r == counts.reasons.end()) {
    r = counts.reasons.emplace(std::string(reason), ReasonCount()).first;
    r->second.example = Example(detail);
  }
  ++r->second.count;
}

std::vector<RejectionReporter::Summary> RejectionReporter::Take(
    absl::Time now) {
  if (now - started_ < options_.interval) return {};
  return Flush(now);
}

std::vector<RejectionReporter::Summary> RejectionReporter::Flush(
    absl::Time now) {
  std::vector<Summary> out;
  for (auto& [topic, counts] : topics_) {
    if (counts.rejected > 0) {
      Summary summary;
      summary.topic = topic;
      summary.records = counts.records;
      summary.rejected = counts.rejected;
      summary.interval = now - started_;
      for (auto& [reason, count] : counts.reasons) {
        summary.reasons.push_back(
            {reason, count.count, std::move(count.example)});
      }
      std::sort(summary.reasons.begin(), summary.reasons.end(),
                [](const Summary::Reason& a, const Summary::Reason& b) {
                  return a.count != b.count ? a.count > b.count
                                            : a.reason < b.reason;
                });
      auto format = options_.input_formats.find(topic);
      if (format != options_.input_formats.end()) {
        summary.format = format->second;
      }
      out.push_back(std::move(summary));
    }
    counts = TopicCounts();
  }
  std::sort(out.begin(), out.end(), [](const Summary& a, const Summary& b) {
    return a.topic < b.topic;
  });
  started_ = now;
  return out;
}

RejectionReporter::Options RejectionReporterOptions(const Config& config) {
  RejectionReporter::Options options;
  for (const InputConfig& input : config.inputs) {
    std::string& format = options.input_formats[input.topic];
    format = std::string(InputFormatName(input.format));
    if (input.kind == InputKind::kAdCost) format += " (kind: ad_cost)";
  }
  return options;
}

}  // namespace kpistream
