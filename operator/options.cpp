#include "operator/options.h"

#include <charconv>

#include "lib/base/flags.h"

namespace sluice::app {

namespace {

using namespace std::chrono_literals;

std::vector<std::string> SplitList(const std::string& v) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    std::string item =
        v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

FlagSet::Codec<std::string> HttpUrlCodec() {
  return {"URL",
          [](const std::string& v) -> Result<std::string> {
            if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) {
              return InvalidArgument("\"" + v + "\" is not an http(s) URL");
            }
            return v;
          },
          [](const std::string& v) { return v; }};
}

void Bind(FlagSet& f, OperatorOptions& o) {
  constexpr auto kLongest = std::chrono::hours(24 * 365);
  f.Bool("help", &o.help, "print this help");
  f.Bool("version", &o.version, "print the version and revision, then exit");
  f.String("kubeconfig", &o.kubeconfig,
           "kubeconfig file; default $KUBECONFIG (':'-separated files, merged as kubectl "
           "does), then in-cluster, then ~/.kube/config");
  f.String("context", &o.context, "kubeconfig context; default its current-context");
  f.Add("namespaces", &o.namespaces,
        FlagSet::Codec<std::vector<std::string>>{
            "all|a,b,...",
            [](const std::string& v) -> Result<std::vector<std::string>> {
              if (v == "all" || v == "*") return std::vector<std::string>{};
              return SplitList(v);
            },
            [](const std::vector<std::string>& v) {
              std::string out;
              for (const std::string& n : v) out += (out.empty() ? "" : ",") + n;
              return out.empty() ? std::string("all") : out;
            }},
        "namespaces to watch");
  f.Bool("leader-elect", &o.leader_elect, "elect one active replica through a Lease");
  f.String("leader-election-namespace", &o.leader_election_namespace,
           "namespace of the Lease (default: the operator's own namespace)");
  f.String("leader-election-id", &o.leader_election_id, "name of the Lease");
  f.String("identity", &o.identity,
           "this replica's identity in the Lease (default hostname_random)");
  f.Duration("lease-duration", &o.lease_duration, 0ns, kLongest, "how long a Lease holds");
  f.Duration("renew-deadline", &o.renew_deadline, 0ns, kLongest,
             "the leader gives up when it cannot renew within this");
  f.Duration("retry-period", &o.retry_period, 0ns, kLongest, "how often candidates try");
  auto address = FlagSet::Codec<Address>{
      "HOST:PORT", [](const std::string& v) { return ParseAddress(v); },
      [](const Address& a) {
        const bool v6 = a.host.find(':') != std::string::npos;
        return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
      }};
  f.Add("metrics-addr", &o.metrics_addr, address, "Prometheus /metrics; port 0 picks one");
  f.Add("health-addr", &o.health_addr, address, "/healthz and /readyz; port 0 picks one");
  f.String("ports-file", &o.ports_file,
           "write {\"metrics\": port, \"health\": port} once listening");
  f.Int("workers", &o.workers, 1, 256, "reconcile workers per controller");
  f.Int("kube-idle-connections", &o.kube_idle_connections, 0, 4096,
        "idle API server connections kept for reuse; 0: sized to the workers");
  f.Duration("resync-period", &o.resync_period, 0ns, kLongest,
             "revisit every cached object this often; 0s: never");
  f.Duration("shutdown-timeout", &o.shutdown_timeout, 0ns, kLongest,
             "wait this long for in-flight reconciles on SIGTERM");
  f.Duration("secret-recheck-period", &o.secret_recheck_period, 0ns, kLongest,
             "recheck a FeatureView's missing or bad Redis Secret");
  f.String("server-image", &o.workload.server_image,
           "sluice-server image when spec.runtime.image is unset");
  f.String("router-image", &o.workload.router_image,
           "sluice-router image (default: the server image)");
  f.Add("image-pull-policy", &o.workload.image_pull_policy,
        FlagSet::OneOf("POLICY", {"Always", "IfNotPresent", "Never"}),
        "of the pods the operator creates");
  f.Int("router-replicas", &o.workload.router_replicas, 0, 100, "router pods per ModelDeployment");
  f.Add("analysis-provider", &o.analysis_provider,
        FlagSet::Codec<OperatorOptions::AnalysisProvider>{
            "router|prometheus|none",
            [](const std::string& v) -> Result<OperatorOptions::AnalysisProvider> {
              if (v == "router") return OperatorOptions::AnalysisProvider::kRouter;
              if (v == "prometheus") return OperatorOptions::AnalysisProvider::kPrometheus;
              if (v == "none") return OperatorOptions::AnalysisProvider::kNone;
              return InvalidArgument("\"" + v + "\" is not router, prometheus or none");
            },
            [](const OperatorOptions::AnalysisProvider& p) {
              switch (p) {
                case OperatorOptions::AnalysisProvider::kRouter:
                  return std::string("router");
                case OperatorOptions::AnalysisProvider::kPrometheus:
                  return std::string("prometheus");
                case OperatorOptions::AnalysisProvider::kNone:
                  break;
              }
              return std::string("none");
            }},
        "canary metrics when the spec names no Prometheus (router: scrape the router pods)");
  f.Add(
      "prometheus-url", &o.prometheus_url, HttpUrlCodec(),
      "Prometheus for --analysis-provider=prometheus and for custom queries of specs without "
      "analysis.prometheus");
  f.Add("mlflow-tracking-uri", &o.mlflow_tracking_uri, HttpUrlCodec(),
        "MLflow tracking server for models:/ URIs whose spec names none");
  f.Duration("autoscaler-scrape-period", &o.autoscaler_scrape_period, 100ms, kLongest,
             "sample serving pods' in-flight requests this often");
  f.Add("log-format", &o.log_format, FlagSet::OneOf("json|text", {"json", "text"}),
        "log line format");
  f.Add("log-level", &o.log_level,
        FlagSet::OneOf("LEVEL", {"trace", "debug", "info", "warn", "error"}), "log level");
}

}  // namespace

