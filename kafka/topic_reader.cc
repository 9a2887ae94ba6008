#include "kafka/topic_reader.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kafka/consumer.h"

namespace kpistream::kafka {
namespace {

absl::StatusOr<HandlePtr> NewReader(const TopicReadOptions& options,
                                    rd_kafka_type_t type, Properties fixed) {
  ClientSettings settings(type, options.brokers, "kpistream-restore",
                          options.properties);
  settings.fixed = std::move(fixed);
  return NewClient(settings,
                   absl::StrCat("reader of topic \"", options.topic, "\""));
}

// A consumer that asks for a topic's metadata without making the brokers
// create it (with their defaults: a changelog would not be compacted). A
// consumer's default allow.auto.create.topics is false; it is set only over
// a user's value, because librdkafka warns about a set one at every broker
// whose Metadata is older than v4 (the embedded one: four WARN lines at
// every start). `read_uncommitted`: it asks for the partitions' ends too,
// their log ends (a read_committed handle is told the last stable offset,
// which any open transaction on the partition holds back).
absl::StatusOr<HandlePtr> NewMetadataReader(const TopicReadOptions& options,
                                            bool read_uncommitted = false) {
  Properties fixed = {{"group.id", "kpistream-restore"}};
  if (read_uncommitted) fixed["isolation.level"] = "read_uncommitted";
  if (options.properties.count("allow.auto.create.topics") > 0) {
    fixed["allow.auto.create.topics"] = "false";
  }
  return NewReader(options, RD_KAFKA_CONSUMER, std::move(fixed));
}

}  // namespace

absl::StatusOr<bool> TopicListed(const TopicReadOptions& options) {
  auto rk = NewMetadataReader(options);
  if (!rk.ok()) return rk.status();
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(
      rk->get(), /*all_topics=*/1, nullptr, &metadata,
      static_cast<int>(absl::ToInt64Milliseconds(options.timeout)));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("cannot list the topics of ",
                                               options.brokers, ": ",
                                               rd_kafka_err2str(err)));
  }
  bool listed = false;
  for (int i = 0; i < metadata->topic_cnt && !listed; ++i) {
    listed = options.topic == metadata->topics[i].topic;
  }
  rd_kafka_metadata_destroy(metadata);
  return listed;
}

absl::StatusOr<int> PartitionCount(const TopicReadOptions& options) {
  auto rk = NewMetadataReader(options);
  if (!rk.ok()) return rk.status();
  rd_kafka_topic_t* rkt =
      rd_kafka_topic_new(rk->get(), options.topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  // In waits of 250 ms growing to 2 s, so that a stop request is heard
  // while the brokers do not answer (librdkafka keeps trying to connect
  // meanwhile), and a metadata round trip of up to 2 s still gets through.
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::Duration slice = absl::Milliseconds(250);
  rd_kafka_resp_err_t err;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    const absl::Duration wait = std::min(left, slice);
    err = rd_kafka_metadata(rk->get(), 0, rkt, &metadata,
                            static_cast<int>(std::max<int64_t>(
                                1, absl::ToInt64Milliseconds(wait))));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    const bool stop = options.stop_requested && options.stop_requested();
    if (stop) {
      rd_kafka_topic_destroy(rkt);
      return absl::CancelledError(
          absl::StrCat("stopped while waiting for the metadata of topic \"",
                       options.topic, "\" from ", options.brokers,
                       " (last answer: ", rd_kafka_err2str(err), ")"));
    }
    if (left <= wait || (err != RD_KAFKA_RESP_ERR__TIMED_OUT &&
                         err != RD_KAFKA_RESP_ERR__TRANSPORT &&
                         err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)) {
      break;
    }
    if (err != RD_KAFKA_RESP_ERR__TIMED_OUT) {
      absl::SleepFor(std::min(deadline - absl::Now(), absl::Milliseconds(250)));
    }
    slice = std::min(2 * slice, absl::Seconds(2));
  }
  rd_kafka_topic_destroy(rkt);
  absl::StatusOr<int> result = absl::NotFoundError(
      absl::StrCat("topic \"", options.topic, "\" does not exist"));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the metadata of topic \"", options.topic,
                     "\" from ", options.brokers, ": ", rd_kafka_err2str(err)));
  }
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
  return result;
}

