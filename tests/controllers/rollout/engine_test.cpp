// Single decisions of the rollout engine on hand-built inputs: each path's exact output.

#include "controllers/rollout/engine.h"

#include <gtest/gtest.h>

#include "lib/api/object_labels.h"
#include "tests/controllers/rollout/rollout_sim.h"

namespace sluice::controllers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::kT0;
using testing::Rev;

const std::string v1 = Rev("v1");
const std::string v2 = Rev("v2");
const std::string v3 = Rev("v3");

RolloutInput Input(const std::string& desired, int32_t replicas = 4) {
  RolloutInput in;
  in.desired_revision = desired;
  in.desired_model_version = desired.substr(3);
  in.policy = testing::CanaryPolicy();
  in.replicas.fixed = replicas;
  in.now = kT0;
  in.generation = 3;
  return in;
}

// A status with v1 stable and Healthy, all 4 pods Ready.
ModelDeploymentStatus HealthyOn(const std::string& rev) {
  ModelDeploymentStatus s;
  s.phase = Phase::kHealthy;
  s.stable_revision = rev;
  s.traffic = {{rev, 100, std::nullopt}};
  s.revisions = {{rev, "1", std::nullopt, 4, 4, std::nullopt}};
  return s;
}

// v2 in canary at `step` over stable v1, its weight taking effect at `step_start`.
ModelDeploymentStatus CanaryStatus(int32_t step, std::optional<WallTime> step_start,
                                   int32_t weight) {
  ModelDeploymentStatus s = HealthyOn(v1);
  s.phase = Phase::kProgressing;
  s.canary_revision = v2;
  s.current_step = step;
  s.current_step_start_time = step_start;
  s.canary_weight = weight;
  s.traffic = {{v1, 100 - weight, std::nullopt}};
  if (weight > 0) s.traffic.push_back({v2, weight, std::nullopt});
  s.revisions.push_back({v2, "2", std::nullopt, 2, 2, std::nullopt});
  return s;
}

Verdict PassFor(const std::string& rev, WallTime at) {
  Verdict v;
  v.revision = rev;
  v.time = at;
  v.window = {at - seconds(5), at};
  v.outcome = Outcome::kPass;
  v.requests = 100;
  v.metrics = {{"error-rate", 0.0, std::nullopt, 0.01, Outcome::kPass}};
  v.message = "error-rate 0 within [-, 0.01]";
  return v;
}

int32_t WeightOf(const RolloutDecision& d, const std::string& rev) {
  for (const TrafficTarget& t : d.status.traffic) {
    if (t.revision == rev) return t.weight;
  }
  return 0;
}

int32_t ReplicasOf(const RolloutDecision& d, const std::string& rev) {
  for (const DesiredRevision& r : d.revisions) {
    if (r.name == rev) return r.replicas;
  }
  return -1;
}

bool HasEvent(const RolloutDecision& d, const std::string& reason) {
  for (const Event& e : d.events) {
    if (e.reason == reason) return true;
  }
  return false;
}

TEST(DecideTest, FirstDeployWaitsForReadyPodsUntilTheDeadline) {
  RolloutInput in = Input(v1);
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kProgressing);
  EXPECT_EQ(d.status.canary_revision, v1);
  EXPECT_FALSE(d.status.stable_revision.has_value());
  EXPECT_TRUE(d.status.traffic.empty());
  EXPECT_EQ(ReplicasOf(d, v1), 4);
  EXPECT_EQ(d.status.last_progress_time, kT0);
  EXPECT_EQ(d.requeue_after, std::chrono::minutes(10));  // only the deadline is timed
  const Condition* ready = d.status.FindCondition("Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, "NoStableRevision");
  EXPECT_EQ(ready->observed_generation, 3);
  EXPECT_TRUE(HasEvent(d, "RolloutStarted"));

  // Two of four Ready: route to them, still not stable.
  in.status = d.status;
  in.observed[v1] = {4, 2};
  in.now = kT0 + seconds(5);
  d = Decide(in);
  EXPECT_EQ(WeightOf(d, v1), 100);
  EXPECT_EQ(d.status.phase, Phase::kProgressing);
  EXPECT_EQ(d.status.last_progress_time, kT0 + seconds(5));  // new Ready pods are progress

  in.status = d.status;
  in.observed[v1] = {4, 4};
  d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kHealthy);
  EXPECT_EQ(d.status.stable_revision, v1);
  EXPECT_FALSE(d.status.canary_revision.has_value());
  EXPECT_FALSE(d.status.last_progress_time.has_value());
  EXPECT_FALSE(d.requeue_after.has_value());
  EXPECT_EQ(d.status.FindCondition("Ready")->status, "True");
  EXPECT_EQ(d.status.replicas, 4);
  EXPECT_EQ(d.status.ready_replicas, 4);
}

