// kpistream loadgen: realistic synthetic traffic into a topic, paced in wall
// clock, keyed by visitor_id, reproducible by --seed.
#include <cmath>
#include <cstdio>
#include <map>
#include <queue>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cmd/commands.h"
#include "cmd/log.h"
#include "cmd/signals.h"
#include "cmd/traffic_generator.h"
#include "config/config.h"
#include "google/protobuf/util/json_util.h"
#include "kafka/producer.h"

namespace kpistream {
namespace {

// How long loadgen asks again about a topic the brokers said they do not
// know (Producer::AwaitTopic): one they create on request (review: Kafka 4
// in KRaft mode, where loadgen said "create it" of a topic it had just had
// created) has partitions within a second or two.
constexpr absl::Duration kTopicCreationWait = absl::Seconds(5);

}  // namespace

int RunLoadgenCommand(const LoadgenCommandOptions& options) {
  auto usage = [](const std::string& message) {
    std::fprintf(stderr, "kpistream loadgen: %s\n", message.c_str());
    return 2;
  };
  if (options.brokers.empty()) return usage("--brokers is required");
  if (options.topic.empty()) return usage("--topic is required");
  if (options.format != "protobuf" && options.format != "json") {
    return usage("--format must be protobuf or json, got \"" + options.format +
                 "\"");
  }
  if (options.rate < 0) return usage("--rate must be >= 0");
  absl::Duration duration = absl::InfiniteDuration();
  if (!options.duration.empty()) {
    auto parsed = ParseDurationString(options.duration);
    if (!parsed.ok())
      return usage("--duration: " + std::string(parsed.status().message()));
    duration = *parsed;
  }
  absl::Time start = absl::Now();
  if (!options.start_time.empty()) {
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, options.start_time, &start,
                         &error)) {
      return usage("--start-time: expected RFC 3339 (2026-01-01T00:00:00Z): " +
                   error);
    }
  }
  kafka::Producer::Options producer;
  producer.brokers = options.brokers;
  producer.client_id = "kpistream-loadgen";
  producer.properties = {{"linger.ms", "20"},
                         {"batch.num.messages", "10000"},
                         {"queue.buffering.max.messages", "500000"}};
  auto sink = kafka::Producer::Create(producer);
  if (!sink.ok()) {
    KPI_LOG_ERROR("loadgen: %s", sink.status().message());
    return 1;
  }

  absl::Duration disorder = absl::ZeroDuration();
  if (!options.disorder.empty() && options.disorder != "0") {
    auto parsed = ParseDurationString(options.disorder);
    if (!parsed.ok()) {
      return usage(absl::StrCat("--disorder: ", parsed.status().message()));
    }
    disorder = *parsed;
  }

  TrafficOptions traffic;
  traffic.seed = options.seed;
  // Event time follows the wall clock at the paced rate.
  traffic.events_per_second = options.event_rate > 0 ? options.event_rate
                              : options.rate > 0     ? options.rate
                                                     : 1000;
  const double sessions_per_second =
      TrafficGenerator::SessionsPerSecond(traffic);
  traffic.visitors = options.visitors > 0
                         ? options.visitors
                         : TrafficGenerator::DefaultVisitors(traffic);
  const absl::Duration returns_every = absl::Seconds(
      static_cast<double>(traffic.visitors) / sessions_per_second);
  if (returns_every < absl::Hours(1)) {
    KPI_LOG_WARN(
        "loadgen: %d visitors at %g events per second of event time: each "
        "starts a session every %s of event time on average, too often for "
        "most of them to close (an engine ends a session after 30 min "
        "without events, sessions.inactivity_timeout): give --visitors %d or "
        "more",
        traffic.visitors, traffic.events_per_second,
        absl::FormatDuration(absl::Trunc(returns_every, absl::Seconds(1))),
        static_cast<int64_t>(std::ceil(sessions_per_second * 3600)));
  }
  traffic.start = start;
  traffic.user_agent = !options.no_user_agent;
  traffic.campaign_in_url = options.campaign_in_url;
  traffic.session_ids = options.session_ids;
  if (options.start_time.empty() && options.rate > 0 &&
      traffic.events_per_second == options.rate) {
    // Event time from now, paced as the records are: the generator's clock
    // runs ahead of the records while its first sessions get under way, and
    // would date every event about two minutes in the future from then on;
    // an engine holds such events in its reorder buffer until its clock
    // reaches them.
    const absl::Duration lead = TrafficGenerator::SteadyLead(traffic);
    traffic.start -= lead;
    KPI_LOG_INFO(
        "loadgen: event time starts %s before now, so that it follows the "
        "wall clock once the first sessions are under way (their first page "
        "views come before their later events); --start-time sets it",
        absl::FormatDuration(absl::Trunc(lead, absl::Seconds(1))));
  }
  TrafficGenerator generator(traffic);

  v1::WebEvent event;
  std::string value;
  google::protobuf::util::JsonPrintOptions json;
  std::map<int, int64_t> per_type;
  int64_t produced = 0, bytes = 0, records = 0;
  int64_t injected_duplicates = 0, injected_late = 0, injected_bots = 0,
          injected_garbage = 0;
  // Separate from the traffic generator's, so the clean stream is the same
  // with or without hostile records.
  std::mt19937_64 hostile(options.seed ^ 0x5bd1e995);
  auto chance = [&](double p) {
    return p > 0 && std::uniform_real_distribution<double>(0, 1)(hostile) < p;
  };
  auto encode = [&](const v1::WebEvent& e, std::string* out) {
    if (options.format == "json") {
      out->clear();
      (void)google::protobuf::util::MessageToJsonString(e, out, json);
    } else {
      e.SerializeToString(out);
    }
  };
  std::string random_key;
  auto send = [&](absl::string_view key, absl::string_view bytes_out) {
    if (options.key == "none") {
      key = absl::string_view();  // a null key
    } else if (options.key == "random") {
      random_key = absl::StrCat("k", hostile() % 1000000);
      key = random_key;
    }
    absl::Status status = (*sink)->Produce(options.topic, key, bytes_out);
    if (!status.ok()) {
      KPI_LOG_ERROR("loadgen: %s (brokers %s)", status.message(),
                    options.brokers);
      return false;
    }
    ++records;
    bytes += static_cast<int64_t>(bytes_out.size());
    return true;
  };
  // Disorder: events wait in a heap keyed by their turn plus a random delay
  // of up to `disorder`, and leave it once the generator is past that.
  std::mt19937_64 shuffle(options.seed ^ 0x9e3779b97f4a7c15ull);
  using Delayed = std::pair<int64_t, uint64_t>;  // release time, sequence
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<Delayed>>
      delayed;
  std::map<uint64_t, v1::WebEvent> waiting;
  uint64_t sequence = 0;
  const int64_t disorder_us = absl::ToInt64Microseconds(disorder);
  auto next_event = [&](v1::WebEvent* out) {
    if (disorder_us <= 0) return generator.Next(out);
    for (;;) {
      v1::WebEvent e;
      generator.Next(&e);
      const int64_t t =
          e.event_time().seconds() * 1000000 + e.event_time().nanos() / 1000;
      const int64_t release =
          t +
          static_cast<int64_t>(shuffle() % static_cast<uint64_t>(disorder_us));
      delayed.push({release, sequence});
      waiting.emplace(sequence++, std::move(e));
      if (!delayed.empty() && delayed.top().first <= t) {
        auto it = waiting.find(delayed.top().second);
        delayed.pop();
        *out = std::move(it->second);
        waiting.erase(it);
        return;
      }
    }
  };
  v1::WebEvent extra;
  std::string extra_value;
  // Pacing starts once the producer knows where the topic's partitions are:
  // records produced before would wait in its queue meanwhile, and reach
  // the brokers as a burst of the first second's (stamped, as CreateTime,
  // with when they were produced).
  const absl::Status ready =
      (*sink)->AwaitTopic(options.topic, absl::Seconds(30), kTopicCreationWait);
  if (absl::IsNotFound(ready)) {
    // The brokers answered, and did not create it on the producer's
    // request (auto.create.topics.enable=false, as production clusters
    // have it): every record would wait 30 s and be dropped, while the
    // progress lines counted them as produced.
    KPI_LOG_ERROR(
        "loadgen: %s (brokers %s): no record can be written to it; create "
        "it (the brokers do not on request: e.g. kafka-topics.sh --create "
        "--topic %s --partitions 8), or grant the write permission",
        ready.message(), options.brokers, options.topic);
    return 1;
  } else if (!ready.ok()) {
    // No broker answered within those 30 s (a broker started alongside has
    // had them): producing would only wait as long again for every
    // record's delivery to fail.
    KPI_LOG_ERROR(
        "loadgen: %s (brokers %s): no broker answered within 30 s; is one "
        "running there, and is the address right? (the connection errors "
        "above say why)",
        ready.message(), options.brokers);
    return 1;
  }
  const absl::Time begin = absl::Now();
  absl::Time last_progress = begin;
  auto done = [&] {
    return StopRequested() ||
           (options.events > 0 && produced >= options.events) ||
           absl::Now() - begin >= duration;
  };
  while (!done()) {
    int64_t due = options.events > 0 ? options.events : INT64_MAX;
    if (options.rate > 0) {
      due = std::min<int64_t>(
          due, static_cast<int64_t>(absl::ToDoubleSeconds(absl::Now() - begin) *
                                    options.rate) +
                   1);
    }
    for (int n = 0; produced < due && n < 10000; ++n) {
      next_event(&event);
      if (chance(options.bots)) {
        event.set_user_agent(
            "Mozilla/5.0 (compatible; Googlebot/2.1; "
            "+http://www.google.com/bot.html)");
        ++injected_bots;
      }
      encode(event, &value);
      if (!send(event.visitor_id(), value)) return 1;
      ++per_type[event.type()];
      ++produced;
      if (chance(options.duplicates)) {
        if (!send(event.visitor_id(), value)) return 1;
        ++injected_duplicates;
      }
      if (chance(options.late)) {
        extra = event;
        extra.set_event_id("late-" + event.event_id());
        extra.mutable_event_time()->set_seconds(event.event_time().seconds() -
                                                3600);
        encode(extra, &extra_value);
        if (!send(extra.visitor_id(), extra_value)) return 1;
        ++injected_late;
      }
      if (chance(options.garbage)) {
        extra_value.resize(1 + hostile() % 64);
        for (char& c : extra_value) c = static_cast<char>(hostile());
        if (!send("garbage", extra_value)) return 1;
        ++injected_garbage;
      }
    }
    const absl::Time now = absl::Now();
    if (now - last_progress >= absl::Seconds(5)) {
      KPI_LOG_INFO("loadgen: %d events produced (%.0f/s)", produced,
                   produced / absl::ToDoubleSeconds(now - begin));
      last_progress = now;
    }
    if (options.rate > 0 && produced >= due)
      absl::SleepFor(absl::Milliseconds(5));
  }
  absl::Status flushed = (*sink)->Flush();
  if (!flushed.ok()) {
    KPI_LOG_ERROR("loadgen: %s (brokers %s)", flushed.message(),
                  options.brokers);
    return 1;
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  std::printf(
      "injected %lld duplicates, %lld late, %lld bots, %lld garbage; %lld "
      "records in all\n",
      static_cast<long long>(injected_duplicates),
      static_cast<long long>(injected_late),
      static_cast<long long>(injected_bots),
      static_cast<long long>(injected_garbage),
      static_cast<long long>(records));
  std::printf(
      "produced %lld events (%lld page_view, %lld engagement, %lld conversion, "
      "%lld custom), %lld bytes, to %s in %.2f s (%.0f events/s), seed %llu\n",
      static_cast<long long>(produced),
      static_cast<long long>(per_type[v1::PAGE_VIEW]),
      static_cast<long long>(per_type[v1::ENGAGEMENT]),
      static_cast<long long>(per_type[v1::CONVERSION]),
      static_cast<long long>(per_type[v1::CUSTOM]),
      static_cast<long long>(bytes), options.topic.c_str(), seconds,
      produced / std::max(seconds, 1e-9),
      static_cast<unsigned long long>(options.seed));
  return 0;
}

}  // namespace kpistream
