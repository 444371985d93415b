// Canary strategy: weighted steps with pauses and analysis, promotion (by step or in full),
// abort and rollback on a failed analysis.

#include <algorithm>
#include <cmath>

#include "controllers/rollout/engine_internal.h"
#include "lib/api/duration.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers::engine_internal {

AnalysisStatus ToAnalysisStatus(const Verdict& v) {
  AnalysisStatus a;
  a.time = TruncateToSeconds(v.time);
  a.verdict = std::string(OutcomeName(v.outcome));
  std::map<std::string, double> values;
  for (const MetricResult& m : v.metrics) {
    if (m.value && std::isfinite(*m.value)) values[m.name] = *m.value;
  }
  if (!values.empty()) a.values = std::move(values);
  a.requests = v.requests;
  a.consecutive_failures = v.consecutive_failures;
  a.message = v.message;
  return a;
}

void Engine::HoldRolledBack() {
  phase_ = Phase::kRolledBack;
  full_ = FullSize();
  ClearRolloutState();
  progressing_reason_ = kReasonRolledBack;
  progressing_message_ = rollback_message_.empty()
                             ? "revision " + canary_ + " was rolled back; change the spec or set " +
                                   std::string(api::kRetryAnnotation) + " to try again"
                             : rollback_message_;
  replicas_[stable_] = StableSize(0);
  planned_ = {{stable_, 100}};
}

void Engine::Rollback(const std::string& reason, const std::string& detail) {
  phase_ = Phase::kRolledBack;
  full_ = FullSize();
  ClearRolloutState();
  canary_scale_down_ = TruncateToSeconds(now_ + policy_.scale_down_delay);
  rollback_reason_ = reason;
  rollback_message_ = "canary " + canary_ + " rolled back to " + stable_ + ": " + detail;
  Emit(EventType::kWarning, reason, rollback_message_);
  Record(canary_, reason == "Aborted" ? "Aborted" : "RolledBack", reason, rollback_message_);
  progressing_reason_ = kReasonRolledBack;
  progressing_message_ = rollback_message_;
  replicas_[stable_] = StableSize(0);
  planned_ = {{stable_, 100}};
}

bool Engine::StepDone(int32_t k) {
  const Step& step = policy_.steps[k];
  if (!step.pause) return false;
  const WallTime pause_end = *step_start_ + *step.pause;
  if (now_ < pause_end) {
    Wake(pause_end);
    return false;
  }
  if (policy_.analysis.metrics.empty()) return true;
  // A passing check whose whole interval lies within this step.
  return analysis_ && analysis_->time && analysis_->verdict == OutcomeName(Outcome::kPass) &&
         *analysis_->time >= *step_start_ + policy_.analysis.interval;
}

