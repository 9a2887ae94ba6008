// A consumer group as its coordinator describes it (DescribeGroups): its
// state and each member's assignment.
#ifndef KPISTREAM_KAFKA_GROUP_H_
#define KPISTREAM_KAFKA_GROUP_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kafka/client.h"
#include "kafka/record.h"

namespace kpistream::kafka {

struct GroupMember {
  std::string member_id;
  std::string client_id;
  std::vector<TopicPartition> assignment;
};

struct GroupDescription {
  // "Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"
  // or "Unknown" (librdkafka's names).
  std::string state;
  std::vector<GroupMember> members;
  bool stable() const { return state == "Stable"; }
};

// An admin client kept for repeated descriptions of one group.
class GroupAdmin {
 public:
  // `properties`: the user's kafka.properties, as-is.
  static absl::StatusOr<std::unique_ptr<GroupAdmin>> Create(
      const std::string& brokers, const Properties& properties,
      const std::string& client_id, const std::string& group_id);

  // After an UnimplementedError the client is left undestroyed: librdkafka
  // 2.0.2's rd_kafka_destroy() never returned after the Admin API's
  // DescribeConsumerGroups failed so on the embedded broker (the engine's
  // stop hung on it); kept as a precaution.
  ~GroupAdmin();
  GroupAdmin(const GroupAdmin&) = delete;
  GroupAdmin& operator=(const GroupAdmin&) = delete;

  // The group now. UnimplementedError where the brokers cannot describe
  // groups; NotFoundError when no broker knows the group; UnavailableError
  // or DeadlineExceededError naming the group otherwise.
  absl::StatusOr<GroupDescription> Describe(absl::Duration timeout);

 private:
  GroupAdmin() = default;
  HandlePtr rk_;
  std::string group_id_;
  bool unsupported_ = false;
};

}  // namespace kpistream::kafka

#endif  // KPISTREAM_KAFKA_GROUP_H_
