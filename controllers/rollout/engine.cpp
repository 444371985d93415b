#include "controllers/rollout/engine.h"

#include <algorithm>

#include "controllers/rollout/engine_internal.h"
#include "lib/api/duration.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers {
namespace engine_internal {

std::optional<WallTime> NextAnalysisDue(const RolloutPolicy& policy,
                                        const ModelDeploymentStatus& status) {
  if (policy.strategy != Strategy::kCanary || policy.analysis.metrics.empty()) return std::nullopt;
  if (!status.canary_revision || status.canary_revision->empty()) return std::nullopt;
  if (!status.stable_revision || status.stable_revision->empty()) return std::nullopt;
  if (status.phase == Phase::kRolledBack) return std::nullopt;
  const int32_t step = status.current_step.value_or(0);
  if (step < 0 || step >= static_cast<int32_t>(policy.steps.size())) return std::nullopt;
  if (status.canary_weight.value_or(0) <= 0) return std::nullopt;
  std::optional<WallTime> base;
  if (status.last_analysis && status.last_analysis->time) {
    base = status.last_analysis->time;
  } else {
    base = status.current_step_start_time;
  }
  if (!base) return std::nullopt;
  return *base + policy.analysis.interval;
}

RolloutDecision Engine::Run() {
  stable_ = prev_.stable_revision.value_or("");
  canary_ = prev_.canary_revision.value_or("");
  phase_ = prev_.phase.value_or(Phase::kProgressing);
  step_ = prev_.current_step;
  step_start_ = prev_.current_step_start_time;
  progress_ = prev_.last_progress_time;
  analysis_ = prev_.last_analysis;
  history_ = prev_.history;
  for (const RevisionStatus& r : prev_.revisions) {
    if (r.name == stable_) continue;
    if (r.name == canary_) {
      canary_scale_down_ = r.scale_down_time;
      continue;
    }
    // A retired revision whose time was lost keeps nothing: it takes no traffic.
    retired_.emplace(r.name, r.scale_down_time.value_or(now_));
  }
  if (phase_ == Phase::kRolledBack && !canary_.empty() && !canary_scale_down_) {
    canary_scale_down_ = now_;
  }
  // A rollback's reason lives in the Degraded condition; carried while the phase lasts.
  if (const Condition* c = prev_.FindCondition(kDegraded); c && c->status == "True") {
    rollback_reason_ = c->reason;
    rollback_message_ = c->message;
  }
  full_ = FullSize();

  if (full_ == 0) {
    ScaleToZeroSwitch();
  } else if (stable_.empty()) {
    FirstDeploy();
  } else if (in_.desired_revision == stable_) {
    AtStable();
  } else {
    Rollout();
  }
  Finalize();
  return std::move(d_);
}

// With nothing to run there is nothing to shift gradually: the desired revision is the stable
// one at once, and every other revision goes.
void Engine::ScaleToZeroSwitch() {
  const std::string& rev = in_.desired_revision;
  if (stable_ != rev) {
    Retire(stable_, now_);
    const std::string message =
        "revision " + Describe(rev) + " is stable; the ModelDeployment is scaled to zero";
    Emit(EventType::kNormal, kReasonComplete, message);
    Record(rev, stable_.empty() ? "Deployed" : "Promoted", "ScaledToZero", message);
  }
  if (!canary_.empty() && canary_ != rev) Retire(canary_, now_);
  retired_.erase(rev);
  stable_ = rev;
  canary_.clear();
  ClearRolloutState();
  phase_ = Phase::kHealthy;
  progressing_reason_ = kReasonComplete;
  progressing_message_ = "scaled to zero";
  replicas_[stable_] = 0;
  planned_ = {{stable_, 100}};
}

void Engine::FirstDeploy() {
  const std::string& rev = in_.desired_revision;
  if (canary_ != rev) {
    // A first revision replaced before it ever became Ready.
    if (!canary_.empty()) Retire(canary_, now_);
    StartCanary(rev);
    step_.reset();
    Emit(EventType::kNormal, "RolloutStarted", "deploying the first revision " + Describe(rev));
  }
  phase_ = Phase::kProgressing;
  replicas_[rev] = full_;
  planned_ = {{rev, 100}};
  if (Ready(rev) >= full_) {
    stable_ = rev;
    canary_.clear();
    ClearRolloutState();
    phase_ = Phase::kHealthy;
    progressing_reason_ = kReasonComplete;
    progressing_message_ = "revision " + rev + " is stable";
    const std::string message =
        "first revision " + Describe(rev) + " is Ready and takes all traffic";
    Emit(EventType::kNormal, kReasonComplete, message);
    Record(rev, "Deployed", kReasonComplete, message);
    return;
  }
  const std::string ready =
      std::to_string(Ready(rev)) + "/" + std::to_string(full_) + " pods Ready";
  Track(rev, true);
  if (degraded_) {
    // Nothing served before, so there is nothing to fall back to: say so, and keep waiting (a
    // pod that becomes Ready later is progress again).
    phase_ = Phase::kDegraded;
    progressing_reason_ = kReasonDeadline;
    progressing_message_ = "the model of first revision " + Describe(rev) +
                           " never became ready: " + ready + " after " +
                           FormatDuration(policy_.progress_deadline);
    return;
  }
  progressing_message_ = "waiting for " + rev + ": " + ready;
}

void Engine::AtStable() {
  if (!canary_.empty()) {
    if (phase_ == Phase::kRolledBack) {
      Retire(canary_, canary_scale_down_.value_or(now_));
      Emit(EventType::kNormal, "Reverted",
           "spec matches stable revision " + stable_ + " again; rolled-back revision " + canary_ +
               " is dropped");
    } else {
      Retire(canary_, now_ + policy_.scale_down_delay);
      const std::string message = "spec matches stable revision " + stable_ + " again: canary " +
                                  canary_ + " is rolled back and all traffic returns to " + stable_;
      Emit(EventType::kNormal, "Reverted", message);
      Record(canary_, "Reverted", "SpecReverted", message);
    }
    canary_.clear();
    ClearRolloutState();
    rollback_reason_.clear();
  }
  phase_ = Phase::kHealthy;
  progressing_reason_ = kReasonComplete;
  progressing_message_ = "revision " + stable_ + " is stable";
  full_ = FullSize();
  replicas_[stable_] = StableSize(0);
  planned_ = {{stable_, 100}};
}

void Engine::Rollout() {
  const std::string& rev = in_.desired_revision;
  if (canary_ == rev && phase_ == Phase::kRolledBack) {
    if (!in_.controls.retry) {
      HoldRolledBack();
      return;
    }
    used_retry_ = true;
    Emit(EventType::kNormal, "Retry",
         "sluice.dev/retry: rolling out " + Describe(rev) + " again from the first step");
    StartCanary(rev);
    rollback_reason_.clear();
  } else if (canary_ != rev) {
    if (!canary_.empty()) {
      Retire(canary_, now_);
      const std::string message = "revision " + Describe(rev) + " replaces canary " + canary_ +
                                  (phase_ == Phase::kRolledBack ? " (rolled back)" : "") +
                                  "; the rollout starts over from stable " + stable_;
      Emit(EventType::kNormal, "Superseded", message);
      // A rolled-back canary's rollout already ended, and history says how.
      if (phase_ != Phase::kRolledBack) Record(canary_, "Superseded", "SpecChanged", message);
    } else {
      Emit(EventType::kNormal, "RolloutStarted",
           "rolling out " + Describe(rev) + " by " +
               (policy_.strategy == Strategy::kCanary ? "Canary" : "Rolling") + " from stable " +
               stable_);
    }
    StartCanary(rev);
    rollback_reason_.clear();
  }
  full_ = FullSize();
  if (policy_.strategy == Strategy::kCanary) {
    CanaryProgress();
  } else {
    RollingProgress();
  }
}

void Engine::Track(const std::string& rev, bool waiting) {
  if (!waiting) {
    progress_.reset();
    return;
  }
  if (!progress_ || Ready(rev) > PrevReady(rev)) progress_ = TruncateToSeconds(now_);
  const WallTime deadline = *progress_ + policy_.progress_deadline;
  if (now_ >= deadline) {
    degraded_ = true;
  } else {
    Wake(deadline);
  }
}

}  // namespace engine_internal

