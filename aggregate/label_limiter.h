// LabelLimiter: bounds the distinct values of one metric label (SPEC §4), so
// that a flood of random input values (campaigns, sites, currencies ...)
// cannot grow the number of exported series.
//
// Three policies:
//   - first come, first admitted (no allowlist, min_count 1): the first
//     `max_values` distinct values are admitted for the limiter's lifetime;
//   - most frequent (no allowlist, min_count > 1), for attacker-controlled
//     labels (campaigns, landing pages): a value is admitted once it has been
//     seen `min_count` times, while fewer than `max_values` are admitted.
//     Candidates are counted in a bounded table (max(4096, 200 x
//     max_values) entries, Misra-Gries): when it is full every count drops
//     by one and zeros are forgotten, so a flood of one-off values never gets
//     in while a value seen in more than 1/4096 of the lookups does;
//   - allowlist: exactly the listed values are admitted (`max_values` is then
//     ignored; the list is the bound).
// Every other value maps to "(other)" and adds one to overflow(), and so
// does a value that is not printable UTF-8 (it holds a control character:
// a protobuf string may hold any byte, and some Prometheus clients cannot
// read such a label value back) or is longer than kMaxLabelValueBytes
// (unless listed, reserved or trusted: the series were bounded, not their
// size: 50 campaigns and landing paths of 1-8 KiB made a /metrics page of
// 177 MB, an audit; an ad platform's campaign name may be 255 characters,
// up to 765 bytes, and ROAS joins sessions to it). An empty value maps to
// "(not set)" (GA4's wording) and is never an overflow. The reserved values
// themselves ("(other)", "(not set)") map to themselves.
//
// Each admitted value gets a small dense id (reserved ids first), so that hot
// counters can be keyed by fixed-size tuples of ids instead of strings; Name()
// turns an id back into its label value. Lookups do not allocate once a value
// is admitted. Names stay valid (and ids stable) for the limiter's lifetime.
//
// Which values are admitted is decided by a LabelAdmission: the limiter's
// own, or one that the limiters of several threads share (the engine's
// stream threads each count into their own KpiCounters, merged by label
// value on /metrics: with an admission each, a cap of 50 let 50 values in
// per thread, and a value admitted by one thread was "(other)" in another).
//
// Not thread-safe: owned by one thread (its LabelAdmission is). Neither
// copyable nor movable, because the ids' names point into its own storage.
#ifndef KPISTREAM_AGGREGATE_LABEL_LIMITER_H_
#define KPISTREAM_AGGREGATE_LABEL_LIMITER_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "aggregate/label_values.h"

namespace kpistream {

// Which values of one label are admitted: the first `max_values` (min_count
// 1), or those seen `min_count` times while fewer than `max_values` are
// (candidates counted Misra-Gries, as above). Thread-safe.
class LabelAdmission {
 public:
  LabelAdmission(size_t max_values, uint32_t min_count)
      : max_values_(max_values), min_count_(std::max<uint32_t>(min_count, 1)) {}
  LabelAdmission(const LabelAdmission&) = delete;
  LabelAdmission& operator=(const LabelAdmission&) = delete;

  // Whether `value` (printable, not empty, not reserved) is admitted, now or
  // before; a sighting of it. `trusted`: admitted at its first sighting
  // while there is room and trusted values admitted so hold less than half
  // of it (LabelLimiter::InternTrusted); beyond, a sighting as any other.
  bool Admit(absl::string_view value, bool trusted);
  // Whether an admitted `value` was looked up from a trusted source (an ad
  // cost record's campaign), then or later: its combinations are kept
  // (KpiCounters), so that ROAS finds its sessions beside its cost.
  bool Trusted(absl::string_view value);
  // Whether any value was (no lock: most labels never have one).
  bool AnyTrusted() const {
    return any_trusted_.load(std::memory_order_acquire);
  }
  // How many values were admitted so far (no lock): a value not admitted
  // at one generation is not at the same generation later.
  uint64_t generation() const {
    return generation_.load(std::memory_order_acquire);
  }

 private:
  const size_t max_values_;
  const uint32_t min_count_;
  std::mutex mu_;
  absl::flat_hash_set<std::string> admitted_;  // guarded by mu_
  absl::flat_hash_set<std::string> trusted_;   // admitted; guarded by mu_
  std::atomic<bool> any_trusted_{false};       // !trusted_.empty()
  std::atomic<uint64_t> generation_{0};        // admitted_.size()
  // By a hash of the value, not the value (in memory only, never kept):
  // candidates are up to 200 x max_values values seen once or twice, each
  // of them up to a URL path long (an audit: 80 MB of landing pages held,
  // unseen by kpistream_state_bytes). Two values of one hash (one in 2^64)
  // would count as one.
  absl::flat_hash_map<uint64_t, uint32_t> candidates_;  // guarded by mu_
  size_t trusted_admitted_ = 0;  // at once, as trusted; guarded by mu_
};

// Which combinations of one set of labels (a family's: site, source,
// medium, campaign ...) are admitted: the first `max_values` distinct ones,
// by a hash of their label values (in memory only: two combinations of one
// hash, one in 2^64, would share a place). The bound per label leaves a
// family its labels' product (an audit: 50 values per label, mixed, made
// 1.74 million series); this bounds the product. Thread-safe.
class CombinationAdmission {
 public:
  explicit CombinationAdmission(size_t max_values) : max_values_(max_values) {}
  CombinationAdmission(const CombinationAdmission&) = delete;
  CombinationAdmission& operator=(const CombinationAdmission&) = delete;

  // Whether the combination of this hash is admitted, now or before.
  bool Admit(uint64_t hash);

