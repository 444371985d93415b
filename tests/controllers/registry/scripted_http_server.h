#pragma once

// A scripted HTTP/1.1 server on 127.0.0.1 (kernel-chosen port) for the registry client's unit
// tests: each request (method, target, headers, body) is recorded and answered by a handler; a
// handler may hang a request (read it, never answer) to exercise timeouts. One request per
// connection, served on one thread. Test-only.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::controllers::testing {

struct HttpRequest {
  std::string method;
  std::string target;   // path and query as sent
  std::string headers;  // the request line and header lines, each ending in \r\n
  std::string body;
};

struct HttpReply {
  int status = 200;
  std::string body;
  bool hang = false;
};

class ScriptedHttpServer {
 public:
  using Handler = std::function<HttpReply(const HttpRequest&)>;

  explicit ScriptedHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }

  ~ScriptedHttpServer() {
    stop_ = true;
    thread_.join();
    for (int fd : held_) ::close(fd);
    ::close(listen_fd_);
  }

  int port() const { return port_; }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Serve(fd);
    }
  }

  // Reads until the header block and Content-Length bytes of body are in (or the peer stops).
  static bool ReadRequest(int fd, HttpRequest* req) {
    std::string data;
    char buf[4096];
    size_t header_end = std::string::npos;
    size_t want = 0;
    for (;;) {
      if (header_end != std::string::npos && data.size() >= header_end + 4 + want) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return false;
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return false;
      data.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = data.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          std::string lower = data.substr(0, header_end);
          for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          const size_t cl = lower.find("content-length:");
          if (cl != std::string::npos) want = std::stoul(lower.substr(cl + 15));
        }
      }
    }
    const size_t sp1 = data.find(' ');
    const size_t sp2 = data.find(' ', sp1 + 1);
    req->method = data.substr(0, sp1);
    req->target = data.substr(sp1 + 1, sp2 - sp1 - 1);
    req->headers = data.substr(0, header_end + 2);  // each header line ends in \r\n
    req->body = data.substr(header_end + 4, want);
    return true;
  }

  void Serve(int fd) {
    HttpRequest req;
    if (!ReadRequest(fd, &req)) {
      ::close(fd);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
    }
    const HttpReply reply = handler_(req);
    if (reply.hang) {
      held_.push_back(fd);
      return;
    }
    const std::string out = "HTTP/1.1 " + std::to_string(reply.status) +
                            " X\r\nConnection: close\r\nContent-Type: application/json\r\n"
                            "Content-Length: " +
                            std::to_string(reply.body.size()) + "\r\n\r\n" + reply.body;
    size_t off = 0;
    while (off < out.size()) {
      const ssize_t n = ::write(fd, out.data() + off, out.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<int> held_;  // touched only on the server thread, then by the destructor
  mutable std::mutex mu_;
  std::vector<HttpRequest> requests_;  // guarded by mu_
};

}  // namespace sluice::controllers::testing
