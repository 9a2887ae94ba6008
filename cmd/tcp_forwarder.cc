#include "cmd/tcp_forwarder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "config/config.h"

namespace kpistream {
namespace {

absl::StatusOr<sockaddr_in> ToAddress(const std::string& address) {
  std::string host;
  int port = 0;
  absl::Status valid = ParseListenAddress(address, &host, &port);
  if (!valid.ok()) return valid;
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", address, "\": \"", host, "\" is not an IPv4 address"));
  }
  return sin;
}

// Writes all of `data`; false when the peer is gone.
bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

struct TcpForwarder::Impl {
  // One relayed connection: `client` accepted, `server` connected to the
  // target; its thread copies both ways until both sides are done.
  struct Connection {
    int client = -1;
    int server = -1;
    std::thread thread;
    std::atomic<bool> finished{false};
  };

  int listen_fd = -1;
  int port = 0;
  sockaddr_in target{};
  std::atomic<bool> stopping{false};
  std::thread acceptor;
  std::mutex mu;  // guards connections
  std::list<std::unique_ptr<Connection>> connections;

  ~Impl() {
    stopping = true;
    if (acceptor.joinable()) acceptor.join();
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& c : connections) {
        shutdown(c->client, SHUT_RDWR);
        shutdown(c->server, SHUT_RDWR);
      }
    }
    for (auto& c : connections) c->thread.join();
    for (auto& c : connections) {
      close(c->client);
      close(c->server);
    }
    if (listen_fd >= 0) close(listen_fd);
  }

  static void Relay(Connection* c, const std::atomic<bool>* stopping) {
    char buffer[64 * 1024];
    bool open[2] = {true, true};  // client -> server, server -> client
    const int from[2] = {c->client, c->server};
    const int to[2] = {c->server, c->client};
    while ((open[0] || open[1]) && !stopping->load()) {
      pollfd fds[2];
      int n = 0;
      int direction[2];
      for (int d = 0; d < 2; ++d) {
        if (!open[d]) continue;
        fds[n] = {from[d], POLLIN, 0};
        direction[n++] = d;
      }
      const int ready = poll(fds, n, 100);
      if (ready < 0 && errno != EINTR) break;
      for (int i = 0; i < n && ready > 0; ++i) {
        if (fds[i].revents == 0) continue;
        const int d = direction[i];
        const ssize_t got = read(from[d], buffer, sizeof(buffer));
        if (got < 0 && errno == EINTR) continue;
        if (got > 0 && SendAll(to[d], buffer, static_cast<size_t>(got))) {
          continue;
        }
        // End of stream (or an error): pass the end on.
        open[d] = false;
        shutdown(to[d], SHUT_WR);
        if (got < 0) open[0] = open[1] = false;
      }
    }
    c->finished = true;
  }

  void Reap() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = connections.begin(); it != connections.end();) {
      if (!(*it)->finished) {
        ++it;
        continue;
      }
      (*it)->thread.join();
      close((*it)->client);
      close((*it)->server);
      it = connections.erase(it);
    }
  }

  void Accept() {
    while (!stopping.load()) {
      pollfd pfd{listen_fd, POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) {
        Reap();
        continue;
      }
      const int client = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      const int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (server < 0 || connect(server, reinterpret_cast<sockaddr*>(&target),
                                sizeof(target)) != 0) {
        if (server >= 0) close(server);
        close(client);
        continue;
      }
      auto connection = std::make_unique<Connection>();
      connection->client = client;
      connection->server = server;
      connection->thread =
          std::thread(&Impl::Relay, connection.get(), &stopping);
      std::lock_guard<std::mutex> lock(mu);
      connections.push_back(std::move(connection));
    }
  }
};

absl::StatusOr<std::unique_ptr<TcpForwarder>> TcpForwarder::Start(
    const std::string& listen, const std::string& target) {
  auto from = ToAddress(listen);
  if (!from.ok()) return from.status();
  auto to = ToAddress(target);
  if (!to.ok()) return to.status();
  std::unique_ptr<TcpForwarder> forwarder(new TcpForwarder());
  forwarder->impl_ = std::make_unique<Impl>();
  Impl& impl = *forwarder->impl_;
  impl.target = *to;
  impl.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  setsockopt(impl.listen_fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (bind(impl.listen_fd, reinterpret_cast<const sockaddr*>(&*from),
           sizeof(*from)) != 0 ||
      ::listen(impl.listen_fd, 64) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, ": ", std::strerror(errno)));
  }
  sockaddr_in bound{};
  socklen_t length = sizeof(bound);
  getsockname(impl.listen_fd, reinterpret_cast<sockaddr*>(&bound), &length);
  impl.port = ntohs(bound.sin_port);
  impl.acceptor = std::thread(&Impl::Accept, &impl);
  return forwarder;
}

TcpForwarder::~TcpForwarder() = default;

int TcpForwarder::port() const { return impl_->port; }

}  // namespace kpistream
