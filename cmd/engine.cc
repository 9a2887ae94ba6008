#include "cmd/engine.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "aggregate/bot_filter.h"
#include "aggregate/channel_classifier.h"
#include "aggregate/kpi_counters.h"
#include "aggregate/kpi_windows.h"
#include "aggregate/partition_state.h"
#include "aggregate/target_tracker.h"
#include "cmd/log.h"
#include "cmd/rejection_reporter.h"
#include "cmd/signals.h"
#include "export/dead_letter.h"
#include "export/kafka_sink.h"
#include "export/metrics_endpoint.h"
#include "export/process_metrics.h"
#include "export/session_record_codec.h"
#include "ingest/ad_cost_decoder.h"
#include "ingest/changelog_reader.h"
#include "ingest/event_decoder.h"
#include "ingest/kafka_source.h"
#include "ingest/watermark.h"
#include "kpistream/v1/target_state.pb.h"

namespace kpistream {
namespace {

constexpr absl::Duration kCommitInterval = absl::Seconds(1);
constexpr absl::Duration kPublishInterval = absl::Milliseconds(200);
constexpr size_t kPollBatch = 2000;
constexpr absl::Duration kFullChangelogInterval = absl::Hours(1);

SessionRules RulesFrom(const Config& config) {
  const SessionsConfig& s = config.sessions;
  SessionRules rules;
  rules.inactivity_timeout = s.inactivity_timeout;
  rules.max_length = s.max_length;
  rules.engaged_min_duration = s.engaged_min_duration;
  rules.engaged_min_pageviews = s.engaged_min_pageviews;
  rules.visitor_retention = s.visitor_retention;
  rules.split_at_midnight = s.split_at_midnight;
  for (const FunnelConfig& f : config.funnels) {
    Funnel funnel{f.name, {}};
    for (const FunnelStepConfig& step : f.steps) {
      funnel.steps.push_back({step.name, step.page, step.goal});
    }
    rules.funnels.push_back(std::move(funnel));
  }
  rules.split_on_campaign_change = s.split_on_campaign_change;
  absl::LoadTimeZone(s.timezone, &rules.timezone);  // validated by the config
  return rules;
}

std::vector<TargetSpec> TargetSpecsFrom(const Config& config) {
  std::vector<TargetSpec> specs;
  for (const TargetConfig& t : config.targets) {
    TargetSpec spec;
    spec.name = t.name;
    spec.kpi = t.kpi;
    spec.filter = t.filter;
    spec.direction = t.direction == TargetDirection::kAtLeast
                         ? Direction::kAtLeast
                         : Direction::kAtMost;
    spec.value = t.value;
    spec.tolerance = t.tolerance;
    spec.window = t.window;
    spec.period_start = t.period_start;
    spec.period_end = t.period_end;
    spec.min_sample = t.min_sessions;
    specs.push_back(std::move(spec));
  }
  return specs;
}

KpiCounters::Options CounterOptions(const Config& config,
                                    const SessionRules& rules) {
  KpiCounters::Options options{config.metrics.label_values_max, config.goals,
                               rules, config.metrics.label_allowlists};
  for (const InputConfig& input : config.inputs) {
    options.input_topics.push_back(input.topic);
  }
  for (absl::string_view reason : InvalidReasons()) {
    options.invalid_reasons.emplace_back(reason);
  }
  return options;
}

FamilySnapshot Gauge(std::string name, std::string help,
                     std::vector<std::string> label_names = {}) {
  FamilySnapshot family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = MetricType::kGauge;
  family.label_names = std::move(label_names);
  return family;
}

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

}  // namespace

double SumSamples(const MetricsSnapshot& snapshot, const std::string& name,
                  const std::string& label, const std::string& value) {
  double sum = 0;
  for (const FamilySnapshot& family : snapshot) {
    if (family.name != name) continue;
    int index = -1;
    for (size_t i = 0; i < family.label_names.size(); ++i) {
      if (family.label_names[i] == label) index = static_cast<int>(i);
    }
    if (!label.empty() && index < 0) return 0;
    for (const MetricSample& sample : family.samples) {
      if (index >= 0 && sample.label_values[index] != value) continue;
      sum += family.type == MetricType::kHistogram
                 ? static_cast<double>(sample.count)
                 : sample.value;
    }
  }
  return sum;
}

class Engine::Impl : public KafkaSource::Listener, public SessionObserver {
 public:
  explicit Impl(const Config& config)
      : config_(config),
        rules_(RulesFrom(config)),
        target_specs_(TargetSpecsFrom(config)),
        counters_(CounterOptions(config, rules_)),
        bots_(config.bot_patterns, config.empty_user_agent_is_bot),
        log_bots_(config.bot_patterns, /*empty_is_bot=*/true),
        channels_(ChannelClassifier::Options{
            config.channels.search_sources, config.channels.social_sources,
            config.channels.video_sources, config.channels.shopping_sources}),
        watermark_(config.processing.max_out_of_orderness,
                   config.processing.idle_partition_timeout),
        // [first hour] rejected input summarised in the log
        rejections_(RejectionReporterOptions(config), absl::Now()) {}

