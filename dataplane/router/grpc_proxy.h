#pragma once

// The gRPC side of sluice-router: a transparent proxy for unary calls (every method of the Open
// Inference Protocol's inference.GRPCInferenceService is unary). Calls are taken as raw bytes by a
// generic service, so any method of any service is forwarded without being decoded.
//
// Contract:
// - Routing is the REST side's: the same RoutingTable (one weighted schedule, so exact ratios
//   hold over REST and gRPC together), the sticky header read from the call's metadata (its name
//   lowercased), mirrors, and the same per-revision metrics.
// - A call goes to the revision's endpoint on its gRPC port (the EndpointSlice port named
//   "grpc"), over one HTTP/2 channel per endpoint shared by every call. The request message,
//   the caller's metadata (minus gRPC's reserved keys) and its deadline go upstream; the
//   upstream's response, status (code, message, details) and metadata come back unchanged.
// - A call a canary fails (a status of the 5xx class: UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL,
//   ...) is sent once more to the stable revision, as on the REST side (proxy.h): same message
//   (shared, not copied), a fresh upstream context with the caller's metadata, the caller's
//   deadline (capped at upstream_timeout from the retry), the shared RetryBudget; not when the
//   caller cancelled. gRPC's own retries stay off. The upstream deadline is the caller's, capped
//   at upstream_timeout. The router's own failures are UNAVAILABLE with a
//   message naming the ModelDeployment or revision: no revision with a ready endpoint, a
//   revision without a gRPC port, shutting down. A call that streams more than one request
//   message is answered UNIMPLEMENTED. A caller that cancels cancels the upstream call.
// - Metrics: sluice_router_requests_total{code} by the HTTP class of the gRPC status (see
//   ClassifyGrpcStatus), the duration histogram, the in-flight gauge; mirrored copies in the
//   mirror counters, at most max_mirror_inflight at a time (beyond that dropped and counted).
//
// Threading: calls run on gRPC's callback threads; the proxy is thread-safe.

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "lib/base/status.h"
#include "dataplane/router/router_metrics.h"
#include "dataplane/router/routing_table.h"

namespace sluice::dataplane {

struct GrpcProxyOptions {
  std::string address = "0.0.0.0";  // IPv4 or IPv6 address (brackets optional) or host name
  int port = 0;                      // 0 picks a free port; see GrpcProxy::port()
  // Largest message taken from callers and from backends (a gRPC limit: at most INT32_MAX).
  int64_t max_message_bytes = int64_t{64} << 20;
  std::chrono::milliseconds upstream_timeout{30'000};
  // How long one connection attempt to a backend may take.
  std::chrono::milliseconds connect_timeout{1'000};
  size_t max_mirror_inflight = 256;
  // When non-empty, answers carry initial metadata under this name (lowercased) naming the
  // revision that served them.
  std::string revision_header;
  std::string model_deployment;  // "namespace/name", for error messages
  // TLS for callers (MakeGrpcServerCredentials); nullptr: plain text.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // TLS to backends (MakeGrpcClientCredentials); nullptr: plain text. With upstream_server_name
  // the backends' certificates must name it.
  // Used for endpoints that say tls, or all with upstream_tls_all.
  std::shared_ptr<grpc::ChannelCredentials> upstream_credentials;
  bool upstream_tls_all = false;
  std::string upstream_server_name;
  // Shared with the REST proxy so the router has one budget; nullptr: the proxy makes its own.
  std::shared_ptr<RetryBudget> retry_budget;
};

// The HTTP class a gRPC status counts as, by the HTTP status gRPC's own mapping gives it: OK is
// 2xx; the caller's mistakes and refusals (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
// PERMISSION_DENIED, UNAUTHENTICATED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE,
// RESOURCE_EXHAUSTED, and CANCELLED, a caller that gave up) are 4xx; the rest are 5xx.
CodeClass ClassifyGrpcStatus(grpc::StatusCode code);

class GrpcProxy {
 public:
  // Binds and starts serving. `state` and `metrics` must outlive the proxy. Unavailable when the
  // address cannot be bound (a port in use is an error), InvalidArgument for bad options.
  static Result<std::unique_ptr<GrpcProxy>> Create(GrpcProxyOptions options,
                                                   const RoutingState& state,
                                                   RouterMetrics& metrics);
  // Shuts down with an immediate deadline unless already shut down; waits for mirrored copies.
  ~GrpcProxy();

  GrpcProxy(const GrpcProxy&) = delete;
  GrpcProxy& operator=(const GrpcProxy&) = delete;

  uint16_t port() const { return port_; }

  // Stops taking calls: from now on new calls are answered UNAVAILABLE; calls in flight may
  // finish until `deadline`, when the rest are cancelled; then the listener closes. Blocks until
  // done. True when every call in flight finished before the deadline. Idempotent.
  bool Shutdown(std::chrono::steady_clock::time_point deadline);

  // Whether Shutdown has begun (new calls are refused).
  bool shutting_down() const;
  // Primary calls being forwarded.
  int64_t inflight() const;
  // Upstream channels currently cached (one per gRPC endpoint of the routing table).
  size_t channels() const;

 private:
  class Service;
  class Call;
  class MirrorCall;

  GrpcProxy(GrpcProxyOptions options, const RoutingState& state, RouterMetrics& metrics);

  // The shared channel to `endpoint`, created on first use. Channels to endpoints that are no
  // longer in the current routing table are dropped when the table changes.
  std::shared_ptr<grpc::Channel> ChannelFor(const Endpoint& endpoint);
  // False when shutting down (the call is to be refused).
  bool CallStarted();
  void CallFinished();
  void StartMirrors(const std::shared_ptr<const RoutingTable>& table, int primary,
                    const std::string& method, const class Call& call);
  void MirrorFinished(MirrorCall* call);

  const GrpcProxyOptions options_;
  const RoutingState& state_;
  RouterMetrics& metrics_;
  const std::shared_ptr<RetryBudget> budget_;
  std::unique_ptr<Service> service_;
  // Declared after service_: the server goes first, and it references the service.
  std::unique_ptr<grpc::Server> server_;
  uint16_t port_ = 0;

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;  // notified when inflight_ or mirrors_live_ reaches 0
  int64_t inflight_ = 0;             // guarded by mu_
  bool shutting_down_ = false;       // guarded by mu_
  bool shut_down_ = false;           // guarded by mu_
  bool clean_ = true;                // guarded by mu_
  // Copies in flight. Shared so the destructor can cancel them outside mu_ (a cancellation may
  // complete the copy on the cancelling thread, which takes mu_) while they stay alive.
  std::unordered_map<MirrorCall*, std::shared_ptr<MirrorCall>> mirrors_;  // guarded by mu_
  int64_t mirrors_live_ = 0;  // guarded by mu_; copies started and not yet destroyed

  mutable std::mutex channels_mu_;
  std::unordered_map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // guarded by channels_mu_
  std::weak_ptr<const RoutingTable> channels_table_;  // guarded by channels_mu_; last pruned for
};

}  // namespace sluice::dataplane
