#include "engine/engine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "aggregate/metric_families.h"
#include "cmd/log.h"
#include "engine/group_watch.h"
#include "engine/kafka_io.h"
#include "engine/local_store.h"
#include "engine/state_options.h"
#include "engine/stream_thread.h"
#include "export/metrics_endpoint.h"
#include "export/process_metrics.h"
#include "kafka/log.h"
#include "kafka/producer.h"

namespace kpistream {
namespace {

// How often the threads' snapshots are merged for /metrics: a quarter of
// the commit interval (a commit's counts wait for the next merge), between
// these bounds.
constexpr absl::Duration kMaxPublishInterval = absl::Milliseconds(200);
constexpr absl::Duration kMinPublishInterval = absl::Milliseconds(10);

// A config without a key: any input, for a group whose repartition topic
// holds records: the group re-keyed an input before, and the open sessions
// and buffered events of what it re-keyed live in the state of that topic's
// partitions, which such an engine never reads (nor the records forwarded
// but not processed yet). Following the engine's own hint ("key:
// visitor_id would save the hop") dropped them without a word (review).
// InvalidArgumentError (exit 2) naming the way out; OK when the topic is
// missing or empty, or when the brokers cannot say (a warning).
absl::Status CheckNoReKeyedState(const Config& config,
                                 kafka::TopicReadOptions options) {
  options.topic = RepartitionTopic(config);
  options.timeout = absl::Seconds(10);
  // Listed first: asked for by name, the embedded broker creates it.
  auto listed = kafka::TopicListed(options);
  if (listed.ok() && !*listed) return absl::OkStatus();
  auto count = listed.ok() ? kafka::PartitionCount(options)
                           : absl::StatusOr<int>(listed.status());
  if (absl::IsNotFound(count.status())) return absl::OkStatus();
  if (absl::IsCancelled(count.status())) return count.status();
  absl::StatusOr<kafka::TopicEnds> described =
      absl::UnknownError("no partition count");
  if (count.ok()) {
    for (int32_t p = 0; p < *count; ++p) options.partitions.push_back(p);
    described = kafka::DescribeTopic(options);
  } else {
    described = count.status();
  }
  if (!described.ok()) {
    KPI_LOG_WARN(
        "engine: cannot tell whether \"%s\" holds records of an earlier "
        "key: any input (%s); if this group re-keyed an input before, the "
        "open sessions of those records are not read with this config",
        options.topic, described.status().message());
    return absl::OkStatus();
  }
  int64_t records = 0;
  for (const auto& [partition, end] : described->ends) {
    records += std::max<int64_t>(end, 0);
  }
  if (records == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "inputs: no input has key: any, but this group's repartition topic \"",
      options.topic, "\" holds ", records, " record(s): kafka.group_id \"",
      config.kafka.group_id,
      "\" re-keyed an input before, and the open sessions and buffered events "
      "of those records live in the state of that topic's partitions, which "
      "an engine without a key: any input never reads: they would be lost. "
      "Keep inputs[].key: any for this group; or start under a new "
      "kafka.group_id (its KPIs, visitors and targets start from nothing); "
      "or delete the topic \"",
      options.topic,
      "\" to drop that state knowingly (the sessions open in it are never "
      "written)"));
}

// metrics.listen as served: a port of 0 (any free one) replaced by the one
// taken ("127.0.0.1:0" -> "127.0.0.1:43127").
std::string ListenedOn(const std::string& listen, int port) {
  if (!absl::EndsWith(listen, ":0")) return listen;
  return absl::StrCat(listen.substr(0, listen.size() - 1), port);
}

}  // namespace

std::string InstanceId(const std::string& configured) {
  if (!configured.empty()) return configured;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "kpistream";
  }
  std::string id(name);
  for (char& c : id) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' &&
        c != '-') {
      c = '-';
    }
  }
  return id;
}

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

std::string LocalStateDir(const Config& config,
                          const std::string& instance_id) {
  std::string base = config.processing.state_dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = absl::StrCat(tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp",
                        "/kpistream");
  }
  // A group id may hold any character: not '/' in one path element.
  std::string group = config.kafka.group_id;
  for (char& c : group) {
    if (c == '/' || c == '\0') c = '_';
  }
  if (group.empty() || group == "." || group == "..") group = "_" + group;
  return absl::StrCat(base, "/", group, "/", instance_id);
}

class Engine::Impl {
 public:
  Impl(const Config& config, std::function<bool()> stop_requested)
      : stop_requested_(std::move(stop_requested)),
        config_(config),
        targets_(TargetSpecsFrom(config_)),
        instance_id_(InstanceId(config_.processing.instance_id)) {}

