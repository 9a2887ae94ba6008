#include "aggregate/kpi_counters.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "aggregate/channel_groups.h"
#include "aggregate/label_limiter.h"
#include "aggregate/metric_families.h"

namespace kpistream {
namespace {

using Id = LabelLimiter::Id;
using Key2 = std::array<Id, 2>;
using Key3 = std::array<Id, 3>;
using Key4 = std::array<Id, 4>;
using Key5 = std::array<Id, 5>;

// Labels whose values an outsider controls (utm_*, URLs) admit a value only
// after it has been seen this often, so one-off junk never takes a slot.
constexpr int kFrequentValueMinCount = 3;

// web_events_total{type}, indexed by TypeIndex().
constexpr std::array<const char*, 4> kEventTypeNames = {
    "page_view", "engagement", "conversion", "custom"};

size_t TypeIndex(EventType type) {
  switch (type) {
    case EventType::kPageView:
      return 0;
    case EventType::kEngagement:
      return 1;
    case EventType::kConversion:
      return 2;
    case EventType::kCustom:
      break;
  }
  return 3;
}

// The goal label of web_sessions_converted_total for "any goal"; outside the
// goal limiter's id space.
constexpr Id kAnyGoalId = std::numeric_limits<Id>::max();

// Observation counts per bucket (value <= bound), the last one for +Inf.
template <size_t N>
struct Histogram {
  std::array<uint64_t, N + 1> buckets{};
  uint64_t count = 0;
  double sum = 0;

  Histogram& operator+=(const Histogram& o) {
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
    count += o.count;
    sum += o.sum;
    return *this;
  }

  void Observe(absl::Span<const double> bounds, double value) {
    const size_t bucket =
        std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
    ++buckets[bucket];
    ++count;
    sum += value;
  }
};

// Families labelled {site} (and web_events_total{site,type}).
struct SiteCounts {
  bool seen = false;
  std::array<uint64_t, kEventTypeNames.size()> events{};
  Histogram<std::size(kSessionPageviewBounds)> pageviews;
  SiteCounts& operator+=(const SiteCounts& o) {
    seen |= o.seen;
    for (size_t i = 0; i < events.size(); ++i) events[i] += o.events[i];
    pageviews += o.pageviews;
    return *this;
  }
};

// Families labelled {site,channel,device,country}.
struct SessionCounts {
  uint64_t started = 0;
  uint64_t closed = 0;
  uint64_t engaged = 0;
  uint64_t bounced = 0;
  uint64_t single_page = 0;
  uint64_t long_sessions = 0;
  SessionCounts& operator+=(const SessionCounts& o) {
    started += o.started;
    closed += o.closed;
    engaged += o.engaged;
    bounced += o.bounced;
    single_page += o.single_page;
    long_sessions += o.long_sessions;
    return *this;
  }
};

// Families labelled {site,channel}.
struct ChannelCounts {
  uint64_t new_visitors = 0;
  Histogram<std::size(kSessionDurationBounds)> duration;
  ChannelCounts& operator+=(const ChannelCounts& o) {
    new_visitors += o.new_visitors;
    duration += o.duration;
    return *this;
  }
};

// A sum of money in micros, for the life of the process: 128 bits, which no
// stream of values_micros (each within ±1e17) overflows. An int64 sum of
// micros stopped at 9.22e12 units of a currency: 9.22e12 IDR is ~570 M USD,
// a marketplace's revenue of weeks, after which web_revenue_total never
// rose again (an audit).
using MicrosSum = __int128;

// Families labelled {site,channel,currency}.
struct MoneyCounts {
  MicrosSum revenue_micros = 0;
  uint64_t orders = 0;
  MoneyCounts& operator+=(const MoneyCounts& o) {
    revenue_micros += o.revenue_micros;
    orders += o.orders;
    return *this;
  }
};

// Families labelled {site,source,medium,campaign}.
struct CampaignCounts {
  uint64_t sessions = 0;
  uint64_t converted = 0;
  CampaignCounts& operator+=(const CampaignCounts& o) {
    sessions += o.sessions;
    converted += o.converted;
    return *this;
  }
};

// Families labelled {site,landing_page}.
struct LandingCounts {
  uint64_t sessions = 0;
  uint64_t bounced = 0;
  LandingCounts& operator+=(const LandingCounts& o) {
    sessions += o.sessions;
    bounced += o.bounced;
    return *this;
  }
};

// Families labelled {site,goal,channel}.
struct GoalCounts {
  uint64_t conversions = 0;
  uint64_t sessions_converted = 0;
  GoalCounts& operator+=(const GoalCounts& o) {
    conversions += o.conversions;
    sessions_converted += o.sessions_converted;
    return *this;
  }
};

template <typename Map>
void AddInto(const Map& from, Map& to) {
  for (const auto& [key, value] : from) to[key] += value;
}

// Every count of the families, by label ids. The engine counts into a
// pending set and adds it to the committed set when the work it reflects
// commits (SPEC §10): /metrics shows committed work only.
struct Counts {
  std::vector<SiteCounts> sites;                        // by site id
  absl::flat_hash_map<Key4, SessionCounts> sessions;    // site,channel,dev,ctry
  absl::flat_hash_map<Key2, ChannelCounts> channels;    // site,channel
  absl::flat_hash_map<Key3, GoalCounts> goals;          // site,goal,channel
  absl::flat_hash_map<Key3, uint64_t> pageviews;        // site,channel,device
  absl::flat_hash_map<Key3, MoneyCounts> money;         // site,channel,currency
  absl::flat_hash_map<Key4, CampaignCounts> campaigns;  // site,src,med,cmp
  absl::flat_hash_map<Key5, MicrosSum> campaign_revenue;  // ... ,currency
  absl::flat_hash_map<Key2, LandingCounts> landings;      // site,landing_page
  absl::flat_hash_map<Key3, uint64_t> funnel_steps;       // site,funnel,step
  absl::flat_hash_map<Id, uint64_t> consumed;             // by topic
  absl::flat_hash_map<Id, uint64_t> repartitioned;        // by topic
  absl::flat_hash_map<Id, uint64_t> deleted_unread;       // by topic
  absl::flat_hash_map<Id, uint64_t> invalid;              // by reason
  absl::flat_hash_map<Key4, MicrosSum> ad_cost_micros;    // site,chan,cmp,cur
  uint64_t ad_cost_records = 0;
  uint64_t late = 0;
  uint64_t duplicate = 0;
  uint64_t bot = 0;

