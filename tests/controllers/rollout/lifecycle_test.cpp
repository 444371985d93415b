// Whole rollouts, table-driven: each row is a script run against a RolloutSim (4 replicas, pods
// Ready 3 s after they are asked for, 100 requests/s, the default canary policy: 10% and 50% for
// 30 s, then 100%, analysis every 5 s, 2 failures roll back, old stable kept 30 s).

#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "tests/controllers/rollout/rollout_sim.h"

namespace sluice::controllers {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::kT0;
using testing::Rev;
using testing::RolloutSim;

const std::string v1 = Rev("v1");
const std::string v2 = Rev("v2");
const std::string v3 = Rev("v3");

int64_t Secs(WallTime t) {
  return (t - kT0) / seconds(1);
}

bool IsHealthyOn(const RolloutSim& sim, const std::string& rev) {
  return sim.status().phase == Phase::kHealthy && sim.status().stable_revision == rev &&
         sim.Weight(rev) == 100;
}

void DeployStable(RolloutSim& sim, const std::string& version) {
  const std::string rev = sim.Deploy(version);
  ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, rev); }, seconds(30)))
      << "first deploy of " << rev << " not Healthy";
}

// Starts v2 over a stable v1 and runs until the canary takes `weight`% of traffic.
void CanaryAt(RolloutSim& sim, int32_t weight) {
  DeployStable(sim, "v1");
  sim.Deploy("v2");
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v2) == weight; }, minutes(3)))
      << "canary never reached " << weight << "%";
}

struct LifecycleCase {
  std::string name;
  std::function<void(RolloutSim&)> script;
};

// Failures name the case, not its bytes.
void PrintTo(const LifecycleCase& c, std::ostream* os) {
  *os << c.name;
}

class LifecycleTest : public ::testing::TestWithParam<LifecycleCase> {};

TEST_P(LifecycleTest, Runs) {
  RolloutSim sim(testing::CanaryPolicy(), 4);
  GetParam().script(sim);
}