absl::StatusOr<std::string> ResourceConfig(rd_kafka_t* rk,
                                           rd_kafka_ResourceType_t type,
                                           const std::string& resource_name,
                                           const std::string& name,
                                           absl::Duration timeout) {
  const std::string what =
      absl::StrCat(type == RD_KAFKA_RESOURCE_BROKER ? "broker " : "topic \"",
                   resource_name, type == RD_KAFKA_RESOURCE_BROKER ? "" : "\"");
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(type, resource_name.c_str());
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* admin =
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  char err[256];
  const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  rd_kafka_AdminOptions_set_request_timeout(admin, timeout_ms, err,
                                            sizeof(err));
  rd_kafka_DescribeConfigs(rk, &resource, 1, admin, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout_ms + 1000);
  absl::StatusOr<std::string> result = absl::DeadlineExceededError(
      absl::StrCat("no answer about the config of ", what));
  if (event != nullptr) {
    if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result =
          rd_kafka_event_error(event) == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION
              ? absl::UnimplementedError(rd_kafka_event_error_string(event))
              : absl::UnavailableError(
                    absl::StrCat("cannot read the config of ", what, ": ",
                                 rd_kafka_event_error_string(event)));
    } else {
      const rd_kafka_DescribeConfigs_result_t* r =
          rd_kafka_event_DescribeConfigs_result(event);
      size_t n = 0;
      const rd_kafka_ConfigResource_t** resources =
          rd_kafka_DescribeConfigs_result_resources(r, &n);
      result = absl::NotFoundError(
          absl::StrCat(what, " has no config \"", name, "\""));
      for (size_t i = 0; i < n; ++i) {
        if (rd_kafka_ConfigResource_error(resources[i]) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
          result = absl::UnavailableError(absl::StrCat(
              what, ": ", rd_kafka_ConfigResource_error_string(resources[i])));
          continue;
        }
        size_t m = 0;
        const rd_kafka_ConfigEntry_t** entries =
            rd_kafka_ConfigResource_configs(resources[i], &m);
        for (size_t j = 0; j < m; ++j) {
          if (name == rd_kafka_ConfigEntry_name(entries[j])) {
            const char* value = rd_kafka_ConfigEntry_value(entries[j]);
            result = std::string(value ? value : "");
          }
        }
      }
    }
    rd_kafka_event_destroy(event);
  }
  rd_kafka_AdminOptions_destroy(admin);
  rd_kafka_ConfigResource_destroy(resource);
  rd_kafka_queue_destroy(queue);
  return result;
}

absl::StatusOr<std::string> TopicConfig(const TopicReadOptions& options,
                                        const std::string& name) {
  auto rk = NewReader(options, RD_KAFKA_PRODUCER, {});
  if (!rk.ok()) return rk.status();
  return ResourceConfig(rk->get(), RD_KAFKA_RESOURCE_TOPIC, options.topic, name,
                        options.timeout);
}

