#include "controllers/rollout/policy.h"

#include <gtest/gtest.h>

namespace sluice::controllers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

ModelDeploymentSpec WithSteps(std::vector<CanaryStep> steps) {
  ModelDeploymentSpec s;
  s.model.uri = "file:///m.json";
  RolloutSpec r;
  CanarySpec c;
  c.steps = std::move(steps);
  r.canary = c;
  s.rollout = r;
  return s;
}

TEST(ResolveRolloutPolicyTest, Defaults) {
  Result<RolloutPolicy> p = ResolveRolloutPolicy(ModelDeploymentSpec{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->strategy, Strategy::kCanary);
  ASSERT_EQ(p->steps.size(), 3u);
  EXPECT_EQ(p->steps[0].weight, 10);
  EXPECT_EQ(p->steps[0].pause, seconds(30));
  EXPECT_EQ(p->steps[1].weight, 50);
  EXPECT_EQ(p->steps[2].weight, 100);
  EXPECT_EQ(p->steps[2].pause, seconds(0));
  EXPECT_EQ(p->progress_deadline, std::chrono::minutes(10));
  EXPECT_EQ(p->scale_down_delay, seconds(30));
  EXPECT_EQ(p->max_surge, (IntOrPercent{25, true}));
  EXPECT_EQ(p->max_unavailable, (IntOrPercent{0, false}));
  EXPECT_EQ(p->mirror_percent, 0);
}

TEST(ResolveRolloutPolicyTest, AbsentPauseIsIndefinite) {
  Result<RolloutPolicy> p = ResolveRolloutPolicy(WithSteps({{20, std::nullopt}, {100, "1m"}}));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->steps[0].pause.has_value());
  EXPECT_EQ(p->steps[1].pause, seconds(60));
}

TEST(ResolveRolloutPolicyTest, RefusesWhatValidationWouldHave) {
  EXPECT_FALSE(ResolveRolloutPolicy(WithSteps({{50, "1s"}, {40, "1s"}, {100, "1s"}})).ok());
  EXPECT_FALSE(ResolveRolloutPolicy(WithSteps({{10, "1s"}, {90, "1s"}})).ok());  // no 100
  EXPECT_FALSE(ResolveRolloutPolicy(WithSteps({{0, "1s"}, {100, "1s"}})).ok());
  Result<RolloutPolicy> bad = ResolveRolloutPolicy(WithSteps({{10, "forever"}, {100, "1s"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("spec.rollout.canary.steps[0].pause"), std::string::npos)
      << bad.status();
  ModelDeploymentSpec s;
  RolloutSpec r;
  r.strategy = "BlueGreen";
  s.rollout = r;
  EXPECT_FALSE(ResolveRolloutPolicy(s).ok());
}

TEST(ResolveRolloutPolicyTest, ReadsRollingAndMirror) {
  ModelDeploymentSpec s;
  RolloutSpec r;
  r.strategy = "Rolling";
  r.rolling = RollingSpec{IntOrPercent{1, false}, IntOrPercent{10, true}};
  r.progress_deadline = "5m";
  r.scale_down_delay = "0s";
  s.rollout = r;
  s.traffic = TrafficSpec{std::nullopt, MirrorSpec{7}, std::nullopt, std::nullopt};
  Result<RolloutPolicy> p = ResolveRolloutPolicy(s);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->strategy, Strategy::kRolling);
  EXPECT_EQ(p->max_surge, (IntOrPercent{1, false}));
  EXPECT_EQ(p->max_unavailable, (IntOrPercent{10, true}));
  EXPECT_EQ(p->progress_deadline, std::chrono::minutes(5));
  EXPECT_EQ(p->scale_down_delay, milliseconds(0));
  EXPECT_EQ(p->mirror_percent, 7);
}

}  // namespace
}  // namespace sluice::controllers
