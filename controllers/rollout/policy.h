#pragma once

// spec.rollout (and the parts of spec.traffic the engine needs) with the CRD's defaults applied
// and durations parsed, so the rollout engine works on plain values and cannot fail.

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "controllers/analysis/analysis.h"
#include "lib/api/model_deployment.h"
#include "lib/base/status.h"

namespace sluice::controllers {

enum class Strategy { kCanary, kRolling };

struct Step {
  int32_t weight = 100;
  std::optional<std::chrono::milliseconds> pause;  // nullopt: until sluice.dev/promote
};

struct RolloutPolicy {
  Strategy strategy = Strategy::kCanary;
  std::vector<Step> steps;  // weights strictly increasing, the last 100
  AnalysisPolicy analysis;
  IntOrPercent max_surge{25, true};
  IntOrPercent max_unavailable{0, false};
  std::chrono::milliseconds progress_deadline{std::chrono::minutes(10)};
  // How long a revision that stopped taking traffic (the previous stable after a promotion, a
  // rolled-back canary) keeps its pods.
  std::chrono::milliseconds scale_down_delay{std::chrono::seconds(30)};
  int32_t mirror_percent = 0;  // spec.traffic.mirror.percent, copied to the canary
};

// The CRD's defaults: steps 10% and 50% for 30s each then 100%; analysis every 5s, 2 failures,
// 10 requests, Pause on no data, error rate ≤ 1% and p99 ≤ 500ms; maxSurge 25%, maxUnavailable 0;
// progressDeadline 10m; scaleDownDelay 30s. InvalidArgument (naming the field) for what the API
// server's validation should have refused: bad durations, steps not increasing to 100, unknown
// enum values.
Result<RolloutPolicy> ResolveRolloutPolicy(const ModelDeploymentSpec& spec);

}  // namespace sluice::controllers
