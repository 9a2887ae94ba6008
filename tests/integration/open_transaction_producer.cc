// A transactional producer that dies mid-transaction, for fencing tests:
//
//   open_transaction_producer BOOTSTRAP TOPIC TRANSACTIONAL_ID COUNT
//                             TRANSACTION_TIMEOUT_MS
//
// initialises transactions, begins one, produces COUNT records (value
// "open-<i>") to TOPIC, waits until the broker has them all, prints "open"
// on stdout and then waits, transaction open, until it is killed. Exit 1
// (with the librdkafka error on stderr) if any step fails.
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int Fail(const char* what, rd_kafka_error_t* error) {
  std::fprintf(stderr, "open_transaction_producer: %s: %s\n", what,
               rd_kafka_error_string(error));
  rd_kafka_error_destroy(error);
  return 1;
}

int Run(const std::string& bootstrap, const std::string& topic,
        const std::string& transactional_id, int count,
        const std::string& timeout_ms) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::pair<const char*, std::string> settings[] = {
      {"bootstrap.servers", bootstrap},
      {"transactional.id", transactional_id},
      {"transaction.timeout.ms", timeout_ms},
      {"linger.ms", "0"},
  };
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key, value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "open_transaction_producer: %s=%s: %s\n", key,
                   value.c_str(), errstr);
      return 1;
    }
  }
  rd_kafka_t* rk =
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    std::fprintf(stderr, "open_transaction_producer: %s\n", errstr);
    return 1;
  }
  if (rd_kafka_error_t* error = rd_kafka_init_transactions(rk, 60000)) {
    return Fail("init_transactions", error);
  }
  if (rd_kafka_error_t* error = rd_kafka_begin_transaction(rk)) {
    return Fail("begin_transaction", error);
  }
  for (int i = 0; i < count; ++i) {
    const std::string value = "open-" + std::to_string(i);
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic.c_str()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr, "open_transaction_producer: produce: %s\n",
                   rd_kafka_err2name(err));
      return 1;
    }
  }
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(rk, 60000);
  if (flushed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "open_transaction_producer: flush: %s\n",
                 rd_kafka_err2name(flushed));
    return 1;
  }
  std::printf("open\n");
  std::fflush(stdout);
  for (;;) pause();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr,
                 "usage: open_transaction_producer BOOTSTRAP TOPIC "
                 "TRANSACTIONAL_ID COUNT TRANSACTION_TIMEOUT_MS\n");
    return 2;
  }
  return Run(argv[1], argv[2], argv[3], std::atoi(argv[4]), argv[5]);
}