TEST(DecideTest, AFirstDeployWhoseModelNeverLoadsIsDegradedAtTheDeadlineAndRecovers) {
  RolloutInput in = Input(v1);
  RolloutDecision d = Decide(in);
  in.status = d.status;
  in.observed[v1] = {4, 0};
  in.now = kT0 + std::chrono::minutes(10) - seconds(1);
  d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kProgressing);
  EXPECT_EQ(d.requeue_after, seconds(1));  // woken at the deadline

  in.status = d.status;
  in.now = kT0 + std::chrono::minutes(10);
  d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kDegraded);
  EXPECT_EQ(d.status.canary_revision, v1);
  EXPECT_FALSE(d.status.stable_revision.has_value());
  EXPECT_TRUE(d.status.traffic.empty());
  EXPECT_EQ(ReplicasOf(d, v1), 4);  // its pods stay, to become Ready if they can
  const Condition* degraded = d.status.FindCondition("Degraded");
  ASSERT_NE(degraded, nullptr);
  EXPECT_EQ(degraded->status, "True");
  EXPECT_EQ(degraded->reason, "ProgressDeadlineExceeded");
  EXPECT_NE(degraded->message.find("never became ready"), std::string::npos) << degraded->message;
  EXPECT_NE(degraded->message.find("0/4 pods Ready"), std::string::npos) << degraded->message;
  const Condition* progressing = d.status.FindCondition("Progressing");
  ASSERT_NE(progressing, nullptr);
  EXPECT_EQ(progressing->status, "False");
  EXPECT_EQ(progressing->reason, "ProgressDeadlineExceeded");
  EXPECT_EQ(d.status.FindCondition("Ready")->status, "False");
  ASSERT_TRUE(HasEvent(d, "ProgressDeadlineExceeded"));
  for (const Event& e : d.events) {
    if (e.reason == "ProgressDeadlineExceeded") {
      EXPECT_EQ(e.type, EventType::kWarning);
      EXPECT_EQ(e.message, degraded->message);
    }
  }

  // Still nothing Ready: it stays Degraded, with no second event.
  in.status = d.status;
  in.now += seconds(30);
  d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kDegraded);
  EXPECT_FALSE(HasEvent(d, "ProgressDeadlineExceeded"));

  // The pods become Ready after all: it recovers.
  in.status = d.status;
  in.observed[v1] = {4, 4};
  in.now += seconds(30);
  d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kHealthy);
  EXPECT_EQ(d.status.stable_revision, v1);
  EXPECT_EQ(d.status.FindCondition("Degraded")->status, "False");
  EXPECT_EQ(d.status.FindCondition("Ready")->status, "True");
  EXPECT_EQ(WeightOf(d, v1), 100);
}

TEST(DecideTest, HealthyIsQuietAndFollowsTheReplicaCount) {
  RolloutInput in = Input(v1);
  in.status = HealthyOn(v1);
  in.observed[v1] = {4, 4};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kHealthy);
  EXPECT_TRUE(d.events.empty());
  EXPECT_FALSE(d.requeue_after.has_value());
  EXPECT_TRUE(d.consumed_annotations.empty());
  ASSERT_EQ(d.revisions.size(), 1u);
  EXPECT_EQ(d.revisions[0].role, RevisionRole::kStable);
  in.replicas.fixed = 6;
  d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v1), 6);
  EXPECT_EQ(d.status.FindCondition("Ready")->status, "False");  // 4 of 6 Ready
  EXPECT_EQ(d.status.phase, Phase::kHealthy);
}

TEST(DecideTest, NewSpecStartsACanaryAtStepZero) {
  RolloutInput in = Input(v2);
  in.status = HealthyOn(v1);
  in.observed[v1] = {4, 4};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kProgressing);
  EXPECT_EQ(d.status.stable_revision, v1);
  EXPECT_EQ(d.status.canary_revision, v2);
  EXPECT_EQ(d.status.current_step, 0);
  EXPECT_FALSE(d.status.current_step_start_time.has_value());
  EXPECT_EQ(d.status.canary_weight, 0);
  EXPECT_EQ(WeightOf(d, v1), 100);
  EXPECT_EQ(ReplicasOf(d, v2), 1);  // 10% of 4, rounded up
  EXPECT_EQ(ReplicasOf(d, v1), 4);
  EXPECT_TRUE(HasEvent(d, "RolloutStarted"));
  const RevisionStatus* r = d.status.FindRevision(v2);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->model_version, "v2");
}