const LifecycleCase kCases[] = {
    {"FirstDeployBecomesStableOnceReady",
     [](RolloutSim& sim) {
       sim.Deploy("v1");
       sim.Reconcile();
       EXPECT_EQ(sim.status().phase, Phase::kProgressing);
       EXPECT_TRUE(sim.status().traffic.empty());  // nothing Ready to route to
       EXPECT_EQ(sim.Replicas(v1), 4);
       EXPECT_EQ(sim.status().FindCondition("Ready")->status, "False");
       ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v1); }, seconds(10)));
       EXPECT_EQ(Secs(sim.now()), 3);  // as soon as the pods are Ready
       EXPECT_FALSE(sim.status().canary_revision.has_value());
       EXPECT_FALSE(sim.status().current_step.has_value());
       EXPECT_EQ(sim.status().FindCondition("Ready")->status, "True");
       EXPECT_EQ(sim.status().FindCondition("Progressing")->reason, "RolloutComplete");
       EXPECT_TRUE(sim.HasEvent("RolloutStarted"));
       EXPECT_TRUE(sim.HasEvent("RolloutComplete"));
       EXPECT_EQ(sim.analyses(), 0);  // nothing to compare a first revision with
     }},

    {"CanaryWalksTenFiftyHundredAndRetiresTheOldStable",
     [](RolloutSim& sim) {
       DeployStable(sim, "v1");
       const WallTime start = sim.now();
       sim.Deploy("v2");
       std::vector<int32_t> weights;
       ASSERT_TRUE(sim.RunUntil(
           [&] {
             if (weights.empty() || weights.back() != sim.Weight(v2)) {
               weights.push_back(sim.Weight(v2));
             }
             return IsHealthyOn(sim, v2);
           },
           minutes(3)));
       // 10% once one pod is Ready; 50% needs two of four, and the first is Ready before the
       // second, so 25% is passed through; likewise 50% on the way to 100%.
       EXPECT_EQ(weights, (std::vector<int32_t>{0, 10, 25, 50, 100}));
       const WallTime promoted = sim.now();
       ::testing::Test::RecordProperty("promotion_s_after_spec_change",
                                       std::to_string((promoted - start) / seconds(1)));
       // Each step: 3 s for pods, 30 s pause (a passing check falls inside it); the 100% step
       // needs one passing check at 100%.
       EXPECT_GE(promoted - start, seconds(66));
       EXPECT_LE(promoted - start, seconds(80));
       EXPECT_EQ(sim.status().stable_revision, v2);
       EXPECT_FALSE(sim.status().canary_revision.has_value());
       EXPECT_TRUE(sim.HasEvent("StepAdvanced"));
       EXPECT_TRUE(sim.HasEvent("RolloutComplete"));
       // The old stable keeps its pods for scaleDownDelay, then goes.
       EXPECT_EQ(sim.Replicas(v1), 4);
       ASSERT_NE(sim.status().FindRevision(v1), nullptr);
       EXPECT_EQ(sim.status().FindRevision(v1)->scale_down_time, promoted + seconds(30));
       sim.RunFor(seconds(29));
       EXPECT_EQ(sim.Replicas(v1), 4);
       ASSERT_TRUE(sim.RunUntil([&] { return !sim.Exists(v1); }, seconds(3)));
       EXPECT_EQ(sim.now() - promoted, seconds(31));  // scaled to 0 at +30 s, gone at +31 s
       EXPECT_EQ(sim.status().FindRevision(v1), nullptr);
       EXPECT_TRUE(sim.HasEvent("ScaledDown"));
       EXPECT_EQ(sim.Replicas(v2), 4);
     }},

    {"FaultyCanaryRollsBackWithinIntervalTimesThreshold",
     [](RolloutSim& sim) {
       CanaryAt(sim, 10);
       // Half of the canary's answers fail from the middle of an analysis window on.
       const WallTime onset = sim.now() + seconds(7) + milliseconds(500);
       sim.metrics().model(v2).fault_at = onset;
       sim.metrics().model(v2).fault_error_fraction = 0.5;
       ASSERT_TRUE(sim.RunUntil([&] { return sim.status().phase == Phase::kRolledBack; },
                                minutes(1), milliseconds(250)));
       const WallTime rolled_back = sim.now();
       EXPECT_LE(rolled_back - onset, seconds(5) * 2);  // interval × failureThreshold
       ::testing::Test::RecordProperty(
           "rollback_ms_after_fault",
           std::to_string(std::chrono::duration_cast<milliseconds>(rolled_back - onset).count()));
       EXPECT_EQ(sim.Weight(v1), 100);
       EXPECT_EQ(sim.Weight(v2), 0);
       EXPECT_EQ(sim.status().canary_revision, v2);
       EXPECT_EQ(sim.status().canary_weight, 0);
       const Condition* degraded = sim.status().FindCondition("Degraded");
       ASSERT_NE(degraded, nullptr);
       EXPECT_EQ(degraded->status, "True");
       EXPECT_EQ(degraded->reason, "AnalysisFailed");
       EXPECT_NE(degraded->message.find("error-rate"), std::string::npos) << degraded->message;
       EXPECT_NE(degraded->message.find("> max 0.01"), std::string::npos) << degraded->message;
       ASSERT_TRUE(sim.status().last_analysis.has_value());
       EXPECT_EQ(sim.status().last_analysis->verdict, "Fail");
       EXPECT_EQ(sim.status().last_analysis->consecutive_failures, 2);
       EXPECT_GT(sim.status().last_analysis->values->at("error-rate"), 0.01);
       std::optional<WallTime> warned = sim.FirstEvent("AnalysisFailed");
       ASSERT_TRUE(warned.has_value());
       EXPECT_EQ(*warned, rolled_back);
       // The canary keeps its pods for scaleDownDelay, then goes; the rollout does not restart.
       EXPECT_GT(sim.Replicas(v2), 0);
       sim.RunFor(seconds(40));
       EXPECT_EQ(sim.Replicas(v2), 0);
       EXPECT_EQ(sim.status().phase, Phase::kRolledBack);
       EXPECT_EQ(sim.status().canary_revision, v2);
       EXPECT_EQ(sim.Weight(v1), 100);
     }},

    {"CanaryFaultyFromTheStartRollsBackWithinTwoIntervals",
     [](RolloutSim& sim) {
       DeployStable(sim, "v1");
       sim.metrics().model(v2).error_fraction = 0.2;
       sim.Deploy("v2");
       ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v2) == 10; }, seconds(10)));
       const WallTime exposed = sim.now();
       ASSERT_TRUE(
           sim.RunUntil([&] { return sim.status().phase == Phase::kRolledBack; }, seconds(30)));
       EXPECT_LE(sim.now() - exposed, seconds(10));
       EXPECT_EQ(sim.Weight(v1), 100);
     }},

    {"PromoteFullSkipsTheRemainingStepsAndAnalysis",
     [](RolloutSim& sim) {
       sim.policy().steps = {{10, std::nullopt}, {50, seconds(30)}, {100, seconds(0)}};
       CanaryAt(sim, 10);
       sim.RunFor(minutes(2));
       EXPECT_EQ(sim.Weight(v2), 10);  // an indefinite pause
       EXPECT_EQ(sim.status().phase, Phase::kPaused);
       EXPECT_EQ(sim.status().FindCondition("Progressing")->reason, "WaitingForPromotion");
       sim.controls().promote_full = true;
       const WallTime promoted = sim.now();
       ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v2); }, seconds(20)));
       EXPECT_LE(sim.now() - promoted, seconds(4));  // just the time for pods to be Ready
       EXPECT_FALSE(sim.controls().promote_full);    // consumed
       EXPECT_TRUE(sim.HasEvent("Promoted"));
     }},

    {"PromoteEndsOneStep",
     [](RolloutSim& sim) {
       sim.policy().steps = {{10, std::nullopt}, {50, std::nullopt}, {100, seconds(0)}};
       CanaryAt(sim, 10);
       sim.controls().promote_step = true;
       ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v2) == 50; }, seconds(10)));
       EXPECT_FALSE(sim.controls().promote_step);
       sim.RunFor(minutes(1));
       EXPECT_EQ(sim.Weight(v2), 50);  // the next step waits again
       EXPECT_EQ(sim.status().current_step, 1);
       sim.controls().promote_step = true;
       ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v2); }, seconds(30)));
     }},

    {"AbortReturnsAllTrafficAtOnceAndRetryStartsOver",
     [](RolloutSim& sim) {
       CanaryAt(sim, 50);
       sim.controls().abort = true;
       sim.Reconcile();
       EXPECT_EQ(sim.Weight(v1), 100);
       EXPECT_EQ(sim.status().phase, Phase::kRolledBack);
       EXPECT_EQ(sim.status().FindCondition("Degraded")->reason, "Aborted");
       EXPECT_TRUE(sim.HasEvent("Aborted"));
       EXPECT_FALSE(sim.controls().abort);
       sim.RunFor(minutes(2));
       EXPECT_EQ(sim.status().phase, Phase::kRolledBack);  // no retry by itself
       EXPECT_EQ(sim.Weight(v1), 100);
       sim.controls().retry = true;
       sim.Reconcile();
       EXPECT_EQ(sim.status().phase, Phase::kProgressing);
       EXPECT_EQ(sim.status().current_step, 0);
       EXPECT_TRUE(sim.HasEvent("Retry"));
       ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v2); }, minutes(3)));
     }},

    {"PauseHoldsTheStepUntilRemoved",
     [](RolloutSim& sim) {
       CanaryAt(sim, 10);
       sim.controls().pause = true;
       sim.RunFor(minutes(2));
       EXPECT_EQ(sim.Weight(v2), 10);
       EXPECT_EQ(sim.status().phase, Phase::kPaused);
       EXPECT_EQ(sim.status().FindCondition("Progressing")->reason, "Paused");
       EXPECT_TRUE(sim.HasEvent("Paused"));
       sim.controls().pause = false;
       const WallTime resumed = sim.now();
       ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v2) == 50; }, seconds(10)));
       EXPECT_LE(sim.now() - resumed, seconds(4));  // the pause was long over; only pods wait
       EXPECT_TRUE(sim.HasEvent("Resumed"));
     }},

    {"PausedCanaryStillRollsBackOnFailedAnalysis",
     [](RolloutSim& sim) {
       CanaryAt(sim, 10);
       sim.controls().pause = true;
       sim.RunFor(seconds(20));
       sim.metrics().model(v2).fault_at = sim.now();
       sim.metrics().model(v2).fault_error_fraction = 1.0;
       ASSERT_TRUE(
           sim.RunUntil([&] { return sim.status().phase == Phase::kRolledBack; }, seconds(15)));
       EXPECT_EQ(sim.Weight(v1), 100);
     }},

    {"SupersedeStartsOverFromTheStable",
     [](RolloutSim& sim) {
       CanaryAt(sim, 50);
       sim.Deploy("v3");
       sim.Reconcile();
       EXPECT_EQ(sim.status().canary_revision, v3);
       EXPECT_EQ(sim.status().stable_revision, v1);
       EXPECT_EQ(sim.status().current_step, 0);
       EXPECT_EQ(sim.Weight(v2), 0);  // the old canary's traffic is back on the stable at once
       EXPECT_EQ(sim.Weight(v1), 100);
       EXPECT_EQ(sim.Replicas(v2), 0);
       EXPECT_TRUE(sim.HasEvent("Superseded"));
       EXPECT_FALSE(sim.status().last_analysis.has_value());  // v2's checks are not v3's
       ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v3) == 10; }, seconds(10)));
       EXPECT_EQ(sim.Weight(v1), 90);
       ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v3); }, minutes(3)));
       EXPECT_FALSE(sim.Exists(v2));
     }},

    {"SpecBackToTheStableRollsBackToIt",
     [](RolloutSim& sim) {
       CanaryAt(sim, 50);
       sim.Deploy("v1");
       sim.Reconcile();
       EXPECT_TRUE(IsHealthyOn(sim, v1));
       EXPECT_FALSE(sim.status().canary_revision.has_value());
       EXPECT_TRUE(sim.HasEvent("Reverted"));
       EXPECT_GT(sim.Replicas(v2), 0);  // kept for scaleDownDelay
       sim.RunFor(seconds(32));
       EXPECT_FALSE(sim.Exists(v2));
     }},

    {"NewSpecAfterARollbackStartsAFreshRollout",
     [](RolloutSim& sim) {
       CanaryAt(sim, 10);
       sim.metrics().model(v2).fault_at = sim.now();
       sim.metrics().model(v2).fault_error_fraction = 1.0;
       ASSERT_TRUE(
           sim.RunUntil([&] { return sim.status().phase == Phase::kRolledBack; }, seconds(15)));
       sim.Deploy("v3");
       sim.Reconcile();
       EXPECT_EQ(sim.status().phase, Phase::kProgressing);
       EXPECT_EQ(sim.status().canary_revision, v3);
       EXPECT_EQ(sim.status().FindCondition("Degraded")->status, "False");
       ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v3); }, minutes(3)));
     }},

    {"NoDataPausesTheStepClockUntilDataComes",
     [](RolloutSim& sim) {
       CanaryAt(sim, 10);
       sim.SetRequestRate(0);
       sim.RunFor(minutes(1));
       EXPECT_EQ(sim.Weight(v2), 10);
       EXPECT_EQ(sim.status().phase, Phase::kPaused);
       EXPECT_EQ(sim.status().FindCondition("Progressing")->reason, "NoData");
       EXPECT_TRUE(sim.HasEvent("AnalysisNoData"));
       sim.SetRequestRate(100);
       const WallTime data_back = sim.now();
       ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v2) > 10; }, minutes(1)));
       // The 30 s pause had barely begun when the data stopped; it runs on from there.
       EXPECT_GE(sim.now() - data_back, seconds(20));
       EXPECT_EQ(sim.status().phase, Phase::kProgressing);
     }},

    {"FirstDeployWhoseModelNeverLoadsIsDegradedAfterTheDeadline",
     [](RolloutSim& sim) {
       sim.policy().progress_deadline = seconds(60);
       sim.SetMaxReady(v1, 0);
       sim.Deploy("v1");
       const WallTime start = sim.now();
       ASSERT_TRUE(
           sim.RunUntil([&] { return sim.status().phase == Phase::kDegraded; }, minutes(2)));
       EXPECT_EQ(sim.now() - start, seconds(60));
       const Condition* degraded = sim.status().FindCondition("Degraded");
       EXPECT_EQ(degraded->status, "True");
       EXPECT_EQ(degraded->reason, "ProgressDeadlineExceeded");
       EXPECT_NE(degraded->message.find("never became ready"), std::string::npos);
       EXPECT_EQ(sim.status().FindCondition("Progressing")->status, "False");
       EXPECT_TRUE(sim.HasEvent("ProgressDeadlineExceeded"));
       sim.SetMaxReady(v1, std::nullopt);
       ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v1); }, minutes(3)));
       EXPECT_EQ(sim.status().FindCondition("Degraded")->status, "False");
     }},

    {"CanaryThatNeverGetsReadyIsDegradedAfterTheDeadline",
     [](RolloutSim& sim) {
       sim.policy().progress_deadline = seconds(60);
       DeployStable(sim, "v1");
       sim.SetMaxReady(v2, 0);
       sim.Deploy("v2");
       const WallTime start = sim.now();
       ASSERT_TRUE(
           sim.RunUntil([&] { return sim.status().phase == Phase::kDegraded; }, minutes(2)));
       EXPECT_EQ(sim.now() - start, seconds(60));
       EXPECT_EQ(sim.Weight(v1), 100);  // traffic stays where it was
       const Condition* progressing = sim.status().FindCondition("Progressing");
       EXPECT_EQ(progressing->status, "False");
       EXPECT_EQ(progressing->reason, "ProgressDeadlineExceeded");
       EXPECT_EQ(sim.status().FindCondition("Degraded")->status, "True");
       EXPECT_TRUE(sim.HasEvent("ProgressDeadlineExceeded"));
       sim.SetMaxReady(v2, std::nullopt);
       ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v2); }, minutes(3)));
     }},

    {"RequeueAloneDrivesAWholeRollout",
     [](RolloutSim& sim) {
       sim.Deploy("v1");
       ASSERT_TRUE(sim.RunByRequeueUntil([&] { return IsHealthyOn(sim, v1); }, seconds(30)));
       const WallTime start = sim.now();
       sim.Deploy("v2");
       ASSERT_TRUE(sim.RunByRequeueUntil([&] { return IsHealthyOn(sim, v2); }, minutes(3)));
       EXPECT_LE(sim.now() - start, seconds(80));
       ASSERT_TRUE(sim.RunByRequeueUntil([&] { return !sim.Exists(v1); }, seconds(40)));
     }},

    {"RequeueAloneCatchesAFaultInTime",
     [](RolloutSim& sim) {
       sim.Deploy("v1");
       ASSERT_TRUE(sim.RunByRequeueUntil([&] { return IsHealthyOn(sim, v1); }, seconds(30)));
       sim.Deploy("v2");
       ASSERT_TRUE(sim.RunByRequeueUntil([&] { return sim.Weight(v2) == 10; }, seconds(30)));
       const WallTime onset = sim.now() + seconds(2);
       sim.metrics().model(v2).fault_at = onset;
       sim.metrics().model(v2).fault_error_fraction = 0.5;
       ASSERT_TRUE(sim.RunByRequeueUntil([&] { return sim.status().phase == Phase::kRolledBack; },
                                         minutes(1)));
       EXPECT_LE(sim.now() - onset, seconds(10));
       ::testing::Test::RecordProperty(
           "rollback_ms_after_fault",
           std::to_string(std::chrono::duration_cast<milliseconds>(sim.now() - onset).count()));
     }},
};

