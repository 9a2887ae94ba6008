#include "engine/kafka_io.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cmd/log.h"

namespace kpistream {

bool RenewalBudget::Spend(absl::Time now, bool excused) {
  spent_.erase(std::remove_if(spent_.begin(), spent_.end(),
                              [&](absl::Time t) { return now - t > kWindow; }),
               spent_.end());
  if (excused) return true;
  if (static_cast<int>(spent_.size()) >= kMax) return false;
  spent_.push_back(now);
  return true;
}

absl::Duration RenewalBudget::Backoff() const {
  const int earlier = std::max(static_cast<int>(spent_.size()) - 1, 0);
  return kFirstBackoff * (1 << earlier);
}

absl::StatusOr<std::unique_ptr<KafkaStreamInput>> KafkaStreamInput::Create(
    const kafka::Consumer::Options& options, StreamInput::Listener* listener) {
  std::unique_ptr<KafkaStreamInput> input(new KafkaStreamInput());
  input->listener_ = listener;
  if (auto it = options.properties.find("auto.offset.reset");
      it != options.properties.end()) {
    input->reset_policy_ = it->second;
  }
  // Each partition read from where its restore seeks it (Seek()), not
  // fetched before (kafka::Consumer::Options).
  kafka::Consumer::Options paused = options;
  paused.pause_new_partitions = true;
  auto consumer = kafka::Consumer::Create(paused, input.get());
  if (!consumer.ok()) return consumer.status();
  input->consumer_ = *std::move(consumer);
  input->options_ = paused;
  input->options_.subscribe = true;  // a renewed consumer joins at once
  return input;
}

KafkaStreamInput::~KafkaStreamInput() {
  if (consumer_ != nullptr) consumer_->Close();
}

void KafkaStreamInput::Poll(
    size_t max, absl::Duration timeout,
    absl::FunctionRef<void(const kafka::Record&)> sink) {
  if (!fatal_.ok()) return;
  consumer_->Poll(max, timeout, &batch_);
  for (const kafka::Message& m : batch_) sink(kafka::Record::Of(m.get()));
  batch_.clear();  // the messages, not the capacity
  RenewIfFatal();
}

void KafkaStreamInput::RenewIfFatal() {
  char reason[512];
  reason[0] = '\0';
  if (rd_kafka_fatal_error(consumer_->handle(), reason, sizeof(reason)) ==
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return;
  }
  if (!renewals_.Spend(absl::Now())) {
    fatal_ = absl::FailedPreconditionError(absl::StrCat(
        "the Kafka consumer of group \"", options_.group_id, "\" (",
        options_.instance_id.empty()
            ? std::string("no group.instance.id")
            : absl::StrCat("group.instance.id \"", options_.instance_id, "\""),
        ") failed ", renewals_.refused_count(), " times within ",
        absl::FormatDuration(RenewalBudget::kWindow), ": ", reason,
        "; is another process running with the same "
        "processing.instance_id?"));
    return;
  }
  const absl::Duration backoff = renewals_.Backoff();
  KPI_LOG_WARN(
      "kafka: the consumer of group \"%s\" cannot go on: %s; replacing it "
      "in %s (its %d partition(s) are dropped without a commit and come "
      "back through a rebalance)",
      options_.group_id, reason, absl::FormatDuration(backoff),
      static_cast<int>(assigned_.size()));
  absl::SleepFor(backoff);
  const std::vector<TopicPartition> lost(assigned_.begin(), assigned_.end());
  assigned_.clear();
  listener_->OnLost(lost);
  // The new one first: if it cannot be made, the old one stays (dead, but
  // answering) and fatal() says why.
  auto renewed = kafka::Consumer::Create(options_, this);
  if (!renewed.ok()) {
    fatal_ =
        absl::Status(renewed.status().code(),
                     absl::StrCat("replacing the failed Kafka consumer (",
                                  reason, "): ", renewed.status().message()));
    return;
  }
  renewing_ = true;  // the old one's closing callbacks are not passed on
  consumer_ = *std::move(renewed);
  renewing_ = false;
}

absl::StatusOr<Offsets> KafkaStreamInput::EndOffsets(
    const std::vector<TopicPartition>& partitions, absl::Duration timeout) {
  if (partitions.empty()) return Offsets{};
  return kafka::ListOffsets(consumer_->handle(), partitions,
                            RD_KAFKA_OFFSET_END, timeout);
}

absl::StatusOr<Offsets> KafkaStreamInput::StartOffsets(
    const std::vector<TopicPartition>& partitions, absl::Duration timeout) {
  if (partitions.empty()) return Offsets{};
  return kafka::ListOffsets(consumer_->handle(), partitions,
                            RD_KAFKA_OFFSET_BEGINNING, timeout);
}

absl::StatusOr<std::map<TopicPartition, int64_t>> KafkaStreamInput::StartsOf(
    const std::vector<TopicPartition>& partitions, absl::Duration timeout) {
  std::map<TopicPartition, int64_t> resolved;
  if (partitions.empty()) return resolved;
  rd_kafka_t* rk = consumer_->handle();
  Offsets query;
  for (const TopicPartition& tp : partitions) query.push_back({tp, 0});
  rd_kafka_topic_partition_list_t* committed = kafka::ToPartitionList(query);
  const rd_kafka_resp_err_t err = rd_kafka_committed(
      rk, committed, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < committed->cnt;
       ++i) {
    const rd_kafka_topic_partition_t& c = committed->elems[i];
    const TopicPartition tp{c.topic, c.partition};
    if (c.offset >= 0) {
      resolved[tp] = c.offset;
      group_offsets_[tp] = {c.offset, kafka::HasCommitMetadata(c)};
    } else {
      group_offsets_.erase(tp);
    }
  }
  rd_kafka_topic_partition_list_destroy(committed);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat(
        "cannot read the group's committed offsets: ", rd_kafka_err2str(err)));
  }
  // No committed offset: the reset policy, made concrete so that the
  // engine knows where it starts.
  std::vector<TopicPartition> reset;
  for (const TopicPartition& tp : partitions) {
    if (!resolved.count(tp)) reset.push_back(tp);
  }
  if (reset.empty()) return resolved;
  // librdkafka's names for the end (the others, and its default, are the
  // start; `error` too: the engine always knows where it starts).
  const bool end = reset_policy_ == "latest" || reset_policy_ == "largest" ||
                   reset_policy_ == "end";
  auto listed = kafka::ListOffsets(
      rk, reset, end ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING,
      timeout);
  if (!listed.ok()) return listed.status();
  for (const auto& [tp, offset] : *listed) resolved[tp] = offset;
  for (const TopicPartition& tp : reset) {
    if (!resolved.count(tp)) {
      return absl::UnavailableError(
          absl::StrCat("cannot find where to start reading ", tp.topic, "[",
                       tp.partition, "]: its leader did not answer"));
    }
  }
  return resolved;
}