  absl::Status Init() {
    if (config_.inputs.empty()) {
      return absl::InvalidArgumentError("no input topic is configured");
    }
    // /healthz and /readyz from the start (SPEC §7: 200 while the process
    // works; 503 with the reason until it is ready): a start waits up to
    // 30 s per input for its brokers, and probes that found no server then
    // saw no reason (review). /metrics answers 503 until the first
    // snapshot.
    auto endpoint = MetricsEndpoint::Start(config_.metrics.listen);
    if (!endpoint.ok()) return endpoint.status();
    endpoint_ = std::move(*endpoint);
    endpoint_->HoldMetrics(true);
    endpoint_->AddHandler("/healthz", [this] { return Healthz(); });
    endpoint_->AddHandler("/readyz", [this] { return Readyz(); });

    // The state changelog: as many partitions as the largest input.
    kafka::TopicReadOptions changelog;
    changelog.brokers = config_.kafka.brokers;
    changelog.properties = config_.kafka.properties;
    changelog.topic = config_.changelog_output.topic;
    changelog.timeout = absl::Seconds(30);
    // A thread's failure stops the others' restores too (stop_).
    changelog.stop_requested = [this] { return stop_requested_() || stop_; };
    int input_partitions = 1;
    std::map<std::string, int32_t> partitions_by_topic;
    for (const InputConfig& input : config_.inputs) {
      kafka::TopicReadOptions in = changelog;
      in.topic = input.topic;
      SetStep(absl::StrCat("reading the metadata of input topic \"",
                           input.topic, "\" from ", config_.kafka.brokers));
      auto count = kafka::PartitionCount(in);
      if (absl::IsCancelled(count.status())) return count.status();
      // A client that cannot be made from kafka.properties (a CA file that
      // is not there, say) is no broker's doing, nor mended by a restart
      // (an audit: it was said to be).
      if (absl::IsInvalidArgument(count.status()) &&
          absl::StartsWith(count.status().message(),
                           "cannot create the Kafka")) {
        return absl::InvalidArgumentError(absl::StrCat(
            "kafka.properties: ", count.status().message(),
            " (fix the property it names: check-config cannot see files, "
            "certificates or what the Kafka client was built with)"));
      }
      if (!count.ok()) {
        // Every input, as a re-keyed one must (its partitions are the
        // sources its repartition partitions wait for): a keyed or ad-cost
        // input that is missing or not readable (an ACL) was subscribed to
        // all the same, said once by librdkafka, and never read, while the
        // engine reported ready (review).
        return absl::Status(
            count.status().code(),
            absl::StrCat(
                "inputs: topic \"", input.topic,
                "\": ", count.status().message(),
                absl::IsNotFound(count.status())
                    ? " (create it, or fix inputs[].topic"
                    : " (check kafka.brokers and that the brokers are up",
                "; it exits now: restarted, it starts once every input can be "
                "read)"));
      }
      input_partitions = std::max(input_partitions, *count);
      partitions_by_topic[input.topic] = *count;
    }
    // Re-keying (SPEC §2): the internal topic, as many partitions as the
    // largest re-keyed input; records older than a week are deleted (they
    // are processed within seconds; the week is for inspection and for an
    // engine stopped over a weekend).
    int32_t repartition_partitions = 0;
    if (!NeedsRepartition(config_)) {
      SetStep(
          absl::StrCat("looking for state of an earlier key: any input in \"",
                       RepartitionTopic(config_), "\""));
      if (absl::Status s = CheckNoReKeyedState(config_, changelog); !s.ok()) {
        return s;
      }
    }
    if (NeedsRepartition(config_)) {
      int32_t wanted = 1;
      for (const InputConfig& input : config_.inputs) {
        if (input.kind == InputKind::kEvents && input.key == InputKey::kAny) {
          wanted = std::max(wanted, partitions_by_topic[input.topic]);
        }
      }
      kafka::TopicReadOptions internal = changelog;
      internal.topic = RepartitionTopic(config_);
      auto count = kafka::EnsureTopic(
          internal, wanted,
          {{"cleanup.policy", "delete"}, {"retention.ms", "604800000"}});
      if (!count.ok()) {
        return absl::Status(
            count.status().code(),
            absl::StrCat("the repartition topic \"", internal.topic,
                         "\" (inputs with key: any are re-keyed through it): ",
                         count.status().message()));
      }
      repartition_partitions = *count;
      input_partitions = std::max(input_partitions, *count);
    }
    SetStep(
        absl::StrCat("opening the state changelog \"", changelog.topic, "\""));
    auto opened = KafkaChangelog::Open(changelog, input_partitions);
    if (!opened.ok()) return opened.status();
    // The embedded broker (librdkafka's mock cluster, `kpistream broker`)
    // ignores group.instance.id and ends a rebalance only at a member's
    // session timeout: a restart waited 44 s (the 45 s default) for its
    // partitions. There the session is 6 s unless kafka.properties says.
    kafka::Properties consumer_properties = config_.kafka.properties;
    if (!consumer_properties.count("session.timeout.ms")) {
      // The cluster id only: no partition's end asked for. Asking for
      // partition 0's sent a request to its leader; one that had just died
      // (not yet fenced by the controller) held the start until the 30 s
      // timeout (an audit's crash run, 3 starts of 3 by hand; without the
      // request 0.5-2.5 s; BrokerOutageTest.AStartIsNotHeldBy...).
      auto ends = (*opened)->Ends({});
      if (ends.ok() && absl::StartsWith(ends->cluster_id, "mockCluster")) {
        consumer_properties["session.timeout.ms"] = "6000";
        if (!consumer_properties.count("heartbeat.interval.ms")) {
          consumer_properties["heartbeat.interval.ms"] = "1000";
        }
        KPI_LOG_INFO(
            "engine: the brokers are the embedded broker (cluster id %s), "
            "which ignores group.instance.id and moves partitions only when "
            "a member's session times out: session.timeout.ms is 6000 here, "
            "so that a restart gets its partitions back within seconds "
            "(kafka.properties can set it)",
            ends->cluster_id);
      }
    }
    kafka::TopicReadOptions quick = changelog;
    quick.timeout = absl::Seconds(3);  // the embedded broker cannot answer
    // Only a warning, and asked on the side: the embedded broker never
    // answers, and every start waited out the 3 s before reading anything.
    // The output topics' record limit: a record over it that the producer
    // takes (message.max.bytes) the brokers refuse, and the work is redone,
    // refused again, each time (an audit: a dead letter cut to the
    // producer's 1 MB for a topic of 100 kB stalled its thread for good).
    // The dead-letter topic first: its limit is put to use (below).
    std::vector<std::string> outputs = {config_.deadletter_output.topic};
    for (const OutputConfig* o :
         {&config_.sessions_output, &config_.kpi_output}) {
      if (o->enabled) outputs.push_back(o->topic);
    }
    if (NeedsRepartition(config_)) outputs.push_back(RepartitionTopic(config_));
    outputs.push_back(config_.changelog_output.topic);
    int64_t producer_limit = kafka::kDefaultMessageMaxBytes;
    if (auto it = config_.kafka.properties.find("message.max.bytes");
        it != config_.kafka.properties.end()) {
      (void)absl::SimpleAtoi(it->second, &producer_limit);
    }
    // Each question waits up to 3 s, and is joined at the stop: none is
    // asked once the engine stops, nor after one went unanswered (the
    // embedded broker never answers: a stop in the first seconds waited
    // 13 s for the questions after it, a walk-through found), so that a
    // stop waits for one at most.
    policy_check_.thread = std::thread([this, quick, outputs, producer_limit] {
      for (const std::string& topic : outputs) {
        if (stop_requested_() || stop_) return;
        kafka::TopicReadOptions asked = quick;
        asked.topic = topic;
        const absl::StatusOr<std::string> value =
            kafka::TopicConfig(asked, "max.message.bytes");
        // Not answered (a timeout: the embedded broker never answers; or
        // a broker too old to say): no more asked. Another error (a topic
        // not created yet) is that topic's alone.
        if (!value.ok() &&
            (absl::IsDeadlineExceeded(value.status()) ||
             absl::IsUnimplemented(value.status()) ||
             absl::StrContains(value.status().message(), "Timed out"))) {
          return;
        }
        int64_t limit = 0;
        if (value.ok() && absl::SimpleAtoi(*value, &limit) && limit > 0 &&
            limit < producer_limit) {
          // Dead letters carry their input (any size): cut to it from now
          // on. The other outputs' records are the engine's own, far
          // smaller.
          if (topic == config_.deadletter_output.topic) {
            deadletter_topic_max_bytes_.store(static_cast<size_t>(limit));
          }
          KPI_LOG_WARN(
              "engine: the output topic \"%s\" takes records of at most %d "
              "bytes (its max.message.bytes), fewer than the producer's %d "
              "(kafka.properties message.max.bytes): a record between the "
              "two is refused by the brokers, and the work that made it is "
              "redone and refused again each time (a checkpoint chunk; dead "
              "letters are cut to the topic's limit); set kafka.properties "
              "message.max.bytes to at most %d, or raise the topic's "
              "max.message.bytes",
              topic, limit, producer_limit, limit);
        }
      }
      if (stop_requested_() || stop_) return;
      const absl::StatusOr<std::string> policy =
          kafka::TopicConfig(quick, "cleanup.policy");
      if (policy.ok() && policy->find("compact") == std::string::npos) {
        KPI_LOG_WARN(
            "engine: the state changelog \"%s\" has cleanup.policy=%s, not "
            "compact: it grows with every checkpoint until retention deletes "
            "old ones (the engine writes a full snapshot every hour so that a "
            "restore still finds one); set cleanup.policy=compact",
            quick.topic, *policy);
      }
    });

    const std::string state_dir = LocalStateDir(config_, instance_id_);
    SetStep(absl::StrCat("opening the local state in \"", state_dir, "\""));
    auto store = LocalStore::Open({state_dir});
    if (!store.ok()) return store.status();
    local_store_ = *std::move(store);
    KPI_LOG_INFO("engine: local state in \"%s\"", state_dir);

    const int threads = std::max(1, config_.processing.threads);
    const int64_t fetch_buffer = config_.processing.input_buffer / threads;
    LogFetchBuffer(fetch_buffer, threads);
    KPI_LOG_INFO(
        "engine: each thread commits every %s under a backlog (twice as long "
        "after each commit while the backlog outlasts an interval's work, up "
        "to %s), and from %s after its last commit once it has caught up with "
        "its input (processing.commit_interval, max_commit_interval, "
        "min_commit_interval)",
        absl::FormatDuration(config_.processing.commit_interval),
        absl::FormatDuration(config_.processing.max_commit_interval),
        absl::FormatDuration(config_.processing.min_commit_interval));
    std::vector<KafkaStreamInput*> joining;  // subscribed below, together
    SetStep(absl::StrCat("starting ", threads, " stream thread(s)"));
    for (int i = 0; i < threads; ++i) {
      StreamThread::Options options;
      options.config = &config_;
      options.targets = &targets_;
      options.stop_requested = [this] { return stop_requested_() || stop_; };
      options.name = threads == 1 ? "engine" : absl::StrCat("engine-", i);
      options.commit_interval = config_.processing.commit_interval;
      options.min_commit_interval = config_.processing.min_commit_interval;
      options.max_commit_interval = config_.processing.max_commit_interval;
      // A commit's counts reach /metrics at once, not at the next tick.
      options.deadletter_topic_max_bytes = &deadletter_topic_max_bytes_;
      options.committed = [this] {
        {
          std::lock_guard<std::mutex> lock(wake_mu_);
          publish_due_ = true;
        }
        wake_.notify_one();
      };
      options.input_partitions = partitions_by_topic;
      options.repartition_partitions = repartition_partitions;
      options.local_store = local_store_.get();
      options.label_admissions = &label_admissions_;
      auto thread = std::make_unique<StreamThread>(options);
      kafka::Consumer::Options in;
      in.brokers = config_.kafka.brokers;
      in.group_id = config_.kafka.group_id;
      in.instance_id = absl::StrCat(instance_id_, "-", i);
      in.client_id = absl::StrCat("kpistream-", instance_id_, "-", i);
      for (const InputConfig& input : config_.inputs) {
        in.topics.push_back(input.topic);
      }
      if (repartition_partitions > 0) {
        in.topics.push_back(RepartitionTopic(config_));
      }
      in.properties = consumer_properties;
      in.fetch_buffer = fetch_buffer;
      in.max_fetch_wait = FetchWait();
      in.subscribe = false;  // below, once every thread's clients are made
      auto input = KafkaStreamInput::Create(in, thread->listener());
      if (!input.ok()) return input.status();
      joining.push_back(input->get());
      kafka::Producer::Options out;
      out.brokers = config_.kafka.brokers;
      out.client_id = in.client_id;
      out.properties = config_.kafka.properties;
      out.transaction_timeout = config_.processing.transaction_timeout;
      out.give_up = changelog.stop_requested;
      out.tracked_topic = changelog.topic;
      // The internal topics uncompressed (config.h says which and when):
      // compressing the re-keying hop with LZ4 was ~9 % of the samples of
      // re-keyed input (BENCHMARKS.md, run CR).
      out.topic_properties = ProducerTopicProperties(config_);
      if (config_.processing.guarantee == Guarantee::kExactlyOnce) {
        out.transactional_id =
            absl::StrCat(config_.kafka.group_id, "-", instance_id_, "-", i);
      }
      auto output = KafkaStreamOutput::Create(out, input->get(),
                                              OutputTopics(changelog.topic));
      if (!output.ok()) return output.status();
      auto log = KafkaChangelog::Open(changelog, input_partitions);
      if (!log.ok()) return log.status();
      thread->Attach(*std::move(input), *std::move(output), *std::move(log));
      threads_.push_back(std::move(thread));
      watch_.topics = in.topics;
      watch_.own_client_ids.insert(in.client_id);
    }
    // Every thread's consumer joins the group at once: one made after
    // another's producer and changelog (a transactional producer's start
    // waits for its coordinator) could join after the group's first
    // rebalance, and wait for another. (The 5-10 s a thread sometimes
    // starts late on the embedded broker has another cause: its group
    // coordinator can refuse a follower's SyncGroup, BENCHMARKS.md run BK.)
    SetStep(absl::StrCat("joining group \"", config_.kafka.group_id, "\""));
    for (KafkaStreamInput* input : joining) {
      if (absl::Status s = input->Subscribe(); !s.ok()) return s;
    }
    watch_.brokers = config_.kafka.brokers;
    watch_.properties = config_.kafka.properties;
    watch_.group_id = config_.kafka.group_id;
    watch_.partitions = partitions_by_topic;
    if (repartition_partitions > 0) {
      watch_.partitions[RepartitionTopic(config_)] = repartition_partitions;
    }
    watch_.client_id = absl::StrCat("kpistream-", instance_id_, "-watch");
    Publish();
    // /metrics has something true to say from the first snapshot on; the
    // threads answer /healthz and /readyz from now on.
    endpoint_->AddSource([this] { return Served(); });
    endpoint_->AddSource(&CollectProcessMetrics);
    started_ = true;
    endpoint_->HoldMetrics(false);
    if (!targets_.empty()) {
      std::vector<std::string> names;
      for (const TargetSpec& t : targets_) names.push_back(t.name);
      KPI_LOG_INFO("engine: evaluating %d target(s): %s",
                   static_cast<int>(names.size()), absl::StrJoin(names, ", "));
    }
    if (const std::string w = SeparatelySessionizedInputs(config_);
        !w.empty()) {
      KPI_LOG_WARN("engine: %s", w);
    }
    return absl::OkStatus();
  }