namespace {

// One CreateTopics request from a new handle, answered within `timeout`.
absl::Status CreateTopicOnce(const TopicReadOptions& options, int partitions,
                             const Properties& configs,
                             absl::Duration timeout) {
  auto rk = NewReader(options, RD_KAFKA_PRODUCER, {});
  if (!rk.ok()) return rk.status();
  char err[512];
  rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(
      options.topic.c_str(), partitions, -1, err, sizeof(err));
  if (topic == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create topic \"", options.topic, "\": ", err));
  }
  for (const auto& [name, value] : configs) {
    rd_kafka_NewTopic_set_config(topic, name.c_str(), value.c_str());
  }
  const int timeout_ms = static_cast<int>(
      std::max<int64_t>(absl::ToInt64Milliseconds(timeout), 1));
  rd_kafka_AdminOptions_t* admin =
      rd_kafka_AdminOptions_new(rk->get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(admin, timeout_ms, err,
                                            sizeof(err));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk->get());
  rd_kafka_CreateTopics(rk->get(), &topic, 1, admin, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout_ms + 1000);
  absl::Status status = absl::DeadlineExceededError(
      absl::StrCat("no answer to creating topic \"", options.topic, "\" from ",
                   options.brokers));
  if (event != nullptr) {
    if (rd_kafka_event_error(event) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      status = absl::DeadlineExceededError(absl::StrCat(
          "no answer to creating topic \"", options.topic, "\" from ",
          options.brokers, ": ", rd_kafka_event_error_string(event)));
    } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = absl::UnavailableError(
          absl::StrCat("cannot create topic \"", options.topic,
                       "\": ", rd_kafka_event_error_string(event)));
    } else {
      size_t n = 0;
      const rd_kafka_topic_result_t** results =
          rd_kafka_CreateTopics_result_topics(
              rd_kafka_event_CreateTopics_result(event), &n);
      status = absl::OkStatus();
      for (size_t i = 0; i < n; ++i) {
        const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
        if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          status = absl::AlreadyExistsError(
              absl::StrCat("topic \"", options.topic, "\" exists"));
        } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* why = rd_kafka_topic_result_error_string(results[i]);
          status = absl::UnavailableError(
              absl::StrCat("cannot create topic \"", options.topic,
                           "\": ", why ? why : rd_kafka_err2str(e)));
        }
      }
    }
    rd_kafka_event_destroy(event);
  }
  rd_kafka_AdminOptions_destroy(admin);
  rd_kafka_NewTopic_destroy(topic);
  rd_kafka_queue_destroy(queue);
  return status;
}

}  // namespace

absl::Status CreateTopic(const TopicReadOptions& options, int partitions,
                         const Properties& configs) {
  // librdkafka sends the request to the broker the metadata names as the
  // controller; in KRaft that is any live broker, and one that has just
  // died stays named until the controller fences it (broker.session.timeout.ms,
  // 9 s by default): librdkafka waits for it to come back until the request
  // times out ("Timed out waiting for controller": 2 of 6 handles made
  // right after a node of 3 was killed; an audit's start exited after 30 s).
  // So each attempt is short and from a new handle, with new metadata; an
  // answer lost after the creation comes back as AlreadyExistsError.
  constexpr absl::Duration kAttempt = absl::Seconds(6);
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::Status status;
  int attempts = 0;
  do {
    ++attempts;
    const absl::Duration left = deadline - absl::Now();
    status =
        CreateTopicOnce(options, partitions, configs, std::min(left, kAttempt));
  } while (absl::IsDeadlineExceeded(status) &&
           deadline - absl::Now() > absl::Seconds(1) &&
           !(options.stop_requested && options.stop_requested()));
  if (absl::IsDeadlineExceeded(status) && attempts > 1) {
    return absl::DeadlineExceededError(
        absl::StrCat(status.message(), " (asked ", attempts, " times in ",
                     absl::FormatDuration(options.timeout), ")"));
  }
  return status;
}