TEST(DecideTest, StepStartsWhenItsWeightTakesEffect) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(0, std::nullopt, 0);
  in.observed = {{v1, {4, 4}}, {v2, {1, 1}}};
  in.now = kT0 + milliseconds(1700);
  RolloutDecision d = Decide(in);
  EXPECT_EQ(WeightOf(d, v2), 10);
  EXPECT_EQ(WeightOf(d, v1), 90);
  EXPECT_EQ(d.status.canary_weight, 10);
  EXPECT_EQ(d.status.current_step_start_time, kT0 + seconds(1));  // whole seconds, as stored
  // Next: the first analysis, one interval after the weight took effect.
  EXPECT_EQ(d.requeue_after, milliseconds(4300));
  EXPECT_EQ(d.status.phase, Phase::kProgressing);
}

TEST(DecideTest, CanaryWeightIsCappedByItsReadyShare) {
  RolloutInput in = Input(v2, 10);
  in.status = CanaryStatus(1, std::nullopt, 10);
  in.observed = {{v1, {10, 10}}, {v2, {5, 3}}};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v2), 5);  // 50% of 10
  EXPECT_EQ(WeightOf(d, v2), 30);   // 3 of 10 Ready
  EXPECT_EQ(WeightOf(d, v1), 70);
  EXPECT_FALSE(d.status.current_step_start_time.has_value());
  EXPECT_NE(d.status.FindCondition("Progressing")->message.find("waiting for Ready pods"),
            std::string::npos);
}

TEST(DecideTest, NoWeightOnACanaryWithNothingReady) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {2, 0}}};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(WeightOf(d, v2), 0);
  EXPECT_EQ(WeightOf(d, v1), 100);
  ASSERT_EQ(d.status.traffic.size(), 1u);
}

TEST(DecideTest, AStableWithNothingReadyHandsItsTrafficToWhatCanServe) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(0, kT0 - seconds(10), 10);
  in.observed = {{v1, {4, 0}}, {v2, {1, 1}}};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(WeightOf(d, v2), 100);
  EXPECT_EQ(d.status.FindCondition("Ready")->status, "False");
  in.observed[v2] = {1, 0};
  d = Decide(in);
  EXPECT_TRUE(d.status.traffic.empty());
}

TEST(DecideTest, AStepNeedsItsPauseAndAPassingCheckWithinIt) {
  const WallTime start = kT0 - seconds(40);
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(0, start, 10);
  in.observed = {{v1, {4, 4}}, {v2, {1, 1}}};
  // The pause is over but the only check ended 3 s into the step: not evidence about it.
  in.status.last_analysis = AnalysisStatus{start + seconds(3), "Pass", std::nullopt, 100, 0, ""};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.current_step, 0);
  EXPECT_EQ(d.requeue_after, milliseconds(100));  // the next check is overdue

  // A fresh passing check: the step is done.
  in.verdict = PassFor(v2, kT0);
  d = Decide(in);
  EXPECT_EQ(d.status.current_step, 1);
  EXPECT_TRUE(HasEvent(d, "StepAdvanced"));
  EXPECT_EQ(ReplicasOf(d, v2), 2);
  EXPECT_EQ(WeightOf(d, v2), 25);  // 1 of 4 Ready while the second pod starts
  EXPECT_EQ(d.status.last_analysis->time, kT0);

  // The same check, but the pause still has 10 s to go.
  in.status.current_step_start_time = kT0 - seconds(20);
  d = Decide(in);
  EXPECT_EQ(d.status.current_step, 0);
  EXPECT_EQ(d.requeue_after, seconds(5));  // the next check comes before the pause ends
}

TEST(DecideTest, AFailedCheckBelowTheThresholdHoldsTheStep) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(0, kT0 - seconds(40), 10);
  in.observed = {{v1, {4, 4}}, {v2, {1, 1}}};
  Verdict v = PassFor(v2, kT0);
  v.outcome = Outcome::kFail;
  v.consecutive_failures = 1;
  v.message = "error-rate 0.05 > max 0.01";
  in.verdict = v;
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.current_step, 0);
  EXPECT_EQ(d.status.phase, Phase::kProgressing);
  EXPECT_EQ(d.status.last_analysis->verdict, "Fail");
  EXPECT_EQ(d.status.last_analysis->consecutive_failures, 1);
  EXPECT_EQ(WeightOf(d, v2), 10);
}

