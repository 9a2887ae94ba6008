#include "aggregate/sessionizer.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace kpistream {

bool GlobMatch(absl::string_view pattern, absl::string_view path) {
  // Iterative wildcard match with one backtrack point: linear in practice.
  size_t p = 0, s = 0, star = absl::string_view::npos, mark = 0;
  while (s < path.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = s;
    } else if (p < pattern.size() && pattern[p] == path[s]) {
      ++p;
      ++s;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

absl::string_view UrlPath(absl::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme != absl::string_view::npos) {
    url.remove_prefix(scheme + 3);
    const size_t slash = url.find('/');
    url = slash == absl::string_view::npos ? absl::string_view("/")
                                           : url.substr(slash);
  }
  return url.substr(0, url.find_first_of("?#"));
}

bool IsEngaged(const SessionRules& rules, absl::Duration duration,
               uint32_t pageviews, bool converted) {
  return duration >= rules.engaged_min_duration ||
         pageviews >= static_cast<uint32_t>(rules.engaged_min_pageviews) ||
         converted;
}

namespace {

constexpr char kSeparator = '\x1f';
const std::string kEmpty;

// Interns strings shared by many sessions (pages, attribution tuples) with a
// reference count, so that each distinct value is stored once and freed when
// the last session using it closes.
class StringPool {
 public:
  const std::string* Acquire(absl::string_view value) {
    if (value.empty()) return &kEmpty;
    auto [it, inserted] = refs_.try_emplace(value, 0);
    if (inserted) bytes_ += Footprint(it->first);
    ++it->second;
    return &it->first;
  }
  void Release(const std::string* value) {
    if (value == &kEmpty) return;
    auto it = refs_.find(*value);
    if (--it->second == 0) {
      bytes_ -= Footprint(it->first);
      refs_.erase(it);
    }
  }
  size_t bytes() const { return bytes_ + refs_.bucket_count() * 9; }

 private:
  static size_t Footprint(const std::string& s) {
    // node (key + count) + allocator overhead + heap buffer of long strings
    return sizeof(std::pair<const std::string, uint32_t>) + 16 +
           (s.capacity() > 15 ? s.capacity() + 1 + 16 : 0);
  }
  absl::node_hash_map<std::string, uint32_t> refs_;
  size_t bytes_ = 0;
};

// The attribution of a session: channel, source/medium/campaign, device,
// country, all from its first event; interned as one tuple.
std::string AttributionKey(const Acquisition& a, const Event& e) {
  return absl::StrCat(a.channel, std::string(1, kSeparator), a.source,
                      std::string(1, kSeparator), a.medium,
                      std::string(1, kSeparator), e.utm_campaign,
                      std::string(1, kSeparator), e.device_category,
                      std::string(1, kSeparator), e.country);
}

struct AttributionParts {
  absl::string_view channel, source, medium, campaign, device, country;
};

AttributionParts SplitAttribution(const std::string& key) {
  absl::string_view parts[6];
  size_t start = 0;
  for (int i = 0; i < 6; ++i) {
    size_t end = i < 5 ? key.find(kSeparator, start) : key.size();
    parts[i] = absl::string_view(key).substr(start, end - start);
    start = end + 1;
  }
  return {parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]};
}

// Data most sessions never need, allocated on first use.
struct SessionExtra {
  std::string user_id;
  std::vector<std::pair<std::string, uint32_t>> conversions;  // per goal
  std::vector<std::pair<std::string, int64_t>> revenue;       // per currency
  std::vector<std::pair<std::string, uint32_t>> orders;       // per currency
  absl::flat_hash_set<std::string> order_ids;
  std::vector<uint8_t> funnel_steps;  // per funnel: steps reached in order
};

}  // namespace