namespace {

// Each of `options.partitions`' offset at `which` (ListOffsets in
// kafka/consumer.h: one request per leader; a restore had asked each
// partition in turn, a round trip each, twice). A partition without an
// answer is an error that names it.
absl::Status TopicOffsets(rd_kafka_t* rk, const TopicReadOptions& options,
                          int64_t which, std::map<int32_t, int64_t>* out) {
  if (options.partitions.empty()) return absl::OkStatus();
  std::vector<TopicPartition> tps;
  for (int32_t p : options.partitions) tps.push_back({options.topic, p});
  std::string failure;
  auto listed = ListOffsets(rk, tps, which, options.timeout, &failure);
  if (listed.ok()) {
    for (const auto& [tp, offset] : *listed) (*out)[tp.partition] = offset;
    if (failure.empty()) return absl::OkStatus();
  }
  return absl::UnavailableError(absl::StrCat(
      "cannot read the ", which == RD_KAFKA_OFFSET_END ? "end" : "start",
      " of topic \"", options.topic, "\" from ", options.brokers, ": ",
      listed.ok() ? failure : std::string(listed.status().message())));
}

}  // namespace

absl::StatusOr<TopicEnds> DescribeTopic(const TopicReadOptions& options) {
  // The ends are the log ends: a local store's position is checked against
  // them, and one past a last stable offset held back by another thread's
  // open transaction is no reason to distrust it (and rebuild it all).
  auto handle = NewMetadataReader(options, /*read_uncommitted=*/true);
  if (!handle.ok()) return handle.status();
  const absl::Time deadline = absl::Now() + options.timeout;
  TopicEnds out;
  // The topic's metadata first, asked for: its answer carries the cluster
  // id. rd_kafka_clusterid() asks for none, it waits for metadata that
  // something else requests; on this new handle that took 1.0 s in about
  // half of the restores measured (BENCHMARKS.md, run RS), a second every
  // thread's start and every rebalance spent waiting.
  rd_kafka_topic_t* rkt =
      rd_kafka_topic_new(handle->get(), options.topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err =
      rkt == nullptr
          ? rd_kafka_last_error()
          : rd_kafka_metadata(
                handle->get(), 0, rkt, &metadata,
                static_cast<int>(absl::ToInt64Milliseconds(options.timeout)));
  if (rkt != nullptr) rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the metadata of topic \"", options.topic,
                     "\" from ", options.brokers, ": ", rd_kafka_err2str(err)));
  }
  rd_kafka_metadata_destroy(metadata);
  // It answers at once now (the id, or none from brokers whose Metadata is
  // older than v2); the rest of the timeout bounds it all the same.
  const int64_t left_ms =
      std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
  if (char* id = rd_kafka_clusterid(handle->get(), static_cast<int>(left_ms))) {
    out.cluster_id = id;
    rd_kafka_mem_free(handle->get(), id);
  }
  absl::Status s =
      TopicOffsets(handle->get(), options, RD_KAFKA_OFFSET_END, &out.ends);
  if (!s.ok()) return s;
  return out;
}

