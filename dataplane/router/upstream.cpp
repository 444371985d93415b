#include "dataplane/router/upstream.h"

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cerrno>
#include <optional>

namespace sluice::dataplane {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

// One TCP connection to one endpoint, carrying one exchange at a time. Every handler captures
// the exchange number it belongs to; a handler of a finished exchange (a cancelled timer, an
// aborted read) finds a different number or no callback and does nothing.
class UpstreamConnection : public std::enable_shared_from_this<UpstreamConnection> {
 public:
  UpstreamConnection(const std::shared_ptr<UpstreamPool>& pool, const Endpoint& endpoint)
      : pool_(pool),
        options_(pool->options()),
        endpoint_(endpoint),
        socket_(pool->executor()),
        timer_(pool->executor()) {
    if (options_.tls && (endpoint.tls || options_.tls_all)) {
      tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(socket_), *options_.tls);
      if (!options_.tls_server_name.empty()) {
        tls_->set_verify_callback(asio::ssl::host_name_verification(options_.tls_server_name));
        SSL_set_tlsext_host_name(tls_->native_handle(), options_.tls_server_name.c_str());
      }
    }
  }

  const std::string& key() const { return endpoint_.key; }
  SteadyTime idle_since() const { return idle_since_; }
  void MarkIdle() { idle_since_ = std::chrono::steady_clock::now(); }

  // Whether an idle connection can carry another request: the peer has neither closed it nor
  // sent anything unasked. A non-blocking peek, so no read needs to stay pending while idle.
  bool Alive() {
    if (!sock().is_open()) return false;
    char c;
    const ssize_t n = ::recv(sock().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void Start(std::shared_ptr<const UpstreamRequest> request, bool head,
             std::unique_ptr<UpstreamCallback> callback, std::chrono::milliseconds timeout) {
    ++exchange_;
    timeout_ = timeout.count() > 0 ? std::min(timeout, options_.request_timeout)
                                   : options_.request_timeout;
    request_ = std::move(request);
    head_ = head;
    callback_ = std::move(callback);
    reused_ = sock().is_open();
    const auto now = std::chrono::steady_clock::now();
    deadline_ = now + timeout_;
    if (reused_) {
      ArmTimer(deadline_, timeout_, "waiting for the answer");
      Write();
      return;
    }
    ArmTimer(std::min(deadline_, now + options_.connect_timeout),
             std::min(options_.connect_timeout, timeout_), "connecting");
    beast::error_code ec;
    sock().open(endpoint_.address.protocol(), ec);
    if (ec) {
      Finish(UpstreamFailure::kConnect, "socket: " + ec.message());
      return;
    }
    sock().async_connect(
        endpoint_.address, [self = shared_from_this(), id = exchange_](beast::error_code ec) {
          if (!self->Current(id)) return;
          if (ec) {
            self->Finish(UpstreamFailure::kConnect, "connect: " + ec.message());
            return;
          }
          beast::error_code ignored;
          self->sock().set_option(tcp::no_delay(true), ignored);
          if (self->tls_) {
            self->Handshake();
            return;
          }
          self->ArmTimer(self->deadline_, self->timeout_, "waiting for the answer");
          self->Write();
        });
  }

  // Ends the exchange in flight (if any) with `failure` and closes the connection.
  void Abort(UpstreamFailure failure, const std::string& detail) {
    if (callback_) Finish(failure, detail);
    Close();
  }

  void Close() {
    beast::error_code ec;
    timer_.cancel();
    sock().close(ec);
  }

 private:
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

  // Still under the connect timer: a backend that accepts but never finishes the handshake
  // counts as one that cannot be connected to.
  void Handshake() {
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [self = shared_from_this(), id = exchange_](beast::error_code ec) {
                            if (!self->Current(id)) return;
                            if (ec) {
                              self->Finish(UpstreamFailure::kConnect,
                                           "TLS handshake: " + ec.message());
                              return;
                            }
                            self->ArmTimer(self->deadline_, self->timeout_,
                                           "waiting for the answer");
                            self->Write();
                          });
  }
  bool Current(uint64_t id) const { return id == exchange_ && callback_ != nullptr; }

  // One timer per exchange: first the connect budget, then the rest of the request budget.
  void ArmTimer(SteadyTime when, std::chrono::milliseconds budget, const char* phase) {
    timer_.expires_at(when);
    timer_.async_wait(
        [self = shared_from_this(), id = exchange_, phase, budget](beast::error_code ec) {
          if (ec || !self->Current(id)) return;
          self->Finish(UpstreamFailure::kTimeout, std::string("timed out ") + phase + " after " +
                                                      std::to_string(budget.count()) + " ms");
        });
  }

  void Write() {
    Io([this](auto& stream) {
      asio::async_write(stream, asio::buffer(request_->bytes),
                        [self = shared_from_this(), id = exchange_](beast::error_code ec, size_t) {
                          if (!self->Current(id)) return;
                          if (ec) {
                            self->Finish(UpstreamFailure::kConnection,
                                         "writing the request: " + ec.message(), self->reused_);
                            return;
                          }
                          self->Read();
                        });
    });
  }

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_response_header_bytes));
    parser_->body_limit(options_.max_response_body_bytes);
    if (head_) parser_->skip(true);
    Io([this](auto& stream) {
    http::async_read(stream, buffer_, *parser_,
                     [self = shared_from_this(), id = exchange_](beast::error_code ec, size_t) {
                       if (!self->Current(id)) return;
                       if (ec) {
                         const bool closed = ec == http::error::end_of_stream ||
                                             ec == http::error::partial_message ||
                                             ec == asio::error::eof;
                         const bool nothing =
                             !self->parser_->got_some() && self->buffer_.size() == 0;
                         const bool reset = closed || ec == asio::error::connection_reset;
                         self->Finish(UpstreamFailure::kConnection,
                                      closed ? "the backend closed the connection before a "
                                               "complete answer"
                                             : "reading the answer: " + ec.message(),
                                      self->reused_ && nothing && reset);
                         return;
                       }
                       self->Complete();
                     });
    });
  }

  void Complete() {
    UpstreamOutcome outcome;
    outcome.reused_connection = reused_;
    // Reusable when the backend keeps the connection and nothing unasked arrived behind the answer.
    const bool reusable = parser_->keep_alive() && buffer_.size() == 0;
    outcome.response = parser_->release();
    parser_.reset();
    auto callback = std::move(callback_);
    request_.reset();
    timer_.cancel();
    if (!reusable) Close();
    if (auto pool = pool_.lock()) pool->Release(shared_from_this(), reusable);
    callback->OnUpstreamDone(std::move(outcome));
  }

  // Ends the exchange early (error, timeout, shutdown). A write or read may still be pending: its
  // completion runs later and reads request_, parser_ and buffer_, so they stay as they are until
  // the connection itself goes (it is closed here and never reused).
  void Finish(UpstreamFailure failure, std::string detail, bool closed_before_answer = false) {
    UpstreamOutcome outcome;
    outcome.failure = failure;
    outcome.detail = std::move(detail);
    outcome.reused_connection = reused_;
    outcome.closed_before_answer = closed_before_answer;
    auto callback = std::move(callback_);
    Close();
    if (auto pool = pool_.lock()) pool->Release(shared_from_this(), false);
    if (callback) callback->OnUpstreamDone(std::move(outcome));
  }

  std::weak_ptr<UpstreamPool> pool_;
  const UpstreamOptions options_;
  const Endpoint endpoint_;
  tcp::socket socket_;  // moved into tls_ when the backends speak TLS
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::shared_ptr<const UpstreamRequest> request_;
  std::unique_ptr<UpstreamCallback> callback_;
  uint64_t exchange_ = 0;
  bool head_ = false;
  bool reused_ = false;
  SteadyTime deadline_{};
  std::chrono::milliseconds timeout_{0};  // this exchange's budget (request_timeout or less)
  SteadyTime idle_since_{};
};

