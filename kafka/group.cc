#include "kafka/group.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kpistream::kafka {

absl::StatusOr<std::unique_ptr<GroupAdmin>> GroupAdmin::Create(
    const std::string& brokers, const Properties& properties,
    const std::string& client_id, const std::string& group_id) {
  ClientSettings settings(RD_KAFKA_PRODUCER, brokers, client_id, properties);
  auto rk = NewClient(settings,
                      absl::StrCat("admin client of group \"", group_id, "\""));
  if (!rk.ok()) return rk.status();
  std::unique_ptr<GroupAdmin> admin(new GroupAdmin());
  admin->rk_ = *std::move(rk);
  admin->group_id_ = group_id;
  return admin;
}

GroupAdmin::~GroupAdmin() {
  if (unsupported_) static_cast<void>(rk_.release());
}

namespace {

// Reads a consumer protocol Assignment (int16 version, [topic: string,
// partitions: [int32]], user data): the topic partitions, or false when the
// bytes are not one.
bool ParseAssignment(const uint8_t* p, size_t size,
                     std::vector<TopicPartition>* out) {
  const uint8_t* const end = p + size;
  auto read = [&](int bytes, int64_t* value) {
    if (end - p < bytes) return false;
    int64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
    if (bytes == 2) v = static_cast<int16_t>(v);
    if (bytes == 4) v = static_cast<int32_t>(v);
    p += bytes;
    *value = v;
    return true;
  };
  int64_t version = 0, topics = 0;
  if (size == 0) return true;  // a member given nothing yet
  if (!read(2, &version) || !read(4, &topics) || topics < 0) return false;
  for (int64_t t = 0; t < topics; ++t) {
    int64_t length = 0, count = 0;
    if (!read(2, &length) || length < 0 || end - p < length) return false;
    const std::string topic(reinterpret_cast<const char*>(p),
                            static_cast<size_t>(length));
    p += length;
    if (!read(4, &count) || count < 0) return false;
    for (int64_t i = 0; i < count; ++i) {
      int64_t partition = 0;
      if (!read(4, &partition)) return false;
      out->push_back({topic, static_cast<int32_t>(partition)});
    }
  }
  return true;  // the user data that follows is not needed
}

}  // namespace

absl::StatusOr<GroupDescription> GroupAdmin::Describe(absl::Duration timeout) {
  // rd_kafka_list_groups (ListGroups, then DescribeGroups where the group
  // is), not the Admin API's DescribeConsumerGroups: that one aborts the
  // process (rd_kafka_enq_once_del_source_return: Assertion `eonce->refcnt
  // > 0') when a broker goes away while it asks, as in BrokerOutageTest;
  // librdkafka issues #4605 and #3663, open. This one is built to time out:
  // late replies find their state gone and are dropped.
  const struct rd_kafka_group_list* list = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_list_groups(
      rk_.get(), group_id_.c_str(), &list,
      static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  auto failed = [this](rd_kafka_resp_err_t code) {
    const std::string text =
        absl::StrCat("cannot describe consumer group \"", group_id_,
                     "\": ", rd_kafka_err2str(code));
    if (code == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION ||
        code == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE) {
      unsupported_ = true;
      return absl::Status(absl::UnimplementedError(text));
    }
    return code == RD_KAFKA_RESP_ERR__TIMED_OUT
               ? absl::Status(absl::DeadlineExceededError(text))
               : absl::Status(absl::UnavailableError(text));
  };
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // __PARTIAL: some brokers did not answer; what came may lack the group.
    if (list != nullptr) rd_kafka_group_list_destroy(list);
    return failed(err);
  }
  absl::StatusOr<GroupDescription> result = absl::NotFoundError(
      absl::StrCat("no broker knows consumer group \"", group_id_, "\""));
  for (int g = 0; g < list->group_cnt; ++g) {
    const rd_kafka_group_info& info = list->groups[g];
    if (info.group == nullptr || group_id_ != info.group) continue;
    if (info.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result = failed(info.err);
      break;
    }
    GroupDescription group;
    group.state = info.state != nullptr ? info.state : "";
    bool parsed = true;
    for (int i = 0; i < info.member_cnt; ++i) {
      const rd_kafka_group_member_info& m = info.members[i];
      GroupMember member;
      member.member_id = m.member_id != nullptr ? m.member_id : "";
      member.client_id = m.client_id != nullptr ? m.client_id : "";
      parsed = parsed &&
               ParseAssignment(
                   static_cast<const uint8_t*>(m.member_assignment),
                   static_cast<size_t>(std::max(0, m.member_assignment_size)),
                   &member.assignment);
      group.members.push_back(std::move(member));
    }
    result = parsed ? absl::StatusOr<GroupDescription>(std::move(group))
                    : absl::UnavailableError(absl::StrCat(
                          "consumer group \"", group_id_,
                          "\": a member's assignment is not the consumer "
                          "protocol's"));
    break;
  }
  rd_kafka_group_list_destroy(list);
  return result;
}

}  // namespace kpistream::kafka