using engine_internal::Engine;
using engine_internal::NextAnalysisDue;

Controls Controls::FromAnnotations(const ModelDeployment& md) {
  Controls c;
  c.pause = md.Annotation(api::kPauseAnnotation) == std::optional<std::string>("true");
  if (std::optional<std::string> p = md.Annotation(api::kPromoteAnnotation)) {
    if (*p == "full") {
      c.promote_full = true;
    } else {
      c.promote_step = true;
    }
  }
  c.abort = md.Annotation(api::kAbortAnnotation).has_value();
  c.retry = md.Annotation(api::kRetryAnnotation).has_value();
  return c;
}

RolloutDecision Decide(const RolloutInput& input) {
  return Engine(input).Run();
}

std::optional<Window> AnalysisWindow(const RolloutPolicy& policy,
                                     const ModelDeploymentStatus& status, WallTime now) {
  std::optional<WallTime> due = NextAnalysisDue(policy, status);
  if (!due || now < *due) return std::nullopt;
  const WallTime base = *due - policy.analysis.interval;
  return Window{std::max(base, now - 2 * policy.analysis.interval), now};
}

std::optional<AnalysisHistory> AnalysisHistoryFromStatus(const ModelDeploymentStatus& status) {
  if (!status.canary_revision || !status.last_analysis) return std::nullopt;
  return AnalysisHistory{*status.canary_revision,
                         status.last_analysis->consecutive_failures.value_or(0)};
}

}  // namespace sluice::controllers