TEST(DecideTest, ATrippedRouterGuardRollsBackWithItsOwnReason) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(0, kT0 - seconds(10), 10);
  in.observed = {{v1, {4, 4}}, {v2, {1, 1}}};
  Verdict v = PassFor(v2, kT0);
  v.outcome = Outcome::kFail;
  v.consecutive_failures = 1;
  v.failed = true;
  v.guard_tripped = true;
  v.message = "router guard tripped: ...";
  in.verdict = v;
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kRolledBack);
  EXPECT_EQ(WeightOf(d, v1), 100);
  EXPECT_EQ(d.status.FindCondition("Degraded")->reason, "RouterGuardTripped");
  EXPECT_TRUE(HasEvent(d, "RouterGuardTripped"));
}

TEST(DecideTest, AFailedAnalysisRollsBackAtOnceWithTheMeasuredValues) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {2, 2}}};
  Verdict v = PassFor(v2, kT0);
  v.outcome = Outcome::kFail;
  v.consecutive_failures = 2;
  v.failed = true;
  v.metrics = {{"error-rate", 0.2, std::nullopt, 0.01, Outcome::kFail}};
  v.message = "error-rate 0.2 > max 0.01; requests 100; failure 2 of 2";
  in.verdict = v;
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kRolledBack);
  EXPECT_EQ(WeightOf(d, v1), 100);
  EXPECT_EQ(d.status.canary_weight, 0);
  EXPECT_EQ(d.status.canary_revision, v2);
  EXPECT_FALSE(d.status.current_step.has_value());
  EXPECT_EQ(ReplicasOf(d, v2), 2);  // kept for scaleDownDelay
  EXPECT_EQ(d.status.FindRevision(v2)->scale_down_time, kT0 + seconds(30));
  EXPECT_EQ(d.requeue_after, seconds(30));
  const Condition* degraded = d.status.FindCondition("Degraded");
  EXPECT_EQ(degraded->status, "True");
  EXPECT_EQ(degraded->reason, "AnalysisFailed");
  EXPECT_NE(degraded->message.find("error-rate 0.2 > max 0.01"), std::string::npos);
  EXPECT_EQ(d.status.FindCondition("Progressing")->status, "False");
  EXPECT_EQ(d.status.last_analysis->values->at("error-rate"), 0.2);
  ASSERT_TRUE(HasEvent(d, "AnalysisFailed"));
  EXPECT_EQ(d.events[0].type, EventType::kWarning);

  // After the delay the canary goes; the phase stays until a new spec or a retry.
  in.status = d.status;
  in.verdict.reset();
  in.now = kT0 + seconds(30);
  d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v2), 0);
  EXPECT_EQ(d.status.phase, Phase::kRolledBack);
  EXPECT_EQ(d.status.FindCondition("Degraded")->reason, "AnalysisFailed");
  EXPECT_TRUE(HasEvent(d, "ScaledDown"));
  in.status = d.status;
  in.observed[v2] = {0, 0};
  d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v2), -1);  // gone from the list
  EXPECT_EQ(d.status.canary_revision, v2);
  EXPECT_EQ(d.status.FindCondition("Degraded")->status, "True");
}

TEST(DecideTest, VerdictsForAnotherRevisionOrOlderThanTheLastAreIgnored) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(0, kT0 - seconds(40), 10);
  in.status.last_analysis = AnalysisStatus{kT0, "Pass", std::nullopt, 100, 0, ""};
  in.observed = {{v1, {4, 4}}, {v2, {1, 1}}};
  Verdict v = PassFor(v3, kT0 + seconds(5));
  v.outcome = Outcome::kFail;
  v.failed = true;
  in.verdict = v;
  in.now = kT0 + seconds(5);
  EXPECT_NE(Decide(in).status.phase, Phase::kRolledBack);
  v.revision = v2;
  v.time = kT0;  // not newer than status.lastAnalysis
  in.verdict = v;
  EXPECT_NE(Decide(in).status.phase, Phase::kRolledBack);
}

TEST(DecideTest, AbortIsConsumedAndRollsBack) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {2, 2}}};
  in.controls.abort = true;
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kRolledBack);
  EXPECT_EQ(WeightOf(d, v1), 100);
  EXPECT_EQ(d.status.FindCondition("Degraded")->reason, "Aborted");
  EXPECT_EQ(d.consumed_annotations, std::vector<std::string>{api::kAbortAnnotation});
  EXPECT_FALSE(HasEvent(d, "ControlIgnored"));
}

