#include "export/kafka_sink.h"

#include "absl/strings/str_cat.h"
#include "ingest/kafka_log.h"
#include "ingest/kafka_source.h"

namespace kpistream {
namespace {

absl::Status FromError(absl::string_view what, rd_kafka_error_t* error) {
  std::string message = absl::StrCat(what, ": ", rd_kafka_error_string(error));
  rd_kafka_error_destroy(error);
  return absl::UnavailableError(message);
}

}  // namespace

void KafkaSink::DeliveryCallback(rd_kafka_t*, const rd_kafka_message_t* m,
                                 void* opaque) {
  auto* self = static_cast<KafkaSink*>(opaque);
  if (m->err) {
    if (self->delivery_error_.empty()) {
      self->delivery_error_ =
          absl::StrCat("delivery to topic \"", rd_kafka_topic_name(m->rkt),
                       "\" failed: ", rd_kafka_err2str(m->err));
    }
  } else {
    ++self->delivered_;
  }
}

absl::StatusOr<std::unique_ptr<KafkaSink>> KafkaSink::Create(
    const Options& options) {
  std::unique_ptr<KafkaSink> sink(new KafkaSink());
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> defaults = {
      {"bootstrap.servers", options.brokers},
      {"enable.idempotence", "true"},
      {"linger.ms", "5"},
      {"compression.type", "lz4"},
      {"client.id", "kpistream"},
  };
  absl::Status status = ApplyKafkaProperties(conf, defaults);
  if (status.ok()) status = ApplyKafkaProperties(conf, options.properties);
  if (status.ok() && !options.transactional_id.empty()) {
    status = ApplyKafkaProperties(
        conf, {{"transactional.id", options.transactional_id}});
  }
  if (!status.ok()) {
    rd_kafka_conf_destroy(conf);
    return status;
  }
  RouteKafkaLogs(conf);
  rd_kafka_conf_set_opaque(conf, sink.get());
  rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::DeliveryCallback);
  char err[512];
  sink->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (sink->rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create Kafka producer: ", err));
  }
  if (!options.transactional_id.empty()) {
    sink->transactional_ = true;
    if (rd_kafka_error_t* e = rd_kafka_init_transactions(sink->rk_, 30000)) {
      return FromError(
          absl::StrCat("cannot initialise Kafka transactions on ",
                       options.brokers,
                       " (does the broker support them? set "
                       "processing.guarantee: at_least_once otherwise)"),
          e);
    }
  }
  return sink;
}

KafkaSink::~KafkaSink() {
  if (rk_ == nullptr) return;
  if (in_transaction_) {
    if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, 5000)) {
      rd_kafka_error_destroy(e);
    }
  }
  rd_kafka_flush(rk_, 5000);
  rd_kafka_destroy(rk_);
}

absl::Status KafkaSink::TakeDeliveryError() {
  if (delivery_error_.empty()) return absl::OkStatus();
  return absl::UnavailableError(std::move(delivery_error_));
}

absl::Status KafkaSink::Produce(
    absl::string_view topic, absl::string_view key, absl::string_view value,
    const std::vector<std::pair<std::string, std::string>>& headers,
    int32_t partition) {
  if (!delivery_error_.empty()) return TakeDeliveryError();
  const int32_t to = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
  const std::string topic_name(topic);
  for (;;) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (!headers.empty()) {
      hdrs = rd_kafka_headers_new(headers.size());
      for (const auto& [name, v] : headers) {
        rd_kafka_header_add(hdrs, name.data(), name.size(), v.data(), v.size());
      }
    }
    rd_kafka_resp_err_t err;
    if (hdrs) {
      err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(topic_name.c_str()), RD_KAFKA_V_PARTITION(to),
          RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
          RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(hdrs);
    } else {
      err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(topic_name.c_str()), RD_KAFKA_V_PARTITION(to),
          RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_poll(rk_, 0);
      return absl::OkStatus();
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return absl::UnavailableError(absl::StrCat(
          "cannot produce to topic \"", topic, "\": ", rd_kafka_err2str(err)));
    }
    rd_kafka_poll(rk_, 50);
  }
}

absl::Status KafkaSink::BeginTransaction() {
  if (!transactional_ || in_transaction_) return absl::OkStatus();
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(rk_)) {
    return FromError("cannot begin Kafka transaction", e);
  }
  in_transaction_ = true;
  return absl::OkStatus();
}

absl::Status KafkaSink::CommitTransaction(
    rd_kafka_t* consumer,
    const std::vector<std::pair<TopicPartition, int64_t>>& offsets) {
  if (!transactional_ || !in_transaction_) return absl::OkStatus();
  if (!offsets.empty()) {
    rd_kafka_topic_partition_list_t* list = ToPartitionList(offsets);
    rd_kafka_consumer_group_metadata_t* group =
        rd_kafka_consumer_group_metadata(consumer);
    rd_kafka_error_t* e =
        rd_kafka_send_offsets_to_transaction(rk_, list, group, 10000);
    rd_kafka_consumer_group_metadata_destroy(group);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) return AbortOrFail("cannot add input offsets to the transaction", e);
  }
  rd_kafka_error_t* e = rd_kafka_commit_transaction(rk_, 30000);
  if (e != nullptr && rd_kafka_error_is_retriable(e)) {
    rd_kafka_error_destroy(e);
    e = rd_kafka_commit_transaction(rk_, 30000);
  }
  if (e) return AbortOrFail("cannot commit Kafka transaction", e);
  in_transaction_ = false;
  return TakeDeliveryError();
}

absl::Status KafkaSink::AbortOrFail(absl::string_view what,
                                    rd_kafka_error_t* error) {
  // A group rebalance or a timed-out request makes the transaction abortable:
  // abort it, so that neither its records nor its offsets become visible and
  // the input since the last commit is read again.
  const bool abortable =
      rd_kafka_error_txn_requires_abort(error) ||
      rd_kafka_error_is_retriable(error) ||
      rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT;
  const std::string message =
      absl::StrCat(what, ": ", rd_kafka_error_string(error));
  const bool fatal = rd_kafka_error_is_fatal(error);
  rd_kafka_error_destroy(error);
  if (!abortable || fatal) return absl::UnavailableError(message);
  if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_, 30000)) {
    return FromError(absl::StrCat(message, "; aborting it failed too"), e);
  }
  in_transaction_ = false;
  delivery_error_.clear();
  return absl::AbortedError(
      absl::StrCat(message, "; the transaction was aborted"));
}

absl::Status KafkaSink::Flush() {
  rd_kafka_resp_err_t err = rd_kafka_flush(rk_, 30000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::DeadlineExceededError(absl::StrCat(
        "output records not acknowledged within 30s: ", rd_kafka_err2str(err)));
  }
  return TakeDeliveryError();
}

}  // namespace kpistream
