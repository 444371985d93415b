#pragma once

// The command line of sluice-router, defined once: the operator writes it into the router
// Deployment (ToArgs), the router reads it (Parse), so a flag cannot be renamed or retyped on one
// side only. Every field is optional: absent means the router's own default (see
// `sluice-router --help`).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/flags.h"
#include "lib/base/status.h"

namespace sluice::api {

struct RouterCommand {
  std::optional<bool> help;
  std::optional<bool> version;

  // What to route: a ModelDeployment followed through the API server ...
  std::optional<std::string> model_deployment;
  std::optional<std::string> ns;  // --namespace
  // API access: this kubeconfig, else $KUBECONFIG, else the in-cluster service account, else
  // ~/.kube/config.
  std::optional<std::string> kubeconfig;
  std::optional<std::string> context;
  // ... or a fixed table (local runs, benchmarks), with no API server.
  std::optional<std::string> static_traffic;
  std::optional<std::string> sticky_header;  // with static_traffic only
  // With static_traffic only (a ModelDeployment gives them): the stable revision, whether a
  // canary's failed requests are retried on it, and the guard's error-rate limit (a decimal).
  std::optional<std::string> stable_revision;
  std::optional<bool> retry_on_stable;
  std::optional<std::string> guard_max_error_rate;
  // Retries allowed per 100 requests (lib/api/canary_protection.h).
  std::optional<int32_t> retry_budget_percent;

  // Listening.
  std::optional<std::string> http_address;
  std::optional<int32_t> http_port;  // 0 picks a free port; see port_file
  std::optional<std::string> port_file;
  std::optional<int32_t> grpc_port;   // 0: no gRPC
  std::optional<int32_t> io_threads;  // 0: one per core
  // The admin listener (on http_address): /metrics, /healthz, /readyz. The traffic port does not
  // serve /metrics.
  std::optional<int32_t> admin_port;  // 0 picks a free port; see admin_port_file
  std::optional<std::string> admin_port_file;
  // TLS for callers (HTTP and gRPC ports), from a mounted kubernetes.io/tls Secret; re-read when
  // the files change. A client CA requires client certificates (mTLS).
  std::optional<std::string> tls_cert_file;
  std::optional<std::string> tls_key_file;
  std::optional<std::string> tls_client_ca_file;

  // Backends.
  std::optional<int32_t> upstream_port;       // for EndpointSlices without a port named http
  std::optional<int32_t> upstream_grpc_port;  // for EndpointSlices without a port named grpc
  std::optional<int64_t> upstream_timeout_ms;
  std::optional<int64_t> connect_timeout_ms;
  std::optional<int64_t> max_idle_per_endpoint;
  std::optional<int64_t> upstream_idle_timeout_ms;
  std::optional<int64_t> max_mirror_inflight;
  std::optional<std::string> revision_header;
  // TLS to the backends (sluice-server with --tls-cert-file): to all with upstream_tls, else to
  // those whose EndpointSlice port says appProtocol https; verified against this CA, else the
  // system store; by name only when upstream_server_name is set.
  std::optional<bool> upstream_tls;
  std::optional<std::string> upstream_ca_file;
  std::optional<std::string> upstream_server_name;

  // HTTP limits and timeouts.
  std::optional<int64_t> max_body_bytes;
  std::optional<int64_t> max_header_bytes;
  std::optional<int64_t> header_timeout_ms;
  std::optional<int64_t> body_timeout_ms;
  std::optional<int64_t> idle_timeout_ms;

  // Graceful stop and start-up.
  std::optional<int64_t> drain_grace_ms;
  std::optional<int64_t> drain_timeout_ms;
  std::optional<int64_t> drain_idle_timeout_ms;
  std::optional<int64_t> sync_timeout_ms;

  std::optional<std::string> log_format;  // text | json
  std::optional<std::string> log_level;

  // "--flag=value" for every field that is set.
  std::vector<std::string> ToArgs() const;
  // InvalidArgument naming the flag for an unknown flag, a missing or malformed value or one out
  // of range. What the router additionally requires (a ModelDeployment and namespace, or a static
  // table) is checked by the router. Parse(x.ToArgs()) == x.
  static Result<RouterCommand> Parse(const std::vector<std::string>& args);
  // The flag list for --help, with the values of `shown` as the defaults.
  static std::string Usage(const RouterCommand& shown);

  friend bool operator==(const RouterCommand&, const RouterCommand&) = default;

 private:
  static void Bind(FlagSet& flags, RouterCommand& c);
};

}  // namespace sluice::api
