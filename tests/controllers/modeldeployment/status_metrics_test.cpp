// The per-ModelDeployment series the operator exports for dashboards and alerts, from statuses.

#include "controllers/modeldeployment/status_metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sluice::controllers {
namespace {

using nlohmann::json;

ModelDeployment Parsed(const json& j) {
  auto md = ParseModelDeployment(j);
  EXPECT_TRUE(md.ok()) << md.status();
  return md.ok() ? *md : ModelDeployment{};
}

ModelDeployment RollingBack() {
  return Parsed(
      {{"apiVersion", "sluice.dev/v1alpha1"},
       {"kind", "ModelDeployment"},
       {"metadata", {{"name", "fraud"}, {"namespace", "ml"}}},
       {"spec", {{"model", {{"uri", "file:///m/fraud.json"}}}}},
       {"status",
        {{"phase", "RolledBack"},
         {"stableRevision", "fraud-a"},
         {"canaryRevision", "fraud-b"},
         {"currentStep", 1},
         {"traffic", json::array({{{"revision", "fraud-a"}, {"weight", 100}},
                                  {{"revision", "fraud-b"}, {"weight", 0}}})},
         {"revisions", json::array({{{"name", "fraud-a"}, {"replicas", 3}, {"readyReplicas", 2}},
                                    {{"name", "fraud-b"}, {"replicas", 1}}})},
         {"lastAnalysis",
          {{"time", "2026-12-07T00:00:10Z"},
           {"verdict", "Fail"},
           {"values", {{"errorRate", 0.25}, {"latencyP99Seconds", 0.04}}},
           {"consecutiveFailures", 2}}},
         {"conditions", json::array({{{"type", "Progressing"},
                                      {"status", "False"},
                                      {"lastTransitionTime", "2026-12-07T00:00:10Z"},
                                      {"reason", "RolledBack"},
                                      {"message", "error rate 25%"}}})}}}});
}

// family name -> "label=value,..." -> value, for the samples of `families`.
std::map<std::string, std::map<std::string, double>> Index(
    const std::vector<prometheus::MetricFamily>& families) {
  std::map<std::string, std::map<std::string, double>> out;
  for (const auto& f : families) {
    auto& samples = out[f.name];
    for (const auto& m : f.metric) {
      std::string key;
      for (const auto& l : m.label) key += (key.empty() ? "" : ",") + l.name + "=" + l.value;
      samples[key] = m.gauge.value;
    }
  }
  return out;
}

TEST(StatusMetricsTest, EveryStatusFieldADashboardReadsBecomesASeries) {
  const auto got = Index(ModelDeploymentFamilies({RollingBack()}));
  const std::string md = "namespace=ml,modeldeployment=fraud";
  const auto& phase = got.at("sluice_operator_modeldeployment_phase");
  EXPECT_EQ(phase.size(), 5u);
  EXPECT_EQ(phase.at(md + ",phase=RolledBack"), 1);
  EXPECT_EQ(phase.at(md + ",phase=Healthy"), 0);
  EXPECT_EQ(got.at("sluice_operator_modeldeployment_condition")
                .at(md + ",type=Progressing,status=False,reason=RolledBack"),
            1);
  EXPECT_EQ(got.at("sluice_operator_modeldeployment_traffic_weight").at(md + ",revision=fraud-a"),
            100);
  EXPECT_EQ(got.at("sluice_operator_modeldeployment_traffic_weight").at(md + ",revision=fraud-b"),
            0);
  EXPECT_EQ(got.at("sluice_operator_modeldeployment_canary_step").at(md), 1);
  const auto& verdict = got.at("sluice_operator_modeldeployment_analysis_verdict");
  EXPECT_EQ(verdict.at(md + ",verdict=Fail"), 1);
  EXPECT_EQ(verdict.at(md + ",verdict=Pass"), 0);
  EXPECT_EQ(verdict.at(md + ",verdict=NoData"), 0);
  EXPECT_DOUBLE_EQ(
      got.at("sluice_operator_modeldeployment_analysis_value").at(md + ",metric=errorRate"), 0.25);
  EXPECT_EQ(got.at("sluice_operator_modeldeployment_analysis_consecutive_failures").at(md), 2);
  EXPECT_EQ(got.at("sluice_operator_modeldeployment_analysis_timestamp_seconds").at(md),
            1796601610);
  EXPECT_EQ(
      got.at("sluice_operator_modeldeployment_revision_replicas").at(md + ",revision=fraud-a"), 3);
  EXPECT_EQ(got.at("sluice_operator_modeldeployment_revision_ready_replicas")
                .at(md + ",revision=fraud-a"),
            2);
  // No readyReplicas for fraud-b in the status: no made-up zero.
  EXPECT_EQ(got.at("sluice_operator_modeldeployment_revision_ready_replicas")
                .count(md + ",revision=fraud-b"),
            0u);
}

TEST(StatusMetricsTest, AModelDeploymentWithoutStatusHasNoSeriesButTheFamiliesStay) {
  ModelDeployment fresh = RollingBack();
  fresh.status.reset();
  const auto families = ModelDeploymentFamilies({fresh});
  EXPECT_EQ(families.size(), 10u);
  for (const auto& f : families) EXPECT_TRUE(f.metric.empty()) << f.name;
}

}  // namespace
}  // namespace sluice::controllers
