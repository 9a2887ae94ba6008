#include "kafka/group.h"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <utility>

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

absl::StatusOr<GroupDescription> GroupAdmin::Describe(absl::Duration timeout) {
  const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk_.get());
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(
      rk_.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
  char err[256];
  rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, err,
                                            sizeof(err));
  const char* groups[] = {group_id_.c_str()};
  rd_kafka_DescribeConsumerGroups(rk_.get(), groups, 1, options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout_ms + 1000);
  absl::StatusOr<GroupDescription> result = absl::DeadlineExceededError(
      absl::StrCat("no description of consumer group \"", group_id_,
                   "\" within ", absl::FormatDuration(timeout)));
  auto failed = [this](rd_kafka_resp_err_t code, const char* message) {
    const std::string text =
        absl::StrCat("cannot describe consumer group \"", group_id_,
                     "\": ", message);
    return code == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION ||
                   code == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE
               ? absl::UnimplementedError(text)
               : absl::UnavailableError(text);
  };
  if (event != nullptr) {
    const rd_kafka_DescribeConsumerGroups_result_t* r =
        rd_kafka_event_DescribeConsumerGroups_result(event);
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t** descriptions =
        r != nullptr ? rd_kafka_DescribeConsumerGroups_result_groups(r, &n)
                     : nullptr;
    if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result = failed(rd_kafka_event_error(event),
                      rd_kafka_event_error_string(event));
    } else if (n != 1) {
      result = absl::UnavailableError(absl::StrCat(
          "cannot describe consumer group \"", group_id_, "\": ", n,
          " descriptions came back"));
    } else if (const rd_kafka_error_t* e =
                   rd_kafka_ConsumerGroupDescription_error(descriptions[0])) {
      result = failed(rd_kafka_error_code(e), rd_kafka_error_string(e));
    } else {
      const rd_kafka_ConsumerGroupDescription_t* d = descriptions[0];
      GroupDescription group;
      const rd_kafka_consumer_group_state_t state =
          rd_kafka_ConsumerGroupDescription_state(d);
      group.state = rd_kafka_consumer_group_state_name(state);
      group.stable = state == RD_KAFKA_CONSUMER_GROUP_STATE_STABLE;
      const size_t members = rd_kafka_ConsumerGroupDescription_member_count(d);
      for (size_t i = 0; i < members; ++i) {
        const rd_kafka_MemberDescription_t* m =
            rd_kafka_ConsumerGroupDescription_member(d, i);
        GroupMember member;
        auto text = [](const char* s) { return std::string(s ? s : ""); };
        member.member_id = text(rd_kafka_MemberDescription_consumer_id(m));
        member.instance_id =
            text(rd_kafka_MemberDescription_group_instance_id(m));
        member.client_id = text(rd_kafka_MemberDescription_client_id(m));
        const rd_kafka_MemberAssignment_t* a =
            rd_kafka_MemberDescription_assignment(m);
        const rd_kafka_topic_partition_list_t* list =
            a != nullptr ? rd_kafka_MemberAssignment_partitions(a) : nullptr;
        for (int j = 0; list != nullptr && j < list->cnt; ++j) {
          member.assignment.push_back(
              {list->elems[j].topic, list->elems[j].partition});
        }
        group.members.push_back(std::move(member));
      }
      result = std::move(group);
    }
    rd_kafka_event_destroy(event);
  }
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_queue_destroy(queue);
  if (absl::IsUnimplemented(result.status())) unsupported_ = true;
  return result;
}

}  // namespace kpistream::kafka
