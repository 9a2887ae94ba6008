#include "cmd/traffic_generator.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kpistream {
namespace {

struct Channel {
  const char* name;
  double weight;
  const char* referrer;
  const char* source;
  const char* medium;
  const char* campaign;
  // The click id the ads platform appends to the landing page's URL (its
  // query parameter name), or nullptr.
  const char* click_param;
  const char* click_prefix;  // how its values start
};

// A plausible mix of acquisition channels (see the header).
constexpr Channel kChannels[] = {
    {"direct", 30, "", "", "", "", nullptr, ""},
    {"organic_search", 22, "https://www.google.com/", "", "", "", nullptr, ""},
    {"organic_search_bing", 3, "https://www.bing.com/", "", "", "", nullptr,
     ""},
    {"paid_search_tagged", 4, "https://www.google.com/", "google", "cpc",
     "brand-search", "gclid", "Cj0KCQ"},
    {"google_ads", 5, "", "", "", "", "gclid", "Cj0KCQ"},
    {"google_ads_search", 2, "https://www.google.com/", "", "", "", "gclid",
     "EAIaIQ"},
    {"google_ads_partner", 1, "https://www.example-recipes.com/", "", "", "",
     "gclid", "CjwKCA"},
    {"organic_social", 7, "https://l.facebook.com/", "", "", "", "fbclid",
     "IwAR"},
    {"paid_social", 3, "https://l.facebook.com/", "facebook", "paid_social",
     "retargeting-q4", nullptr, ""},
    {"email", 8, "", "newsletter", "email", "weekly-digest", nullptr, ""},
    {"referral", 10, "https://news.example.org/article/42", "", "", "", nullptr,
     ""},
    {"display", 5, "https://ads.example.net/", "dv360", "display", "awareness",
     nullptr, ""},
};

constexpr const char* kCountries[] = {"US", "DE", "FR", "GB", "IN",
                                      "BR", "ES", "IT", "NL", "JP"};
constexpr double kCountryWeights[] = {30, 15, 10, 10, 8, 7, 6, 5, 5, 4};

constexpr const char* kAgents[] = {
    // desktop, mobile, tablet
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 "
    "Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"};
constexpr const char* kDevices[] = {"desktop", "mobile", "tablet"};

// Mean events per session, from the shapes NewSession and Fill give them:
// 40 % single-page visits, else 2..9 page views (mean 5.5); an engagement
// event after 30 % of the page views; a conversion ending 18 % of the
// multi-page visits. Sessions start at this rate's share of the event rate.
constexpr double kEventsPerSession = (0.4 * 1 + 0.6 * 5.5) * 1.3 + 0.6 * 0.18;

struct Visitor {
  std::string id;
  uint32_t sessions = 0;
  uint8_t device = 0;
  uint8_t country = 0;
  uint8_t site = 0;
  // Its generator sessions under way. One that starts while another is
  // (a second tab: only in a population too small for the rate) joins the
  // visitor's current session, as a browser's tag keeps one session id
  // across tabs.
  uint32_t active = 0;
};

struct Session {
  int64_t visitor = 0;
  uint32_t number = 0;  // the visitor's session it belongs to
  int remaining_pageviews = 0;
  int step = 0;
  bool ping_pending = false;
  int conversion = -1;  // goal index converted at the end, -1 none
  std::string last_page;
};

struct Pending {
  int64_t time_us;
  uint64_t order;  // FIFO among equal times: reproducible
  size_t session;
  bool operator>(const Pending& o) const {
    return time_us != o.time_us ? time_us > o.time_us : order > o.order;
  }
};

}  // namespace

