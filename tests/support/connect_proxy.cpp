#include "tests/support/connect_proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

namespace sluice::testing {

struct ConnectProxy::Impl {
  int listen_fd = -1;
  std::atomic<bool> stopping{false};
  std::thread acceptor;
  mutable std::mutex mu;
  std::vector<std::thread> workers;  // guarded by mu
  std::vector<int> open_fds;         // guarded by mu; shut down on stop
  std::vector<std::string> targets;  // guarded by mu

  void Track(int fd) {
    std::lock_guard<std::mutex> lock(mu);
    open_fds.push_back(fd);
  }
  void Untrack(int fd) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& f : open_fds) {
      if (f == fd) f = -1;
    }
    ::close(fd);
  }

  static bool WriteAll(int fd, const char* data, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  static int Dial(const std::string& host, const std::string& port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string h = host;
    if (h.size() > 2 && h.front() == '[') h = h.substr(1, h.size() - 2);
    if (::getaddrinfo(h.c_str(), port.c_str(), &hints, &res) != 0) return -1;
    int fd = -1;
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
      ::close(fd);
      fd = -1;
    }
    ::freeaddrinfo(res);
    return fd;
  }

  void Serve(int client) {
    std::string head;
    char buf[16384];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
      ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        Untrack(client);
        return;
      }
      head.append(buf, static_cast<size_t>(n));
    }
    const size_t end = head.find("\r\n\r\n");
    const std::string line = head.substr(0, head.find("\r\n"));
    std::string rest = end == std::string::npos ? "" : head.substr(end + 4);
    // "CONNECT host:port HTTP/1.1"
    const size_t sp1 = line.find(' ');
    const size_t sp2 = line.find(' ', sp1 + 1);
    if (line.rfind("CONNECT ", 0) != 0 || sp2 == std::string::npos) {
      const char* no = "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n";
      WriteAll(client, no, std::strlen(no));
      Untrack(client);
      return;
    }
    const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    {
      std::lock_guard<std::mutex> lock(mu);
      targets.push_back(target);
    }
    const size_t colon = target.rfind(':');
    int upstream =
        colon == std::string::npos ? -1 : Dial(target.substr(0, colon), target.substr(colon + 1));
    if (upstream < 0) {
      const char* bad = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
      WriteAll(client, bad, std::strlen(bad));
      Untrack(client);
      return;
    }
    Track(upstream);
    const char* ok = "HTTP/1.1 200 Connection established\r\n\r\n";
    bool alive = WriteAll(client, ok, std::strlen(ok)) &&
                 (rest.empty() || WriteAll(upstream, rest.data(), rest.size()));
    while (alive && !stopping.load()) {
      pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
      int n = ::poll(fds, 2, 200);
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < 2 && alive; ++i) {
        if (fds[i].revents == 0) continue;
        ssize_t got = ::recv(fds[i].fd, buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          alive = false;
          break;
        }
        alive = WriteAll(i == 0 ? upstream : client, buf, static_cast<size_t>(got));
      }
    }
    Untrack(upstream);
    Untrack(client);
  }

  void Accept() {
    while (!stopping.load()) {
      pollfd p{listen_fd, POLLIN, 0};
      int n = ::poll(&p, 1, 200);
      if (n <= 0) continue;
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Track(fd);
      std::lock_guard<std::mutex> lock(mu);
      workers.emplace_back([this, fd] { Serve(fd); });
    }
  }
};

Result<std::unique_ptr<ConnectProxy>> ConnectProxy::Start() {
  auto impl = std::make_unique<Impl>();
  impl->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl->listen_fd < 0) return Internal(std::string("proxy socket: ") + strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(impl->listen_fd, 64) != 0 ||
      ::getsockname(impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string err = strerror(errno);
    ::close(impl->listen_fd);
    return Internal("proxy listen: " + err);
  }
  std::unique_ptr<ConnectProxy> proxy(new ConnectProxy(std::move(impl)));
  proxy->port_ = ntohs(addr.sin_port);
  Impl* raw = proxy->impl_.get();
  raw->acceptor = std::thread([raw] { raw->Accept(); });
  return proxy;
}

ConnectProxy::ConnectProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ConnectProxy::~ConnectProxy() {
  impl_->stopping = true;
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  ::close(impl_->listen_fd);
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (int fd : impl_->open_fds) {
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    }
    workers = std::move(impl_->workers);
  }
  for (auto& t : workers) t.join();
}

std::vector<std::string> ConnectProxy::targets() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->targets;
}

}  // namespace sluice::testing
