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
// With --latency, a second line: how long each record took from its
// producer (CreateTime) to this consumer, p50/p99/max, overall (after the
// first --latency-warmup seconds of CreateTime) and per 5 s of it: the
// producer's and the broker's share of e2e_bench's latency probe, which
// no engine can go below.
// Exit code 0 once --expect records were counted, 1 on a timeout or a Kafka
// error (the line is printed all the same).
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
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

// p50/p99/max of `values` (ms), sorted here; "-" when empty.
std::string Percentiles(std::vector<int64_t> values) {
  if (values.empty()) return "-";
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    return values[std::min(values.size() - 1,
                           static_cast<size_t>(q * values.size()))] /
           1000.0;
  };
  char out[96];
  std::snprintf(out, sizeof(out), "p50 %.3f s, p99 %.3f s, max %.3f s", at(0.5),
                at(0.99), values.back() / 1000.0);
  return out;
}

void PrintLatencies(std::vector<std::pair<int64_t, int64_t>> latencies,
                    double warmup_s) {
  std::sort(latencies.begin(), latencies.end());
  const int64_t first = latencies.front().first;
  const int64_t from = first + static_cast<int64_t>(warmup_s * 1000);
  std::vector<int64_t> all;
  std::vector<std::vector<int64_t>> slices;
  for (const auto& [created, ms] : latencies) {
    const size_t slice = static_cast<size_t>((created - first) / 5000);
    if (slices.size() <= slice) slices.resize(slice + 1);
    slices[slice].push_back(ms);
    if (created >= from) all.push_back(ms);
  }
  std::printf("latency (CreateTime -> received) over %zu records: %s\n",
              all.size(), Percentiles(all).c_str());
  for (size_t i = 0; i < slices.size(); ++i) {
    std::printf("  %zu-%zu s: %s\n", i * 5, i * 5 + 5,
                Percentiles(slices[i]).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string brokers, topic, group;
  long long expect = 0;
  int batch = 10000;
  double timeout = 600;
  bool latency = false;
  double latency_warmup = 3;
  std::vector<std::string> properties;
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
  app.add_flag("--latency", latency,
               "also print CreateTime -> received latencies");
  app.add_option("--latency-warmup", latency_warmup,
                 "seconds of CreateTime not measured")
      ->capture_default_str();
  app.add_option("--property", properties,
                 "KEY=VALUE librdkafka property (repeatable), e.g. "
                 "fetch.wait.max.ms=50 as the engine sets at a 250ms commit "
                 "interval");
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
  std::vector<std::pair<std::string, std::string>> all(settings.begin(),
                                                       settings.end());
  for (const std::string& p : properties) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "raw_consumer: --property %s: not KEY=VALUE\n",
                   p.c_str());
      return 2;
    }
    all.emplace_back(p.substr(0, eq), p.substr(eq + 1));
  }
  for (const auto& [key, value] : all) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "raw_consumer: %s: %s\n", key.c_str(), err);
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
  // (CreateTime ms, latency ms) of every record, with --latency.
  std::vector<std::pair<int64_t, int64_t>> latencies;
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
        if (latency) {
          const int64_t created = rd_kafka_message_timestamp(m, nullptr);
          const int64_t now =
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
          if (created >= 0) latencies.emplace_back(created, now - created);
        }
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
  if (latency && !latencies.empty()) PrintLatencies(latencies, latency_warmup);
  std::fflush(stdout);
  if (!error.empty()) std::fprintf(stderr, "raw_consumer: %s\n", error.c_str());
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return records >= expect ? 0 : 1;
}
