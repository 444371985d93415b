#pragma once

// Keeps a RoutingState in step with the cluster: the ModelDeployment's status.traffic and
// spec.traffic.sticky (an informer on that one object, by field selector metadata.name), and the
// EndpointSlices of its revisions (an informer on the namespace's EndpointSlices that carry
// kubernetes.io/service-name, indexed by that label). Every change rebuilds the table from the two
// caches and publishes it at once: a weight change reaches the request path as soon as its watch
// event arrives, with no polling.
//
// Contract:
// - HasSynced() once both informers listed; until then the published table is empty.
// - A ModelDeployment that does not parse leaves the last good table in place (and is logged);
//   one that does not exist (deleted) empties the table, so requests get 503.
// - Watches are resumed and relisted by the informers (kube/watcher.h); nothing here retries.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/base/status.h"
#include "lib/kube/client.h"
#include "lib/kube/informer.h"
#include "dataplane/router/router_metrics.h"
#include "dataplane/router/routing_table.h"

namespace sluice::dataplane {

inline const kube::GroupVersionResource kEndpointSlicesResource{
    "discovery.k8s.io", "v1", "endpointslices", true, "EndpointSlice"};

// status.traffic, status.stableRevision, spec.traffic.sticky.header, spec.traffic.retryOnStable
// and the guard's error-rate limit (from the canary analysis) of a ModelDeployment object.
// InvalidArgument when the object does not parse as a ModelDeployment.
Result<TrafficConfig> TrafficConfigFromModelDeployment(const nlohmann::json& object);

struct TrafficSourceOptions {
  std::string ns;
  std::string model_deployment;
  // Used for EndpointSlices with no port named "http" / "grpc" (see EndpointsFromSlices).
  uint16_t upstream_port = 8080;
  uint16_t upstream_grpc_port = 0;
};

class TrafficSource {
 public:
  // `client`, `state` and `metrics` must outlive the source; `metrics` may be null.
  TrafficSource(kube::Client& client, TrafficSourceOptions options, RoutingState& state,
                RouterMetrics* metrics);
  ~TrafficSource();

  TrafficSource(const TrafficSource&) = delete;
  TrafficSource& operator=(const TrafficSource&) = delete;

  void Start();
  // Idempotent; joins the informers' threads.
  void Stop();

  bool HasSynced() const;
  // Tables published so far.
  uint64_t updates() const { return updates_.load(std::memory_order_relaxed); }

 private:
  void Rebuild();

  const TrafficSourceOptions options_;
  RoutingState& state_;
  RouterMetrics* metrics_;
  std::unique_ptr<kube::Informer> md_informer_;
  std::unique_ptr<kube::Informer> slice_informer_;
  std::atomic<uint64_t> updates_{0};

  // Both informers' threads rebuild; one at a time, so tables are published in order.
  std::mutex mu_;
  std::string last_description_;  // guarded by mu_
  bool md_found_ = false;         // guarded by mu_
};

}  // namespace sluice::dataplane
