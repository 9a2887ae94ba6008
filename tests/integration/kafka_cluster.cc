#include "tests/integration/kafka_cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <tuple>

#include "absl/memory/memory.h"
#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace kpistream::testing {
namespace {

namespace fs = std::filesystem;

// A topic replicated on every node: its full ISR shows that all brokers
// replicate, not merely that they registered.
constexpr char kReadyTopic[] = "kpistream-cluster-ready";

struct ClientDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Client = std::unique_ptr<rd_kafka_t, ClientDeleter>;

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* md) const {
    rd_kafka_metadata_destroy(md);
  }
};
using Metadata = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;

void DropLog(const rd_kafka_t*, int, const char*, const char*) {}

// A librdkafka client of `type` for `bootstrap`. A quiet one logs nothing:
// for pollers that expect refused connections while brokers start or stop.
// `customize` may set callbacks on the configuration.
absl::StatusOr<Client> NewClient(
    rd_kafka_type_t type, const std::string& bootstrap,
    const std::map<std::string, std::string>& config, bool quiet,
    const std::function<void(rd_kafka_conf_t*)>& customize = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  std::map<std::string, std::string> all = {{"bootstrap.servers", bootstrap}};
  for (const auto& [key, value] : config) all[key] = value;
  for (const auto& [key, value] : all) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(
          absl::StrCat("librdkafka config ", key, "=", value, ": ", errstr));
    }
  }
  if (quiet) rd_kafka_conf_set_log_cb(conf, DropLog);
  if (customize) customize(conf);
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(
        absl::StrCat("librdkafka client for ", bootstrap, ": ", errstr));
  }
  return Client(rk);
}

// Metadata of `topic`, or of every topic when it is empty.
absl::StatusOr<Metadata> FetchMetadata(rd_kafka_t* rk, const std::string& topic,
                                       absl::Duration timeout) {
  rd_kafka_topic_t* rkt =
      topic.empty() ? nullptr : rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, topic.empty() ? 1 : 0, rkt, &md,
                        static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (rkt != nullptr) rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("metadata request: ", rd_kafka_err2name(err)));
  }
  return Metadata(md);
}

const rd_kafka_metadata_topic_t* FindTopic(const rd_kafka_metadata_t& md,
                                           const std::string& topic) {
  for (int t = 0; t < md.topic_cnt; ++t) {
    if (topic == md.topics[t].topic) return &md.topics[t];
  }
  return nullptr;
}

// Ok once `topic` has `partitions` partitions (any count if < 0), each with
// a leader; else what is missing.
absl::Status TopicReady(rd_kafka_t* rk, const std::string& topic,
                        int partitions) {
  absl::StatusOr<Metadata> md = FetchMetadata(rk, topic, absl::Seconds(5));
  if (!md.ok()) return md.status();
  const rd_kafka_metadata_topic_t* t = FindTopic(**md, topic);
  if (t == nullptr) return absl::NotFoundError("not in the metadata");
  if (t->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(rd_kafka_err2name(t->err));
  }
  if (partitions >= 0 && t->partition_cnt != partitions) {
    return absl::UnavailableError(absl::StrCat(
        t->partition_cnt, " of ", partitions, " partitions in the metadata"));
  }
  for (int p = 0; p < t->partition_cnt; ++p) {
    if (t->partitions[p].leader < 0) {
      return absl::UnavailableError(
          absl::StrCat("partition ", t->partitions[p].id, " has no leader"));
    }
  }
  return absl::OkStatus();
}

absl::Status CreateTopicWith(rd_kafka_t* rk, const std::string& bootstrap,
                             const std::string& name, int partitions,
                             int replication,
                             const std::map<std::string, std::string>& configs,
                             absl::Duration timeout) {
  const std::string what = absl::StrCat("creating topic ", name, " (",
                                        partitions, " partitions, replication ",
                                        replication, ") on ", bootstrap);
  char errstr[512];
  rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(
      name.c_str(), partitions, replication, errstr, sizeof(errstr));
  if (topic == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", errstr));
  }
  for (const auto& [key, value] : configs) {
    rd_kafka_NewTopic_set_config(topic, key.c_str(), value.c_str());
  }
  const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, errstr,
                                              sizeof(errstr));
  rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, errstr,
                                            sizeof(errstr));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &topic, 1, options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout_ms + 5000);
  absl::Status status;
  if (event == nullptr) {
    status = absl::DeadlineExceededError(absl::StrCat(
        what, ": no answer within ", absl::FormatDuration(timeout)));
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::UnavailableError(
        absl::StrCat(what, ": ", rd_kafka_err2name(rd_kafka_event_error(event)),
                     ": ", rd_kafka_event_error_string(event)));
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(event), &count);
    for (size_t i = 0; i < count; ++i) {
      const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      const char* message = rd_kafka_topic_result_error_string(results[i]);
      status = absl::Status(err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS
                                ? absl::StatusCode::kAlreadyExists
                                : absl::StatusCode::kUnavailable,
                            absl::StrCat(what, ": ", rd_kafka_err2name(err),
                                         ": ", message ? message : ""));
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(topic);
  return status;
}