std::shared_ptr<UpstreamPool> UpstreamPool::Create(asio::any_io_executor executor,
                                                   const UpstreamOptions& options) {
  return std::shared_ptr<UpstreamPool>(new UpstreamPool(std::move(executor), options));
}

UpstreamPool::UpstreamPool(asio::any_io_executor executor, const UpstreamOptions& options)
    : executor_(std::move(executor)), options_(options) {}

UpstreamPool::~UpstreamPool() {
  for (auto& [key, conns] : idle_) {
    for (auto& c : conns) c->Close();
  }
}

void UpstreamPool::Send(const Endpoint& endpoint, std::shared_ptr<const UpstreamRequest> request,
                        bool head, std::unique_ptr<UpstreamCallback> callback,
                        std::chrono::milliseconds timeout, bool new_connection) {
  if (shut_down_) {
    UpstreamOutcome outcome;
    outcome.failure = UpstreamFailure::kShutdown;
    outcome.detail = "the router is shutting down";
    callback->OnUpstreamDone(std::move(outcome));
    return;
  }
  std::shared_ptr<UpstreamConnection> conn = new_connection ? nullptr : TakeIdle(endpoint.key);
  if (!conn) {
    conn = std::make_shared<UpstreamConnection>(shared_from_this(), endpoint);
    ++connections_opened_;
  }
  active_.insert(conn.get());
  conn->Start(std::move(request), head, std::move(callback), timeout);
}

std::shared_ptr<UpstreamConnection> UpstreamPool::TakeIdle(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  auto& conns = it->second;
  const auto now = std::chrono::steady_clock::now();
  while (!conns.empty()) {
    std::shared_ptr<UpstreamConnection> c = std::move(conns.back());
    conns.pop_back();
    if (now - c->idle_since() < options_.idle_timeout && c->Alive()) return c;
    c->Close();
  }
  return nullptr;
}

void UpstreamPool::Release(const std::shared_ptr<UpstreamConnection>& conn, bool reusable) {
  active_.erase(conn.get());
  if (!reusable || shut_down_) {
    if (reusable) conn->Close();
    return;
  }
  auto& conns = idle_[conn->key()];
  // The oldest sit at the front; drop those past the idle timeout while here.
  const auto now = std::chrono::steady_clock::now();
  size_t stale = 0;
  while (stale < conns.size() && now - conns[stale]->idle_since() >= options_.idle_timeout) {
    conns[stale++]->Close();
  }
  conns.erase(conns.begin(), conns.begin() + static_cast<std::ptrdiff_t>(stale));
  if (conns.size() >= options_.max_idle_per_endpoint) {
    conn->Close();
    return;
  }
  conn->MarkIdle();
  conns.push_back(conn);
}

void UpstreamPool::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& [key, conns] : idle_) {
    for (auto& c : conns) c->Close();
  }
  idle_.clear();
  // Abort reports to Release, which edits active_: work on a copy that holds them alive.
  std::vector<std::shared_ptr<UpstreamConnection>> active;
  for (UpstreamConnection* c : active_) active.push_back(c->shared_from_this());
  for (auto& c : active) c->Abort(UpstreamFailure::kShutdown, "the router is shutting down");
  active_.clear();
}

size_t UpstreamPool::idle_connections() const {
  size_t n = 0;
  for (const auto& [key, conns] : idle_) n += conns.size();
  return n;
}

}  // namespace sluice::dataplane
