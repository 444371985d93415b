#include "dataplane/router/router_flags.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "dataplane/router/routing_table.h"

namespace sluice::dataplane {

namespace {

struct Flag {
  std::string help;
  bool is_bool = false;
  std::function<Status(const std::string&)> set;
};

Status ParseInt(const std::string& name, const std::string& value, int64_t min, int64_t max,
                int64_t& out) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return InvalidArgument("--" + name + ": '" + value + "' is not an integer");
  }
  if (v < min || v > max) {
    return InvalidArgument("--" + name + ": " + value + " is outside [" + std::to_string(min) +
                           ", " + std::to_string(max) + "]");
  }
  out = v;
  return Status::Ok();
}

// Flags in the order --help lists them.
std::vector<std::pair<std::string, Flag>> Flags(RouterFlags& f) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  std::vector<std::pair<std::string, Flag>> m;
  auto str = [&](const char* name, std::string& dst, const char* help) {
    m.emplace_back(name, Flag{help, false, [&dst](const std::string& v) {
                                dst = v;
                                return Status::Ok();
                              }});
  };
  auto num = [&](const char* name, int64_t& dst, int64_t min, int64_t max, const char* help) {
    m.emplace_back(
        name, Flag{help, false, [name = std::string(name), &dst, min, max](const std::string& v) {
                     return ParseInt(name, v, min, max, dst);
                   }});
  };
  auto num32 = [&](const char* name, int& dst, int min, int max, const char* help) {
    m.emplace_back(
        name, Flag{help, false, [name = std::string(name), &dst, min, max](const std::string& v) {
                     int64_t x = 0;
                     RETURN_IF_ERROR(ParseInt(name, v, min, max, x));
                     dst = static_cast<int>(x);
                     return Status::Ok();
                   }});
  };
  m.emplace_back("help", Flag{"print this help", true, [&f](const std::string& v) {
                                f.help = v == "true";
                                return Status::Ok();
                              }});
  str("model-deployment", f.model_deployment,
      "the ModelDeployment whose status.traffic is followed (required)");
  str("namespace", f.ns, "its namespace (required)");
  str("kubeconfig", f.kubeconfig,
      "kubeconfig file; default $KUBECONFIG, else the in-cluster service account, else "
      "~/.kube/config");
  str("context", f.context, "kubeconfig context (default: current-context)");
  str("static-traffic", f.static_traffic,
      "route by this fixed table instead of a ModelDeployment (local runs, benchmarks): "
      "NAME=WEIGHT[:MIRROR]@IP:PORT[+GRPCPORT][,...] entries separated by ';'");
  str("sticky-header", f.sticky_header,
      "with --static-traffic: the header whose value pins a caller to one revision");
  str("http-address", f.http_address, "address to listen on (default 0.0.0.0)");
  num32("http-port", f.http_port, 0, 65535, "HTTP port; 0 picks a free one (default 8080)");
  str("port-file", f.port_file, "write the bound HTTP port to this file once listening");
  num32("grpc-port", f.grpc_port, 0, 65535,
        "gRPC port (unary calls forwarded to the revisions' gRPC ports); 0 = no gRPC (default)");
  num32("io-threads", f.io_threads, 0, 1024,
        "io threads (each with its own backend connection pool); 0 = one per core (default)");
  num32("upstream-port", f.upstream_port, 1, 65535,
        "backend port for EndpointSlices without a port named http (default 8080)");
  num32("upstream-grpc-port", f.upstream_grpc_port, 0, 65535,
        "backend gRPC port for EndpointSlices without a port named grpc; 0 = none (default)");
  num("upstream-timeout-ms", f.upstream_timeout_ms, 1, kMax,
      "whole backend exchange (connect, send, complete answer); then 504, or gRPC "
      "DEADLINE_EXCEEDED unless the caller's deadline is sooner (default 30000)");
  num("connect-timeout-ms", f.connect_timeout_ms, 1, kMax,
      "TCP connect to a backend; then 504 (gRPC: UNAVAILABLE) (default 1000)");
  num("max-idle-per-endpoint", f.max_idle_per_endpoint, 0, 1'000'000,
      "idle keep-alive connections kept per backend endpoint and io thread (default 32)");
  num("upstream-idle-timeout-ms", f.upstream_idle_timeout_ms, 1, kMax,
      "an idle backend connection is not reused after this (default 60000)");
  num("max-mirror-inflight", f.max_mirror_inflight, 0, 1'000'000,
      "mirrored copies in flight per io thread; more are dropped and counted (default 256)");
  str("revision-header", f.revision_header,
      "answer header (gRPC: initial metadata, lowercased) naming the revision that served "
      "the request; empty = none (default)");
  num("max-body-bytes", f.max_body_bytes, 1, kMax,
      "largest request and answer body (default 67108864)");
  num("max-header-bytes", f.max_header_bytes, 1024, kMax, "largest request header (default 16384)");
  num("header-timeout-ms", f.header_timeout_ms, 1, kMax,
      "reading a request header; then 408 (default 10000)");
  num("body-timeout-ms", f.body_timeout_ms, 1, kMax,
      "reading a request body; then 408 (default 30000)");
  num("idle-timeout-ms", f.idle_timeout_ms, 1, kMax,
      "an idle client keep-alive connection is closed after this (default 120000)");
  num("drain-grace-ms", f.drain_grace_ms, 0, kMax,
      "after SIGTERM, keep routing this long while not ready (default 5000)");
  num("drain-timeout-ms", f.drain_timeout_ms, 0, kMax,
      "then give in-flight requests this long to finish (default 30000)");
  num("drain-idle-timeout-ms", f.drain_idle_timeout_ms, 1, kMax,
      "while draining, close idle client connections after this (default 500)");
  num("sync-timeout-ms", f.sync_timeout_ms, 0, kMax,
      "exit 1 when the first list of the ModelDeployment and its EndpointSlices takes longer; "
      "0 = wait forever, not ready meanwhile (default)");
  m.emplace_back("log-format",
                 Flag{"text or json (default text)", false, [&f](const std::string& v) {
                        ASSIGN_OR_RETURN(f.log_format, ParseLogFormat(v));
                        return Status::Ok();
                      }});
  str("log-level", f.log_level, "trace, debug, info, warn, error, off (default info)");
  return m;
}

}  // namespace

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
  RouterFlags f;
  auto flags = Flags(f);
  auto find = [&](const std::string& name) -> Flag* {
    for (auto& [n, flag] : flags) {
      if (n == name) return &flag;
    }
    return nullptr;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) return InvalidArgument("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    Flag* flag = find(name);
    if (flag == nullptr && !value && name.rfind("no-", 0) == 0) {
      Flag* negated = find(name.substr(3));
      if (negated != nullptr && negated->is_bool) {
        RETURN_IF_ERROR(negated->set("false"));
        continue;
      }
    }
    if (flag == nullptr) return InvalidArgument("unknown flag --" + name);
    if (!value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return InvalidArgument("--" + name + " needs a value");
      }
    }
    RETURN_IF_ERROR(flag->set(*value));
  }
  if (f.help) return f;
  if (!f.static_traffic.empty()) {
    RETURN_IF_ERROR(ParseStaticTraffic(f.static_traffic).status());
    if (f.model_deployment.empty()) f.model_deployment = "static";
    if (f.ns.empty()) f.ns = "local";
    return f;
  }
  if (!f.sticky_header.empty()) {
    return InvalidArgument(
        "--sticky-header goes with --static-traffic; a ModelDeployment sets "
        "spec.traffic.sticky.header");
  }
  if (f.model_deployment.empty()) return InvalidArgument("--model-deployment is required");
  if (f.ns.empty()) return InvalidArgument("--namespace is required");
  return f;
}

