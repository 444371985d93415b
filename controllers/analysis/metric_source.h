#pragma once

// Where canary analysis reads its measurements. Providers (the router's per-revision counters,
// a Prometheus server) implement this; the verdict logic in analysis.h never sees how.

#include <cstdint>
#include <optional>
#include <string>

#include "lib/api/time.h"
#include "lib/base/status.h"

namespace sluice::controllers {

// A half-open interval [start, end) of wall time.
struct Window {
  WallTime start;
  WallTime end;
};

// Traffic of one revision over one window.
struct TrafficSample {
  int64_t requests = 0;
  int64_t errors = 0;  // responses that count against the revision (5xx, timeouts)
  // p99 latency in seconds; nullopt when the window held too few requests to compute it.
  std::optional<double> latency_p99_seconds;
  // A router's canary guard held the revision's requests back at the end of the window
  // (sluice_router_guard_tripped = 1): its recent error rate passed the analysis' limit.
  bool guard_tripped = false;
};

// Contract: each call is a read with no side effects, answered for exactly the revision and
// window asked (implementations must not widen the window to find data). Calls are not retried
// by the caller; an error is reported as missing data and judged by the analysis' noDataPolicy,
// so a provider should return a non-OK Status rather than a zero sample when it cannot answer.
// Implementations may block on I/O and are called from one reconcile at a time per object.
class MetricSource {
 public:
  virtual ~MetricSource() = default;

  virtual Result<TrafficSample> Traffic(const std::string& revision, const Window& window) = 0;

  // Evaluates a custom query (PromQL) for `revision` over `window`; the provider replaces
  // {{namespace}}, {{name}}, {{revision}} and {{interval}} in it. nullopt: no series came back.
  virtual Result<std::optional<double>> Query(const std::string& query, const std::string& revision,
                                              const Window& window) = 0;
};

}  // namespace sluice::controllers
