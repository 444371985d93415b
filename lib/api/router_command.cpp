#include "lib/api/router_command.h"

#include <limits>

namespace sluice::api {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

}  // namespace

void RouterCommand::Bind(FlagSet& f, RouterCommand& c) {
  f.Bool("help", &c.help, "print this help");
  f.Bool("version", &c.version, "print the version and revision, then exit");
  f.String("model-deployment", &c.model_deployment,
           "the ModelDeployment whose status.traffic is followed (required)");
  f.String("namespace", &c.ns, "its namespace (required)");
  f.String("kubeconfig", &c.kubeconfig,
           "kubeconfig file; default $KUBECONFIG (':'-separated files, merged as kubectl "
           "does), else the in-cluster service account, else ~/.kube/config");
  f.String("context", &c.context, "kubeconfig context (default: current-context)");
  f.String("static-traffic", &c.static_traffic,
           "route by this fixed table instead of a ModelDeployment (local runs, benchmarks): "
           "NAME=WEIGHT[:MIRROR]@IP:PORT[+GRPCPORT][,...] entries separated by ';'");
  f.String("sticky-header", &c.sticky_header,
           "with --static-traffic: the header whose value pins a caller to one revision");
  f.String("stable-revision", &c.stable_revision,
           "with --static-traffic: the stable revision; a failed request of any other revision "
           "is retried on it, and a guarded canary's requests go to it");
  f.Bool("retry-on-stable", &c.retry_on_stable,
         "with --static-traffic: retry a canary's failed requests once on --stable-revision "
         "(a ModelDeployment sets spec.traffic.retryOnStable)");
  f.String("guard-max-error-rate", &c.guard_max_error_rate,
           "with --static-traffic: a canary whose error rate over the last 5 s (at least 20 "
           "requests) is above this fraction gets no more requests (a ModelDeployment takes the "
           "analysis' errorRate max and interval); 1 = never");
  f.Int("retry-budget-percent", &c.retry_budget_percent, 0, 100,
        "retries allowed per 100 requests (plus a burst of 20); 0 = no retries");
  f.String("http-address", &c.http_address, "address to listen on");
  f.Int("http-port", &c.http_port, 0, 65535, "HTTP port; 0 picks a free one");
  f.String("port-file", &c.port_file, "write the bound HTTP port to this file once listening");
  f.Int("grpc-port", &c.grpc_port, 0, 65535,
        "gRPC port (unary calls forwarded to the revisions' gRPC ports); 0 = no gRPC");
  f.Int("io-threads", &c.io_threads, 0, 1024,
        "io threads (each with its own backend connection pool); 0 = one per core");
  f.Int("admin-port", &c.admin_port, 0, 65535,
        "admin port on --http-address: /metrics, /healthz and /readyz (the traffic port keeps "
        "/healthz and /readyz but not /metrics); 0 picks a free one");
  f.String("admin-port-file", &c.admin_port_file,
           "write the bound admin port to this file once listening");
  f.String("tls-cert-file", &c.tls_cert_file,
           "PEM certificate chain: the HTTP and gRPC ports serve TLS only (needs --tls-key-file); "
           "re-read when the file changes");
  f.String("tls-key-file", &c.tls_key_file, "PEM private key of --tls-cert-file");
  f.String("tls-client-ca-file", &c.tls_client_ca_file,
           "with TLS: require client certificates issued by this CA (mTLS)");
  f.Int("upstream-port", &c.upstream_port, 1, 65535,
        "backend port for EndpointSlices without a port named http");
  f.Int("upstream-grpc-port", &c.upstream_grpc_port, 0, 65535,
        "backend gRPC port for EndpointSlices without a port named grpc; 0 = none");
  f.Int("upstream-timeout-ms", &c.upstream_timeout_ms, 1, kMax,
        "whole backend exchange (connect, send, complete answer); then 504, or gRPC "
        "DEADLINE_EXCEEDED unless the caller's deadline is sooner");
  f.Int("connect-timeout-ms", &c.connect_timeout_ms, 1, kMax,
        "TCP connect to a backend; then 504 (gRPC: UNAVAILABLE)");
  f.Int("max-idle-per-endpoint", &c.max_idle_per_endpoint, 0, 1'000'000,
        "idle keep-alive connections kept per backend endpoint and io thread");
  f.Int("upstream-idle-timeout-ms", &c.upstream_idle_timeout_ms, 1, kMax,
        "an idle backend connection is not reused after this");
  f.Int("max-mirror-inflight", &c.max_mirror_inflight, 0, 1'000'000,
        "mirrored copies in flight per io thread; more are dropped and counted");
  f.String("revision-header", &c.revision_header,
           "answer header (gRPC: initial metadata, lowercased) naming the revision that served "
           "the request; empty = none");
  f.Bool("upstream-tls", &c.upstream_tls,
         "speak TLS to every backend (HTTP and gRPC); without it, only to backends whose "
         "EndpointSlice http port has appProtocol https");
  f.String("upstream-ca-file", &c.upstream_ca_file,
           "the CA TLS backends' certificates must chain to; empty = the system store");
  f.String("upstream-server-name", &c.upstream_server_name,
           "the name TLS backends' certificates must carry (and SNI); empty = the chain is "
           "verified, the name is not (backends are dialled by pod address)");
  f.Int("max-body-bytes", &c.max_body_bytes, 1, kMax, "largest request and answer body");
  f.Int("max-header-bytes", &c.max_header_bytes, 1024, kMax, "largest request header");
  f.Int("header-timeout-ms", &c.header_timeout_ms, 1, kMax, "reading a request header; then 408");
  f.Int("body-timeout-ms", &c.body_timeout_ms, 1, kMax, "reading a request body; then 408");
  f.Int("idle-timeout-ms", &c.idle_timeout_ms, 1, kMax,
        "an idle client keep-alive connection is closed after this");
  f.Int("drain-grace-ms", &c.drain_grace_ms, 0, kMax,
        "after SIGTERM, keep routing this long while not ready");
  f.Int("drain-timeout-ms", &c.drain_timeout_ms, 0, kMax,
        "then give in-flight requests this long to finish");
  f.Int("drain-idle-timeout-ms", &c.drain_idle_timeout_ms, 1, kMax,
        "while draining, close idle client connections after this");
  f.Int("sync-timeout-ms", &c.sync_timeout_ms, 0, kMax,
        "exit 1 when the first list of the ModelDeployment and its EndpointSlices takes longer; "
        "0 = wait forever, not ready meanwhile");
  f.Add("log-format", &c.log_format, FlagSet::OneOf("text|json", {"text", "json"}),
        "log lines as text or JSON");
  f.String("log-level", &c.log_level, "trace | debug | info | warn | error | off");
}

std::vector<std::string> RouterCommand::ToArgs() const {
  RouterCommand copy = *this;
  FlagSet flags;
  Bind(flags, copy);
  return flags.ToArgs();
}

Result<RouterCommand> RouterCommand::Parse(const std::vector<std::string>& args) {
  RouterCommand c;
  FlagSet flags;
  Bind(flags, c);
  RETURN_IF_ERROR(flags.Parse(args));
  return c;
}

std::string RouterCommand::Usage(const RouterCommand& shown) {
  RouterCommand copy = shown;
  copy.help.reset();
  copy.version.reset();
  FlagSet flags;
  Bind(flags, copy);
  return flags.Usage();
}

}  // namespace sluice::api