struct TrafficGenerator::Impl {
  TrafficOptions options;
  std::mt19937_64 rng;
  std::vector<Visitor> visitors;
  std::vector<Session> sessions;  // slots, reused
  std::vector<size_t> free_slots;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>>
      pending;
  int64_t next_arrival_us = 0;
  double arrivals_per_us = 0;
  uint64_t order = 0;
  int64_t generated = 0;
  std::discrete_distribution<int> channel_dist;
  std::discrete_distribution<int> country_dist;
  std::string base_url = "https://shop.example.com";

  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng); }
  int64_t Exponential(double mean_us) {
    return static_cast<int64_t>(-std::log(1 - Uniform()) * mean_us) + 1;
  }

  // Think time between two events of a session: 2 s .. 25 min, mean ~45 s.
  int64_t ThinkUs() {
    const int64_t us = Exponential(45e6);
    return std::clamp<int64_t>(us, 2'000'000, 1'500'000'000);
  }

  std::string Page() {
    switch (rng() % 6) {
      case 0:
        return "/";
      case 1:
        return absl::StrCat("/products/", rng() % 200);
      case 2:
        return absl::StrCat("/blog/post-", rng() % 50);
      case 3:
        return "/pricing";
      case 4:
        return absl::StrCat("/category/", rng() % 12);
      default:
        return "/cart";
    }
  }

  void ScheduleArrival() {
    double rate = arrivals_per_us;
    if (options.diurnal) {
      const double day = 86400e6;
      rate *=
          1 + 0.6 * std::sin(2 * M_PI * std::fmod(next_arrival_us, day) / day);
    }
    next_arrival_us += Exponential(1 / rate);
  }

  size_t NewSession() {
    // Pick a visitor that is not in a session right now.
    int64_t v = 0;
    for (int tries = 0; tries < 8; ++tries) {
      v = static_cast<int64_t>(rng() % visitors.size());
      if (visitors[v].active == 0) break;
    }
    Visitor& visitor = visitors[v];
    if (visitor.active++ == 0) ++visitor.sessions;
    size_t slot;
    if (free_slots.empty()) {
      slot = sessions.size();
      sessions.emplace_back();
    } else {
      slot = free_slots.back();
      free_slots.pop_back();
    }
    Session& s = sessions[slot];
    s = Session{};
    s.visitor = v;
    s.number = visitor.sessions;
    // ~40% single-page visits, else 2..9 page views.
    s.remaining_pageviews =
        Uniform() < 0.4 ? 1 : 2 + static_cast<int>(rng() % 8);
    const double u = Uniform();
    const size_t goals = options.goals.size();
    if (goals > 0 && s.remaining_pageviews > 1 && u < 0.18) {
      s.conversion = static_cast<int>(rng() % goals);
    }
    return slot;
  }

  void Fill(size_t slot, int64_t time_us, v1::WebEvent* e) {
    Session& s = sessions[slot];
    Visitor& visitor = visitors[s.visitor];
    e->Clear();
    e->set_event_id(absl::StrFormat("e-%d-%d", options.seed, generated));
    e->mutable_event_time()->set_seconds(time_us / 1000000);
    e->mutable_event_time()->set_nanos(static_cast<int32_t>(time_us % 1000000) *
                                       1000);
    e->set_site_id(options.sites[visitor.site]);
    e->set_visitor_id(visitor.id);
    e->set_device_category(kDevices[visitor.device]);
    e->set_country(kCountries[visitor.country]);
    if (options.user_agent) e->set_user_agent(kAgents[visitor.device]);
    e->set_session_number(visitor.sessions);
    if (options.session_ids) {
      e->set_session_id(absl::StrCat(visitor.id, "-", s.number));
    }
    ++generated;

    bool more = false;
    if (s.ping_pending) {
      e->set_type(v1::ENGAGEMENT);
      e->set_page_url(base_url + s.last_page);
      s.ping_pending = false;
      more = s.remaining_pageviews > 0 || s.conversion >= 0;
    } else if (s.remaining_pageviews > 0) {
      e->set_type(v1::PAGE_VIEW);
      std::string page = s.step == 0 ? "/" : Page();
      if (s.step == 0 && rng() % 2) page = Page();
      std::string query;
      if (s.step == 0) {
        const Channel& c = kChannels[channel_dist(rng)];
        e->set_referrer(c.referrer);
        const std::string click =
            c.click_param == nullptr
                ? ""
                : absl::StrFormat("%s%x", c.click_prefix, rng());
        if (options.campaign_in_url) {
          // The same parameters as query parameters (their values need no
          // percent-encoding); FillCampaignFromPageUrl reads them back.
          std::vector<std::string> params;
          if (*c.source)
            params.push_back(absl::StrCat("utm_source=", c.source));
          if (*c.medium)
            params.push_back(absl::StrCat("utm_medium=", c.medium));
          if (*c.campaign)
            params.push_back(absl::StrCat("utm_campaign=", c.campaign));
          if (!click.empty())
            params.push_back(absl::StrCat(c.click_param, "=", click));
          if (!params.empty()) query = "?" + absl::StrJoin(params, "&");
        } else {
          e->set_utm_source(c.source);
          e->set_utm_medium(c.medium);
          e->set_utm_campaign(c.campaign);
          // Tagged with its parameter, as FillCampaignFromPageUrl tags it.
          if (!click.empty())
            e->set_click_id(absl::StrCat(c.click_param, "-", click));
        }
      } else {
        e->set_referrer(base_url + s.last_page);
      }
      e->set_page_url(base_url + page + query);
      e->set_page_title(absl::StrCat("Shop Example ", page));
      s.last_page = page;
      --s.remaining_pageviews;
      ++s.step;
      s.ping_pending = Uniform() < 0.3;
      more = s.ping_pending || s.remaining_pageviews > 0 || s.conversion >= 0;
    } else {
      e->set_type(v1::CONVERSION);
      const std::string& goal = options.goals[s.conversion];
      e->set_page_url(base_url + "/thank-you");
      v1::Conversion* c = e->mutable_conversion();
      c->set_goal(goal);
      if (goal == "purchase") {
        c->set_value_micros(static_cast<int64_t>(5 + rng() % 196) * 1000000 +
                            static_cast<int64_t>(rng() % 100) * 10000);
        c->set_currency(visitor.country == 0 ? "USD" : "EUR");
        c->set_order_id(absl::StrFormat("o-%d-%d", options.seed, generated));
      }
      s.conversion = -1;
    }
    if (more) {
      const int64_t delay =
          s.ping_pending ? 10'000'000 + static_cast<int64_t>(rng() % 10'000'000)
                         : ThinkUs();
      pending.push({time_us + delay, order++, slot});
    } else {
      --visitor.active;
      free_slots.push_back(slot);
    }
  }
};

