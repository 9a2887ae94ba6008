#include "kafka/client.h"

#include "absl/strings/str_cat.h"
#include "kafka/log.h"

namespace kpistream::kafka {

absl::Status ApplyProperties(rd_kafka_conf_t* conf,
                             const Properties& properties) {
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

absl::StatusOr<ConfPtr> NewConf(const ClientSettings& settings) {
  ConfPtr conf(rd_kafka_conf_new());
  Properties base = settings.defaults;
  base["bootstrap.servers"] = settings.brokers;
  base["client.id"] = settings.client_id;
  for (const Properties* p :
       {static_cast<const Properties*>(&base), &settings.user, &settings.fixed}) {
    absl::Status status = ApplyProperties(conf.get(), *p);
    if (!status.ok()) return status;
  }
  RouteKafkaLogs(conf.get());
  return conf;
}

absl::StatusOr<HandlePtr> NewClient(rd_kafka_type_t type, ConfPtr conf,
                                    const std::string& what) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof(err));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create the Kafka ", what, ": ", err));
  }
  conf.release();  // owned by the handle now
  return HandlePtr(rk);
}

}  // namespace kpistream::kafka
