#include "kafka/consumer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace kpistream::kafka {
namespace {

std::vector<TopicPartition> FromList(
    const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

rd_kafka_topic_partition_list_t* ToList(
    const std::vector<TopicPartition>& partitions) {
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
  for (const TopicPartition& tp : partitions) {
    rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition);
  }
  return list;
}

}  // namespace

Properties FetchBufferProperties(int64_t bytes, const Properties& user) {
  // librdkafka's ranges: queued.max.messages.kbytes 1..2097151,
  // queued.min.messages 1..10000000, fetch.max.bytes up to 2147483135.
  const int64_t queue =
      std::clamp<int64_t>(bytes / 4, 1024, int64_t{2097151} * 1024);
  int64_t message_max = 1000000;  // message.max.bytes' default
  if (auto it = user.find("message.max.bytes"); it != user.end()) {
    int64_t v = 0;
    if (absl::SimpleAtoi(it->second, &v)) {
      message_max = std::clamp<int64_t>(v, 1, int64_t{2147483135});
    }
  }
  Properties derived = {
      {"queued.max.messages.kbytes", absl::StrCat(queue / 1024)},
      {"queued.min.messages",
       absl::StrCat(std::clamp<int64_t>(queue / 256, 1000, 10000000))},
      {"fetch.max.bytes", absl::StrCat(std::clamp<int64_t>(
                              bytes / 16, message_max, int64_t{2147483135}))},
  };
  for (auto it = derived.begin(); it != derived.end();) {
    it = user.count(it->first) > 0 ? derived.erase(it) : std::next(it);
  }
  return derived;
}

absl::Duration MaxFetchWaitFor(absl::Duration min_commit_interval) {
  return std::clamp(min_commit_interval / 5, absl::Milliseconds(10),
                    absl::Milliseconds(500));
}

rd_kafka_topic_partition_list_t* ToPartitionList(const Offsets& offsets) {
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
  for (const auto& [tp, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition)
        ->offset = offset;
  }
  return list;
}

rd_kafka_topic_partition_list_t* ToCommitList(const Offsets& offsets) {
  rd_kafka_topic_partition_list_t* list = ToPartitionList(offsets);
  const size_t size = sizeof(kCommitMetadata) - 1;
  for (int i = 0; i < list->cnt; ++i) {
    // librdkafka frees it with the list (rd_free, i.e. free()).
    void* metadata = std::malloc(size);
    if (metadata == nullptr) continue;  // committed without: as by hand
    std::memcpy(metadata, kCommitMetadata, size);
    list->elems[i].metadata = metadata;
    list->elems[i].metadata_size = size;
  }
  return list;
}

bool HasCommitMetadata(const rd_kafka_topic_partition_t& committed) {
  const size_t size = sizeof(kCommitMetadata) - 1;
  return committed.metadata != nullptr && committed.metadata_size == size &&
         std::memcmp(committed.metadata, kCommitMetadata, size) == 0;
}