std::string JavaBinary() {
  const char* home = std::getenv("JAVA_HOME");
  if (home != nullptr && fs::exists(fs::path(home) / "bin" / "java")) {
    return (fs::path(home) / "bin" / "java").string();
  }
  return "java";
}

// Starts `argv` with stdin from /dev/null and stdout and stderr appended to
// `log`. The child gets SIGKILL when the calling thread ends, so a test
// that crashes leaves no broker behind.
absl::StatusOr<pid_t> SpawnLogged(std::vector<std::string> argv,
                                  const std::string& log) {
  const std::string exec_failed = absl::StrCat(
      "[kafka_cluster] could not execute ", argv[0],
      " (Java 17 or newer must be installed and on PATH, or JAVA_HOME set; "
      ".ci/setup installs it)\n");
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int log_fd =
      open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("opening ", log, ": ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec: the parent may have threads.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    sigset_t none;  // a blocked SIGTERM (kafka_cluster_daemon) stays blocked
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    close_range(3, ~0U, 0);
    execvp(args[0], args.data());
    (void)!write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    _exit(127);
  }
  const int fork_errno = errno;
  close(log_fd);
  if (pid < 0) {
    return absl::InternalError(
        absl::StrCat("fork for ", argv[0], ": ", std::strerror(fork_errno)));
  }
  return pid;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  return "unknown status";
}

std::string Tail(const std::string& path, int lines) {
  std::ifstream in(path);
  if (!in) return absl::StrCat("(no ", path, ")\n");
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  return absl::StrCat(absl::StrJoin(last, "\n"), "\n");
}

// A cluster id as StorageTool's random-uuid prints it: 16 random bytes,
// URL-safe base64 without padding.
// Like Kafka's Uuid.randomUuid(), never one starting with '-' (StorageTool's
// argument parser would take it for an option).
std::string NewClusterId() {
  absl::BitGen gen;
  for (;;) {
    std::string bytes(16, '\0');
    for (char& c : bytes) {
      c = static_cast<char>(absl::Uniform<int>(gen, 0, 256));
    }
    bytes[0] = static_cast<char>(bytes[0] | 0x40);  // never a reserved id
    std::string id = absl::WebSafeBase64Escape(bytes);
    if (id[0] != '-') return id;
  }
}

std::string FixturesDir() {
  const char* dir = std::getenv("KPISTREAM_KAFKA_FIXTURES_DIR");
  return dir ? dir : KPISTREAM_DEFAULT_KAFKA_FIXTURES_DIR;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string KafkaLibs() {
  const char* libs = std::getenv("KPISTREAM_KAFKA_LIBS");
  return libs ? libs : KPISTREAM_DEFAULT_KAFKA_LIBS;
}

absl::StatusOr<std::string> SharedKafka(absl::string_view fixture) {
  const std::string dir = absl::StrCat(FixturesDir(), "/", fixture);
  const std::string bootstrap(
      absl::StripAsciiWhitespace(ReadFile(dir + "/bootstrap")));
  const std::string pid_text(
      absl::StripAsciiWhitespace(ReadFile(dir + "/pid")));
  int pid = 0;
  if (bootstrap.empty() || !absl::SimpleAtoi(pid_text, &pid) ||
      kill(pid, 0) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the shared Kafka cluster '", fixture, "' is not running (no live ",
        dir, "/bootstrap and pid): run this test through ctest, whose fixture ",
        "KafkaFixture.", fixture, ".start starts it (e.g. `ctest --test-dir ",
        "build -R <test>`), or start it by hand with kafka_cluster_daemon"));
  }
  return bootstrap;
}

std::string UniqueKafkaName(absl::string_view prefix) {
  static std::atomic<int> counter{0};
  return absl::StrCat(prefix, "-", getpid(), "-",
                      absl::ToUnixMillis(absl::Now()) % 100000000, "-",
                      counter++);
}

absl::Status CreateKafkaTopic(
    const std::string& bootstrap, const std::string& name, int partitions,
    int replication, const std::map<std::string, std::string>& configs) {
  absl::StatusOr<Client> client =
      NewClient(RD_KAFKA_PRODUCER, bootstrap, {}, /*quiet=*/true);
  if (!client.ok()) return client.status();
  absl::Status created =
      CreateTopicWith(client->get(), bootstrap, name, partitions, replication,
                      configs, absl::Seconds(30));
  if (!created.ok()) return created;
  absl::Status ready;
  if (!WaitFor(
          [&] {
            ready = TopicReady(client->get(), name, partitions);
            return ready.ok();
          },
          absl::Seconds(30))) {
    return absl::DeadlineExceededError(
        absl::StrCat("topic ", name, " on ", bootstrap,
                     " created but not ready after 30 s: ", ready.message()));
  }
  return absl::OkStatus();
}

