// spec.features of a ModelDeployment: the FeatureViews it references become sluice-server's
// --feature-views and the Secret-backed environment of the server container; a bad reference
// rolls nothing out and is reported; a FeatureView change makes a new revision.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controllers/modeldeployment/reconciler.h"
#include "controllers/modeldeployment/resources.h"
#include "lib/api/feature_view.h"
#include "lib/api/object_labels.h"
#include "lib/api/server_command.h"
#include "tests/lib/base/fake_clock.h"
#include "tests/lib/controller/fake_objects.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kNs[] = "ml";
constexpr char kName[] = "fraud";

json CardFeatures() {
  return {{"apiVersion", "sluice.dev/v1alpha1"},
          {"kind", "FeatureView"},
          {"metadata", {{"name", "card-features"}, {"namespace", kNs}}},
          {"spec",
           {{"project", "fraud"},
            {"entities", json::array({{{"name", "card"}, {"joinKey", "card_id"}, {"valueType", "STRING"}}})},
            {"features", json::array({{{"name", "velocity_last_24h"}, {"type", "INT32"}, {"default", "0"}},
                                      {{"name", "avg_amount_30d"}, {"type", "DOUBLE"}, {"default", "0.0"}},
                                      {{"name", "country"}, {"type", "STRING"}}})},
            {"ttl", "24h"},
            {"source", {{"type", "parquet"}, {"path", "/data/card.parquet"}, {"timestampField", "ts"}}},
            {"online", {{"redis", {{"addressSecretRef", {{"name", "fraud-redis"}, {"key", "connection"}}}, {"db", 0}, {"keyTtl", "0s"}}}}}}}};
}

json MerchantFeatures() {
  return {{"apiVersion", "sluice.dev/v1alpha1"},
          {"kind", "FeatureView"},
          {"metadata", {{"name", "merchant-features"}, {"namespace", kNs}}},
          {"spec",
           {{"project", "fraud"},
            {"entities", json::array({{{"name", "merchant"}, {"joinKey", "merchant_id"}, {"valueType", "INT64"}}})},
            {"features", json::array({{{"name", "merchant_fraud_rate_30d"}, {"type", "DOUBLE"}, {"default", "0.002"}}})},
            {"ttl", "72h"},
            {"source", {{"type", "csv"}, {"path", "/data/merchant.csv"}, {"timestampField", "ts"}}},
            {"online", {{"redis", {{"address", "redis.sluice-features.svc.cluster.local:6379"}, {"db", 1}}}}}}}};
}

json Spec() {
  return {{"model", {{"uri", "file:///models/fraud.json"}, {"format", "xgboost-json"}, {"version", "1"}}},
          {"replicas", 1},
          {"rollout", {{"strategy", "Rolling"}}},
          {"features",
           json::array({{{"name", "card-features"}, {"features", json::array({"avg_amount_30d", "velocity_last_24h"})}},
                        {{"name", "merchant-features"}}})}};
}

class FeaturesTest : public ::testing::Test {
 protected:
  FeaturesTest() {
    ModelDeploymentReconcilerOptions options;
    options.clock = &clock_;
    options.workload.server_image = "example.com/sluice:test";
    reconciler_ = std::make_unique<ModelDeploymentReconciler>(objects_, objects_, events_, options);
  }

  void CreateMd(const json& spec) {
    objects_.Put(api::kModelDeploymentsGvr, {{"apiVersion", "sluice.dev/v1alpha1"},
                                             {"kind", "ModelDeployment"},
                                             {"metadata", {{"name", kName}, {"namespace", kNs}}},
                                             {"spec", spec}});
  }
  Result<Action> Reconcile() { return reconciler_->Reconcile(ObjectKey{kNs, kName}); }
  json Md() { return *objects_.Find(api::kModelDeploymentsGvr, kNs, kName); }
  json Condition(const std::string& type) {
    for (const auto& c : Md()["status"].value("conditions", json::array())) {
      if (c["type"] == type) return c;
    }
    return nullptr;
  }
  std::vector<json> ServerDeployments() {
    std::vector<json> out;
    for (const auto& d : objects_.All(kube::resources::kDeployments)) {
      if (d["metadata"]["labels"].value(api::kLabelComponent, "") == "server") out.push_back(d);
    }
    return out;
  }
  void MarkServersReady() {
    for (const auto& d : objects_.All(kube::resources::kDeployments)) {
      const int replicas = d["spec"].value("replicas", 0);
      objects_.SetStatus(kube::resources::kDeployments, kNs, MetaString(d, "name"),
                         {{"observedGeneration", MetaGeneration(d)},
                          {"replicas", replicas},
                          {"readyReplicas", replicas}});
    }
  }

