#pragma once

// A ModelDeployment's world in miniature, for driving the rollout engine through whole
// lifecycles on explicit time: Deployments whose pods become Ready a fixed delay after they are
// asked for, a router whose per-revision traffic feeds a FakeMetricSource, and a reconcile step
// that does what the reconciler does — run the canary analysis when AnalysisWindow says it is
// due, call Decide, apply replicas, write the status, remove consumed annotations.
//
// Every decision is checked against the engine's invariants, and against the fixed-point
// property (deciding again on what was just written changes nothing and says nothing).

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/controllers/analysis/fake_metric_source.h"
#include "controllers/rollout/engine.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;

inline const WallTime kT0 = WallTime(seconds(1704067200));  // 2024-01-01T00:00:00Z

inline std::string Rev(const std::string& version) {
  return "md-" + version;
}

inline RolloutPolicy CanaryPolicy() {
  RolloutPolicy p;
  p.strategy = Strategy::kCanary;
  p.steps = {{10, seconds(30)}, {50, seconds(30)}, {100, seconds(0)}};
  p.analysis.interval = seconds(5);
  p.analysis.failure_threshold = 2;
  p.analysis.min_requests = 10;
  p.analysis.no_data = NoDataPolicy::kPause;
  p.analysis.metrics = {{"error-rate", BuiltinMetric::kErrorRate, "", std::nullopt, 0.01},
                        {"latency-p99", BuiltinMetric::kLatencyP99, "", std::nullopt, 0.5}};
  p.progress_deadline = std::chrono::minutes(10);
  p.scale_down_delay = seconds(30);
  return p;
}

struct TimedEvent {
  WallTime at;
  Event event;
};

class RolloutSim {
 public:
  struct Deployment {
    int32_t replicas = 0;
    int32_t ready = 0;
    std::deque<WallTime> starting;     // pods asked for and not Ready yet, oldest first
    std::optional<int32_t> max_ready;  // pods beyond this never become Ready (crash loops)
  };

  RolloutSim(RolloutPolicy policy, int32_t replicas) : policy_(std::move(policy)) {
    plan_.fixed = replicas;
  }

  // The spec now asks for model `version`; returns its revision.
  std::string Deploy(const std::string& version) {
    desired_ = Rev(version);
    version_ = version;
    return desired_;
  }
  void SetReplicas(int32_t n) { plan_.fixed = n; }
  void SetAutoscaled(std::map<std::string, int32_t> per_revision, int32_t min, int32_t max) {
    plan_.fixed.reset();
    plan_.autoscaled = std::move(per_revision);
    plan_.min_replicas = min;
    plan_.max_replicas = max;
  }
  void SetReadyDelay(milliseconds d) { ready_delay_ = d; }
  // The Deployment controller lags: the reconcile after a revision's replicas changed still
  // sees the status of its earlier size (observedGeneration behind, the earlier pods and Ready).
  void SetStatusLag(bool on) { status_lag_ = on; }
  void SetMaxReady(const std::string& rev, std::optional<int32_t> n) {
    deployments_[rev].max_ready = n;
    Settle();
  }
  void SetRequestRate(double per_second) { request_rate_ = per_second; }
  RolloutPolicy& policy() { return policy_; }
  FakeMetricSource& metrics() { return metrics_; }
  Controls& controls() { return controls_; }
  const ModelDeploymentStatus& status() const { return status_; }
  const RolloutDecision& last() const { return last_; }
  const std::vector<TimedEvent>& events() const { return events_; }
  WallTime now() const { return now_; }
  int analyses() const { return analyses_; }
  // The most pods there could have been at once: each reconcile's writes land one by one, in
  // an order the engine does not choose, so a revision counts with its larger size, before or
  // after.
  int32_t max_pods_in_flight() const { return max_pods_in_flight_; }

  int32_t Weight(const std::string& rev) const {
    for (const TrafficTarget& t : status_.traffic) {
      if (t.revision == rev) return t.weight;
    }
    return 0;
  }
  bool Exists(const std::string& rev) const { return deployments_.count(rev) > 0; }
  int32_t Replicas(const std::string& rev) const {
    auto it = deployments_.find(rev);
    return it == deployments_.end() ? 0 : it->second.replicas;
  }
  int32_t Ready(const std::string& rev) const {
    auto it = deployments_.find(rev);
    return it == deployments_.end() ? 0 : it->second.ready;
  }
  bool HasEvent(const std::string& reason) const {
    return std::any_of(events_.begin(), events_.end(),
                       [&](const TimedEvent& e) { return e.event.reason == reason; });
  }
  std::optional<WallTime> FirstEvent(const std::string& reason) const {
    for (const TimedEvent& e : events_) {
      if (e.event.reason == reason) return e.at;
    }
    return std::nullopt;
  }

