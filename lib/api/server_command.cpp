#include "lib/api/server_command.h"

#include <limits>

namespace sluice::api {
namespace {

using namespace std::chrono_literals;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr char kSha256Prefix[] = "sha256:";

// spec.model.sha256 is bare lower-case hex; the flag says what the digest is.
FlagSet::Codec<std::string> Sha256Codec() {
  return {"sha256:HEX",
          [](const std::string& v) -> Result<std::string> {
            const std::string_view prefix = kSha256Prefix;
            if (v.rfind(prefix, 0) != 0 || v.size() != prefix.size() + 64 ||
                v.find_first_not_of("0123456789abcdef", prefix.size()) != std::string::npos) {
              return InvalidArgument("\"" + v + "\" is not sha256:<64 lower-case hex digits>");
            }
            return v.substr(prefix.size());
          },
          [](const std::string& hex) { return Sha256Digest(hex); }};
}

}  // namespace

std::string Sha256Digest(const std::string& hex) {
  return kSha256Prefix + hex;
}

void ServerCommand::Bind(FlagSet& f, ServerCommand& c) {
  f.Bool("help", &c.help, "print this help");
  f.Bool("version", &c.version, "print the version and revision, then exit");
  f.String("http-address", &c.http_address, "address to listen on for HTTP and gRPC");
  f.Int("http-port", &c.http_port, 0, 65535, "HTTP port; 0 picks a free one");
  f.String("port-file", &c.port_file, "write the bound HTTP port to this file once listening");
  f.Int("grpc-port", &c.grpc_port, 0, 65535,
        "gRPC port on --http-address; 0 = no gRPC; --max-body-bytes bounds messages");
  f.Int("io-threads", &c.io_threads, 0, 1024, "HTTP io threads; 0 = one per core");
  f.String("tls-cert-file", &c.tls_cert_file,
           "PEM certificate chain: the HTTP and gRPC ports serve TLS only (needs --tls-key-file); "
           "re-read when the file changes");
  f.String("tls-key-file", &c.tls_key_file, "PEM private key of --tls-cert-file");
  f.String("tls-client-ca-file", &c.tls_client_ca_file,
           "with TLS: require client certificates issued by this CA (mTLS)");
  f.Int("admin-port", &c.admin_port, 0, 65535,
        "plain-HTTP port for /metrics and /v2/health/* only (scrapers without TLS); 0 = none");
  f.String("model-name", &c.model_name, "model name (default: the model file name)");
  f.String("model-version", &c.model_version, "model version");
  f.String("model-uri", &c.model_uri,
           "model location: file://, a path, http(s)://, s3://bucket/key (required)");
  f.Add("model-format", &c.model_format,
        FlagSet::OneOf("auto|xgboost-json|xgboost-ubj|mlflow",
                       {"auto", "xgboost-json", "xgboost-ubj", "mlflow"}),
        "the model file's format; auto goes by extension, then content; mlflow: --model-uri is "
        "an MLflow model folder whose MLmodel names the file");
  f.Add("model-sha256", &c.model_sha256, Sha256Codec(),
        "the SHA-256 the model bytes must match; the model is refused otherwise");
  f.String("s3-endpoint", &c.s3_endpoint,
           "S3-compatible endpoint for s3:// models, http(s)://host[:port] (MinIO, Ceph, R2, GCS); "
           "empty: AWS");
  f.String("s3-region", &c.s3_region,
           "signing region for s3://; empty: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1");
  f.Add("s3-addressing-style", &c.s3_addressing_style,
        FlagSet::OneOf("auto|path|virtual", {"auto", "path", "virtual"}),
        "s3:// URLs: auto is virtual-host style on AWS, path style on a custom endpoint");
  f.String("model-dir", &c.model_dir,
           "fetch the model into this directory before loading, once per pod: a restart with the "
           "same URI reuses the complete file; empty: fetch into memory");
  f.String("mlflow-tracking-uri", &c.mlflow_tracking_uri,
           "MLflow tracking server of a registry model: fetches under it send "
           "$MLFLOW_TRACKING_TOKEN as a bearer token");
  f.Bool("batching", &c.batching, "dynamic batching; off evaluates every request on its own");
  f.Int("max-batch-size", &c.max_batch_size, 1, 1 << 20, "rows per batch");
  f.Duration("max-queue-delay", &c.max_queue_delay, 0ns, 10s,
             "longest a request waits for a batch to fill; 0s = never waits");
  f.Bool("batch-inline-when-idle", &c.batch_inline_when_idle,
         "with no queue delay, a request that finds the batcher idle runs on the io thread");
  f.Int("max-queue-size", &c.max_queue_size, 1, 1 << 24,
        "requests that may wait for a batch; more get 503");
  f.Int("request-timeout-ms", &c.request_timeout_ms, 0, kMax,
        "a request queued longer fails with 503; 0 = no limit");
  f.Bool("cache", &c.cache, "response cache");
  f.Int("cache-capacity", &c.cache_capacity, 1, kMax,
        "most cached responses (least recently used go first)");
  f.Int("cache-capacity-bytes", &c.cache_capacity_bytes, 1, kMax,
        "most bytes of cached responses, whichever bound is reached first");
  f.Duration("cache-ttl", &c.cache_ttl, 0ns, std::chrono::hours(24 * 365),
             "how long a cached response stays valid; 0s = no expiry");
  f.Int("max-body-bytes", &c.max_body_bytes, 1, kMax, "larger bodies get 413");
  f.Int("max-header-bytes", &c.max_header_bytes, 256, 1 << 24, "larger headers get 431");
  f.Int("header-timeout-ms", &c.header_timeout_ms, 1, kMax, "request header read timeout");
  f.Int("body-timeout-ms", &c.body_timeout_ms, 1, kMax, "request body read timeout");
  f.Int("idle-timeout-ms", &c.idle_timeout_ms, 1, kMax, "keep-alive idle timeout");
  f.Int("drain-grace-ms", &c.drain_grace_ms, 0, kMax,
        "after SIGTERM: not ready but still serving for this long");
  f.Int("drain-timeout-ms", &c.drain_timeout_ms, 0, kMax,
        "then: time for in-flight requests to finish");
  f.Int("drain-idle-timeout-ms", &c.drain_idle_timeout_ms, 1, kMax,
        "while draining, idle keep-alive connections close after this");
  f.String("feature-views", &c.feature_views,
           "online feature views to enrich requests with, as JSON (set by the operator from "
           "spec.features)");
  f.Duration("feature-budget", &c.feature_budget, 0ns, 10s,
             "longest the online feature fetch of a request may take; then defaults are served");
  f.Int("fault-error-percent", &c.fault_error_percent, 0, 100,
        "answer this share of inference requests with 500 'injected fault', spread evenly (1 in "
        "5 for 20); $SLUICE_FAULT_ERROR_PERCENT sets the default");
  f.Int("fault-delay-ms", &c.fault_delay_ms, 0, 600'000,
        "add this latency to every inference request; $SLUICE_FAULT_DELAY_MS sets the default");
  f.Add("log-format", &c.log_format, FlagSet::OneOf("text|json", {"text", "json"}),
        "log lines as text or JSON");
  f.String("log-level", &c.log_level, "trace | debug | info | warn | error | off");
}

std::vector<std::string> ServerCommand::ToArgs() const {
  ServerCommand copy = *this;
  FlagSet flags;
  Bind(flags, copy);
  std::vector<std::string> args = flags.ToArgs();
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return args;
}

Result<ServerCommand> ServerCommand::Parse(const std::vector<std::string>& args) {
  ServerCommand c;
  FlagSet flags;
  Bind(flags, c);
  RETURN_IF_ERROR(flags.Parse(args));
  return c;
}

std::string ServerCommand::Usage(const ServerCommand& shown) {
  ServerCommand copy = shown;
  copy.help.reset();
  copy.version.reset();
  FlagSet flags;
  Bind(flags, copy);
  return flags.Usage();
}

}  // namespace sluice::api
