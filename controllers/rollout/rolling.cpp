// Rolling strategy: the new revision grows and the old ones shrink within maxSurge and
// maxUnavailable; traffic follows the Ready pods that stay.

#include <algorithm>

#include "controllers/rollout/engine_internal.h"
#include "lib/api/duration.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers::engine_internal {

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
    if (Pods(rev) > 0 || Ready(rev) > 0) olds.push_back(rev);
  };
  for (const auto& [rev, when] : retired_) add_old(rev);
  add_old(stable_);

  const bool paused = in_.controls.pause;
  const int32_t new_current = CurrentReplicas(canary_);
  const int32_t new_ready = std::min(Ready(canary_), new_current);
  // The budget below trusts Ready counts: of the pods that stay, and that a pod not counted is
  // not Ready. A status that still describes an earlier size (the Deployment controller has not
  // acted on the last change yet) backs neither, so the old revisions keep their pods until
  // every status has caught up; its update is a watch event, the requeue a safety net.
  bool settled = Settled(canary_);
  for (const std::string& rev : olds) settled = settled && Settled(rev);
  std::map<std::string, int32_t> next;
  int32_t old_total = 0;
  if (paused || !settled) {
    for (const std::string& rev : olds) next[rev] = CurrentReplicas(rev);
    if (!paused) Wake(now_ + kStatusRecheck);
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
  // The new revision grows into the room the old revisions' pods leave now, not the room they
  // will leave: the reconciler writes the growth before the scale-downs (those wait for the
  // status), and a ReplicaSet takes a moment to delete pods, so growing into planned room has
  // replicas + maxSurge + 1 pods for a while. It grows on the reconcile after the old pods go.
  // Every other Deployment counts, a dropped one too until the cache sees it gone: its pods are
  // there until the garbage collector deletes them.
  int32_t old_pods = 0;
  for (const auto& [rev, o] : in_.observed) {
    if (rev != canary_) old_pods += Pods(rev);
  }
  for (const std::string& rev : olds) {
    if (!in_.observed.count(rev)) old_pods += std::max(Pods(rev), next[rev]);
  }
  int32_t new_next = new_current;
  if (!paused) {
    new_next = new_current >= n ? n : std::min(n, std::max(new_current, n + surge - old_pods));
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
    const std::string message =
        "revision " + Describe(stable_) + " replaced " + old + " and takes all traffic";
    Emit(EventType::kNormal, kReasonComplete, message);
    Record(stable_, "Promoted", kReasonComplete, message);
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
                         std::to_string(n) + " pods Ready, " + std::to_string(old_pods) +
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

}  // namespace sluice::controllers::engine_internal
