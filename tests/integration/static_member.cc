// A static member of a consumer group (cooperative-sticky), for the test of a
// member killed between the two rounds of a cooperative rebalance:
//
//   static_member BOOTSTRAP GROUP INSTANCE_ID TOPIC[,TOPIC...]
//                 [--die-on-revoke]
//
// joins GROUP with group.instance.id INSTANCE_ID, subscribed to the topics,
// reads nothing (its partitions are paused; it commits nothing) and prints
// "assigned N" on stdout each time its assignment changes (N partitions).
// With --die-on-revoke it kills itself (SIGKILL) inside the first
// revocation, before giving the partitions up: the second round of the
// rebalance, which it would have started, never comes. It runs until killed
// or SIGTERM (then closes; a static member does not leave its group). Exit 1
// with the librdkafka error on stderr if a step fails.
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

std::atomic<bool> stop{false};
bool die_on_revoke = false;
int owned = 0;

void OnSignal(int) { stop = true; }

void Rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
               rd_kafka_topic_partition_list_t* partitions, void*) {
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, partitions)) {
      std::fprintf(stderr, "static_member: assign: %s\n",
                   rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      return;
    }
    rd_kafka_pause_partitions(rk, partitions);
    owned += partitions->cnt;
  } else {
    if (die_on_revoke && partitions->cnt > 0) {
      std::printf("dying with %d partition(s) to give up\n", partitions->cnt);
      std::fflush(stdout);
      raise(SIGKILL);
    }
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, partitions)) {
      rd_kafka_error_destroy(e);
    }
    owned -= partitions->cnt;
  }
  std::printf("assigned %d\n", owned);
  std::fflush(stdout);
}

int Run(const char* bootstrap, const char* group, const char* instance,
        const char* topics) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const char* settings[][2] = {
      {"bootstrap.servers", bootstrap},
      {"group.id", group},
      {"group.instance.id", instance},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {"session.timeout.ms", "6000"},
      {"heartbeat.interval.ms", "500"},
      {"enable.auto.commit", "false"},
      {"client.id", "static_member"},
  };
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "static_member: %s: %s\n", key, errstr);
      return 1;
    }
  }
  rd_kafka_conf_set_rebalance_cb(conf, &Rebalance);
  rd_kafka_t* rk =
      rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    std::fprintf(stderr, "static_member: %s\n", errstr);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(4);
  std::string all = topics;
  for (size_t start = 0; start <= all.size();) {
    size_t end = all.find(',', start);
    if (end == std::string::npos) end = all.size();
    rd_kafka_topic_partition_list_add(
        list, all.substr(start, end - start).c_str(), RD_KAFKA_PARTITION_UA);
    start = end + 1;
  }
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "static_member: subscribe: %s\n",
                 rd_kafka_err2str(err));
    return 1;
  }
  while (!stop) {
    if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100)) {
      rd_kafka_message_destroy(m);
    }
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || argc > 6 ||
      (argc == 6 && std::strcmp(argv[5], "--die-on-revoke") != 0)) {
    std::fprintf(stderr,
                 "usage: static_member BOOTSTRAP GROUP INSTANCE_ID "
                 "TOPIC[,TOPIC...] [--die-on-revoke]\n");
    return 2;
  }
  die_on_revoke = argc == 6;
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  return Run(argv[1], argv[2], argv[3], argv[4]);
}
