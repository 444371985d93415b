#include "dataplane/server/server_flags.h"

#include <functional>

namespace sluice::dataplane {

namespace {

// Overwrites `dst` with the command's value when it has one.
template <typename T, typename U>
void Take(const std::optional<U>& value, T& dst) {
  if (value) dst = static_cast<T>(*value);
}

}  // namespace

api::ServerCommand ServerFlags::ToCommand() const {
  api::ServerCommand c;
  c.http_address = http_address;
  c.http_port = http_port;
  c.port_file = port_file;
  c.grpc_port = grpc_port;
  c.io_threads = io_threads;
  c.tls_cert_file = tls_cert_file;
  c.tls_key_file = tls_key_file;
  c.tls_client_ca_file = tls_client_ca_file;
  c.admin_port = admin_port;
  c.model_name = model_name;
  c.model_version = model_version;
  c.model_uri = model_uri;
  c.model_format = model_format;
  c.s3_endpoint = s3_endpoint;
  c.s3_region = s3_region;
  c.s3_addressing_style = s3_addressing_style;
  c.model_dir = model_dir;
  c.mlflow_tracking_uri = mlflow_tracking_uri;
  c.batching = batching;
  c.max_batch_size = max_batch_size;
  c.max_queue_delay = std::chrono::microseconds(max_queue_delay_us);
  c.batch_inline_when_idle = batch_inline_when_idle;
  c.max_queue_size = max_queue_size;
  c.request_timeout_ms = request_timeout_ms;
  c.cache = cache;
  c.cache_capacity = cache_capacity;
  c.cache_capacity_bytes = cache_capacity_bytes;
  c.cache_ttl = std::chrono::milliseconds(cache_ttl_ms);
  c.max_body_bytes = max_body_bytes;
  c.max_header_bytes = max_header_bytes;
  c.header_timeout_ms = header_timeout_ms;
  c.body_timeout_ms = body_timeout_ms;
  c.idle_timeout_ms = idle_timeout_ms;
  c.drain_grace_ms = drain_grace_ms;
  c.drain_timeout_ms = drain_timeout_ms;
  c.drain_idle_timeout_ms = drain_idle_timeout_ms;
  if (!feature_views.empty()) c.feature_views = api::FormatFeatureViews(feature_views);
  c.feature_budget = std::chrono::microseconds(feature_budget_us);
  c.fault_error_percent = fault_error_percent;
  c.fault_delay_ms = fault_delay_ms;
  c.log_format = log_format == LogFormat::kJson ? "json" : "text";
  c.log_level = log_level;
  return c;
}

Result<ServerFlags> ParseServerFlags(const std::vector<std::string>& args,
                                     const std::function<const char*(const char*)>& getenv) {
  ServerFlags f;
  if (getenv) {
    ASSIGN_OR_RETURN(FaultOptions env, FaultOptionsFromEnv(getenv));
    f.fault_error_percent = env.error_percent;
    f.fault_delay_ms = env.delay.count();
    f.fault_only_version = env.only_version;
  }
  ASSIGN_OR_RETURN(api::ServerCommand c, api::ServerCommand::Parse(args));
  Take(c.help, f.help);
  Take(c.version, f.version);
  Take(c.http_address, f.http_address);
  Take(c.http_port, f.http_port);
  Take(c.port_file, f.port_file);
  Take(c.grpc_port, f.grpc_port);
  Take(c.io_threads, f.io_threads);
  Take(c.tls_cert_file, f.tls_cert_file);
  Take(c.tls_key_file, f.tls_key_file);
  Take(c.tls_client_ca_file, f.tls_client_ca_file);
  Take(c.admin_port, f.admin_port);
  Take(c.model_name, f.model_name);
  Take(c.model_version, f.model_version);
  Take(c.model_uri, f.model_uri);
  Take(c.model_format, f.model_format);
  // The runtime checks "sha256:<hex>"; the command holds the bare digest.
  if (c.model_sha256) f.model_sha256 = api::Sha256Digest(*c.model_sha256);
  Take(c.s3_endpoint, f.s3_endpoint);
  Take(c.s3_region, f.s3_region);
  Take(c.s3_addressing_style, f.s3_addressing_style);
  Take(c.model_dir, f.model_dir);
  Take(c.mlflow_tracking_uri, f.mlflow_tracking_uri);
  Take(c.batching, f.batching);
  Take(c.max_batch_size, f.max_batch_size);
  if (c.max_queue_delay) f.max_queue_delay_us = c.max_queue_delay->count();
  Take(c.batch_inline_when_idle, f.batch_inline_when_idle);
  Take(c.max_queue_size, f.max_queue_size);
  Take(c.request_timeout_ms, f.request_timeout_ms);
  Take(c.cache, f.cache);
  Take(c.cache_capacity, f.cache_capacity);
  Take(c.cache_capacity_bytes, f.cache_capacity_bytes);
  if (c.cache_ttl) f.cache_ttl_ms = c.cache_ttl->count();
  Take(c.max_body_bytes, f.max_body_bytes);
  Take(c.max_header_bytes, f.max_header_bytes);
  Take(c.header_timeout_ms, f.header_timeout_ms);
  Take(c.body_timeout_ms, f.body_timeout_ms);
  Take(c.idle_timeout_ms, f.idle_timeout_ms);
  Take(c.drain_grace_ms, f.drain_grace_ms);
  Take(c.drain_timeout_ms, f.drain_timeout_ms);
  Take(c.drain_idle_timeout_ms, f.drain_idle_timeout_ms);
  if (c.feature_views && !c.feature_views->empty()) {
    auto views = api::ParseFeatureViews(*c.feature_views);
    if (!views.ok()) return views.status().Annotate("--feature-views");
    f.feature_views = std::move(views).value();
  }
  if (c.feature_budget) f.feature_budget_us = c.feature_budget->count();
  Take(c.fault_error_percent, f.fault_error_percent);
  Take(c.fault_delay_ms, f.fault_delay_ms);
  if (c.log_format) {
    ASSIGN_OR_RETURN(f.log_format, ParseLogFormat(*c.log_format));
  }
  Take(c.log_level, f.log_level);
  if (!f.help && !f.version && f.model_uri.empty()) return InvalidArgument("--model-uri is required");
  if (f.tls_cert_file.empty() != f.tls_key_file.empty()) {
    return InvalidArgument("--tls-cert-file and --tls-key-file go together");
  }
  if (!f.tls_client_ca_file.empty() && f.tls_cert_file.empty()) {
    return InvalidArgument("--tls-client-ca-file needs --tls-cert-file and --tls-key-file");
  }
  return f;
}

std::string ServerUsage() {
  return "sluice-server: serves a model over the Open Inference Protocol (V2), REST and gRPC.\n\n"
         "Flags (--flag=value or --flag value; booleans also --flag and --no-flag):\n" +
         api::ServerCommand::Usage(ServerFlags{}.ToCommand());
}

HttpServerOptions ServerFlags::ToHttpOptions() const {
  HttpServerOptions o;
  o.address = http_address;
  o.port = static_cast<uint16_t>(http_port);
  o.io_threads = io_threads;
  o.max_body_bytes = static_cast<size_t>(max_body_bytes);
  o.max_header_bytes = static_cast<size_t>(max_header_bytes);
  o.header_timeout = std::chrono::milliseconds(header_timeout_ms);
  o.body_timeout = std::chrono::milliseconds(body_timeout_ms);
  o.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  o.drain_idle_timeout = std::chrono::milliseconds(drain_idle_timeout_ms);
  o.server_name = "sluice-server";
  return o;
}

FaultOptions ServerFlags::ToFaultOptions() const {
  FaultOptions o;
  o.error_percent = static_cast<int>(fault_error_percent);
  o.delay = std::chrono::milliseconds(fault_delay_ms);
  o.only_version = fault_only_version;
  // Meant for another version of the model: this server injects nothing.
  if (!o.only_version.empty() && o.only_version != model_version) return FaultOptions{};
  return o;
}

ModelOptions ServerFlags::ToModelOptions() const {
  ModelOptions m;
  m.name = model_name;
  m.version = model_version;
  m.batching = batching;
  m.batcher.max_batch_size = static_cast<size_t>(max_batch_size);
  m.batcher.max_queue_delay = std::chrono::microseconds(max_queue_delay_us);
  m.batcher.max_queue_size = static_cast<size_t>(max_queue_size);
  m.batcher.run_inline_when_idle = batch_inline_when_idle;
  m.batcher.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  m.feature_views = feature_views;
  m.feature_budget = std::chrono::microseconds(feature_budget_us);
  m.cache = cache;
  m.cache_options.max_entries = static_cast<size_t>(cache_capacity);
  m.cache_options.capacity_bytes = static_cast<size_t>(cache_capacity_bytes);
  m.cache_options.ttl = std::chrono::milliseconds(cache_ttl_ms);
  return m;
}

}  // namespace sluice::dataplane
