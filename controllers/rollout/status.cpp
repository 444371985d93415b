// What a decision writes: traffic from the planned weights and readiness, replicas for retired
// revisions, the status fields, the revisions list, the conditions and the events they imply.

#include <algorithm>

#include "controllers/rollout/engine_internal.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers::engine_internal {

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
  st.history = history_;

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

}  // namespace sluice::controllers::engine_internal