  absl::Status Init() {
    for (const InputConfig& input : config_.inputs) {
      if (input.kind == InputKind::kAdCost) {
        ad_cost_inputs_.emplace(input.topic,
                                std::make_unique<AdCostDecoder>(input.format));
      } else {
        // SPEC §9: an access-log line without a user agent is a bot; a
        // WebEvent's user agent is optional.
        const BotFilter* bots =
            input.format == InputFormat::kCombinedLog ? &log_bots_ : &bots_;
        inputs_.emplace(
            input.topic,
            EventInput{std::make_unique<EventDecoder>(
                           input.format, config_.processing.max_future_skew,
                           input.site, input.host),
                       bots});
      }
      topic_index_.emplace(input.topic, static_cast<int32_t>(topics_.size()));
      topics_.push_back(input.topic);
    }
    if (!target_specs_.empty()) {
      std::vector<std::string> names;
      for (const TargetSpec& t : target_specs_) names.push_back(t.name);
      KPI_LOG_INFO("engine: evaluating %d target(s): %s",
                   static_cast<int>(names.size()), absl::StrJoin(names, ", "));
    }
    if (topics_.empty()) {
      return absl::InvalidArgumentError("no event input topic is configured");
    }
    auto endpoint = MetricsEndpoint::Start(config_.metrics.listen);
    if (!endpoint.ok()) return endpoint.status();
    endpoint_ = std::move(*endpoint);
    endpoint_->AddSource([this] { return Snapshot(); });
    endpoint_->AddSource(&CollectProcessMetrics);  // [first hour] process_*

    KafkaSink::Options sink_options;
    sink_options.brokers = config_.kafka.brokers;
    sink_options.properties = config_.kafka.properties;
    if (config_.processing.guarantee == Guarantee::kExactlyOnce) {
      sink_options.transactional_id =
          absl::StrCat(config_.kafka.group_id, "-", Hostname(), "-", getpid());
    }
    auto sink = KafkaSink::Create(sink_options);
    if (!sink.ok()) return sink.status();
    sink_ = std::move(*sink);
    if (!target_specs_.empty()) {
      // Targets keep state across restarts and rebalances in the changelog.
      ChangelogReadOptions changelog;
      changelog.brokers = config_.kafka.brokers;
      changelog.properties = config_.kafka.properties;
      changelog.topic = config_.changelog_output.topic;
      changelog.timeout = absl::Seconds(30);
      auto partitions = ChangelogPartitionCount(changelog);
      if (!partitions.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "outputs.changelog.topic: ", partitions.status().message(),
            "; the targets' state is kept there: create it with "
            "cleanup.policy=compact (as many partitions as the inputs), or "
            "name another topic"));
      }
      changelog_partitions_ = *partitions;
    }