std::string RouterUsage() {
  RouterFlags defaults;
  std::ostringstream out;
  out << "Usage: sluice-router --model-deployment=NAME --namespace=NS [flags]\n\n"
         "Routes the requests of one ModelDeployment to its revisions: by the weights in its\n"
         "status.traffic (exact ratios, followed through a watch), mirroring the share a\n"
         "target's mirrorPercent asks for, and keeping callers on one revision when\n"
         "spec.traffic.sticky.header is set. Forwards every path except its own:\n"
         "  /healthz  liveness     /readyz  200 once the ModelDeployment and EndpointSlices\n"
         "  /metrics  Prometheus            are listed, 503 before and while draining\n"
         "Errors answered by the router: 503 no ready endpoint, 502 backend unreachable or\n"
         "connection lost, 504 timeout; JSON {\"error\": \"...\"}. Requests are not retried.\n"
         "With --grpc-port, unary gRPC calls (the V2 inference.GRPCInferenceService) are split\n"
         "the same way, to each endpoint's port named grpc; the router's own errors are\n"
         "UNAVAILABLE.\n\n"
         "Flags:\n";
  for (const auto& [name, flag] : Flags(defaults)) {
    std::string left = "  --" + name;
    if (!flag.is_bool) left += "=VALUE";
    if (left.size() < 32) left.resize(32, ' ');
    out << left << " " << flag.help << "\n";
  }
  out << "\nSIGTERM or SIGINT: /readyz answers 503, routing continues for --drain-grace-ms, then\n"
         "new connections are refused and in-flight requests get --drain-timeout-ms; exit 0.\n";
  return out.str();
}

}  // namespace sluice::dataplane
