// The FeatureView reconciler: its Secret check, status conditions and observedGeneration, and
// the recheck that heals a view once its Secret appears.

#include "controllers/featureview/reconciler.h"

#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/lib/controller/fake_objects.h"
#include "tests/lib/base/fake_clock.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class FakeSecrets final : public SecretReader {
 public:
  Result<json> GetSecret(const std::string& ns, const std::string& name) override {
    ++reads;
    if (forbidden) return sluice::Status(StatusCode::kForbidden, "forbidden");
    if (unavailable) return Unavailable("connection refused");
    auto it = secrets.find(ns + "/" + name);
    if (it == secrets.end()) return NotFound("secrets \"" + name + "\" not found");
    return it->second;
  }
  void Put(const std::string& ns, const std::string& name, const std::string& key,
           const std::string& base64) {
    secrets[ns + "/" + name] = {{"metadata", {{"name", name}, {"namespace", ns}}},
                                {"data", {{key, base64}}}};
  }
  std::map<std::string, json> secrets;
  bool forbidden = false;
  bool unavailable = false;
  int reads = 0;
};

json CardFeatures() {
  return {{"apiVersion", "sluice.dev/v1alpha1"},
          {"kind", "FeatureView"},
          {"metadata", {{"name", "card-features"}, {"namespace", "ml"}}},
          {"spec",
           {{"project", "fraud"},
            {"entities", json::array({{{"name", "card"}, {"joinKey", "card_id"}, {"valueType", "STRING"}}})},
            {"features", json::array({{{"name", "velocity_last_24h"}, {"type", "INT32"}, {"default", "0"}},
                                      {{"name", "avg_amount_30d"}, {"type", "DOUBLE"}, {"default", "0.0"}}})},
            {"ttl", "24h"},
            {"source", {{"type", "parquet"}, {"path", "/data/card.parquet"}, {"timestampField", "ts"}}},
            {"online", {{"redis", {{"addressSecretRef", {{"name", "fraud-redis"}, {"key", "connection"}}}, {"db", 0}, {"keyTtl", "0s"}}}}},
            {"materialization", {{"schedule", "*/15 * * * *"}}}}}};
}

class FeatureViewReconcilerTest : public ::testing::Test {
 protected:
  FeatureViewReconcilerTest()
      : reconciler_(objects_, secrets_, objects_, events_, FeatureViewReconcilerOptions{std::chrono::seconds(30), &clock_}) {}

  Result<Action> Reconcile() { return reconciler_.Reconcile(ObjectKey{"ml", "card-features"}); }
  json Fv() { return *objects_.Find(kFeatureViewsGvr, "ml", "card-features"); }
  json Condition(const std::string& type) {
    const json fv = Fv();
    for (const auto& c : fv["status"].value("conditions", json::array())) {
      if (c["type"] == type) return c;
    }
    return nullptr;
  }

  sluice::testing::FakeClock clock_;
  testing::FakeObjects objects_;
  testing::FakeEvents events_;
  FakeSecrets secrets_;
  FeatureViewReconciler reconciler_;
};

TEST_F(FeatureViewReconcilerTest, AMissingSecretDegradesTheViewAndIsRechecked) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  auto action = Reconcile();
  ASSERT_TRUE(action.ok()) << action.status();
  EXPECT_EQ(Fv()["status"]["observedGeneration"], 1);
  EXPECT_EQ(Condition("Degraded")["status"], "True");
  EXPECT_EQ(Condition("Degraded")["reason"], "SecretNotFound");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(),
              HasSubstr("spec.online.redis.addressSecretRef"));
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("fraud-redis"));
  EXPECT_EQ(Condition("Ready")["status"], "False");
  EXPECT_TRUE(events_.Has("SecretNotFound"));
  // A Secret created later is noticed without any change to the FeatureView.
  ASSERT_TRUE(action->requeue());
  EXPECT_EQ(action->requeue_after(), std::chrono::seconds(30));

  secrets_.Put("ml", "fraud-redis", "connection", "cmVkaXM6NjM3OSxwYXNzd29yZD1zM2NyM3Q=");
  clock_.Advance(std::chrono::seconds(30));
  action = Reconcile();
  ASSERT_TRUE(action.ok());
  EXPECT_FALSE(action->requeue());
  EXPECT_EQ(Condition("Degraded")["status"], "False");
  EXPECT_EQ(Condition("Ready")["status"], "False");
  EXPECT_EQ(Condition("Ready")["reason"], "NotMaterialized");
  EXPECT_TRUE(events_.Has("Recovered"));
}