absl::StatusOr<Offsets> ListOffsets(rd_kafka_t* rk,
                                    const std::vector<TopicPartition>& tps,
                                    int64_t which, absl::Duration timeout,
                                    std::string* failure) {
  Offsets query;
  for (const TopicPartition& tp : tps) query.push_back({tp, which});
  rd_kafka_topic_partition_list_t* list = ToPartitionList(query);
  const rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(
      rk, list, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  Offsets out;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& e = list->elems[i];
      if (e.err == RD_KAFKA_RESP_ERR_NO_ERROR && e.offset >= 0) {
        out.push_back({TopicPartition{e.topic, e.partition}, e.offset});
      } else if (failure != nullptr && failure->empty()) {
        *failure = absl::StrCat(e.topic, "[", e.partition, "]: ",
                                e.err != RD_KAFKA_RESP_ERR_NO_ERROR
                                    ? rd_kafka_err2str(e.err)
                                    : "no offset");
      }
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The topics asked about (a deleted input topic's partitions said only
    // "Local: Unknown partition" on /readyz, every 5 s).
    std::set<std::string> names;
    for (const TopicPartition& tp : tps) names.insert(tp.topic);
    std::string topics;
    for (const std::string& name : names) {
      absl::StrAppend(&topics, topics.empty() ? "" : ", ", "\"", name, "\"");
    }
    return absl::UnavailableError(
        absl::StrCat("cannot list the offsets of the partitions of ", topics,
                     ": ", rd_kafka_err2str(err),
                     err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                             err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                         ? " (was the topic deleted?)"
                         : ""));
  }
  return out;
}

void Consumer::RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t* partitions,
                                 void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  // NULL while the consumer closes (the revocation of an assignment that
  // came just before the close): strcmp on it crashed the process.
  if (const char* protocol = rd_kafka_rebalance_protocol(rk)) {
    self->cooperative_ = std::strcmp(protocol, "COOPERATIVE") == 0;
  }
  const bool cooperative = self->cooperative_;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    std::map<TopicPartition, int64_t> start;
    for (const TopicPartition& tp : FromList(partitions)) self->ends_.erase(tp);
    if (self->closed_) {
      // Taken only to be given back by the close, at the group's offsets.
      for (const TopicPartition& tp : FromList(partitions)) {
        self->unreported_.insert(tp);
      }
    } else {
      start = self->listener_->OnAssigned(FromList(partitions));
    }
    for (int i = 0; i < partitions->cnt; ++i) {
      rd_kafka_topic_partition_t& e = partitions->elems[i];
      auto it = start.find(TopicPartition{e.topic, e.partition});
      e.offset = it != start.end() && it->second >= 0 ? it->second
                                                      : RD_KAFKA_OFFSET_INVALID;
    }
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, partitions)) {
        self->NoteError(
            absl::StrCat("incremental assign: ", rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, partitions);
    }
    if (self->pause_new_partitions_ && !self->closed_) {
      rd_kafka_pause_partitions(rk, partitions);
    }
    return;
  }
  std::vector<TopicPartition> gone = FromList(partitions);
  for (const TopicPartition& tp : gone) self->ends_.erase(tp);
  const size_t all = gone.size();
  gone.erase(std::remove_if(gone.begin(), gone.end(),
                            [&](const TopicPartition& tp) {
                              return self->unreported_.erase(tp) > 0;
                            }),
             gone.end());
  if (gone.empty() && all > 0) {
    // Only partitions the listener never had.
  } else if (rd_kafka_assignment_lost(rk)) {
    self->listener_->OnLost(gone);
  } else {
    self->listener_->OnRevoked(gone);
  }
  if (cooperative) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, partitions)) {
      rd_kafka_error_destroy(e);
    }
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

void Consumer::ErrorCallback(rd_kafka_t*, int err, const char* reason,
                             void* opaque) {
  static_cast<Consumer*>(opaque)->NoteError(absl::StrCat(
      reason, " (", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
      ")"));
}

