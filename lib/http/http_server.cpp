#include "lib/http/http_server.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <future>
#include <limits>
#include <optional>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "lib/http/wire.h"

namespace sluice {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

// One client connection. Lives on one io thread; every member is touched only there, except
// Deliver (posts to that thread).
class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(HttpServer& server, HttpServer::IoThread& thread, tcp::socket socket,
                 std::shared_ptr<asio::ssl::context> tls_context)
      : server_(server), thread_(thread), socket_(std::move(socket)) {
    thread_.connections.insert(this);
    if (tls_context) {
      tls_context_ = std::move(tls_context);
      tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(socket_), *tls_context_);
    }
  }
  ~HttpConnection() {
    thread_.connections.erase(this);
    server_.OnConnectionClosed();
  }

  void Start() {
    beast::error_code ec;
    sock().set_option(tcp::no_delay(true), ec);
    if (tls_) {
      Handshake();
      return;
    }
    ReadNext();
  }

  // From any thread.
  void Deliver(HttpResponse&& response) {
    if (thread_.ioc.get_executor().running_in_this_thread()) {
      Write(std::move(response));
      return;
    }
    asio::post(thread_.ioc, [self = shared_from_this(), r = std::move(response)]() mutable {
      self->Write(std::move(r));
    });
  }

  // On the io thread, from the sweep: closes or times out what is past its deadline.
  void CheckDeadline(SteadyTime now) {
    if (closed_ || deadline_ > now) return;
    deadline_ = SteadyTime::max();
    switch (phase_) {
      case Phase::kHeader:
      case Phase::kBody:
        // The pending read ends with operation_aborted; its handler answers 408.
        timed_out_ = true;
        sock().cancel();
        break;
      case Phase::kHandshake:
      case Phase::kIdle:
      case Phase::kWriting:
      case Phase::kLingering:
        Close();
        break;
      case Phase::kHandling:
        break;
    }
  }

  // On the io thread: from now on answers carry Connection: close and idle waits are short.
  void BeginDrain(SteadyTime now) {
    if (closed_) return;
    if (phase_ == Phase::kIdle) {
      deadline_ = std::min(deadline_, now + server_.options_.drain_idle_timeout);
    }
  }

  boost::asio::any_io_executor executor() { return thread_.ioc.get_executor(); }

  void Close() {
    if (closed_) return;
    closed_ = true;
    deadline_ = SteadyTime::max();
    beast::error_code ec;
    sock().close(ec);
  }

 private:
  enum class Phase { kHandshake, kIdle, kHeader, kBody, kHandling, kWriting, kLingering };

  const HttpServerOptions& opts() const { return server_.options_; }

  // The TCP socket, under TLS or not.
  tcp::socket& sock() { return tls_ ? tls_->next_layer() : socket_; }

  // Runs `f` with the stream the HTTP bytes go through: the TLS stream or the plain socket.
  template <typename F>
  void Io(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(socket_);
    }
  }

  // A client that never finishes the handshake (or speaks plain HTTP to this port) is closed.
  void Handshake() {
    phase_ = Phase::kHandshake;
    deadline_ = std::chrono::steady_clock::now() + opts().header_timeout;
    tls_->async_handshake(asio::ssl::stream_base::server,
                          [self = shared_from_this()](beast::error_code ec) {
                            if (ec || self->closed_) {
                              if (!self->closed_ && spdlog::should_log(spdlog::level::debug)) {
                                spdlog::debug("http server: TLS handshake failed: {}",
                                              ec.message());
                              }
                              self->Close();
                              return;
                            }
                            self->ReadNext();
                          });
  }

  void ReadNext() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(opts().max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(opts().max_body_bytes);
    timed_out_ = false;
    if (buffer_.size() > 0) {  // a pipelined request is already here
      ReadHeader();
      return;
    }
    phase_ = Phase::kIdle;
    const auto now = std::chrono::steady_clock::now();
    deadline_ = now + (server_.draining_.load(std::memory_order_relaxed)
                           ? opts().drain_idle_timeout
                           : opts().idle_timeout);
    Io([this](auto& stream) {
      stream.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](
                                                        beast::error_code ec, size_t n) {
        if (ec || self->closed_) {
          self->Close();
          return;
        }
        self->buffer_.commit(n);
        self->ReadHeader();
      });
    });
  }

  void ReadHeader() {
    phase_ = Phase::kHeader;
    deadline_ = std::chrono::steady_clock::now() + opts().header_timeout;
    // A request usually arrives whole in one read: parse what is buffered right here, and start an
    // asynchronous read (another trip through the io_context) only for a header still incomplete.
    if (buffer_.size() > 0) {
      beast::error_code ec;
      buffer_.consume(parser_->put(buffer_.data(), ec));
      if (ec != http::error::need_more) {
        OnHeader(ec);
        return;
      }
    }
    Io([this](auto& stream) {
      http::async_read_header(stream, buffer_, *parser_,
                              [self = shared_from_this()](beast::error_code ec, size_t) {
                                self->OnHeader(ec);
                              });
    });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) {
      OnReadError(ec, "header");
      return;
    }
    const auto& req = parser_->get();
    const auto length = parser_->content_length();
    if (length && *length > opts().max_body_bytes) {
      FailRequest(HttpStatus::payload_too_large,
                  "request body of " + std::to_string(*length) + " bytes exceeds the limit of " +
                      std::to_string(opts().max_body_bytes));
      return;
    }
    phase_ = Phase::kBody;
    deadline_ = std::chrono::steady_clock::now() + opts().body_timeout;
    if (parser_->is_done()) {
      OnRequest();
      return;
    }
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      Io([this](auto& stream) {
        asio::async_write(stream, asio::buffer(kContinue.data(), kContinue.size()),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec || self->closed_) {
                              self->Close();
                              return;
                            }
                            self->ReadBody();
                          });
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    // The body usually came in the same read as the header: take it from the buffer, and read
    // asynchronously only when some of it is still on its way.
    beast::error_code ec;
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec) {
        OnReadError(ec, "body");
        return;
      }
      if (n == 0) break;
    }
    if (parser_->is_done()) {
      OnRequest();
      return;
    }
    Io([this](auto& stream) {
      http::async_read(stream, buffer_, *parser_,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) {
                           self->OnReadError(ec, "body");
                           return;
                         }
                         self->OnRequest();
                       });
    });
  }

  void OnReadError(beast::error_code ec, const char* what) {
    if (timed_out_) {
      FailRequest(HttpStatus::request_timeout, std::string("timed out reading the request ") + what);
      return;
    }
    if (closed_ || ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == http::error::partial_message) {
      Close();
      return;
    }
    if (ec == http::error::header_limit) {
      FailRequest(HttpStatus::request_header_fields_too_large,
                  "request header exceeds the limit of " + std::to_string(opts().max_header_bytes) +
                      " bytes");
    } else if (ec == http::error::body_limit) {
      FailRequest(HttpStatus::payload_too_large,
                  "request body exceeds the limit of " + std::to_string(opts().max_body_bytes) +
                      " bytes");
    } else if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      FailRequest(HttpStatus::bad_request, "malformed HTTP request: " + ec.message());
    } else {
      Close();
    }
  }

  // Answers an error for a request that could not be read, then closes: the rest of the stream
  // cannot be trusted to start at a message boundary.
  void FailRequest(HttpStatus status, std::string message) {
    HttpResponse res{status, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = JsonErrorBody(message);
    close_after_write_ = true;
    Write(std::move(res));
  }

  void OnRequest() {
    phase_ = Phase::kHandling;
    deadline_ = SteadyTime::max();
    const auto& req = parser_->get();
    request_version_ = req.version();
    if (!req.keep_alive()) close_after_write_ = true;
    server_.router_->Dispatch(req, Responder(shared_from_this()));
  }

  void Write(HttpResponse&& response) {
    if (closed_) return;
    response_ = std::move(response);
    const bool keep_alive =
        !close_after_write_ && !server_.draining_.load(std::memory_order_relaxed);
    response_.version(request_version_);
    response_.set(http::field::server, opts().server_name);
    response_.keep_alive(keep_alive);
    response_.prepare_payload();
    phase_ = Phase::kWriting;
    deadline_ = std::chrono::steady_clock::now() + opts().write_timeout;
    // The head formatted into a buffer the connection keeps (no allocation once it has grown),
    // the body written from the message: one gathered write.
    head_.clear();
    AppendResponseHead(response_, head_);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_),
                                                    asio::buffer(response_.body())};
    Io([this, keep_alive, buffers](auto& stream) {
      asio::async_write(stream, buffers,
                        [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                          self->response_ = {};
                          if (ec) {
                            self->Close();
                          } else if (keep_alive) {
                            self->ReadNext();
                          } else {
                            self->Linger();
                          }
                        });
    });
  }

  // Closing with unread input makes the kernel send RST, which can destroy the answer just sent
  // before the client reads it (a 413 while the client is still uploading). So: half-close, read
  // and discard until the client closes or a short deadline, then close. Under TLS the discarding
  // reads the raw socket: what arrives is not needed, decrypted or not.
  void Linger() {
    if (closed_) return;
    beast::error_code ec;
    sock().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      Close();
      return;
    }
    phase_ = Phase::kLingering;
    deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    buffer_.clear();
    DiscardInput(0);
  }

  void DiscardInput(size_t discarded) {
    sock().async_read_some(buffer_.prepare(16384), [self = shared_from_this(), discarded](
                                                        beast::error_code ec, size_t n) {
      constexpr size_t kMaxDiscard = 4 * 1024 * 1024;
      if (ec || self->closed_ || discarded + n > kMaxDiscard) {
        self->Close();
        return;
      }
      self->DiscardInput(discarded + n);
    });
  }

  HttpServer& server_;
  HttpServer::IoThread& thread_;
  tcp::socket socket_;  // moved into tls_ when the connection is TLS
  std::shared_ptr<asio::ssl::context> tls_context_;  // outlives tls_
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpResponse response_;
  std::string head_;  // response_'s head as written
  unsigned request_version_ = 11;
  Phase phase_ = Phase::kIdle;
  SteadyTime deadline_ = SteadyTime::max();
  bool timed_out_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
};