TEST(DecideTest, ControlsWithNothingToActOnAreConsumedWithAnEvent) {
  RolloutInput in = Input(v1);
  in.status = HealthyOn(v1);
  in.observed[v1] = {4, 4};
  in.controls.promote_full = true;
  in.controls.abort = true;
  in.controls.retry = true;
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kHealthy);
  EXPECT_EQ(d.consumed_annotations.size(), 3u);
  int ignored = 0;
  for (const Event& e : d.events) ignored += e.reason == "ControlIgnored";
  EXPECT_EQ(ignored, 3);
}

TEST(DecideTest, RolledBackStaysUntilRetryOrANewSpec) {
  RolloutInput in = Input(v2);
  in.status = HealthyOn(v1);
  in.status.phase = Phase::kRolledBack;
  in.status.canary_revision = v2;
  in.status.conditions = {{"Degraded", "True", 3, kT0 - seconds(60), "AnalysisFailed", "bad"}};
  in.observed = {{v1, {4, 4}}};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kRolledBack);
  EXPECT_EQ(WeightOf(d, v1), 100);
  EXPECT_EQ(d.status.FindCondition("Degraded")->reason, "AnalysisFailed");
  EXPECT_EQ(d.status.FindCondition("Degraded")->last_transition_time, kT0 - seconds(60));
  EXPECT_TRUE(d.events.empty());

  in.controls.retry = true;
  d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kProgressing);
  EXPECT_EQ(d.status.current_step, 0);
  EXPECT_EQ(ReplicasOf(d, v2), 1);
  EXPECT_EQ(d.status.FindCondition("Degraded")->status, "False");
  EXPECT_EQ(d.consumed_annotations, std::vector<std::string>{api::kRetryAnnotation});

  in.controls.retry = false;
  in.desired_revision = v1;  // the spec went back to the stable
  d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kHealthy);
  EXPECT_FALSE(d.status.canary_revision.has_value());
  EXPECT_TRUE(HasEvent(d, "Reverted"));
}

TEST(DecideTest, UnpausedAnIndefiniteStepWaitsForPromote) {
  RolloutInput in = Input(v2);
  in.policy.steps = {{10, std::nullopt}, {100, seconds(0)}};
  in.status = CanaryStatus(0, kT0 - std::chrono::hours(5), 10);
  in.status.last_analysis = AnalysisStatus{kT0 - seconds(1), "Pass", std::nullopt, 100, 0, ""};
  in.observed = {{v1, {4, 4}}, {v2, {1, 1}}};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.current_step, 0);
  EXPECT_EQ(d.status.phase, Phase::kPaused);
  EXPECT_EQ(d.status.FindCondition("Progressing")->reason, "WaitingForPromotion");
  EXPECT_EQ(d.status.FindCondition("Progressing")->status, "True");
  EXPECT_TRUE(HasEvent(d, "WaitingForPromotion"));
  in.controls.promote_step = true;
  d = Decide(in);
  EXPECT_EQ(d.status.current_step, 1);
  EXPECT_TRUE(HasEvent(d, "StepPromoted"));
  EXPECT_EQ(ReplicasOf(d, v2), 4);
}

TEST(DecideTest, ConditionsKeepTheirTransitionTimeWhileUnchanged) {
  RolloutInput in = Input(v1);
  in.observed[v1] = {4, 4};
  RolloutDecision d = Decide(in);
  const WallTime first = d.status.FindCondition("Ready")->last_transition_time;
  EXPECT_EQ(first, kT0);
  in.status = d.status;
  in.now = kT0 + seconds(100);
  d = Decide(in);
  EXPECT_EQ(d.status.FindCondition("Ready")->last_transition_time, first);
  in.status = d.status;
  in.observed[v1] = {4, 1};
  in.now = kT0 + seconds(200);
  d = Decide(in);
  EXPECT_EQ(d.status.FindCondition("Ready")->status, "False");
  EXPECT_EQ(d.status.FindCondition("Ready")->last_transition_time, kT0 + seconds(200));
}

TEST(DecideTest, ARetiredRevisionWhoseTimeWasLostGoesAtOnce) {
  RolloutInput in = Input(v2);
  in.status = HealthyOn(v2);
  in.status.revisions.push_back({v1, "1", std::nullopt, 4, 4, std::nullopt});
  in.observed = {{v2, {4, 4}}, {v1, {4, 4}}};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v1), 0);
  EXPECT_EQ(WeightOf(d, v1), 0);
}

