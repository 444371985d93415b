#include "controllers/rollout/engine.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "lib/api/duration.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers {
namespace {

using std::chrono::milliseconds;

constexpr char kReady[] = "Ready";
constexpr char kProgressing[] = "Progressing";
constexpr char kDegraded[] = "Degraded";

// Progressing condition reasons; the Paused ones also say why the phase is Paused.
constexpr char kReasonInProgress[] = "RolloutInProgress";
constexpr char kReasonPaused[] = "Paused";
constexpr char kReasonWaitingForPromotion[] = "WaitingForPromotion";
constexpr char kReasonNoData[] = "NoData";
constexpr char kReasonDeadline[] = "ProgressDeadlineExceeded";
constexpr char kReasonComplete[] = "RolloutComplete";
constexpr char kReasonRolledBack[] = "RolledBack";

int32_t CeilPercent(int32_t total, int32_t percent) {
  return static_cast<int32_t>((static_cast<int64_t>(total) * percent + 99) / 100);
}

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

// One Decide call. Fields mirror the status being built; the helpers below read `in` and `prev`
// and write only here.
class Engine {
 public:
  explicit Engine(const RolloutInput& in)
      : in_(in), prev_(in.status), policy_(in.policy), now_(in.now) {}

  RolloutDecision Run();

 private:
  // --- reading the input ---
  int32_t Ready(const std::string& rev) const {
    auto it = in_.observed.find(rev);
    return it == in_.observed.end() ? 0 : std::max(0, it->second.ready_replicas);
  }
  // What the revision was last asked to run.
  int32_t CurrentReplicas(const std::string& rev) const {
    auto it = in_.observed.find(rev);
    if (it != in_.observed.end()) return std::max(0, it->second.replicas);
    const RevisionStatus* r = prev_.FindRevision(rev);
    return r && r->replicas ? std::max(0, *r->replicas) : 0;
  }
  int32_t PrevReady(const std::string& rev) const {
    const RevisionStatus* r = prev_.FindRevision(rev);
    return r && r->ready_replicas ? *r->ready_replicas : 0;
  }
  int32_t PrevWeight(const std::string& rev) const {
    for (const TrafficTarget& t : prev_.traffic) {
      if (t.revision == rev) return t.weight;
    }
    return 0;
  }
  int32_t Autoscaled(const std::string& rev) const {
    auto it = in_.replicas.autoscaled.find(rev);
    return it != in_.replicas.autoscaled.end() ? it->second : in_.replicas.min_replicas;
  }

  // The replicas one revision needs to carry all traffic: spec.replicas, or under autoscaling
  // the stable's and the canary's recommendations together (each is sized for its own share),
  // within [min, max]. Read from roles, not from traffic, so that writing new weights does not
  // change the size the weights were decided on.
  int32_t FullSize() const {
    if (in_.replicas.fixed) return std::max(0, *in_.replicas.fixed);
    int64_t sum = 0;
    if (stable_.empty()) {
      sum = Autoscaled(in_.desired_revision);
    } else {
      sum = Autoscaled(stable_);
      if (!canary_.empty() && phase_ != Phase::kRolledBack) sum += Autoscaled(canary_);
    }
    return static_cast<int32_t>(
        std::clamp<int64_t>(sum, std::max(0, in_.replicas.min_replicas),
                            std::max(in_.replicas.min_replicas, in_.replicas.max_replicas)));
  }
  int32_t StableSize(int32_t canary_weight) const {
    if (in_.replicas.fixed) return full_;
    return std::max(Autoscaled(stable_), CeilPercent(full_, 100 - canary_weight));
  }
  int32_t CanarySize(int32_t weight) const {
    if (full_ == 0) return 0;
    const int32_t share = std::max(1, CeilPercent(full_, weight));
    if (in_.replicas.fixed) return share;
    return std::max(Autoscaled(canary_), share);
  }
  // The most weight the canary's Ready pods can carry.
  int32_t CanaryCap() const {
    if (full_ <= 0) return 0;
    return static_cast<int32_t>(
        std::min<int64_t>(100, static_cast<int64_t>(Ready(canary_)) * 100 / full_));
  }