// --- Responder ---

Responder::Responder(std::shared_ptr<HttpConnection> conn) : conn_(std::move(conn)) {}

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (conn_) SendError(HttpStatus::internal_server_error, "request dropped without an answer");
    conn_ = std::move(other.conn_);
  }
  return *this;
}

Responder::~Responder() {
  if (conn_) SendError(HttpStatus::internal_server_error, "request dropped without an answer");
}

void Responder::Send(HttpResponse&& response) {
  if (!conn_) return;
  auto conn = std::move(conn_);
  conn->Deliver(std::move(response));
}

boost::asio::any_io_executor Responder::executor() const {
  assert(conn_ != nullptr);
  return conn_->executor();
}

void Responder::SendBody(HttpStatus status, std::string content_type, std::string body) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, std::move(content_type));
  res.body() = std::move(body);
  Send(std::move(res));
}

void Responder::SendError(HttpStatus status, std::string_view message) {
  SendJson(status, JsonErrorBody(message));
}

// --- HttpRouter ---

void HttpRouter::Handle(HttpVerb method, std::string path, HttpHandler handler) {
  exact_[std::move(path)].push_back({method, std::move(handler)});
}

void HttpRouter::HandlePrefix(HttpVerb method, std::string prefix, HttpHandler handler) {
  auto it = std::find_if(prefixes_.begin(), prefixes_.end(),
                         [&](const auto& p) { return p.first == prefix; });
  if (it == prefixes_.end()) {
    prefixes_.emplace_back(std::move(prefix), std::vector<Route>{});
    it = prefixes_.end() - 1;
  }
  it->second.push_back({method, std::move(handler)});
  std::stable_sort(prefixes_.begin(), prefixes_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

const std::vector<HttpRouter::Route>* HttpRouter::Find(std::string_view path) const {
  if (auto it = exact_.find(path); it != exact_.end()) return &it->second;
  for (const auto& [prefix, routes] : prefixes_) {
    if (path.substr(0, prefix.size()) == prefix) return &routes;
  }
  return nullptr;
}

void HttpRouter::Dispatch(const HttpRequest& request, Responder responder) const {
  std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const std::vector<Route>* routes = Find(path);
  if (routes == nullptr) {
    responder.SendError(HttpStatus::not_found, "no route for " + std::string(path));
    return;
  }
  for (const Route& r : *routes) {
    if (r.method == request.method()) {
      r.handler(request, std::move(responder));
      return;
    }
  }
  std::string allow;
  for (const Route& r : *routes) {
    if (!allow.empty()) allow += ", ";
    allow += std::string(http::to_string(r.method));
  }
  HttpResponse res{HttpStatus::method_not_allowed, 11};
  res.set(http::field::allow, allow);
  res.set(http::field::content_type, "application/json");
  res.body() = JsonErrorBody("method " + std::string(request.method_string()) + " not allowed on " +
                             std::string(path));
  responder.Send(std::move(res));
}

// --- HttpServer ---

namespace {

std::chrono::milliseconds SweepPeriod(const HttpServerOptions& o) {
  auto shortest = std::min({o.header_timeout, o.body_timeout, o.idle_timeout, o.write_timeout,
                            o.drain_idle_timeout});
  return std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(250));
}

}  // namespace

HttpServer::HttpServer(const HttpServerOptions& options, std::shared_ptr<const HttpRouter> router)
    : options_(options), router_(std::move(router)), sweep_period_(SweepPeriod(options)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::Create(const HttpServerOptions& options,
                                                       std::shared_ptr<const HttpRouter> router) {
  if (!router) return InvalidArgument("http server: a router is required");
  std::unique_ptr<HttpServer> server(new HttpServer(options, std::move(router)));
  int n = options.io_threads > 0 ? options.io_threads
                                 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) {
    auto t = std::make_unique<IoThread>();
    t->sweep = std::make_unique<asio::steady_timer>(t->ioc);
    server->threads_.push_back(std::move(t));
  }
  RETURN_IF_ERROR(server->Listen());
  for (auto& t : server->threads_) {
    server->Sweep(*t);
    IoThread* raw = t.get();
    raw->thread = std::thread([raw] { raw->ioc.run(); });
  }
  asio::post(server->threads_[0]->ioc, [s = server.get()] { s->DoAccept(); });
  return server;
}

Status HttpServer::Listen() {
  beast::error_code ec;
  auto addr = asio::ip::make_address(options_.address, ec);
  if (ec) return InvalidArgument("http server: bad address " + options_.address + ": " + ec.message());
  tcp::endpoint ep(addr, options_.port);
  acceptor_ = std::make_unique<tcp::acceptor>(threads_[0]->ioc);
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(options_.backlog, ec);
  if (ec) {
    return Unavailable("http server: cannot listen on " + options_.address + ":" +
                       std::to_string(options_.port) + ": " + ec.message());
  }
  port_ = acceptor_->local_endpoint(ec).port();
  return Status::Ok();
}

void HttpServer::DoAccept() {
  if (!accepting_.load()) return;
  IoThread& target = *threads_[next_thread_];
  next_thread_ = (next_thread_ + 1) % threads_.size();
  acceptor_->async_accept(target.ioc, [this, &target](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !accepting_.load()) return;
    if (ec) {
      // Out of descriptors and the like: back off a little instead of spinning.
      spdlog::warn("http server: accept failed: {}", ec.message());
      auto timer = std::make_shared<asio::steady_timer>(threads_[0]->ioc,
                                                         std::chrono::milliseconds(50));
      timer->async_wait([this, timer](beast::error_code) { DoAccept(); });
      return;
    }
    open_connections_.fetch_add(1);
    // Build the connection on its own thread: its registration in `connections` must happen there.
    asio::post(target.ioc, [this, &target, s = std::move(socket)]() mutable {
      if (target.stopping) {
        beast::error_code ignored;
        s.close(ignored);
        OnConnectionClosed();
        return;
      }
      auto conn = std::make_shared<HttpConnection>(
          *this, target, std::move(s), options_.tls ? options_.tls->Current() : nullptr);
      if (draining_.load()) conn->BeginDrain(std::chrono::steady_clock::now());
      conn->Start();
    });
    DoAccept();
  });
}