  absl::Status Run() {
    KPI_LOG_INFO(
        "engine: instance \"%s\" consuming %s as group \"%s\" from %s (%s, "
        "%d thread(s)); state changelog \"%s\"%s; /metrics, /healthz, "
        "/readyz on %s",
        instance_id_,
        absl::StrJoin(config_.inputs, ",",
                      [](std::string* out, const InputConfig& in) {
                        out->append(in.topic);
                        if (in.kind == InputKind::kEvents &&
                            in.key == InputKey::kAny) {
                          out->append(" (re-keyed)");
                        }
                      }),
        config_.kafka.group_id, config_.kafka.brokers,
        config_.processing.guarantee == Guarantee::kExactlyOnce
            ? "exactly_once"
            : "at_least_once",
        static_cast<int>(threads_.size()), config_.changelog_output.topic,
        NeedsRepartition(config_)
            ? absl::StrCat("; re-keyed by visitor_id through \"",
                           RepartitionTopic(config_), "\"")
            : std::string(),
        ListenedOn(config_.metrics.listen, endpoint_->port()));
    std::vector<absl::Status> results(threads_.size());
    std::vector<std::thread> running;
    std::atomic<int> finished{0};
    for (size_t i = 0; i < threads_.size(); ++i) {
      running.emplace_back([this, i, &results, &finished] {
        results[i] = threads_[i]->Run();
        if (!results[i].ok()) stop_ = true;  // one fails: all stop
        ++finished;
      });
    }
    // Partitions a crash mid-rebalance left to no member (group_watch.h).
    auto watch = std::make_unique<GroupWatch>(watch_);
    const absl::Duration publish_interval =
        std::clamp(config_.processing.commit_interval / 4, kMinPublishInterval,
                   kMaxPublishInterval);
    while (finished < static_cast<int>(threads_.size())) {
      {
        std::unique_lock<std::mutex> lock(wake_mu_);
        wake_.wait_for(lock, absl::ToChronoMilliseconds(publish_interval),
                       [this] { return publish_due_; });
        publish_due_ = false;
      }
      Publish();
      // Stopping: no rejoin starts any more (the stop's time is the
      // threads' final commits).
      if (stop_requested_() || stop_) watch->Stop();
    }
    for (std::thread& t : running) t.join();
    watch.reset();
    Publish();
    // The last commit's counts reach Prometheus only if it scrapes again:
    // wait (a while) for a scrape that renders the final snapshot: a
    // scraper's once one has scraped this process, else any request's. A
    // series the final commit made is served to a scraper at 0 the first
    // time (MetricsEndpoint): then wait for one more, 1 s longer (the next
    // scrape is due a scrape interval after the last one).
    if (config_.metrics.final_scrape_wait > absl::ZeroDuration()) {
      const bool by_scraper = endpoint_->scraper_scrapes() > 0;
      auto scrapes = [&] {
        return by_scraper ? endpoint_->scraper_scrapes() : endpoint_->scrapes();
      };
      uint64_t zeroed = endpoint_->new_series_scraped();
      final_published_ = true;
      for (int round = 0; round < 2; ++round) {
        const uint64_t scraped = scrapes();
        final_served_ = false;
        const absl::Time until = absl::Now() +
                                 config_.metrics.final_scrape_wait +
                                 absl::Seconds(round);
        // A render since (final_served_), then a scrape counted as ended
        // (after its zeros are).
        while (!(final_served_ && scrapes() > scraped) && absl::Now() < until) {
          absl::SleepFor(absl::Milliseconds(5));
        }
        if (scrapes() == scraped) break;
        const uint64_t now_zeroed = endpoint_->new_series_scraped();
        if (now_zeroed == zeroed) break;  // every value was served
        zeroed = now_zeroed;
      }
    }
    // The failure that stopped the others, not another thread's stop it
    // caused (a wait given up, "stopped while ...": the cause was said
    // only in an earlier line, an audit).
    for (const absl::Status& s : results) {
      if (!s.ok() && !absl::IsCancelled(s)) return s;
    }
    for (const absl::Status& s : results) {
      if (!s.ok()) return s;
    }
    int failed = 0;
    for (const auto& thread : threads_) {
      failed += thread->work_left_uncommitted();
    }
    if (failed > 0) {
      KPI_LOG_WARN(
          "engine: stopped; %d stream thread(s) could not commit "
          "their last work (above): it is redone from the last "
          "committed state at the next start (nothing is lost)",
          failed);
    } else {
      KPI_LOG_INFO("engine: stopped cleanly; the state is committed");
    }
    return absl::OkStatus();
  }

