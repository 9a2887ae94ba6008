#include "kafka/producer.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kafka/log.h"
#include "kafka/topic_reader.h"

namespace kpistream::kafka {

int32_t KeyPartition(absl::string_view key, int32_t partitions) {
  return rd_kafka_msg_partitioner_consistent(nullptr, key.data(), key.size(),
                                             partitions, nullptr, nullptr);
}

namespace {

// Marks the status of a record's failed delivery (IsDeliveryFailure()).
constexpr char kDeliveryFailurePayload[] =
    "type.googleapis.com/kpistream.kafka.DeliveryFailure";

absl::Status FromError(absl::string_view what, rd_kafka_error_t* error) {
  std::string message = absl::StrCat(what, ": ", rd_kafka_error_string(error));
  rd_kafka_error_destroy(error);
  return absl::UnavailableError(message);
}

// Why the transaction coordinator may not answer, as far as the brokers
// tell: a cluster with fewer brokers than its transaction state topic's
// replication factor never creates that topic, and no transaction can
// start (a single-broker cluster with the default of 3). Empty when nothing
// is found.
std::string DiagnoseTransactions(rd_kafka_t* rk) {
  constexpr char kStateTopic[] = "__transaction_state";
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, kStateTopic, nullptr);
  if (rkt == nullptr) return {};
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::StrCat("the brokers do not answer a metadata request: ",
                        rd_kafka_err2str(err));
  }
  const int brokers = md->broker_cnt;
  const int32_t first = brokers > 0 ? md->brokers[0].id : -1;
  const bool missing = md->topic_cnt != 1 || md->topics[0].err != 0 ||
                       md->topics[0].partition_cnt == 0;
  rd_kafka_metadata_destroy(md);
  if (!missing || first < 0) return {};
  auto factor = ResourceConfig(
      rk, RD_KAFKA_RESOURCE_BROKER, absl::StrCat(first),
      "transaction.state.log.replication.factor", absl::Seconds(5));
  int wanted = 0;
  if (factor.ok() && absl::SimpleAtoi(*factor, &wanted) && wanted > brokers) {
    return absl::StrCat(
        "the brokers cannot create the topic ", kStateTopic,
        " that transactions need: its transaction.state.log.replication.factor "
        "is ",
        wanted, " and the cluster has ", brokers,
        " broker(s) (set it, and transaction.state.log.min.isr, to at most ",
        brokers, " in the brokers' config, as single-broker setups do)");
  }
  return absl::StrCat("the topic ", kStateTopic,
                      " that transactions need does not exist yet (the "
                      "brokers create it for the first transaction; if it "
                      "never comes, their log says why)");
}

}  // namespace

