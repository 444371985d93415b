#pragma once

// The request path of sluice-router: picks a revision from the current RoutingTable (weights,
// or the sticky header's hash), an endpoint of it (round robin), forwards the request there over
// a pooled keep-alive connection of the io thread that received it, copies it to mirror
// revisions, and answers with the backend's answer.
//
// Contract:
// - The request line, headers (minus hop-by-hop ones) and body go to the backend unchanged; the
//   backend's status, headers (minus hop-by-hop ones) and body come back unchanged, including
//   the binary tensor extension's Inference-Header-Content-Length.
// - Inference requests are idempotent. A request routed to a canary (any revision other than the
//   table's stable one) that fails there (a 5xx, no connection, a dropped connection, a timeout)
//   is sent once more, the same shared request object, to the stable revision with what is left
//   of request_timeout, and the caller gets the stable's answer, whatever it is. Never a second
//   retry, never to the revision that failed, never a stable's failure, never a mirrored copy.
//   Retries are off when the table says so (spec.traffic.retryOnStable false) and are limited by
//   the RetryBudget; the canary's failure counts in its series either way.
// - A canary's guard (RoutingTable::Route) sends its requests to the stable revision once its
//   recent error rate tripped it.
// - Errors are answered by the router with a JSON body {"error": "..."}: 503 when no revision
//   has a ready endpoint, 502 when the backend cannot be reached or drops the connection, 504
//   when connect_timeout or request_timeout passes.
// - Mirrored copies go out after the primary request and never delay or fail it; their answers
//   are discarded and only counted. At most max_mirror_inflight copies per io thread are in
//   flight; beyond that a copy is dropped (and counted).
// - Metrics: see router_metrics.h.
//
// Threading: Handle runs on the HttpServer's io threads; each thread has its own upstream pool,
// created on its first request. Register OnIoThreadStop as HttpServerOptions::on_io_thread_stop so
// the pools close when the server stops its threads.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "lib/http/http_server.h"
#include "dataplane/router/router_metrics.h"
#include "dataplane/router/routing_table.h"
#include "dataplane/router/upstream.h"

namespace sluice::dataplane {

struct ProxyOptions {
  UpstreamOptions upstream;
  size_t max_mirror_inflight = 256;  // per io thread
  // When non-empty, answers carry this header naming the revision that served them.
  std::string revision_header;
  std::string model_deployment;  // for error messages: "namespace/name"
  // Shared with the gRPC proxy so the router has one budget; nullptr: the proxy makes its own
  // (api::kRetryBudgetPercent).
  std::shared_ptr<RetryBudget> retry_budget;
};

// The upstream request for `request`, formatted for the wire once: the same method, target,
// headers and body, without hop-by-hop headers (Connection and what it names, Keep-Alive, Proxy-*,
// TE, Trailer, Transfer-Encoding, Upgrade, Expect), as HTTP/1.1 keep-alive with a fresh
// Content-Length.
UpstreamRequest MakeUpstreamRequest(const HttpRequest& request);
// The answer for the client: the backend's answer without hop-by-hop headers.
void StripHopByHop(HttpResponse& response);

class Proxy {
 public:
  // `state` and `metrics` must outlive the proxy.
  Proxy(ProxyOptions options, const RoutingState& state, RouterMetrics& metrics);
  ~Proxy();

  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Registers the proxy for every path and the usual methods (GET, HEAD, POST, PUT, PATCH,
  // DELETE, OPTIONS) as a prefix route on "/"; exact routes (/metrics, /healthz, /readyz) win.
  void Register(HttpRouter& router);

  void Handle(const HttpRequest& request, Responder responder);

  // On an io thread that is stopping: closes that thread's pool, ending what is in flight.
  void OnIoThreadStop();

  // Requests being forwarded (primary only).
  int64_t inflight() const { return inflight_.load(std::memory_order_relaxed); }

 private:
  struct ThreadState;
  class PrimaryCall;
  class MirrorCall;
  ThreadState& StateFor(const boost::asio::any_io_executor& executor);
  // Each proxy's state on the calling thread, by proxy id. A thread's map is touched only by
  // that thread and dies with it (after its io_context stopped running, before it is destroyed).
  static std::unordered_map<uint64_t, std::unique_ptr<ThreadState>>& ThreadStates();

  const ProxyOptions options_;
  const RoutingState& state_;
  RouterMetrics& metrics_;
  const std::shared_ptr<RetryBudget> budget_;
  const uint64_t id_;  // keys this proxy's per-thread state
  std::atomic<int64_t> inflight_{0};
};

}  // namespace sluice::dataplane