void HttpServer::Sweep(IoThread& t) {
  // A wait that completed just before StopThreads cancelled it must not re-arm the timer, or
  // the thread would never run out of work.
  if (t.stopping) return;
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<HttpConnection>> live;
  live.reserve(t.connections.size());
  for (HttpConnection* c : t.connections) {
    if (auto sp = c->weak_from_this().lock()) live.push_back(std::move(sp));
  }
  for (auto& c : live) c->CheckDeadline(now);
  t.sweep->expires_after(sweep_period_);
  t.sweep->async_wait([this, &t](beast::error_code ec) {
    if (!ec) Sweep(t);
  });
}

void HttpServer::OnConnectionClosed() {
  open_connections_.fetch_sub(1);
  std::lock_guard<std::mutex> lock(mu_);
  closed_cv_.notify_all();
}

void HttpServer::StopAccepting() {
  if (!accepting_.exchange(false)) return;
  {
    // After the threads stopped nothing accepts anyway. Never wait below while holding mu_:
    // io threads take it when a connection closes.
    std::lock_guard<std::mutex> lock(mu_);
    if (threads_stopped_) return;
  }
  std::promise<void> done;
  asio::post(threads_[0]->ioc, [this, &done] {
    beast::error_code ec;
    acceptor_->close(ec);
    done.set_value();
  });
  done.get_future().wait();
}

