// spec.tls through the reconciler: the Secret is checked before anything mounts it (a missing one
// is named in Degraded and nothing rolls out), then the revision and the router are built for
// TLS, and a revision of the spec without tls keeps serving as it was until the canary replaces it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controllers/modeldeployment/reconciler.h"
#include "controllers/modeldeployment/resources.h"
#include "lib/api/object_labels.h"
#include "lib/api/router_command.h"
#include "lib/api/server_command.h"
#include "tests/lib/base/fake_clock.h"
#include "tests/lib/controller/fake_objects.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kNs[] = "ml";
constexpr char kName[] = "fraud";

class MapSecrets final : public SecretReader {
 public:
  Result<json> GetSecret(const std::string& ns, const std::string& name) override {
    auto it = secrets.find(ns + "/" + name);
    if (it == secrets.end()) return NotFound("secrets \"" + name + "\" not found");
    return it->second;
  }
  std::map<std::string, json> secrets;
};

json Spec(bool tls) {
  json spec = {{"model", {{"uri", "file:///models/fraud.json"}, {"format", "xgboost-json"}}},
               {"replicas", 1},
               {"rollout",
                {{"strategy", "Canary"},
                 {"canary",
                  {{"steps", json::array({{{"weight", 50}, {"pause", "10s"}},
                                          {{"weight", 100}, {"pause", "0s"}}})},
                   {"analysis", {{"interval", "5s"}, {"noDataPolicy", "Pass"}}}}},
                 {"scaleDownDelay", "30s"}}}};
  if (tls) spec["tls"] = {{"secretName", "fraud-tls"}};
  return spec;
}

class TlsReconcileTest : public ::testing::Test {
 protected:
  TlsReconcileTest() {
    ModelDeploymentReconcilerOptions options;
    options.clock = &clock_;
    options.workload.server_image = "example.com/sluice:test";
    options.secrets = &secrets_;
    reconciler_ = std::make_unique<ModelDeploymentReconciler>(objects_, objects_, events_, options);
  }
  void PutSecret(bool with_ca) {
    json data = {{"tls.crt", "Y2VydA=="}, {"tls.key", "a2V5"}};
    if (with_ca) data["ca.crt"] = "Y2E=";
    secrets_.secrets[std::string(kNs) + "/fraud-tls"] = {
        {"metadata", {{"name", "fraud-tls"}, {"namespace", kNs}}},
        {"type", "kubernetes.io/tls"},
        {"data", data}};
  }
  void PutMd(const json& spec) {
    if (objects_.Find(api::kModelDeploymentsGvr, kNs, kName)) {
      objects_.UpdateSpec(api::kModelDeploymentsGvr, kNs, kName, spec);
      return;
    }
    objects_.Put(api::kModelDeploymentsGvr, {{"apiVersion", "sluice.dev/v1alpha1"},
                                             {"kind", "ModelDeployment"},
                                             {"metadata", {{"name", kName}, {"namespace", kNs}}},
                                             {"spec", spec}});
  }
  Result<Action> Reconcile() { return reconciler_->Reconcile(ObjectKey{kNs, kName}); }
  json Status() {
    return objects_.Find(api::kModelDeploymentsGvr, kNs, kName)->value("status", json::object());
  }
  json Condition(const std::string& type) {
    for (const auto& c : Status().value("conditions", json::array())) {
      if (c["type"] == type) return c;
    }
    return nullptr;
  }
  std::vector<json> Deployments(const std::string& component) {
    std::vector<json> out;
    for (const auto& d : objects_.All(kube::resources::kDeployments)) {
      if (d["metadata"]["labels"].value(api::kLabelComponent, "") == component) out.push_back(d);
    }
    return out;
  }
  void MarkReady() {
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
  MapSecrets secrets_;
  std::unique_ptr<ModelDeploymentReconciler> reconciler_;
};

TEST_F(TlsReconcileTest, AMissingSecretIsNamedInDegradedAndNothingIsCreated) {
  PutMd(Spec(true));
  auto action = Reconcile();
  ASSERT_TRUE(action.ok()) << action.status();
  EXPECT_EQ(Status()["phase"], "Degraded");
  EXPECT_EQ(Condition("Degraded")["reason"], "TLSSecretNotFound");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("fraud-tls"));
  EXPECT_TRUE(Deployments("server").empty());
  EXPECT_TRUE(Deployments("router").empty());

