#pragma once

// sluice-router's settings: its command line (lib/api/router_command.h, the one definition the
// operator writes and the router reads) with the router's standalone defaults filled in.

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/router/grpc_proxy.h"
#include "dataplane/router/proxy.h"
#include "lib/api/canary_protection.h"
#include "lib/api/router_command.h"
#include "lib/base/logging.h"
#include "lib/base/status.h"
#include "lib/http/http_server.h"

namespace sluice::dataplane {

struct RouterFlags {
  bool help = false;
  bool version = false;

  std::string model_deployment;  // required
  std::string ns;                // --namespace, required
  std::string kubeconfig;        // else $KUBECONFIG, else in-cluster, else ~/.kube/config
  std::string context;
  // When set, routes by this table (see ParseStaticTraffic) and talks to no API server.
  std::string static_traffic;
  std::string sticky_header;  // with static_traffic only
  // With static_traffic only; see api::RouterCommand.
  std::string stable_revision;
  bool retry_on_stable = true;
  double guard_max_error_rate = api::kDefaultMaxErrorRate;
  int retry_budget_percent = static_cast<int>(api::kRetryBudgetPercent);

  std::string http_address = "0.0.0.0";
  int http_port = 8080;   // 0 picks a free port; see port_file
  std::string port_file;  // the bound HTTP port is written here once listening
  int io_threads = 0;     // 0: one per core
  int grpc_port = 0;      // gRPC listener on http_address; 0: none
  // /metrics, /healthz and /readyz on http_address, apart from the traffic.
  int admin_port = 9090;        // 0 picks a free port; see admin_port_file
  std::string admin_port_file;  // the bound admin port is written here once listening
  // TLS for callers when both are set; see api::RouterCommand.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;

  int upstream_port = 8080;    // for EndpointSlices without a port named "http"
  int upstream_grpc_port = 0;  // for EndpointSlices without a port named "grpc"; 0: none
  int64_t upstream_timeout_ms = 30'000;
  int64_t connect_timeout_ms = 1'000;
  int64_t max_idle_per_endpoint = 32;
  int64_t upstream_idle_timeout_ms = 60'000;
  int64_t max_mirror_inflight = 256;
  std::string revision_header;
  bool upstream_tls = false;
  std::string upstream_ca_file;  // empty: the system store
  std::string upstream_server_name;

  int64_t max_body_bytes = int64_t{64} << 20;
  int64_t max_header_bytes = 16 * 1024;
  int64_t header_timeout_ms = 10'000;
  int64_t body_timeout_ms = 30'000;
  int64_t idle_timeout_ms = 120'000;

  // SIGTERM: report not ready at once, keep routing for drain_grace_ms (the router's endpoint is
  // being removed from its Service), then stop accepting and give in-flight requests
  // drain_timeout_ms to finish.
  int64_t drain_grace_ms = 5'000;
  int64_t drain_timeout_ms = 30'000;
  int64_t drain_idle_timeout_ms = 500;
  // How long to wait for the first list of the ModelDeployment and EndpointSlices before
  // giving up; 0 waits forever (readiness stays false meanwhile).
  int64_t sync_timeout_ms = 0;

  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";

  // The command line that gives these settings (every field set), e.g. to show the defaults.
  api::RouterCommand ToCommand() const;

  bool tls() const { return !tls_cert_file.empty(); }
  HttpServerOptions ToHttpOptions() const;
  HttpServerOptions ToAdminHttpOptions() const;
  ProxyOptions ToProxyOptions() const;
  GrpcProxyOptions ToGrpcProxyOptions() const;
};

// InvalidArgument for unknown flags, missing values, values out of range and missing required
// flags (unless --help).
Result<RouterFlags> ParseRouterFlags(const std::vector<std::string>& args);
std::string RouterUsage();

}  // namespace sluice::dataplane
