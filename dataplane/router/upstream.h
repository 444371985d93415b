#pragma once

// The router's client side: keep-alive HTTP/1.1 connections to backend endpoints, asynchronous
// on one Asio executor (no thread per request).
//
// A pool belongs to one executor whose context is run by ONE thread (an HttpServer io thread):
// every member is touched only there, so nothing is locked. The proxy keeps one pool per io
// thread and sends each request from the thread that received it.
//
// Contract:
// - Send makes exactly one attempt and never retries by itself. Whether a failed request is sent
//   again is the proxy's decision (inference requests are idempotent: a canary's failure is
//   retried once on the stable revision, see proxy.h), never the pool's.
// - A pooled connection is reused only when it was idle for less than idle_timeout and the peer
//   has not closed it (checked without blocking just before reuse); otherwise a new one is
//   opened. The race in which a backend closes an idle connection exactly while a request is
//   written to it remains (as in every HTTP/1.1 client) and surfaces as kConnection with
//   closed_before_answer set; the caller may send the request again on a new connection.
// - Timeouts: connect_timeout for the TCP connect (and TLS handshake), request_timeout for the
//   whole exchange (connect, write, the complete answer).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lib/http/http_server.h"
#include "dataplane/router/routing_table.h"

namespace sluice::dataplane {

struct UpstreamOptions {
  std::chrono::milliseconds connect_timeout{1'000};
  std::chrono::milliseconds request_timeout{30'000};
  // Idle connections kept per endpoint (per pool, i.e. per io thread); more are closed.
  size_t max_idle_per_endpoint = 32;
  // An idle connection is not reused after this long; shorter than sluice-server's idle timeout
  // (120 s), so the router, not the backend, ends an idle connection.
  std::chrono::milliseconds idle_timeout{60'000};
  size_t max_response_header_bytes = 64 * 1024;
  uint64_t max_response_body_bytes = uint64_t{64} << 20;
  // TLS to the backends whose Endpoint says tls, or to all with tls_all (MakeClientTlsContext:
  // the chain is verified); nullptr: plain HTTP to all. The handshake counts against
  // connect_timeout. With tls_server_name the certificate must also name it (and it is sent as
  // SNI); without, backends dialled by pod address are not checked by name.
  std::shared_ptr<boost::asio::ssl::context> tls;
  bool tls_all = false;
  std::string tls_server_name;
};

// A request as it goes on the wire to a backend: request line, fields, blank line and body in one
// buffer, formatted once and shared by every attempt and mirrored copy (one write each).
struct UpstreamRequest {
  std::string bytes;
};

enum class UpstreamFailure {
  kNone,
  kConnect,     // refused, unreachable
  kTimeout,     // connect_timeout or request_timeout passed
  kConnection,  // reset or closed before a complete answer, malformed answer
  kShutdown,    // the pool was shut down
};

struct UpstreamOutcome {
  UpstreamFailure failure = UpstreamFailure::kNone;
  std::string detail;     // for failures: what happened, for logs and error bodies
  HttpResponse response;  // failure == kNone: the backend's answer as received
  bool reused_connection = false;
  // kConnection on a reused connection before a single byte of the answer arrived: the backend
  // had closed the idle connection (a restart, its idle timeout, a drain) as the request was
  // written. It did not answer, so sending the request again on a new connection is safe.
  bool closed_before_answer = false;
};

// Receives the result of one Send. Called exactly once, on the pool's thread.
class UpstreamCallback {
 public:
  virtual ~UpstreamCallback() = default;
  virtual void OnUpstreamDone(UpstreamOutcome&& outcome) = 0;
};

class UpstreamConnection;

class UpstreamPool : public std::enable_shared_from_this<UpstreamPool> {
 public:
  static std::shared_ptr<UpstreamPool> Create(boost::asio::any_io_executor executor,
                                              const UpstreamOptions& options);
  ~UpstreamPool();

  // Sends `request` as it is (the caller formats Host, Content-Length and keep-alive) to
  // `endpoint`; `head` says the request is a HEAD (its answer has no body). The request is shared
  // and not modified, so the same one may go to several endpoints (mirroring). On the pool's
  // thread only. After Shutdown the callback is called before Send returns, with kShutdown.
  // `timeout` (when positive) shortens request_timeout for this exchange: a retry gets what is
  // left of the caller's budget. `new_connection` skips the idle connections and opens one.
  void Send(const Endpoint& endpoint, std::shared_ptr<const UpstreamRequest> request, bool head,
            std::unique_ptr<UpstreamCallback> callback,
            std::chrono::milliseconds timeout = std::chrono::milliseconds(0),
            bool new_connection = false);

  // Closes idle connections and ends every exchange in flight with kShutdown. Idempotent; on the
  // pool's thread.
  void Shutdown();

  size_t idle_connections() const;
  size_t active_exchanges() const { return active_.size(); }
  // Connections opened since creation (a measure of reuse).
  uint64_t connections_opened() const { return connections_opened_; }
  const UpstreamOptions& options() const { return options_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }

 private:
  friend class UpstreamConnection;
  UpstreamPool(boost::asio::any_io_executor executor, const UpstreamOptions& options);

  // Back from an exchange: kept for reuse when `reusable`, else forgotten.
  void Release(const std::shared_ptr<UpstreamConnection>& conn, bool reusable);
  std::shared_ptr<UpstreamConnection> TakeIdle(const std::string& key);

  const boost::asio::any_io_executor executor_;
  const UpstreamOptions options_;
  bool shut_down_ = false;
  uint64_t connections_opened_ = 0;
  // endpoint key -> idle connections, most recently used last
  std::unordered_map<std::string, std::vector<std::shared_ptr<UpstreamConnection>>> idle_;
  std::unordered_set<UpstreamConnection*> active_;
};

}  // namespace sluice::dataplane
