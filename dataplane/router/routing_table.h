#pragma once

// The router's view of where requests go: the revisions of one ModelDeployment with their
// weights, mirror shares and ready endpoints. A RoutingTable is immutable once built (its pick
// counters aside); a new one is built whenever the ModelDeployment's status.traffic or a
// revision's EndpointSlices change, and published through RoutingState, so the request path reads
// a consistent snapshot without locks.

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/router/canary_guard.h"
#include "dataplane/router/router_metrics.h"
#include "dataplane/router/weighted_schedule.h"
#include "lib/api/model_deployment.h"
#include "lib/base/status.h"

namespace sluice::dataplane {

// One backend address of a revision: its HTTP port and, when known, its gRPC port.
struct Endpoint {
  boost::asio::ip::tcp::endpoint address;
  std::string key;          // "ip:port" ("[ip]:port" for IPv6), for logs and pooling
  uint16_t grpc_port = 0;   // 0: the revision's gRPC port is unknown
  std::string grpc_target;  // "ipv4:ip:port" / "ipv6:[ip]:port" for a gRPC channel; empty if none
  // The backend serves TLS on both ports: its slice's http port says appProtocol https.
  bool tls = false;

  // By address and HTTP port only: one backend is one endpoint.
  friend bool operator==(const Endpoint& a, const Endpoint& b) { return a.key == b.key; }
  friend bool operator<(const Endpoint& a, const Endpoint& b) { return a.key < b.key; }
};

// "ip", port (and gRPC port, 0 for none) → Endpoint; the key is empty when the IP is malformed.
Endpoint MakeEndpoint(const std::string& ip, uint16_t port, uint16_t grpc_port = 0);

// The endpoints of one revision from its EndpointSlices (discovery.k8s.io/v1 objects as JSON).
// - Address types IPv4 and IPv6 only (FQDN slices are skipped); the first address of each endpoint.
// - Port: the slice's port named "http"; else its only port when that one is unnamed; else
//   `fallback_port`. gRPC port: the slice's port named "grpc", else `fallback_grpc_port` (0: the
//   endpoint takes no gRPC calls). TLS: when that http port has appProtocol "https" (a revision
//   of a ModelDeployment with spec.tls), so a canary between a plain and a TLS revision works.
// - Endpoints with conditions.ready (absent means ready, as the API says). When a revision has no
//   ready endpoint at all, its endpoints that are serving and terminating are used instead: a pod
//   that is shutting down still answers, which beats refusing every request of the revision.
// - Deduplicated (an endpoint may sit in two slices while they are being rebalanced) and sorted.
std::vector<Endpoint> EndpointsFromSlices(const std::vector<const nlohmann::json*>& slices,
                                          uint16_t fallback_port, uint16_t fallback_grpc_port = 0);

// What the ModelDeployment asks for: its status.traffic (the API's TrafficTarget; a mirror
// percent that is absent or 0 mirrors nothing), spec.traffic.sticky.header, status.stableRevision
// and how canaries are guarded (lib/api/canary_protection.h).
using controllers::TrafficTarget;
struct TrafficConfig {
  std::vector<TrafficTarget> targets;
  std::string sticky_header;  // empty: no stickiness
  // The revision failed canary requests are retried on and guarded canaries' requests go to;
  // empty: none (no retries, no guard).
  std::string stable_revision;
  bool retry_on_stable = true;  // spec.traffic.retryOnStable
  GuardOptions guard;           // max_error_rate from the canary analysis
};

// A routing table given on the command line instead of read from the cluster (local runs,
// benchmarks): "NAME=WEIGHT[:MIRROR]@IP:PORT[+GRPCPORT][,...]" entries separated by ';', e.g.
// "v1=90@127.0.0.1:8081+9081;v2=10@127.0.0.1:8082,127.0.0.1:8083;shadow=0:20@127.0.0.1:8084".
struct StaticTraffic {
  TrafficConfig config;
  std::vector<std::pair<std::string, std::vector<Endpoint>>> endpoints;
};
Result<StaticTraffic> ParseStaticTraffic(std::string_view spec);

class RoutingTable {
 public:
  struct Revision {
    std::string name;
    int32_t weight = 0;          // as requested
    int32_t mirror_percent = 0;  // as requested
    std::vector<Endpoint> endpoints;
    const RevisionMetrics* metrics = nullptr;  // null when built without metrics (tests)
    std::unique_ptr<MirrorShare> mirror;       // set when mirror_percent > 0 and endpoints exist
    mutable std::atomic<uint64_t> next_endpoint{0};
    // Set on a canary (a revision with weight other than the stable one): its guard, kept across
    // tables while its weight and the guard's settings stay.
    std::shared_ptr<CanaryGuard> guard;
  };