namespace {

// One Admin API request on a new client of `bootstrap` (the operation `op`
// sends with its options, and 30 s to answer): `issue` sends it, `check`
// reads the answer's event once it came without an error. Errors begin
// with `what`.
absl::Status AdminRequest(
    const std::string& bootstrap, rd_kafka_admin_op_t op,
    const std::string& what,
    absl::FunctionRef<void(rd_kafka_t*, rd_kafka_AdminOptions_t*,
                           rd_kafka_queue_t*)>
        issue,
    absl::FunctionRef<absl::Status(rd_kafka_event_t*)> check) {
  absl::StatusOr<Client> client =
      NewClient(RD_KAFKA_PRODUCER, bootstrap, {}, /*quiet=*/true);
  if (!client.ok()) return client.status();
  rd_kafka_t* rk = client->get();
  char errstr[512];
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, op);
  // (Not every operation has an operation timeout: refused then.)
  rd_kafka_AdminOptions_set_operation_timeout(options, 30000, errstr,
                                              sizeof(errstr));
  rd_kafka_AdminOptions_set_request_timeout(options, 30000, errstr,
                                            sizeof(errstr));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  issue(rk, options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 35000);
  absl::Status status;
  if (event == nullptr) {
    status = absl::DeadlineExceededError(
        absl::StrCat(what, ": no answer within 35 s"));
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::UnavailableError(
        absl::StrCat(what, ": ", rd_kafka_event_error_string(event)));
  } else {
    status = check(event);
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  return status;
}

}  // namespace

absl::Status AlterKafkaTopicConfig(
    const std::string& bootstrap, const std::string& topic,
    const std::map<std::string, std::string>& configs) {
  const std::string what =
      absl::StrCat("altering the configs of ", topic, " on ", bootstrap);
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  for (const auto& [name, value] : configs) {
    rd_kafka_ConfigResource_set_config(resource, name.c_str(), value.c_str());
  }
  absl::Status status = AdminRequest(
      bootstrap, RD_KAFKA_ADMIN_OP_ALTERCONFIGS, what,
      [&](rd_kafka_t* rk, rd_kafka_AdminOptions_t* options,
          rd_kafka_queue_t* queue) {
        rd_kafka_AlterConfigs(rk, &resource, 1, options, queue);
      },
      [&](rd_kafka_event_t* event) {
        size_t n = 0;
        const rd_kafka_ConfigResource_t** done =
            rd_kafka_AlterConfigs_result_resources(
                rd_kafka_event_AlterConfigs_result(event), &n);
        for (size_t i = 0; i < n; ++i) {
          if (rd_kafka_ConfigResource_error(done[i]) !=
              RD_KAFKA_RESP_ERR_NO_ERROR) {
            return absl::UnavailableError(absl::StrCat(
                what, ": ", rd_kafka_ConfigResource_error_string(done[i])));
          }
        }
        return absl::OkStatus();
      });
  rd_kafka_ConfigResource_destroy(resource);
  return status;
}

absl::Status DeleteKafkaTopic(const std::string& bootstrap,
                              const std::string& topic) {
  const std::string what =
      absl::StrCat("deleting topic ", topic, " on ", bootstrap);
  rd_kafka_DeleteTopic_t* deletion = rd_kafka_DeleteTopic_new(topic.c_str());
  absl::Status status = AdminRequest(
      bootstrap, RD_KAFKA_ADMIN_OP_DELETETOPICS, what,
      [&](rd_kafka_t* rk, rd_kafka_AdminOptions_t* options,
          rd_kafka_queue_t* queue) {
        rd_kafka_DeleteTopics(rk, &deletion, 1, options, queue);
      },
      [&](rd_kafka_event_t* event) {
        size_t n = 0;
        const rd_kafka_topic_result_t** results =
            rd_kafka_DeleteTopics_result_topics(
                rd_kafka_event_DeleteTopics_result(event), &n);
        for (size_t i = 0; i < n; ++i) {
          if (rd_kafka_topic_result_error(results[i]) !=
              RD_KAFKA_RESP_ERR_NO_ERROR) {
            return absl::UnavailableError(absl::StrCat(
                what, ": ", rd_kafka_topic_result_error_string(results[i])));
          }
        }
        return absl::OkStatus();
      });
  rd_kafka_DeleteTopic_destroy(deletion);
  return status;
}

absl::Status DeleteKafkaRecords(const std::string& bootstrap,
                                const std::string& topic, int partitions) {
  std::map<int32_t, int64_t> before;
  for (int p = 0; p < partitions; ++p) before[p] = RD_KAFKA_OFFSET_END;
  return DeleteKafkaRecordsBefore(bootstrap, topic, before);
}

