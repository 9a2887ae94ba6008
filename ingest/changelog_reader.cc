#include "ingest/changelog_reader.h"

#include <librdkafka/rdkafka.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ingest/kafka_source.h"

namespace kpistream {

absl::Status ReadChangelog(
    const ChangelogReadOptions& options,
    absl::FunctionRef<void(absl::string_view key, absl::string_view value,
                           bool tombstone)>
        record) {
  if (options.partitions.empty()) return absl::OkStatus();
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  absl::Status status = ApplyKafkaProperties(
      conf, {{"bootstrap.servers", options.brokers},
             {"client.id", "kpistream-restore"}});
  if (status.ok()) status = ApplyKafkaProperties(conf, options.properties);
  // No group: positions are given, nothing is committed.
  if (status.ok()) {
    status = ApplyKafkaProperties(conf, {{"isolation.level", "read_committed"},
                                         {"enable.partition.eof", "true"},
                                         {"enable.auto.commit", "false"},
                                         {"group.id", "kpistream-restore"},
                                         {"fetch.wait.max.ms", "50"},
                                         {"auto.offset.reset", "earliest"}});
  }
  if (!status.ok()) {
    rd_kafka_conf_destroy(conf);
    return status;
  }
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create Kafka consumer for changelog \"",
                     options.topic, "\": ", err));
  }
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(
      static_cast<int>(options.partitions.size()));
  for (int32_t p : options.partitions) {
    rd_kafka_topic_partition_list_add(list, options.topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t assigned = rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::set<int32_t> pending(options.partitions.begin(),
                            options.partitions.end());
  if (assigned != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::UnavailableError(
        absl::StrCat("cannot read changelog \"", options.topic,
                     "\": ", rd_kafka_err2str(assigned)));
  }
  const absl::Time deadline = absl::Now() + options.timeout;
  while (status.ok() && !pending.empty()) {
    if (absl::Now() > deadline) {
      status = absl::DeadlineExceededError(absl::StrCat(
          "changelog \"", options.topic, "\": ", pending.size(),
          " partition(s) not read to the end within ",
          absl::FormatDuration(options.timeout)));
      break;
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      pending.erase(m->partition);
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      record(absl::string_view(static_cast<const char*>(m->key), m->key_len),
             absl::string_view(static_cast<const char*>(m->payload), m->len),
             m->payload == nullptr);
    } else if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
               m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
               m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
      status = absl::NotFoundError(absl::StrCat(
          "changelog topic \"", options.topic, "\" (partition ", m->partition,
          "): ", rd_kafka_message_errstr(m)));
    } else if (m->err != RD_KAFKA_RESP_ERR__TRANSPORT &&
               m->err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      status = absl::UnavailableError(
          absl::StrCat("reading changelog \"", options.topic,
                       "\": ", rd_kafka_message_errstr(m)));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return status;
}

}  // namespace kpistream
