#include "ingest/kafka_source.h"

#include "absl/strings/str_cat.h"
#include "ingest/kafka_log.h"

namespace kpistream {

absl::Status ApplyKafkaProperties(
    rd_kafka_conf_t* conf,
    const std::map<std::string, std::string>& properties) {
  char err[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka property \"", key, "\": ", err));
    }
  }
  return absl::OkStatus();
}

rd_kafka_topic_partition_list_t* ToPartitionList(
    const std::vector<std::pair<TopicPartition, int64_t>>& offsets) {
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
  for (const auto& [tp, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition)
        ->offset = offset;
  }
  return list;
}

namespace {
std::vector<TopicPartition> FromList(
    const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}
}  // namespace

void KafkaSource::RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t* partitions,
                                    void* opaque) {
  auto* self = static_cast<KafkaSource*>(opaque);
  const bool cooperative =
      std::string(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->listener_->OnAssigned(FromList(partitions));
    if (cooperative) {
      rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, partitions);
      if (e) rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk, partitions);
    }
  } else {
    self->listener_->OnRevoked(FromList(partitions));
    if (cooperative) {
      rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, partitions);
      if (e) rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }
}

absl::StatusOr<std::unique_ptr<KafkaSource>> KafkaSource::Create(
    const Options& options, Listener* listener) {
  std::unique_ptr<KafkaSource> source(new KafkaSource());
  source->listener_ = listener;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  const std::map<std::string, std::string> defaults = {
      {"bootstrap.servers", options.brokers},
      {"group.id", options.group_id},
      {"auto.offset.reset", "earliest"},
      {"isolation.level", "read_committed"},
      {"enable.partition.eof", "false"},
      {"client.id", "kpistream"},
  };
  absl::Status status = ApplyKafkaProperties(conf, defaults);
  if (status.ok()) status = ApplyKafkaProperties(conf, options.properties);
  // Offsets are the engine's business: never auto-committed.
  if (status.ok()) {
    status =
        ApplyKafkaProperties(conf, {{"enable.auto.commit", "false"},
                                    {"enable.auto.offset.store", "false"}});
  }
  if (!status.ok()) {
    rd_kafka_conf_destroy(conf);
    return status;
  }
  RouteKafkaLogs(conf);
  rd_kafka_conf_set_opaque(conf, source.get());
  rd_kafka_conf_set_rebalance_cb(conf, &KafkaSource::RebalanceCallback);
  source->rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (source->rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create Kafka consumer: ", err));
  }
  rd_kafka_poll_set_consumer(source->rk_);
  source->queue_ = rd_kafka_queue_get_consumer(source->rk_);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(
      static_cast<int>(options.topics.size()));
  for (const std::string& topic : options.topics) {
    rd_kafka_topic_partition_list_add(topics, topic.c_str(),
                                      RD_KAFKA_PARTITION_UA);
  }
  rd_kafka_resp_err_t sub = rd_kafka_subscribe(source->rk_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (sub != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat(
        "cannot subscribe to input topics: ", rd_kafka_err2str(sub)));
  }
  return source;
}

KafkaSource::~KafkaSource() {
  Close();
  if (queue_) rd_kafka_queue_destroy(queue_);
  if (rk_) rd_kafka_destroy(rk_);
}

std::vector<KafkaMessage> KafkaSource::Poll(size_t max,
                                            absl::Duration timeout) {
  std::vector<rd_kafka_message_t*> raw(max);
  ssize_t n = rd_kafka_consume_batch_queue(
      queue_, static_cast<int>(absl::ToInt64Milliseconds(timeout)), raw.data(),
      max);
  std::vector<KafkaMessage> out;
  if (n <= 0) return out;
  out.reserve(n);
  for (ssize_t i = 0; i < n; ++i) {
    rd_kafka_message_t* m = raw[i];
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        ReportKafkaEvent(
            rk_, /*syslog LOG_ERR=*/3, "CONSUME",
            absl::StrCat(rd_kafka_message_errstr(m), m->rkt ? " topic " : "",
                         m->rkt ? rd_kafka_topic_name(m->rkt) : ""));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    out.emplace_back(m);
  }
  return out;
}

std::vector<std::pair<TopicPartition, int64_t>> KafkaSource::Positions() {
  std::vector<std::pair<TopicPartition, int64_t>> out;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return out;
  }
  rd_kafka_position(rk_, assignment);
  for (int i = 0; i < assignment->cnt; ++i) {
    const auto& e = assignment->elems[i];
    if (e.offset >= 0) out.push_back({{e.topic, e.partition}, e.offset});
  }
  rd_kafka_topic_partition_list_destroy(assignment);
  return out;
}

std::vector<std::pair<TopicPartition, int64_t>> KafkaSource::Lag() {
  std::vector<std::pair<TopicPartition, int64_t>> out;
  for (const auto& [tp, position] : Positions()) {
    int64_t low = 0, high = 0;
    if (rd_kafka_get_watermark_offsets(rk_, tp.topic.c_str(), tp.partition,
                                       &low,
                                       &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      out.push_back({tp, high > position ? high - position : 0});
    }
  }
  return out;
}

absl::Status KafkaSource::CommitSync(
    const std::vector<std::pair<TopicPartition, int64_t>>& offsets) {
  if (offsets.empty()) return absl::OkStatus();
  rd_kafka_topic_partition_list_t* list = ToPartitionList(offsets);
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list, /*async=*/0);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR &&
      err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return absl::UnavailableError(
        absl::StrCat("offset commit failed: ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

void KafkaSource::Close() {
  if (closed_ || rk_ == nullptr) return;
  closed_ = true;
  rd_kafka_consumer_close(rk_);
}

}  // namespace kpistream
