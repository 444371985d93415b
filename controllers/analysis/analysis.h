#pragma once

// Canary analysis verdicts: a pure judgement of one window of measurements against the
// thresholds of spec.rollout.canary.analysis, carrying the count of consecutive failures so the
// rollout engine can roll back after `failureThreshold` of them. Collecting the measurements is
// the only step that touches a MetricSource; Evaluate itself does no I/O and reads no clock.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controllers/analysis/metric_source.h"
#include "lib/api/model_deployment.h"
#include "lib/api/time.h"

namespace sluice::controllers {

enum class NoDataPolicy { kPause, kFail, kPass };

enum class BuiltinMetric {
  kNone,        // a custom query
  kErrorRate,   // errors / requests, a fraction in [0, 1]
  kLatencyP99,  // seconds
};

struct MetricCheck {
  std::string name;
  BuiltinMetric builtin = BuiltinMetric::kNone;
  std::string query;  // when builtin == kNone
  std::optional<double> min;
  std::optional<double> max;
};

// spec.rollout.canary.analysis with defaults applied and durations parsed.
struct AnalysisPolicy {
  std::chrono::milliseconds interval{5000};
  int32_t failure_threshold = 2;
  int64_t min_requests = 0;
  NoDataPolicy no_data = NoDataPolicy::kPause;
  std::vector<MetricCheck> metrics;
};

// What was measured for one revision over one window. A metric with no entry, or an entry of
// nullopt, had no data.
struct AnalysisSamples {
  std::string revision;
  Window window;
  std::optional<TrafficSample> traffic;                       // nullopt: the source failed
  std::map<std::string, std::optional<double>> query_values;  // by metric name
  std::vector<std::string> source_errors;                     // why data is missing, for messages
};

enum class Outcome { kPass, kFail, kNoData };

struct MetricResult {
  std::string name;
  std::optional<double> value;  // nullopt: no data
  std::optional<double> min;
  std::optional<double> max;
  Outcome outcome = Outcome::kNoData;
};

// The carry-over from the previous verdict (status.lastAnalysis) that Evaluate needs.
struct AnalysisHistory {
  std::string revision;
  int32_t consecutive_failures = 0;
};

struct Verdict {
  std::string revision;
  WallTime time;  // the end of the window judged
  Window window;
  // kPass also when data was missing and noDataPolicy is Pass (then `no_data` is true);
  // kNoData only under noDataPolicy Pause: the rollout holds until data arrives.
  Outcome outcome = Outcome::kNoData;
  bool no_data = false;
  int32_t consecutive_failures = 0;
  bool failed = false;  // consecutive_failures reached failureThreshold: roll back
  // A router's canary guard had tripped for the revision: the window fails and the rollout rolls
  // back at once (the router already keeps requests off the canary).
  bool guard_tripped = false;
  int64_t requests = 0;
  int64_t errors = 0;
  std::vector<MetricResult> metrics;
  std::string message;  // the measured values and which limit each broke, for events and status
};

// Pure. Judges `samples` against `policy`:
// - fewer than minRequests requests: every traffic-derived metric has no data;
// - a metric with data outside [min, max] fails the window, even if others have no data;
// - otherwise missing data follows noDataPolicy: Pause → kNoData (failure count kept),
//   Fail → kFail (counted), Pass → kPass with no_data set and said in the message;
// - consecutive failures continue `history` when it is for the same revision, restart at 0
//   otherwise, and reset on a pass;
// - a tripped router guard (TrafficSample::guard_tripped) fails the window and the verdict
//   (failed) whatever the other metrics and minRequests say.
Verdict Evaluate(const AnalysisPolicy& policy, const AnalysisSamples& samples,
                 const std::optional<AnalysisHistory>& history);

// Reads what `policy` needs for `revision` over `window` from `source`. Each source error becomes
// missing data (recorded in source_errors), never a zero.
AnalysisSamples CollectSamples(const AnalysisPolicy& policy, MetricSource& source,
                               const std::string& revision, const Window& window);

// spec.rollout.canary.analysis with the CRD's defaults applied (every 5s, 2 failures, 10
// requests, Pause on no data, error rate ≤ 1% and p99 ≤ 500ms); InvalidArgument naming the field
// for what the API server's validation should have refused.
Result<AnalysisPolicy> ResolveAnalysisPolicy(const std::optional<AnalysisSpec>& spec);

std::string_view OutcomeName(Outcome o);  // "Pass" | "Fail" | "NoData"
std::string_view NoDataPolicyName(NoDataPolicy p);
std::string_view BuiltinMetricName(BuiltinMetric m);  // "errorRate" | "latencyP99" | ""

}  // namespace sluice::controllers