 private:
  const size_t max_values_;
  std::mutex mu_;
  absl::flat_hash_set<uint64_t> admitted_;  // guarded by mu_
};

// One LabelAdmission per label name (and one CombinationAdmission per set of
// labels), for the limiters of several threads. Thread-safe.
class LabelAdmissions {
 public:
  // The admission of `label`, made with these bounds at its first call.
  LabelAdmission* For(const std::string& label, size_t max_values,
                      uint32_t min_count);
  // The admission of the combinations of `labels` (their names, joined),
  // made with this bound at its first call.
  CombinationAdmission* Combinations(const std::string& labels,
                                     size_t max_values);

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<LabelAdmission>> by_label_;
  std::map<std::string, std::unique_ptr<CombinationAdmission>> by_labels_;
};

// The longest label value a limiter admits from the visitors' input (a
// configured or trusted one may be longer): 512 bytes, room for a path of
// 56 percent-encoded CJK characters.
inline constexpr size_t kMaxLabelValueBytes = 512;

class LabelLimiter {
 public:
  using Id = uint32_t;

  static constexpr absl::string_view kOther = kpistream::kOther;
  static constexpr absl::string_view kNotSet = kpistream::kNotSet;
  static constexpr Id kOtherId = 0;
  static constexpr Id kNotSetId = 1;

  // `label` is the label's name (e.g. "site"), reported with the overflow
  // count. A negative `max_values` is treated as 0.
  // `admissions`: where the admission of `label` is shared (nullptr: this
  // limiter's own); an allowlist needs none. `reserved`: values admitted
  // from the start beyond `max_values` (not taking its room), unless there
  // is an allowlist, which decides alone.
  LabelLimiter(std::string label, int max_values,
               std::optional<std::vector<std::string>> allowlist = std::nullopt,
               int min_count = 1, LabelAdmissions* admissions = nullptr,
               const std::vector<std::string>& reserved = {});
  LabelLimiter(const LabelLimiter&) = delete;
  LabelLimiter& operator=(const LabelLimiter&) = delete;

  // The id of the label value to use for `value`, admitting it if the policy
  // allows; kOtherId (and one more overflow) if it does not.
  Id Intern(absl::string_view value);

  // The same for a value from a trusted source (the operator's ad
  // platforms, not the visitors' URLs): admitted at its first lookup while
  // there is room, however many sightings the policy asks of other values,
  // as long as values admitted so take at most half the room (then as
  // Intern()). An allowlist still decides alone.
  Id InternTrusted(absl::string_view value);

  // The same as Intern() for a gauge set again and again from live state
  // (open sessions, active visitors) whose values the events that made it
  // were counted with already: no overflow counted (set at every publish,
  // an idle engine's overflow rate never fell to 0).
  Id InternUncounted(absl::string_view value);

  // The label value to use for `value`: the value itself, "(not set)" or
  // "(other)". Same admission and overflow accounting as Intern().
  absl::string_view Value(absl::string_view value) {
    return Name(Intern(value));
  }

  // The label value of an id returned by Intern(). `id` must be < size().
  absl::string_view Name(Id id) const { return names_[id]; }

  // Whether `id` is "(other)", "(not set)", an allowlisted or a reserved
  // value (one that the configuration, not the input, put there), or a
  // value a trusted source named (InternTrusted): never put under
  // "(other)" for its combination with other labels (KpiCounters).
  bool Kept(Id id) const {
    return id < configured_ ||
           (admission_ != nullptr && admission_->AnyTrusted() &&
            admission_->Trusted(names_[id]));
  }

  // Whether `id` is "(other)", "(not set)", an allowlisted or a reserved
  // value: one the configuration, not the input, put there.
  bool Configured(Id id) const { return id < configured_; }

  // One more lookup answered "(other)" elsewhere: a value this limiter
  // admitted, put under "(other)" because its combination with other labels
  // was not (KpiCounters).
  void CountOverflow() { ++overflow_; }

  // Changes whenever a value may have been admitted since (an allowlist's
  // never does): a lookup that answered "(other)" answers it again while
  // this stays the same (KpiCounters::AddOpenSessions).
  uint64_t generation() const {
    return admission_ != nullptr ? admission_->generation() : 0;
  }

  const std::string& label() const { return label_; }
  // Lookups answered with "(other)" because the value was not admitted.
  uint64_t overflow() const { return overflow_; }
  // Values admitted so far, not counting the reserved ones.
  size_t admitted() const { return names_.size() - kReserved; }
  // Ids issued so far, reserved ones included: every id is < size().
  size_t size() const { return names_.size(); }

 private:
  static constexpr size_t kReserved = 2;

  Id Intern(absl::string_view value, bool trusted, bool counted = true);
  Id Admit(absl::string_view value);

  const std::string label_;
  std::deque<std::string> storage_;       // never reallocates its elements
  std::vector<absl::string_view> names_;  // by id, into storage_ or static
  absl::flat_hash_map<absl::string_view, Id> ids_;  // keys view names_
  // The value Intern() found last, and its id (an id, once given, never
  // changes): most events in a row carry one site, found again without
  // hashing it (perf: Intern() was 0.9 % of the engine's samples).
  absl::string_view last_name_ = kNotSet;  // views names_ or static
  Id last_id_ = kNotSetId;
  uint64_t overflow_ = 0;
  Id configured_ = kReserved;  // ids below it: see Configured()
  std::unique_ptr<LabelAdmission> own_admission_;  // when none is shared
  LabelAdmission* admission_ = nullptr;            // nullptr: allowlist
};

}  // namespace kpistream

#endif  // KPISTREAM_AGGREGATE_LABEL_LIMITER_H_