void Consumer::NoteError(std::string error) {
  last_error_ = std::move(error);
  last_error_at_ = absl::Now();
}

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(
    const Options& options, Listener* listener) {
  std::unique_ptr<Consumer> consumer(new Consumer());
  consumer->listener_ = listener;
  consumer->pause_new_partitions_ = options.pause_new_partitions;
  ClientSettings settings(RD_KAFKA_CONSUMER, options.brokers, options.client_id,
                          options.properties);
  settings.defaults = {
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", "cooperative-sticky"},
      // Where a partition's reading reached its end (Poll(), Lag()).
      {"enable.partition.eof", "true"},
      // A stream thread restores a partition's state between two polls:
      // rebuilding a lost local store reads every day record of the
      // changelog (~7 s per million), longer than librdkafka's 5 minutes
      // for a large site, and a member that exceeds it loses its
      // partitions and restores them again. A thread that hangs is caught
      // by /healthz instead (its heartbeat, kept during a restore).
      {"max.poll.interval.ms", "3600000"},
      // Partitions added to an input topic are seen at a metadata refresh
      // (librdkafka's every 5 minutes, as Kafka's clients): by hand on
      // Kafka 4.4 the added partitions' records waited 5 minutes, and live
      // traffic in them would have come about as late as
      // processing.allowed_lateness (5m) allows. A Metadata request for
      // the subscribed topics every 30 s costs next to nothing.
      {"topic.metadata.refresh.interval.ms", "30000"},
  };
  if (options.fetch_buffer > 0) {
    settings.defaults.merge(
        FetchBufferProperties(options.fetch_buffer, options.properties));
  }
  if (options.max_fetch_wait > absl::ZeroDuration()) {
    settings.defaults["fetch.wait.max.ms"] = absl::StrCat(std::max<int64_t>(
        1, absl::ToInt64Milliseconds(options.max_fetch_wait)));
  }
  // Offsets are the engine's to commit, and only committed records count.
  settings.fixed = {{"group.id", options.group_id},
                    {"enable.auto.commit", "false"},
                    {"enable.auto.offset.store", "false"},
                    {"isolation.level", "read_committed"}};
  if (!options.instance_id.empty()) {
    settings.fixed["group.instance.id"] = options.instance_id;
  }
  settings.callbacks = [owner = consumer.get()](rd_kafka_conf_t* conf) {
    rd_kafka_conf_set_opaque(conf, owner);
    rd_kafka_conf_set_rebalance_cb(conf, &Consumer::RebalanceCallback);
    rd_kafka_conf_set_error_cb(conf, &Consumer::ErrorCallback);
  };
  auto rk = NewClient(settings, "consumer");
  if (!rk.ok()) return rk.status();
  consumer->rk_ = *std::move(rk);
  // The protocol until librdkafka says (no rebalance callback runs before
  // the first poll): the strategy in effect, the user's or the default.
  char strategy[256] = "";
  size_t size = sizeof(strategy);
  if (rd_kafka_conf_get(rd_kafka_conf(consumer->rk_.get()),
                        "partition.assignment.strategy", strategy,
                        &size) == RD_KAFKA_CONF_OK) {
    consumer->cooperative_ = absl::string_view(strategy).find("cooperative") !=
                             absl::string_view::npos;
  }
  rd_kafka_poll_set_consumer(consumer->rk_.get());
  consumer->topics_ = options.topics;
  if (options.subscribe) {
    if (absl::Status s = consumer->Subscribe(); !s.ok()) return s;
  }
  return consumer;
}

absl::Status Consumer::Subscribe() {
  rd_kafka_topic_partition_list_t* topics =
      rd_kafka_topic_partition_list_new(static_cast<int>(topics_.size()));
  for (const std::string& topic : topics_) {
    rd_kafka_topic_partition_list_add(topics, topic.c_str(),
                                      RD_KAFKA_PARTITION_UA);
  }
  const rd_kafka_resp_err_t sub = rd_kafka_subscribe(rk_.get(), topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (sub != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat(
        "cannot subscribe to the input topics: ", rd_kafka_err2str(sub)));
  }
  return absl::OkStatus();
}

Consumer::~Consumer() { Close(); }

void Consumer::Poll(size_t max, absl::Duration timeout,
                    std::vector<Message>* out) {
  // One message per call, not rd_kafka_consume_batch_queue(): librdkafka
  // before 2.1.0 can skip or repeat offsets in its batch API around a seek,
  // pause, resume or rebalance (its 2.0 release notes, known issues), which
  // an exactly-once engine cannot afford. The single-message path drops
  // messages of an outdated position reliably.
  out->clear();
  int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  while (out->size() < max) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), wait_ms);
    if (m == nullptr) break;
    wait_ms = 0;  // the first waits, the rest only take what is there
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->rkt != nullptr) {
      // Every record before `offset` was handed out before this event: what
      // lies between the last of them and `offset` are transaction markers,
      // which librdkafka skips (Lag()). Kept only after a seek (Sought()):
      // before it a stream thread drops what it reads, to read it again
      // from where its restore seeks to.
      const auto end =
          ends_.find(TopicPartition{rd_kafka_topic_name(m->rkt), m->partition});
      if (end != ends_.end()) end->second = m->offset;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        NoteError(absl::StrCat(
            rd_kafka_message_errstr(m), m->rkt ? " (topic " : "",
            m->rkt ? rd_kafka_topic_name(m->rkt) : "", m->rkt ? ")" : ""));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    out->emplace_back(m);
  }
}

