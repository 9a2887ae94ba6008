#include "tests/fuzz/checkpoint_setup.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "ingest/event_decoder.h"
#include "ingest/page_url.h"

namespace kpistream {
namespace fuzz {
namespace {

std::vector<Funnel> Funnels() {
  return {{"checkout",
           {{"product", "/products/*", ""},
            {"cart", "/cart", ""},
            {"purchase", "", "purchase"}}},
          {"blog", {{"post", "/blog/*", ""}, {"signup", "", "signup"}}}};
}

}  // namespace

const std::vector<TargetSpec>& Targets() {
  static const auto* specs = [] {
    auto* v = new std::vector<TargetSpec>();
    auto rolling = [&](std::string name, std::string kpi,
                       std::map<std::string, std::string> filter,
                       absl::Duration window) {
      TargetSpec t;
      t.name = std::move(name);
      t.kpi = std::move(kpi);
      t.filter = std::move(filter);
      t.value = 0.5;
      t.tolerance = 0.1;
      t.window = window;
      t.min_sample = 3;
      v->push_back(std::move(t));
    };
    auto period = [&](std::string name, std::string kpi,
                      std::map<std::string, std::string> filter) {
      TargetSpec t;
      t.name = std::move(name);
      t.kpi = std::move(kpi);
      t.filter = std::move(filter);
      t.value = 100;
      t.period_start = kStart - absl::Hours(24);
      t.period_end = kStart + absl::Hours(24 * 30);
      v->push_back(std::move(t));
    };
    rolling("bounce", "bounce_rate", {{"site", "shop"}}, absl::Hours(1));
    rolling("signup_rate", "conversion_rate", {{"goal", "signup"}},
            absl::Hours(24));
    rolling("duration", "avg_session_duration", {{"device", "mobile"}},
            absl::Minutes(30));
    rolling("aov_eur", "average_order_value", {{"currency", "EUR"}},
            absl::Hours(2));
    rolling("roas", "roas", {}, absl::Seconds(90));  // 1 s buckets
    period("orders", "orders", {{"site", "shop"}});
    period("revenue_eur", "revenue", {{"currency", "EUR"}});
    period("sessions_email", "sessions", {{"channel", "Email"}});
    return v;
  }();
  return *specs;
}

PartitionState::Options StateOptions() {
  PartitionState::Options options;
  options.rules.funnels = Funnels();
  options.allowed_lateness = absl::Minutes(5);
  options.dedup_horizon = absl::Hours(1);
  options.kpi_window = absl::Minutes(1);
  options.targets = &Targets();
  return options;
}

KpiCounters::Options CounterOptions() {
  KpiCounters::Options options;
  options.rules.funnels = Funnels();
  options.input_topics = {kPartition.topic};
  for (absl::string_view reason : InvalidReasons()) {
    options.invalid_reasons.emplace_back(reason);
  }
  return options;
}

Event MakeEvent(EventType type, const EventSpec& spec, absl::Time time) {
  static const char* const kPages[] = {"/",
                                       "/products/1",
                                       "/products/2?utm_source=x",
                                       "/cart",
                                       "/checkout",
                                       "/blog/post-1",
                                       "/blog/post-2",
                                       "/thanks"};
  static const char* const kDevices[] = {"desktop", "mobile", "tablet",
                                         "(not set)"};
  Event e;
  e.time = time;
  e.type = type;
  const int visitor = spec.who & 15;
  e.site_id = (spec.who & 16) ? "blog" : "shop";
  e.visitor_id = absl::StrCat("v", visitor);
  e.device_category = kDevices[(spec.who >> 5) & 3];
  e.country = (spec.who & 128) ? "US" : "DE";
  e.page_url = absl::StrCat("https://shop.example", kPages[spec.what & 7]);
  switch ((spec.what >> 3) & 3) {
    case 1:
      e.utm_source = "google";
      e.utm_medium = "cpc";
      e.utm_campaign = "brand";
      break;
    case 2:
      e.utm_source = "newsletter";
      e.utm_medium = "email";
      e.utm_campaign = "winter";
      break;
    case 3:
      e.click_id = "gclid-abc";
      break;
  }
  if (spec.what & 32) e.user_id = absl::StrCat("u", visitor);
  if (spec.what & 64) e.referrer = "https://www.google.com/";
  if (spec.what & 128) e.session_number = 1 + (spec.extra & 3);
  e.event_id = absl::StrCat("e", visitor, "-", spec.extra & 15);
  if (type == EventType::kConversion) {
    static const char* const kGoals[] = {"signup", "lead", "purchase",
                                         "purchase"};
    e.goal = kGoals[(spec.extra >> 4) & 3];
    // A lead's order id may be a purchase's too: one order, two goals.
    if (e.goal == "purchase" || e.goal == "lead") {
      e.order_id = absl::StrCat("o", visitor, "-", spec.extra >> 6);
    }
    if (e.goal == "purchase") {
      // Values as a producer may send them: any int64.
      static const int64_t kValues[] = {1500000, 249990000, INT64_MAX,
                                        INT64_MIN};
      e.value_micros = kValues[spec.extra >> 6];
      e.currency = (spec.extra & 16) ? "USD" : "EUR";
    }
  }
  FillCampaignFromPageUrl(&e);  // as EventDecoder does
  return e;
}

std::string EncodeRecord(const ChangelogRecord& record) {
  std::string out;
  TopicPartition tp;
  uint64_t seq = 0;
  uint32_t chunk = 0;
  uint8_t op = record.value.has_value() ? 0 : kTombstone;
  if (ParseCheckpointKey(record.key, &tp, &seq, &chunk) &&
      tp.topic == kPartition.topic && tp.partition >= 0 &&
      tp.partition < kPartitions && seq < 256 && chunk < 256 &&
      CheckpointKey(tp, seq, chunk) == record.key) {
    out.push_back(static_cast<char>(op));
    out.push_back(static_cast<char>(tp.partition));
    out.push_back(static_cast<char>(seq));
    out.push_back(static_cast<char>(chunk));
  } else {
    const size_t n = std::min<size_t>(record.key.size(), 255);
    out.push_back(static_cast<char>(op | kRawKey));
    out.push_back(static_cast<char>(n));
    out.append(record.key, 0, n);
  }
  const std::string value = record.value.value_or("");
  const size_t n = std::min<size_t>(value.size(), 65535);
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>(n >> 8));
  out.append(value, 0, n);
  return out;
}

}  // namespace fuzz
}  // namespace kpistream