struct Sessionizer::Impl {
  struct Open {
    int64_t first_us = 0;
    int64_t last_us = 0;
    int64_t scheduled_second = 0;  // bucket of its entry in `expiry`
    const std::string* attribution = &kEmpty;
    const std::string* landing = &kEmpty;
    const std::string* exit = &kEmpty;
    uint32_t pageviews = 0;
    uint32_t events = 0;
    bool new_visitor = false;
    uint64_t campaign_key = 0;  // for split_on_campaign_change
    std::unique_ptr<SessionExtra> extra;
  };
  using Sessions = absl::node_hash_map<std::string, Open>;
  using Slot = Sessions::value_type;

  SessionRules rules;
  int64_t timeout_us;
  int64_t max_length_us;
  SessionObserver* observer;
  const SessionAttribution* attribution;
  Sessions sessions;
  // Lazy expiry index: every open slot has exactly one entry, in the bucket
  // (unix second) of its expiry as last scheduled; a fired entry whose
  // session was extended is rescheduled.
  std::map<int64_t, std::vector<Slot*>> expiry;
  StringPool pool;
  std::string key;  // scratch, reused per event
  // Order fingerprints (site, order_id) -> day seen, for kOrderRetentionDays.
  static constexpr int32_t kOrderRetentionDays = 30;
  absl::flat_hash_map<uint64_t, int32_t> orders_seen;
  int32_t newest_order_day = 0;
  // Visitor fingerprint -> last day (unix days) they started a session.
  absl::flat_hash_map<uint64_t, int32_t> last_seen_day;
  int32_t newest_day = 0;
  int32_t retention_days = 400;
  size_t key_heap_bytes = 0;
  size_t extra_bytes = 0;

  int64_t ExpiryUs(const Open& s) const {
    return std::min(s.last_us + timeout_us, s.first_us + max_length_us);
  }

  static int64_t Second(int64_t us) {
    return us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
  }

  SessionAttributes Attributes(const Slot& slot) const {
    const Open& s = slot.second;
    const AttributionParts a = SplitAttribution(*s.attribution);
    SessionAttributes out;
    out.site_id =
        absl::string_view(slot.first).substr(0, slot.first.find(kSeparator));
    out.channel = a.channel;
    out.source = a.source;
    out.medium = a.medium;
    out.campaign = a.campaign;
    out.landing_page = *s.landing;
    out.device_category = a.device;
    out.country = a.country;
    out.new_visitor = s.new_visitor;
    return out;
  }

  void Start(Slot& slot, const Event& e) {
    Open& s = slot.second;
    const int64_t t = absl::ToUnixMicros(e.time);
    s.first_us = s.last_us = t;
    const Acquisition acquisition =
        attribution ? attribution->Attribute(e)
                    : Acquisition{"(unassigned)", e.utm_source, e.utm_medium};
    s.attribution = pool.Acquire(AttributionKey(acquisition, e));
    s.landing =
        e.type == EventType::kPageView ? pool.Acquire(e.page_url) : &kEmpty;
    s.exit = &kEmpty;
    s.pageviews = 0;
    s.events = 0;
    s.new_visitor = IsNewVisitor(slot.first, e);
    s.campaign_key = CampaignKey(e);
    if (s.extra) {
      extra_bytes -= sizeof(SessionExtra);
      s.extra.reset();
    }
    const SessionAttributes attrs = Attributes(slot);
    observer->OnSessionStarted(attrs, e);
  }

  // Counts `e` into the session; `in_order` when e is its latest event.
  void Apply(Slot& slot, const Event& e, bool in_order) {
    Open& s = slot.second;
    ++s.events;
    if (e.type == EventType::kPageView) {
      ++s.pageviews;
      if (s.landing->empty()) s.landing = pool.Acquire(e.page_url);
      if (in_order && *s.exit != e.page_url) {
        const std::string* previous = s.exit;
        s.exit = pool.Acquire(e.page_url);
        pool.Release(previous);
      }
    }
    if (!rules.funnels.empty() && in_order) AdvanceFunnels(s, e);
    if (!e.user_id.empty() || e.type == EventType::kConversion) {
      if (!s.extra) {
        s.extra = std::make_unique<SessionExtra>();
        extra_bytes += sizeof(SessionExtra);
      }
      if (!e.user_id.empty() && in_order) s.extra->user_id = e.user_id;
      if (e.type == EventType::kConversion) Convert(*s.extra, e);
    }
    observer->OnEvent(Attributes(slot), e);
  }