  SiteCounts& Site(Id id) {
    if (id >= sites.size()) sites.resize(id + 1);
    SiteCounts& counts = sites[id];
    counts.seen = true;
    return counts;
  }

  void AddTo(Counts& to) const {
    if (to.sites.size() < sites.size()) to.sites.resize(sites.size());
    for (size_t i = 0; i < sites.size(); ++i) to.sites[i] += sites[i];
    AddInto(sessions, to.sessions);
    AddInto(channels, to.channels);
    AddInto(goals, to.goals);
    AddInto(pageviews, to.pageviews);
    AddInto(money, to.money);
    AddInto(campaigns, to.campaigns);
    AddInto(campaign_revenue, to.campaign_revenue);
    AddInto(landings, to.landings);
    AddInto(funnel_steps, to.funnel_steps);
    AddInto(consumed, to.consumed);
    AddInto(repartitioned, to.repartitioned);
    AddInto(deleted_unread, to.deleted_unread);
    AddInto(invalid, to.invalid);
    AddInto(ad_cost_micros, to.ad_cost_micros);
    to.ad_cost_records += ad_cost_records;
    to.late += late;
    to.duplicate += duplicate;
    to.bot += bot;
  }
};

// Bounds the distinct combinations of one set of labels (see
// KpiCounters::Options::label_combinations_max). A combination already
// counted is found in a local set (one lookup); a new one asks the
// admission, which the stream threads of a process share (by a hash of the
// label values: the threads' ids differ). Refused: the combination with
// every label that is not kept (site, channel, currency) and whose value
// the input chose (not "(other)", "(not set)", an allowlisted or reserved
// value, nor a campaign an ad cost record named: LabelLimiter::Kept) under
// "(other)"; such a folded combination is always admitted (its count is
// bounded by the labels' own bounds). Refusals are not remembered (a
// flood's combinations are unbounded): each asks again.
template <size_t N>
class CombinationLimit {
 public:
  using Key = std::array<Id, N>;

