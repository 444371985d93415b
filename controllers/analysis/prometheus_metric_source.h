#pragma once

// The Prometheus analysis provider: PromQL instant queries (GET /api/v1/query?query=..&time=..)
// evaluated at the end of the window being judged, against the Prometheus named by
// spec.rollout.canary.analysis.prometheus.address or the operator's --prometheus-url.
//
// The built-in metrics read the router's series as Prometheus stores them, which needs the
// scraped router pods to carry a `namespace` label (the usual kubernetes_sd relabelling, see
// controllers/analysis/README.md); with N the window in seconds:
//   requests: sum(increase(sluice_router_requests_total{namespace="<ns>",revision="<rev>"}[N]))
//   errors:   the same with code=~"5xx|error"
//   p99:      histogram_quantile(0.99, sum by (le) (increase(
//               sluice_router_request_duration_seconds_bucket{namespace="<ns>",revision="<rev>"}[N])))
//   guard:    max(sluice_router_guard_tripped{namespace="<ns>",revision="<rev>"}) at the window
//             end; 1 is a tripped router guard (no series: not tripped)
// Custom queries get {{namespace}}, {{name}}, {{revision}} and {{interval}} (the window, e.g.
// "5s") replaced. A query that returns no series, or NaN (0/0 over an idle window), has no data;
// one that returns several series is an error, since a threshold needs one number.

#include <chrono>
#include <memory>
#include <string>

#include "controllers/analysis/metric_source.h"
#include "controllers/scrape/http_fetcher.h"

namespace sluice::controllers {

struct PrometheusSourceOptions {
  std::string address;  // http(s)://host:port[/prefix]
  std::string ns;       // the ModelDeployment's namespace and name, for the queries
  std::string name;
  std::chrono::milliseconds timeout{5000};
};

// Contract: every call is one or more HTTP queries, not retried; Prometheus errors and
// unreachable servers come back as non-OK Status (missing data for the verdict). `fetcher`
// must outlive the source.
class PrometheusMetricSource final : public MetricSource {
 public:
  PrometheusMetricSource(HttpFetcher& fetcher, PrometheusSourceOptions options);

  Result<TrafficSample> Traffic(const std::string& revision, const Window& window) override;
  Result<std::optional<double>> Query(const std::string& query, const std::string& revision,
                                      const Window& window) override;

  // Runs `promql` as written at `at`: nullopt when no series (or NaN) came back.
  Result<std::optional<double>> Instant(const std::string& promql, WallTime at);

 private:
  HttpFetcher& fetcher_;
  const PrometheusSourceOptions options_;
};

// A window's length as a PromQL duration: whole seconds ("5s") when it is, milliseconds
// otherwise; never less than 1ms.
std::string PromDuration(const Window& window);

// {{namespace}}, {{name}}, {{revision}}, {{interval}} replaced in `query`.
std::string ExpandQuery(const std::string& query, const std::string& ns, const std::string& name,
                        const std::string& revision, const std::string& interval);

// The built-in queries for a revision (see the file comment).
std::string RequestsQuery(const std::string& ns, const std::string& revision,
                          const std::string& interval);
std::string ErrorsQuery(const std::string& ns, const std::string& revision,
                        const std::string& interval);
std::string LatencyP99Query(const std::string& ns, const std::string& revision,
                            const std::string& interval);
std::string GuardQuery(const std::string& ns, const std::string& revision);

// The single value of a /api/v1/query answer (vector or scalar); nullopt for no series or NaN.
Result<std::optional<double>> ParseInstantResponse(int http_status, const std::string& body);

}  // namespace sluice::controllers