TEST(DecideTest, ScaledToZeroSwitchesRevisionsAtOnce) {
  RolloutInput in = Input(v2, 0);
  in.status = HealthyOn(v1);
  in.observed = {{v1, {4, 4}}};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.status.phase, Phase::kHealthy);
  EXPECT_EQ(d.status.stable_revision, v2);
  EXPECT_EQ(ReplicasOf(d, v1), 0);
  EXPECT_EQ(ReplicasOf(d, v2), 0);
  EXPECT_TRUE(d.status.traffic.empty() || WeightOf(d, v1) == 100);
}

TEST(DecideTest, RequeueFollowsThePauseAndTheScaleDownDelay) {
  RolloutInput in = Input(v2);
  in.policy.analysis.metrics.clear();  // no analysis: only the pause is timed
  in.status = CanaryStatus(0, kT0 - seconds(12), 10);
  in.status.revisions.push_back({v3, "3", std::nullopt, 1, 1, kT0 + seconds(7)});
  in.observed = {{v1, {4, 4}}, {v2, {1, 1}}, {v3, {1, 1}}};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(d.requeue_after, seconds(7));  // v3's pods go before the pause ends (18 s)
  EXPECT_EQ(ReplicasOf(d, v3), 1);
  in.status.revisions.pop_back();
  in.observed.erase(v3);
  d = Decide(in);
  EXPECT_EQ(d.requeue_after, seconds(18));
}

// v2 rolling over v1 (3 replicas, maxSurge 1, maxUnavailable 0): v2 has `new_ready` Ready of
// `new_replicas`, v1 runs 3.
RolloutInput RollingInput(int32_t new_replicas, int32_t new_ready) {
  RolloutInput in = Input(v2, 3);
  in.policy.strategy = Strategy::kRolling;
  in.policy.max_surge = {1, false};
  in.policy.max_unavailable = {0, false};
  in.status = HealthyOn(v1);
  in.status.phase = Phase::kProgressing;
  in.status.canary_revision = v2;
  in.status.canary_weight = 0;
  in.status.revisions = {{v1, "1", std::nullopt, 3, 3, std::nullopt},
                         {v2, "2", std::nullopt, new_replicas, new_ready, std::nullopt}};
  in.observed[v1] = {3, 3, 3, true};
  in.observed[v2] = {new_replicas, new_ready, new_replicas, true};
  return in;
}

TEST(DecideTest, RollingGrowsOnlyIntoRoomTheOldPodsHaveLeft) {
  // v2's first pod is Ready: one v1 pod may go, and v2 may grow by one, but not in the same
  // decision: the growth is written before the scale-down, and the pod takes a moment to go.
  RolloutInput in = RollingInput(1, 1);
  RolloutDecision d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v1), 2);
  EXPECT_EQ(ReplicasOf(d, v2), 1);
  // Scaled down, its pod still there: still no room.
  in.status = d.status;
  in.observed[v1] = {2, 3, 3, true};
  d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v1), 2);
  EXPECT_EQ(ReplicasOf(d, v2), 1);
  // Gone.
  in.observed[v1] = {2, 2, 2, true};
  d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v1), 2);
  EXPECT_EQ(ReplicasOf(d, v2), 2);
}

TEST(DecideTest, RollingKeepsOldPodsWhoseStatusDescribesAnEarlierSize) {
  // v1's Deployment was asked for 3 and its status still describes the earlier 2: the third
  // pod's readiness is unknown, not "not Ready", and removing it may cost availability.
  RolloutInput in = RollingInput(1, 1);
  in.observed[v1] = {3, 2, 2, false};
  RolloutDecision d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v1), 3);
  EXPECT_EQ(ReplicasOf(d, v2), 1);
  ASSERT_TRUE(d.requeue_after.has_value());
  EXPECT_LE(*d.requeue_after, seconds(2));
  // The status catches up: the budget applies again.
  in.status = d.status;
  in.observed[v1] = {3, 3, 3, true};
  d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v1), 2);
  // And the same while v2's status lags its growth: no old pod goes on counts it has not seen.
  in.observed[v1] = {3, 3, 3, true};
  in.observed[v2] = {2, 1, 1, false};
  d = Decide(in);
  EXPECT_EQ(ReplicasOf(d, v1), 3);
}