  // Moves each funnel on when `e` matches its next step.
  void AdvanceFunnels(Open& s, const Event& e) {
    const bool page = e.type == EventType::kPageView;
    if (!page && e.type != EventType::kConversion) return;
    const absl::string_view path = page ? UrlPath(e.page_url) : "";
    for (size_t f = 0; f < rules.funnels.size(); ++f) {
      const Funnel& funnel = rules.funnels[f];
      const uint8_t reached = s.extra && f < s.extra->funnel_steps.size()
                                  ? s.extra->funnel_steps[f]
                                  : 0;
      if (reached >= funnel.steps.size()) continue;
      const FunnelStep& next = funnel.steps[reached];
      const bool match = page ? !next.page.empty() && GlobMatch(next.page, path)
                              : !next.goal.empty() && next.goal == e.goal;
      if (!match) continue;
      if (!s.extra) {
        s.extra = std::make_unique<SessionExtra>();
        extra_bytes += sizeof(SessionExtra);
      }
      s.extra->funnel_steps.resize(rules.funnels.size(), 0);
      s.extra->funnel_steps[f] = reached + 1;
    }
  }

  void Convert(SessionExtra& x, const Event& e) {
    if (!e.order_id.empty()) {
      if (x.order_ids.contains(e.order_id)) return;  // again in this session
      // Also once across the visitor's sessions (a reloaded thank-you page
      // the next day), within kOrderRetention.
      const int32_t day =
          static_cast<int32_t>(absl::ToUnixSeconds(e.time) / 86400);
      auto [it, inserted] =
          orders_seen.try_emplace(absl::HashOf(e.site_id, e.order_id), day);
      if (!inserted && day - it->second <= kOrderRetentionDays) return;
      it->second = day;
      x.order_ids.insert(e.order_id);
      Increment(x.orders, e.currency, 1u);
      if (day > newest_order_day) {
        newest_order_day = day;
        for (auto o = orders_seen.begin(); o != orders_seen.end();) {
          if (day - o->second > kOrderRetentionDays) {
            orders_seen.erase(o++);
          } else {
            ++o;
          }
        }
      }
    }
    Increment(x.conversions, e.goal, 1u);
    if (e.value_micros != 0 && !e.currency.empty()) {
      Increment(x.revenue, e.currency, e.value_micros);
    }
  }

  // Adds `n` to the entry of `key` in a short list of pairs.
  template <typename T>
  static void Increment(std::vector<std::pair<std::string, T>>& list,
                        const std::string& key, T n) {
    auto it = std::find_if(list.begin(), list.end(),
                           [&](const auto& p) { return p.first == key; });
    if (it == list.end()) {
      list.emplace_back(key, n);
    } else {
      it->second += n;
    }
  }

  // The client's session_number when it sends one; else whether this
  // partition has not seen the visitor start a session within the retention.
  bool IsNewVisitor(const std::string& key, const Event& e) {
    const int32_t day =
        static_cast<int32_t>(absl::ToUnixSeconds(e.time) / 86400);
    const uint64_t fingerprint = absl::HashOf(key);
    auto [it, inserted] = last_seen_day.try_emplace(fingerprint, day);
    const int32_t previous = it->second;
    it->second = std::max(previous, day);
    if (day > newest_day) {
      newest_day = day;
      ForgetVisitorsBefore(day - retention_days);
    }
    if (e.session_number > 0) return e.session_number == 1;
    return inserted || day - previous > retention_days;
  }

  void ForgetVisitorsBefore(int32_t day) {
    for (auto it = last_seen_day.begin(); it != last_seen_day.end();) {
      if (it->second < day) {
        last_seen_day.erase(it++);
      } else {
        ++it;
      }
    }
  }