absl::Status DeleteKafkaRecordsBefore(
    const std::string& bootstrap, const std::string& topic,
    const std::map<int32_t, int64_t>& before) {
  const std::string what =
      absl::StrCat("deleting the records of ", topic, " on ", bootstrap);
  rd_kafka_topic_partition_list_t* offsets =
      rd_kafka_topic_partition_list_new(static_cast<int>(before.size()));
  for (const auto& [p, offset] : before) {
    rd_kafka_topic_partition_list_add(offsets, topic.c_str(), p)->offset =
        offset;
  }
  rd_kafka_DeleteRecords_t* request = rd_kafka_DeleteRecords_new(offsets);
  rd_kafka_topic_partition_list_destroy(offsets);
  absl::Status status = AdminRequest(
      bootstrap, RD_KAFKA_ADMIN_OP_DELETERECORDS, what,
      [&](rd_kafka_t* rk, rd_kafka_AdminOptions_t* options,
          rd_kafka_queue_t* queue) {
        rd_kafka_DeleteRecords(rk, &request, 1, options, queue);
      },
      [&](rd_kafka_event_t* event) {
        const rd_kafka_topic_partition_list_t* done =
            rd_kafka_DeleteRecords_result_offsets(
                rd_kafka_event_DeleteRecords_result(event));
        for (int i = 0; done != nullptr && i < done->cnt; ++i) {
          if (done->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
          return absl::UnavailableError(
              absl::StrCat(what, ": partition ", done->elems[i].partition, ": ",
                           rd_kafka_err2str(done->elems[i].err)));
        }
        return absl::OkStatus();
      });
  rd_kafka_DeleteRecords_destroy(request);
  return status;
}

absl::Status ResetKafkaGroupOffsets(const std::string& bootstrap,
                                    const std::string& group,
                                    const std::string& topic, int partitions,
                                    int64_t offset) {
  const std::string what = absl::StrCat("resetting the offsets of group ",
                                        group, " on ", topic, " to ", offset);
  rd_kafka_topic_partition_list_t* offsets =
      rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(offsets, topic.c_str(), p)->offset =
        offset;
  }
  rd_kafka_AlterConsumerGroupOffsets_t* request =
      rd_kafka_AlterConsumerGroupOffsets_new(group.c_str(), offsets);
  rd_kafka_topic_partition_list_destroy(offsets);
  absl::Status status = AdminRequest(
      bootstrap, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, what,
      [&](rd_kafka_t* rk, rd_kafka_AdminOptions_t* options,
          rd_kafka_queue_t* queue) {
        rd_kafka_AlterConsumerGroupOffsets(rk, &request, 1, options, queue);
      },
      [&](rd_kafka_event_t* event) {
        size_t n = 0;
        const rd_kafka_group_result_t** groups =
            rd_kafka_AlterConsumerGroupOffsets_result_groups(
                rd_kafka_event_AlterConsumerGroupOffsets_result(event), &n);
        for (size_t g = 0; g < n; ++g) {
          if (const rd_kafka_error_t* e =
                  rd_kafka_group_result_error(groups[g]))
            return absl::UnavailableError(
                absl::StrCat(what, ": ", rd_kafka_error_string(e)));
          const rd_kafka_topic_partition_list_t* done =
              rd_kafka_group_result_partitions(groups[g]);
          for (int i = 0; done != nullptr && i < done->cnt; ++i) {
            if (done->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
            return absl::UnavailableError(
                absl::StrCat(what, ": partition ", done->elems[i].partition,
                             ": ", rd_kafka_err2str(done->elems[i].err)));
          }
        }
        return absl::OkStatus();
      });
  rd_kafka_AlterConsumerGroupOffsets_destroy(request);
  return status;
}

absl::StatusOr<int> KafkaPartitionLeader(const std::string& bootstrap,
                                         const std::string& topic,
                                         int partition) {
  absl::StatusOr<Client> client =
      NewClient(RD_KAFKA_PRODUCER, bootstrap, {}, /*quiet=*/true);
  if (!client.ok()) return client.status();
  absl::StatusOr<Metadata> md =
      FetchMetadata(client->get(), topic, absl::Seconds(10));
  const std::string what =
      absl::StrCat("leader of ", topic, "[", partition, "] on ", bootstrap);
  if (!md.ok())
    return absl::UnavailableError(
        absl::StrCat(what, ": ", md.status().message()));
  const rd_kafka_metadata_topic_t* t = FindTopic(**md, topic);
  if (t == nullptr || t->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::NotFoundError(absl::StrCat(
        what, ": topic ",
        t == nullptr ? "not in the metadata" : rd_kafka_err2name(t->err)));
  }
  for (int p = 0; p < t->partition_cnt; ++p) {
    if (t->partitions[p].id != partition) continue;
    if (t->partitions[p].leader < 0) {
      return absl::UnavailableError(absl::StrCat(what, ": no leader"));
    }
    return t->partitions[p].leader;
  }
  return absl::NotFoundError(absl::StrCat(what, ": no such partition"));
}

absl::StatusOr<std::unique_ptr<TestProducer>> TestProducer::Create(
    const std::string& bootstrap,
    const std::map<std::string, std::string>& config) {
  auto producer = absl::WrapUnique(new TestProducer());
  producer->bootstrap_ = bootstrap;
  std::map<std::string, std::string> all = {{"enable.idempotence", "true"},
                                            {"acks", "all"},
                                            {"linger.ms", "5"},
                                            {"message.timeout.ms", "60000"}};
  for (const auto& [key, value] : config) all[key] = value;
  absl::StatusOr<Client> client =
      NewClient(RD_KAFKA_PRODUCER, bootstrap, all, /*quiet=*/false,
                [deliveries = &producer->deliveries_](rd_kafka_conf_t* conf) {
                  rd_kafka_conf_set_dr_msg_cb(conf, &TestProducer::OnDelivery);
                  rd_kafka_conf_set_opaque(conf, deliveries);
                });
  if (!client.ok()) return client.status();
  producer->rk_ = client->release();
  return producer;
}

TestProducer::~TestProducer() {
  if (rk_ != nullptr) rd_kafka_destroy(rk_);
}

void TestProducer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message,
                              void* opaque) {
  auto* deliveries = static_cast<Deliveries*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++deliveries->delivered;
  } else if (deliveries->failed++ == 0) {
    deliveries->first_error = rd_kafka_err2name(message->err);
  }
}