INSTANTIATE_TEST_SUITE_P(Canary, LifecycleTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<LifecycleCase>& info) {
                           return info.param.name;
                         });

TEST(RollingLifecycleTest, ReplacesPodsWithinSurgeAndUnavailability) {
  RolloutPolicy policy = testing::CanaryPolicy();
  policy.strategy = Strategy::kRolling;
  policy.max_surge = {1, false};
  policy.max_unavailable = {0, false};
  RolloutSim sim(policy, 4);
  DeployStable(sim, "v1");
  sim.Deploy("v2");
  int32_t max_total = 0;
  int32_t min_ready = 100;
  ASSERT_TRUE(sim.RunUntil(
      [&] {
        max_total = std::max(max_total, sim.Replicas(v1) + sim.Replicas(v2));
        min_ready = std::min(min_ready, sim.Ready(v1) + sim.Ready(v2));
        if (sim.Ready(v1) > 0 && sim.Ready(v2) > 0) {
          // Traffic follows the Ready pods that stay.
          EXPECT_GT(sim.Weight(v2), 0);
          EXPECT_GT(sim.Weight(v1), 0);
        }
        return IsHealthyOn(sim, v2);
      },
      minutes(2)));
  EXPECT_LE(max_total, 5);
  // Whatever order a decision's writes land in: the new revision grows into room the old pods
  // have left, not into room they are about to leave.
  EXPECT_LE(sim.max_pods_in_flight(), 5);
  EXPECT_GE(min_ready, 4);
  EXPECT_EQ(sim.analyses(), 0);
  ASSERT_TRUE(sim.RunUntil([&] { return !sim.Exists(v1); }, seconds(5)));
  EXPECT_EQ(sim.Replicas(v2), 4);
}