  // --- writing the decision ---
  void Emit(EventType type, std::string reason, std::string message) {
    d_.events.push_back({type, std::move(reason), std::move(message)});
  }
  void Wake(WallTime t) {
    if (!wake_ || t < *wake_) wake_ = t;
  }
  void Retire(const std::string& rev, WallTime when) {
    if (rev.empty()) return;
    auto [it, inserted] = retired_.emplace(rev, when);
    if (!inserted && when < it->second) it->second = when;
  }
  void ClearRolloutState() {
    step_.reset();
    step_start_.reset();
    progress_.reset();
  }
  void StartCanary(const std::string& rev) {
    canary_ = rev;
    retired_.erase(rev);
    ClearRolloutState();
    step_ = 0;
    analysis_.reset();
    phase_ = Phase::kProgressing;
    canary_scale_down_.reset();
  }
  std::string Describe(const std::string& rev) const {
    if (rev == in_.desired_revision && in_.desired_model_version) {
      return rev + " (model version " + *in_.desired_model_version + ")";
    }
    const RevisionStatus* r = prev_.FindRevision(rev);
    if (r && r->model_version) return rev + " (model version " + *r->model_version + ")";
    return rev;
  }

  void FirstDeploy();
  void AtStable();
  void Rollout();
  void HoldRolledBack();
  void Rollback(const std::string& reason, const std::string& detail);
  void CanaryProgress();
  bool StepDone(int32_t k);
  void FinishPromotion();
  void RollingProgress();
  void ScaleToZeroSwitch();
  // Progress-deadline bookkeeping while `rev` is waited for; sets degraded_ when it passed.
  void Track(const std::string& rev, bool waiting);
  void Finalize();
  void BuildTraffic();
  void SetCondition(const std::string& type, bool status, const std::string& reason,
                    const std::string& message);

  const RolloutInput& in_;
  const ModelDeploymentStatus& prev_;
  const RolloutPolicy& policy_;
  const WallTime now_;
  RolloutDecision d_;

  int32_t full_ = 0;
  std::string stable_;
  std::string canary_;
  Phase phase_ = Phase::kProgressing;
  std::optional<int32_t> step_;
  std::optional<WallTime> step_start_;
  std::optional<WallTime> progress_;
  std::optional<AnalysisStatus> analysis_;
  std::optional<WallTime> canary_scale_down_;  // a rolled-back canary's pods go then
  std::map<std::string, WallTime> retired_;    // revision → when its pods go
  std::set<std::string> budgeted_;             // old revisions a rolling update scales down
  std::map<std::string, int32_t> replicas_;    // decided replicas, by revision
  std::vector<std::pair<std::string, int32_t>> planned_;  // wanted weights, before readiness
  std::optional<WallTime> wake_;
  bool degraded_ = false;
  std::string progressing_reason_ = kReasonInProgress;
  std::string progressing_message_;
  std::string rollback_reason_;
  std::string rollback_message_;

  bool used_promote_ = false;
  bool used_abort_ = false;
  bool used_retry_ = false;
};

RolloutDecision Engine::Run() {
  stable_ = prev_.stable_revision.value_or("");
  canary_ = prev_.canary_revision.value_or("");
  phase_ = prev_.phase.value_or(Phase::kProgressing);
  step_ = prev_.current_step;
  step_start_ = prev_.current_step_start_time;
  progress_ = prev_.last_progress_time;
  analysis_ = prev_.last_analysis;
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
    Emit(EventType::kNormal, kReasonComplete,
         "revision " + Describe(rev) + " is stable; the ModelDeployment is scaled to zero");
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
    Emit(EventType::kNormal, kReasonComplete,
         "first revision " + Describe(rev) + " is Ready and takes all traffic");
    return;
  }
  progressing_message_ = "waiting for " + rev + ": " + std::to_string(Ready(rev)) + "/" +
                         std::to_string(full_) + " pods Ready";
  Track(rev, true);
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
      Emit(EventType::kNormal, "Reverted",
           "spec matches stable revision " + stable_ + " again: canary " + canary_ +
               " is rolled back and all traffic returns to " + stable_);
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
      Emit(EventType::kNormal, "Superseded",
           "revision " + Describe(rev) + " replaces canary " + canary_ +
               (phase_ == Phase::kRolledBack ? " (rolled back)" : "") +
               "; the rollout starts over from stable " + stable_);
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
        Rollback("AnalysisFailed", v.message);
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
  Emit(EventType::kNormal, kReasonComplete,
       "revision " + Describe(stable_) + " is stable and takes all traffic; previous stable " +
           old + " keeps its pods until " + FormatTime(when));
}