absl::Status TestProducer::Produce(const std::string& topic,
                                   const std::vector<std::string>& values,
                                   const std::vector<std::string>& keys) {
  if (!keys.empty() && keys.size() != values.size()) {
    return absl::InvalidArgumentError(absl::StrCat("producing to ", topic, ": ",
                                                   keys.size(), " keys for ",
                                                   values.size(), " values"));
  }
  deliveries_ = Deliveries();
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string key = keys.empty() ? absl::StrCat("k", i) : keys[i];
    for (;;) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(values[i].data()),
                           values[i].size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        return absl::InternalError(absl::StrCat("producing to ", topic, " on ",
                                                bootstrap_, ": ",
                                                rd_kafka_err2name(err)));
      }
      rd_kafka_poll(rk_, 100);
    }
    rd_kafka_poll(rk_, 0);
  }
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(rk_, 90000);
  if (deliveries_.failed > 0 || flushed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat(
        "producing ", values.size(), " records to ", topic, " on ", bootstrap_,
        ": ", deliveries_.delivered, " delivered, ", deliveries_.failed,
        " failed (first: ", deliveries_.first_error,
        "), flush: ", rd_kafka_err2name(flushed)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TestConsumer>> TestConsumer::Create(
    const std::string& bootstrap, const std::string& topic,
    bool read_committed) {
  absl::StatusOr<Client> client =
      NewClient(RD_KAFKA_CONSUMER, bootstrap,
                {{"group.id", UniqueKafkaName("kpistream-test-reader")},
                 {"isolation.level",
                  read_committed ? "read_committed" : "read_uncommitted"},
                 {"enable.auto.commit", "false"},
                 {"enable.partition.eof", "false"}},
                /*quiet=*/false);
  if (!client.ok()) return client.status();
  auto consumer = absl::WrapUnique(new TestConsumer());
  consumer->rk_ = client->release();
  absl::StatusOr<Metadata> md =
      FetchMetadata(consumer->rk_, topic, absl::Seconds(10));
  if (!md.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "reading ", topic, " on ", bootstrap, ": ", md.status().message()));
  }
  const rd_kafka_metadata_topic_t* t = FindTopic(**md, topic);
  if (t == nullptr || t->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
      t->partition_cnt == 0) {
    return absl::NotFoundError(absl::StrCat(
        "reading ", topic, " on ", bootstrap, ": topic ",
        t == nullptr ? "not in the metadata" : rd_kafka_err2name(t->err)));
  }
  rd_kafka_topic_partition_list_t* partitions =
      rd_kafka_topic_partition_list_new(t->partition_cnt);
  for (int p = 0; p < t->partition_cnt; ++p) {
    rd_kafka_topic_partition_list_add(partitions, topic.c_str(),
                                      t->partitions[p].id)
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  const rd_kafka_resp_err_t assigned =
      rd_kafka_assign(consumer->rk_, partitions);
  rd_kafka_topic_partition_list_destroy(partitions);
  if (assigned != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("assigning ", topic, ": ", rd_kafka_err2name(assigned)));
  }
  return consumer;
}

TestConsumer::~TestConsumer() {
  if (rk_ == nullptr) return;
  rd_kafka_consumer_close(rk_);
  rd_kafka_destroy(rk_);
}

std::vector<KafkaRecord> TestConsumer::Read(size_t count,
                                            absl::Duration timeout) {
  std::vector<KafkaRecord> records;
  const absl::Time deadline = absl::Now() + timeout;
  while (records.size() < count && absl::Now() < deadline) {
    const int64_t wait_ms = std::clamp<int64_t>(
        absl::ToInt64Milliseconds(deadline - absl::Now()), 0, 100);
    rd_kafka_message_t* message =
        rd_kafka_consumer_poll(rk_, static_cast<int>(wait_ms));
    if (message == nullptr) continue;
    // Errors (a broker down, a leader moving) are retried by librdkafka.
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      KafkaRecord record;
      if (message->key != nullptr) {
        record.key.assign(static_cast<const char*>(message->key),
                          message->key_len);
      }
      if (message->payload != nullptr) {
        record.value.assign(static_cast<const char*>(message->payload),
                            message->len);
      }
      record.partition = message->partition;
      record.offset = message->offset;
      records.push_back(std::move(record));
    }
    rd_kafka_message_destroy(message);
  }
  return records;
}

absl::Status ProduceToKafka(const std::string& bootstrap,
                            const std::string& topic,
                            const std::vector<std::string>& values,
                            const std::vector<std::string>& keys,
                            const std::map<std::string, std::string>& config) {
  absl::StatusOr<std::unique_ptr<TestProducer>> producer =
      TestProducer::Create(bootstrap, config);
  if (!producer.ok()) return producer.status();
  return (*producer)->Produce(topic, values, keys);
}

