#pragma once

// The rollout engine's internals, shared by its translation units: engine.cpp (the entry point,
// the first deploy, the stable state, starting a rollout, the progress deadline), canary.cpp
// (steps, analysis verdicts, promotion, rollback), rolling.cpp (the surge/unavailable budget)
// and status.cpp (traffic, revisions, conditions, events). Not part of the engine's interface:
// include "controllers/rollout/engine.h" instead.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "controllers/rollout/engine.h"

namespace sluice::controllers::engine_internal {

using std::chrono::milliseconds;

inline constexpr char kReady[] = "Ready";
inline constexpr char kProgressing[] = "Progressing";
inline constexpr char kDegraded[] = "Degraded";

// Progressing condition reasons; the Paused ones also say why the phase is Paused.
inline constexpr char kReasonInProgress[] = "RolloutInProgress";
inline constexpr char kReasonPaused[] = "Paused";
inline constexpr char kReasonWaitingForPromotion[] = "WaitingForPromotion";
inline constexpr char kReasonNoData[] = "NoData";
inline constexpr char kReasonDeadline[] = "ProgressDeadlineExceeded";
inline constexpr char kReasonComplete[] = "RolloutComplete";
inline constexpr char kReasonRolledBack[] = "RolledBack";

// status.history[].message's maxLength in the CRD.
inline constexpr size_t kMaxHistoryMessage = 1024;

// How soon a rolling update that holds for a status to catch up looks again, should the
// status's watch event not come first.
inline constexpr milliseconds kStatusRecheck{2000};

inline int32_t CeilPercent(int32_t total, int32_t percent) {
  return static_cast<int32_t>((static_cast<int64_t>(total) * percent + 99) / 100);
}

// When the canary's next analysis is due; nullopt when none should run.
std::optional<WallTime> NextAnalysisDue(const RolloutPolicy& policy,
                                        const ModelDeploymentStatus& status);

// The status form of a verdict, with the values that can be written.
AnalysisStatus ToAnalysisStatus(const Verdict& v);

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
  // The pods the revision has now: what it was asked for, or more while the pods of a
  // scale-down are not yet deleted.
  int32_t Pods(const std::string& rev) const {
    int32_t pods = CurrentReplicas(rev);
    auto it = in_.observed.find(rev);
    if (it != in_.observed.end() && it->second.pods) pods = std::max(pods, *it->second.pods);
    return pods;
  }
  // Whether the revision's status describes its current spec, with every pod it asked for
  // there: only then is a pod it does not count as Ready really not Ready.
  bool Settled(const std::string& rev) const {
    auto it = in_.observed.find(rev);
    if (it == in_.observed.end()) return true;  // no Deployment: no pods to know about
    const RevisionObservation& o = it->second;
    return o.status_current && o.pods.value_or(o.replicas) == o.replicas;
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

  // The model version a revision serves, when known.
  std::optional<std::string> ModelVersionOf(const std::string& rev) const {
    if (rev == in_.desired_revision && in_.desired_model_version) return in_.desired_model_version;
    const RevisionStatus* r = prev_.FindRevision(rev);
    return r ? r->model_version : std::nullopt;
  }
  // Appends the end of `rev`'s rollout to status.history (the oldest entries go past
  // kMaxHistory).
  void Record(const std::string& rev, std::string result, std::string reason, std::string message) {
    HistoryEntry e;
    e.revision = rev;
    e.model_version = ModelVersionOf(rev);
    e.result = std::move(result);
    if (!reason.empty()) e.reason = std::move(reason);
    // The schema bounds the message; an analysis message can be long.
    if (message.size() > kMaxHistoryMessage) message.resize(kMaxHistoryMessage);
    if (!message.empty()) e.message = std::move(message);
    e.time = TruncateToSeconds(now_);
    history_.push_back(std::move(e));
    if (history_.size() > kMaxHistory) {
      history_.erase(history_.begin(), history_.end() - kMaxHistory);
    }
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
  std::vector<HistoryEntry> history_;

  bool used_promote_ = false;
  bool used_abort_ = false;
  bool used_retry_ = false;
};

}  // namespace sluice::controllers::engine_internal
