#include "controllers/rollout/policy.h"

#include "lib/api/duration.h"

namespace sluice::controllers {
namespace {

using std::chrono::milliseconds;

Result<milliseconds> DurationField(const std::optional<std::string>& text, const char* fallback,
                                   std::string_view field) {
  Result<milliseconds> d = ParseDuration(text.value_or(fallback));
  if (!d.ok()) return d.status().Annotate(field);
  return d;
}

}  // namespace

Result<RolloutPolicy> ResolveRolloutPolicy(const ModelDeploymentSpec& spec) {
  const RolloutSpec r = spec.rollout.value_or(RolloutSpec{});
  RolloutPolicy p;
  const std::string strategy = r.strategy.value_or("Canary");
  if (strategy == "Canary") {
    p.strategy = Strategy::kCanary;
  } else if (strategy == "Rolling") {
    p.strategy = Strategy::kRolling;
  } else {
    return InvalidArgument("spec.rollout.strategy: unknown value \"" + strategy + "\"");
  }

  const CanarySpec canary = r.canary.value_or(CanarySpec{});
  if (!canary.steps) {
    p.steps = {
        {10, std::chrono::seconds(30)}, {50, std::chrono::seconds(30)}, {100, milliseconds(0)}};
  } else {
    int32_t last = 0;
    for (size_t i = 0; i < canary.steps->size(); ++i) {
      const CanaryStep& s = (*canary.steps)[i];
      const std::string field = "spec.rollout.canary.steps[" + std::to_string(i) + "]";
      if (s.weight < 1 || s.weight > 100 || s.weight <= last) {
        return InvalidArgument(field +
                               ".weight: weights must be strictly increasing within 1..100");
      }
      last = s.weight;
      Step step{s.weight, std::nullopt};
      if (s.pause) {
        ASSIGN_OR_RETURN(step.pause, DurationField(s.pause, "", field + ".pause"));
      }
      p.steps.push_back(step);
    }
    if (last != 100)
      return InvalidArgument("spec.rollout.canary.steps: the last weight must be 100");
  }
  ASSIGN_OR_RETURN(p.analysis, ResolveAnalysisPolicy(canary.analysis));

  const RollingSpec rolling = r.rolling.value_or(RollingSpec{});
  p.max_surge = rolling.max_surge.value_or(IntOrPercent{25, true});
  p.max_unavailable = rolling.max_unavailable.value_or(IntOrPercent{0, false});
  if (p.max_surge.value < 0 || p.max_unavailable.value < 0) {
    return InvalidArgument("spec.rollout.rolling: maxSurge and maxUnavailable must be >= 0");
  }
  ASSIGN_OR_RETURN(p.progress_deadline,
                   DurationField(r.progress_deadline, "10m", "spec.rollout.progressDeadline"));
  ASSIGN_OR_RETURN(p.scale_down_delay,
                   DurationField(r.scale_down_delay, "30s", "spec.rollout.scaleDownDelay"));
  if (spec.traffic && spec.traffic->mirror) p.mirror_percent = spec.traffic->mirror->percent;
  return p;
}

}  // namespace sluice::controllers