  // The optional UA-style splits, for an event after the session's last.
  bool SplitsHere(const Open& s, const Event& e) const {
    if (rules.split_at_midnight &&
        absl::ToCivilDay(absl::FromUnixMicros(s.last_us), rules.timezone) !=
            absl::ToCivilDay(e.time, rules.timezone)) {
      return true;
    }
    if (rules.split_on_campaign_change &&
        (!e.utm_source.empty() || !e.utm_medium.empty() ||
         !e.utm_campaign.empty() || !e.click_id.empty())) {
      return s.campaign_key != CampaignKey(e);
    }
    return false;
  }

  static uint64_t CampaignKey(const Event& e) {
    return absl::HashOf(e.utm_source, e.utm_medium, e.utm_campaign, e.click_id);
  }

  void Schedule(Slot* slot) {
    slot->second.scheduled_second = Second(ExpiryUs(slot->second));
    expiry[slot->second.scheduled_second].push_back(slot);
  }

  // Reports the session in `slot` closed and releases its interned strings.
  void Close(Slot& slot) {
    Open& s = slot.second;
    ClosedSession c;
    const size_t sep = slot.first.find(kSeparator);
    c.site_id = slot.first.substr(0, sep);
    c.visitor_id = slot.first.substr(sep + 1);
    c.start = absl::FromUnixMicros(s.first_us);
    c.end = absl::FromUnixMicros(s.last_us);
    c.pageviews = s.pageviews;
    c.events = s.events;
    const AttributionParts a = SplitAttribution(*s.attribution);
    c.channel = std::string(a.channel);
    c.source = std::string(a.source);
    c.medium = std::string(a.medium);
    c.campaign = std::string(a.campaign);
    c.device_category = std::string(a.device);
    c.country = std::string(a.country);
    c.landing_page = *s.landing;
    c.exit_page = *s.exit;
    c.new_visitor = s.new_visitor;
    if (s.extra) {
      c.user_id = std::move(s.extra->user_id);
      c.conversions = std::move(s.extra->conversions);
      c.revenue = std::move(s.extra->revenue);
      c.orders = static_cast<uint32_t>(s.extra->order_ids.size());
      c.orders_by_currency = std::move(s.extra->orders);
      std::sort(c.orders_by_currency.begin(), c.orders_by_currency.end());
      c.funnel_steps = std::move(s.extra->funnel_steps);
      std::sort(c.conversions.begin(), c.conversions.end());
      std::sort(c.revenue.begin(), c.revenue.end());
      extra_bytes -= sizeof(SessionExtra);
      s.extra.reset();
    }
    c.engaged =
        IsEngaged(rules, c.duration(), c.pageviews, !c.conversions.empty());
    c.bounced = !c.engaged;
    c.single_page = c.pageviews == 1 && c.events == 1;
    pool.Release(s.attribution);
    pool.Release(s.landing);
    pool.Release(s.exit);
    s.attribution = s.landing = s.exit = &kEmpty;
    observer->OnSessionClosed(c);
  }

  void Erase(Slot* slot) {
    if (slot->first.capacity() > 15)
      key_heap_bytes -= slot->first.capacity() + 17;
    sessions.erase(slot->first);
  }
};

Sessionizer::Sessionizer(SessionRules rules, SessionObserver* observer,
                         const SessionAttribution* attribution)
    : impl_(std::make_unique<Impl>()) {
  impl_->rules = rules;
  impl_->timeout_us = absl::ToInt64Microseconds(rules.inactivity_timeout);
  impl_->max_length_us = absl::ToInt64Microseconds(rules.max_length);
  impl_->retention_days =
      static_cast<int32_t>(rules.visitor_retention / absl::Hours(24));
  impl_->observer = observer;
  impl_->attribution = attribution;
}

Sessionizer::~Sessionizer() = default;

