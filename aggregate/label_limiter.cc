#include "aggregate/label_limiter.h"

#include <algorithm>
#include <utility>

namespace kpistream {

LabelLimiter::LabelLimiter(std::string label, int max_values,
                           std::optional<std::vector<std::string>> allowlist)
    : label_(std::move(label)),
      max_values_(static_cast<size_t>(std::max(max_values, 0))),
      has_allowlist_(allowlist.has_value()) {
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
  if (value.empty()) return kNotSetId;
  auto it = ids_.find(value);
  if (it != ids_.end()) return it->second;
  if (has_allowlist_ || admitted() >= max_values_) {
    ++overflow_;
    return kOtherId;
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
