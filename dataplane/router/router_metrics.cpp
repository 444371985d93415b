#include "dataplane/router/router_metrics.h"

#include "lib/api/metric_names.h"

namespace sluice::dataplane {

CodeClass ClassifyStatus(int status) {
  if (status >= 200 && status < 300) return CodeClass::k2xx;
  if (status >= 300 && status < 400) return CodeClass::k3xx;
  if (status >= 400 && status < 500) return CodeClass::k4xx;
  if (status >= 500 && status < 600) return CodeClass::k5xx;
  return CodeClass::kError;
}

std::string_view CodeClassLabel(CodeClass c) {
  switch (c) {
    case CodeClass::k2xx:
      return "2xx";
    case CodeClass::k3xx:
      return "3xx";
    case CodeClass::k4xx:
      return "4xx";
    case CodeClass::k5xx:
      return api::kCode5xx;
    case CodeClass::kError:
      return api::kCodeError;
  }
  return "error";
}

const prometheus::Histogram::BucketBoundaries& RouterMetrics::DurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return kBuckets;
}

RouterMetrics::RouterMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      requests_(prometheus::BuildCounter()
                    .Name(api::kRouterRequestsTotal)
                    .Help("Requests routed to a revision, by the class of the backend's answer "
                          "(error: no answer)")
                    .Register(*registry_)),
      mirror_requests_(prometheus::BuildCounter()
                           .Name("sluice_router_mirror_requests_total")
                           .Help("Mirrored copies of requests, by the class of the answer")
                           .Register(*registry_)),
      mirror_dropped_(prometheus::BuildCounter()
                          .Name("sluice_router_mirror_dropped_total")
                          .Help("Copies not mirrored because too many were in flight")
                          .Register(*registry_)),
      duration_(prometheus::BuildHistogram()
                    .Name(api::kRouterRequestDurationSeconds)
                    .Help("Time from routing a request to having the backend's whole answer")
                    .Register(*registry_)),
      weight_(prometheus::BuildGauge()
                  .Name("sluice_router_traffic_weight")
                  .Help("Weight of the revision in the routing table")
                  .Register(*registry_)),
      endpoints_(prometheus::BuildGauge()
                     .Name("sluice_router_endpoints")
                     .Help("Ready endpoints of the revision")
                     .Register(*registry_)),
      guard_tripped_(prometheus::BuildGauge()
                         .Name(api::kRouterGuardTripped)
                         .Help("1 while the canary guard sends the revision's requests to the "
                               "stable revision (its recent error rate passed the analysis limit)")
                         .Register(*registry_)),
      guard_diverted_(prometheus::BuildCounter()
                          .Name(api::kRouterGuardDivertedTotal)
                          .Help("Requests the canary guard sent to the stable revision instead "
                                "of this one")
                          .Register(*registry_)),
      retries_(prometheus::BuildCounter()
                   .Name(api::kRouterRetriesTotal)
                   .Help("Requests this revision failed that were sent once more to another "
                         "revision, by the retry's outcome (denied: over the retry budget; "
                         "expired: no time left)")
                   .Register(*registry_)),
      reconnects_(prometheus::BuildCounter()
                      .Name("sluice_router_upstream_reconnects_total")
                      .Help("Requests sent again on a new connection because the backend had "
                            "closed the kept-alive one before answering")
                      .Register(*registry_)),
      inflight_(&prometheus::BuildGauge()
                     .Name("sluice_router_inflight_requests")
                     .Help("Primary requests being forwarded")
                     .Register(*registry_)
                     .Add({})),
      routing_updates_(&prometheus::BuildCounter()
                            .Name("sluice_router_routing_updates_total")
                            .Help("Routing tables published (weight or endpoint changes)")
                            .Register(*registry_)
                            .Add({})) {}

const RevisionMetrics& RouterMetrics::ForRevision(const std::string& revision) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = revisions_.find(revision);
  if (it != revisions_.end()) return it->second;
  RevisionMetrics m;
  for (size_t c = 0; c < kCodeClasses; ++c) {
    const std::string code(CodeClassLabel(static_cast<CodeClass>(c)));
    m.requests[c] = &requests_.Add({{api::kRevisionLabel, revision}, {api::kCodeLabel, code}});
    m.mirror_requests[c] =
        &mirror_requests_.Add({{api::kRevisionLabel, revision}, {api::kCodeLabel, code}});
  }
  m.mirror_dropped = &mirror_dropped_.Add({{api::kRevisionLabel, revision}});
  m.duration = &duration_.Add({{api::kRevisionLabel, revision}}, DurationBuckets());
  m.weight = &weight_.Add({{api::kRevisionLabel, revision}});
  m.endpoints = &endpoints_.Add({{api::kRevisionLabel, revision}});
  m.guard_tripped = &guard_tripped_.Add({{api::kRevisionLabel, revision}});
  m.guard_diverted = &guard_diverted_.Add({{api::kRevisionLabel, revision}});
  m.reconnects = &reconnects_.Add({{api::kRevisionLabel, revision}});
  return revisions_.emplace(revision, m).first->second;
}

prometheus::Counter& RouterMetrics::Retry(const std::string& from, const std::string& to,
                                          std::string_view outcome) {
  return retries_.Add({{api::kRevisionLabel, from},
                       {api::kRetryTargetLabel, to},
                       {api::kRetryOutcomeLabel, std::string(outcome)}});
}

void RouterMetrics::SetRouting(const std::vector<RevisionState>& revisions) {
  for (const auto& r : revisions) ForRevision(r.revision);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, m] : revisions_) {
    double weight = 0;
    double endpoints = 0;
    bool listed = false;
    for (const auto& r : revisions) {
      if (r.revision == name) {
        listed = true;
        weight = r.weight;
        endpoints = r.endpoints;
      }
    }
    m.weight->Set(weight);
    m.endpoints->Set(endpoints);
    if (!listed) m.guard_tripped->Set(0);
  }
}

}  // namespace sluice::dataplane