absl::StatusOr<std::vector<KafkaRecord>> ConsumeFromKafka(
    const std::string& bootstrap, const std::string& topic, size_t count,
    absl::Duration timeout, bool read_committed) {
  absl::StatusOr<std::unique_ptr<TestConsumer>> consumer =
      TestConsumer::Create(bootstrap, topic, read_committed);
  if (!consumer.ok()) return consumer.status();
  std::vector<KafkaRecord> records = (*consumer)->Read(count, timeout);
  std::sort(records.begin(), records.end(),
            [](const KafkaRecord& a, const KafkaRecord& b) {
              return std::tie(a.partition, a.offset) <
                     std::tie(b.partition, b.offset);
            });
  return records;
}

absl::StatusOr<std::unique_ptr<KafkaCluster>> KafkaCluster::Start(
    KafkaClusterOptions options) {
  if (options.nodes < 1) {
    return absl::InvalidArgumentError("a Kafka cluster needs at least 1 node");
  }
  const std::string libs = KafkaLibs();
  std::error_code ignored;
  bool has_jars = false;
  for (const auto& entry : fs::directory_iterator(libs, ignored)) {
    if (absl::StartsWith(entry.path().filename().string(), "kafka_2.13-")) {
      has_jars = true;
    }
  }
  if (!has_jars) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no Apache Kafka jars (kafka_2.13-*.jar) in '", libs,
        "': run .ci/fetch-kafka (.ci/setup does), or point "
        "KPISTREAM_KAFKA_LIBS at a directory of the broker's jars"));
  }
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto cluster = absl::WrapUnique(new KafkaCluster());
    cluster->options_ = options;
    if (options.dir.empty()) {
      cluster->owned_dir_ = std::make_unique<TempDir>();
      cluster->dir_ = cluster->owned_dir_->path();
    } else {
      cluster->dir_ = options.dir;
      fs::remove_all(options.dir, ignored);
      fs::create_directories(options.dir, ignored);
    }
    // Every port distinct, also from the other nodes' (FreePort releases it).
    std::set<int> ports;
    auto take_port = [&ports] {
      int port = FreePort();
      while (!ports.insert(port).second) port = FreePort();
      return port;
    };
    for (int i = 0; i < options.nodes; ++i) {
      Node node;
      node.id = i;
      node.port = take_port();
      node.controller_port = take_port();
      node.dir = absl::StrCat(cluster->dir_, "/node-", i);
      cluster->nodes_.push_back(node);
    }
    std::vector<std::string> addresses;
    std::vector<int> all;
    for (const Node& node : cluster->nodes_) {
      addresses.push_back(absl::StrCat("127.0.0.1:", node.port));
      all.push_back(node.id);
    }
    cluster->bootstrap_ = absl::StrJoin(addresses, ",");

    last = cluster->Format(NewClusterId());
    for (int i = 0; last.ok() && i < cluster->size(); ++i) {
      last = cluster->Spawn(cluster->nodes_[i]);
    }
    if (last.ok()) last = cluster->WaitUntilServing(all, options.start_timeout);
    if (last.ok()) return cluster;
    // A port taken between FreePort and the broker's bind: try new ones.
    if (!absl::StrContains(last.message(), "Address already in use")) break;
  }
  return last;
}