absl::Status ReadTopic(const TopicReadOptions& options,
                       absl::FunctionRef<void(const ReadRecord&)> record) {
  if (options.partitions.empty()) return absl::OkStatus();
  // No group: positions are given, nothing is committed.
  auto consumer = NewReader(options, RD_KAFKA_CONSUMER,
                            {{"isolation.level", "read_committed"},
                             {"enable.partition.eof", "true"},
                             {"enable.auto.commit", "false"},
                             {"group.id", "kpistream-restore"},
                             {"fetch.wait.max.ms", "50"},
                             {"auto.offset.reset", "earliest"}});
  if (!consumer.ok()) return consumer.status();
  rd_kafka_t* rk = consumer->get();
  // The log end, not the last stable offset: a read_committed handle would
  // be told the LSO, which a transaction that has committed but whose
  // markers are still being written holds back, and the records of that
  // commit would be missed. Reading on (read_committed) to the log end waits
  // for such a transaction to be resolved.
  auto ends = NewReader(options, RD_KAFKA_CONSUMER,
                        {{"isolation.level", "read_uncommitted"},
                         {"group.id", "kpistream-restore"}});
  if (!ends.ok()) return ends.status();
  std::map<int32_t, int64_t> lows, highs;
  absl::Status status =
      TopicOffsets(ends->get(), options, RD_KAFKA_OFFSET_BEGINNING, &lows);
  if (status.ok()) {
    status = TopicOffsets(ends->get(), options, RD_KAFKA_OFFSET_END, &highs);
  }
  std::map<int32_t, int64_t> pending;  // partition -> high watermark
  for (int32_t p : options.partitions) {
    if (!status.ok()) break;
    const int64_t low = lows.at(p), high = highs.at(p);
    auto start = options.start_offsets.find(p);
    if (high > std::max(low, start == options.start_offsets.end()
                                 ? int64_t{0}
                                 : start->second)) {
      pending[p] = high;
    }
  }
  if (status.ok() && !pending.empty()) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(pending.size()));
    for (const auto& [p, high] : pending) {
      auto start = options.start_offsets.find(p);
      rd_kafka_topic_partition_list_add(list, options.topic.c_str(), p)
          ->offset = start == options.start_offsets.end() || start->second <= 0
                         ? RD_KAFKA_OFFSET_BEGINNING
                         : start->second;
    }
    const rd_kafka_resp_err_t assigned = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (assigned != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = absl::UnavailableError(
          absl::StrCat("cannot read topic \"", options.topic,
                       "\": ", rd_kafka_err2str(assigned)));
    }
  }
  // A stall, not the whole read, runs out of time: a large changelog (a new
  // volume, a store found stale) takes as long as it takes, and a timeout
  // on the whole read failed it on every retry, from the start each time.
  absl::Time deadline = absl::Now() + options.timeout;
  while (status.ok() && !pending.empty()) {
    if (options.stop_requested && options.stop_requested()) {
      status = absl::CancelledError(
          absl::StrCat("reading topic \"", options.topic, "\": stopping"));
      break;
    }
    if (absl::Now() > deadline) {
      status = absl::DeadlineExceededError(
          absl::StrCat("topic \"", options.topic, "\": ", pending.size(),
                       " partition(s) not read to the end: no record for ",
                       absl::FormatDuration(options.timeout)));
      break;
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      auto it = pending.find(m->partition);
      if (it != pending.end() && m->offset >= it->second) pending.erase(it);
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      auto it = pending.find(m->partition);
      if (it != pending.end()) {
        // Progress: a record of a partition still to be read to its end (a
        // finished one's new records would hide another's stall).
        deadline = absl::Now() + options.timeout;
        record(ReadRecord{
            m->partition, m->offset,
            absl::string_view(static_cast<const char*>(m->key), m->key_len),
            absl::string_view(static_cast<const char*>(m->payload), m->len),
            m->payload == nullptr});
        if (m->offset + 1 >= it->second) pending.erase(it);
      }
    } else if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
               m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
               m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
      status = absl::NotFoundError(
          absl::StrCat("topic \"", options.topic, "\" (partition ",
                       m->partition, "): ", rd_kafka_message_errstr(m)));
    } else if (m->err != RD_KAFKA_RESP_ERR__TRANSPORT &&
               m->err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      status = absl::UnavailableError(
          absl::StrCat("reading topic \"", options.topic,
                       "\": ", rd_kafka_message_errstr(m)));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  return status;
}

absl::StatusOr<int> EnsureTopic(const TopicReadOptions& options, int partitions,
                                const Properties& configs) {
  // (A broker that auto-creates topics on metadata requests and ignores
  // allow.auto.create.topics, as the embedded one does, has created it here
  // with its default partition count.)
  absl::StatusOr<int> count = PartitionCount(options);
  if (!absl::IsNotFound(count.status())) return count;
  absl::Status created = CreateTopic(options, partitions, configs);
  if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
  // A new topic reaches every broker's metadata a moment after the
  // controller says it exists.
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  do {
    count = PartitionCount(options);
    if (!absl::IsNotFound(count.status())) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);
  return count;
}

}  // namespace kpistream::kafka