TEST(RollingLifecycleTest, ALaggingDeploymentControllerSlowsTheUpdateButNeverBreaksItsBudget) {
  RolloutPolicy policy = testing::CanaryPolicy();
  policy.strategy = Strategy::kRolling;
  policy.max_surge = {1, false};
  policy.max_unavailable = {0, false};
  RolloutSim sim(policy, 3);
  DeployStable(sim, "v1");
  sim.SetStatusLag(true);
  sim.Deploy("v2");
  int32_t min_ready = 100;
  ASSERT_TRUE(sim.RunUntil(
      [&] {
        min_ready = std::min(min_ready, sim.Ready(v1) + sim.Ready(v2));
        return IsHealthyOn(sim, v2);
      },
      minutes(2), milliseconds(500)));
  EXPECT_GE(min_ready, 3);
  EXPECT_LE(sim.max_pods_in_flight(), 4);
}

TEST(RollingLifecycleTest, PercentBudgetsAllowUnavailability) {
  RolloutPolicy policy = testing::CanaryPolicy();
  policy.strategy = Strategy::kRolling;
  policy.max_surge = {50, true};
  policy.max_unavailable = {50, true};
  RolloutSim sim(policy, 4);
  DeployStable(sim, "v1");
  sim.Deploy("v2");
  sim.Reconcile();
  // 2 old pods may go before any new one is Ready, and 2 surge pods come at once...
  EXPECT_EQ(sim.Replicas(v2), 2);
  EXPECT_EQ(sim.Replicas(v1), 2);
  // ...and 2 more into the room the old ones left, once they are gone.
  sim.Reconcile();
  EXPECT_EQ(sim.Replicas(v2), 4);
  EXPECT_EQ(sim.Replicas(v1), 2);
  int32_t min_ready = 100;
  ASSERT_TRUE(sim.RunUntil(
      [&] {
        min_ready = std::min(min_ready, sim.Ready(v1) + sim.Ready(v2));
        return IsHealthyOn(sim, v2);
      },
      minutes(1)));
  EXPECT_GE(min_ready, 2);
  EXPECT_LE(sim.max_pods_in_flight(), 6);
}