void Producer::DeliveryCallback(rd_kafka_t*, const rd_kafka_message_t* m,
                                void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  // Purged records were given up on purpose: those of a transaction that
  // is aborted already (by AbortTransaction(), or by librdkafka, which then
  // refuses its commit), whose reports may be served once the next one is
  // open, or DropQueued()'s. Their reports say nothing of what follows.
  if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
      m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    return;
  }
  if (m->err) {
    // The open transaction must be aborted (librdkafka refuses its commit).
    if (self->in_transaction_) self->transaction_failed_ = true;
    if (self->delivery_error_.empty()) {
      self->delivery_error_ = absl::StrCat(
          "delivery to topic \"", rd_kafka_topic_name(m->rkt), "\" partition ",
          m->partition, " failed: ", rd_kafka_err2str(m->err));
    }
  } else {
    ++self->delivered_;
    if (!self->tracked_topic_.empty() &&
        self->tracked_topic_ == rd_kafka_topic_name(m->rkt)) {
      int64_t& at = self->delivered_offsets_[m->partition];
      at = std::max(at, m->offset);
    }
  }
}

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(
    const Options& options) {
  std::unique_ptr<Producer> producer(new Producer());
  producer->tracked_topic_ = options.tracked_topic;
  ClientSettings settings(RD_KAFKA_PRODUCER, options.brokers, options.client_id,
                          options.properties);
  settings.defaults = {
      // Batches of ~100 ms: the re-keying hop spreads records over every
      // partition of <group_id>-repartition, and at 5 ms a batch held two or
      // three records, each batch paying its own LZ4 frame, CRC and request
      // (20 % more CPU per event end to end, key: any). What a transaction
      // writes is visible only at its commit, which flushes, so this delays
      // nothing there; Kafka Streams' producers default to 100 ms too.
      {"linger.ms", "100"},
      {"compression.type", "lz4"},
      // Bounded memory: at most this much waits for the brokers.
      {"queue.buffering.max.kbytes", "65536"},
      {"queue.buffering.max.messages", "200000"},
  };
  settings.fixed = {{"enable.idempotence", "true"}};
  if (!options.transactional_id.empty()) {
    settings.fixed["transactional.id"] = options.transactional_id;
    if (!options.properties.count("transaction.timeout.ms")) {
      settings.fixed["transaction.timeout.ms"] =
          absl::StrCat(absl::ToInt64Milliseconds(options.transaction_timeout));
    }
  }
  settings.callbacks = [owner = producer.get()](rd_kafka_conf_t* conf) {
    rd_kafka_conf_set_opaque(conf, owner);
    rd_kafka_conf_set_dr_msg_cb(conf, &Producer::DeliveryCallback);
    rd_kafka_conf_set_error_cb(conf, &Producer::ErrorCallback);
  };
  auto rk = NewClient(settings, "producer");
  if (!rk.ok()) return rk.status();
  producer->rk_ = *std::move(rk);
  // The limit in effect (the user's message.max.bytes, or librdkafka's).
  char max_bytes[32];
  size_t max_bytes_size = sizeof(max_bytes);
  size_t parsed = 0;
  if (rd_kafka_conf_get(rd_kafka_conf(producer->rk_.get()), "message.max.bytes",
                        max_bytes, &max_bytes_size) == RD_KAFKA_CONF_OK &&
      absl::SimpleAtoi(max_bytes, &parsed) && parsed > 0) {
    producer->max_message_bytes_ = parsed;
  }
  for (const auto& [topic, properties] : options.topic_properties) {
    rd_kafka_topic_conf_t* conf = rd_kafka_topic_conf_new();
    char error[512];
    // The user's topic-level properties first (message.timeout.ms,
    // partitioner, ...: a new topic conf starts from librdkafka's defaults,
    // and left them out of every topic given properties here: an audit);
    // the client-level ones are unknown to a topic conf, skipped.
    for (const auto& [name, value] : options.properties) {
      (void)rd_kafka_topic_conf_set(conf, name.c_str(), value.c_str(), error,
                                    sizeof(error));
    }
    for (const auto& [name, value] : properties) {
      if (rd_kafka_topic_conf_set(conf, name.c_str(), value.c_str(), error,
                                  sizeof(error)) != RD_KAFKA_CONF_OK) {
        rd_kafka_topic_conf_destroy(conf);
        return absl::InvalidArgumentError(absl::StrCat(
            "topic property \"", name, "\" of topic \"", topic, "\": ", error));
      }
    }
    // Takes `conf` over, also when it fails.
    TopicPtr handle(
        rd_kafka_topic_new(producer->rk_.get(), topic.c_str(), conf));
    if (handle == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "topic \"", topic, "\": ", rd_kafka_err2str(rd_kafka_last_error())));
    }
    producer->topics_.emplace_back(topic, std::move(handle));
  }
  producer->commit_attempt_timeout_ = options.commit_attempt_timeout;
  producer->commit_timeout_ = options.commit_timeout;
  if (!options.transactional_id.empty()) {
    producer->transactional_ = true;
    // In 5 s attempts (librdkafka resumes a timed-out call), up to 60 s: a
    // coordinator that does not answer is said after the first, with what
    // the brokers tell of the cause; a stop gives up between them. One 60 s
    // call said nothing for a minute, then blamed the broker's support
    // (measured: a one-broker cluster with the default replication factor
    // of its transaction state topic, 3).
    const bool replacing = options.init_timeout == absl::InfiniteDuration();
    const absl::Time deadline = absl::Now() + options.init_timeout;
    absl::Time said = absl::Now();
    std::string diagnosis;
    for (int attempt = 1;; ++attempt) {
      rd_kafka_error_t* e =
          rd_kafka_init_transactions(producer->rk_.get(), 5000);
      if (e == nullptr) break;
      if (options.on_wait) options.on_wait();
      if (options.give_up && options.give_up()) {
        rd_kafka_error_destroy(e);
        return absl::CancelledError(absl::StrCat(
            "stopped while waiting for the transaction coordinator "
            "(transactional.id \"",
            options.transactional_id, "\")"));
      }
      if (!rd_kafka_error_is_retriable(e) || absl::Now() >= deadline) {
        return FromError(
            absl::StrCat(
                "cannot initialise Kafka transactions (transactional.id \"",
                options.transactional_id, "\") on ", options.brokers,
                !diagnosis.empty() ? absl::StrCat(": ", diagnosis)
                : replacing        ? ""
                                   : "; does the broker support them? set "
                                     "processing.guarantee: at_least_once otherwise"),
            e);
      }
      if (replacing && absl::Now() - said >= absl::Minutes(1)) {
        said = absl::Now();
        ReportKafkaEvent(
            producer->rk_.get(), 4, "INITTXN",
            absl::StrCat(
                "the new producer (transactional.id \"",
                options.transactional_id,
                "\") still waits for the "
                "transaction coordinator (",
                rd_kafka_error_string(e),
                rd_kafka_error_code(e) ==
                        RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS
                    ? ": it is still completing the fenced producer's "
                      "transaction, which waits for every output partition "
                      "to have min.insync.replicas in sync"
                    : "",
                "); still trying, until the brokers answer or a stop"));
      }
      if (attempt == 1) {
        diagnosis = DiagnoseTransactions(producer->rk_.get());
        ReportKafkaEvent(
            producer->rk_.get(), 4, "INITTXN",
            absl::StrCat("the transaction coordinator has not answered the "
                         "producer (transactional.id \"",
                         options.transactional_id, "\") for 5 s (",
                         rd_kafka_error_string(e), ")",
                         diagnosis.empty() ? "" : ": ", diagnosis,
                         replacing ? "; still trying"
                                   : absl::StrCat("; still trying, up to ",
                                                  absl::FormatDuration(
                                                      options.init_timeout))));
      }
      rd_kafka_error_destroy(e);
    }
  }
  return producer;
}