Result<Address> ParseAddress(const std::string& text) {
  Address a;
  std::string port = text;
  if (auto colon = text.rfind(':'); colon != std::string::npos) {
    a.host = text.substr(0, colon);
    if (a.host.empty()) a.host = "0.0.0.0";
    if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') {
      a.host = a.host.substr(1, a.host.size() - 2);
    }
    port = text.substr(colon + 1);
  }
  int p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p < 0 || p > 65535) {
    return InvalidArgument("\"" + text + "\" is not host:port with a port from 0 to 65535");
  }
  a.port = static_cast<uint16_t>(p);
  return a;
}

size_t KubeIdleConnections(const OperatorOptions& options) {
  if (options.kube_idle_connections > 0) return static_cast<size_t>(options.kube_idle_connections);
  // ModelDeployment workers: up to seven applies at once and the status write; FeatureView
  // workers (half as many) and the Lease, events and watches that end and restart: the spare.
  return static_cast<size_t>(options.workers) * 8 + 16;
}

std::string Usage() {
  OperatorOptions defaults;
  FlagSet flags;
  Bind(flags, defaults);
  return "sluice-operator: reconciles ModelDeployments and FeatureViews.\n\n"
         "Flags (--flag=value or --flag value; booleans also --flag and --no-flag):\n" +
         flags.Usage();
}

Result<OperatorOptions> ParseFlags(int argc, const char* const* argv) {
  OperatorOptions o;
  FlagSet flags;
  Bind(flags, o);
  RETURN_IF_ERROR(flags.Parse(std::vector<std::string>(argv + 1, argv + argc)));
  if (o.analysis_provider == OperatorOptions::AnalysisProvider::kPrometheus &&
      o.prometheus_url.empty()) {
    return InvalidArgument("--analysis-provider=prometheus needs --prometheus-url");
  }
  if (!(o.lease_duration > o.renew_deadline && o.renew_deadline > o.retry_period &&
        o.retry_period.count() > 0)) {
    return InvalidArgument(
        "--lease-duration must exceed --renew-deadline, which must exceed --retry-period (> 0)");
  }
  return o;
}

}  // namespace sluice::app
