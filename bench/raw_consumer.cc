// raw_consumer: the baseline of bench/e2e_bench, what librdkafka alone can
// consume. A consumer-group member (a new group each run, read_committed,
// from the earliest offset) that takes batches off the consumer queue with
// rd_kafka_consume_batch_queue and only counts them, until it has --expect
// records. It decodes nothing and commits nothing.
//
//   build/bench/raw_consumer --brokers 127.0.0.1:PORT --topic bench.json
//       --group raw-1 --expect 1015203
//
// Prints one line, times in seconds since the process started:
//   records=N bytes=B assigned=S first=S last=S
// Exit code 0 once --expect records were counted, 1 on a timeout or a Kafka
// error (the line is printed all the same).
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point kStart = Clock::now();

double Seconds() {
  return std::chrono::duration<double>(Clock::now() - kStart).count();
}

double assigned_at = -1;

// Eager assignment (the default strategies); only notes when the
// partitions arrived, so that the group join can be told from consuming.
void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                 rd_kafka_topic_partition_list_t* partitions, void*) {
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (assigned_at < 0) assigned_at = Seconds();
    rd_kafka_assign(rk, partitions);
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string brokers, topic, group;
  long long expect = 0;
  int batch = 10000;
  double timeout = 600;
  CLI::App app{"Counts a topic's records with a bare librdkafka consumer."};
  app.add_option("--brokers", brokers, "bootstrap servers")->required();
  app.add_option("--topic", topic, "topic to read")->required();
  app.add_option("--group", group, "consumer group (use a new one)")
      ->required();
  app.add_option("--expect", expect, "stop after this many records")
      ->required();
  app.add_option("--batch", batch, "messages per rd_kafka_consume_batch_queue")
      ->capture_default_str();
  app.add_option("--timeout", timeout, "give up after this many seconds")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::vector<std::pair<const char*, std::string>> settings = {
      {"bootstrap.servers", brokers},
      {"group.id", group},
      {"client.id", "kpistream-bench-raw"},
      {"isolation.level", "read_committed"},
      {"auto.offset.reset", "earliest"},
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "false"},
  };
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key, value.c_str(), err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "raw_consumer: %s: %s\n", key, err);
      return 2;
    }
  }
  rd_kafka_conf_set_rebalance_cb(conf, OnRebalance);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) {
    std::fprintf(stderr, "raw_consumer: %s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics =
      rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(),
                                    RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics); e) {
    std::fprintf(stderr, "raw_consumer: subscribe %s: %s\n", topic.c_str(),
                 rd_kafka_err2str(e));
    return 1;
  }
  rd_kafka_topic_partition_list_destroy(topics);

  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);
  std::vector<rd_kafka_message_t*> messages(batch);
  long long records = 0, bytes = 0;
  double first = -1, last = -1;
  std::string error;
  while (records < expect && Seconds() < timeout) {
    const ssize_t n =
        rd_kafka_consume_batch_queue(queue, 100, messages.data(), batch);
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = messages[i];
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++records;
        bytes += static_cast<long long>(m->len);
      } else if (error.empty()) {
        error = rd_kafka_message_errstr(m);
      }
      rd_kafka_message_destroy(m);
    }
    if (n > 0) {
      last = Seconds();
      if (first < 0) first = last;
    }
  }
  std::printf("records=%lld bytes=%lld assigned=%.4f first=%.4f last=%.4f\n",
              records, bytes, assigned_at, first, last);
  std::fflush(stdout);
  if (!error.empty()) std::fprintf(stderr, "raw_consumer: %s\n", error.c_str());
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return records >= expect ? 0 : 1;
}