    KafkaSource::Options source_options;
    source_options.brokers = config_.kafka.brokers;
    source_options.group_id = config_.kafka.group_id;
    source_options.topics = topics_;
    source_options.properties = config_.kafka.properties;
    auto source = KafkaSource::Create(source_options, this);
    if (!source.ok()) return source.status();
    source_ = std::move(*source);
    Publish(absl::Now());
    return absl::OkStatus();
  }

  absl::Status Run() {
    KPI_LOG_INFO(
        "engine: consuming %s as group \"%s\" from %s (%s); /metrics on "
        "%s port %d",
        absl::StrJoin(topics_, ","), config_.kafka.group_id,
        config_.kafka.brokers,
        sink_->transactional() ? "exactly_once" : "at_least_once",
        config_.metrics.listen, endpoint_->port());
    absl::Time last_commit = absl::Now();
    absl::Time last_publish = absl::InfinitePast();
    while (!StopRequested() && fatal_.ok()) {
      std::vector<KafkaMessage> messages =
          source_->Poll(kPollBatch, absl::Milliseconds(100));
      const absl::Time now = absl::Now();
      absl::Time watermark = watermark_.Current(now);
      for (KafkaMessage& message : messages) {
        if (!fatal_.ok()) break;  // e.g. a state restore failed
        Handle(*message, now, watermark);
      }
      Advance(now);
      LogRejections(rejections_.Take(now));  // [first hour]
      if (now - last_publish >= kPublishInterval) {
        Publish(now);
        last_publish = now;
      }
      if (now - last_commit >= kCommitInterval) {
        CommitCycle();
        last_commit = now;
      }
    }
    if (!fatal_.ok()) {
      Publish(absl::Now());
      return fatal_;
    }
    KPI_LOG_INFO("engine: stopping: closing open state, flushing, committing");
    LogRejections(rejections_.Flush(absl::Now()));  // [first hour]
    for (auto& [tp, slot] : partitions_) {
      slot.state->Drain();
      EmitWindows(slot, absl::InfiniteFuture());
    }
    CommitCycle();
    source_->Close();  // revokes (nothing left to do) and leaves the group
    Publish(absl::Now());
    if (fatal_.ok()) {
      KPI_LOG_INFO("engine: stopped cleanly; %d output records delivered",
                   static_cast<int64_t>(sink_->delivered()));
    }
    return fatal_;
  }

  MetricsSnapshot Snapshot() const {
    std::lock_guard<std::mutex> lock(published_mu_);
    return published_;
  }

  int metrics_port() const { return endpoint_->port(); }

  // KafkaSource::Listener
  void OnAssigned(const std::vector<TopicPartition>& partitions) override {
    AddSlots(partitions, /*stray=*/false);
  }

  // `stray`: a partition we were never told about (a message of it came
  // anyway): kept safe, but its target state is neither restored nor written
  // to the changelog, where it would overwrite the owner's.
  void AddSlots(const std::vector<TopicPartition>& partitions, bool stray) {
    // Our own open transaction (partitions we keep, with a cooperative
    // assignor) would hold the changelog's end back during the restore:
    // commit it first.
    if (!stray && !target_specs_.empty() && sink_->transactional() &&
        !partitions_.empty()) {
      CommitCycle();
    }
    const absl::Time now = absl::Now();
    for (const TopicPartition& tp : partitions) {
      Slot slot;
      slot.stray = stray;
      slot.watermark_id = topic_index_[tp.topic] * 100000 + tp.partition;
      slot.name = absl::StrCat(tp.topic, ":", tp.partition);
      slot.targets = std::make_unique<TargetTracker>(
          &target_specs_, config_.sessions.inactivity_timeout);
      slot.observer = std::make_unique<SlotObserver>(
          this, config_.kpi_output.window, slot.targets.get());
      slot.state = std::make_unique<PartitionState>(
          rules_, config_.processing.allowed_lateness, slot.observer.get(),
          &channels_, config_.processing.dedup_horizon);
      watermark_.Assign(slot.watermark_id, now);
      partitions_[tp] = std::move(slot);
      KPI_LOG_INFO("engine: assigned %s[%d]", tp.topic, tp.partition);
    }
    if (!stray) RestoreTargets(partitions);
  }

  void OnRevoked(const std::vector<TopicPartition>& partitions) override {
    bool any = false;
    for (const TopicPartition& tp : partitions) {
      auto it = partitions_.find(tp);
      if (it == partitions_.end()) continue;
      it->second.state->Drain();
      EmitWindows(it->second, absl::InfiniteFuture());
      any = true;
    }
    if (any) CommitCycle(/*revoking=*/true);
    for (const TopicPartition& tp : partitions) {
      auto it = partitions_.find(tp);
      if (it == partitions_.end()) continue;
      watermark_.Revoke(it->second.watermark_id);
      partitions_.erase(it);
      KPI_LOG_INFO("engine: revoked %s[%d]", tp.topic, tp.partition);
    }
  }

  // SessionObserver
  void OnSessionStarted(const SessionAttributes& session,
                        const Event& first) override {
    counters_.OnSessionStarted(session, first);
  }
  void OnEvent(const SessionAttributes& session, const Event& event) override {
    counters_.OnEvent(session, event);
  }
  void OnSessionClosed(const ClosedSession& session) override {
    counters_.OnSessionClosed(session);
    if (!config_.sessions_output.enabled) return;
    Produce(config_.sessions_output.topic, session.visitor_id,
            EncodeSessionRecord(session, config_.sessions_output.format), {});
  }

 private:
  // Fans one partition's session events out to the engine (counters, the
  // sessions topic) and to that partition's KPI windows.
  class SlotObserver : public SessionObserver {
   public:
    SlotObserver(Impl* engine, absl::Duration window, TargetTracker* targets)
        : windows(window), engine_(engine), targets_(targets) {}
    void OnSessionStarted(const SessionAttributes& s, const Event& e) override {
      engine_->OnSessionStarted(s, e);
      windows.OnSessionStarted(s, e);
    }
    void OnEvent(const SessionAttributes& s, const Event& e) override {
      engine_->OnEvent(s, e);
    }
    void OnSessionClosed(const ClosedSession& s) override {
      engine_->OnSessionClosed(s);
      windows.OnSessionClosed(s);
      targets_->OnSessionClosed(s);
    }
    KpiWindows windows;

   private:
    Impl* engine_;
    TargetTracker* targets_;
  };

  struct Slot {
    int32_t watermark_id = 0;
    std::string name;                        // "topic:partition"
    bool stray = false;                      // see AddSlots
    std::unique_ptr<TargetTracker> targets;  // this partition's share
    std::unique_ptr<SlotObserver> observer;
    std::unique_ptr<PartitionState> state;
  };

  // Writes the partition's changed and finished KPI windows.
  void EmitWindows(Slot& slot, absl::Time frontier) {
    std::vector<WindowKpis> windows = slot.observer->windows.Collect(frontier);
    if (!config_.kpi_output.enabled) return;
    for (const WindowKpis& w : windows) {
      Produce(config_.kpi_output.topic,
              absl::StrCat(w.site, "/", w.channel, "/",
                           absl::ToUnixSeconds(w.start)),
              EncodeKpiSnapshot(w, slot.name, config_.kpi_output.format), {});
    }
  }

  // Changelog key of a target's bucket (or period total) in an input
  // partition: "t/<topic>/<partition>/<bucket|total>/<target>".
  static std::string ChangelogKey(const TopicPartition& tp, int64_t bucket,
                                  const std::string& target) {
    return absl::StrCat(
        "t/", tp.topic, "/", tp.partition, "/",
        bucket == TargetTracker::kTotal ? "total" : absl::StrCat(bucket), "/",
        target);
  }

  int32_t ChangelogPartition(const TopicPartition& tp) const {
    return changelog_partitions_ > 0 ? tp.partition % changelog_partitions_
                                     : -1;
  }

  // Writes the targets' changed buckets of every partition to the changelog
  // (part of the transaction that commits the offsets they reflect).
  void WriteTargetChanges() {
    if (target_specs_.empty()) return;
    const absl::Time now = absl::Now();
    if (now - last_full_changelog_ >= kFullChangelogInterval) {
      // Rewrite everything now and then: correct even on a changelog topic
      // that deletes old records instead of compacting them.
      for (auto& [tp, slot] : partitions_) slot.targets->MarkAllChanged();
      last_full_changelog_ = now;
    }
    v1::TargetState state;
    std::string bytes;
    for (auto& [tp, slot] : partitions_) {
      if (slot.stray) {
        slot.targets->TakeChanges();  // not ours to write
        continue;
      }
      for (const TargetTracker::Change& c : slot.targets->TakeChanges()) {
        const TargetSpec& spec = target_specs_[c.target];
        const std::string key = ChangelogKey(tp, c.bucket, spec.name);
        if (c.erased) {
          Produce(config_.changelog_output.topic, key, absl::string_view(), {},
                  ChangelogPartition(tp));
          continue;
        }
        state.set_fingerprint(target_fingerprints_[c.target]);
        state.set_numerator(c.sums.numerator);
        state.set_denominator(c.sums.denominator);
        state.set_sample(c.sums.sample);
        state.set_matched(c.sums.matched);
        state.SerializeToString(&bytes);
        Produce(config_.changelog_output.topic, key, bytes, {},
                ChangelogPartition(tp));
      }
    }
  }

  // Restores the targets' state of newly assigned partitions from the
  // changelog: the last committed value of every key (tombstones delete).
  // A failure is fatal: counting on from zero would be wrong.
  void RestoreTargets(const std::vector<TopicPartition>& partitions) {
    if (target_specs_.empty() || partitions.empty() || !fatal_.ok()) return;
    const absl::Time started = absl::Now();
    std::set<int32_t> changelog_partitions;
    std::set<std::pair<std::string, int32_t>> wanted;
    for (const TopicPartition& tp : partitions) {
      changelog_partitions.insert(ChangelogPartition(tp));
      wanted.insert({tp.topic, tp.partition});
    }
    ChangelogReadOptions options;
    options.brokers = config_.kafka.brokers;
    options.properties = config_.kafka.properties;
    options.topic = config_.changelog_output.topic;
    options.partitions.assign(changelog_partitions.begin(),
                              changelog_partitions.end());
    // Up to a dead instance's open transaction being aborted by the broker
    // (transaction.timeout.ms, 60 s by default) and then some.
    options.timeout = absl::Minutes(3);
    // key -> latest state (nullopt: deleted)
    std::map<std::string, std::optional<v1::TargetState>> latest;
    int64_t undecodable = 0;
    absl::Status status = ReadChangelog(options, [&](absl::string_view key,
                                                     absl::string_view value,
                                                     bool tombstone) {
      if (tombstone) {
        latest[std::string(key)] = std::nullopt;
        return;
      }
      v1::TargetState state;
      if (!state.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        ++undecodable;
        return;
      }
      latest[std::string(key)] = std::move(state);
    });
    if (!status.ok()) {
      Fail(absl::Status(
          status.code(),
          absl::StrCat("restoring the targets' state: ", status.message())));
      return;
    }
    absl::flat_hash_map<std::string, size_t> index;
    for (size_t i = 0; i < target_specs_.size(); ++i) {
      index[target_specs_[i].name] = i;
    }
    int64_t restored = 0, stale = 0;
    for (const auto& [key, state] : latest) {
      if (!state.has_value()) continue;
      // "t/<topic>/<partition>/<bucket|total>/<target>"
      std::vector<std::string> parts =
          absl::StrSplit(key, absl::MaxSplits('/', 4));
      int32_t partition = 0;
      int64_t bucket = TargetTracker::kTotal;
      if (parts.size() != 5 || parts[0] != "t" ||
          !absl::SimpleAtoi(parts[2], &partition) ||
          (parts[3] != "total" && !absl::SimpleAtoi(parts[3], &bucket))) {
        ++undecodable;
        continue;
      }
      if (!wanted.count({parts[1], partition})) continue;
      auto target = index.find(parts[4]);
      if (target == index.end() ||
          state->fingerprint() != target_fingerprints_[target->second]) {
        // A target removed or redefined since: delete its old state.
        ++stale;
        Produce(config_.changelog_output.topic, key, absl::string_view(), {},
                ChangelogPartition(TopicPartition{parts[1], partition}));
        continue;
      }
      auto slot = partitions_.find(TopicPartition{parts[1], partition});
      if (slot == partitions_.end()) continue;
      TargetSums sums;
      sums.numerator = state->numerator();
      sums.denominator = state->denominator();
      sums.sample = state->sample();
      sums.matched = state->matched();
      slot->second.targets->Restore(target->second, bucket, sums);
      ++restored;
    }
    KPI_LOG_INFO(
        "engine: restored %d target bucket(s) of %d partition(s) from "
        "changelog \"%s\" in %d ms (%d bucket(s) of removed or redefined "
        "targets deleted, %d undecodable)",
        restored, static_cast<int>(partitions.size()),
        config_.changelog_output.topic,
        static_cast<int64_t>(absl::ToInt64Milliseconds(absl::Now() - started)),
        stale, undecodable);
  }

  void Handle(const rd_kafka_message_t& message, absl::Time now,
              absl::Time watermark) {
    const char* topic = rd_kafka_topic_name(message.rkt);
    counters_.CountConsumed(topic);
    rejections_.Consumed(topic);  // [first hour]
    const absl::string_view bytes(static_cast<const char*>(message.payload),
                                  message.len);
    if (auto ad = ad_cost_inputs_.find(absl::string_view(topic));
        ad != ad_cost_inputs_.end()) {
      HandleAdCost(message, *ad->second, bytes);
      return;
    }
    auto input = inputs_.find(absl::string_view(topic));
    if (input == inputs_.end()) {
      Reject(message, "unknown_topic", "the topic is not a configured input");
      return;
    }
    DecodeResult decoded = input->second.decoder->Decode(bytes, now, &event_);
    Slot& slot = SlotOf(TopicPartition{topic, message.partition});
    // Event time advances with every timestamped record, whatever becomes of
    // it (SPEC §3): bots, duplicates and rejected lines move it too.
    if (decoded.time != absl::InfinitePast()) {
      watermark_.Observe(slot.watermark_id, decoded.time, now);
    }
    if (!decoded.ok) {
      Reject(message, decoded.reason, decoded.detail);
      return;
    }
    if (input->second.bots->IsBot(event_.user_agent)) {
      counters_.CountBot();
      DeadLetter(message, "bot");
      return;
    }
    const EventType type = event_.type;
    site_.assign(event_.site_id);
    visitor_.assign(event_.visitor_id);
    switch (slot.state->Offer(std::move(event_), watermark)) {
      case PartitionState::Admit::kAccepted:
        counters_.CountAccepted(site_, type);
        active_.Observe(site_, visitor_, now);
        break;
      case PartitionState::Admit::kLate:
        counters_.CountLate();
        DeadLetter(message, "late");
        break;
      case PartitionState::Admit::kDuplicate:
        counters_.CountDuplicate();
        DeadLetter(message, "duplicate");
        break;
    }
  }

  Slot& SlotOf(const TopicPartition& tp) {
    auto slot = partitions_.find(tp);
    if (slot == partitions_.end()) {
      // A message of a partition we were never told about: keep it safe.
      KPI_LOG_WARN("engine: a message of %s[%d], which is not assigned here",
                   tp.topic, tp.partition);
      AddSlots({tp}, /*stray=*/true);
      slot = partitions_.find(tp);
    }
    return slot->second;
  }

  // Ad spend for ROAS: attributed to the channel its utm parameters imply.
  void HandleAdCost(const rd_kafka_message_t& message,
                    const AdCostDecoder& decoder, absl::string_view bytes) {
    DecodeResult decoded = decoder.Decode(bytes, &ad_cost_);
    if (!decoded.ok) {
      Reject(message, decoded.reason, decoded.detail);
      return;
    }
    const absl::string_view channel =
        channels_.Classify({ad_cost_.utm_source(), ad_cost_.utm_medium(),
                            ad_cost_.utm_campaign(), "", "", ""});
    counters_.CountAdCost(ad_cost_.site_id(), channel, ad_cost_.utm_campaign(),
                          ad_cost_.currency(), ad_cost_.cost_micros());
    if (target_specs_.empty()) return;
    const google::protobuf::Timestamp& ts =
        ad_cost_.has_date_start() ? ad_cost_.date_start() : ad_cost_.time();
    const absl::Time at =
        absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
    // Spend dated beyond the allowed skew into the future would sit in
    // target state until then: counted (above), not attributed to targets.
    if (at > absl::Now() + config_.processing.max_future_skew) return;
    Slot& slot = SlotOf(
        TopicPartition{rd_kafka_topic_name(message.rkt), message.partition});
    slot.targets->OnAdCost(ad_cost_.site_id(), channel, ad_cost_.currency(),
                           ad_cost_.cost_micros(), at);
  }

  void Advance(absl::Time now) {
    const absl::Time watermark = watermark_.Current(now);
    for (auto& [tp, slot] : partitions_) slot.state->Advance(watermark);
  }

  // [first hour] An invalid record: counted, summarised in the log
  // (RejectionReporter) and dead-lettered with the decoder's detail.
  void Reject(const rd_kafka_message_t& message, absl::string_view reason,
              absl::string_view detail) {
    counters_.CountInvalid(reason);
    rejections_.Rejected(rd_kafka_topic_name(message.rkt), reason, detail);
    DeadLetter(message, reason, detail);
  }

  // [first hour] At most one line per topic per interval.
  static void LogRejections(
      const std::vector<RejectionReporter::Summary>& summaries) {
    for (const RejectionReporter::Summary& summary : summaries) {
      Log(LogLevel::kWarn, "engine", summary.Text(), summary.Fields());
    }
  }

  // `detail`: empty for bot, late and duplicate (DeadLetterHeaders explains
  // those).
  void DeadLetter(const rd_kafka_message_t& message, absl::string_view reason,
                  absl::string_view detail = {}) {
    Produce(config_.deadletter_output.topic,
            absl::string_view(static_cast<const char*>(message.key),
                              message.key_len),
            absl::string_view(static_cast<const char*>(message.payload),
                              message.len),
            DeadLetterHeaders(reason, detail, rd_kafka_topic_name(message.rkt),
                              message.partition, message.offset));
  }

  void Produce(absl::string_view topic, absl::string_view key,
               absl::string_view value,
               const std::vector<std::pair<std::string, std::string>>& headers,
               int32_t partition = -1) {
    if (!fatal_.ok()) return;
    absl::Status status = sink_->BeginTransaction();
    if (status.ok())
      status = sink_->Produce(topic, key, value, headers, partition);
    if (!status.ok()) Fail(status);
  }

  // `revoking`: the partitions are being given up. A commit the group refuses
  // then is not fatal: the new owner reads from the last committed offsets
  // (exactly once: our aborted transaction is invisible; at least once: the
  // records since our last commit are delivered twice).
  void CommitCycle(bool revoking = false) {
    if (!fatal_.ok()) return;
    const absl::Time frontier =
        watermark_.Current(absl::Now()) - config_.processing.allowed_lateness;
    for (auto& [tp, slot] : partitions_) EmitWindows(slot, frontier);
    WriteTargetChanges();
    const std::vector<std::pair<TopicPartition, int64_t>> positions =
        source_->Positions();
    absl::Status status;
    if (sink_->transactional()) {
      status = sink_->BeginTransaction();
      if (status.ok()) {
        status = sink_->CommitTransaction(source_->handle(), positions);
      }
      if (absl::IsAborted(status) && revoking) {
        KPI_LOG_WARN(
            "engine: %s; the partitions' new owner re-reads their input",
            status.message());
        // The aborted changelog records of the partitions we keep are
        // written again with the next commit.
        for (auto& [tp, slot] : partitions_) slot.targets->MarkAllChanged();
        return;
      }
    } else {
      status = sink_->Flush();
      if (status.ok()) {
        absl::Status commit = source_->CommitSync(positions);
        if (!commit.ok()) {
          // Outputs are durable; a later commit covers these offsets, or the
          // new owner of revoked partitions delivers some records twice.
          KPI_LOG_WARN("engine: %s", commit.message());
        }
      }
    }
    if (!status.ok()) Fail(status);
  }

  void Fail(const absl::Status& status) {
    if (fatal_.ok()) {
      KPI_LOG_ERROR("engine: %s", status.ToString());
      fatal_ = status;
    }
  }

  void Publish(absl::Time now) {
    counters_.SetActiveVisitors(active_.CountsAt(now));
    MetricsSnapshot snapshot = counters_.Snapshot();
    const absl::Time watermark = watermark_.Current(now);
    FamilySnapshot lag = Gauge("kpistream_watermark_lag_seconds",
                               "Processing time minus the event-time "
                               "watermark, seconds.");
    if (watermark != absl::InfinitePast()) {
      lag.samples.push_back({{}, absl::ToDoubleSeconds(now - watermark)});
    }
    FamilySnapshot sessions =
        Gauge("kpistream_state_sessions", "Open sessions held in state.");
    FamilySnapshot bytes = Gauge("kpistream_state_bytes",
                                 "Approximate bytes of aggregation state.");
    FamilySnapshot assigned = Gauge("kpistream_assigned_partitions",
                                    "Input partitions this instance owns now.");
    assigned.samples.push_back({{}, static_cast<double>(partitions_.size())});
    FamilySnapshot buffered =
        Gauge("kpistream_reorder_buffer_events",
              "Events waiting for the watermark to pass them.");
    double open = 0, state_bytes = 0, waiting = 0;
    for (const auto& [tp, slot] : partitions_) {
      open += static_cast<double>(slot.state->open_sessions());
      state_bytes += static_cast<double>(slot.state->ApproximateBytes());
      waiting += static_cast<double>(slot.state->buffered_events());
    }
    sessions.samples.push_back({{}, open});
    bytes.samples.push_back({{}, state_bytes});
    buffered.samples.push_back({{}, waiting});
    FamilySnapshot consumer_lag =
        Gauge("kpistream_consumer_lag_messages",
              "Messages between the consumer position and the end of the "
              "partition.",
              {"topic", "partition"});
    if (source_) {
      for (const auto& [tp, n] : source_->Lag()) {
        consumer_lag.samples.push_back(
            {{tp.topic, absl::StrCat(tp.partition)}, static_cast<double>(n)});
      }
    }
    for (FamilySnapshot* family :
         {&lag, &sessions, &bytes, &assigned, &buffered, &consumer_lag}) {
      snapshot.push_back(std::move(*family));
    }
    if (!target_specs_.empty()) PublishTargets(watermark, &snapshot);
    std::lock_guard<std::mutex> lock(published_mu_);
    published_ = std::move(snapshot);
  }

  // kpi_* gauges (SPEC §4, §6): every target evaluated from the sums of
  // this instance's partitions at event time (the watermark, never moving
  // back).
  void PublishTargets(absl::Time watermark, MetricsSnapshot* snapshot) {
    target_clock_ = std::max(target_clock_, watermark);
    std::vector<TargetSums> sums(target_specs_.size());
    for (auto& [tp, slot] : partitions_) {
      slot.targets->AddTo(target_clock_, &sums);
    }
    FamilySnapshot target =
        Gauge("kpi_target_value", "The target's value (config).", {"target"});
    FamilySnapshot actual =
        Gauge("kpi_actual_value",
              "The KPI's current value over the target's window or period, "
              "from this instance's exact event-time state (NaN: no data).",
              {"target"});
    FamilySnapshot attainment = Gauge(
        "kpi_attainment_ratio",
        "actual / target (target / actual for at-most KPIs); >= 1 is met.",
        {"target"});
    FamilySnapshot pace = Gauge(
        "kpi_pace_ratio",
        "Cumulative targets: actual to date / the linearly expected value to "
        "date (NaN before the period starts; no sample for rolling "
        "targets).",
        {"target"});
    FamilySnapshot projected = Gauge(
        "kpi_projected_value",
        "Cumulative targets: the actual projected linearly to the deadline.",
        {"target"});
    FamilySnapshot on_track = Gauge(
        "kpi_on_track",
        "1 when the KPI (a period's projection) is within tolerance of the "
        "target, or the window has fewer than min_sessions sessions; else 0.",
        {"target"});
    FamilySnapshot no_data = Gauge(
        "kpi_target_no_data",
        "1 when nothing matched the target's filter over its whole window "
        "(a period: since its start) on this instance; kpi_on_track is then "
        "1 for want of data, not because the target is met.",
        {"target"});
    for (size_t i = 0; i < target_specs_.size(); ++i) {
      const TargetSpec& spec = target_specs_[i];
      const TargetStatus s = EvaluateTarget(spec, sums[i], target_clock_);
      target.samples.push_back({{spec.name}, s.target});
      actual.samples.push_back({{spec.name}, s.actual});
      attainment.samples.push_back({{spec.name}, s.attainment});
      // Pace and projection are a period's, and need this instance's
      // clock: an instance without a watermark yet (no partitions, or none
      // with events) exports none, so that sums over instances are not NaN.
      if (!spec.rolling() && target_clock_ != absl::InfinitePast()) {
        pace.samples.push_back({{spec.name}, s.pace});
        projected.samples.push_back({{spec.name}, s.projected});
      }
      on_track.samples.push_back({{spec.name}, s.on_track ? 1.0 : 0.0});
      no_data.samples.push_back({{spec.name}, s.no_data ? 1.0 : 0.0});
    }
    for (FamilySnapshot* family : {&target, &actual, &attainment, &pace,
                                   &projected, &on_track, &no_data}) {
      snapshot->push_back(std::move(*family));
    }
  }

  const Config config_;
  const SessionRules rules_;
  const std::vector<TargetSpec> target_specs_;
  std::vector<std::string> target_fingerprints_ = [this] {
    std::vector<std::string> out;
    for (const TargetSpec& t : target_specs_)
      out.push_back(TargetFingerprint(t));
    return out;
  }();
  int32_t changelog_partitions_ = 0;
  absl::Time last_full_changelog_ = absl::Now();
  absl::Time target_clock_ = absl::InfinitePast();
  KpiCounters counters_;
  BotFilter bots_;      // WebEvent inputs
  BotFilter log_bots_;  // access-log inputs
  ChannelClassifier channels_;
  WatermarkTracker watermark_;
  RejectionReporter rejections_;  // [first hour]
  std::vector<std::string> topics_;
  absl::flat_hash_map<std::string, int32_t> topic_index_;
  struct EventInput {
    std::unique_ptr<EventDecoder> decoder;
    const BotFilter* bots;
  };
  absl::flat_hash_map<std::string, EventInput> inputs_;
  absl::flat_hash_map<std::string, std::unique_ptr<AdCostDecoder>>
      ad_cost_inputs_;
  v1::AdCost ad_cost_;  // decode target, reused
  std::map<TopicPartition, Slot> partitions_;
  std::unique_ptr<KafkaSink> sink_;
  std::unique_ptr<KafkaSource> source_;
  Event event_;          // decode target, reused
  std::string site_;     // scratch, reused
  std::string visitor_;  // scratch, reused
  ActiveVisitors active_;
  absl::Status fatal_;
  mutable std::mutex published_mu_;
  MetricsSnapshot published_;
  // Last: destroyed first, so no scrape runs while the rest is torn down.
  std::unique_ptr<MetricsEndpoint> endpoint_;
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const Config& config) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->impl_ = std::make_unique<Impl>(config);
  absl::Status status = engine->impl_->Init();
  if (!status.ok()) return status;
  return engine;
}

Engine::~Engine() = default;
absl::Status Engine::Run() { return impl_->Run(); }
int Engine::metrics_port() const { return impl_->metrics_port(); }
MetricsSnapshot Engine::Snapshot() const { return impl_->Snapshot(); }

}  // namespace kpistream
