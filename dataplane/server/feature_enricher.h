#pragma once

// Online feature enrichment, the part with I/O: for one request, reads every view it needs from
// Redis in Feast's layout and rewrites the request into the model's plain form (one input of
// [n, F] FP32 rows), so everything after it (cache, batcher, runtime) is unchanged.
//
// Fetch: one pipelined exchange per distinct Redis connection (an HMGET per view and row, all
// sent, then all read) on the calling thread, with a client per connection per thread (no hand-
// off to another thread). The whole fetch of a request is bounded by the budget: whatever is not
// read by then (Redis down, slow, or answering garbage) is served its declared default, counted,
// and logged at most once a second per view. Feature trouble never fails a request; only a
// request that does not fit the plan does (InvalidArgument, a 400).
//
// Thread-safe: Enrich may run on many threads at once.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/server/feature_plan.h"
#include "dataplane/server/inference.h"
#include "dataplane/server/server_metrics.h"
#include "lib/api/feature_view.h"
#include "lib/base/clock.h"
#include "lib/base/status.h"

namespace sluice::dataplane {

struct FeatureEnricherOptions {
  std::vector<api::FeatureViewConfig> views;
  std::chrono::microseconds budget{2000};
  std::string model_name;  // for logs
  std::string model_input = "input-0";
};

class FeatureEnricher {
 public:
  // InvalidArgument (refuse to start) when the plan cannot be made (FeaturePlan::Create) or a
  // view's Redis connection cannot be resolved. `metrics` are the model's feature series, one
  // view each in config order; they must outlive the enricher.
  static Result<std::unique_ptr<FeatureEnricher>> Create(const FeatureEnricherOptions& options,
                                                         std::vector<std::string> model_features,
                                                         ServerMetrics::Features& metrics,
                                                         Clock& clock);
  ~FeatureEnricher();

  // Assembles the request's rows and replaces its inputs with them (a request that already is
  // the model's plain input is left as it is). InvalidArgument for a request that does not fit;
  // never an error because of Redis.
  Status Enrich(InferRequest& request);

  const FeaturePlan& plan() const { return plan_; }

 private:
  struct ViewState {
    size_t connection = 0;  // index into connections_
    std::atomic<int64_t> next_log_ns{0};
    std::atomic<uint64_t> suppressed{0};
  };

  FeatureEnricher(const FeatureEnricherOptions& options, FeaturePlan plan,
                  std::vector<api::RedisConnection> connections, std::vector<size_t> view_conn,
                  ServerMetrics::Features& metrics, Clock& clock);
  void Fetch(FeaturePlan::Bound& bound, std::vector<FeatureCounts>& counts);
  void LogTrouble(size_t view, const std::string& what);

  const FeatureEnricherOptions options_;
  const FeaturePlan plan_;
  const std::vector<api::RedisConnection> connections_;  // distinct
  std::unique_ptr<ViewState[]> views_;
  ServerMetrics::Features& metrics_;
  Clock& clock_;
  const uint64_t id_;  // tells this enricher's per-thread clients from another's
};

}  // namespace sluice::dataplane
