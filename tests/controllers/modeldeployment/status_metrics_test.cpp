// The per-ModelDeployment series the operator exports for dashboards and alerts, from statuses.

#include "controllers/modeldeployment/status_metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <memory>
#include <string>

namespace sluice::controllers {
namespace {

using nlohmann::json;

ModelDeployment Parsed(const json& j) {
  auto md = ParseModelDeployment(j);
  EXPECT_TRUE(md.ok()) << md.status();
  return md.ok() ? *md : ModelDeployment{};
}

json RollingBackJson(const std::string& name = "fraud", const std::string& ns = "ml") {
  return json(
      {{"apiVersion", "sluice.dev/v1alpha1"},
       {"kind", "ModelDeployment"},
       {"metadata", {{"name", name}, {"namespace", ns}}},
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

ModelDeployment RollingBack() {
  return Parsed(RollingBackJson());
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

// What a scrape answered before the series were kept between scrapes: every ModelDeployment parsed
// at once, families without samples left out.
std::string RenderedAtOnce(const std::vector<json>& objects) {
  std::vector<ModelDeployment> mds;
  for (const json& o : objects) mds.push_back(Parsed(o));
  auto families = ModelDeploymentFamilies(mds);
  std::erase_if(families, [](const prometheus::MetricFamily& f) { return f.metric.empty(); });
  return prometheus::TextSerializer().Serialize(families);
}

json Healthy(json object) {
  object["status"]["phase"] = "Healthy";
  object["status"].erase("lastAnalysis");
  object["status"].erase("currentStep");
  object["status"]["traffic"] = json::array({{{"revision", "fraud-b"}, {"weight", 100}}});
  return object;
}

TEST(ModelDeploymentMetricsTest, RendersWhatParsingEveryModelDeploymentAtOnceWould) {
  ModelDeploymentMetrics metrics;
  const json a = RollingBackJson("fraud", "ml");
  const json b = Healthy(RollingBackJson("churn", "ml"));
  const json c = RollingBackJson("fraud", "other");
  // Any order of arrival; the text is in namespace/name order like the cache's list.
  metrics.Set(c);
  metrics.Set(a);
  metrics.Set(b);
  EXPECT_EQ(metrics.Render(), RenderedAtOnce({b, a, c}));
  EXPECT_NE(
      metrics.Render().find(
          "sluice_operator_modeldeployment_phase{namespace=\"other\",modeldeployment=\"fraud\","
          "phase=\"RolledBack\"} 1"),
      std::string::npos)
      << metrics.Render();
}

TEST(ModelDeploymentMetricsTest, FollowsTheInformersEvents) {
  ModelDeploymentMetrics metrics;
  auto handler = metrics.Handler();
  auto a = std::make_shared<const json>(RollingBackJson("fraud"));
  auto b = std::make_shared<const json>(RollingBackJson("churn"));
  handler->OnAdd(a);
  handler->OnAdd(b);
  EXPECT_EQ(metrics.Render(), RenderedAtOnce({*b, *a}));

  // An update replaces every series of that ModelDeployment: the analysis families go with the
  // analysis, and a revision no longer in the traffic loses its weight.
  auto healthy = std::make_shared<const json>(Healthy(*a));
  handler->OnUpdate(a, healthy);
  EXPECT_EQ(metrics.Render(), RenderedAtOnce({*b, *healthy}));

  handler->OnDelete(b, false);
  EXPECT_EQ(metrics.Render(), RenderedAtOnce({*healthy}));
  EXPECT_EQ(metrics.Render().find("analysis_verdict"), std::string::npos) << metrics.Render();
  EXPECT_EQ(metrics.Render().find("churn"), std::string::npos);

  handler->OnDelete(healthy, true);
  EXPECT_EQ(metrics.Render(), "");
}

TEST(ModelDeploymentMetricsTest, AnObjectThatDoesNotParseOrHasNoStatusHasNoSeries) {
  ModelDeploymentMetrics metrics;
  json object = RollingBackJson();
  metrics.Set(object);
  ASSERT_NE(metrics.Render(), "");
  // The same ModelDeployment turned unreadable: its earlier series do not linger.
  json broken = object;
  broken["spec"] = "not an object";
  metrics.Set(broken);
  EXPECT_EQ(metrics.Render(), "");
  metrics.Set(object);
  object.erase("status");
  metrics.Set(object);
  EXPECT_EQ(metrics.Render(), "");
}

}  // namespace
}  // namespace sluice::controllers