  sluice::testing::FakeClock clock_;
  testing::FakeObjects objects_;
  testing::FakeEvents events_;
  std::unique_ptr<ModelDeploymentReconciler> reconciler_;
};

TEST_F(FeaturesTest, TheServerReadsTheSelectedFeaturesAndGetsTheSecret) {
  objects_.Put(api::kFeatureViewsGvr, CardFeatures());
  objects_.Put(api::kFeatureViewsGvr, MerchantFeatures());
  CreateMd(Spec());
  ASSERT_TRUE(Reconcile().ok());
  auto servers = ServerDeployments();
  ASSERT_EQ(servers.size(), 1u);
  const json& c = servers[0]["spec"]["template"]["spec"]["containers"][0];

  auto command = api::ServerCommand::Parse(c["args"].get<std::vector<std::string>>());
  ASSERT_TRUE(command.ok()) << command.status();
  ASSERT_TRUE(command->feature_views.has_value());
  auto views = api::ParseFeatureViews(*command->feature_views);
  ASSERT_TRUE(views.ok()) << views.status();
  ASSERT_EQ(views->size(), 2u);
  auto card = api::FeatureViewConfig::FromResource(
      *objects_.Get(api::kFeatureViewsGvr, kNs, "card-features"), api::RedisConnectionEnv(0),
      {"avg_amount_30d", "velocity_last_24h"}, false);
  ASSERT_TRUE(card.ok());
  EXPECT_EQ((*views)[0], *card);
  ASSERT_EQ((*views)[0].features.size(), 2u);
  EXPECT_EQ((*views)[0].features[0].name, "avg_amount_30d");  // the order the MD asked for
  EXPECT_FALSE((*views)[0].source.has_value());
  EXPECT_EQ((*views)[1].redis_address, "redis.sluice-features.svc.cluster.local:6379");
  EXPECT_EQ((*views)[1].redis_db, 1);

  // Only the view whose connection lives in a Secret gets a variable, named for its index.
  ASSERT_EQ(c["env"].size(), 1u);
  EXPECT_EQ(c["env"][0]["name"], api::RedisConnectionEnv(0));
  EXPECT_EQ(c["env"][0]["valueFrom"]["secretKeyRef"]["name"], "fraud-redis");
  EXPECT_EQ(c["env"][0]["valueFrom"]["secretKeyRef"]["key"], "connection");
}

TEST_F(FeaturesTest, TheFeatureBudgetReachesTheServer) {
  objects_.Put(api::kFeatureViewsGvr, CardFeatures());
  objects_.Put(api::kFeatureViewsGvr, MerchantFeatures());
  json spec = Spec();
  spec["runtime"] = {{"featureBudget", "7500us"}};
  CreateMd(spec);
  ASSERT_TRUE(Reconcile().ok());
  auto servers = ServerDeployments();
  ASSERT_EQ(servers.size(), 1u);
  const json& c = servers[0]["spec"]["template"]["spec"]["containers"][0];
  auto command = api::ServerCommand::Parse(c["args"].get<std::vector<std::string>>());
  ASSERT_TRUE(command.ok()) << command.status();
  ASSERT_TRUE(command->feature_budget.has_value());
  EXPECT_EQ(*command->feature_budget, std::chrono::microseconds(7500));
}

TEST_F(FeaturesTest, AMissingViewRollsNothingOutAndSaysWhich) {
  objects_.Put(api::kFeatureViewsGvr, CardFeatures());
  CreateMd(Spec());
  auto action = Reconcile();
  ASSERT_FALSE(action.ok());
  EXPECT_TRUE(IsTerminal(action.status()));
  EXPECT_TRUE(ServerDeployments().empty());
  EXPECT_EQ(Condition("Degraded")["status"], "True");
  EXPECT_EQ(Condition("Degraded")["reason"], "FeatureViewNotFound");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("merchant-features"));
  EXPECT_TRUE(events_.Has("FeatureViewNotFound"));

  // The view appears (the FeatureView watch enqueues the ModelDeployment): it rolls out.
  objects_.Put(api::kFeatureViewsGvr, MerchantFeatures());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(ServerDeployments().size(), 1u);
  EXPECT_NE(Condition("Degraded")["reason"], "FeatureViewNotFound");
}