  // `limiters[i]`: the limiter of label i; `kept[i]`: never folded;
  // `untrusted[i]`: folded even when a trusted source named its value (only
  // values the configuration names are kept).
  CombinationLimit(std::array<LabelLimiter*, N> limiters,
                   std::array<bool, N> kept, size_t max_values,
                   LabelAdmissions* shared, std::array<bool, N> untrusted = {})
      : limiters_(limiters), kept_(kept), untrusted_(untrusted) {
    if (shared != nullptr) {
      std::string labels;
      for (const LabelLimiter* limiter : limiters_) {
        labels += limiter->label();
        labels += ',';
      }
      admission_ = shared->Combinations(labels, max_values);
    } else {
      own_admission_ = std::make_unique<CombinationAdmission>(max_values);
      admission_ = own_admission_.get();
    }
  }

  // The combination to count `key` under: `key`, or `key` folded.
  Key Limit(const Key& key) {
    if (known_.contains(key)) return key;
    Key folded = key;
    for (size_t i = 0; i < N; ++i) {
      const bool kept_value = untrusted_[i] ? limiters_[i]->Configured(key[i])
                                            : limiters_[i]->Kept(key[i]);
      if (!kept_[i] && !kept_value) {
        folded[i] = LabelLimiter::kOtherId;
      }
    }
    if (folded == key || admission_->Admit(HashOfValues(key))) {
      known_.insert(key);
      return key;
    }
    for (size_t i = 0; i < N; ++i) {
      if (folded[i] != key[i]) limiters_[i]->CountOverflow();
    }
    return folded;
  }

 private:
  uint64_t HashOfValues(const Key& key) const {
    std::array<absl::string_view, N> values;
    for (size_t i = 0; i < N; ++i) values[i] = limiters_[i]->Name(key[i]);
    return absl::HashOf(values);
  }

  std::array<LabelLimiter*, N> limiters_;
  std::array<bool, N> kept_;
  std::array<bool, N> untrusted_;
  absl::flat_hash_set<Key> known_;  // admitted: at most max_values + folded
  std::unique_ptr<CombinationAdmission> own_admission_;  // when not shared
  CombinationAdmission* admission_ = nullptr;
};

// The entry of `key`'s combination in `map`, pending counts: a key counted
// there since the last commit was admitted (only what `limit` answered gets
// in) and is found without asking it again; a new one is asked.
template <typename Map, size_t N>
typename Map::value_type& Entry(Map& map, CombinationLimit<N>& limit,
                                const std::array<Id, N>& key) {
  if (auto it = map.find(key); it != map.end()) return *it;
  return *map.try_emplace(limit.Limit(key)).first;
}

std::optional<std::vector<std::string>> Allowlist(
    const KpiCounters::Options& options, const std::string& label) {
  auto it = options.allowlists.find(label);
  if (it == options.allowlists.end()) return std::nullopt;
  return it->second;
}

const std::vector<std::string>& Reserved(const KpiCounters::Options& options,
                                         const std::string& label) {
  static const std::vector<std::string>* const kNone =
      new std::vector<std::string>();
  auto it = options.reserved.find(label);
  return it == options.reserved.end() ? *kNone : it->second;
}

// Labels whose every value is known in advance admit exactly those.
std::optional<std::vector<std::string>> KnownValues(
    const std::vector<std::string>& values) {
  if (values.empty()) return std::nullopt;
  return values;
}

// The channel label's values are the classifier's fixed groups, not
// values from outside: all of them are admitted (an allowlist narrows
// them), whatever label_values_max (an audit: a limit of 5, meant for
// campaigns, put Organic Social and Display sessions under "(other)").
std::vector<std::string> ChannelValues(const KpiCounters::Options& options) {
  if (auto listed = Allowlist(options, "channel"); listed.has_value()) {
    return *listed;
  }
  return std::vector<std::string>(kChannelGroups.begin(), kChannelGroups.end());
}

// The topics the engine reads: the inputs and the repartition topic.
std::optional<std::vector<std::string>> ReadTopics(
    const KpiCounters::Options& options) {
  std::vector<std::string> topics = options.input_topics;
  if (!options.repartition_topic.empty()) {
    topics.push_back(options.repartition_topic);
  }
  return KnownValues(topics);
}

std::vector<std::string> GoalsWithoutAny(std::vector<std::string> goals) {
  goals.erase(std::remove(goals.begin(), goals.end(), kAnyGoalValue),
              goals.end());
  return goals;
}

}  // namespace

struct KpiCounters::Impl {
  explicit Impl(const Options& options)
      : site("site", options.label_values_max, Allowlist(options, "site"), 1,
             options.admissions, Reserved(options, "site")),
        channel("channel", options.label_values_max, ChannelValues(options)),
        device("device", options.label_values_max, Allowlist(options, "device"),
               1, options.admissions, Reserved(options, "device")),
        country("country", options.label_values_max,
                Allowlist(options, "country"), 1, options.admissions,
                Reserved(options, "country")),
        goal("goal", options.label_values_max, GoalsWithoutAny(options.goals)),
        currency("currency", options.label_values_max,
                 Allowlist(options, "currency"), 1, options.admissions,
                 Reserved(options, "currency")),
        topic("topic", options.label_values_max, ReadTopics(options), 1,
              options.admissions),
        reason("reason", options.label_values_max,
               KnownValues(options.invalid_reasons), 1, options.admissions),
        source("source", options.label_values_max, Allowlist(options, "source"),
               kFrequentValueMinCount, options.admissions),
        medium("medium", options.label_values_max, Allowlist(options, "medium"),
               kFrequentValueMinCount, options.admissions),
        campaign("campaign", options.label_values_max,
                 Allowlist(options, "campaign"), kFrequentValueMinCount,
                 options.admissions),
        landing_page("landing_page", options.label_values_max,
                     Allowlist(options, "landing_page"), kFrequentValueMinCount,
                     options.admissions),
        funnels(options.rules.funnels),
        session_combinations({&site, &channel, &device, &country},
                             {true, true, false, false},
                             CombinationsMax(options), options.admissions),
        campaign_combinations({&site, &source, &medium, &campaign},
                              {true, false, false, false},
                              CombinationsMax(options), options.admissions),
        campaign_revenue_combinations(
            {&site, &source, &medium, &campaign, &currency},
            {true, false, false, false, true},
            CombinationsMax(options) * kRevenueCurrenciesACampaign,
            options.admissions),
        ad_cost_combinations({&site, &channel, &campaign, &currency},
                             {true, true, false, true},
                             CombinationsMax(options), options.admissions,
                             {false, false, true, false}) {}