absl::StatusOr<Offsets> KafkaStreamInput::Seek(const Offsets& offsets) {
  if (offsets.empty()) return Offsets{};
  rd_kafka_t* rk = consumer_->handle();
  // Negative: the group's committed offset, or the reset policy.
  std::vector<TopicPartition> unset;
  for (const auto& [tp, offset] : offsets) {
    if (offset < 0) unset.push_back(tp);
  }
  auto starts = StartsOf(unset, absl::Seconds(30));
  if (!starts.ok()) return starts.status();
  const std::map<TopicPartition, int64_t>& resolved = *starts;
  Offsets targets;
  for (const auto& [tp, offset] : offsets) {
    targets.push_back({tp, offset >= 0 ? offset : resolved.at(tp)});
  }
  // Synchronous: once it returns, every record the consumer hands out is
  // from the new position (what was fetched before is discarded).
  consumer_->ForgetEnds(targets);
  rd_kafka_topic_partition_list_t* list = kafka::ToPartitionList(targets);
  absl::Status status;
  if (rd_kafka_error_t* e = rd_kafka_seek_partitions(
          rk, list, kafka::SeekTimeoutArgument(absl::Seconds(30)))) {
    status = absl::UnavailableError(absl::StrCat(
        "cannot seek the input partitions: ", rd_kafka_error_string(e)));
    rd_kafka_error_destroy(e);
  }
  for (int i = 0; status.ok() && i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR &&
        list->elems[i].err != RD_KAFKA_RESP_ERR__IN_PROGRESS) {
      status = absl::UnavailableError(absl::StrCat(
          "cannot seek ", list->elems[i].topic, "[", list->elems[i].partition,
          "]: ", rd_kafka_err2str(list->elems[i].err)));
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  if (!status.ok()) return status;
  consumer_->Sought(targets);
  std::vector<TopicPartition> sought;
  for (const auto& [tp, offset] : targets) sought.push_back(tp);
  consumer_->Resume(sought);  // paused since they were assigned
  return targets;
}

std::map<TopicPartition, int64_t> KafkaStreamInput::OnAssigned(
    const std::vector<TopicPartition>& partitions) {
  if (renewing_) return {};
  assigned_.insert(partitions.begin(), partitions.end());
  listener_->OnAssigned(partitions);
  // The thread seeks each partition once it has restored its state; until
  // then it starts where the group committed, or at the reset policy's
  // offset, given as a number. Left to librdkafka (2.0), a partition without
  // a committed offset is reset by an offset query of its own: when the
  // thread's seek overtakes that query, its answer is dropped as outdated
  // and the query asked again 500 ms later, whose answer then moves the
  // position away from the seek's (librdkafka issues 2256, 5345). With
  // `latest`, the records written in between are skipped (most likely why
  // the Kafka variant of RestartTest.BufferedEventsOfDeletedRecords... once
  // never read its two records); with `earliest`, a partition resumed from
  // a checkpoint the group has no committed offset for would be read again
  // from its start.
  auto starts = StartsOf(partitions, kAssignLookupTimeout);
  if (!starts.ok()) {
    KPI_LOG_WARN(
        "kafka: where to start reading the %d newly assigned partition(s) "
        "is left to the consumer: %s",
        static_cast<int64_t>(partitions.size()), starts.status().message());
    return {};
  }
  return *std::move(starts);
}

void KafkaStreamInput::OnRevoked(
    const std::vector<TopicPartition>& partitions) {
  if (renewing_) return;
  for (const TopicPartition& tp : partitions) {
    assigned_.erase(tp);
    group_offsets_.erase(tp);
  }
  listener_->OnRevoked(partitions);
}

void KafkaStreamInput::OnLost(const std::vector<TopicPartition>& partitions) {
  if (renewing_) return;
  for (const TopicPartition& tp : partitions) {
    assigned_.erase(tp);
    group_offsets_.erase(tp);
  }
  listener_->OnLost(partitions);
}

absl::StatusOr<std::unique_ptr<KafkaStreamOutput>> KafkaStreamOutput::Create(
    const kafka::Producer::Options& options, KafkaStreamInput* input,
    std::vector<Topic> topics) {
  auto producer = kafka::Producer::Create(options);
  if (!producer.ok()) return producer.status();
  std::unique_ptr<KafkaStreamOutput> output(new KafkaStreamOutput());
  output->producer_ = *std::move(producer);
  output->options_ = options;
  output->input_ = input;
  output->topics_ = std::move(topics);
  output->LearnTopics();
  return output;
}

void KafkaStreamOutput::LearnTopics() {
  unknown_.clear();
  unknown_asked_at_ = absl::Now();
  for (const Topic& topic : topics_) {
    // Given as long as a recheck to be created on request (brokers that
    // do so answer the request that creates it "Unknown topic").
    absl::Status s = producer_->AwaitTopic(topic.name, absl::Seconds(5),
                                           kUnknownTopicRecheck);
    if (s.ok()) continue;
    KPI_LOG_WARN(
        "kafka: the producer (client.id \"%s\") cannot learn where the "
        "partitions of %s are: %s; no input is read until it can be "
        "written (asked again every %s: create the topic, grant the write "
        "permission, or fix the key)",
        options_.client_id, topic.key, s.message(),
        absl::FormatDuration(kUnknownTopicRecheck));
    unknown_.emplace_back(topic, std::string(s.message()));
  }
}

bool KafkaStreamOutput::IsUnknown(const std::string& name) const {
  for (const auto& [t, _] : unknown_) {
    if (t.name == name) return true;
  }
  return false;
}

void KafkaStreamOutput::MarkUnknown(const Topic& topic, absl::string_view why) {
  if (IsUnknown(topic.name)) return;
  unknown_.emplace_back(topic, std::string(why));
  unknown_asked_at_ = absl::Now();
}

void KafkaStreamOutput::AskAboutTopics() {
  for (const Topic& topic : topics_) {
    if (IsUnknown(topic.name)) continue;
    absl::Status s = producer_->AwaitTopic(topic.name, absl::Seconds(1));
    if (absl::IsNotFound(s)) {
      MarkUnknown(topic, s.message());
    } else if (!s.ok()) {
      break;  // no answer (an outage): the others would wait 1 s each too
    }
  }
}

std::string KafkaStreamOutput::UnknownTopics(absl::Time now) {
  if (unknown_.empty()) return {};
  if (now - unknown_asked_at_ >= kUnknownTopicRecheck) {
    unknown_asked_at_ = now;
    std::vector<std::pair<Topic, std::string>> still;
    for (auto& [topic, why] : unknown_) {
      absl::Status s = producer_->AwaitTopic(topic.name, absl::Seconds(1));
      if (s.ok()) {
        KPI_LOG_INFO(
            "kafka: the producer (client.id \"%s\") learned where the "
            "partitions of %s (\"%s\") are: it can be written now",
            options_.client_id, topic.key, topic.name);
        continue;
      }
      still.emplace_back(std::move(topic), std::string(s.message()));
    }
    unknown_ = std::move(still);
  }
  std::string unknown;
  for (const auto& [topic, why] : unknown_) {
    absl::StrAppend(&unknown, unknown.empty() ? "" : "; ", topic.key, ": ",
                    why);
  }
  return unknown;
}

absl::Status KafkaStreamOutput::RenewIfFatal(const absl::Status& status) {
  const std::string fatal = producer_->FatalError();
  if (fatal.empty()) return absl::OkStatus();
  if (!producer_->transactional()) {
    // At-least-once has no transaction to abort: the records the fatal
    // producer held are lost to it, and a new one would write the
    // checkpoint past them. The thread stops; a restart reads them again
    // from the last checkpoint.
    return absl::UnavailableError(absl::StrCat(
        status.message(), "; the Kafka producer cannot go on: ", fatal));
  }
  // The brokers abort a transaction open longer than its timeout and fence
  // its producer: an outage of an output partition's leader did, every
  // transaction timeout; another instance fences a transaction of any age
  // (they last about a commit interval). Only an open transaction's age
  // tells (a fence found with none open would be judged by the last one's).
  const absl::Time now = absl::Now();
  const bool timed_out =
      producer_->in_transaction() &&
      now - producer_->transaction_began_at() >= options_.transaction_timeout;
  if (!renewals_.Spend(now, timed_out)) {
    return absl::FailedPreconditionError(absl::StrCat(
        status.message(), "; the Kafka producer (transactional.id \"",
        options_.transactional_id, "\") was fenced ", renewals_.refused_count(),
        " times within ", absl::FormatDuration(RenewalBudget::kWindow),
        ": is another process running with the same "
        "processing.instance_id?"));
  }
  const absl::Duration backoff = renewals_.Backoff();
  KPI_LOG_WARN(
      "kafka: the producer (transactional.id \"%s\") cannot go on: %s%s; "
      "replacing it in %s (its open transaction is lost, the partitions are "
      "restored and read again)",
      options_.transactional_id, fatal,
      timed_out ? absl::StrCat(" (its transaction was open for ",
                               absl::FormatDuration(absl::Trunc(
                                   now - producer_->transaction_began_at(),
                                   absl::Milliseconds(100))),
                               ", past processing.transaction_timeout: the "
                               "brokers aborted it)")
                : "",
      absl::FormatDuration(backoff));
  absl::SleepFor(backoff);
  // The new one first (it fences the old, which purges its queue when
  // destroyed): if it cannot be made, the old one stays and the error is
  // returned. It waits for the coordinator as long as it takes (an outage
  // it outlives: SPEC §10), the thread beating meanwhile, until a stop.
  kafka::Producer::Options options = options_;
  options.init_timeout = absl::InfiniteDuration();
  options.on_wait = on_wait_;
  if (give_up_) options.give_up = give_up_;
  auto renewed = kafka::Producer::Create(options);
  if (!renewed.ok()) {
    return absl::Status(
        renewed.status().code(),
        absl::StrCat(status.message(), "; replacing the fenced producer: ",
                     renewed.status().message()));
  }
  producer_ = *std::move(renewed);
  producer_->set_on_wait(on_wait_);
  producer_->set_give_up(give_up_);
  renewed_because_ = fatal;
  LearnTopics();
  return absl::OkStatus();
}

absl::Status KafkaStreamOutput::Produce(absl::string_view topic,
                                        absl::string_view key,
                                        std::optional<absl::string_view> value,
                                        const Headers& headers,
                                        int32_t partition) {
  // Records of a transaction that a renewal dropped are not produced: the
  // next Commit() aborts, and they are made again.
  if (!renewed_because_.empty() || !undelivered_because_.empty()) {
    return absl::OkStatus();
  }
  absl::Status s = producer_->Produce(
      topic, key, value ? *value : absl::string_view(), headers, partition);
  if (s.ok()) return s;
  if (absl::Status renewed = RenewIfFatal(s); !renewed.ok()) return renewed;
  if (!renewed_because_.empty()) return absl::OkStatus();
  if (absl::IsNotFound(s)) {
    // The topic is gone (deleted while the engine runs: measured, the
    // engine stopped within a second). Like a record not delivered: the
    // work is redone, and the thread reads nothing until the brokers know
    // the topic again (UnknownTopics(); SPEC §10: nothing is dropped).
    Topic gone{std::string(topic), std::string(topic)};
    for (const Topic& t : topics_) {
      if (t.name == topic) gone.key = t.key;
    }
    MarkUnknown(gone, s.message());
    undelivered_because_ = absl::StrCat(gone.key, ": ", s.message());
    KPI_LOG_WARN(
        "kafka: the producer (client.id \"%s\"): %s; the work since the last "
        "commit is redone once the brokers know the topic again (asked every "
        "%s; no input is read meanwhile)",
        options_.client_id, undelivered_because_,
        absl::FormatDuration(kUnknownTopicRecheck));
    return absl::OkStatus();
  }
  // Anything else (the record itself, a partition that does not exist, a
  // transaction that cannot begin) would fail the same way every time it
  // is redone: the thread stops with it.
  if (producer_->transactional() ? !producer_->transaction_failed()
                                 : !kafka::IsDeliveryFailure(s)) {
    return s;
  }
  undelivered_because_ = std::string(s.message());
  if (producer_->transactional()) {
    KPI_LOG_WARN(
        "kafka: the producer (transactional.id \"%s\"): %s; the open "
        "transaction is aborted at the next commit, and its input read again",
        options_.transactional_id, undelivered_because_);
  } else {
    KPI_LOG_WARN(
        "kafka: the producer (client.id \"%s\"): %s; the records after it "
        "are dropped, and what was read since the last checkpoint is read "
        "again at the next commit",
        options_.client_id, undelivered_because_);
  }
  return absl::OkStatus();
}

absl::Status KafkaStreamOutput::Commit(const Offsets& offsets) {
  absl::Status s;
  if (!undelivered_because_.empty()) {  // (never set with renewed_because_)
    const std::string why = std::move(undelivered_because_);
    if (absl::Status aborted = Abort(); !aborted.ok()) return aborted;
    return absl::AbortedError(
        absl::StrCat(why, "; the transaction was aborted"));
  }
  if (renewed_because_.empty()) {
    s = producer_->CommitTransaction(input_->consumer(), offsets);
    if (absl::IsAborted(s)) {
      // A topic deleted under a producer that still knows its partitions
      // shows as a refusal to add it to the transaction, or as records timed
      // out (measured on Kafka 4.4, both, and the aborts went on for
      // minutes): asked about now, so that the thread pauses
      // (UnknownTopics()) instead of redoing the work, aborted each time,
      // until the topic is back. One metadata request a topic, an abort.
      AskAboutTopics();
    }
    if (s.ok() || absl::IsAborted(s)) return s;
    if (absl::Status renewed = RenewIfFatal(s); !renewed.ok()) return renewed;
    if (renewed_because_.empty()) return s;  // not fatal: as it was
  }
  const std::string why = std::move(renewed_because_);
  renewed_because_.clear();
  return absl::AbortedError(absl::StrCat("the Kafka producer was replaced (",
                                         why,
                                         "); the transaction was aborted"));
}

absl::Status KafkaStreamOutput::Flush() {
  if (!undelivered_because_.empty()) {  // at-least-once (see Produce())
    return absl::AbortedError(undelivered_because_);
  }
  absl::Status s = producer_->Flush();
  // (Exactly-once commits instead; a renewal here would be wrong.)
  if (s.ok() || producer_->transactional()) return s;
  if (absl::Status fatal = RenewIfFatal(s); !fatal.ok()) return fatal;
  // A record given up (a delivery report's error): the thread reads again
  // from its last checkpoint. A timeout (DeadlineExceededError) is not: its
  // records are still queued.
  if (kafka::IsDeliveryFailure(s)) return absl::AbortedError(s.message());
  return s;
}

absl::Status KafkaStreamOutput::Restart() {
  if (producer_->transactional()) return absl::OkStatus();
  producer_->DropQueued();
  // Not LearnTopics(): where the output cannot be reached, that would hold
  // the thread 5 s per topic on every restart; the new producer learns
  // where the partitions are as it produces.
  auto renewed = kafka::Producer::Create(options_);
  if (!renewed.ok()) {
    return absl::Status(renewed.status().code(),
                        absl::StrCat("replacing the Kafka producer after a "
                                     "record was not delivered: ",
                                     renewed.status().message()));
  }
  // The old one waits for what it has in flight as it is destroyed (at
  // most 5 s, holding the stream thread: in-flight checkpoint records then
  // land before the restore reads the changelog; what is still in flight
  // after that may arrive later: at-least-once).
  producer_ = *std::move(renewed);
  producer_->set_on_wait(on_wait_);
  producer_->set_give_up(give_up_);
  undelivered_because_.clear();
  return absl::OkStatus();
}

absl::Status KafkaStreamOutput::Abort() {
  // At-least-once there is no transaction: what is queued is dropped, as
  // the work it belongs to is redone (and a record not delivered is made
  // again).
  if (!producer_->transactional()) return Restart();
  undelivered_because_.clear();
  if (!renewed_because_.empty()) {
    renewed_because_.clear();  // the new producer has no open transaction
    return absl::OkStatus();
  }
  absl::Status s = producer_->AbortTransaction();
  if (s.ok()) return s;
  if (absl::Status renewed = RenewIfFatal(s); !renewed.ok()) return renewed;
  if (renewed_because_.empty()) return s;
  renewed_because_.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<KafkaChangelog>> KafkaChangelog::Open(
    const kafka::TopicReadOptions& options, int create_partitions) {
  std::unique_ptr<KafkaChangelog> changelog(new KafkaChangelog());
  changelog->options_ = options;
  auto count = kafka::EnsureTopic(
      options, create_partitions,
      {{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "0"}});
  if (!count.ok()) {
    return absl::Status(
        count.status().code(),
        absl::StrCat("outputs.changelog.topic \"", options.topic,
                     "\": ", count.status().message(),
                     " (the engine creates it when missing; otherwise create "
                     "it with cleanup.policy=compact and as many partitions "
                     "as the largest input)"));
  }
  changelog->partitions_ = *count;
  return changelog;
}

absl::StatusOr<ChangelogEnds> KafkaChangelog::Ends(
    const std::vector<int32_t>& partitions) {
  kafka::TopicReadOptions options = options_;
  options.partitions = partitions;
  auto described = kafka::DescribeTopic(options);
  if (!described.ok()) return described.status();
  return ChangelogEnds{std::move(described->cluster_id),
                       std::move(described->ends)};
}

absl::Status KafkaChangelog::Read(
    const std::map<int32_t, int64_t>& from,
    absl::FunctionRef<void(const ChangelogEntry&)> record) {
  kafka::TopicReadOptions options = options_;
  options.partitions.clear();
  for (const auto& [partition, offset] : from) {
    options.partitions.push_back(partition);
  }
  options.start_offsets = from;
  return kafka::ReadTopic(options, [&](const kafka::ReadRecord& r) {
    record(ChangelogEntry{r.partition, r.offset, r.key, r.value, r.tombstone});
  });
}

}  // namespace kpistream