TrafficGenerator::TrafficGenerator(TrafficOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (options.sites.empty()) options.sites = {"shop"};
  if (options.visitors < 1) options.visitors = 1;
  if (options.events_per_second <= 0) options.events_per_second = 1;
  m.options = std::move(options);
  m.rng.seed(m.options.seed);
  std::vector<double> weights;
  for (const Channel& c : kChannels) weights.push_back(c.weight);
  m.channel_dist =
      std::discrete_distribution<int>(weights.begin(), weights.end());
  m.country_dist = std::discrete_distribution<int>(std::begin(kCountryWeights),
                                                   std::end(kCountryWeights));
  m.visitors.resize(m.options.visitors);
  for (int64_t i = 0; i < m.options.visitors; ++i) {
    Visitor& v = m.visitors[i];
    v.id = absl::StrFormat("v-%016x", m.rng());
    const double d = m.Uniform();
    v.device = d < 0.55 ? 0 : d < 0.93 ? 1 : 2;
    v.country = static_cast<uint8_t>(m.country_dist(m.rng));
    v.site = static_cast<uint8_t>(m.rng() % m.options.sites.size());
  }
  m.arrivals_per_us = m.options.events_per_second / kEventsPerSession / 1e6;
  m.next_arrival_us = absl::ToUnixMicros(m.options.start);
  m.ScheduleArrival();
}

TrafficGenerator::~TrafficGenerator() = default;

void TrafficGenerator::Next(v1::WebEvent* event) {
  Impl& m = *impl_;
  if (m.pending.empty() || m.next_arrival_us <= m.pending.top().time_us) {
    const int64_t t = m.next_arrival_us;
    m.ScheduleArrival();
    m.Fill(m.NewSession(), t, event);
    return;
  }
  const Pending p = m.pending.top();
  m.pending.pop();
  m.Fill(p.session, p.time_us, event);
}

int64_t TrafficGenerator::generated() const { return impl_->generated; }

double TrafficGenerator::SessionsPerSecond(const TrafficOptions& options) {
  // As the constructor takes a rate of 0 or less.
  const double rate =
      options.events_per_second > 0 ? options.events_per_second : 1;
  return rate / kEventsPerSession;
}

int64_t TrafficGenerator::DefaultVisitors(const TrafficOptions& options) {
  return std::clamp<int64_t>(
      std::llround(SessionsPerSecond(options) * 4 * 3600), 10000, 1000000);
}

absl::Duration TrafficGenerator::SteadyLead(TrafficOptions options) {
  const double rate = std::clamp(options.events_per_second, 1.0, 1000.0);
  options.events_per_second = rate;
  TrafficGenerator generator(options);
  const int64_t start_us = absl::ToUnixMicros(options.start);
  // The mean lead over the 10th to 15th minute of count-paced time. Up to
  // 1000 events per second these are the very events of a generator with
  // `options` (the same seed); faster, the lead is much the same.
  const int64_t from = static_cast<int64_t>(rate * 600);
  const int64_t to = static_cast<int64_t>(rate * 900);
  v1::WebEvent event;
  double sum_us = 0;
  for (int64_t n = 1; n <= to; ++n) {
    generator.Next(&event);
    if (n <= from) continue;
    const int64_t event_us = event.event_time().seconds() * 1000000 +
                             event.event_time().nanos() / 1000;
    sum_us += static_cast<double>(event_us - start_us) - n / rate * 1e6;
  }
  return absl::Microseconds(sum_us / static_cast<double>(to - from));
}

}  // namespace kpistream