TEST_F(FeatureViewReconcilerTest, SecretContentsAreChecked) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  secrets_.Put("ml", "fraud-redis", "other-key", "cmVkaXM6NjM3OQ==");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "SecretKeyNotFound");

  secrets_.Put("ml", "fraud-redis", "connection", "bm90IGEgY29ubmVjdGlvbg==");  // "not a connection"
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "InvalidRedisConnection");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("connection"));

  secrets_.Put("ml", "fraud-redis", "connection", "***");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "InvalidSecret");

  secrets_.forbidden = true;
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "SecretForbidden");
}

TEST_F(FeatureViewReconcilerTest, AnUnreachableApiIsRetriedNotReported) {
  objects_.Put(kFeatureViewsGvr, CardFeatures());
  secrets_.unavailable = true;
  auto action = Reconcile();
  ASSERT_FALSE(action.ok());
  EXPECT_EQ(action.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(IsTerminal(action.status()));
  EXPECT_FALSE(Fv().contains("status"));
}

TEST_F(FeatureViewReconcilerTest, ChecksBeyondCel) {
  json fv = CardFeatures();
  fv["spec"]["online"]["redis"] = {{"address", "redis.feast:6379"}};
  fv["spec"]["materialization"]["schedule"] = "0 25 * * *";
  objects_.Put(kFeatureViewsGvr, fv);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "InvalidSchedule");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("hour"));
  EXPECT_EQ(secrets_.reads, 0);

  fv["spec"]["materialization"]["schedule"] = "0 3 * * *";
  fv["spec"]["features"][0] = {{"name", "big"}, {"type", "INT64"}, {"default", "9223372036854775808"}};
  objects_.UpdateSpec(kFeatureViewsGvr, "ml", "card-features", fv["spec"]);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "InvalidDefault");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("spec.features[0].default"));
  EXPECT_EQ(Fv()["status"]["observedGeneration"], 2);

  fv["spec"]["features"][0] = {{"name", "f"}, {"type", "FLOAT"}, {"default", "1e39"}};
  objects_.UpdateSpec(kFeatureViewsGvr, "ml", "card-features", fv["spec"]);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "InvalidDefault");

  fv["spec"]["features"][0] = {{"name", "f"}, {"type", "FLOAT"}, {"default", "0.5"}};
  objects_.UpdateSpec(kFeatureViewsGvr, "ml", "card-features", fv["spec"]);
  auto action = Reconcile();
  ASSERT_TRUE(action.ok());
  EXPECT_FALSE(action->requeue());
  EXPECT_EQ(Condition("Degraded")["status"], "False");
  EXPECT_EQ(Fv()["status"]["observedGeneration"], 4);
}

TEST_F(FeatureViewReconcilerTest, StatusIsWrittenOnlyWhenItChangesAndKeepsTransitionTimes) {
  json fv = CardFeatures();
  fv["spec"]["online"]["redis"] = {{"address", "redis.feast:6379"}};
  objects_.Put(kFeatureViewsGvr, fv);
  ASSERT_TRUE(Reconcile().ok());
  const json first = Condition("Degraded");
  const int writes = objects_.status_writes();
  clock_.Advance(std::chrono::minutes(5));
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(objects_.status_writes(), writes);
  EXPECT_EQ(Condition("Degraded")["lastTransitionTime"], first["lastTransitionTime"]);

  // A completed materialization (written by the Job) makes it Ready.
  json status = Fv()["status"];
  status["lastMaterialized"] = {{"start", "2024-01-01T00:00:00Z"},
                                {"end", "2024-01-01T00:15:00Z"},
                                {"rows", 1200},
                                {"completionTime", "2024-01-01T00:16:00Z"}};
  objects_.SetStatus(kFeatureViewsGvr, "ml", "card-features", status);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Ready")["status"], "True");
  EXPECT_EQ(Condition("Ready")["reason"], "Materialized");
  EXPECT_EQ(Fv()["status"]["lastMaterialized"]["rows"], 1200);
}

}  // namespace
}  // namespace sluice::controllers