void Engine::CanaryProgress() {
  const int32_t n = static_cast<int32_t>(policy_.steps.size());
  int32_t k = std::clamp(step_.value_or(0), 0, n);

  if (in_.controls.abort) {
    used_abort_ = true;
    Rollback("Aborted", "aborted by " + std::string(api::kAbortAnnotation));
    return;
  }

  if (in_.verdict && in_.verdict->revision == canary_) {
    const Verdict& v = *in_.verdict;
    const bool is_new = !prev_.last_analysis || !prev_.last_analysis->time ||
                        TruncateToSeconds(v.time) > *prev_.last_analysis->time;
    if (is_new) {
      analysis_ = ToAnalysisStatus(v);
      if (v.failed) {
        Rollback(v.guard_tripped ? "RouterGuardTripped" : "AnalysisFailed", v.message);
        return;
      }
      // noDataPolicy Pause stops the step's clock for as long as the check had no data.
      if (v.outcome == Outcome::kNoData && step_start_) {
        const WallTime from = std::max(v.window.start, *step_start_);
        if (v.time > from) {
          step_start_ = TruncateToSeconds(std::min(now_, *step_start_ + (v.time - from)));
        }
      }
    }
  }
  // Only a check of this step holds it; one from before a promotion does not.
  auto no_data_in_step = [&] {
    return analysis_ && analysis_->verdict == OutcomeName(Outcome::kNoData) && step_start_ &&
           analysis_->time && *analysis_->time >= *step_start_;
  };

  if (in_.controls.promote_full) {
    used_promote_ = true;
    if (k < n) {
      k = n;
      step_start_.reset();
      Emit(EventType::kNormal, "Promoted",
           "sluice.dev/promote=full: canary " + canary_ +
               " goes to 100% now, skipping the remaining steps and analysis");
    }
  } else if (in_.controls.promote_step) {
    used_promote_ = true;
    if (k < n) {
      Emit(EventType::kNormal, "StepPromoted",
           "sluice.dev/promote: step " + std::to_string(k + 1) + "/" + std::to_string(n) + " (" +
               std::to_string(policy_.steps[k].weight) + "%) of canary " + canary_ +
               " ended early");
      ++k;
      step_start_.reset();
    }
  }

  const bool paused = in_.controls.pause;
  int32_t weight = 0;
  int32_t effective = 0;
  for (int guard = 0; guard <= n + 1; ++guard) {
    weight = k < n ? policy_.steps[k].weight : 100;
    effective = std::min(weight, CanaryCap());
    if (effective >= weight && !step_start_) step_start_ = TruncateToSeconds(now_);
    if (!step_start_) break;
    if (k == n) {
      FinishPromotion();
      return;
    }
    if (paused || !StepDone(k)) break;
    ++k;
    step_start_.reset();
    if (k < n) {
      Emit(EventType::kNormal, "StepAdvanced",
           "canary " + canary_ + " step " + std::to_string(k + 1) + "/" + std::to_string(n) +
               ": weight " + std::to_string(policy_.steps[k].weight) + "%");
    }
  }
  step_ = k;
  const bool waiting = effective < weight;
  replicas_[canary_] = CanarySize(weight);
  replicas_[stable_] = StableSize(effective);
  planned_ = {{stable_, 100 - effective}, {canary_, effective}};

  const std::string at = "canary " + canary_ + " step " + std::to_string(std::min(k + 1, n)) + "/" +
                         std::to_string(n) + " at " + std::to_string(effective) + "% of " +
                         std::to_string(weight) + "%";
  Track(canary_, waiting && !paused);
  if (paused) {
    phase_ = Phase::kPaused;
    progressing_reason_ = kReasonPaused;
    progressing_message_ = at + "; held by " + std::string(api::kPauseAnnotation);
  } else if (degraded_) {
    phase_ = Phase::kDegraded;
    progressing_reason_ = kReasonDeadline;
    progressing_message_ = at + ": " + std::to_string(Ready(canary_)) + " pods Ready after " +
                           FormatDuration(policy_.progress_deadline);
  } else if (!waiting && k < n && !policy_.steps[k].pause) {
    phase_ = Phase::kPaused;
    progressing_reason_ = kReasonWaitingForPromotion;
    progressing_message_ = at + "; waiting for " + std::string(api::kPromoteAnnotation);
  } else if (!waiting && no_data_in_step()) {
    phase_ = Phase::kPaused;
    progressing_reason_ = kReasonNoData;
    progressing_message_ = at + "; analysis has no data (" + analysis_->message.value_or("") + ")";
  } else {
    phase_ = Phase::kProgressing;
    progressing_reason_ = kReasonInProgress;
    progressing_message_ = waiting ? at + ", waiting for Ready pods" : at;
  }
}

void Engine::FinishPromotion() {
  const std::string old = stable_;
  const WallTime when = TruncateToSeconds(now_ + policy_.scale_down_delay);
  Retire(old, when);
  stable_ = canary_;
  canary_.clear();
  ClearRolloutState();
  phase_ = Phase::kHealthy;
  progressing_reason_ = kReasonComplete;
  progressing_message_ = "revision " + stable_ + " is stable";
  full_ = FullSize();
  replicas_[stable_] = StableSize(0);
  planned_ = {{stable_, 100}};
  const std::string message = "revision " + Describe(stable_) +
                              " is stable and takes all traffic; previous stable " + old +
                              " keeps its pods until " + FormatTime(when);
  Emit(EventType::kNormal, kReasonComplete, message);
  Record(stable_, "Promoted", kReasonComplete, message);
}

}  // namespace sluice::controllers::engine_internal
