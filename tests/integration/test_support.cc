#include "tests/integration/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "kpistream/v1/web_event.pb.h"
#include "librdkafka/rdkafka.h"

namespace kpistream::testing {

std::string KpistreamBinary() {
  const char* bin = std::getenv("KPISTREAM_BIN");
  return bin ? bin : KPISTREAM_DEFAULT_BIN;
}

std::string SourceDir() {
  const char* dir = std::getenv("KPISTREAM_SOURCE_DIR");
  return dir ? dir : KPISTREAM_DEFAULT_SOURCE_DIR;
}

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "kpistream-test-XXXXXX")
          .string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Write(const std::string& name,
                           const std::string& content) const {
  std::string file = path_ + "/" + name;
  std::ofstream(file) << content;
  return file;
}

namespace {

// The TMPDIR of the engines a test process starts: one per test process,
// removed when it exits. The engine keeps its local state under it by
// default (processing.state_dir), so a test never meets the state of
// another test, or of an earlier run against another broker; the engines
// of one test (restarts, several instances) share it, as the processes of
// one machine do.
const std::string& EngineTmpDir() {
  static const TempDir* dir = new TempDir();
  static const struct Remover {
    ~Remover() {
      std::error_code ignored;
      std::filesystem::remove_all(dir->path(), ignored);
    }
  } remover;
  return dir->path();
}

}  // namespace

Subprocess::Subprocess(std::vector<std::string> argv) {
  const bool engine = !argv.empty() && argv[0] == KpistreamBinary();
  const std::string tmpdir = engine ? EngineTmpDir() : std::string();
  char pattern[] = "/tmp/kpistream-stderr-XXXXXX";
  int err_fd = mkstemp(pattern);
  stderr_path_ = pattern;
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    close(out[0]);
    close(out[1]);
    if (engine) setenv("TMPDIR", tmpdir.c_str(), 1);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err_fd);
  stdout_fd_ = out[0];
}

Subprocess::~Subprocess() {
  if (Running()) Stop(SIGKILL, absl::Seconds(5));
  if (stdout_fd_ >= 0) close(stdout_fd_);
  unlink(stderr_path_.c_str());
}

absl::StatusOr<std::string> Subprocess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    size_t newline = buffered_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      return line;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("no line on stdout in time");
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left))) <= 0) {
      continue;
    }
    char chunk[4096];
    ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
    if (n <= 0) return absl::UnavailableError("stdout closed");
    buffered_.append(chunk, n);
  }
}