absl::Status KafkaCluster::Format(const std::string& cluster_id) {
  const int n = size();
  std::vector<std::string> voters;
  for (const Node& node : nodes_) {
    voters.push_back(
        absl::StrCat(node.id, "@127.0.0.1:", node.controller_port));
  }
  const std::string log4j = dir_ + "/log4j2.properties";
  std::ofstream(log4j)
      << "status = warn\n"
         "appender.file.type = File\n"
         "appender.file.name = file\n"
         "appender.file.fileName = ${sys:kafka.logs.dir}/server.log\n"
         "appender.file.layout.type = PatternLayout\n"
         "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
         "rootLogger.level = INFO\n"
         "rootLogger.appenderRef.file.ref = file\n";
  std::vector<pid_t> formatting;
  for (Node& node : nodes_) {
    std::error_code error;
    fs::create_directories(node.dir, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("creating ", node.dir, ": ", error.message()));
    }
    std::map<std::string, std::string> config = {
        {"process.roles", "broker,controller"},
        {"node.id", absl::StrCat(node.id)},
        {"controller.quorum.voters", absl::StrJoin(voters, ",")},
        {"listeners",
         absl::StrCat("PLAINTEXT://127.0.0.1:", node.port,
                      ",CONTROLLER://127.0.0.1:", node.controller_port)},
        {"advertised.listeners",
         absl::StrCat("PLAINTEXT://127.0.0.1:", node.port)},
        {"controller.listener.names", "CONTROLLER"},
        {"inter.broker.listener.name", "PLAINTEXT"},
        {"listener.security.protocol.map",
         "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
        {"log.dirs", node.dir + "/data"},
        // Few threads: 2 cores are shared by every test.
        {"num.network.threads", "2"},
        {"num.io.threads", "2"},
        {"background.threads", "2"},
        {"num.replica.fetchers", "1"},
        {"num.recovery.threads.per.data.dir", "1"},
        {"num.partitions", "1"},
        {"default.replication.factor", absl::StrCat(n)},
        {"auto.create.topics.enable", "false"},
        {"group.initial.rebalance.delay.ms", "0"},
        {"offsets.topic.replication.factor", absl::StrCat(n)},
        {"offsets.topic.num.partitions", "5"},
        {"transaction.state.log.replication.factor", absl::StrCat(n)},
        {"transaction.state.log.min.isr", absl::StrCat(std::min(n, 2))},
        {"transaction.state.log.num.partitions", "5"},
        {"share.coordinator.state.topic.replication.factor", absl::StrCat(n)},
        {"share.coordinator.state.topic.min.isr", absl::StrCat(std::min(n, 2))},
        // A producer that died mid-transaction is aborted about a second
        // after its transaction.timeout.ms.
        {"transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000"},
        {"log.cleaner.enable", "true"},
        {"log.cleaner.threads", "1"},
        {"log.cleaner.backoff.ms", "1000"},
        {"log.cleaner.dedupe.buffer.size", "16777216"},
        {"log.retention.check.interval.ms", "10000"},
        // A killed broker is fenced (its leaderships move) after 6 s.
        {"broker.heartbeat.interval.ms", "1000"},
        {"broker.session.timeout.ms", "6000"},
    };
    for (const auto& [key, value] : options_.broker_config) config[key] = value;
    std::ofstream properties(node.dir + "/server.properties");
    for (const auto& [key, value] : config)
      properties << key << "=" << value << "\n";
    properties.close();

    absl::StatusOr<pid_t> pid = SpawnLogged(
        {JavaBinary(), "-Xmx128m", "-XX:+UseSerialGC",
         "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
         "-Dkafka.logs.dir=" + node.dir, "-Dlog4j2.configurationFile=" + log4j,
         "-cp", KafkaLibs() + "/*", "kafka.tools.StorageTool", "format", "-t",
         cluster_id, "-c", node.dir + "/server.properties"},
        node.dir + "/format.log");
    if (!pid.ok()) return pid.status();
    formatting.push_back(*pid);
  }
  absl::Status status;
  for (size_t i = 0; i < formatting.size(); ++i) {
    int exit_status = 0;
    if (waitpid(formatting[i], &exit_status, 0) != formatting[i] ||
        !WIFEXITED(exit_status) || WEXITSTATUS(exit_status) != 0) {
      status = absl::InternalError(absl::StrCat(
          "formatting the storage of kafka node ", i,
          " (kafka.tools.StorageTool) failed: ", DescribeExit(exit_status),
          "\n", Tail(nodes_[i].dir + "/format.log", 30)));
    }
  }
  return status;
}

absl::Status KafkaCluster::Spawn(Node& node) {
  const std::string heap = absl::StrCat(options_.heap_mb, "m");
  std::vector<std::string> argv = {JavaBinary(), "-Xmx" + heap};
  if (options_.production_jvm) {
    // As kafka-server-start.sh and kafka-run-class.sh start a broker.
    argv.insert(argv.end(),
                {"-Xms" + heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                 "-XX:InitiatingHeapOccupancyPercent=35",
                 "-XX:+ExplicitGCInvokesConcurrent"});
  } else {
    argv.insert(argv.end(),
                {"-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"});
  }
  argv.insert(
      argv.end(),
      {"-XX:-UsePerfData", "-XX:+ExitOnOutOfMemoryError",
       "-Djava.awt.headless=true", "-Dkafka.logs.dir=" + node.dir,
       // lz4-java unpacks its native library into the temporary directory and
       // removes it only when the JVM exits cleanly: a killed node (the crash
       // tests) left one in /tmp each time.
       "-Djava.io.tmpdir=" + node.dir,
       "-Dlog4j2.configurationFile=" + dir_ + "/log4j2.properties", "-cp",
       KafkaLibs() + "/*", "kafka.Kafka", node.dir + "/server.properties"});
  absl::StatusOr<pid_t> pid = SpawnLogged(argv, node.dir + "/stdout.log");
  if (!pid.ok()) return pid.status();
  node.pid = *pid;
  return absl::OkStatus();
}

bool KafkaCluster::Running(int i) {
  Node& node = nodes_.at(i);
  if (node.pid <= 0) return false;
  int status = 0;
  if (waitpid(node.pid, &status, WNOHANG) == 0) return true;
  std::ofstream(node.dir + "/stdout.log", std::ios::app)
      << "[kafka_cluster] node exited: " << DescribeExit(status) << "\n";
  node.pid = -1;
  return false;
}

bool KafkaCluster::Reap(int i, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Running(i)) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