Producer::~Producer() {
  if (rk_ == nullptr) return;
  if (rd_kafka_fatal_error(rk_.get(), nullptr, 0) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Nothing it holds can be delivered any more.
    rd_kafka_purge(rk_.get(),
                   RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    return;
  }
  if (in_transaction_) {
    if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_.get(), 5000)) {
      rd_kafka_error_destroy(e);
    }
  }
  rd_kafka_flush(rk_.get(), 5000);
}

absl::Status Producer::TakeDeliveryError() {
  if (delivery_error_.empty()) return absl::OkStatus();
  absl::Status s = absl::UnavailableError(std::move(delivery_error_));
  delivery_error_.clear();
  s.SetPayload(kDeliveryFailurePayload, absl::Cord());
  return s;
}

bool IsDeliveryFailure(const absl::Status& status) {
  return status.GetPayload(kDeliveryFailurePayload).has_value();
}

absl::Status Producer::AwaitTopic(absl::string_view topic,
                                  absl::Duration timeout,
                                  absl::Duration creation_wait) {
  const absl::Time asked = absl::Now();
  absl::Status status = AskAboutTopic(topic, timeout);
  while (absl::IsNotFound(status) && absl::Now() - asked < creation_wait) {
    absl::SleepFor(absl::Milliseconds(200));
    status = AskAboutTopic(topic, timeout);
  }
  return status;
}

absl::Status Producer::AskAboutTopic(absl::string_view topic,
                                     absl::Duration timeout) {
  const std::string name(topic);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr);
  if (rkt == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "topic \"", name, "\": ", rd_kafka_err2str(rd_kafka_last_error())));
  }
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_.get(), 0, rkt, &md,
                        static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  absl::Status status;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::UnavailableError(
        absl::StrCat("cannot read the metadata of topic \"", name,
                     "\": ", rd_kafka_err2str(err)));
  } else if (md->topic_cnt != 1 || md->topics[0].err != 0) {
    status = absl::NotFoundError(
        absl::StrCat("topic \"", name, "\": ",
                     md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err)
                                        : "not in the metadata"));
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return status;
}

absl::Status Producer::Produce(absl::string_view topic, absl::string_view key,
                               absl::string_view value, const Headers& headers,
                               int32_t partition) {
  if (!delivery_error_.empty()) return TakeDeliveryError();
  if (absl::Status s = BeginTransaction(); !s.ok()) return s;
  const int32_t to = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
  rd_kafka_topic_t* rkt = TopicHandle(topic);
  if (rkt == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot produce to topic \"", topic,
                     "\": ", rd_kafka_err2str(rd_kafka_last_error())));
  }
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
          rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(to),
          RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
          RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(hdrs);
    } else {
      err = rd_kafka_producev(
          rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(to),
          RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
    // Refused because an earlier record of the transaction failed (its
    // delivery report may not have been served yet).
    if (err == RD_KAFKA_RESP_ERR__STATE && in_transaction_) {
      transaction_failed_ = true;
    }
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
      return absl::OutOfRangeError(absl::StrCat(
          "cannot produce to topic \"", topic, "\": a record of ",
          key.size() + value.size(), " bytes of key and value is larger than ",
          "message.max.bytes (", max_message_bytes_, ")"));
    }
    if (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {  // e.g. deleted
      return absl::NotFoundError(absl::StrCat(
          "cannot produce to topic \"", topic, "\": ", rd_kafka_err2str(err)));
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return absl::UnavailableError(absl::StrCat(
          "cannot produce to topic \"", topic, "\": ", rd_kafka_err2str(err)));
    }
    // Backpressure: wait for the brokers to take some of the queue (or,
    // asked to stop, give up: what is not sent is not committed either).
    if (give_up_ && give_up_()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot produce to topic \"", topic,
          "\": the producer's queue is full and a stop is requested"));
    }
    rd_kafka_poll(rk_.get(), 50);
    if (!delivery_error_.empty()) return TakeDeliveryError();
    if (on_wait_) on_wait_();
  }
}

