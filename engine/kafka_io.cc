#include "engine/kafka_io.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace kpistream {

absl::StatusOr<std::unique_ptr<KafkaStreamInput>> KafkaStreamInput::Create(
    const kafka::Consumer::Options& options, StreamInput::Listener* listener) {
  std::unique_ptr<KafkaStreamInput> input(new KafkaStreamInput());
  input->listener_ = listener;
  if (auto it = options.properties.find("auto.offset.reset");
      it != options.properties.end()) {
    input->reset_policy_ = it->second;
  }
  auto consumer = kafka::Consumer::Create(options, input.get());
  if (!consumer.ok()) return consumer.status();
  input->consumer_ = *std::move(consumer);
  return input;
}

void KafkaStreamInput::Poll(
    size_t max, absl::Duration timeout,
    absl::FunctionRef<void(const kafka::Record&)> sink) {
  for (const kafka::Message& m : consumer_->Poll(max, timeout)) {
    sink(kafka::Record::Of(m.get()));
  }
}

absl::Status KafkaStreamInput::Seek(const Offsets& offsets) {
  if (offsets.empty()) return absl::OkStatus();
  rd_kafka_t* rk = consumer_->handle();
  rd_kafka_topic_partition_list_t* list = kafka::ToPartitionList(offsets);
  // Negative: the group's committed offset, or the reset policy.
  rd_kafka_topic_partition_list_t* committed =
      rd_kafka_topic_partition_list_new(list->cnt);
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].offset < 0) {
      rd_kafka_topic_partition_list_add(committed, list->elems[i].topic,
                                        list->elems[i].partition);
    }
  }
  absl::Status status;
  if (committed->cnt > 0) {
    const rd_kafka_resp_err_t err = rd_kafka_committed(rk, committed, 30000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = absl::UnavailableError(absl::StrCat(
          "cannot read the group's committed offsets: ", rd_kafka_err2str(err)));
    }
    for (int i = 0; status.ok() && i < list->cnt; ++i) {
      rd_kafka_topic_partition_t& e = list->elems[i];
      if (e.offset >= 0) continue;
      const rd_kafka_topic_partition_t* c = rd_kafka_topic_partition_list_find(
          committed, e.topic, e.partition);
      e.offset = c != nullptr && c->offset >= 0 ? c->offset
                 : reset_policy_ == "latest"   ? RD_KAFKA_OFFSET_END
                                               : RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  rd_kafka_topic_partition_list_destroy(committed);
  if (status.ok()) {
    rd_kafka_error_t* e = rd_kafka_seek_partitions(rk, list, 30000);
    if (e != nullptr) {
      status = absl::UnavailableError(absl::StrCat(
          "cannot seek the input partitions: ", rd_kafka_error_string(e)));
      rd_kafka_error_destroy(e);
    }
    for (int i = 0; status.ok() && i < list->cnt; ++i) {
      if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = absl::UnavailableError(absl::StrCat(
            "cannot seek ", list->elems[i].topic, "[",
            list->elems[i].partition,
            "]: ", rd_kafka_err2str(list->elems[i].err)));
      }
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  return status;
}

std::map<TopicPartition, int64_t> KafkaStreamInput::OnAssigned(
    const std::vector<TopicPartition>& partitions) {
  listener_->OnAssigned(partitions);
  return {};  // the thread seeks once it has restored their state
}

void KafkaStreamInput::OnRevoked(
    const std::vector<TopicPartition>& partitions) {
  listener_->OnRevoked(partitions);
}

void KafkaStreamInput::OnLost(const std::vector<TopicPartition>& partitions) {
  listener_->OnLost(partitions);
}

absl::StatusOr<std::unique_ptr<KafkaStreamOutput>> KafkaStreamOutput::Create(
    const kafka::Producer::Options& options, KafkaStreamInput* input) {
  auto producer = kafka::Producer::Create(options);
  if (!producer.ok()) return producer.status();
  std::unique_ptr<KafkaStreamOutput> output(new KafkaStreamOutput());
  output->producer_ = *std::move(producer);
  output->input_ = input;
  return output;
}

absl::StatusOr<std::unique_ptr<KafkaChangelog>> KafkaChangelog::Open(
    const kafka::TopicReadOptions& options, int create_partitions) {
  std::unique_ptr<KafkaChangelog> changelog(new KafkaChangelog());
  changelog->options_ = options;
  auto count = kafka::PartitionCount(options);
  if (absl::IsNotFound(count.status())) {
    absl::Status created = kafka::CreateTopic(
        options, create_partitions,
        {{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "0"}});
    if (!created.ok() && !absl::IsAlreadyExists(created)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the state changelog topic \"", options.topic,
          "\" does not exist and creating it failed (", created.message(),
          "): create it with cleanup.policy=compact and as many partitions "
          "as the input topics, or name another in outputs.changelog.topic"));
    }
    count = kafka::PartitionCount(options);
  }
  if (!count.ok()) {
    return absl::Status(count.status().code(),
                        absl::StrCat("outputs.changelog.topic: ",
                                     count.status().message()));
  }
  changelog->partitions_ = *count;
  return changelog;
}

absl::Status KafkaChangelog::Read(
    const std::vector<int32_t>& partitions,
    absl::FunctionRef<void(absl::string_view, absl::string_view, bool)>
        record) {
  kafka::TopicReadOptions options = options_;
  options.partitions = partitions;
  return kafka::ReadTopic(options, [&](const kafka::ReadRecord& r) {
    record(r.key, r.value, r.tombstone);
  });
}

}  // namespace kpistream