  // Builds the table. Weights apply among the revisions that have endpoints: a revision with
  // weight but no ready endpoint takes nothing, and its share goes to the others in proportion
  // (requests are served rather than refused). When `previous` has the same effective weights,
  // the pick counter continues from it, so endpoint churn does not disturb the exact ratios.
  // `metrics` may be null.
  static std::shared_ptr<const RoutingTable> Build(
      const TrafficConfig& config,
      const std::vector<std::pair<std::string, std::vector<Endpoint>>>& endpoints,
      RouterMetrics* metrics, const RoutingTable* previous);

  // The revision for the next request: by `sticky_value`'s hash when it is non-empty (the same
  // value gets the same revision while the weights stay), else the next in the weighted schedule
  // (exact ratios over every window of schedule_period() requests). -1 when no revision with
  // endpoints has weight. Thread-safe.
  int PickRevision(std::string_view sticky_value) const;
  // PickRevision, then the guard: a canary whose guard tripped gives its request to the stable
  // revision (counted in its guard_diverted), when the stable has endpoints. Thread-safe.
  int Route(std::string_view sticky_value) const;
  // Where a failed request of `revision` goes once more: the stable revision, when retries are on,
  // `revision` is not the stable one and the stable has endpoints; else -1.
  int RetryTarget(int revision) const {
    return retry_on_stable_ && revision != stable_ ? stable_ : -1;
  }
  // The stable revision when it has endpoints, else -1.
  int stable() const { return stable_; }
  // Round robin over the revision's endpoints; the revision must have endpoints. Thread-safe.
  const Endpoint& PickEndpoint(int revision) const;

  const std::vector<std::unique_ptr<Revision>>& revisions() const { return revisions_; }
  const Revision& revision(int i) const { return *revisions_[static_cast<size_t>(i)]; }
  const std::string& sticky_header() const { return sticky_header_; }
  size_t schedule_period() const { return schedule_.period(); }
  // Whether any revision takes requests.
  bool routable() const { return !schedule_.empty(); }
  // "rev-a=90 (2 endpoints), rev-b=10 (1 endpoint), mirror rev-c 20% (1 endpoint)".
  std::string Describe() const;

 private:
  RoutingTable() = default;

  std::vector<std::unique_ptr<Revision>> revisions_;
  std::vector<int32_t> effective_weights_;
  WeightedSchedule schedule_;
  std::string sticky_header_;
  int stable_ = -1;  // with endpoints
  GuardOptions guard_options_;
  bool retry_on_stable_ = false;
  mutable std::atomic<uint64_t> next_pick_{0};
};

// The current table. Load() copies a pointer under a mutex held for nothing else (uncontended in
// practice: one load per request, one store per cluster change); libstdc++ 12's
// atomic<shared_ptr> would be a spin lock of its own that ThreadSanitizer cannot see. A loaded
// table stays valid while the caller holds it. Thread-safe.
class RoutingState {
 public:
  std::shared_ptr<const RoutingTable> Load() const {
    std::lock_guard<std::mutex> lock(mu_);
    return table_;
  }
  void Publish(std::shared_ptr<const RoutingTable> table) {
    std::lock_guard<std::mutex> lock(mu_);
    table_.swap(table);
    // The old table (in `table`) is released after the lock, outside readers' way.
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const RoutingTable> table_;  // guarded by mu_
};

}  // namespace sluice::dataplane