  // A Secret without its key is named too.
  secrets_.secrets[std::string(kNs) + "/fraud-tls"] = {{"data", {{"tls.crt", "Y2VydA=="}}}};
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["reason"], "TLSSecretInvalid");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("tls.key"));

  // Once it exists, the revision and the router come up with TLS.
  PutSecret(/*with_ca=*/true);
  ASSERT_TRUE(Reconcile().ok());
  auto servers = Deployments("server");
  ASSERT_EQ(servers.size(), 1u);
  const json& pod = servers[0]["spec"]["template"]["spec"];
  EXPECT_EQ(pod["volumes"].back()["secret"]["secretName"], "fraud-tls");
  EXPECT_EQ(pod["containers"][0]["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
  auto server =
      api::ServerCommand::Parse(pod["containers"][0]["args"].get<std::vector<std::string>>());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(server->tls_cert_file.has_value());
  auto routers = Deployments("router");
  ASSERT_EQ(routers.size(), 1u);
  auto router =
      api::RouterCommand::Parse(routers[0]["spec"]["template"]["spec"]["containers"][0]["args"]
                                    .get<std::vector<std::string>>());
  ASSERT_TRUE(router.ok()) << router.status();
  EXPECT_EQ(router->upstream_ca_file, std::string(kTlsDir) + "/ca.crt");
  auto service = objects_.Find(kube::resources::kServices, kNs, MetaString(servers[0], "name"));
  ASSERT_TRUE(service);
  EXPECT_EQ((*service)["spec"]["ports"][0]["appProtocol"], "https");
}

TEST_F(TlsReconcileTest, TurningTlsOnRollsOutANewRevisionBesideThePlainOne) {
  PutMd(Spec(false));
  ASSERT_TRUE(Reconcile().ok());
  MarkReady();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Status()["phase"], "Healthy");
  const std::string plain = Status().value("stableRevision", "");
  const json plain_deployment = *objects_.Find(kube::resources::kDeployments, kNs, plain);

  PutSecret(/*with_ca=*/false);
  PutMd(Spec(true));
  ASSERT_TRUE(Reconcile().ok());
  const std::string canary = Status().value("canaryRevision", "");
  ASSERT_FALSE(canary.empty());
  EXPECT_NE(canary, plain);
  // The plain revision is re-applied as it was: no TLS, no restart.
  EXPECT_EQ((*objects_.Find(kube::resources::kDeployments, kNs, plain))["spec"]["template"],
            plain_deployment["spec"]["template"]);
  auto plain_service = objects_.Find(kube::resources::kServices, kNs, plain);
  ASSERT_TRUE(plain_service);
  EXPECT_FALSE((*plain_service)["spec"]["ports"][0].contains("appProtocol"));
  auto tls_service = objects_.Find(kube::resources::kServices, kNs, canary);
  ASSERT_TRUE(tls_service);
  EXPECT_EQ((*tls_service)["spec"]["ports"][0]["appProtocol"], "https");
  // Without ca.crt the router verifies TLS revisions against the system store.
  auto router = api::RouterCommand::Parse(
      Deployments("router")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
          .get<std::vector<std::string>>());
  ASSERT_TRUE(router.ok());
  EXPECT_FALSE(router->upstream_ca_file.has_value());
  EXPECT_TRUE(router->tls_cert_file.has_value());
}

}  // namespace
}  // namespace sluice::controllers