TEST(AnalysisWindowTest, DueOneIntervalAfterTheLastCheckOrTheStepStart) {
  const RolloutPolicy policy = testing::CanaryPolicy();
  ModelDeploymentStatus s = CanaryStatus(0, kT0, 10);
  EXPECT_FALSE(AnalysisWindow(policy, s, kT0 + seconds(4)).has_value());
  std::optional<Window> w = AnalysisWindow(policy, s, kT0 + seconds(5));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->start, kT0);
  EXPECT_EQ(w->end, kT0 + seconds(5));
  s.last_analysis = AnalysisStatus{kT0 + seconds(5), "Pass", std::nullopt, 1, 0, ""};
  EXPECT_FALSE(AnalysisWindow(policy, s, kT0 + seconds(9)).has_value());
  w = AnalysisWindow(policy, s, kT0 + seconds(11));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->start, kT0 + seconds(5));  // contiguous with the last check
  w = AnalysisWindow(policy, s, kT0 + seconds(60));
  EXPECT_EQ(w->start, kT0 + seconds(50));  // but never longer than two intervals
}

TEST(AnalysisWindowTest, NotDueWithoutACanaryTakingTraffic) {
  const RolloutPolicy policy = testing::CanaryPolicy();
  const WallTime later = kT0 + seconds(60);
  ModelDeploymentStatus s = CanaryStatus(0, std::nullopt, 0);
  EXPECT_FALSE(AnalysisWindow(policy, s, later).has_value());  // weight not yet in effect
  s = CanaryStatus(0, kT0, 10);
  s.phase = Phase::kRolledBack;
  EXPECT_FALSE(AnalysisWindow(policy, s, later).has_value());
  s = CanaryStatus(3, kT0, 100);  // a full promotion skips analysis
  EXPECT_FALSE(AnalysisWindow(policy, s, later).has_value());
  s = HealthyOn(v1);
  EXPECT_FALSE(AnalysisWindow(policy, s, later).has_value());
  RolloutPolicy rolling = policy;
  rolling.strategy = Strategy::kRolling;
  EXPECT_FALSE(AnalysisWindow(rolling, CanaryStatus(0, kT0, 10), later).has_value());
  EXPECT_TRUE(AnalysisWindow(policy, CanaryStatus(0, kT0, 10), later).has_value());
}

TEST(AnalysisHistoryTest, ComesFromTheLastAnalysisOfTheCanary) {
  ModelDeploymentStatus s = CanaryStatus(0, kT0, 10);
  EXPECT_FALSE(AnalysisHistoryFromStatus(s).has_value());
  s.last_analysis = AnalysisStatus{kT0, "Fail", std::nullopt, 50, 1, "bad"};
  std::optional<AnalysisHistory> h = AnalysisHistoryFromStatus(s);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->revision, v2);
  EXPECT_EQ(h->consecutive_failures, 1);
}

TEST(ControlsTest, FromAnnotations) {
  ModelDeployment md;
  EXPECT_FALSE(Controls::FromAnnotations(md).pause);
  md.metadata["annotations"] = {{api::kPauseAnnotation, "true"},
                                {api::kPromoteAnnotation, "full"},
                                {api::kAbortAnnotation, "true"},
                                {api::kRetryAnnotation, "yes"}};
  Controls c = Controls::FromAnnotations(md);
  EXPECT_TRUE(c.pause);
  EXPECT_TRUE(c.promote_full);
  EXPECT_FALSE(c.promote_step);
  EXPECT_TRUE(c.abort);
  EXPECT_TRUE(c.retry);
  md.metadata["annotations"] = {{api::kPauseAnnotation, "false"},
                                {api::kPromoteAnnotation, "true"}};
  c = Controls::FromAnnotations(md);
  EXPECT_FALSE(c.pause);
  EXPECT_TRUE(c.promote_step);
  EXPECT_FALSE(c.promote_full);
  EXPECT_FALSE(c.abort);
}


// --- status.history: how each rollout ended ---

TEST(HistoryTest, AFirstRevisionBecomingStableIsDeployed) {
  RolloutInput in = Input(v1);
  RolloutDecision d = Decide(in);
  EXPECT_TRUE(d.status.history.empty());  // still rolling out
  in.status = d.status;
  in.observed[v1] = {4, 4};
  in.now = kT0 + milliseconds(1500);
  d = Decide(in);
  ASSERT_EQ(d.status.history.size(), 1u);
  const HistoryEntry& e = d.status.history[0];
  EXPECT_EQ(e.revision, v1);
  EXPECT_EQ(e.model_version, "v1");  // Input() names the desired model version after the revision
  EXPECT_EQ(e.result, "Deployed");
  EXPECT_EQ(e.reason, "RolloutComplete");
  EXPECT_EQ(e.time, kT0 + seconds(1));  // whole seconds, as status keeps them

  // At rest nothing is added: the decision is a fixed point.
  in.status = d.status;
  EXPECT_EQ(Decide(in).status.history.size(), 1u);
}

