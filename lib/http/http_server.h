#pragma once

// A small HTTP/1.1 server on Boost.Beast, shared by sluice-server, sluice-router and the operator's
// /metrics and /healthz endpoints.
//
// Threading: `io_threads` threads, each running its own io_context; an accepted connection stays on
// one thread for its whole life, so a connection needs no locks. Handlers run on that io thread and
// must not block it: slow work is handed elsewhere and answered later through the Responder, from
// any thread.
//
// Connections are keep-alive with TCP_NODELAY. Requests on one connection are handled one at a time
// in arrival order, so pipelined requests are answered in order. Limits: header size (431), body
// size (413, checked against Content-Length before the body is read), a header read timeout and a
// body read timeout (408; slow clients cannot hold a connection open by trickling bytes), an idle
// keep-alive timeout and a write timeout (close). Error answers carry a JSON body {"error": "..."}.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "lib/base/status.h"
#include "lib/base/json_escape.h"
#include "lib/http/tls.h"

namespace sluice {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
using HttpStatus = boost::beast::http::status;
using HttpVerb = boost::beast::http::verb;

class HttpConnection;

// Answers one request. Move-only; Send may be called once, from any thread. A Responder dropped
// without Send answers 500, so a forgotten path never leaves a client hanging. The request passed
// to the handler stays valid (and unmodified) until Send is called. Every Responder must be sent or
// dropped before its HttpServer is destroyed: whoever hands requests to other threads stops those
// threads first.
class Responder {
 public:
  Responder() = default;
  explicit Responder(std::shared_ptr<HttpConnection> conn);
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  // Keep-alive, Content-Length and the Server header are filled in by the connection.
  void Send(HttpResponse&& response);
  void SendBody(HttpStatus status, std::string content_type, std::string body);
  void SendJson(HttpStatus status, std::string body) {
    SendBody(status, "application/json", std::move(body));
  }
  // {"error": message} with the message escaped.
  void SendError(HttpStatus status, std::string_view message);

  explicit operator bool() const { return conn_ != nullptr; }

  // The executor of the io thread that serves this request (the handler runs on it). A handler may
  // start its own asynchronous I/O there, e.g. a proxy's upstream call, so the request is served
  // without crossing threads. Only while the Responder holds a connection (before Send).
  boost::asio::any_io_executor executor() const;

 private:
  std::shared_ptr<HttpConnection> conn_;
};

using HttpHandler = std::function<void(const HttpRequest& request, Responder responder)>;

// Maps (method, path) to a handler: exact paths first, then the longest matching prefix. A known
// path with another method answers 405 with Allow; anything else 404. The query string is ignored
// for matching. Not thread-safe to modify; register everything before HttpServer::Start.
class HttpRouter {
 public:
  void Handle(HttpVerb method, std::string path, HttpHandler handler);
  // Matches every path that starts with `prefix`.
  void HandlePrefix(HttpVerb method, std::string prefix, HttpHandler handler);

  void Dispatch(const HttpRequest& request, Responder responder) const;

 private:
  struct Route {
    HttpVerb method;
    HttpHandler handler;
  };
  const std::vector<Route>* Find(std::string_view path) const;

  // Transparent, so a lookup by the request's string_view allocates nothing.
  struct PathHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::vector<Route>, PathHash, std::equal_to<>> exact_;
  std::vector<std::pair<std::string, std::vector<Route>>> prefixes_;  // longest first
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0 picks a free port; see HttpServer::port()
  int io_threads = 0;  // 0: one per core
  int backlog = 1024;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 64 * 1024 * 1024;
  // From the first byte of a request until its header is complete.
  std::chrono::milliseconds header_timeout{10'000};
  // From the end of the header until the body is complete.
  std::chrono::milliseconds body_timeout{30'000};
  // An open keep-alive connection with no request in progress is closed after this.
  std::chrono::milliseconds idle_timeout{120'000};
  std::chrono::milliseconds write_timeout{30'000};
  // While draining, an idle keep-alive connection gets this long to send one more request (answered
  // with Connection: close) before it is closed, so a client about to send is not cut off.
  std::chrono::milliseconds drain_idle_timeout{500};
  std::string server_name = "sluice";
  // Runs on each io thread when the server stops its threads, after it closed its connections.
  // Handlers that started their own I/O on a connection's executor (see Responder::executor)
  // cancel it here; a thread ends only once nothing is pending on it.
  std::function<void()> on_io_thread_stop;
  // When set, every connection is TLS (HTTPS) with the source's current context at accept time;
  // a client that does not complete the handshake within header_timeout is closed. Unset: plain
  // HTTP, with no TLS code on the path.
  std::shared_ptr<const TlsContextSource> tls;
};

// Owns the listening socket, the io threads and every connection. Create binds and starts
// serving. StopAccepting, Drain and Shutdown are called from one controlling thread (never from a
// handler); Shutdown (also run by the destructor) is idempotent.
class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Create(const HttpServerOptions& options,
                                                    std::shared_ptr<const HttpRouter> router);
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the chosen one when options.port was 0).
  uint16_t port() const { return port_; }
  const HttpServerOptions& options() const { return options_; }

  // Stops accepting new connections; open ones keep being served.
  void StopAccepting();

  // Graceful drain: stops accepting, closes idle keep-alive connections, answers the request in
  // progress on every other connection with Connection: close and then closes it. Returns true
  // when every connection closed before `deadline`; connections still open then are closed hard.
  // Stops the io threads either way. Idempotent.
  bool Drain(std::chrono::steady_clock::time_point deadline);

  // Drain with no grace: closes everything now and joins the io threads.
  void Shutdown();

  size_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }

 private:
  friend class HttpConnection;
  // One io_context and the connections living on it. `connections` and `sweep` are touched only
  // on that thread.
  struct IoThread {
    bool stopping = false;  // set by StopThreads; no new timers or connections after it
    std::unordered_set<HttpConnection*> connections;
    boost::asio::io_context ioc{1};
    std::unique_ptr<boost::asio::steady_timer> sweep;
    std::thread thread;
  };

  HttpServer(const HttpServerOptions& options, std::shared_ptr<const HttpRouter> router);
  Status Listen();
  void DoAccept();
  void Sweep(IoThread& t);
  void StopThreads();
  void OnConnectionClosed();

  const HttpServerOptions options_;
  const std::shared_ptr<const HttpRouter> router_;
  const std::chrono::milliseconds sweep_period_;
  std::vector<std::unique_ptr<IoThread>> threads_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;  // used on threads_[0] only
  size_t next_thread_ = 0;                                     // used on threads_[0] only
  uint16_t port_ = 0;

  std::atomic<size_t> open_connections_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> accepting_{true};
  std::mutex mu_;
  std::condition_variable closed_cv_;  // notified when open_connections_ drops; waits under mu_
  bool threads_stopped_ = false;       // guarded by mu_
};

}  // namespace sluice
