// Reading topics outside the consumer group: the state changelog when
// partitions are assigned (SPEC §5), and the topics' metadata.
#ifndef KPISTREAM_KAFKA_TOPIC_READER_H_
#define KPISTREAM_KAFKA_TOPIC_READER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kafka/client.h"

namespace kpistream::kafka {

struct TopicReadOptions {
  std::string brokers;
  Properties properties;  // the user's, as-is
  std::string topic;
  std::vector<int32_t> partitions;
  // ReadTopic: where to start reading a partition (absent: its beginning).
  std::map<int32_t, int64_t> start_offsets;
  // ReadTopic: how long it waits for the next record (or end) of a
  // partition not read to its end yet (a stall, not the whole read); the
  // other calls: for their answer.
  absl::Duration timeout = absl::Seconds(60);
  // Polled while PartitionCount waits for the brokers and between ReadTopic's
  // records: true gives up at once (CancelledError), e.g. on SIGTERM while
  // they are unreachable.
  std::function<bool()> stop_requested;
};

// The cluster's id and the partitions' ends (high watermarks, not last
// stable offsets: open transactions do not hold them back) now.
struct TopicEnds {
  std::string cluster_id;
  std::map<int32_t, int64_t> ends;
};
absl::StatusOr<TopicEnds> DescribeTopic(const TopicReadOptions& options);

// Whether `options.topic` is among the cluster's topics, from a listing of
// them all (which no broker takes as a request to create it, unlike a
// request for the topic's own metadata on the embedded broker).
absl::StatusOr<bool> TopicListed(const TopicReadOptions& options);

// The partition count of `options.topic`; NotFoundError naming it when it
// does not exist. Asks with a consumer handle, which never makes the broker
// auto-create the topic (it would not be compacted).
absl::StatusOr<int> PartitionCount(const TopicReadOptions& options);

// The value of config `name` of a topic or a broker (its id as
// `resource_name`), asked on `rk` (DescribeConfigs); UnimplementedError
// where the broker cannot say (the embedded broker).
absl::StatusOr<std::string> ResourceConfig(rd_kafka_t* rk,
                                           rd_kafka_ResourceType_t type,
                                           const std::string& resource_name,
                                           const std::string& name,
                                           absl::Duration timeout);

// The value of the topic's config `name` (e.g. "cleanup.policy"), from the
// brokers (Admin API); UnimplementedError where the broker cannot say (the
// embedded broker).
absl::StatusOr<std::string> TopicConfig(const TopicReadOptions& options,
                                        const std::string& name);

// Creates the topic with `partitions` partitions, the brokers' default
// replication factor and `configs` (e.g. cleanup.policy=compact). An
// existing topic is AlreadyExistsError. A request without an answer is
// asked again from a new handle (a controller that just died) until
// `options.timeout`.
absl::Status CreateTopic(const TopicReadOptions& options, int partitions,
                         const Properties& configs);

// The topic's partition count; a missing topic is created first (as
// CreateTopic) and waited for until the brokers' metadata shows it.
absl::StatusOr<int> EnsureTopic(const TopicReadOptions& options, int partitions,
                                const Properties& configs);

struct ReadRecord {
  int32_t partition;
  int64_t offset;
  absl::string_view key;
  absl::string_view value;
  bool tombstone;  // a null value
};

// Calls `record` for every committed record of the partitions, in offset
// order per partition, from the beginning (or options.start_offsets) up to
// their high watermark as of the call: with read_committed the first end of a
// partition is only its last stable offset, which an open transaction (e.g. of
// an instance that died mid-commit, until the broker aborts it) holds back, and
// committed records behind it count too. Errors name the topic and partition
// and say whether it stalled (options.timeout without a record) or the topic
// is missing.
absl::Status ReadTopic(const TopicReadOptions& options,
                       absl::FunctionRef<void(const ReadRecord&)> record);

}  // namespace kpistream::kafka

#endif  // KPISTREAM_KAFKA_TOPIC_READER_H_
