#include "engine/group_watch.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cmd/log.h"
#include "kafka/consumer.h"

namespace kpistream {
namespace {

// How long a description of the group may take.
constexpr absl::Duration kDescribeTimeout = absl::Seconds(5);
// The rejoining consumer waits for its assignment as long as it takes (the
// group rebalances once every member has rejoined, which a member in the
// middle of a long commit does late): librdkafka 2.0 aborts the process
// when a cooperative-sticky consumer is destroyed after joining but before
// its first assignment (librdkafka issue #4312). Once the engine stops, at
// most this much longer (as a stream thread does, AwaitFirstAssignment).
constexpr absl::Duration kRejoinWaitWhenStopping = absl::Seconds(15);
// How often a rejoin that waits says so.
constexpr absl::Duration kRejoinReport = absl::Seconds(60);
// Failed descriptions in a row before a warning.
constexpr int kFailuresToWarn = 3;
// What the rejoining consumer's client.id ends with (never a candidate).
constexpr char kRejoinSuffix[] = "-rejoin";
// Every instance acts after this many times the grace.
constexpr int kAnyoneAfterGraces = 3;
// The logged partitions, at most.
constexpr size_t kLoggedPartitions = 16;

std::string Names(const std::vector<TopicPartition>& partitions) {
  std::vector<std::string> names;
  for (size_t i = 0; i < partitions.size() && i < kLoggedPartitions; ++i) {
    names.push_back(
        absl::StrCat(partitions[i].topic, "[", partitions[i].partition, "]"));
  }
  if (partitions.size() > kLoggedPartitions) {
    names.push_back(
        absl::StrCat("and ", partitions.size() - kLoggedPartitions, " more"));
  }
  return absl::StrJoin(names, ", ");
}

// The rejoining consumer's listener: notes the assignment, starts nothing.
class Joined : public kafka::Consumer::Listener {
 public:
  std::map<TopicPartition, int64_t> OnAssigned(
      const std::vector<TopicPartition>&) override {
    joined = true;
    return {};
  }
  void OnRevoked(const std::vector<TopicPartition>&) override {}
  void OnLost(const std::vector<TopicPartition>&) override {}

  bool joined = false;
};

}  // namespace

UnownedPartitions::UnownedPartitions(std::map<std::string, int32_t> partitions,
                                     std::set<std::string> own_client_ids,
                                     absl::Duration grace)
    : partitions_(std::move(partitions)),
      own_(std::move(own_client_ids)),
      grace_(grace) {}

std::vector<TopicPartition> UnownedPartitions::Observe(
    const kafka::GroupDescription& group, absl::Time now) {
  if (!group.stable()) {
    since_.clear();
    return {};
  }
  std::set<TopicPartition> owned;
  const std::string* first = nullptr;  // the instance that acts
  for (const kafka::GroupMember& m : group.members) {
    owned.insert(m.assignment.begin(), m.assignment.end());
    if (absl::StartsWith(m.client_id, "kpistream-") &&
        !absl::EndsWith(m.client_id, kRejoinSuffix) &&
        (first == nullptr || m.client_id < *first)) {
      first = &m.client_id;
    }
  }
  std::map<TopicPartition, absl::Time> since;
  for (const auto& [topic, count] : partitions_) {
    for (int32_t p = 0; p < count; ++p) {
      TopicPartition tp{topic, p};
      if (owned.count(tp) > 0) continue;
      auto it = since_.find(tp);
      since.emplace(tp, it != since_.end() ? it->second : now);
    }
  }
  since_ = std::move(since);
  std::vector<TopicPartition> heal;
  const bool first_is_own = first != nullptr && own_.count(*first) > 0;
  const absl::Duration wait =
      first_is_own ? grace_ : kAnyoneAfterGraces * grace_;
  for (auto& [tp, at] : since_) {
    if (now - at >= wait) heal.push_back(tp);
  }
  if (!heal.empty()) {
    for (auto& [tp, at] : since_) at = now;
  }
  return heal;
}

GroupWatch::GroupWatch(Options options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

GroupWatch::~GroupWatch() {
  Stop();
  thread_.join();
}

void GroupWatch::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
}

bool GroupWatch::Wait(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, absl::ToChronoMilliseconds(d),
                       [this] { return stop_; });
}