  // One reconcile at now().
  const RolloutDecision& Reconcile() {
    RolloutInput in = BuildInput();
    if (std::optional<Window> w = AnalysisWindow(policy_, status_, now_)) {
      const std::string canary = status_.canary_revision.value_or("");
      metrics_.model(canary).requests_per_second = request_rate_ * Weight(canary) / 100.0;
      AnalysisSamples samples = CollectSamples(policy_.analysis, metrics_, canary, *w);
      in.verdict = Evaluate(policy_.analysis, samples, AnalysisHistoryFromStatus(status_));
      ++analyses_;
    }
    last_ = Decide(in);
    CheckInvariants(in, last_);
    for (const Event& e : last_.events) events_.push_back({now_, e});
    Apply(last_);
    CheckFixedPoint(in);
    return last_;
  }

  void Advance(milliseconds d) {
    now_ += d;
    Settle();
  }

  // Reconciles every `tick` until `done` holds after a reconcile, or `limit` has passed.
  bool RunUntil(const std::function<bool()>& done, milliseconds limit,
                milliseconds tick = seconds(1)) {
    const WallTime end = now_ + limit;
    while (true) {
      Reconcile();
      if (done()) return true;
      if (now_ + tick > end) return false;
      Advance(tick);
    }
  }
  void RunFor(milliseconds d, milliseconds tick = seconds(1)) {
    RunUntil([] { return false; }, d, tick);
  }

  // Reconciles only when the controller would: when the last decision's requeue_after is up, or
  // when a Deployment's readiness changes (its watch event). Proves that requeue_after alone
  // never lets a deadline slip.
  bool RunByRequeueUntil(const std::function<bool()>& done, milliseconds limit) {
    const WallTime end = now_ + limit;
    Reconcile();
    while (!done()) {
      std::optional<WallTime> next;
      if (last_.requeue_after) next = now_ + *last_.requeue_after;
      if (observed_changed_) next = now_;  // the Deployments' watch events
      if (std::optional<WallTime> pod = NextPodReady(); pod && (!next || *pod < *next)) {
        next = pod;
      }
      if (!next || *next > end) return false;
      Advance(std::chrono::ceil<milliseconds>(*next - now_));
      Reconcile();
    }
    return true;
  }

 private:
  RolloutInput BuildInput() const {
    RolloutInput in;
    in.desired_revision = desired_;
    in.desired_model_version = version_;
    in.desired_model_uri = "file:///models/" + version_ + ".json";
    in.policy = policy_;
    in.replicas = plan_;
    in.status = status_;
    for (const auto& [rev, d] : deployments_) {
      in.observed[rev] = {d.replicas, d.ready, d.replicas, true};
      if (auto it = lagging_.find(rev); it != lagging_.end()) {
        in.observed[rev] = {d.replicas, it->second.second, it->second.first, false};
      }
    }
    in.controls = controls_;
    in.now = now_;
    in.generation = 1;
    return in;
  }

  void Apply(const RolloutDecision& d) {
    // The status goes through the API as JSON: what does not survive that is not state.
    status_ = nlohmann::json(d.status).get<ModelDeploymentStatus>();
    std::map<std::string, Deployment> next;
    observed_changed_ = false;
    int32_t in_flight = 0;
    for (const auto& [rev, dep] : deployments_) {
      int32_t larger = dep.replicas;
      for (const DesiredRevision& r : d.revisions) {
        if (r.name == rev) larger = std::max(larger, r.replicas);
      }
      in_flight += larger;
    }
    for (const DesiredRevision& r : d.revisions) {
      if (!deployments_.count(r.name)) in_flight += r.replicas;
    }
    max_pods_in_flight_ = std::max(max_pods_in_flight_, in_flight);
    for (const DesiredRevision& r : d.revisions) {
      Deployment dep = deployments_[r.name];
      const int32_t ready = dep.ready;
      Scale(dep, r.replicas);
      observed_changed_ |= dep.ready != ready;
      next[r.name] = dep;
    }
    observed_changed_ |= next.size() != deployments_.size();
    lagging_.clear();
    for (const auto& [rev, dep] : next) {
      auto before = deployments_.find(rev);
      const bool existed = before != deployments_.end();
      if (!status_lag_ || dep.replicas == (existed ? before->second.replicas : 0)) continue;
      lagging_[rev] = existed ? std::make_pair(before->second.replicas, before->second.ready)
                              : std::make_pair(0, 0);
    }
    deployments_ = std::move(next);
    for (const std::string& a : d.consumed_annotations) {
      if (a == api::kPromoteAnnotation) controls_.promote_step = controls_.promote_full = false;
      if (a == api::kAbortAnnotation) controls_.abort = false;
      if (a == api::kRetryAnnotation) controls_.retry = false;
    }
  }

  void Scale(Deployment& d, int32_t replicas) {
    while (d.replicas < replicas) {
      d.starting.push_back(now_);
      ++d.replicas;
    }
    while (d.replicas > replicas) {
      if (!d.starting.empty()) {
        d.starting.pop_back();
      } else {
        --d.ready;
      }
      --d.replicas;
    }
    d.ready = std::min(d.ready, d.replicas);
  }

  void Settle() {
    for (auto& [rev, d] : deployments_) {
      while (!d.starting.empty() && d.starting.front() + ready_delay_ <= now_ &&
             (!d.max_ready || d.ready < *d.max_ready)) {
        d.starting.pop_front();
        ++d.ready;
      }
      if (d.max_ready && d.ready > *d.max_ready) {
        // Pods that stop being Ready go back to starting (a restart).
        while (d.ready > *d.max_ready) {
          --d.ready;
          d.starting.push_back(now_);
        }
      }
    }
  }

