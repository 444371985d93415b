#include "dataplane/router/router_flags.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "dataplane/router/routing_table.h"

namespace sluice::dataplane {

namespace {

// Overwrites `dst` with the command's value when it has one.
template <typename T, typename U>
void Take(const std::optional<U>& value, T& dst) {
  if (value) dst = static_cast<T>(*value);
}

}  // namespace

api::RouterCommand RouterFlags::ToCommand() const {
  api::RouterCommand c;
  c.model_deployment = model_deployment;
  c.ns = ns;
  c.kubeconfig = kubeconfig;
  c.context = context;
  c.static_traffic = static_traffic;
  c.sticky_header = sticky_header;
  c.stable_revision = stable_revision;
  c.retry_on_stable = retry_on_stable;
  c.guard_max_error_rate = fmt::format("{}", guard_max_error_rate);
  c.retry_budget_percent = retry_budget_percent;
  c.http_address = http_address;
  c.http_port = http_port;
  c.port_file = port_file;
  c.grpc_port = grpc_port;
  c.io_threads = io_threads;
  c.admin_port = admin_port;
  c.admin_port_file = admin_port_file;
  c.tls_cert_file = tls_cert_file;
  c.tls_key_file = tls_key_file;
  c.tls_client_ca_file = tls_client_ca_file;
  c.upstream_port = upstream_port;
  c.upstream_grpc_port = upstream_grpc_port;
  c.upstream_timeout_ms = upstream_timeout_ms;
  c.connect_timeout_ms = connect_timeout_ms;
  c.max_idle_per_endpoint = max_idle_per_endpoint;
  c.upstream_idle_timeout_ms = upstream_idle_timeout_ms;
  c.max_mirror_inflight = max_mirror_inflight;
  c.revision_header = revision_header;
  c.upstream_tls = upstream_tls;
  c.upstream_ca_file = upstream_ca_file;
  c.upstream_server_name = upstream_server_name;
  c.max_body_bytes = max_body_bytes;
  c.max_header_bytes = max_header_bytes;
  c.header_timeout_ms = header_timeout_ms;
  c.body_timeout_ms = body_timeout_ms;
  c.idle_timeout_ms = idle_timeout_ms;
  c.drain_grace_ms = drain_grace_ms;
  c.drain_timeout_ms = drain_timeout_ms;
  c.drain_idle_timeout_ms = drain_idle_timeout_ms;
  c.sync_timeout_ms = sync_timeout_ms;
  c.log_format = log_format == LogFormat::kJson ? "json" : "text";
  c.log_level = log_level;
  return c;
}

HttpServerOptions RouterFlags::ToHttpOptions() const {
  HttpServerOptions o;
  o.address = http_address;
  o.port = static_cast<uint16_t>(http_port);
  o.io_threads = io_threads;
  o.max_body_bytes = static_cast<size_t>(max_body_bytes);
  o.max_header_bytes = static_cast<size_t>(max_header_bytes);
  o.header_timeout = std::chrono::milliseconds(header_timeout_ms);
  o.body_timeout = std::chrono::milliseconds(body_timeout_ms);
  o.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  // An answer from a slow backend is written to the client within the usual write budget.
  o.write_timeout = std::chrono::milliseconds(std::max<int64_t>(body_timeout_ms, 30'000));
  o.drain_idle_timeout = std::chrono::milliseconds(drain_idle_timeout_ms);
  o.server_name = "sluice-router";
  return o;
}

HttpServerOptions RouterFlags::ToAdminHttpOptions() const {
  HttpServerOptions o;
  o.address = http_address;
  o.port = static_cast<uint16_t>(admin_port);
  // Scrapes and probes only: one thread, small requests, no drain grace (it serves until exit).
  o.io_threads = 1;
  o.max_body_bytes = 64 * 1024;
  o.max_header_bytes = static_cast<size_t>(max_header_bytes);
  o.header_timeout = std::chrono::milliseconds(header_timeout_ms);
  o.body_timeout = std::chrono::milliseconds(body_timeout_ms);
  o.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  o.drain_idle_timeout = std::chrono::milliseconds(drain_idle_timeout_ms);
  o.server_name = "sluice-router";
  return o;
}

ProxyOptions RouterFlags::ToProxyOptions() const {
  ProxyOptions o;
  o.upstream.connect_timeout = std::chrono::milliseconds(connect_timeout_ms);
  o.upstream.request_timeout = std::chrono::milliseconds(upstream_timeout_ms);
  o.upstream.max_idle_per_endpoint = static_cast<size_t>(max_idle_per_endpoint);
  o.upstream.idle_timeout = std::chrono::milliseconds(upstream_idle_timeout_ms);
  o.upstream.max_response_body_bytes = static_cast<uint64_t>(max_body_bytes);
  o.max_mirror_inflight = static_cast<size_t>(max_mirror_inflight);
  o.revision_header = revision_header;
  o.model_deployment = ns + "/" + model_deployment;
  o.retry_budget = std::make_shared<RetryBudget>(retry_budget_percent);
  return o;
}

GrpcProxyOptions RouterFlags::ToGrpcProxyOptions() const {
  GrpcProxyOptions o;
  o.address = http_address;
  o.port = grpc_port;
  o.max_message_bytes = std::min<int64_t>(max_body_bytes, std::numeric_limits<int32_t>::max());
  o.upstream_timeout = std::chrono::milliseconds(upstream_timeout_ms);
  o.connect_timeout = std::chrono::milliseconds(connect_timeout_ms);
  o.max_mirror_inflight = static_cast<size_t>(max_mirror_inflight);
  o.revision_header = revision_header;
  o.model_deployment = ns + "/" + model_deployment;
  return o;
}

Result<RouterFlags> ParseRouterFlags(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(api::RouterCommand c, api::RouterCommand::Parse(args));
  RouterFlags f;
  Take(c.help, f.help);
  Take(c.version, f.version);
  Take(c.model_deployment, f.model_deployment);
  Take(c.ns, f.ns);
  Take(c.kubeconfig, f.kubeconfig);
  Take(c.context, f.context);
  Take(c.static_traffic, f.static_traffic);
  Take(c.sticky_header, f.sticky_header);
  Take(c.stable_revision, f.stable_revision);
  Take(c.retry_on_stable, f.retry_on_stable);
  Take(c.retry_budget_percent, f.retry_budget_percent);
  if (c.guard_max_error_rate) {
    const std::string& text = *c.guard_max_error_rate;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !(v >= 0) || v > 1) {
      return InvalidArgument("--guard-max-error-rate: want a fraction in [0, 1], got \"" + text +
                             "\"");
    }
    f.guard_max_error_rate = v;
  }
  Take(c.http_address, f.http_address);
  Take(c.http_port, f.http_port);
  Take(c.port_file, f.port_file);
  Take(c.grpc_port, f.grpc_port);
  Take(c.io_threads, f.io_threads);
  Take(c.admin_port, f.admin_port);
  Take(c.admin_port_file, f.admin_port_file);
  Take(c.tls_cert_file, f.tls_cert_file);
  Take(c.tls_key_file, f.tls_key_file);
  Take(c.tls_client_ca_file, f.tls_client_ca_file);
  Take(c.upstream_port, f.upstream_port);
  Take(c.upstream_grpc_port, f.upstream_grpc_port);
  Take(c.upstream_timeout_ms, f.upstream_timeout_ms);
  Take(c.connect_timeout_ms, f.connect_timeout_ms);
  Take(c.max_idle_per_endpoint, f.max_idle_per_endpoint);
  Take(c.upstream_idle_timeout_ms, f.upstream_idle_timeout_ms);
  Take(c.max_mirror_inflight, f.max_mirror_inflight);
  Take(c.revision_header, f.revision_header);
  Take(c.upstream_tls, f.upstream_tls);
  Take(c.upstream_ca_file, f.upstream_ca_file);
  Take(c.upstream_server_name, f.upstream_server_name);
  Take(c.max_body_bytes, f.max_body_bytes);
  Take(c.max_header_bytes, f.max_header_bytes);
  Take(c.header_timeout_ms, f.header_timeout_ms);
  Take(c.body_timeout_ms, f.body_timeout_ms);
  Take(c.idle_timeout_ms, f.idle_timeout_ms);
  Take(c.drain_grace_ms, f.drain_grace_ms);
  Take(c.drain_timeout_ms, f.drain_timeout_ms);
  Take(c.drain_idle_timeout_ms, f.drain_idle_timeout_ms);
  Take(c.sync_timeout_ms, f.sync_timeout_ms);
  if (c.log_format) {
    ASSIGN_OR_RETURN(f.log_format, ParseLogFormat(*c.log_format));
  }
  Take(c.log_level, f.log_level);
  if (f.help || f.version) return f;
  if (f.tls_cert_file.empty() != f.tls_key_file.empty()) {
    return InvalidArgument("--tls-cert-file and --tls-key-file go together");
  }
  if (!f.tls_client_ca_file.empty() && f.tls_cert_file.empty()) {
    return InvalidArgument("--tls-client-ca-file needs --tls-cert-file and --tls-key-file");
  }
  if (!f.static_traffic.empty()) {
    ASSIGN_OR_RETURN(StaticTraffic fixed, ParseStaticTraffic(f.static_traffic));
    if (!f.stable_revision.empty()) {
      bool found = false;
      for (const auto& t : fixed.config.targets) found = found || t.revision == f.stable_revision;
      if (!found) {
        return InvalidArgument("--stable-revision=" + f.stable_revision +
                               " is not a revision of --static-traffic");
      }
    }
    if (f.model_deployment.empty()) f.model_deployment = "static";
    if (f.ns.empty()) f.ns = "local";
    return f;
  }
  if (!f.sticky_header.empty()) {
    return InvalidArgument(
        "--sticky-header goes with --static-traffic; a ModelDeployment sets "
        "spec.traffic.sticky.header");
  }
  if (!f.stable_revision.empty()) {
    return InvalidArgument(
        "--stable-revision goes with --static-traffic; a ModelDeployment gives "
        "status.stableRevision, spec.traffic.retryOnStable and its analysis' errorRate limit");
  }
  if (f.model_deployment.empty()) return InvalidArgument("--model-deployment is required");
  if (f.ns.empty()) return InvalidArgument("--namespace is required");
  return f;
}

std::string RouterUsage() {
  std::ostringstream out;
  out << "Usage: sluice-router --model-deployment=NAME --namespace=NS [flags]\n\n"
         "Routes the requests of one ModelDeployment to its revisions: by the weights in its\n"
         "status.traffic (exact ratios, followed through a watch), mirroring the share a\n"
         "target's mirrorPercent asks for, and keeping callers on one revision when\n"
         "spec.traffic.sticky.header is set. Forwards every path except its own:\n"
         "  /healthz  liveness     /readyz  200 once the ModelDeployment and EndpointSlices\n"
         "                                  are listed, 503 before and while draining\n"
         "The admin port (--admin-port) serves /healthz, /readyz and /metrics (Prometheus);\n"
         "the traffic port forwards /metrics like any other path.\n"
         "Errors answered by the router: 503 no ready endpoint, 502 backend unreachable or\n"
         "connection lost, 504 timeout; JSON {\"error\": \"...\"}. A request a canary fails is\n"
         "retried once on the stable revision (within the timeout and --retry-budget-percent);\n"
         "a canary whose recent error rate passes the analysis limit gets no more requests.\n"
         "With --grpc-port, unary gRPC calls (the V2 inference.GRPCInferenceService) are split\n"
         "the same way, to each endpoint's port named grpc; the router's own errors are\n"
         "UNAVAILABLE.\n\n"
         "Flags (--flag=value or --flag value):\n"
      << api::RouterCommand::Usage(RouterFlags{}.ToCommand());
  out << "\nSIGTERM or SIGINT: /readyz answers 503, routing continues for --drain-grace-ms, then\n"
         "new connections are refused and in-flight requests get --drain-timeout-ms; exit 0.\n";
  return out.str();
}

}  // namespace sluice::dataplane