TEST_F(FeaturesTest, UnknownAndNonNumericFeaturesAreRefused) {
  objects_.Put(api::kFeatureViewsGvr, CardFeatures());
  objects_.Put(api::kFeatureViewsGvr, MerchantFeatures());
  json spec = Spec();
  spec["features"][0]["features"] = json::array({"velocity_last_24h", "no_such_feature"});
  CreateMd(spec);
  ASSERT_FALSE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "InvalidFeatureRef");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("no_such_feature"));
  EXPECT_TRUE(ServerDeployments().empty());

  spec["features"][0]["features"] = json::array({"country"});
  objects_.UpdateSpec(api::kModelDeploymentsGvr, kNs, kName, spec);
  ASSERT_FALSE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "InvalidFeatureRef");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("country"));
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("STRING"));

  // All features of a view that has a STRING one is refused too.
  spec["features"][0].erase("features");
  objects_.UpdateSpec(api::kModelDeploymentsGvr, kNs, kName, spec);
  ASSERT_FALSE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "InvalidFeatureRef");
}

TEST_F(FeaturesTest, AViewChangeIsANewRevisionAndABadOneKeepsTheServingRevision) {
  objects_.Put(api::kFeatureViewsGvr, CardFeatures());
  objects_.Put(api::kFeatureViewsGvr, MerchantFeatures());
  CreateMd(Spec());
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Md()["status"]["phase"], "Healthy") << Md()["status"].dump(2);
  const std::string first = Md()["status"]["stableRevision"];

  // The merchant view's ttl changes: the servers must read it, so a new revision rolls out.
  json merchant = MerchantFeatures()["spec"];
  merchant["ttl"] = "96h";
  objects_.UpdateSpec(api::kFeatureViewsGvr, kNs, "merchant-features", merchant);
  ASSERT_TRUE(Reconcile().ok());
  auto servers = ServerDeployments();
  ASSERT_EQ(servers.size(), 2u);
  for (const auto& d : servers) {
    if (MetaString(d, "name") == first) {
      // The serving revision keeps the views it was built with.
      EXPECT_THAT(d["spec"]["template"]["spec"]["containers"][0]["args"].dump(), HasSubstr("72h"));
    } else {
      EXPECT_THAT(d["spec"]["template"]["spec"]["containers"][0]["args"].dump(), HasSubstr("96h"));
    }
  }
  MarkServersReady();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Md()["status"]["phase"], "Healthy") << Md()["status"].dump(2);
  const std::string second = Md()["status"]["stableRevision"];
  EXPECT_NE(second, first);

  // The view goes away: nothing is rolled out or removed, the stable revision keeps serving.
  ASSERT_TRUE(objects_.Delete(api::kFeatureViewsGvr, kNs, "merchant-features", "").ok());
  const int writes = objects_.writes();
  ASSERT_FALSE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "FeatureViewNotFound");
  EXPECT_EQ(Md()["status"]["phase"], "Healthy");
  EXPECT_EQ(Md()["status"]["stableRevision"], second);
  EXPECT_EQ(objects_.writes(), writes);  // no object written, only the status
  EXPECT_TRUE(objects_.Find(kube::resources::kDeployments, kNs, second).has_value());
}

TEST(FeatureRefsTest, ModelDeploymentsReadingAViewAreFound) {
  testing::FakeObjects objects;
  auto md = [&](const std::string& name, json features) {
    json spec = Spec();
    spec["features"] = std::move(features);
    objects.Put(api::kModelDeploymentsGvr,
                {{"metadata", {{"name", name}, {"namespace", kNs}}}, {"spec", spec}});
  };
  md("a", json::array({{{"name", "card-features"}}}));
  md("b", json::array({{{"name", "merchant-features"}}}));
  md("c", json::array());
  auto keys = ModelDeploymentsReading(objects, kNs, "card-features");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].name, "a");
  EXPECT_TRUE(ModelDeploymentsReading(objects, "other", "card-features").empty());
}

}  // namespace
}  // namespace sluice::controllers
