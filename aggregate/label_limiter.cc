#include "aggregate/label_limiter.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "aggregate/utf8.h"

namespace kpistream {

bool LabelAdmission::Trusted(absl::string_view value) {
  std::lock_guard<std::mutex> lock(mu_);
  return trusted_.contains(value);
}

bool LabelAdmission::Admit(absl::string_view value, bool trusted) {
  std::lock_guard<std::mutex> lock(mu_);
  if (admitted_.contains(value)) {
    if (trusted && !trusted_.contains(value)) {
      trusted_.emplace(value);
      any_trusted_.store(true, std::memory_order_release);
    }
    return true;
  }
  if (admitted_.size() >= max_values_) return false;
  // Trusted values take at most half the room at once: a long list of an
  // ad platform's campaigns leaves the visitors' frequent ones a place.
  if (trusted && min_count_ > 1 && trusted_admitted_ >= (max_values_ + 1) / 2) {
    trusted = false;
  }
  const uint64_t key =
      min_count_ > 1 ? absl::Hash<absl::string_view>{}(value) : 0;
  if (min_count_ > 1 && !trusted) {
    auto candidate = candidates_.find(key);
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
      candidate = candidates_.emplace(key, 0).first;
    }
    if (++candidate->second < min_count_) return false;
    candidates_.erase(candidate);
  } else if (min_count_ > 1) {
    // Trusted: admitted now, whatever it counted so far.
    if (auto c = candidates_.find(key); c != candidates_.end()) {
      candidates_.erase(c);
    }
  }
  if (trusted && min_count_ > 1) ++trusted_admitted_;
  if (trusted) {
    trusted_.emplace(value);
    any_trusted_.store(true, std::memory_order_release);
  }
  admitted_.emplace(value);
  generation_.store(admitted_.size(), std::memory_order_release);
  return true;
}

LabelAdmission* LabelAdmissions::For(const std::string& label,
                                     size_t max_values, uint32_t min_count) {
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<LabelAdmission>& admission = by_label_[label];
  if (admission == nullptr) {
    admission = std::make_unique<LabelAdmission>(max_values, min_count);
  }
  return admission.get();
}

bool CombinationAdmission::Admit(uint64_t hash) {
  std::lock_guard<std::mutex> lock(mu_);
  if (admitted_.contains(hash)) return true;
  if (admitted_.size() >= max_values_) return false;
  admitted_.insert(hash);
  return true;
}

CombinationAdmission* LabelAdmissions::Combinations(const std::string& labels,
                                                    size_t max_values) {
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<CombinationAdmission>& admission = by_labels_[labels];
  if (admission == nullptr) {
    admission = std::make_unique<CombinationAdmission>(max_values);
  }
  return admission.get();
}

LabelLimiter::LabelLimiter(std::string label, int max_values,
                           std::optional<std::vector<std::string>> allowlist,
                           int min_count, LabelAdmissions* admissions,
                           const std::vector<std::string>& reserved)
    : label_(std::move(label)) {
  names_ = {kOther, kNotSet};
  ids_.emplace(kOther, kOtherId);
  ids_.emplace(kNotSet, kNotSetId);
  if (allowlist.has_value()) {
    for (const std::string& value : *allowlist) {
      if (!value.empty() && !ids_.contains(value)) Admit(value);
    }
    configured_ = static_cast<Id>(names_.size());
    return;  // no admission: the list decides
  }
  for (const std::string& value : reserved) {
    if (!value.empty() && IsPrintableUtf8(value) && !ids_.contains(value)) {
      Admit(value);
    }
  }
  configured_ = static_cast<Id>(names_.size());
  const size_t max = static_cast<size_t>(std::max(max_values, 0));
  const uint32_t count = static_cast<uint32_t>(std::max(min_count, 1));
  if (admissions != nullptr) {
    admission_ = admissions->For(label_, max, count);
  } else {
    own_admission_ = std::make_unique<LabelAdmission>(max, count);
    admission_ = own_admission_.get();
  }
}

LabelLimiter::Id LabelLimiter::Intern(absl::string_view value) {
  return Intern(value, /*trusted=*/false);
}

LabelLimiter::Id LabelLimiter::InternTrusted(absl::string_view value) {
  return Intern(value, /*trusted=*/true);
}

LabelLimiter::Id LabelLimiter::InternUncounted(absl::string_view value) {
  return Intern(value, /*trusted=*/false, /*counted=*/false);
}

LabelLimiter::Id LabelLimiter::Intern(absl::string_view value, bool trusted,
                                      bool counted) {
  if (value.empty()) return kNotSetId;
  if (value == last_name_ && !trusted) return last_id_;
  auto it = ids_.find(value);
  if (it != ids_.end()) {
    // A value another source admitted first, named by a trusted one now.
    if (trusted && admission_ != nullptr && it->second >= configured_) {
      admission_->Admit(value, /*trusted=*/true);
    }
    last_name_ = it->first;
    last_id_ = it->second;
    return it->second;
  }
  // A control character (a protobuf string may hold any): not a label
  // value every Prometheus client reads back. Too long: the page's size.
  if (admission_ == nullptr ||
      (!trusted && value.size() > kMaxLabelValueBytes) ||
      !IsPrintableUtf8(value) || !admission_->Admit(value, trusted)) {
    if (counted) ++overflow_;
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