void Engine::RollingProgress() {
  if (in_.controls.abort) {
    used_abort_ = true;
    Rollback("Aborted", "aborted by " + std::string(api::kAbortAnnotation));
    return;
  }
  if (in_.controls.promote_step || in_.controls.promote_full) {
    used_promote_ = true;
    Emit(EventType::kNormal, "ControlIgnored",
         std::string(api::kPromoteAnnotation) + " has no effect on a Rolling rollout");
  }
  const int32_t n = full_;
  const int32_t surge = policy_.max_surge.Resolve(n, /*round_up=*/true);
  int32_t unavailable = policy_.max_unavailable.Resolve(n, /*round_up=*/false);
  if (surge == 0 && unavailable == 0) unavailable = 1;
  const int32_t min_available = std::max(0, n - unavailable);

  // Old revisions: earlier abandoned ones first, the stable last, so the stable keeps its pods
  // longest.
  std::vector<std::string> olds;
  std::set<std::string> seen{canary_};
  auto add_old = [&](const std::string& rev) {
    if (rev.empty() || seen.count(rev)) return;
    seen.insert(rev);
    if (CurrentReplicas(rev) > 0 || Ready(rev) > 0) olds.push_back(rev);
  };
  for (const auto& [rev, when] : retired_) add_old(rev);
  add_old(stable_);

  const bool paused = in_.controls.pause;
  const int32_t new_current = CurrentReplicas(canary_);
  const int32_t new_ready = std::min(Ready(canary_), new_current);
  std::map<std::string, int32_t> next;
  int32_t old_total = 0;
  if (paused) {
    for (const std::string& rev : olds) next[rev] = CurrentReplicas(rev);
  } else {
    int32_t available = new_ready;
    for (const std::string& rev : olds) available += std::min(Ready(rev), CurrentReplicas(rev));
    int32_t budget = std::max(0, available - min_available);
    for (const std::string& rev : olds) {
      const int32_t cur = CurrentReplicas(rev);
      const int32_t ready = std::min(Ready(rev), cur);
      // Pods that are not Ready serve nothing: removing them costs no availability.
      const int32_t remove_ready = std::min(ready, budget);
      budget -= remove_ready;
      next[rev] = ready - remove_ready;
    }
  }
  for (const auto& [rev, count] : next) old_total += count;
  int32_t new_next = new_current;
  if (!paused) {
    new_next = new_current >= n ? n : std::min(n, std::max(new_current, n + surge - old_total));
  }

  for (const auto& [rev, count] : next) replicas_[rev] = count;
  replicas_[canary_] = new_next;
  for (const std::string& rev : olds) {
    // The rolling budget, not a delay, governs old revisions.
    budgeted_.insert(rev);
    if (rev != stable_) retired_.emplace(rev, now_);
  }

  const bool done = !paused && new_next == n && Ready(canary_) >= n && old_total == 0;
  if (done) {
    const std::string old = stable_;
    Retire(old, now_);
    stable_ = canary_;
    canary_.clear();
    ClearRolloutState();
    phase_ = Phase::kHealthy;
    progressing_reason_ = kReasonComplete;
    progressing_message_ = "revision " + stable_ + " is stable";
    planned_ = {{stable_, 100}};
    Emit(EventType::kNormal, kReasonComplete,
         "revision " + Describe(stable_) + " replaced " + old + " and takes all traffic");
    return;
  }

  // Traffic follows the Ready pods that stay; a revision being scaled away stops first.
  std::vector<std::pair<std::string, int64_t>> basis;
  int64_t total = 0;
  basis.push_back({canary_, std::min(Ready(canary_), new_next)});
  for (const std::string& rev : olds) basis.push_back({rev, std::min(Ready(rev), next[rev])});
  for (const auto& [rev, b] : basis) total += b;
  if (total == 0) {
    basis.clear();
    basis.push_back({canary_, Ready(canary_)});
    for (const std::string& rev : olds) basis.push_back({rev, Ready(rev)});
    for (const auto& [rev, b] : basis) total += b;
  }
  planned_.clear();
  if (total > 0) {
    // Largest remainder, so the weights sum to exactly 100.
    int32_t assigned = 0;
    std::vector<std::pair<int64_t, size_t>> remainders;
    for (size_t i = 0; i < basis.size(); ++i) {
      const int64_t scaled = basis[i].second * 100;
      planned_.push_back({basis[i].first, static_cast<int32_t>(scaled / total)});
      assigned += planned_.back().second;
      remainders.push_back({scaled % total, i});
    }
    std::stable_sort(remainders.begin(), remainders.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = 0; assigned < 100 && i < remainders.size(); ++i, ++assigned) {
      ++planned_[remainders[i].second].second;
    }
  } else {
    planned_ = {{stable_, 100}};
  }

  const std::string at = "rolling " + canary_ + ": " + std::to_string(Ready(canary_)) + "/" +
                         std::to_string(n) + " pods Ready, " + std::to_string(old_total) +
                         " old pods left";
  Track(canary_, !paused);
  if (paused) {
    phase_ = Phase::kPaused;
    progressing_reason_ = kReasonPaused;
    progressing_message_ = at + "; held by " + std::string(api::kPauseAnnotation);
  } else if (degraded_) {
    phase_ = Phase::kDegraded;
    progressing_reason_ = kReasonDeadline;
    progressing_message_ = at + " after " + FormatDuration(policy_.progress_deadline);
  } else {
    phase_ = Phase::kProgressing;
    progressing_reason_ = kReasonInProgress;
    progressing_message_ = at;
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

void Engine::BuildTraffic() {
  std::vector<std::pair<std::string, int32_t>> weights;
  int32_t lost = 0;
  for (const auto& [rev, w] : planned_) {
    if (w <= 0) continue;
    if (Ready(rev) == 0) {
      lost += w;
    } else {
      weights.push_back({rev, w});
    }
  }
  if (lost > 0 && !weights.empty()) {
    // To the planned revision with the most weight: the stable one on a tie, as it comes first.
    auto best = weights.begin();
    for (auto it = weights.begin(); it != weights.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    best->second += lost;
  } else if (lost > 0 && full_ > 0) {
    // Nothing planned can serve: keep serving from whatever still has Ready pods, preferring
    // what served before, and a rolled-back canary only as the last resort.
    std::string fallback;
    auto better = [&](const std::string& a, const std::string& b) {
      if (b.empty()) return true;
      const bool a_failed = phase_ == Phase::kRolledBack && a == canary_;
      const bool b_failed = phase_ == Phase::kRolledBack && b == canary_;
      if (a_failed != b_failed) return !a_failed;
      if (PrevWeight(a) != PrevWeight(b)) return PrevWeight(a) > PrevWeight(b);
      return Ready(a) > Ready(b);
    };
    std::vector<std::string> candidates;
    for (const auto& [rev, when] : retired_) candidates.push_back(rev);
    if (phase_ == Phase::kRolledBack && !canary_.empty()) candidates.push_back(canary_);
    for (const std::string& rev : candidates) {
      if (Ready(rev) > 0 && better(rev, fallback)) fallback = rev;
    }
    if (!fallback.empty()) weights.push_back({fallback, 100});
  }
  d_.status.traffic.clear();
  for (const auto& [rev, w] : weights) d_.status.traffic.push_back({rev, w, std::nullopt});

  const bool canary_active = !canary_.empty() && !stable_.empty() && phase_ != Phase::kRolledBack;
  if (canary_active && policy_.mirror_percent > 0 && Ready(canary_) > 0) {
    auto it = std::find_if(d_.status.traffic.begin(), d_.status.traffic.end(),
                           [&](const TrafficTarget& t) { return t.revision == canary_; });
    if (it == d_.status.traffic.end()) {
      d_.status.traffic.push_back({canary_, 0, policy_.mirror_percent});
    } else if (it->weight < 100) {
      it->mirror_percent = policy_.mirror_percent;
    }
  }
}

void Engine::SetCondition(const std::string& type, bool status, const std::string& reason,
                          const std::string& message) {
  const std::string value = status ? "True" : "False";
  Condition c;
  c.type = type;
  c.status = value;
  c.observed_generation = in_.generation;
  c.reason = reason;
  c.message = message;
  const Condition* old = prev_.FindCondition(type);
  c.last_transition_time =
      old && old->status == value ? old->last_transition_time : TruncateToSeconds(now_);
  for (Condition& existing : d_.status.conditions) {
    if (existing.type == type) {
      existing = std::move(c);
      return;
    }
  }
  d_.status.conditions.push_back(std::move(c));
}

void Engine::Finalize() {
  // Retired revisions keep their pods until their time, and while anything still routes to them.
  for (const auto& [rev, when] : retired_) {
    if (replicas_.count(rev)) continue;
    if (now_ < when) {
      replicas_[rev] = CurrentReplicas(rev);
      Wake(when);
    } else {
      replicas_[rev] = 0;
    }
  }
  if (phase_ == Phase::kRolledBack && !canary_.empty()) {
    const WallTime when = canary_scale_down_.value_or(now_);
    if (now_ < when) {
      replicas_[canary_] = CurrentReplicas(canary_);
      Wake(when);
    } else {
      replicas_[canary_] = 0;
    }
  }
  BuildTraffic();
  // A revision that ends up serving (a fallback) is never scaled to zero under its traffic.
  for (const TrafficTarget& t : d_.status.traffic) {
    if (t.weight > 0 && replicas_[t.revision] == 0) {
      replicas_[t.revision] = std::max(CurrentReplicas(t.revision), Ready(t.revision));
    }
  }

  ModelDeploymentStatus& st = d_.status;
  st.observed_generation = prev_.observed_generation;
  st.selector = prev_.selector;
  st.phase = phase_;
  st.stable_revision = stable_.empty() ? std::nullopt : std::optional<std::string>(stable_);
  st.canary_revision = canary_.empty() ? std::nullopt : std::optional<std::string>(canary_);
  st.canary_weight.reset();
  if (!canary_.empty()) {
    st.canary_weight = 0;
    for (const TrafficTarget& t : st.traffic) {
      if (t.revision == canary_) st.canary_weight = t.weight;
    }
  }
  st.current_step = canary_.empty() || policy_.strategy != Strategy::kCanary || stable_.empty()
                        ? std::nullopt
                        : step_;
  st.current_step_start_time = st.current_step ? step_start_ : std::nullopt;
  st.last_progress_time = progress_;
  st.last_analysis = analysis_;

  // Revisions: stable, canary, then retired ones until their pods are gone.
  std::vector<std::pair<std::string, RevisionRole>> order;
  if (!stable_.empty()) order.push_back({stable_, RevisionRole::kStable});
  if (!canary_.empty()) order.push_back({canary_, RevisionRole::kCanary});
  for (const auto& [rev, when] : retired_) {
    if (rev != stable_ && rev != canary_) order.push_back({rev, RevisionRole::kRetired});
  }
  int32_t total_replicas = 0;
  int32_t total_ready = 0;
  for (const auto& [rev, role] : order) {
    const int32_t want = replicas_.count(rev) ? replicas_[rev] : CurrentReplicas(rev);
    if (role != RevisionRole::kStable && want == 0) {
      const RevisionStatus* before = prev_.FindRevision(rev);
      if (before && before->replicas.value_or(0) > 0) {
        Emit(EventType::kNormal, "ScaledDown", "revision " + rev + " scaled to zero");
      }
    }
    const bool leaving = role == RevisionRole::kRetired ||
                         (role == RevisionRole::kCanary && phase_ == Phase::kRolledBack);
    // Listed until no pod of it serves; then its Deployment can go.
    if (leaving && want == 0 && Ready(rev) == 0) continue;
    RevisionStatus r;
    r.name = rev;
    if (const RevisionStatus* old = prev_.FindRevision(rev)) {
      r.model_version = old->model_version;
      r.model_uri = old->model_uri;
    }
    if (rev == in_.desired_revision) {
      if (in_.desired_model_version) r.model_version = in_.desired_model_version;
      if (in_.desired_model_uri) r.model_uri = in_.desired_model_uri;
    }
    r.replicas = want;
    r.ready_replicas = Ready(rev);
    if (role == RevisionRole::kRetired) {
      auto it = retired_.find(rev);
      if (it != retired_.end() && want > 0 && !budgeted_.count(rev)) {
        r.scale_down_time = TruncateToSeconds(it->second);
      }
    } else if (role == RevisionRole::kCanary && phase_ == Phase::kRolledBack && want > 0) {
      r.scale_down_time = canary_scale_down_;
    }
    st.revisions.push_back(r);
    d_.revisions.push_back({rev, role, want});
    total_replicas += want;
    total_ready += Ready(rev);
  }
  st.replicas = total_replicas;
  st.ready_replicas = total_ready;

  // Conditions.
  st.conditions = prev_.conditions;
  bool ready = false;
  std::string ready_reason = "NoStableRevision";
  std::string ready_message = "no revision has been Ready yet";
  if (!stable_.empty()) {
    const int32_t want = replicas_.count(stable_) ? replicas_[stable_] : 0;
    int32_t serving_ready = Ready(stable_);
    int32_t needed = want;
    if (policy_.strategy == Strategy::kRolling && !canary_.empty()) {
      serving_ready = 0;
      for (const TrafficTarget& t : st.traffic) serving_ready += Ready(t.revision);
      needed = std::max(0, full_ - policy_.max_unavailable.Resolve(full_, false));
    }
    ready = serving_ready >= needed && (needed == 0 || !st.traffic.empty());
    ready_reason = ready ? "StableAvailable" : "StableNotReady";
    ready_message = std::to_string(serving_ready) + "/" + std::to_string(needed) +
                    " pods Ready serving revision " + stable_;
  }
  SetCondition(kReady, ready, ready_reason, ready_message);
  const bool progressing = phase_ == Phase::kProgressing || phase_ == Phase::kPaused;
  SetCondition(kProgressing, progressing, progressing_reason_, progressing_message_);
  if (phase_ == Phase::kRolledBack) {
    SetCondition(kDegraded, true, rollback_reason_.empty() ? kReasonRolledBack : rollback_reason_,
                 rollback_message_.empty() ? progressing_message_ : rollback_message_);
  } else if (phase_ == Phase::kDegraded) {
    SetCondition(kDegraded, true, kReasonDeadline, progressing_message_);
  } else {
    SetCondition(kDegraded, false, "AsExpected", "");
  }

  // Transitions worth an event.
  const Condition* before = prev_.FindCondition(kProgressing);
  const std::string before_reason = before ? before->reason : "";
  if (progressing_reason_ != before_reason) {
    if (progressing_reason_ == kReasonPaused) {
      Emit(EventType::kNormal, "Paused", progressing_message_);
    } else if (before_reason == kReasonPaused && progressing) {
      Emit(EventType::kNormal, "Resumed", progressing_message_);
    }
    if (progressing_reason_ == kReasonNoData) {
      Emit(EventType::kWarning, "AnalysisNoData", progressing_message_);
    } else if (progressing_reason_ == kReasonWaitingForPromotion) {
      Emit(EventType::kNormal, kReasonWaitingForPromotion, progressing_message_);
    } else if (progressing_reason_ == kReasonDeadline) {
      Emit(EventType::kWarning, kReasonDeadline, progressing_message_);
    }
  }

  // One-shot controls that found nothing to act on.
  const Controls& ctl = in_.controls;
  if (ctl.promote_step || ctl.promote_full) {
    d_.consumed_annotations.push_back(api::kPromoteAnnotation);
    if (!used_promote_) {
      Emit(EventType::kNormal, "ControlIgnored",
           std::string(api::kPromoteAnnotation) + ": no rollout in progress to promote");
    }
  }
  if (ctl.abort) {
    d_.consumed_annotations.push_back(api::kAbortAnnotation);
    if (!used_abort_) {
      Emit(EventType::kNormal, "ControlIgnored",
           std::string(api::kAbortAnnotation) + ": no rollout in progress to abort");
    }
  }
  if (ctl.retry) {
    d_.consumed_annotations.push_back(api::kRetryAnnotation);
    if (!used_retry_) {
      Emit(EventType::kNormal, "ControlIgnored",
           std::string(api::kRetryAnnotation) + ": nothing was rolled back to retry");
    }
  }

  if (std::optional<WallTime> due = NextAnalysisDue(policy_, st)) Wake(*due);
  if (wake_) {
    const milliseconds left = std::chrono::ceil<milliseconds>(*wake_ - now_);
    d_.requeue_after = std::max(left, milliseconds(100));
  }
}

}  // namespace

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