void GroupWatch::Run() {
  auto admin = kafka::GroupAdmin::Create(options_.brokers, options_.properties,
                                         options_.client_id, options_.group_id);
  if (!admin.ok()) {
    KPI_LOG_WARN("engine: partitions no member owns are not watched: %s",
                 admin.status().ToString());
    return;
  }
  UnownedPartitions unowned(options_.partitions, options_.own_client_ids,
                            options_.grace);
  // A failure that lasts (e.g. no ACL to describe the group) is a warning,
  // once per message; a passing one (the coordinator moving) is not.
  std::string warned;
  int failures = 0;
  while (Wait(options_.interval)) {
    auto group = (*admin)->Describe(kDescribeTimeout);
    if (!group.ok()) {
      if (absl::IsUnimplemented(group.status())) {
        KPI_LOG_INFO(
            "engine: the brokers cannot describe consumer groups (%s): "
            "partitions no member owns are not watched",
            group.status().message());
        return;
      }
      const std::string error = group.status().ToString();
      KPI_LOG_DEBUG("engine: %s", error);
      if (++failures >= kFailuresToWarn && error != warned) {
        warned = error;
        KPI_LOG_WARN(
            "engine: %s (%d times in a row): partitions no member "
            "owns are not watched while this lasts",
            error, failures);
      }
      continue;
    }
    failures = 0;
    const std::vector<TopicPartition> heal =
        unowned.Observe(*group, absl::Now());
    if (heal.empty() || !Wait(absl::ZeroDuration())) continue;
    KPI_LOG_WARN(
        "engine: %d partition(s) of group \"%s\" owned by no member for %s "
        "(%s): a member killed between the two rounds of a cooperative "
        "rebalance leaves them so; joining the group once to make it "
        "rebalance",
        static_cast<int>(heal.size()), options_.group_id,
        absl::FormatDuration(options_.grace), Names(heal));
    const absl::Time start = absl::Now();
    const absl::Status joined = JoinAndLeave();
    if (joined.ok()) {
      KPI_LOG_INFO("engine: joined and left group \"%s\" in %s; it rebalances",
                   options_.group_id,
                   absl::FormatDuration(absl::Trunc(absl::Now() - start,
                                                    absl::Milliseconds(1))));
    } else {
      KPI_LOG_WARN("engine: could not make group \"%s\" rebalance: %s",
                   options_.group_id, joined.ToString());
    }
  }
}

absl::Status GroupWatch::JoinAndLeave() {
  kafka::Consumer::Options in;
  in.brokers = options_.brokers;
  in.group_id = options_.group_id;
  in.client_id = absl::StrCat(options_.client_id, kRejoinSuffix);
  in.topics = options_.topics;
  in.properties = options_.properties;
  in.properties.erase("group.instance.id");  // a new member, not a restart
  in.fetch_buffer = int64_t{1} << 20;        // it reads nothing
  Joined listener;
  auto consumer = kafka::Consumer::Create(in, &listener);
  if (!consumer.ok()) return consumer.status();
  std::vector<kafka::Message> dropped;  // not processed, never committed
  const absl::Time start = absl::Now();
  absl::Time until = absl::InfiniteFuture();
  absl::Time report = start + kRejoinReport;
  while (!listener.joined && absl::Now() < until) {
    (*consumer)->Poll(64, absl::Milliseconds(100), &dropped);
    if (until == absl::InfiniteFuture() && !Wait(absl::ZeroDuration())) {
      until = absl::Now() + kRejoinWaitWhenStopping;
    }
    if (absl::Now() >= report) {
      report += kRejoinReport;
      KPI_LOG_WARN(
          "engine: still waiting after %s for group \"%s\" to "
          "rebalance%s",
          absl::FormatDuration(
              absl::Trunc(absl::Now() - start, absl::Seconds(1))),
          options_.group_id,
          (*consumer)->last_error().empty()
              ? ""
              : absl::StrCat(" (last error: ", (*consumer)->last_error(), ")"));
    }
  }
  (*consumer)->Close();
  if (!listener.joined) {
    return absl::DeadlineExceededError(
        absl::StrCat("its consumer had no assignment after ",
                     absl::FormatDuration(
                         absl::Trunc(absl::Now() - start, absl::Seconds(1))),
                     " (the group did not complete a rebalance)"));
  }
  return absl::OkStatus();
}

}  // namespace kpistream