bool Subprocess::Running() {
  if (exit_code_ != -2 || pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

int Subprocess::Stop(int signal, absl::Duration timeout) {
  if (!Running()) return exit_code_;
  kill(pid_, signal);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!Running()) return exit_code_;
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  exit_code_ = -1;
  return exit_code_;
}

std::string Subprocess::Stderr() const {
  std::ifstream in(stderr_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::string& input, absl::Duration timeout) {
  TempDir dir;
  const std::string in_path = dir.Write("stdin", input);
  const std::string out_path = dir.path() + "/stdout";
  const std::string err_path = dir.path() + "/stderr";
  CommandResult result;
  const bool engine = !argv.empty() && argv[0] == KpistreamBinary();
  const std::string tmpdir = engine ? EngineTmpDir() : std::string();
  pid_t pid = fork();
  if (pid == 0) {
    if (engine) setenv("TMPDIR", tmpdir.c_str(), 1);
    int in_fd = open(in_path.c_str(), O_RDONLY);
    int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    std::vector<char*> args;
    std::vector<std::string> copy = argv;
    for (std::string& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      result.exit_code =
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.exit_code = -1;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::stringstream out, err;
  out << std::ifstream(out_path).rdbuf();
  err << std::ifstream(err_path).rdbuf();
  result.out = out.str();
  result.err = err.str();
  return result;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

absl::StatusOr<HttpResponse> HttpGetResponse(int port, const std::string& path,
                                             const std::string& accept) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect 127.0.0.1:", port));
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string request = absl::StrCat(
      "GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
      accept.empty() ? "" : absl::StrCat("Accept: ", accept, "\r\n"), "\r\n");
  if (send(fd, request.data(), request.size(), 0) < 0) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string response;
  char chunk[16384];
  ssize_t n;
  while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0) response.append(chunk, n);
  close(fd);
  size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos) return absl::UnavailableError("bad response");
  HttpResponse out;
  if (response.size() < 12 || !absl::StartsWith(response, "HTTP/1.") ||
      !absl::SimpleAtoi(response.substr(9, 3), &out.code)) {
    return absl::UnavailableError("bad response");
  }
  out.status_line = response.substr(0, response.find('\r'));
  out.body = response.substr(body + 4);
  return out;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path,
                                    const std::string& accept) {
  auto response = HttpGetResponse(port, path, accept);
  if (!response.ok()) return response.status();
  if (response->code != 200) {
    return absl::UnavailableError(response->status_line);
  }
  return std::move(response->body);
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return condition();
}

double MetricValue(const std::string& page, const std::string& name,
                   const std::map<std::string, std::string>& labels) {
  double sum = 0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    absl::string_view series = line.substr(0, line.rfind(' '));
    absl::string_view value = line.substr(line.rfind(' ') + 1);
    absl::string_view metric = series.substr(0, series.find('{'));
    if (metric != name) continue;
    bool match = true;
    for (const auto& [key, want] : labels) {
      const std::string pair = absl::StrCat(key, "=\"", want, "\"");
      if (series.find(absl::StrCat("{", pair)) == absl::string_view::npos &&
          series.find(absl::StrCat(",", pair)) == absl::string_view::npos) {
        match = false;
        break;
      }
    }
    if (!match) continue;
    double v = 0;
    if (!absl::SimpleAtod(value, &v)) continue;
    sum += v;
    found = true;
  }
  return found ? sum : -1;
}

absl::StatusOr<int> AdvanceEventTime(const std::string& bootstrap,
                                     const std::string& topic, int partitions,
                                     absl::Time at, bool json) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err,
                    sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) return absl::InternalError(err);
  for (int p = 0; p < partitions; ++p) {
    kpistream::v1::WebEvent e;
    e.set_event_id(absl::StrCat("advance-", p, "-", absl::ToUnixSeconds(at)));
    e.mutable_event_time()->set_seconds(absl::ToUnixSeconds(at));
    e.set_site_id("shop");
    e.set_visitor_id(absl::StrCat("crawler-", p));
    e.set_type(kpistream::v1::PAGE_VIEW);
    e.set_user_agent("Googlebot/2.1");
    std::string value;
    if (json) {
      (void)google::protobuf::util::MessageToJsonString(e, &value);
    } else {
      value = e.SerializeAsString();
    }
    const std::string key = e.visitor_id();
    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                      RD_KAFKA_V_PARTITION(p),
                      RD_KAFKA_V_KEY(key.data(), key.size()),
                      RD_KAFKA_V_VALUE(value.data(), value.size()),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  }
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(rk, 30000);
  rd_kafka_destroy(rk);
  if (flushed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(rd_kafka_err2str(flushed));
  }
  return partitions;
}

BrokerProcess::BrokerProcess(const std::vector<std::string>& topics)
    : process_([&] {
        std::vector<std::string> argv = {KpistreamBinary(), "broker"};
        for (const std::string& t : topics) {
          argv.push_back("--topic");
          argv.push_back(t);
        }
        return argv;
      }()) {
  auto line = process_.ReadLine(absl::Seconds(20));
  if (line.ok()) bootstrap_ = *line;
}

std::unique_ptr<Subprocess> StartPrometheus(const TempDir& dir, int scrape_port,
                                            const std::string& rule_file,
                                            int* port) {
  *port = FreePort();
  std::string config =
      "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n";
  if (!rule_file.empty())
    absl::StrAppend(&config, "rule_files:\n  - ", rule_file, "\n");
  absl::StrAppend(&config,
                  "scrape_configs:\n  - job_name: kpistream\n    "
                  "static_configs:\n      - targets: ['127.0.0.1:",
                  scrape_port, "']\n");
  auto prometheus = std::make_unique<Subprocess>(std::vector<std::string>{
      "prometheus", "--config.file=" + dir.Write("prometheus.yml", config),
      "--storage.tsdb.path=" + dir.path() + "/tsdb",
      "--web.listen-address=127.0.0.1:" + std::to_string(*port)});
  if (!WaitFor([&] { return HttpGet(*port, "/-/ready").ok(); },
               absl::Seconds(30))) {
    ADD_FAILURE() << "prometheus not ready: " << prometheus->Stderr();
  }
  return prometheus;
}

double RecordsProduced(const std::string& out) {
  const size_t at = out.find("garbage; ");
  double records = 0;
  if (at == std::string::npos ||
      !absl::SimpleAtod(out.substr(at + 9, out.find(' ', at + 9) - at - 9),
                        &records)) {
    return 0;
  }
  return records;
}

}  // namespace kpistream::testing
