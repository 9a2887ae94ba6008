#include "cmd/embedded_broker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cmd/tcp_forwarder.h"
#include "kafka/log.h"

namespace kpistream {

absl::StatusOr<TopicSpec> ParseTopicSpec(const std::string& text) {
  TopicSpec spec;
  const size_t colon = text.rfind(':');
  spec.name = text.substr(0, colon);
  if (colon != std::string::npos &&
      (!absl::SimpleAtoi(text.substr(colon + 1), &spec.partitions) ||
       spec.partitions < 1 || spec.partitions > 1000)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad topic \"", text,
                     "\": expected NAME or NAME:PARTITIONS (1..1000)"));
  }
  if (spec.name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad topic \"", text, "\": empty name"));
  }
  return spec;
}

struct EmbeddedBroker::Impl {
  rd_kafka_t* owner = nullptr;  // the mock cluster needs a handle to live in
  rd_kafka_mock_cluster_t* cluster = nullptr;
  std::unique_ptr<TcpForwarder> fixed_port;  // --port
  ~Impl() {
    fixed_port.reset();
    if (cluster) rd_kafka_mock_cluster_destroy(cluster);
    if (owner) rd_kafka_destroy(owner);
  }
};

absl::StatusOr<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::Start(
    int brokers, const std::vector<TopicSpec>& topics, int port) {
  std::unique_ptr<EmbeddedBroker> broker(new EmbeddedBroker());
  broker->impl_ = std::make_unique<Impl>();
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
  rd_kafka_conf_set(conf, "client.id", "kpistream-broker", err, sizeof(err));
  RouteKafkaLogs(conf);
  broker->impl_->owner =
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (broker->impl_->owner == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("embedded broker: ", err));
  }
  broker->impl_->cluster =
      rd_kafka_mock_cluster_new(broker->impl_->owner, brokers);
  if (broker->impl_->cluster == nullptr) {
    return absl::InternalError("embedded broker: cannot start mock cluster");
  }
  broker->bootstraps_ =
      rd_kafka_mock_cluster_bootstraps(broker->impl_->cluster);
  if (port > 0) {
    const std::string first =
        broker->bootstraps_.substr(0, broker->bootstraps_.find(','));
    auto forwarder =
        TcpForwarder::Start(absl::StrCat("127.0.0.1:", port), first);
    if (!forwarder.ok()) return forwarder.status();
    broker->impl_->fixed_port = std::move(*forwarder);
    broker->bootstraps_ = absl::StrCat("127.0.0.1:", port);
  }
  for (const TopicSpec& topic : topics) {
    absl::Status status = broker->CreateTopic(topic);
    if (!status.ok()) return status;
  }
  return broker;
}

EmbeddedBroker::~EmbeddedBroker() = default;

void EmbeddedBroker::RefuseNextRequest(int16_t api_key, int error) {
  const rd_kafka_resp_err_t errors[] = {
      static_cast<rd_kafka_resp_err_t>(error)};
  rd_kafka_mock_push_request_errors_array(impl_->cluster, api_key, 1, errors);
}

void EmbeddedBroker::DelayNextResponse(int32_t broker_id, int16_t api_key,
                                       absl::Duration delay) {
  rd_kafka_mock_broker_push_request_error_rtts(
      impl_->cluster, broker_id, api_key, 1, RD_KAFKA_RESP_ERR_NO_ERROR,
      static_cast<int>(absl::ToInt64Milliseconds(delay)));
}

absl::Status EmbeddedBroker::CreateTopic(const TopicSpec& topic) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
      impl_->cluster, topic.name.c_str(), topic.partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot create topic \"", topic.name, "\": ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

}  // namespace kpistream
