#include "tests/lib/kube/loopback_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace sluice::kube::testing {

bool ServerConnection::Respond(int status, std::string_view body,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " X\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out += body;
  return Write(out);
}

bool ServerConnection::StartChunked(int status) {
  return Write("HTTP/1.1 " + std::to_string(status) +
               " X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
}

bool ServerConnection::Chunk(std::string_view data) {
  char size[32];
  snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return Write(std::string(size) + std::string(data) + "\r\n");
}

bool ServerConnection::EndChunks() {
  return Write("0\r\n\r\n");
}

namespace {

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

class Conn final : public ServerConnection {
 public:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Conn() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }

  bool Write(std::string_view data) override {
    while (!data.empty()) {
      long n = ssl_ != nullptr ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                               : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  bool WaitForPeerClose(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, 20);
      if (r > 0) {
        char c;
        long n = ::recv(fd_, &c, 1, MSG_PEEK);
        if (n <= 0) return true;
        // TLS close_notify or stray bytes: drain and keep looking.
        if (ssl_ != nullptr) {
          char buf[256];
          if (SSL_read(ssl_, buf, sizeof(buf)) <= 0) return true;
        } else if (::recv(fd_, &c, 1, 0) <= 0) {
          return true;
        }
      }
    }
    return false;
  }

  // Reads one request; false on EOF or a malformed request.
  bool ReadRequest(ServedRequest* req) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return false;
    }
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    std::string first = head.substr(0, line_end);
    size_t sp1 = first.find(' ');
    size_t sp2 = first.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) return false;
    req->method = first.substr(0, sp1);
    req->path = first.substr(sp1 + 1, sp2 - sp1 - 1);
    req->headers.clear();
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      pos = e + 2;
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      size_t v = line.find_first_not_of(' ', colon + 1);
      req->headers[name] = v == std::string::npos ? "" : line.substr(v);
    }
    size_t length = 0;
    if (auto it = req->headers.find("content-length"); it != req->headers.end()) {
      length = std::stoul(it->second);
    }
    while (buf_.size() < length) {
      if (!Fill()) return false;
    }
    req->body = buf_.substr(0, length);
    buf_.erase(0, length);
    req->client_cert_subject = client_subject_;
    return true;
  }

  bool Handshake() {
    if (ssl_ == nullptr) return true;
    SSL_set_fd(ssl_, fd_);
    if (SSL_accept(ssl_) != 1) return false;
    if (X509* peer = SSL_get1_peer_certificate(ssl_)) {
      char line[512];
      X509_NAME_oneline(X509_get_subject_name(peer), line, sizeof(line));
      client_subject_ = line;
      X509_free(peer);
    }
    return true;
  }

  int fd() const { return fd_; }

 private:
  bool Fill() {
    char tmp[16384];
    long n = ssl_ != nullptr ? SSL_read(ssl_, tmp, sizeof(tmp)) : ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  SSL* ssl_;
  std::string buf_;
  std::string client_subject_;
};

Result<std::unique_ptr<SSL_CTX, SslCtxDeleter>> MakeContext(const LoopbackTls& tls) {
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Internal("SSL_CTX_new failed");
  BIO* cb = BIO_new_mem_buf(tls.cert_pem.data(), static_cast<int>(tls.cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  BIO* kb = BIO_new_mem_buf(tls.key_pem.data(), static_cast<int>(tls.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(kb);
  bool ok = cert != nullptr && key != nullptr && SSL_CTX_use_certificate(ctx.get(), cert) == 1 &&
            SSL_CTX_use_PrivateKey(ctx.get(), key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) return Internal("loopback server: bad certificate or key");
  if (!tls.client_ca_pem.empty()) {
    BIO* ab = BIO_new_mem_buf(tls.client_ca_pem.data(), static_cast<int>(tls.client_ca_pem.size()));
    X509* ca = PEM_read_bio_X509(ab, nullptr, nullptr, nullptr);
    BIO_free(ab);
    if (ca == nullptr) return Internal("loopback server: bad client CA");
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca);
    X509_free(ca);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

}  // namespace

struct LoopbackServer::Impl {
  Handler handler;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx;
  int listen_fd = -1;
  std::atomic<bool> stopping{false};
  std::atomic<int> accepted{0};
  std::thread acceptor;
  std::mutex mu;
  std::vector<std::thread> workers;  // guarded by mu
  std::vector<int> open_fds;         // guarded by mu

  void Serve(int fd) {
    {
      SSL* ssl = ctx ? SSL_new(ctx.get()) : nullptr;
      Conn conn(fd, ssl);
      ServedRequest req;
      if (conn.Handshake()) {
        while (!stopping.load() && conn.ReadRequest(&req)) handler(req, conn);
      }
    }
    // Closed under the lock so the destructor never shuts down a reused descriptor.
    std::lock_guard<std::mutex> lock(mu);
    open_fds.erase(std::find(open_fds.begin(), open_fds.end(), fd));
    ::close(fd);
  }

  void Accept() {
    while (!stopping.load()) {
      int fd = ::accept(listen_fd, nullptr, nullptr);
      if (fd < 0) {
        if (stopping.load()) return;
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      ++accepted;
      std::lock_guard<std::mutex> lock(mu);
      open_fds.push_back(fd);
      workers.emplace_back([this, fd] { Serve(fd); });
    }
  }
};

Result<std::unique_ptr<LoopbackServer>> LoopbackServer::Start(Handler handler,
                                                              const LoopbackTls* tls) {
  // OpenSSL writes with write(2): a client that hung up must not kill the test with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  if (tls != nullptr) {
    auto ctx = MakeContext(*tls);
    if (!ctx.ok()) return ctx.status();
    impl->ctx = std::move(*ctx);
  }
  impl->listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(impl->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(impl->listen_fd, 64) != 0) {
    ::close(impl->listen_fd);
    return Unavailable(std::string("loopback server: ") + std::strerror(errno));
  }
  socklen_t len = sizeof(addr);
  getsockname(impl->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::unique_ptr<LoopbackServer> server(new LoopbackServer(std::move(impl)));
  server->port_ = ntohs(addr.sin_port);
  Impl* raw = server->impl_.get();
  raw->acceptor = std::thread([raw] { raw->Accept(); });
  return server;
}

LoopbackServer::LoopbackServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LoopbackServer::~LoopbackServer() {
  impl_->stopping.store(true);
  ::shutdown(impl_->listen_fd, SHUT_RDWR);
  impl_->acceptor.join();
  ::close(impl_->listen_fd);
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // Wakes workers blocked in a read; each closes its own descriptor.
    for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
    workers = std::move(impl_->workers);
  }
  for (auto& w : workers) w.join();
}

std::string LoopbackServer::url() const {
  return std::string(impl_->ctx ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

int LoopbackServer::connections_accepted() const {
  return impl_->accepted.load();
}

}  // namespace sluice::kube::testing
