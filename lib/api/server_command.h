#pragma once

// The command line of sluice-server, defined once: the operator writes it into every revision's
// container (ToArgs), the server reads it (Parse), so a flag cannot be renamed, retyped or
// reformatted on one side only.
//
// Every field is optional: absent means the server's own default (see `sluice-server --help`).
// The operator sets exactly what the ModelDeployment's (API-server-defaulted) spec says and
// leaves the rest absent, so the defaults of a ModelDeployment live in the CRD alone.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/flags.h"
#include "lib/base/status.h"

namespace sluice::api {

struct ServerCommand {
  std::optional<bool> help;
  std::optional<bool> version;

  // Listening.
  std::optional<std::string> http_address;
  std::optional<int32_t> http_port;  // 0 picks a free port; see port_file
  std::optional<std::string> port_file;
  std::optional<int32_t> grpc_port;   // 0: no gRPC
  std::optional<int32_t> io_threads;  // 0: one per core

  // TLS (spec.tls: a mounted kubernetes.io/tls Secret): with a certificate and key, the HTTP and
  // gRPC ports serve TLS only, and the files are re-read when they change. A client CA asks
  // clients for certificates it issued (mTLS).
  std::optional<std::string> tls_cert_file;
  std::optional<std::string> tls_key_file;
  std::optional<std::string> tls_client_ca_file;
  // A plain-HTTP port on --http-address for /metrics and the health endpoints only, so scrapers
  // need no TLS; 0: none.
  std::optional<int32_t> admin_port;

  // The model (spec.model).
  std::optional<std::string> model_name;
  std::optional<std::string> model_version;
  std::optional<std::string> model_uri;
  std::optional<std::string> model_format;  // auto | xgboost-json | xgboost-ubj | mlflow
  // Lower-case hex SHA-256 of the model file, as spec.model.sha256 writes it; on the command
  // line it is "sha256:<hex>".
  std::optional<std::string> model_sha256;
  // Where s3:// models come from: an S3-compatible endpoint (empty: AWS), the signing region,
  // and the addressing style (auto | path | virtual).
  std::optional<std::string> s3_endpoint;
  std::optional<std::string> s3_region;
  std::optional<std::string> s3_addressing_style;
  // A local directory (an emptyDir) the model is fetched into once per pod; a restarted
  // container reuses the complete file there instead of fetching again.
  std::optional<std::string> model_dir;
  // The MLflow tracking server a registry model was resolved through: http(s) fetches under it
  // carry the pod's MLFLOW_TRACKING_TOKEN.
  std::optional<std::string> mlflow_tracking_uri;

  // Dynamic batching (spec.runtime.batching).
  std::optional<bool> batching;
  std::optional<int64_t> max_batch_size;
  std::optional<std::chrono::microseconds> max_queue_delay;
  std::optional<bool> batch_inline_when_idle;
  std::optional<int64_t> max_queue_size;
  std::optional<int64_t> request_timeout_ms;

  // Response cache (spec.runtime.cache).
  std::optional<bool> cache;
  std::optional<int64_t> cache_capacity;               // entries
  std::optional<int64_t> cache_capacity_bytes;         // and bytes; whichever is reached first
  std::optional<std::chrono::milliseconds> cache_ttl;  // 0: no expiry

  // HTTP limits and timeouts.
  std::optional<int64_t> max_body_bytes;
  std::optional<int64_t> max_header_bytes;
  std::optional<int64_t> header_timeout_ms;
  std::optional<int64_t> body_timeout_ms;
  std::optional<int64_t> idle_timeout_ms;

  // Graceful stop.
  std::optional<int64_t> drain_grace_ms;
  std::optional<int64_t> drain_timeout_ms;
  std::optional<int64_t> drain_idle_timeout_ms;

  // Online features (spec.features): the FeatureViews to enrich requests with, as
  // FormatFeatureViews (lib/api/feature_view.h) writes them.
  std::optional<std::string> feature_views;
  // Longest the feature fetch of one request may take before defaults are served.
  std::optional<std::chrono::microseconds> feature_budget;

  // Fault injection (tests, chaos).
  std::optional<int64_t> fault_error_percent;
  std::optional<int64_t> fault_delay_ms;

  std::optional<std::string> log_format;  // text | json
  std::optional<std::string> log_level;

  // Arguments that follow the typed ones as they are (spec.runtime.args): last, so they win.
  std::vector<std::string> extra_args;

  // "--flag=value" for every field that is set, then extra_args.
  std::vector<std::string> ToArgs() const;
  // InvalidArgument naming the flag for an unknown flag, a missing or malformed value or one out
  // of range. Does not check what the server additionally requires (a model URI); extra_args
  // stays empty (what follows is parsed like the rest). Parse(x.ToArgs()) == x when x has no
  // extra_args.
  static Result<ServerCommand> Parse(const std::vector<std::string>& args);
  // The flag list for --help, with the values of `shown` as the defaults.
  static std::string Usage(const ServerCommand& shown);

  friend bool operator==(const ServerCommand&, const ServerCommand&) = default;

 private:
  static void Bind(FlagSet& flags, ServerCommand& c);
};

// "sha256:<hex>": how the flag and sluice-server's model loader write the digest `hex`.
std::string Sha256Digest(const std::string& hex);

}  // namespace sluice::api