rd_kafka_topic_t* Producer::TopicHandle(absl::string_view topic) {
  for (const auto& [name, handle] : topics_) {
    if (name == topic) return handle.get();
  }
  const std::string name(topic);
  TopicPtr handle(rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr));
  if (handle == nullptr) return nullptr;
  topics_.emplace_back(name, std::move(handle));
  return topics_.back().second.get();
}

std::string Producer::FatalError() const {
  char reason[512];
  reason[0] = '\0';
  const rd_kafka_resp_err_t err =
      rd_kafka_fatal_error(rk_.get(), reason, sizeof(reason));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return "";
  return reason[0] != '\0' ? std::string(reason) : rd_kafka_err2str(err);
}

absl::Status Producer::BeginTransaction() {
  if (!transactional_ || in_transaction_) return absl::OkStatus();
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(rk_.get())) {
    return FromError("cannot begin a Kafka transaction", e);
  }
  in_transaction_ = true;
  transaction_began_at_ = absl::Now();
  return absl::OkStatus();
}

absl::Status Producer::CommitTransaction(Consumer* consumer,
                                         const Offsets& offsets) {
  if (!transactional_) return absl::OkStatus();
  if (!in_transaction_ && (offsets.empty() || offsets == committed_offsets_)) {
    return absl::OkStatus();  // nothing new to write
  }
  if (absl::Status s = BeginTransaction(); !s.ok()) return s;
  if (!offsets.empty()) {
    rd_kafka_topic_partition_list_t* list = ToCommitList(offsets);
    rd_kafka_consumer_group_metadata_t* group =
        rd_kafka_consumer_group_metadata(consumer->handle());
    rd_kafka_error_t* e =
        rd_kafka_send_offsets_to_transaction(rk_.get(), list, group, 10000);
    rd_kafka_consumer_group_metadata_destroy(group);
    rd_kafka_topic_partition_list_destroy(list);
    if (e)
      return AbortOrFail("cannot add the input offsets to the transaction", e);
  }
  // A commit that times out goes on in the background: librdkafka resumes
  // it when called again, and refuses to abort it (the commit is under way;
  // an abort attempted here failed, and stopped the engine). So it is
  // waited for, in attempts, with the wait callback between them (the
  // thread is alive: it waits on its output), up to commit_timeout_.
  const absl::Time commit_started = absl::Now();
  rd_kafka_error_t* e = nullptr;
  while (true) {
    e = rd_kafka_commit_transaction(
        rk_.get(),
        static_cast<int>(absl::ToInt64Milliseconds(commit_attempt_timeout_)));
    if (e == nullptr || !rd_kafka_error_is_retriable(e) ||
        rd_kafka_error_txn_requires_abort(e) || rd_kafka_error_is_fatal(e)) {
      break;
    }
    const bool give_up = give_up_ && give_up_();
    if (give_up || absl::Now() - commit_started >= commit_timeout_) {
      const std::string message = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
      return absl::UnavailableError(absl::StrCat(
          "cannot commit the Kafka transaction: not confirmed by the brokers "
          "within ",
          absl::FormatDuration(give_up ? absl::Now() - commit_started
                                       : commit_timeout_),
          give_up ? ", stopping" : "", " (", message,
          "); it is resolved (committed or aborted) when the producer's "
          "transactional.id starts again"));
    }
    rd_kafka_error_destroy(e);
    if (on_wait_) on_wait_();
  }
  if (e) return AbortOrFail("cannot commit the Kafka transaction", e);
  in_transaction_ = false;
  transaction_failed_ = false;
  ++transactions_committed_;
  if (!offsets.empty()) committed_offsets_ = offsets;
  return TakeDeliveryError();
}