bool HttpServer::Drain(std::chrono::steady_clock::time_point deadline) {
  StopAccepting();
  if (!draining_.exchange(true)) {
    for (auto& t : threads_) {
      asio::post(t->ioc, [&t = *t] {
        const auto now = std::chrono::steady_clock::now();
        for (HttpConnection* c : t.connections) c->BeginDrain(now);
      });
    }
  }
  bool clean;
  {
    std::unique_lock<std::mutex> lock(mu_);
    clean = closed_cv_.wait_until(lock, deadline, [&] { return open_connections_.load() == 0; });
  }
  StopThreads();
  return clean;
}

void HttpServer::Shutdown() {
  StopAccepting();
  draining_.store(true);
  StopThreads();
}

void HttpServer::StopThreads() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (threads_stopped_) return;
    threads_stopped_ = true;
  }
  for (auto& t : threads_) {
    asio::post(t->ioc, [this, &t = *t] {
      t.stopping = true;
      t.sweep->cancel();
      std::vector<std::shared_ptr<HttpConnection>> live;
      for (HttpConnection* c : t.connections) {
        if (auto sp = c->weak_from_this().lock()) live.push_back(std::move(sp));
      }
      for (auto& c : live) c->Close();
      if (options_.on_io_thread_stop) options_.on_io_thread_stop();
    });
  }
  for (auto& t : threads_) {
    if (t->thread.joinable()) t->thread.join();
  }
}

HttpServer::~HttpServer() {
  Shutdown();
  // Destroying the io_contexts destroys handlers still queued (answers posted after the threads
  // stopped) and with them the last connections, which report to this object: do it while it is
  // whole.
  acceptor_.reset();
  threads_.clear();
}

}  // namespace sluice