TEST(RollingLifecycleTest, AbortSendsTrafficBackAndRestoresTheStable) {
  RolloutPolicy policy = testing::CanaryPolicy();
  policy.strategy = Strategy::kRolling;
  policy.max_surge = {1, false};
  policy.max_unavailable = {1, false};
  RolloutSim sim(policy, 4);
  DeployStable(sim, "v1");
  sim.Deploy("v2");
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Ready(v2) >= 2; }, minutes(1)));
  sim.controls().abort = true;
  sim.Reconcile();
  EXPECT_EQ(sim.status().phase, Phase::kRolledBack);
  EXPECT_EQ(sim.Replicas(v1), 4);
  EXPECT_EQ(sim.Weight(v1), 100);
  sim.RunFor(seconds(40));
  EXPECT_EQ(sim.Replicas(v2), 0);
  EXPECT_EQ(sim.Ready(v1), 4);
}

TEST(AutoscaledLifecycleTest, EachRevisionIsSizedForItsOwnShare) {
  RolloutSim sim(testing::CanaryPolicy(), 1);
  // The stable's own recommendation is 10 pods; the canary's is 1 (it has little load yet).
  sim.SetAutoscaled({{v1, 10}, {v2, 1}}, 1, 20);
  DeployStable(sim, "v1");
  EXPECT_EQ(sim.Replicas(v1), 10);
  sim.Deploy("v2");
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v2) == 10; }, seconds(10)));
  // The whole load is estimated at 10 + 1 pods; 10% of that, rounded up, is 2.
  EXPECT_EQ(sim.Replicas(v2), 2);
  EXPECT_EQ(sim.Replicas(v1), 10);  // the stable serves 90% and stays sized for it
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v2) == 50; }, minutes(1)));
  EXPECT_GE(sim.Replicas(v2), 5);  // sized for half the load before its recommendation catches up
  EXPECT_GE(sim.Replicas(v1), 5);
}