void Consumer::Lag(const Offsets& positions, std::vector<int64_t>* lags) {
  lags->assign(positions.size(), -1);
  for (size_t i = 0; i < positions.size(); ++i) {
    const auto& [tp, position] = positions[i];
    int64_t low = 0, high = 0;
    if (rd_kafka_get_watermark_offsets(rk_.get(), tp.topic.c_str(),
                                       tp.partition, &low,
                                       &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      int64_t from = position >= 0 ? position : std::max<int64_t>(low, 0);
      // Read to its end: a transaction's commit marker after the last record
      // (an exactly-once producer upstream, the engine's own repartition
      // topic) is not a message waiting.
      if (const auto end = ends_.find(tp); end != ends_.end()) {
        from = std::max(from, end->second);
      }
      (*lags)[i] = high > from ? high - from : 0;
    }
  }
}

int64_t Consumer::FirstRetained(const TopicPartition& tp) const {
  int64_t low = -1, high = -1;
  if (rd_kafka_get_watermark_offsets(rk_.get(), tp.topic.c_str(), tp.partition,
                                     &low,
                                     &high) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return -1;
  }
  return low >= 0 ? low : -1;
}

void Consumer::ForgetEnds(const Offsets& positions) {
  for (const auto& [tp, position] : positions) ends_.erase(tp);
}

void Consumer::Sought(const Offsets& positions) {
  for (const auto& [tp, position] : positions) ends_[tp] = -1;
}

absl::Status Consumer::CommitSync(const Offsets& offsets,
                                  absl::Duration timeout) {
  if (offsets.empty()) return absl::OkStatus();
  rd_kafka_topic_partition_list_t* list = ToCommitList(offsets);
  // The answer comes as an OFFSET_COMMIT event on a queue of its own
  // (which librdkafka keeps alive for an answer after the wait gave up).
  rd_kafka_queue_t* answers = rd_kafka_queue_new(rk_.get());
  rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(rk_.get(), list, answers, nullptr, nullptr);
  rd_kafka_topic_partition_list_destroy(list);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_event_t* answer = rd_kafka_queue_poll(
        answers, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    if (answer == nullptr) {
      rd_kafka_queue_destroy(answers);
      return absl::DeadlineExceededError(absl::StrCat(
          "offset commit not answered within ", absl::FormatDuration(timeout),
          " (the group coordinator is unreachable?)"));
    }
    err = rd_kafka_event_error(answer);
    rd_kafka_event_destroy(answer);
  }
  rd_kafka_queue_destroy(answers);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR &&
      err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return absl::UnavailableError(
        absl::StrCat("offset commit failed: ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

void Consumer::Pause(const std::vector<TopicPartition>& partitions) {
  if (partitions.empty()) return;
  rd_kafka_topic_partition_list_t* list = ToList(partitions);
  rd_kafka_pause_partitions(rk_.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
}

void Consumer::Resume(const std::vector<TopicPartition>& partitions) {
  if (partitions.empty()) return;
  rd_kafka_topic_partition_list_t* list = ToList(partitions);
  rd_kafka_resume_partitions(rk_.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
}

void Consumer::Close() {
  if (closed_ || rk_ == nullptr) return;
  closed_ = true;
  // librdkafka 2.0.2 hangs in close when the group's assignment waits in
  // the queue unserved as the close begins (e.g. it came while the engine
  // committed before stopping, or during a start that failed): the close
  // revokes everything, serves that assignment as an unassign, and can be
  // left waiting forever for an assign call (librdkafka #4527, fixed in
  // 2.4.0). Serving what waits first leaves only the close's own revocation.
  // A poll with no wait serves every callback ahead of the first message
  // and returns NULL once the queue is empty.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), 0);
    if (m == nullptr) break;
    rd_kafka_message_destroy(m);  // not processed: its offset stays
  }
  rd_kafka_consumer_close(rk_.get());
}

}  // namespace kpistream::kafka
