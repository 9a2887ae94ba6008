#include "ingest/changelog_reader.h"

#include <librdkafka/rdkafka.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ingest/kafka_log.h"
#include "ingest/kafka_source.h"

namespace kpistream {

namespace {

// A consumer handle without a group for the changelog: `fixed` applied last.
absl::StatusOr<rd_kafka_t*> NewConsumer(
    const ChangelogReadOptions& options,
    const std::map<std::string, std::string>& fixed) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  absl::Status status = ApplyKafkaProperties(
      conf, {{"bootstrap.servers", options.brokers},
             {"client.id", "kpistream-restore"}});
  if (status.ok()) status = ApplyKafkaProperties(conf, options.properties);
  if (status.ok()) status = ApplyKafkaProperties(conf, fixed);
  if (!status.ok()) {
    rd_kafka_conf_destroy(conf);
    return status;
  }
  RouteKafkaLogs(conf);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create Kafka consumer for changelog \"",
                     options.topic, "\": ", err));
  }
  return rk;
}

}  // namespace

absl::StatusOr<int> ChangelogPartitionCount(
    const ChangelogReadOptions& options) {
  auto rk = NewConsumer(options, {{"allow.auto.create.topics", "false"},
                                  {"group.id", "kpistream-restore"}});
  if (!rk.ok()) return rk.status();
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(*rk, options.topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(
      *rk, 0, rkt, &metadata,
      static_cast<int>(absl::ToInt64Milliseconds(options.timeout)));
  rd_kafka_topic_destroy(rkt);
  absl::StatusOr<int> result = absl::NotFoundError(
      absl::StrCat("topic \"", options.topic, "\" does not exist"));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = absl::UnavailableError(
        absl::StrCat("cannot read metadata of topic \"", options.topic,
                     "\": ", rd_kafka_err2str(err)));
  } else {
    if (metadata->topic_cnt == 1 && metadata->topics[0].err == 0 &&
        metadata->topics[0].partition_cnt > 0) {
      result = metadata->topics[0].partition_cnt;
    } else if (metadata->topic_cnt == 1 && metadata->topics[0].err != 0 &&
               metadata->topics[0].err !=
                   RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      result = absl::UnavailableError(
          absl::StrCat("topic \"", options.topic,
                       "\": ", rd_kafka_err2str(metadata->topics[0].err)));
    }
    rd_kafka_metadata_destroy(metadata);
  }
  rd_kafka_destroy(*rk);
  return result;
}

absl::Status ReadChangelog(
    const ChangelogReadOptions& options,
    absl::FunctionRef<void(absl::string_view key, absl::string_view value,
                           bool tombstone)>
        record) {
  if (options.partitions.empty()) return absl::OkStatus();
  // No group: positions are given, nothing is committed.
  auto consumer = NewConsumer(options, {{"isolation.level", "read_committed"},
                                        {"enable.partition.eof", "true"},
                                        {"enable.auto.commit", "false"},
                                        {"group.id", "kpistream-restore"},
                                        {"fetch.wait.max.ms", "50"},
                                        {"auto.offset.reset", "earliest"}});
  if (!consumer.ok()) return consumer.status();
  rd_kafka_t* rk = *consumer;
  absl::Status status;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(
      static_cast<int>(options.partitions.size()));
  for (int32_t p : options.partitions) {
    rd_kafka_topic_partition_list_add(list, options.topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t assigned = rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  // Read to the high watermark as of now, not just to the first end of
  // partition: with read_committed the end stops at the first open
  // transaction (e.g. of an instance that died mid-commit, until the broker
  // aborts it), and committed records behind it count too.
  std::map<int32_t, int64_t> pending;  // partition -> high watermark
  for (int32_t p : options.partitions) {
    int64_t low = 0, high = 0;
    const rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
        rk, options.topic.c_str(), p, &low, &high,
        static_cast<int>(absl::ToInt64Milliseconds(options.timeout)));
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = absl::UnavailableError(
          absl::StrCat("cannot read the end of changelog \"", options.topic,
                       "\" partition ", p, ": ", rd_kafka_err2str(e)));
      break;
    }
    if (high > low) pending[p] = high;
  }
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
      auto it = pending.find(m->partition);
      if (it != pending.end() && m->offset >= it->second) pending.erase(it);
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