TEST(FirstDeployLifecycleTest, ReplacedBeforeReadyKeepsServingFromWhatIsReady) {
  RolloutSim sim(testing::CanaryPolicy(), 2);
  sim.Deploy("v1");
  sim.SetMaxReady(v1, 1);
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v1) == 100; }, seconds(10)));
  EXPECT_EQ(sim.status().phase, Phase::kProgressing);  // 1 of 2 Ready: not stable yet
  sim.Deploy("v2");
  sim.Reconcile();
  EXPECT_EQ(sim.Weight(v1), 100);  // v2 has nothing Ready; v1 still answers
  EXPECT_EQ(sim.status().canary_revision, v2);
  ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v2); }, seconds(10)));
  EXPECT_FALSE(sim.status().canary_revision.has_value());
  ASSERT_TRUE(sim.RunUntil([&] { return !sim.Exists(v1); }, seconds(5)));
}

TEST(MirrorLifecycleTest, MirrorsToTheCanaryOnlyWhileItIsReadyAndRollingOut) {
  RolloutPolicy policy = testing::CanaryPolicy();
  policy.mirror_percent = 5;
  RolloutSim sim(policy, 4);
  DeployStable(sim, "v1");
  for (const TrafficTarget& t : sim.status().traffic) EXPECT_FALSE(t.mirror_percent.has_value());
  sim.Deploy("v2");
  sim.Reconcile();
  for (const TrafficTarget& t : sim.status().traffic) EXPECT_NE(t.revision, v2);
  ASSERT_TRUE(sim.RunUntil([&] { return sim.Weight(v2) == 10; }, seconds(10)));
  bool mirrored = false;
  for (const TrafficTarget& t : sim.status().traffic) {
    if (t.revision == v2) mirrored = t.mirror_percent == 5;
  }
  EXPECT_TRUE(mirrored);
  ASSERT_TRUE(sim.RunUntil([&] { return IsHealthyOn(sim, v2); }, minutes(3)));
  for (const TrafficTarget& t : sim.status().traffic) EXPECT_FALSE(t.mirror_percent.has_value());
}

}  // namespace
}  // namespace sluice::controllers
