#include "aggregate/label_limiter.h"

#include <algorithm>
#include <utility>

#include "aggregate/utf8.h"

namespace kpistream {

LabelLimiter::LabelLimiter(std::string label, int max_values,
                           std::optional<std::vector<std::string>> allowlist,
                           int min_count)
    : label_(std::move(label)),
      max_values_(static_cast<size_t>(std::max(max_values, 0))),
      has_allowlist_(allowlist.has_value()),
      min_count_(static_cast<uint32_t>(std::max(min_count, 1))) {
  names_ = {kOther, kNotSet};
  ids_.emplace(kOther, kOtherId);
  ids_.emplace(kNotSet, kNotSetId);
  if (has_allowlist_) {
    for (const std::string& value : *allowlist) {
      if (!value.empty() && !ids_.contains(value)) Admit(value);
    }
  }
}

LabelLimiter::Id LabelLimiter::Intern(absl::string_view value) {
  return Intern(value, min_count_);
}

LabelLimiter::Id LabelLimiter::InternTrusted(absl::string_view value) {
  return Intern(value, 1);
}

LabelLimiter::Id LabelLimiter::Intern(absl::string_view value,
                                      uint32_t min_count) {
  if (value.empty()) return kNotSetId;
  if (value == last_name_) return last_id_;
  auto it = ids_.find(value);
  if (it != ids_.end()) {
    last_name_ = it->first;
    last_id_ = it->second;
    return it->second;
  }
  // A control character (a protobuf string may hold any): not a label
  // value every Prometheus client reads back.
  if (has_allowlist_ || admitted() >= max_values_ || !IsPrintableUtf8(value)) {
    ++overflow_;
    return kOtherId;
  }
  if (min_count <= 1 && min_count_ > 1) {
    // Trusted: admitted now, whatever it counted so far.
    if (auto c = candidates_.find(value); c != candidates_.end()) {
      candidates_.erase(c);
    }
  } else if (min_count > 1) {
    auto candidate = candidates_.find(value);
    if (candidate == candidates_.end()) {
      if (candidates_.size() >= std::max<size_t>(4096, 200 * max_values_)) {
        // Misra-Gries: decrement every count and drop the zeros. A value
        // seen in more than 1/capacity of the lookups always survives.
        for (auto it = candidates_.begin(); it != candidates_.end();) {
          --it->second;
          if (it->second == 0) {
            candidates_.erase(it++);
          } else {
            ++it;
          }
        }
      }
      candidate = candidates_.emplace(std::string(value), 0).first;
    }
    if (++candidate->second < min_count) {
      ++overflow_;
      return kOtherId;
    }
    candidates_.erase(candidate);
  }
  return Admit(value);
}

LabelLimiter::Id LabelLimiter::Admit(absl::string_view value) {
  const Id id = static_cast<Id>(names_.size());
  const std::string& stored = storage_.emplace_back(value);
  names_.push_back(stored);
  ids_.emplace(stored, id);
  return id;
}

}  // namespace kpistream