  std::optional<WallTime> NextPodReady() const {
    std::optional<WallTime> next;
    for (const auto& [rev, d] : deployments_) {
      if (d.starting.empty() || (d.max_ready && d.ready >= *d.max_ready)) continue;
      const WallTime t = d.starting.front() + ready_delay_;
      if (!next || t < *next) next = t;
    }
    return next;
  }

  int32_t FullSize() const {
    if (plan_.fixed) return *plan_.fixed;
    return -1;  // not checked under autoscaling
  }

  void CheckInvariants(const RolloutInput& in, const RolloutDecision& d) const {
    const std::string when = " at +" + std::to_string((now_ - kT0) / seconds(1)) + "s";
    const ModelDeploymentStatus& st = d.status;
    auto ready = [&](const std::string& rev) {
      auto it = in.observed.find(rev);
      return it == in.observed.end() ? 0 : it->second.ready_replicas;
    };
    int32_t sum = 0;
    for (const TrafficTarget& t : st.traffic) {
      sum += t.weight;
      EXPECT_GE(t.weight, 0) << when;
      if (t.weight > 0 || t.mirror_percent.value_or(0) > 0) {
        EXPECT_GT(ready(t.revision), 0) << "traffic to " << t.revision << " with 0 Ready" << when;
      }
    }
    if (st.traffic.empty()) {
      // Empty only when nothing can serve, or when scaled to zero on purpose.
      for (const DesiredRevision& r : d.revisions) {
        if (FullSize() == 0) break;
        EXPECT_EQ(ready(r.name), 0) << "no traffic while " << r.name << " is Ready" << when;
      }
    } else {
      EXPECT_EQ(sum, 100) << "weights sum" << when;
    }
    const std::string stable = st.stable_revision.value_or("");
    const std::string canary = st.canary_revision.value_or("");
    auto weight = [&](const std::string& rev) {
      for (const TrafficTarget& t : st.traffic) {
        if (t.revision == rev) return t.weight;
      }
      return 0;
    };
    auto replicas = [&](const std::string& rev) {
      for (const DesiredRevision& r : d.revisions) {
        if (r.name == rev) return r.replicas;
      }
      return -1;
    };
    const int32_t full = FullSize();
    if (!canary.empty() && !stable.empty() && ready(stable) > 0 && full > 0 &&
        policy_.strategy == Strategy::kCanary) {
      EXPECT_LE(weight(canary), 100 * ready(canary) / full)
          << "canary weight above its Ready share" << when;
    }
    if (st.phase == Phase::kRolledBack && ready(stable) > 0) {
      EXPECT_EQ(weight(canary), 0) << "rolled-back canary takes traffic" << when;
    }
    for (const TrafficTarget& t : st.traffic) {
      if (t.weight == 0) continue;
      EXPECT_GE(replicas(t.revision), 1) << t.revision << " serves but is scaled away" << when;
      if (t.revision == stable && full > 0 && policy_.strategy == Strategy::kCanary) {
        EXPECT_GE(replicas(stable), full) << "stable scaled below full during a canary" << when;
      }
    }
  }

  // Deciding again on the status just written, with the replicas applied and nothing new
  // observed (Ready counts as they were), must change nothing.
  void CheckFixedPoint(const RolloutInput& before) {
    RolloutInput again = before;
    again.status = status_;
    again.verdict.reset();
    again.controls = controls_;
    for (const DesiredRevision& r : last_.revisions) again.observed[r.name].replicas = r.replicas;
    RolloutDecision d = Decide(again);
    const std::string when = " at +" + std::to_string((now_ - kT0) / seconds(1)) + "s";
    const nlohmann::json patch =
        nlohmann::json::diff(nlohmann::json(status_), nlohmann::json(d.status));
    EXPECT_TRUE(patch.empty()) << "not a fixed point" << when << ": " << patch.dump();
    EXPECT_TRUE(d.events.empty()) << "events on a repeat: " << d.events.front().reason << when;
    for (const DesiredRevision& r : d.revisions) {
      EXPECT_EQ(r.replicas, Replicas(r.name)) << r.name << " replicas moved on a repeat" << when;
    }
  }

  RolloutPolicy policy_;
  ReplicaPlan plan_;
  std::string desired_;
  std::string version_;
  ModelDeploymentStatus status_;
  std::map<std::string, Deployment> deployments_;
  Controls controls_;
  FakeMetricSource metrics_;
  double request_rate_ = 100;
  milliseconds ready_delay_ = seconds(3);
  WallTime now_ = kT0;
  RolloutDecision last_;
  std::vector<TimedEvent> events_;
  int analyses_ = 0;
  int32_t max_pods_in_flight_ = 0;
  bool status_lag_ = false;
  std::map<std::string, std::pair<int32_t, int32_t>> lagging_;  // revision → earlier pods, Ready
  bool observed_changed_ = false;  // the last Apply changed what the next reconcile observes
};

}  // namespace sluice::controllers::testing
