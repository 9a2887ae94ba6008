// Partitions that no member of the consumer group owns, and what heals them.
//
// A cooperative rebalance moves a partition in two rounds: the first takes
// it from its owner, the second, which that owner starts once it has let the
// partition go, gives it to its new owner. A static member (its
// group.instance.id is processing.instance_id) killed between the rounds and
// restarted within the session timeout gets the first round's assignment
// back without a rebalance, and no second round follows: the partition stays
// unread, its lag growing, until something else makes the group rebalance
// (README, "Partitions no member owns").
//
// The watch asks the group's coordinator every 10 s who owns what.
// When partitions of the subscribed topics have been owned by no member of
// a stable group for longer than a cooperative rebalance's two rounds take
// (`grace`), one instance joins the group with a short-lived consumer of its
// own and leaves it again: a new member makes the group rebalance, and that
// rebalance assigns the partitions. The instance that acts is the one whose
// consumer's client.id ("kpistream-<instance_id>-<thread>") sorts first
// among the group's members, so that a fleet makes one rebalance, not one
// per instance; after three times `grace` every instance acts (the first may
// not be able to: kafka.properties sets another client.id, or it runs a
// version without the watch).
#ifndef KPISTREAM_ENGINE_GROUP_WATCH_H_
#define KPISTREAM_ENGINE_GROUP_WATCH_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kafka/client.h"
#include "kafka/group.h"
#include "kafka/record.h"

namespace kpistream {

// The decision, apart from Kafka (group_watch_test).
class UnownedPartitions {
 public:
  // `partitions`: every partition the group's members subscribe to, as topic
  // -> partition count. `own_client_ids`: this instance's consumers'
  // client.id.
  UnownedPartitions(std::map<std::string, int32_t> partitions,
                    std::set<std::string> own_client_ids, absl::Duration grace);

  // After a description of the group at `now`: the partitions to heal, those
  // that no member of the stable group has owned for `grace` if this
  // instance is the one to act, for 3 x `grace` otherwise (then their time
  // starts again). Empty otherwise. A group that is rebalancing owes nothing
  // yet: the times start again.
  std::vector<TopicPartition> Observe(const kafka::GroupDescription& group,
                                      absl::Time now);

  // Partitions unowned at the last Observe().
  size_t unowned() const { return since_.size(); }

 private:
  std::map<std::string, int32_t> partitions_;
  std::set<std::string> own_;
  absl::Duration grace_;
  std::map<TopicPartition, absl::Time> since_;
};

// The watch on its own thread, for the engine's lifetime.
class GroupWatch {
 public:
  struct Options {
    std::string brokers;
    kafka::Properties properties;  // the user's kafka.properties
    std::string group_id;
    std::vector<std::string> topics;            // what the members subscribe to
    std::map<std::string, int32_t> partitions;  // their partition counts
    std::set<std::string> own_client_ids;
    std::string client_id;  // of the watch's own clients
    absl::Duration interval = absl::Seconds(10);
    absl::Duration grace = absl::Seconds(30);
  };

  explicit GroupWatch(Options options);
  ~GroupWatch();  // Stop(), then waits for the thread
  // Asks the thread to stop: no rejoin starts any more; one in progress
  // waits at most 15 s more for its assignment (engine/group_watch.cc).
  void Stop();
  GroupWatch(const GroupWatch&) = delete;
  GroupWatch& operator=(const GroupWatch&) = delete;

 private:
  void Run();
  // Joins the group as a new (dynamic) member and leaves once it has an
  // assignment; reads nothing, commits nothing.
  absl::Status JoinAndLeave();
  bool Wait(absl::Duration d);  // false once stopping

  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kpistream

#endif  // KPISTREAM_ENGINE_GROUP_WATCH_H_
