#pragma once

// Concurrency-based autoscaling of one revision, in the manner of Knative's pod autoscaler:
// desired = ceil(average in-flight requests over a window / target per pod), with a long stable
// window for ordinary decisions and a short panic window that reacts to bursts. Each revision is
// decided on its own (the stable's load never sizes the canary). Pure: no I/O, no clock reads;
// the caller keeps the returned state and passes it back next time.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "lib/api/model_deployment.h"
#include "lib/base/clock.h"
#include "lib/base/status.h"

namespace sluice::controllers {

using SteadyTime = Clock::Steady::time_point;

// spec.autoscaling with defaults applied and durations parsed.
struct AutoscalerPolicy {
  double target_concurrency = 8;  // in-flight requests per pod
  int32_t min_replicas = 1;
  int32_t max_replicas = 1;
  std::chrono::milliseconds stable_window{60'000};
  std::chrono::milliseconds panic_window{6'000};
  double panic_threshold = 2.0;  // panic when the panic window wants this many times the ready pods
  std::chrono::milliseconds scale_down_delay{0};
};

// The revision's total in-flight requests (summed over its pods) observed at `at`.
struct ConcurrencySample {
  SteadyTime at;
  double concurrency = 0;
};

struct Recommendation {
  SteadyTime at;
  int32_t replicas = 0;
};

// What one decision hands to the next. Owned by the caller, one per revision; a default-built
// state is a revision seen for the first time.
struct AutoscalerState {
  std::optional<SteadyTime> panic_since;         // set while in panic mode
  std::optional<SteadyTime> last_panic_trigger;  // last time the panic window crossed the threshold
  int32_t panic_floor = 0;                       // replicas panic mode will not go below
  std::optional<SteadyTime> last_scale_up;
  std::deque<Recommendation> recent;  // within scaleDownDelay, oldest first
};

struct AutoscalerInput {
  AutoscalerPolicy policy;
  std::vector<ConcurrencySample> samples;  // any order; those outside the stable window are ignored
  int32_t current_replicas = 0;            // the revision's Deployment spec.replicas now
  int32_t ready_replicas = 0;
  AutoscalerState state;
  SteadyTime now;
};

struct AutoscalerDecision {
  int32_t desired_replicas = 0;
  AutoscalerState state;
  bool panicking = false;
  bool no_data = false;  // no sample in the stable window: replicas kept as they are
  std::optional<double> stable_concurrency;  // window averages, for status and logs
  std::optional<double> panic_concurrency;
  int32_t stable_desired = 0;  // ceil(stable average / target), before delay and clamping
  int32_t panic_desired = 0;
  std::string reason;  // one line saying why, e.g. "panic: 6s average 94.0 ≥ 2× 3 ready pods"
  // When a decision could change with no new sample: the panic mode or a delayed scale-down
  // expiring. nullopt: only new samples change it.
  std::optional<std::chrono::milliseconds> recheck_after;
};

// Pure and deterministic for a given input. Rules, in order:
// 1. stable/panic averages: mean of per-second buckets (each the mean of its samples) within
//    (now - window, now]; no sample in the stable window → keep current replicas (clamped);
// 2. panic starts when ceil(panic average / target) ≥ panic_threshold × max(1, ready replicas),
//    and ends once stable_window has passed since it last crossed that threshold; while in panic
//    the panic window decides and the result never goes below the highest panic decision so far
//    (nor below the replicas at panic start);
// 3. a scale-down goes only to the highest recommendation seen within scale_down_delay;
// 4. the result is clamped to [min_replicas, max_replicas].
AutoscalerDecision Autoscale(const AutoscalerInput& input);

// spec.autoscaling with the CRD's defaults (minReplicas 1, targetConcurrency 8, stableWindow 60s,
// panicWindow 6s, scaleDownDelay 0s). InvalidArgument naming the field for what validation
// should have refused (bad durations, min > max, a panic window longer than the stable one).
Result<AutoscalerPolicy> ResolveAutoscalerPolicy(const AutoscalingSpec& spec);

}  // namespace sluice::controllers
