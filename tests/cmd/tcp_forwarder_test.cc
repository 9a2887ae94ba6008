#include "cmd/tcp_forwarder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

// A loopback TCP server that echoes every connection until its peer closes.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    listen(fd_, 16);
    socklen_t length = sizeof(sin);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &length);
    port_ = ntohs(sin.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd pfd{fd_, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) continue;
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        ++accepted_;
        std::thread([c] {
          char buf[4096];
          ssize_t n;
          while ((n = read(c, buf, sizeof(buf))) > 0) {
            if (send(c, buf, n, MSG_NOSIGNAL) != n) break;
          }
          close(c);
        }).detach();
      }
    });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(port));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads until end of stream or 5 s.
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, n);
  }
  return out;
}

TEST(TcpForwarderTest, RelaysBothWaysUntilTheClientIsDone) {
  EchoServer echo;
  auto forwarder = TcpForwarder::Start("127.0.0.1:0",
                                       absl::StrCat("127.0.0.1:", echo.port()));
  ASSERT_TRUE(forwarder.ok()) << forwarder.status();
  ASSERT_GT((*forwarder)->port(), 0);
  std::string payload;
  for (int i = 0; i < 200000; ++i) payload += static_cast<char>('a' + i % 26);
  // Several connections at once, each with a megabyte-ish of data.
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    fds.push_back(Connect((*forwarder)->port()));
    ASSERT_GE(fds.back(), 0);
  }
  std::vector<std::thread> writers;
  for (int fd : fds) {
    writers.emplace_back([fd, &payload] {
      size_t sent = 0;
      while (sent < payload.size()) {
        const ssize_t n = send(fd, payload.data() + sent, payload.size() - sent,
                               MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += n;
      }
      shutdown(fd, SHUT_WR);  // the end of stream reaches the server
    });
  }
  for (int fd : fds) EXPECT_EQ(ReadAll(fd), payload);
  for (auto& w : writers) w.join();
  for (int fd : fds) close(fd);
  EXPECT_EQ(echo.accepted(), 3);
}

TEST(TcpForwarderTest, ATargetThatRefusesClosesTheConnection) {
  int refused_port;
  {
    EchoServer gone;  // a port that was free a moment ago
    refused_port = gone.port();
  }
  auto forwarder = TcpForwarder::Start(
      "127.0.0.1:0", absl::StrCat("127.0.0.1:", refused_port));
  ASSERT_TRUE(forwarder.ok());
  const int fd = Connect((*forwarder)->port());
  ASSERT_GE(fd, 0);
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadAll(fd), "");
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  close(fd);
}

TEST(TcpForwarderTest, ABusyPortIsAnErrorNamingIt) {
  EchoServer echo;
  auto first = TcpForwarder::Start("127.0.0.1:0",
                                   absl::StrCat("127.0.0.1:", echo.port()));
  ASSERT_TRUE(first.ok());
  const std::string taken = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second =
      TcpForwarder::Start(taken, absl::StrCat("127.0.0.1:", echo.port()));
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsUnavailable(second.status()));
  EXPECT_TRUE(absl::StrContains(second.status().message(), taken))
      << second.status();
  EXPECT_FALSE(TcpForwarder::Start("nohost:1", taken).ok());
}

TEST(TcpForwarderTest, StopsWithConnectionsOpen) {
  EchoServer echo;
  auto forwarder = TcpForwarder::Start("127.0.0.1:0",
                                       absl::StrCat("127.0.0.1:", echo.port()));
  ASSERT_TRUE(forwarder.ok());
  const int fd = Connect((*forwarder)->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "x", 1, MSG_NOSIGNAL), 1);
  char c;
  ASSERT_EQ(read(fd, &c, 1), 1);
  const absl::Time start = absl::Now();
  forwarder->reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(ReadAll(fd), "");  // closed by the forwarder
  close(fd);
}

}  // namespace
}  // namespace kpistream