  static size_t CombinationsMax(const Options& options) {
    return static_cast<size_t>(std::max(options.label_combinations_max, 0));
  }

  std::string Name(const LabelLimiter& limiter, Id id) const {
    return std::string(limiter.Name(id));
  }
  std::string GoalName(Id id) const {
    return id == kAnyGoalId ? std::string(kAnyGoalValue) : Name(goal, id);
  }

  LabelLimiter site;
  LabelLimiter channel;
  LabelLimiter device;
  LabelLimiter country;
  LabelLimiter goal;  // allowlist: the configured goals
  LabelLimiter currency;
  LabelLimiter topic;
  LabelLimiter reason;
  LabelLimiter source;
  LabelLimiter medium;
  LabelLimiter campaign;
  LabelLimiter landing_page;

  // A (site, channel)'s series of every configured goal (and "(any)") and
  // of the targets' currencies, at 0 from its first session on, a close
  // before their first count: increase() and rate() take a series' first
  // sample as their start, so the first conversion (or order) of a series
  // that appeared at 1 was never in a conversion rate (review).
  void ExportAtZero(Id site_id, Id channel_id) {
    for (Id g : goals_at_zero) {
      pending.goals.try_emplace(Key3{site_id, g, channel_id});
    }
    for (Id c : currencies_at_zero) {
      pending.money.try_emplace(Key3{site_id, channel_id, c});
    }
  }