absl::Status Producer::AbortTransaction() {
  if (!transactional_ || !in_transaction_) return absl::OkStatus();
  if (rd_kafka_error_t* e = rd_kafka_abort_transaction(rk_.get(), 30000)) {
    return FromError("cannot abort the Kafka transaction", e);
  }
  in_transaction_ = false;
  transaction_failed_ = false;
  delivery_error_.clear();
  delivered_offsets_.clear();
  return absl::OkStatus();
}

absl::Status Producer::AbortOrFail(absl::string_view what,
                                   rd_kafka_error_t* error) {
  // A group rebalance or a timed-out request makes the transaction abortable:
  // abort it, so that neither its records nor its offsets become visible and
  // the input since the last commit is read again.
  const bool abortable =
      rd_kafka_error_txn_requires_abort(error) ||
      rd_kafka_error_is_retriable(error) ||
      rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT;
  // librdkafka's "N message(s) failed delivery (see individual delivery
  // reports)" names no topic: the first report's, which does (an audit: in
  // an output partition's outage no line said which topic).
  std::string message = absl::StrCat(what, ": ", rd_kafka_error_string(error));
  if (!delivery_error_.empty()) {
    absl::StrAppend(&message, " (the first: ", delivery_error_, ")");
  }
  const bool fatal = rd_kafka_error_is_fatal(error);
  rd_kafka_error_destroy(error);
  if (!abortable || fatal) return absl::UnavailableError(message);
  // An abort the brokers do not confirm (none reachable: an outage) is
  // resumed in attempts, as a commit is, the thread's heartbeat kept
  // between them (one 30 s call held the thread silent, and said "ready",
  // until it failed and stopped the engine), up to commit_timeout_ or a
  // stop.
  const absl::Time abort_started = absl::Now();
  while (rd_kafka_error_t* e = rd_kafka_abort_transaction(
             rk_.get(), static_cast<int>(absl::ToInt64Milliseconds(
                            commit_attempt_timeout_)))) {
    const bool retriable =
        rd_kafka_error_is_retriable(e) && !rd_kafka_error_is_fatal(e);
    const bool give_up = give_up_ && give_up_();
    if (!retriable || give_up ||
        absl::Now() - abort_started >= commit_timeout_) {
      return FromError(
          absl::StrCat(message, "; aborting it ",
                       retriable
                           ? absl::StrCat("was not confirmed within ",
                                          absl::FormatDuration(absl::Trunc(
                                              absl::Now() - abort_started,
                                              absl::Seconds(1))),
                                          give_up ? ", stopping" : "",
                                          " (the brokers cannot be "
                                          "reached? check "
                                          "kafka.brokers); it is "
                                          "resolved when the "
                                          "transactional.id starts "
                                          "again")
                           : "failed too"),
          e);
    }
    rd_kafka_error_destroy(e);
    if (on_wait_) on_wait_();
  }
  in_transaction_ = false;
  transaction_failed_ = false;
  delivery_error_.clear();
  delivered_offsets_.clear();
  return absl::AbortedError(
      absl::StrCat(message, "; the transaction was aborted"));
}

absl::Status Producer::Flush(absl::Duration timeout) {
  // A second at a time, telling the waiter between (its heartbeat, its
  // gauges): one call of `timeout` (30 s) left /readyz saying the thread
  // had not reported for 35 s and its consumer lag flat (an audit).
  const absl::Time deadline = absl::Now() + timeout;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    err = rd_kafka_flush(rk_.get(),
                         static_cast<int>(absl::ToInt64Milliseconds(std::clamp(
                             left, absl::ZeroDuration(), absl::Seconds(1)))));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || left <= absl::Seconds(1)) break;
    if (on_wait_) on_wait_();
  }
  // A record given up is the error to report, whatever else still waits.
  if (!delivery_error_.empty()) return TakeDeliveryError();
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::DeadlineExceededError(absl::StrCat(
        "output records not acknowledged within ",
        absl::FormatDuration(timeout), ": ", rd_kafka_err2str(err)));
  }
  return TakeDeliveryError();
}

void Producer::ErrorCallback(rd_kafka_t* rk, int err, const char* reason,
                             void* opaque) {
  Producer* self = static_cast<Producer*>(opaque);
  {
    std::lock_guard<std::mutex> lock(self->error_mu_);
    self->last_error_ = absl::StrCat(
        reason, " (", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
        ")");
    self->last_error_at_ = absl::Now();
  }
  // What librdkafka logs for an error event when no callback takes it.
  ReportKafkaEvent(rk, 3, "ERROR",
                   absl::StrCat(rd_kafka_name(rk), ": ", reason));
}

std::string Producer::last_error() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return last_error_;
}

absl::Time Producer::last_error_at() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return last_error_at_;
}

}  // namespace kpistream::kafka
