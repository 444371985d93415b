#include "lib/api/canary_protection.h"

#include <algorithm>
#include <optional>

#include "lib/api/duration.h"

namespace sluice::api {

bool RetryOnStable(const controllers::ModelDeploymentSpec& spec) {
  return !spec.traffic || spec.traffic->retry_on_stable.value_or(true);
}

double GuardMaxErrorRate(const controllers::ModelDeploymentSpec& spec) {
  const controllers::AnalysisSpec* analysis = nullptr;
  if (spec.rollout && spec.rollout->canary && spec.rollout->canary->analysis) {
    analysis = &*spec.rollout->canary->analysis;
  }
  if (analysis == nullptr || !analysis->metrics) return kDefaultMaxErrorRate;
  std::optional<double> limit;
  for (const auto& m : *analysis->metrics) {
    if (m.builtin != "errorRate" || !m.threshold_range.max) continue;
    limit = std::min(limit.value_or(*m.threshold_range.max), *m.threshold_range.max);
  }
  return limit.value_or(kGuardFallbackMaxErrorRate);
}

int64_t GuardWindowMs(const controllers::ModelDeploymentSpec& spec) {
  int64_t ms = kGuardWindowMs;
  if (spec.rollout && spec.rollout->canary && spec.rollout->canary->analysis &&
      spec.rollout->canary->analysis->interval) {
    auto d = controllers::ParseDuration(*spec.rollout->canary->analysis->interval);
    if (d.ok()) ms = d->count();
  }
  return std::clamp(ms, kGuardMinWindowMs, kGuardMaxWindowMs);
}

}  // namespace sluice::api
