// The policies the rollout engine and the autoscaler resolve from a spec the API server has
// defaulted match the CRD's defaults: C++ keeps no second copy that could drift.
#include <gtest/gtest.h>

#include "controllers/autoscaler/autoscaler.h"
#include "controllers/rollout/policy.h"
#include "lib/api/canary_protection.h"
#include "lib/api/model_deployment.h"
#include "tests/lib/api/yaml_json.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;

json LoadCrdSchema() {
  return testing::LoadCrdSchema(SLUICE_CRD_DIR "/sluice.dev_modeldeployments.yaml");
}

TEST(ModelDeploymentTest, RetryOnStableDefaultsAsTheCrdSays) {
  const json schema = LoadCrdSchema();
  const json& traffic =
      schema.at("properties").at("spec").at("properties").at("traffic").at("properties");
  EXPECT_EQ(traffic.at("retryOnStable").at("default").get<bool>(),
            api::RetryOnStable(ModelDeploymentSpec{}));
  ModelDeploymentSpec off;
  off.traffic = TrafficSpec{};
  off.traffic->retry_on_stable = false;
  EXPECT_FALSE(api::RetryOnStable(off));
}

TEST(ModelDeploymentTest, ResolvedDefaultsMatchTheCrd) {
  const json schema = LoadCrdSchema();
  const json& spec = schema.at("properties").at("spec").at("properties");
  const json& rollout = spec.at("rollout").at("properties");
  const json& canary = rollout.at("canary").at("properties");
  const json& analysis = canary.at("analysis").at("properties");
  const json& autoscaling = spec.at("autoscaling").at("properties");

  Result<RolloutPolicy> policy = ResolveRolloutPolicy(ModelDeploymentSpec{});
  ASSERT_TRUE(policy.ok()) << policy.status();
  // The policy of an empty spec equals the policy of the spec the API server would default.
  ModelDeploymentSpec defaulted;
  RolloutSpec r;
  r.strategy = rollout.at("strategy").at("default").get<std::string>();
  CanarySpec c;
  c.steps = canary.at("steps").at("default").get<std::vector<CanaryStep>>();
  AnalysisSpec a;
  a.interval = analysis.at("interval").at("default").get<std::string>();
  a.failure_threshold = analysis.at("failureThreshold").at("default").get<int32_t>();
  a.min_requests = analysis.at("minRequests").at("default").get<int32_t>();
  a.no_data_policy = analysis.at("noDataPolicy").at("default").get<std::string>();
  a.metrics = analysis.at("metrics").at("default").get<std::vector<AnalysisMetricSpec>>();
  c.analysis = a;
  r.canary = c;
  RollingSpec rolling;
  const json& rolling_props = rollout.at("rolling").at("properties");
  rolling.max_surge = rolling_props.at("maxSurge").at("default").get<IntOrPercent>();
  rolling.max_unavailable = rolling_props.at("maxUnavailable").at("default").get<IntOrPercent>();
  r.rolling = rolling;
  r.progress_deadline = rollout.at("progressDeadline").at("default").get<std::string>();
  r.scale_down_delay = rollout.at("scaleDownDelay").at("default").get<std::string>();
  defaulted.rollout = r;
  Result<RolloutPolicy> from_crd = ResolveRolloutPolicy(defaulted);
  ASSERT_TRUE(from_crd.ok()) << from_crd.status();

  ASSERT_EQ(policy->steps.size(), from_crd->steps.size());
  for (size_t i = 0; i < policy->steps.size(); ++i) {
    EXPECT_EQ(policy->steps[i].weight, from_crd->steps[i].weight) << i;
    EXPECT_EQ(policy->steps[i].pause, from_crd->steps[i].pause) << i;
  }
  EXPECT_EQ(policy->analysis.interval, from_crd->analysis.interval);
  EXPECT_EQ(policy->analysis.failure_threshold, from_crd->analysis.failure_threshold);
  EXPECT_EQ(policy->analysis.min_requests, from_crd->analysis.min_requests);
  EXPECT_EQ(policy->analysis.no_data, from_crd->analysis.no_data);
  ASSERT_EQ(policy->analysis.metrics.size(), from_crd->analysis.metrics.size());
  for (size_t i = 0; i < policy->analysis.metrics.size(); ++i) {
    EXPECT_EQ(policy->analysis.metrics[i].name, from_crd->analysis.metrics[i].name);
    EXPECT_EQ(policy->analysis.metrics[i].builtin, from_crd->analysis.metrics[i].builtin);
    EXPECT_EQ(policy->analysis.metrics[i].min, from_crd->analysis.metrics[i].min);
    EXPECT_EQ(policy->analysis.metrics[i].max, from_crd->analysis.metrics[i].max);
  }
  EXPECT_EQ(policy->max_surge, from_crd->max_surge);
  EXPECT_EQ(policy->max_unavailable, from_crd->max_unavailable);
  EXPECT_EQ(policy->progress_deadline, from_crd->progress_deadline);
  EXPECT_EQ(policy->scale_down_delay, from_crd->scale_down_delay);
  EXPECT_EQ(policy->strategy, from_crd->strategy);

  AutoscalingSpec bare;
  bare.max_replicas = 10;
  AutoscalingSpec full = bare;
  full.min_replicas = autoscaling.at("minReplicas").at("default").get<int32_t>();
  full.target_concurrency = autoscaling.at("targetConcurrency").at("default").get<int32_t>();
  full.stable_window = autoscaling.at("stableWindow").at("default").get<std::string>();
  full.panic_window = autoscaling.at("panicWindow").at("default").get<std::string>();
  full.scale_down_delay = autoscaling.at("scaleDownDelay").at("default").get<std::string>();
  Result<AutoscalerPolicy> p1 = ResolveAutoscalerPolicy(bare);
  Result<AutoscalerPolicy> p2 = ResolveAutoscalerPolicy(full);
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_EQ(p1->min_replicas, p2->min_replicas);
  EXPECT_EQ(p1->target_concurrency, p2->target_concurrency);
  EXPECT_EQ(p1->stable_window, p2->stable_window);
  EXPECT_EQ(p1->panic_window, p2->panic_window);
  EXPECT_EQ(p1->scale_down_delay, p2->scale_down_delay);
}

}  // namespace
}  // namespace sluice::controllers