  MetricsSnapshot Snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return published_;
  }

  // What /metrics renders (Snapshot() is for other readers too).
  MetricsSnapshot Served() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (final_published_) final_served_ = true;
    return published_;
  }

  int metrics_port() const { return endpoint_->port(); }

 private:
  // The topics the stream threads' producers write to (enabled outputs).
  std::vector<KafkaStreamOutput::Topic> OutputTopics(
      const std::string& changelog) const {
    std::vector<KafkaStreamOutput::Topic> topics;
    const std::pair<const char*, const OutputConfig*> outputs[] = {
        {"outputs.sessions.topic", &config_.sessions_output},
        {"outputs.kpi.topic", &config_.kpi_output},
        {"outputs.deadletter.topic", &config_.deadletter_output}};
    for (const auto& [key, output] : outputs) {
      if (output->enabled) topics.push_back({key, output->topic});
    }
    topics.push_back({"outputs.changelog.topic", changelog});
    if (NeedsRepartition(config_)) {
      topics.push_back({"the repartition topic (inputs with key: any)",
                        RepartitionTopic(config_)});
    }
    return topics;
  }

  // Once per start: what processing.input_buffer and commit_interval became
  // in each consumer's librdkafka settings, and which of them
  // kafka.properties overrides.
  void LogFetchBuffer(int64_t per_consumer, int consumers) const {
    const kafka::Properties& user = config_.kafka.properties;
    const kafka::Properties derived =
        kafka::FetchBufferProperties(per_consumer, user);
    std::vector<std::string> overridden;
    for (const auto& [key, value] :
         kafka::FetchBufferProperties(per_consumer, {})) {
      if (derived.count(key) == 0) overridden.push_back(key);
    }
    KPI_LOG_INFO(
        "engine: processing.input_buffer %s: %s for each of %d consumer(s): "
        "%s%s",
        FormatByteSize(config_.processing.input_buffer),
        FormatByteSize(per_consumer), consumers,
        derived.empty()
            ? "nothing derived"
            : absl::StrJoin(derived, ", ", absl::PairFormatter("=")),
        overridden.empty() ? ""
                           : absl::StrCat("; kafka.properties sets ",
                                          absl::StrJoin(overridden, ", ")));
    if (user.count("fetch.wait.max.ms") == 0) {
      KPI_LOG_INFO(
          "engine: fetch.wait.max.ms=%d (a fifth of "
          "processing.min_commit_interval %s)",
          static_cast<int>(absl::ToInt64Milliseconds(FetchWait())),
          absl::FormatDuration(config_.processing.min_commit_interval));
    }
  }

  // How long a consumer's fetch may wait at the broker for new records.
  absl::Duration FetchWait() const {
    return kafka::MaxFetchWaitFor(config_.processing.min_commit_interval);
  }

  // Merges the threads' metrics and evaluates the targets.
  void Publish() {
    MetricsSnapshot merged;
    std::vector<TargetSums> sums(targets_.size());
    std::vector<StreamThread::TargetShare> shares;
    bool ready = !threads_.empty();
    for (const auto& thread : threads_) {
      MetricsSnapshot published;
      StreamThread::TargetShare share;
      thread->Published(&published, &share);
      MergeSnapshot(std::move(published), &merged);
      for (size_t i = 0; i < share.sums.size() && i < sums.size(); ++i) {
        sums[i] += share.sums[i];
      }
      share.sums.clear();
      shares.push_back(std::move(share));
      ready = ready && thread->Health().ready;
    }
    // A thread whose partitions are all idle holds the others back no more
    // than an idle partition holds back its thread's, and adopts theirs.
    absl::Time watermark = InstanceWatermark(shares);
    for (const auto& thread : threads_) thread->SetInstanceWatermark(watermark);
    if (threads_.empty()) watermark = absl::InfinitePast();
    const absl::Time now = absl::Now();
    // A thread that stopped running (hung in a call) reports nothing, and
    // its last report said ready: without this every engine alert stayed
    // quiet over a frozen instance (counters flat, lag gauge frozen).
    if (!Stalled(now, ThreadHealth::kReadyHeartbeatTimeout).empty()) {
      ready = false;
    }
    FamilySnapshot lag = NewFamily(families::kWatermarkLag);
    if (watermark != absl::InfinitePast() &&
        watermark != absl::InfiniteFuture()) {
      lag.samples.push_back({{}, absl::ToDoubleSeconds(now - watermark)});
    }
    merged.push_back(std::move(lag));
    merged.push_back(SingleSample(families::kReady, ready ? 1.0 : 0.0));
    if (!targets_.empty()) {
      PublishTargets(watermark, sums, &merged);
      for (const auto& thread : threads_) thread->SetTargetClock(target_clock_);
    }
    std::lock_guard<std::mutex> lock(mu_);
    published_ = std::move(merged);
  }

  // kpi_* gauges (SPEC §4, §6): every target evaluated from the sums of
  // this instance's partitions at event time (the watermark, never moving
  // back).
  void PublishTargets(absl::Time watermark, const std::vector<TargetSums>& sums,
                      MetricsSnapshot* snapshot) {
    if (watermark != absl::InfiniteFuture()) {
      target_clock_ = std::max(target_clock_, watermark);
    }
    FamilySnapshot target = NewFamily(families::kTargetValue);
    FamilySnapshot actual = NewFamily(families::kActualValue);
    FamilySnapshot attainment = NewFamily(families::kAttainmentRatio);
    FamilySnapshot pace = NewFamily(families::kPaceRatio);
    FamilySnapshot projected = NewFamily(families::kProjectedValue);
    FamilySnapshot on_track = NewFamily(families::kOnTrack);
    FamilySnapshot no_data = NewFamily(families::kTargetNoData);
    // A period counts a session when it closes (TargetTracker), once the
    // watermark less the allowed lateness has passed its last event plus the
    // inactivity timeout: paced and projected at the watermark itself, with
    // the defaults a period on pace read 0 for its first 35 minutes
    // (KpiBehindPace fired) and a day's ran 35 min of 1,440 behind. So
    // periods go by where sessions started then are closed (those of no
    // duration), less their sessions' mean duration (EvaluateTarget: a
    // period on pace read behind by it until late in the period).
    const absl::Time closed_up_to =
        target_clock_ == absl::InfinitePast()
            ? target_clock_
            : target_clock_ - config_.processing.allowed_lateness -
                  config_.sessions.inactivity_timeout;
    for (size_t i = 0; i < targets_.size(); ++i) {
      const TargetSpec& spec = targets_[i];
      const TargetStatus s = EvaluateTarget(
          spec, sums[i], spec.rolling() ? target_clock_ : closed_up_to);
      target.samples.push_back({{spec.name}, s.target});
      actual.samples.push_back({{spec.name}, s.actual});
      attainment.samples.push_back({{spec.name}, s.attainment});
      // Pace and projection are a period's, and need this instance's clock:
      // an instance without a watermark yet exports none, so that sums over
      // instances are not NaN.
      if (!spec.rolling() && target_clock_ != absl::InfinitePast()) {
        pace.samples.push_back({{spec.name}, s.pace});
        projected.samples.push_back({{spec.name}, s.projected});
      }
      on_track.samples.push_back({{spec.name}, s.on_track ? 1.0 : 0.0});
      no_data.samples.push_back({{spec.name}, s.no_data ? 1.0 : 0.0});
      LogMixedCurrencies(i, s.mixed_currencies);
    }
    for (FamilySnapshot* family : {&target, &actual, &attainment, &pace,
                                   &projected, &on_track, &no_data}) {
      snapshot->push_back(std::move(*family));
    }
  }

  // Once each time target `i`'s money turns out to be of several currencies
  // (its gauges read NaN then), so that the NaN has a reason in the log.
  void LogMixedCurrencies(size_t i, bool mixed) {
    if (mixed_logged_.size() != targets_.size()) {
      mixed_logged_.assign(targets_.size(), false);
    }
    if (mixed && !mixed_logged_[i]) {
      KPI_LOG_WARN(
          "target \"%s\": kpi %s without filter.currency counted money of "
          "more than one currency, which add up to no amount; its kpi_* "
          "gauges read NaN while such money is in its %s; give the target "
          "filter.currency (e.g. EUR)",
          targets_[i].name, targets_[i].kpi,
          targets_[i].rolling() ? "window" : "period");
    }
    mixed_logged_[i] = mixed;
  }

  // What the start is doing, for /readyz until the threads run.
  void SetStep(std::string step) {
    std::lock_guard<std::mutex> lock(step_mu_);
    step_ = std::move(step);
  }
  std::string Step() const {
    std::lock_guard<std::mutex> lock(step_mu_);
    return step_;
  }

  // Why a stream thread counts as hung (ThreadHealth::Stalled) after
  // `timeout` of silence, or "".
  std::string Stalled(
      absl::Time now,
      absl::Duration timeout = ThreadHealth::kHeartbeatTimeout) const {
    if (!started_) return "";
    for (const auto& thread : threads_) {
      const ThreadHealth h = thread->Health();
      if (h.Stalled(now, timeout)) {
        return absl::StrCat("a stream thread has not reported for ",
                            absl::FormatDuration(now - h.heartbeat), "\n");
      }
    }
    return "";
  }

  MetricsEndpoint::Response Healthz() const {
    if (!started_) return {200, absl::StrCat("starting: ", Step(), "\n")};
    std::string stalled = Stalled(absl::Now());
    if (!stalled.empty()) return {503, std::move(stalled)};
    return {200, "ok\n"};
  }

  MetricsEndpoint::Response Readyz() const {
    if (!started_) {
      // The step names what the start waits for; the cause is what Kafka
      // last complained of (connection refused, a coordinator that does
      // not answer), in the log too.
      const std::string trouble = LastKafkaTrouble(absl::Seconds(30));
      return {503,
              absl::StrCat("starting: ", Step(),
                           trouble.empty() ? "" : "; Kafka: ", trouble, "\n")};
    }
    std::string reasons =
        Stalled(absl::Now(), ThreadHealth::kReadyHeartbeatTimeout);
    for (const auto& thread : threads_) {
      const ThreadHealth h = thread->Health();
      if (!h.ready) absl::StrAppend(&reasons, h.reason, "\n");
    }
    if (reasons.empty()) return {200, "ready\n"};
    return {503, reasons};
  }

  std::function<bool()> stop_requested_;
  const Config config_;
  const std::vector<TargetSpec> targets_;
  const std::string instance_id_;
  // The dead-letter topic's max.message.bytes where it is below the
  // producer's (the side check below stores it; 0: not known).
  std::atomic<size_t> deadletter_topic_max_bytes_{0};
  // The changelog's cleanup.policy and the outputs' max.message.bytes,
  // asked once; joined after the stream
  // threads are gone: a failed start tears its consumers down at once,
  // mostly before their group gives them an assignment (a close that begins
  // with one unserved can hang in librdkafka 2.0, its issue #4527;
  // kafka::Consumer::Close serves what waits first, and tearing down early
  // keeps even that rare).
  struct JoinedThread {
    std::thread thread;
    ~JoinedThread() {
      if (thread.joinable()) thread.join();
    }
  } policy_check_;
  std::unique_ptr<LocalStore> local_store_;  // outlives the threads
  LabelAdmissions label_admissions_;         // outlives the threads
  std::vector<std::unique_ptr<StreamThread>> threads_;
  GroupWatch::Options watch_;
  std::atomic<bool> stop_{false};
  // metrics.final_scrape_wait: the final snapshot is published / rendered.
  std::atomic<bool> final_published_{false};
  mutable std::atomic<bool> final_served_{false};
  absl::Time target_clock_ = absl::InfinitePast();
  std::vector<bool> mixed_logged_;  // LogMixedCurrencies, by target
  mutable std::mutex mu_;
  MetricsSnapshot published_;
  // Wakes the publishing loop when a stream thread has committed.
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool publish_due_ = false;
  // Init() has made every thread: /healthz and /readyz ask them.
  std::atomic<bool> started_{false};
  mutable std::mutex step_mu_;
  std::string step_ = "starting";  // SetStep
  // Last: destroyed first, so no request runs while the rest is torn down.
  std::unique_ptr<MetricsEndpoint> endpoint_;
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(
    const Config& config, std::function<bool()> stop_requested) {
  if (std::vector<ConfigError> errors = Validate(config); !errors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid config: ",
        absl::StrJoin(errors, "; ", [](std::string* out, const ConfigError& e) {
          absl::StrAppend(out, e.key, ": ", e.message);
        })));
  }
  std::unique_ptr<Engine> engine(new Engine());
  engine->impl_ = std::make_unique<Impl>(config, std::move(stop_requested));
  absl::Status status = engine->impl_->Init();
  if (!status.ok()) return status;
  return engine;
}

Engine::~Engine() = default;
absl::Status Engine::Run() { return impl_->Run(); }
int Engine::metrics_port() const { return impl_->metrics_port(); }
MetricsSnapshot Engine::Snapshot() const { return impl_->Snapshot(); }

}  // namespace kpistream
