#pragma once

// sluice-server's settings: its command line (lib/api/server_command.h, the one definition the
// operator writes and the server reads) with the server's standalone defaults filled in.
// The defaults that a ModelDeployment can also set equal the CRD's (a test checks), so a server
// started by hand behaves like one the operator started.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dataplane/server/fault_injection.h"
#include "dataplane/server/inference_service.h"
#include "lib/api/feature_view.h"
#include "lib/api/server_command.h"
#include "lib/base/logging.h"
#include "lib/base/status.h"
#include "lib/http/http_server.h"

namespace sluice::dataplane {

struct ServerFlags {
  bool help = false;
  bool version = false;

  std::string http_address = "0.0.0.0";
  int http_port = 8080;   // 0 picks a free port; see port_file
  std::string port_file;  // the bound HTTP port is written here once listening
  int grpc_port = 0;      // gRPC (Open Inference Protocol) on http_address; 0: no gRPC
  int io_threads = 0;     // 0: one per core
  // TLS on the HTTP and gRPC ports when both are set; see api::ServerCommand.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  int admin_port = 0;  // plain HTTP, /metrics and health only; 0: none

  std::string model_name;
  std::string model_version = "1";
  std::string model_uri;
  std::string model_format = "auto";
  std::string model_sha256;  // "sha256:<hex>" (api::Sha256Digest); empty: not checked
  std::string s3_endpoint;   // empty: AWS
  std::string s3_region;     // empty: from the environment
  std::string s3_addressing_style = "auto";
  std::string model_dir;     // empty: fetch into memory, every start
  // A registry model's tracking server: fetches under it carry $MLFLOW_TRACKING_TOKEN.
  std::string mlflow_tracking_uri;

  bool batching = true;
  int64_t max_batch_size = 32;
  int64_t max_queue_delay_us = 1000;
  bool batch_inline_when_idle = true;
  int64_t max_queue_size = 1024;
  int64_t request_timeout_ms = 0;

  bool cache = false;
  int64_t cache_capacity = 10'000;  // entries
  int64_t cache_capacity_bytes = int64_t{64} << 20;
  int64_t cache_ttl_ms = 60'000;

  int64_t max_body_bytes = int64_t{64} << 20;
  int64_t max_header_bytes = 16 * 1024;
  int64_t header_timeout_ms = 10'000;
  int64_t body_timeout_ms = 30'000;
  int64_t idle_timeout_ms = 120'000;

  // SIGTERM: report not ready at once, keep serving for drain_grace_ms (endpoints are being
  // removed), then stop accepting and give in-flight requests drain_timeout_ms to finish.
  int64_t drain_grace_ms = 5'000;
  int64_t drain_timeout_ms = 30'000;
  // While draining, an idle keep-alive connection is closed after this long without a request.
  int64_t drain_idle_timeout_ms = 500;

  // Online features: the views (--feature-views, parsed) and the fetch budget per request.
  std::vector<api::FeatureViewConfig> feature_views;
  int64_t feature_budget_us = 2000;

  // Fault injection (tests, chaos): the environment (SLUICE_FAULT_ERROR_PERCENT,
  // SLUICE_FAULT_DELAY_MS) sets the defaults, the flags override them.
  int64_t fault_error_percent = 0;
  int64_t fault_delay_ms = 0;
  std::string fault_only_version;  // SLUICE_FAULT_ONLY_VERSION: faults only for this version

  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";

  // The command line that gives these settings (every field but the model digest), e.g. to show
  // the defaults.
  api::ServerCommand ToCommand() const;

  bool tls() const { return !tls_cert_file.empty(); }
  HttpServerOptions ToHttpOptions() const;
  ModelOptions ToModelOptions() const;
  FaultOptions ToFaultOptions() const;
};

// InvalidArgument for unknown flags, missing values and values out of range, in the flags or in
// the environment variables read through `getenv` (nullptr: the environment is not read), and
// for a missing --model-uri (unless --help).
Result<ServerFlags> ParseServerFlags(
    const std::vector<std::string>& args,
    const std::function<const char*(const char*)>& getenv = nullptr);
std::string ServerUsage();

}  // namespace sluice::dataplane