  std::vector<Funnel> funnels;  // from config
  // The label sets whose product can be large and whose values visitors
  // choose. The others' product is bounded by the configuration (goals,
  // funnels, channel groups, device categories) or by labels never folded
  // (site, channel, currency: money in "(other)" currency adds up what
  // cannot be added; review), or their values come from the operator's
  // own ad platforms (ad cost).
  CombinationLimit<4> session_combinations;   // site,channel,device,country
  CombinationLimit<4> campaign_combinations;  // site,source,medium,campaign
  // Campaign revenue's: the campaign as its sessions counted it (folded
  // where they were), then the currency (never folded), with room for
  // kRevenueCurrenciesACampaign currencies a combination. A bound as large
  // as the sessions' filled with (campaign, currency) pairs first, and put
  // a campaign's revenue under "(other)" beside its own sessions (an
  // audit); beyond this one only a flood of currencies folds any.
  CombinationLimit<5> campaign_revenue_combinations;
  static constexpr size_t kRevenueCurrenciesACampaign = 4;
  // Ad cost's: its campaigns come from the operator's ad platforms, not
  // visitors, but a faulty or hostile cost feed named as many as the
  // product of the labels' bounds (an audit: 255,000 series of
  // web_ad_cost_total from 255,000 records). Beyond the bound a new
  // combination's campaign is "(other)", even one a cost record named, so
  // the cost per site, channel and currency (what ROAS divides by) stays
  // exact.
  CombinationLimit<4> ad_cost_combinations;  // site,channel,campaign,currency
  std::vector<Id> goals_at_zero;
  std::vector<Id> currencies_at_zero;
  Counts pending;    // counted since the last Commit()
  Counts committed;  // what Snapshot() shows
  // Gauges, replaced whole by their setters.
  absl::flat_hash_map<Id, ActiveVisitors::Counts> active;  // by site
  absl::flat_hash_map<Id, int64_t> open_sessions;          // by site
};

KpiCounters::KpiCounters(Options options)
    : impl_(std::make_unique<Impl>(options)) {
  for (const std::string& topic : options.input_topics) {
    impl_->committed.consumed.try_emplace(impl_->topic.Intern(topic), 0);
    impl_->committed.deleted_unread.try_emplace(impl_->topic.Intern(topic), 0);
  }
  for (const std::string& topic : options.repartitioned_topics) {
    impl_->committed.repartitioned.try_emplace(impl_->topic.Intern(topic), 0);
  }
  for (const std::string& reason : options.invalid_reasons) {
    impl_->committed.invalid.try_emplace(impl_->reason.Intern(reason), 0);
  }
  for (const std::string& goal : GoalsWithoutAny(options.goals)) {
    impl_->goals_at_zero.push_back(impl_->goal.Intern(goal));
  }
  impl_->goals_at_zero.push_back(kAnyGoalId);
  for (const std::string& currency : Reserved(options, "currency")) {
    impl_->currencies_at_zero.push_back(impl_->currency.Intern(currency));
  }
}

KpiCounters::~KpiCounters() = default;

void KpiCounters::OnSessionStarted(const SessionAttributes& session,
                                   const EventView& first) {
  Impl& m = *impl_;
  const Id site = m.site.Intern(session.site_id);
  const Id channel = m.channel.Intern(session.channel);
  const Id device = m.device.Intern(session.device_category);
  const Id country = m.country.Intern(session.country);
  ++Entry(m.pending.sessions, m.session_combinations,
          Key4{site, channel, device, country})
        .second.started;
  auto [by_channel, new_pair] =
      m.pending.channels.try_emplace(Key2{site, channel});
  if (new_pair) m.ExportAtZero(site, channel);
  if (session.new_visitor) ++by_channel->second.new_visitors;
}

// The hot path: one site lookup per event, two more per page view, no
// allocation once the label values are known.
void KpiCounters::OnEvent(const SessionAttributes& session,
                          const EventView& event) {
  Impl& m = *impl_;
  const Id site = m.site.Intern(session.site_id);
  if (event.type == EventType::kPageView) {
    ++m.pending.pageviews[Key3{site, m.channel.Intern(session.channel),
                               m.device.Intern(session.device_category)}];
  }
}

void KpiCounters::OnSessionClosed(const ClosedSession& session) {
  Impl& m = *impl_;
  const Id site = m.site.Intern(session.site_id);
  const Id channel = m.channel.Intern(session.channel);
  const Id device = m.device.Intern(session.device_category);
  const Id country = m.country.Intern(session.country);

  SiteCounts& by_site = m.pending.Site(site);
  by_site.pageviews.Observe(kSessionPageviewBounds,
                            static_cast<double>(session.pageviews));

  SessionCounts& counts = Entry(m.pending.sessions, m.session_combinations,
                                Key4{site, channel, device, country})
                              .second;
  ++counts.closed;
  if (session.engaged) ++counts.engaged;
  if (session.bounced) ++counts.bounced;
  if (session.single_page) ++counts.single_page;
  if (session.long_session) ++counts.long_sessions;

  ChannelCounts& by_channel = m.pending.channels[Key2{site, channel}];
  const absl::Duration duration =
      std::max(session.duration(), absl::ZeroDuration());
  by_channel.duration.Observe(kSessionDurationBounds,
                              absl::ToDoubleSeconds(duration));
  for (const auto& [currency, n] : session.orders_by_currency) {
    m.pending.money[Key3{site, channel, m.currency.Intern(currency)}].orders +=
        n;
  }

  // Goals outside the allowlist share "(other)": a session converts for it
  // once, however many such goals it reached.
  std::vector<Id> converted;
  for (const auto& [goal_name, n] : session.conversions) {
    if (n == 0) continue;
    const Id goal = m.goal.Intern(goal_name);
    m.pending.goals[Key3{site, goal, channel}].conversions += n;
    if (std::find(converted.begin(), converted.end(), goal) ==
        converted.end()) {
      converted.push_back(goal);
      ++m.pending.goals[Key3{site, goal, channel}].sessions_converted;
    }
  }
  if (!converted.empty()) {
    ++m.pending.goals[Key3{site, kAnyGoalId, channel}].sessions_converted;
  }

  // A counter must never decrease: refunds (negative sums) are not revenue.
  auto& campaign_entry = Entry(m.pending.campaigns, m.campaign_combinations,
                               Key4{site, m.source.Intern(session.source),
                                    m.medium.Intern(session.medium),
                                    m.campaign.Intern(session.campaign)});
  const Key4 campaign = campaign_entry.first;
  CampaignCounts& by_campaign = campaign_entry.second;
  ++by_campaign.sessions;
  if (!converted.empty()) ++by_campaign.converted;
  for (const auto& [currency, micros] : session.revenue) {
    if (micros <= 0) continue;
    const Id cur = m.currency.Intern(currency);
    m.pending.money[Key3{site, channel, cur}].revenue_micros += micros;
    MicrosSum& by_campaign_revenue =
        Entry(m.pending.campaign_revenue, m.campaign_revenue_combinations,
              Key5{campaign[0], campaign[1], campaign[2], campaign[3], cur})
            .second;
    by_campaign_revenue += micros;
  }
  for (size_t f = 0; f < session.funnel_steps.size() && f < m.funnels.size();
       ++f) {
    for (uint8_t step = 0; step < session.funnel_steps[f]; ++step) {
      ++m.pending.funnel_steps[Key3{site, static_cast<Id>(f), step}];
    }
  }
  LandingCounts& landing = m.pending.landings[Key2{
      site, m.landing_page.Intern(UrlPath(session.landing_page))}];
  ++landing.sessions;
  if (session.bounced) ++landing.bounced;
}

absl::string_view KpiCounters::CountAccepted(absl::string_view site,
                                             EventType type) {
  Impl& m = *impl_;
  const LabelLimiter::Id id = m.site.Intern(site);
  ++m.pending.Site(id).events[TypeIndex(type)];
  return m.site.Name(id);
}

void KpiCounters::CountAdCost(absl::string_view site, absl::string_view channel,
                              absl::string_view campaign,
                              absl::string_view currency, int64_t micros) {
  Impl& m = *impl_;
  ++m.pending.ad_cost_records;
  Entry(m.pending.ad_cost_micros, m.ad_cost_combinations,
        Key4{m.site.Intern(site), m.channel.Intern(channel),
             m.campaign.InternTrusted(campaign), m.currency.Intern(currency)})
      .second += micros;
}

void KpiCounters::SetActiveVisitors(
    const std::map<std::string, ActiveVisitors::Counts>& counts) {
  Impl& m = *impl_;
  m.active.clear();
  for (const auto& [site, c] : counts) {
    ActiveVisitors::Counts& sum = m.active[m.site.InternUncounted(site)];
    sum.last_5m += c.last_5m;
    sum.last_30m += c.last_30m;
  }
}

void KpiCounters::CountConsumed(absl::string_view topic, uint64_t n) {
  impl_->pending.consumed[impl_->topic.Intern(topic)] += n;
}

void KpiCounters::CountRepartitioned(absl::string_view topic) {
  ++impl_->pending.repartitioned[impl_->topic.Intern(topic)];
}

void KpiCounters::CountDeletedUnread(absl::string_view topic, uint64_t n) {
  impl_->pending.deleted_unread[impl_->topic.Intern(topic)] += n;
}

void KpiCounters::CountInvalid(absl::string_view reason) {
  ++impl_->pending.invalid[impl_->reason.Intern(reason)];
}

void KpiCounters::CountLate() { ++impl_->pending.late; }

void KpiCounters::CountDuplicate() { ++impl_->pending.duplicate; }

void KpiCounters::CountBot() { ++impl_->pending.bot; }

void KpiCounters::SetOpenSessions(const std::map<std::string, int64_t>& open) {
  ClearOpenSessions();
  for (const auto& [site, n] : open) AddOpenSessions(site, n);
}

void KpiCounters::ClearOpenSessions() { impl_->open_sessions.clear(); }

void KpiCounters::AddOpenSessions(absl::string_view site, int64_t n,
                                  uint64_t* cache) {
  Impl& m = *impl_;
  // *cache: 0 unknown; an admitted label's id + 1 (ids never change); or
  // kOtherAt | the admission's generation when it answered "(other)".
  constexpr uint64_t kOtherAt = uint64_t{1} << 63;
  LabelLimiter::Id id;
  if (cache != nullptr && *cache != 0 && (*cache & kOtherAt) == 0) {
    id = static_cast<LabelLimiter::Id>(*cache - 1);
  } else {
    const uint64_t generation = m.site.generation();
    if (cache != nullptr && *cache == (kOtherAt | generation)) {
      id = LabelLimiter::kOtherId;
    } else {
      id = m.site.InternUncounted(site);
      if (cache != nullptr) {
        *cache = id == LabelLimiter::kOtherId ? kOtherAt | generation
                                              : uint64_t{id} + 1;
      }
    }
  }
  m.open_sessions[id] += n;
}

absl::string_view KpiCounters::SiteLabel(absl::string_view site) {
  Impl& m = *impl_;
  return m.site.Name(m.site.InternUncounted(site));
}

void KpiCounters::Commit() {
  Impl& m = *impl_;
  m.pending.AddTo(m.committed);
  m.pending = Counts{};
}

void KpiCounters::Rollback() { impl_->pending = Counts{}; }

MetricsSnapshot KpiCounters::Snapshot() const {
  using namespace families;  // NOLINT: the families KpiCounters counts
  const Impl& m = *impl_;
  SnapshotBuilder out(CountedFamilies());
  auto add = [&out](const MetricFamilyDef& family,
                    const std::vector<std::string>& labels, auto value) {
    out.Add(family, labels, static_cast<double>(value));
  };
  auto histogram = [&out](const MetricFamilyDef& family,
                          std::vector<std::string> labels, const auto& h) {
    out.AddHistogram(family, std::move(labels), h.buckets, h.count, h.sum);
  };

  for (Id id = 0; id < m.committed.sites.size(); ++id) {
    const SiteCounts& s = m.committed.sites[id];
    if (!s.seen) continue;
    const std::string site = m.Name(m.site, id);
    for (size_t t = 0; t < s.events.size(); ++t) {
      add(kEvents, {site, kEventTypeNames[t]}, s.events[t]);
    }
    histogram(kSessionPageviews, {site}, s.pageviews);
    // Every site seen has an open-sessions sample (0 when none is open) and
    // active-visitor samples (0 when nobody was active): a gauge that
    // vanished would read "no data", and an alert on 0 would never fire.
    if (!m.open_sessions.contains(id)) add(kOpenSessions, {site}, 0);
    if (!m.active.contains(id)) {
      add(kActiveVisitors, {site, "5m"}, 0);
      add(kActiveVisitors, {site, "30m"}, 0);
    }
  }
  for (const auto& [id, n] : m.open_sessions) {
    add(kOpenSessions, {m.Name(m.site, id)}, n);
  }
  for (const auto& [key, n] : m.committed.pageviews) {
    add(kPageviews,
        {m.Name(m.site, key[0]), m.Name(m.channel, key[1]),
         m.Name(m.device, key[2])},
        n);
  }
  for (const auto& [key, c] : m.committed.sessions) {
    const std::vector<std::string> labels = {
        m.Name(m.site, key[0]), m.Name(m.channel, key[1]),
        m.Name(m.device, key[2]), m.Name(m.country, key[3])};
    add(kSessionsStarted, labels, c.started);
    add(kSessionsClosed, labels, c.closed);
    add(kSessionsEngaged, labels, c.engaged);
    add(kSessionsBounced, labels, c.bounced);
    add(kSessionsSinglePage, labels, c.single_page);
    add(kSessionsLong, labels, c.long_sessions);
  }
  for (const auto& [key, c] : m.committed.channels) {
    const std::vector<std::string> labels = {m.Name(m.site, key[0]),
                                             m.Name(m.channel, key[1])};
    add(kSessionsNewVisitor, labels, c.new_visitors);
    histogram(kSessionDuration, labels, c.duration);
  }
  for (const auto& [key, c] : m.committed.goals) {
    const std::vector<std::string> labels = {
        m.Name(m.site, key[0]), m.GoalName(key[1]), m.Name(m.channel, key[2])};
    // "(any)" is a per-session notion only; it has no conversions of its own.
    if (key[1] != kAnyGoalId) add(kConversions, labels, c.conversions);
    add(kSessionsConverted, labels, c.sessions_converted);
  }
  for (const auto& [key, c] : m.committed.money) {
    const std::vector<std::string> labels = {m.Name(m.site, key[0]),
                                             m.Name(m.channel, key[1]),
                                             m.Name(m.currency, key[2])};
    add(kRevenue, labels, static_cast<double>(c.revenue_micros) / 1e6);
    add(kOrders, labels, c.orders);
  }
  for (const auto& [key, micros] : m.committed.ad_cost_micros) {
    add(kAdCost,
        {m.Name(m.site, key[0]), m.Name(m.channel, key[1]),
         m.Name(m.campaign, key[2]), m.Name(m.currency, key[3])},
        static_cast<double>(micros) / 1e6);
  }
  add(kAdCostRecords, {}, m.committed.ad_cost_records);
  for (const auto& [key, n] : m.committed.funnel_steps) {
    const Funnel& f = m.funnels[key[1]];
    add(kFunnelStepSessions,
        {m.Name(m.site, key[0]), f.name, f.steps[key[2]].name}, n);
  }
  for (const auto& [id, c] : m.active) {
    add(kActiveVisitors, {m.Name(m.site, id), "5m"}, c.last_5m);
    add(kActiveVisitors, {m.Name(m.site, id), "30m"}, c.last_30m);
  }
  for (const auto& [key, c] : m.committed.campaigns) {
    const std::vector<std::string> labels = {
        m.Name(m.site, key[0]), m.Name(m.source, key[1]),
        m.Name(m.medium, key[2]), m.Name(m.campaign, key[3])};
    add(kCampaignSessions, labels, c.sessions);
    add(kCampaignConverted, labels, c.converted);
  }
  for (const auto& [key, micros] : m.committed.campaign_revenue) {
    add(kCampaignRevenue,
        {m.Name(m.site, key[0]), m.Name(m.source, key[1]),
         m.Name(m.medium, key[2]), m.Name(m.campaign, key[3]),
         m.Name(m.currency, key[4])},
        static_cast<double>(micros) / 1e6);
  }
  for (const auto& [key, c] : m.committed.landings) {
    const std::vector<std::string> labels = {m.Name(m.site, key[0]),
                                             m.Name(m.landing_page, key[1])};
    add(kLandingSessions, labels, c.sessions);
    add(kLandingBounces, labels, c.bounced);
  }
  for (const auto& [id, n] : m.committed.consumed) {
    add(kEventsConsumed, {m.Name(m.topic, id)}, n);
  }
  for (const auto& [id, n] : m.committed.repartitioned) {
    add(kEventsRepartitioned, {m.Name(m.topic, id)}, n);
  }
  for (const auto& [id, n] : m.committed.deleted_unread) {
    add(kInputRecordsDeleted, {m.Name(m.topic, id)}, n);
  }
  for (const auto& [id, n] : m.committed.invalid) {
    add(kEventsInvalid, {m.Name(m.reason, id)}, n);
  }
  add(kEventsLate, {}, m.committed.late);
  add(kEventsDuplicate, {}, m.committed.duplicate);
  add(kBotEvents, {}, m.committed.bot);
  for (const LabelLimiter* limiter :
       {&m.site, &m.channel, &m.device, &m.country, &m.goal, &m.currency,
        &m.topic, &m.reason, &m.source, &m.medium, &m.campaign,
        &m.landing_page}) {
    add(kLabelOverflow, {limiter->label()}, limiter->overflow());
  }
  return std::move(out).Finish();
}

}  // namespace kpistream
