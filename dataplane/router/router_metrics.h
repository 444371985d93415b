#pragma once

// Every metric sluice-router exports, declared in one place. The names and labels are a contract:
// the operator's analysis reads them (see the metric list below).
//
//   sluice_router_requests_total{revision,code}        counter, primary traffic only
//   sluice_router_request_duration_seconds{revision}   histogram, full upstream round trip
//   sluice_router_mirror_requests_total{revision,code} counter, mirrored copies
//   sluice_router_mirror_dropped_total{revision}       counter, copies not sent (mirror limit)
//   sluice_router_traffic_weight{revision}             gauge, weight in the routing table
//   sluice_router_endpoints{revision}                  gauge, ready endpoints
//   sluice_router_inflight_requests                    gauge, primary requests in progress
//   sluice_router_routing_updates_total                counter, routing tables published
//   sluice_router_retries_total{revision,to,outcome}   counter, failed requests of a canary sent
//                                                      again to the stable revision (see below)
//   sluice_router_guard_tripped{revision}              gauge, 1 while the canary guard keeps new
//                                                      requests away from the revision
//   sluice_router_guard_diverted_total{revision}       counter, requests the guard sent to the
//                                                      stable revision instead
//   sluice_router_upstream_reconnects_total{revision}  counter, requests sent again on a new
//                                                      connection because the backend had closed
//                                                      the kept-alive one before answering
//
// A retried request counts twice in requests_total: the failure in the canary's series (what the
// analysis judges) and the retry's answer in the stable's. retries_total's outcome is the retry's
// class (2xx .. 5xx, error), "denied" (over the retry budget, not sent) or "expired" (no time
// left of the caller's deadline, not sent).
//
// code is one of 2xx, 3xx, 4xx, 5xx, or error (no response from the backend: connect failure,
// reset, timeout, no ready endpoint). Every code series of a revision exists (at 0) from the
// moment the revision first appears, so a rate over it is never "no data" for lack of errors.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::dataplane {

enum class CodeClass { k2xx = 0, k3xx, k4xx, k5xx, kError };
inline constexpr size_t kCodeClasses = 5;

// The class of an HTTP status from the backend. A status outside 200..599 (no final answer) is
// kError, as is the absence of an answer.
CodeClass ClassifyStatus(int status);
std::string_view CodeClassLabel(CodeClass c);

// The metrics of one revision. The pointers stay valid for the life of the RouterMetrics.
struct RevisionMetrics {
  std::array<prometheus::Counter*, kCodeClasses> requests{};
  std::array<prometheus::Counter*, kCodeClasses> mirror_requests{};
  prometheus::Counter* mirror_dropped = nullptr;
  prometheus::Histogram* duration = nullptr;
  prometheus::Gauge* weight = nullptr;
  prometheus::Gauge* endpoints = nullptr;
  prometheus::Gauge* guard_tripped = nullptr;
  prometheus::Counter* guard_diverted = nullptr;
  prometheus::Counter* reconnects = nullptr;

  void CountRequest(CodeClass c) const { requests[static_cast<size_t>(c)]->Increment(); }
  void CountMirror(CodeClass c) const { mirror_requests[static_cast<size_t>(c)]->Increment(); }
};

// Owns the metric families in `registry`. Thread-safe.
class RouterMetrics {
 public:
  explicit RouterMetrics(std::shared_ptr<prometheus::Registry> registry);

  // The metrics of `revision`, created on first use; the reference stays valid.
  const RevisionMetrics& ForRevision(const std::string& revision);
  // Sets the weight and endpoint gauges: the listed revisions get their values, every other
  // revision seen before gets 0 (its counters are kept, they are cumulative).
  struct RevisionState {
    std::string revision;
    double weight = 0;
    double endpoints = 0;
  };
  void SetRouting(const std::vector<RevisionState>& revisions);

  // The retry counter for requests `from` failed and sent to `to`, by `outcome` (a CodeClass
  // label, api::kRetryDenied or "expired"). Created on first use; retries are rare, so the lookup
  // is not on the common path.
  prometheus::Counter& Retry(const std::string& from, const std::string& to,
                             std::string_view outcome);

  prometheus::Gauge& inflight() { return *inflight_; }
  prometheus::Counter& routing_updates() { return *routing_updates_; }
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // The histogram buckets of request_duration_seconds.
  static const prometheus::Histogram::BucketBoundaries& DurationBuckets();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& mirror_requests_;
  prometheus::Family<prometheus::Counter>& mirror_dropped_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Gauge>& weight_;
  prometheus::Family<prometheus::Gauge>& endpoints_;
  prometheus::Family<prometheus::Gauge>& guard_tripped_;
  prometheus::Family<prometheus::Counter>& guard_diverted_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& reconnects_;
  prometheus::Gauge* inflight_;
  prometheus::Counter* routing_updates_;

  std::mutex mu_;
  // std::map: references to its values stay valid as it grows.
  std::map<std::string, RevisionMetrics, std::less<>> revisions_;  // guarded by mu_
};

}  // namespace sluice::dataplane