absl::Status KafkaCluster::WaitUntilServing(const std::vector<int>& nodes,
                                            absl::Duration timeout) {
  absl::StatusOr<Client> client =
      NewClient(RD_KAFKA_PRODUCER, bootstrap_, {}, /*quiet=*/true);
  if (!client.ok()) return client.status();
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status state;
  for (;;) {
    for (int i : nodes) {
      if (!Running(i)) {
        return absl::UnavailableError(
            absl::StrCat("kafka node ", i, " in ", dir_,
                         " exited before serving\n", AllLogTails()));
      }
    }
    state = [&]() -> absl::Status {
      absl::StatusOr<Metadata> md =
          FetchMetadata(client->get(), "", absl::Seconds(2));
      if (!md.ok()) return md.status();
      std::set<int> brokers;
      for (int b = 0; b < (*md)->broker_cnt; ++b) {
        brokers.insert((*md)->brokers[b].id);
      }
      for (int i : nodes) {
        if (brokers.count(i) == 0) {
          return absl::UnavailableError(absl::StrCat(
              "broker ", i, " not in the metadata (brokers there: ",
              absl::StrJoin(brokers, ","), ")"));
        }
      }
      const rd_kafka_metadata_topic_t* ready = FindTopic(**md, kReadyTopic);
      if (ready == nullptr) {
        if (static_cast<int>(brokers.size()) < size()) {
          return absl::UnavailableError("waiting for every broker");
        }
        absl::Status created =
            CreateTopicWith(client->get(), bootstrap_, kReadyTopic, 1, size(),
                            {}, absl::Seconds(10));
        if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
        return absl::UnavailableError("created the readiness topic");
      }
      if (ready->partition_cnt != 1 || ready->partitions[0].leader < 0) {
        return absl::UnavailableError("the readiness topic has no leader");
      }
      // Every node is back in the ISR of every partition it replicates.
      for (int t = 0; t < (*md)->topic_cnt; ++t) {
        const rd_kafka_metadata_topic_t& topic = (*md)->topics[t];
        for (int q = 0; q < topic.partition_cnt; ++q) {
          const rd_kafka_metadata_partition_t& p = topic.partitions[q];
          const std::set<int> replicas(p.replicas, p.replicas + p.replica_cnt);
          const std::set<int> isr(p.isrs, p.isrs + p.isr_cnt);
          for (int i : nodes) {
            if (replicas.count(i) != 0 && isr.count(i) == 0) {
              return absl::UnavailableError(
                  absl::StrCat("broker ", i, " not in the ISR of ", topic.topic,
                               "[", p.id, "] (", absl::StrJoin(isr, ","), ")"));
            }
          }
        }
      }
      return absl::OkStatus();
    }();
    if (state.ok()) return state;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("kafka cluster in ", dir_, " not serving after ",
                       absl::FormatDuration(timeout), ": ", state.message(),
                       "\n", AllLogTails()));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

KafkaCluster::~KafkaCluster() {
  // The data goes with the cluster, so there is nothing to shut down cleanly
  // (and 3 nodes stopping at once take 5-15 s to agree on it).
  for (int i = 0; i < size(); ++i) {
    if (Running(i)) kill(nodes_[i].pid, SIGKILL);
  }
  for (int i = 0; i < size(); ++i) Reap(i, absl::Seconds(10));
}

absl::Status KafkaCluster::CreateTopic(
    const std::string& name, int partitions, int replication,
    const std::map<std::string, std::string>& configs) const {
  return CreateKafkaTopic(bootstrap_, name, partitions, replication, configs);
}

absl::StatusOr<int> KafkaCluster::LeaderOf(const std::string& topic,
                                           int partition) const {
  return KafkaPartitionLeader(bootstrap_, topic, partition);
}

absl::Status KafkaCluster::StopBroker(int i, StopMode mode) {
  if (i < 0 || i >= size()) {
    return absl::InvalidArgumentError(absl::StrCat("no kafka node ", i));
  }
  if (!Running(i)) {
    return absl::FailedPreconditionError(
        absl::StrCat("kafka node ", i, " is not running"));
  }
  kill(nodes_[i].pid, mode == StopMode::kKill ? SIGKILL : SIGTERM);
  if (!Reap(i, absl::Seconds(60))) {
    kill(nodes_[i].pid, SIGKILL);
    Reap(i, absl::Seconds(10));
    return absl::DeadlineExceededError(absl::StrCat(
        "kafka node ", i, " did not stop within 60 s of SIGTERM (killed)\n",
        LogTail(i)));
  }
  return absl::OkStatus();
}

absl::Status KafkaCluster::StartBroker(int i) {
  if (i < 0 || i >= size()) {
    return absl::InvalidArgumentError(absl::StrCat("no kafka node ", i));
  }
  if (Running(i)) {
    return absl::FailedPreconditionError(
        absl::StrCat("kafka node ", i, " is already running"));
  }
  absl::Status spawned = Spawn(nodes_[i]);
  if (!spawned.ok()) return spawned;
  return WaitUntilServing({i}, options_.start_timeout);
}

std::string KafkaCluster::LogTail(int i, int lines) const {
  const Node& node = nodes_.at(i);
  return absl::StrCat("--- kafka node ", i, " (127.0.0.1:", node.port,
                      ") server.log:\n", Tail(node.dir + "/server.log", lines),
                      "--- kafka node ", i, " stdout/stderr:\n",
                      Tail(node.dir + "/stdout.log", lines));
}

std::string KafkaCluster::AllLogTails() const {
  std::string tails;
  for (int i = 0; i < size(); ++i) absl::StrAppend(&tails, LogTail(i));
  return tails;
}

}  // namespace kpistream::testing