Sessionizer::AddResult Sessionizer::Add(Event&& event) {
  Impl& m = *impl_;
  m.key.assign(event.site_id);
  m.key.push_back(kSeparator);
  m.key.append(event.visitor_id);
  const int64_t t = absl::ToUnixMicros(event.time);
  auto it = m.sessions.find(absl::string_view(m.key));
  if (it == m.sessions.end()) {
    it = m.sessions.try_emplace(m.key).first;
    if (it->first.capacity() > 15)
      m.key_heap_bytes += it->first.capacity() + 17;
    m.Start(*it, event);
    m.Apply(*it, event, true);
    m.Schedule(&*it);
    return AddResult::kApplied;
  }
  Impl::Open& s = it->second;
  if (t < s.first_us) return AddResult::kLate;
  if (t <= s.last_us) {
    m.Apply(*it, event, /*in_order=*/t == s.last_us);
    return AddResult::kApplied;
  }
  if (t - s.last_us > m.timeout_us || t - s.first_us > m.max_length_us ||
      m.SplitsHere(s, event)) {
    m.Close(*it);
    m.Start(*it, event);
    s.last_us = t;
    m.Apply(*it, event, true);
    return AddResult::kApplied;  // its expiry entry stays and is rescheduled
                                 // lazily
  }
  s.last_us = t;
  m.Apply(*it, event, true);
  return AddResult::kApplied;
}

size_t Sessionizer::CloseUpTo(absl::Time frontier) {
  Impl& m = *impl_;
  if (frontier == absl::InfinitePast()) return 0;
  const int64_t frontier_us = frontier == absl::InfiniteFuture()
                                  ? INT64_MAX
                                  : absl::ToUnixMicros(frontier);
  const int64_t frontier_second = Impl::Second(frontier_us);
  std::vector<Impl::Slot*> due;
  while (!m.expiry.empty() && m.expiry.begin()->first <= frontier_second) {
    std::vector<Impl::Slot*>& bucket = m.expiry.begin()->second;
    due.insert(due.end(), bucket.begin(), bucket.end());
    m.expiry.erase(m.expiry.begin());
  }
  std::vector<Impl::Slot*> closing;
  for (Impl::Slot* slot : due) {
    if (m.ExpiryUs(slot->second) < frontier_us) {
      closing.push_back(slot);
    } else {
      m.Schedule(slot);
    }
  }
  std::sort(closing.begin(), closing.end(), [](Impl::Slot* a, Impl::Slot* b) {
    return a->second.last_us != b->second.last_us
               ? a->second.last_us < b->second.last_us
               : a->first < b->first;
  });
  for (Impl::Slot* slot : closing) {
    m.Close(*slot);
    m.Erase(slot);
  }
  return closing.size();
}

size_t Sessionizer::CloseAll() {
  Impl& m = *impl_;
  m.expiry.clear();
  std::vector<Impl::Slot*> closing;
  for (auto& slot : m.sessions) closing.push_back(&slot);
  std::sort(closing.begin(), closing.end(), [](Impl::Slot* a, Impl::Slot* b) {
    return a->second.last_us != b->second.last_us
               ? a->second.last_us < b->second.last_us
               : a->first < b->first;
  });
  for (Impl::Slot* slot : closing) m.Close(*slot);
  m.sessions.clear();
  m.key_heap_bytes = 0;
  return closing.size();
}

size_t Sessionizer::open_sessions() const { return impl_->sessions.size(); }

size_t Sessionizer::ApproximateBytes() const {
  const Impl& m = *impl_;
  const size_t node = sizeof(Impl::Slot) + 16;  // node + allocator overhead
  return m.sessions.size() * (node + sizeof(Impl::Slot*) /*expiry entry*/) +
         m.sessions.bucket_count() * (sizeof(void*) + 1) + m.key_heap_bytes +
         m.extra_bytes + m.pool.bytes() + m.expiry.size() * 64 +
         m.last_seen_day.capacity() * (sizeof(uint64_t) + sizeof(int32_t) + 5);
}

}  // namespace kpistream