TEST(HistoryTest, APromotionIsRecordedOnceWithTheModelVersion) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {4, 4}}};
  in.controls.promote_full = true;
  RolloutDecision d = Decide(in);
  ASSERT_EQ(d.status.phase, Phase::kHealthy);
  ASSERT_EQ(d.status.history.size(), 1u);
  EXPECT_EQ(d.status.history[0].revision, v2);
  EXPECT_EQ(d.status.history[0].model_version, "v2");
  EXPECT_EQ(d.status.history[0].result, "Promoted");
  EXPECT_NE(d.status.history[0].message->find("previous stable " + v1), std::string::npos);

  in.status = d.status;
  in.controls = {};
  EXPECT_EQ(Decide(in).status.history.size(), 1u);
}

TEST(HistoryTest, AbortAndFailedAnalysisKeepTheirReason) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {2, 2}}};
  in.controls.abort = true;
  RolloutDecision d = Decide(in);
  ASSERT_EQ(d.status.history.size(), 1u);
  EXPECT_EQ(d.status.history[0].result, "Aborted");
  EXPECT_EQ(d.status.history[0].reason, "Aborted");
  // Held rolled back: no second entry.
  in.status = d.status;
  in.controls = {};
  in.now = kT0 + seconds(1);
  d = Decide(in);
  EXPECT_EQ(d.status.history.size(), 1u);

  in = Input(v2);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {2, 2}}};
  Verdict v = PassFor(v2, kT0);
  v.outcome = Outcome::kFail;
  v.failed = true;
  v.message = "error-rate 0.2 > max 0.01";
  in.verdict = v;
  d = Decide(in);
  ASSERT_EQ(d.status.history.size(), 1u);
  EXPECT_EQ(d.status.history[0].result, "RolledBack");
  EXPECT_EQ(d.status.history[0].reason, "AnalysisFailed");
  EXPECT_NE(d.status.history[0].message->find("error-rate 0.2 > max 0.01"), std::string::npos);
}

TEST(HistoryTest, ASupersededCanaryIsRecordedButARolledBackOneOnlyOnce) {
  RolloutInput in = Input(v3);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {2, 2}}};
  RolloutDecision d = Decide(in);
  ASSERT_EQ(d.status.history.size(), 1u);
  EXPECT_EQ(d.status.history[0].revision, v2);
  EXPECT_EQ(d.status.history[0].result, "Superseded");

  in = Input(v2);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {2, 2}}};
  in.controls.abort = true;
  d = Decide(in);
  in = Input(v3);
  in.status = d.status;
  in.observed = {{v1, {4, 4}}, {v2, {2, 2}}};
  in.now = kT0 + seconds(1);
  d = Decide(in);
  ASSERT_EQ(d.status.history.size(), 1u);
  EXPECT_EQ(d.status.history[0].result, "Aborted");
}

TEST(HistoryTest, ASpecBackOnTheStableRevisionIsReverted) {
  RolloutInput in = Input(v1);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {2, 2}}};
  RolloutDecision d = Decide(in);
  ASSERT_EQ(d.status.history.size(), 1u);
  EXPECT_EQ(d.status.history[0].revision, v2);
  EXPECT_EQ(d.status.history[0].model_version, "2");
  EXPECT_EQ(d.status.history[0].result, "Reverted");
}

TEST(HistoryTest, KeepsTheNewestTenEntries) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  for (int i = 0; i < 10; ++i) {
    in.status.history.push_back(
        {"old-" + std::to_string(i), std::nullopt, "Promoted", std::nullopt, std::nullopt,
         kT0 - std::chrono::hours(10 - i)});
  }
  in.observed = {{v1, {4, 4}}, {v2, {4, 4}}};
  in.controls.promote_full = true;
  RolloutDecision d = Decide(in);
  ASSERT_EQ(d.status.history.size(), kMaxHistory);
  EXPECT_EQ(d.status.history.front().revision, "old-1");
  EXPECT_EQ(d.status.history.back().revision, v2);
}

TEST(HistoryTest, ALongMessageIsCutToTheSchemaBound) {
  RolloutInput in = Input(v2);
  in.status = CanaryStatus(1, kT0 - seconds(10), 50);
  in.observed = {{v1, {4, 4}}, {v2, {2, 2}}};
  Verdict v = PassFor(v2, kT0);
  v.outcome = Outcome::kFail;
  v.failed = true;
  v.message = std::string(5000, 'x');
  in.verdict = v;
  RolloutDecision d = Decide(in);
  ASSERT_EQ(d.status.history.size(), 1u);
  EXPECT_EQ(d.status.history[0].message->size(), 1024u);
}

}  // namespace
}  // namespace sluice::controllers
