#pragma once

// The sluice-operator's command line.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "controllers/modeldeployment/resources.h"
#include "lib/base/status.h"

namespace sluice::app {

struct Address {
  std::string host = "0.0.0.0";
  uint16_t port = 0;  // 0: any free port (logged, and written to --ports-file)
};

struct OperatorOptions {
  std::string kubeconfig;  // empty: $KUBECONFIG, in-cluster, ~/.kube/config (kube::Config::Load)
  std::string context;
  std::vector<std::string> namespaces;  // empty: all namespaces

  bool leader_elect = true;
  std::string leader_election_namespace;  // empty: the operator's own namespace
  std::string leader_election_id = "sluice-operator";
  std::string identity;  // empty: <hostname>_<random>
  std::chrono::seconds lease_duration{15};
  std::chrono::seconds renew_deadline{10};
  std::chrono::seconds retry_period{2};

  Address metrics_addr{"0.0.0.0", 8080};
  Address health_addr{"0.0.0.0", 8081};
  std::string ports_file;  // when set, {"metrics": port, "health": port} is written there

  int workers = 4;  // per controller
  // Idle API server connections kept for reuse; 0 sizes the pool to what the workers send at
  // once (KubeIdleConnections).
  int kube_idle_connections = 0;
  std::chrono::seconds resync_period{600};
  std::chrono::seconds shutdown_timeout{30};  // for in-flight reconciles after SIGTERM
  // How often a FeatureView whose Redis Secret is missing or malformed is checked again.
  std::chrono::seconds secret_recheck_period{30};

  controllers::WorkloadOptions workload;

  // Canary analysis: where a ModelDeployment's metrics come from when its spec names no
  // Prometheus (spec.rollout.canary.analysis.prometheus always wins).
  enum class AnalysisProvider { kRouter, kPrometheus, kNone };
  AnalysisProvider analysis_provider = AnalysisProvider::kRouter;
  // Prometheus for --analysis-provider=prometheus, and for the custom queries of
  // ModelDeployments analysed on the router's metrics.
  std::string prometheus_url;
  // The MLflow tracking server for models:/ URIs whose spec.model.registry names none.
  std::string mlflow_tracking_uri;
  // How often serving pods are sampled for the Concurrency autoscaler (and router pods during a
  // canary's analysis).
  std::chrono::milliseconds autoscaler_scrape_period{1000};

  std::string log_format = "json";  // json | text
  std::string log_level = "info";   // trace | debug | info | warn | error

  bool help = false;
  bool version = false;
};

// Parses argv (both --flag=value and --flag value). Unknown flags and malformed values are
// InvalidArgument naming the flag.
Result<OperatorOptions> ParseFlags(int argc, const char* const* argv);

std::string Usage();

// The idle connections the operator's Kubernetes client keeps: --kube-idle-connections, or when
// that is 0, enough for every worker's largest burst (the first reconcile of a ModelDeployment
// applies up to seven objects at once) plus the other controllers and the Lease, so a burst
// never closes a connection only to open it again for the next.
size_t KubeIdleConnections(const OperatorOptions& options);

// "host:port", ":port" (all interfaces) or "port".
Result<Address> ParseAddress(const std::string& text);

}  // namespace sluice::app
