// A ModelDeployment whose model is a models:/ URI: the reconciler resolves it through the model
// registry (a fake behind ModelRegistry here; the MLflow client has its own tests against a real
// MLflow server), builds the revision from the version's artifact folder, follows an alias as it
// moves, refuses a version it rolled back, and keeps serving when the registry fails.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controllers/modeldeployment/reconciler.h"
#include "controllers/modeldeployment/resources.h"
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
constexpr char kTracking[] = "http://mlflow.mlops.svc:5000";

class FakeRegistry final : public ModelRegistry {
 public:
  Result<ResolvedModel> Resolve(const RegistryModelRef& ref, const RegistryAccess& access) override {
    ++calls;
    last_ref = ref;
    last_access = access;
    if (!error.ok()) return error;
    ResolvedModel m;
    m.version = version;
    m.source_uri = "s3://mlflow/1/models/m-" + version + "/artifacts";
    return m;
  }
  std::string version = "3";
  Status error;
  int calls = 0;
  RegistryModelRef last_ref;
  RegistryAccess last_access;
};

class FakeSecrets final : public SecretReader {
 public:
  Result<json> GetSecret(const std::string& ns, const std::string& name) override {
    auto it = secrets.find(ns + "/" + name);
    if (it == secrets.end()) return NotFound("secrets \"" + name + "\" not found");
    return it->second;
  }
  std::map<std::string, json> secrets;
};

json RegistrySpec(const std::string& uri = "models:/fraud@champion") {
  return {{"model",
           {{"uri", uri},
            {"credentials", {{"secretRef", {{"name", "mlflow-creds"}}}}},
            {"s3", {{"endpoint", "http://minio.storage:9000"}, {"region", "eu-west-1"}}},
            {"registry", {{"trackingUri", kTracking}, {"pollInterval", "30s"}}}}},
          {"replicas", 1},
          {"rollout",
           {{"strategy", "Canary"},
            {"canary",
             {{"steps", json::array({{{"weight", 10}, {"pause", "10s"}}, {{"weight", 100}, {"pause", "0s"}}})},
              {"analysis", {{"interval", "5s"}, {"noDataPolicy", "Pass"}}}}},
            {"scaleDownDelay", "30s"}}}};
}

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest() {
    registry_ = std::make_shared<FakeRegistry>();
    secrets_.secrets[std::string(kNs) + "/mlflow-creds"] = {
        {"metadata", {{"name", "mlflow-creds"}, {"namespace", kNs}}},
        {"data",
         {{"MLFLOW_TRACKING_TOKEN", "dG9rLTEyMw=="},
          {"AWS_ACCESS_KEY_ID", "QUtJREVYQU1QTEU="}}}};
    Rebuild();
  }
  void Rebuild(std::string default_tracking = "") {
    ModelDeploymentReconcilerOptions options;
    options.clock = &clock_;
    options.workload.server_image = "example.com/sluice:test";
    options.registry = registry_;
    options.secrets = &secrets_;
    options.default_tracking_uri = std::move(default_tracking);
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
  json Status() { return Md().value("status", json::object()); }
  json Condition(const std::string& type) {
    for (const auto& c : Status().value("conditions", json::array())) {
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
  json ServerOf(const std::string& revision) {
    auto d = objects_.Find(kube::resources::kDeployments, kNs, revision);
    return d ? *d : json();
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
  void Settle() {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(Reconcile().ok());
  }
  // Deploys version 3 of the alias and makes it Healthy.
  std::string DeployStable() {
    CreateMd(RegistrySpec());
    EXPECT_TRUE(Reconcile().ok());
    MarkServersReady();
    Settle();
    EXPECT_EQ(Status()["phase"], "Healthy");
    return Status().value("stableRevision", "");
  }
  int EventCount(const std::string& reason) {
    int n = 0;
    for (const auto& e : events_.events()) n += e.reason == reason;
    return n;
  }
  std::string EventMessage(const std::string& reason) {
    for (const auto& e : events_.events()) {
      if (e.reason == reason) return e.message;
    }
    return "";
  }

  sluice::testing::FakeClock clock_;
  testing::FakeObjects objects_;
  testing::FakeEvents events_;
  FakeSecrets secrets_;
  std::shared_ptr<FakeRegistry> registry_;
  std::unique_ptr<ModelDeploymentReconciler> reconciler_;
};

TEST_F(RegistryTest, AnAliasIsResolvedAndTheRevisionFetchesThatVersionsFolder) {
  CreateMd(RegistrySpec());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(registry_->calls, 1);
  EXPECT_EQ(registry_->last_ref.name, "fraud");
  EXPECT_EQ(registry_->last_ref.alias, "champion");
  EXPECT_EQ(registry_->last_access.tracking_uri, kTracking);
  EXPECT_EQ(registry_->last_access.token, "tok-123");  // from the Secret, decoded

  auto servers = ServerDeployments();
  ASSERT_EQ(servers.size(), 1u);
  const json& pod = servers[0]["spec"]["template"]["spec"];
  const json& c = pod["containers"][0];
  auto command = api::ServerCommand::Parse(c["args"].get<std::vector<std::string>>());
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->model_uri, "s3://mlflow/1/models/m-3/artifacts");
  EXPECT_EQ(command->model_format, "mlflow");
  EXPECT_EQ(command->model_version, "3");
  EXPECT_EQ(command->mlflow_tracking_uri, kTracking);
  EXPECT_EQ(command->s3_endpoint, "http://minio.storage:9000");
  EXPECT_EQ(command->s3_region, "eu-west-1");
  EXPECT_EQ(command->model_dir, std::string(kModelDir));
  // The fetched model lives in an emptyDir, so a restarted container does not fetch again.
  bool mounted = false;
  for (const auto& m : c["volumeMounts"]) mounted |= m["mountPath"] == std::string(kModelDir);
  EXPECT_TRUE(mounted) << c["volumeMounts"].dump();
  bool volume = false;
  for (const auto& v : pod["volumes"]) volume |= v["name"] == "model" && v.contains("emptyDir");
  EXPECT_TRUE(volume) << pod["volumes"].dump();
  // Credentials reach the pod by reference only, never as values.
  std::set<std::string> keys;
  for (const auto& e : c["env"]) {
    ASSERT_FALSE(e.contains("value")) << e.dump();
    EXPECT_EQ(e["valueFrom"]["secretKeyRef"]["name"], "mlflow-creds");
    keys.insert(e["valueFrom"]["secretKeyRef"]["key"]);
  }
  EXPECT_EQ(keys, (std::set<std::string>{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                         "AWS_SESSION_TOKEN", "MLFLOW_TRACKING_TOKEN"}));
  EXPECT_THAT(servers[0].dump(), ::testing::Not(HasSubstr("tok-123")));

  const json model = Status()["model"];
  EXPECT_EQ(model["uri"], "models:/fraud@champion");
  EXPECT_EQ(model["version"], "3");
  EXPECT_EQ(model["source"], "s3://mlflow/1/models/m-3/artifacts");
  EXPECT_TRUE(model.contains("resolvedTime"));
  // The revision shows the registry's version and where it came from.
  const std::string revision = MetaString(servers[0], "name");
  bool listed = false;
  const json status = Status();
  for (const auto& r : status["revisions"]) {
    if (r["name"] != revision) continue;
    listed = true;
    EXPECT_EQ(r["modelVersion"], "3");
    EXPECT_EQ(r["modelUri"], "s3://mlflow/1/models/m-3/artifacts");
  }
  EXPECT_TRUE(listed) << status.dump();
  EXPECT_THAT(EventMessage("RegistryResolved"), HasSubstr("models:/fraud@champion is version 3"));
  EXPECT_EQ(Status()["model"].dump().find("tok-123"), std::string::npos);
}

TEST_F(RegistryTest, AMovedAliasRollsOutAsANewRevisionAtTheNextPoll) {
  const std::string stable = DeployStable();
  const int calls = registry_->calls;
  registry_->version = "4";
  // Between polls the last answer stands: reconciles of pod changes ask nothing.
  Settle();
  EXPECT_EQ(registry_->calls, calls);
  EXPECT_EQ(Status()["stableRevision"], stable);
  EXPECT_FALSE(Status().contains("canaryRevision"));

  clock_.Advance(std::chrono::seconds(30));
  auto action = Reconcile();
  ASSERT_TRUE(action.ok()) << action.status();
  EXPECT_EQ(registry_->calls, calls + 1);
  EXPECT_TRUE(action->requeue());
  EXPECT_LE(action->requeue_after(), std::chrono::seconds(30));
  EXPECT_EQ(Status()["model"]["version"], "4");
  const std::string canary = Status().value("canaryRevision", "");
  ASSERT_FALSE(canary.empty());
  EXPECT_NE(canary, stable);
  EXPECT_THAT(ServerOf(canary)["spec"]["template"]["spec"]["containers"][0]["args"].dump(),
              HasSubstr("s3://mlflow/1/models/m-4/artifacts"));
  EXPECT_THAT(EventMessage("RegistryVersionChanged"), HasSubstr("from version 3 to 4"));

  // The canary walks its steps like any other.
  for (int i = 0; i < 8 && Status().value("stableRevision", "") != canary; ++i) {
    clock_.Advance(std::chrono::seconds(5));
    MarkServersReady();
    Settle();
  }
  EXPECT_EQ(Status()["stableRevision"], canary);
  EXPECT_EQ(Status()["phase"], "Healthy");
}

TEST_F(RegistryTest, TheRefreshAnnotationAsksAtOnceAndIsRemoved) {
  DeployStable();
  const int calls = registry_->calls;
  registry_->version = "4";
  objects_.Merge(api::kModelDeploymentsGvr, kNs, kName,
                 {{"metadata", {{"annotations", {{api::kRegistryRefreshAnnotation, "now"}}}}}});
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(registry_->calls, calls + 1);
  EXPECT_EQ(Status()["model"]["version"], "4");
  EXPECT_FALSE(Md()["metadata"].value("annotations", json::object()).contains(
      api::kRegistryRefreshAnnotation));
  EXPECT_FALSE(Status().value("canaryRevision", "").empty());
}

TEST_F(RegistryTest, ARolledBackVersionIsRefusedUntilTheRegistryNamesAnother) {
  const std::string stable = DeployStable();
  registry_->version = "4";
  clock_.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  Settle();
  const std::string bad = Status().value("canaryRevision", "");
  ASSERT_FALSE(bad.empty());
  objects_.Merge(api::kModelDeploymentsGvr, kNs, kName,
                 {{"metadata", {{"annotations", {{api::kAbortAnnotation, "true"}}}}}});
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Status()["phase"], "RolledBack");
  EXPECT_EQ(Status()["model"]["refusedVersion"], "4");
  EXPECT_FALSE(Status()["model"].value("refusedReason", "").empty());
  EXPECT_THAT(EventMessage("RegistryVersionRefused"),
              HasSubstr("version 4 of models:/fraud@champion was rolled back"));

  // The alias still names 4: polls change nothing, and the refusal is told once.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(std::chrono::seconds(30));
    MarkServersReady();
    Settle();
  }
  EXPECT_EQ(Status()["phase"], "RolledBack");
  EXPECT_EQ(Status()["stableRevision"], stable);
  EXPECT_EQ(EventCount("RegistryVersionRefused"), 1);

  // A fixed version 5 is rolled out, and the refusal is lifted.
  registry_->version = "5";
  clock_.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Status()["model"]["version"], "5");
  EXPECT_FALSE(Status()["model"].contains("refusedVersion"));
  const std::string next = Status().value("canaryRevision", "");
  EXPECT_FALSE(next.empty());
  EXPECT_NE(next, bad);
  EXPECT_EQ(Status()["phase"], "Progressing");
}

TEST_F(RegistryTest, ARegistryThatFailsLeavesTheServingVersionAndSaysWhy) {
  const std::string stable = DeployStable();
  registry_->error = Unavailable("connecting to http://mlflow.mlops.svc:5000: connection refused");
  clock_.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Status()["phase"], "Healthy");
  EXPECT_EQ(Status()["stableRevision"], stable);
  EXPECT_EQ(Condition("Degraded")["status"], "True");
  EXPECT_EQ(Condition("Degraded")["reason"], "RegistryUnavailable");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(),
              HasSubstr("connection refused; serving version 3"));
  EXPECT_EQ(ServerDeployments().size(), 1u);
  EXPECT_EQ(EventCount("RegistryUnavailable"), 1);
  // A status at rest: more reconciles write nothing new and warn no more.
  const json before = Status();
  Settle();
  EXPECT_EQ(Status(), before);
  EXPECT_EQ(EventCount("RegistryUnavailable"), 1);

  // It answers again.
  registry_->error = sluice::Status();
  clock_.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Condition("Degraded")["status"], "False");
}

TEST_F(RegistryTest, AnAliasThatDoesNotExistBuildsNothingAndIsDegraded) {
  registry_->error = NotFound("registered model fraud has no alias champion");
  CreateMd(RegistrySpec());
  auto action = Reconcile();
  ASSERT_TRUE(action.ok()) << action.status();
  EXPECT_TRUE(action->requeue());  // the alias may be set later: asked again
  EXPECT_TRUE(ServerDeployments().empty());
  EXPECT_EQ(Status()["phase"], "Degraded");
  EXPECT_EQ(Condition("Degraded")["reason"], "RegistryModelNotFound");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("no alias champion"));

  registry_->error = sluice::Status();
  clock_.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(ServerDeployments().size(), 1u);
}

TEST_F(RegistryTest, AnUnreachableRegistryOnFirstResolutionIsRetriedWithBackoff) {
  registry_->error = Unavailable("connection refused");
  CreateMd(RegistrySpec());
  auto action = Reconcile();
  ASSERT_FALSE(action.ok());  // the controller's backoff retries it
  EXPECT_EQ(Condition("Degraded")["reason"], "RegistryUnavailable");
  EXPECT_TRUE(ServerDeployments().empty());
}

TEST_F(RegistryTest, WithoutATrackingServerTheSpecIsDegradedAndTheOperatorDefaultApplies) {
  json spec = RegistrySpec();
  spec["model"].erase("registry");
  CreateMd(spec);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(registry_->calls, 0);
  EXPECT_EQ(Condition("Degraded")["reason"], "RegistryNotConfigured");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("--mlflow-tracking-uri"));

  Rebuild("http://mlflow.default:5000");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(registry_->last_access.tracking_uri, "http://mlflow.default:5000");
  EXPECT_EQ(ServerDeployments().size(), 1u);
}

TEST_F(RegistryTest, AMissingCredentialsSecretIsNamed) {
  secrets_.secrets.clear();
  CreateMd(RegistrySpec());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(registry_->calls, 0);
  EXPECT_EQ(Condition("Degraded")["reason"], "CredentialsSecretNotFound");
  EXPECT_THAT(Condition("Degraded")["message"].get<std::string>(), HasSubstr("mlflow-creds"));
}

TEST_F(RegistryTest, WithFollowOffAMovedAliasChangesNothing) {
  json spec = RegistrySpec();
  spec["model"]["registry"]["follow"] = false;
  CreateMd(spec);
  auto action = Reconcile();
  ASSERT_TRUE(action.ok());
  MarkServersReady();
  Settle();
  const std::string stable = Status().value("stableRevision", "");
  registry_->version = "4";
  clock_.Advance(std::chrono::minutes(5));
  Settle();
  EXPECT_EQ(registry_->calls, 1);
  EXPECT_EQ(Status()["model"]["version"], "3");
  EXPECT_EQ(Status()["stableRevision"], stable);
  EXPECT_FALSE(Status().contains("canaryRevision"));
}

TEST_F(RegistryTest, APinnedVersionIsAskedOnceAndSurvivesAnOperatorRestart) {
  CreateMd(RegistrySpec("models:/fraud/7"));
  registry_->version = "7";
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  Settle();
  EXPECT_EQ(registry_->last_ref.version, "7");
  const std::string stable = Status().value("stableRevision", "");
  clock_.Advance(std::chrono::minutes(5));
  Rebuild();  // a new operator process: status.model is its memory
  Settle();
  EXPECT_EQ(registry_->calls, 1);
  EXPECT_EQ(Status()["stableRevision"], stable);
}

TEST_F(RegistryTest, PodsThatCannotFetchTheModelAreNamedInDegradedWhileStableServes) {
  const std::string stable = DeployStable();
  registry_->version = "4";
  clock_.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(Reconcile().ok());
  const std::string canary = Status().value("canaryRevision", "");
  ASSERT_FALSE(canary.empty());
  // The canary's pod: its server exited on a fetch error and waits to be restarted.
  const std::string log =
      "{\"level\":\"info\",\"msg\":\"loading s3://mlflow/1/models/m-4/artifacts\"}\n"
      "{\"level\":\"error\",\"msg\":\"cannot read the MLflow model: Forbidden: s3://mlflow/1/"
      "models/m-4/artifacts/MLmodel: HTTP 403 SignatureDoesNotMatch\"}\n";
  objects_.Put(kube::resources::kPods,
               {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata",
                 {{"name", canary + "-abc12"},
                  {"namespace", kNs},
                  {"labels", {{api::kLabelRevision, canary}, {api::kLabelComponent, "server"}}}}},
                {"status",
                 {{"containerStatuses",
                   json::array({{{"name", "server"},
                                 {"ready", false},
                                 {"restartCount", 2},
                                 {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}},
                                 {"lastState",
                                  {{"terminated", {{"exitCode", 1}, {"reason", "Error"}, {"message", log}}}}}}})}}}});
  ASSERT_TRUE(Reconcile().ok());
  const json degraded = Condition("Degraded");
  EXPECT_EQ(degraded["status"], "True");
  EXPECT_EQ(degraded["reason"], "RevisionNotRunning");
  const std::string message = degraded["message"];
  EXPECT_THAT(message, HasSubstr("revision " + canary + " does not start"));
  EXPECT_THAT(message, HasSubstr("CrashLoopBackOff (exit 1): cannot read the MLflow model"));
  EXPECT_THAT(message, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(message, HasSubstr(stable + " keeps serving"));
  EXPECT_EQ(Status()["stableRevision"], stable);
  EXPECT_NE(Status()["phase"], "Degraded");
  EXPECT_EQ(EventCount("RevisionNotRunning"), 1);
  Settle();
  EXPECT_EQ(EventCount("RevisionNotRunning"), 1);

  // Once the pods run, the condition clears.
  ASSERT_TRUE(objects_.Delete(kube::resources::kPods, kNs, canary + "-abc12", "").ok());
  MarkServersReady();
  Settle();
  EXPECT_EQ(Condition("Degraded")["status"], "False");
}

TEST_F(RegistryTest, AnS3ModelGetsItsSettingsCredentialsAndAModelDir) {
  json spec = RegistrySpec("s3://models/fraud/v3/model.json");
  spec["model"].erase("registry");
  CreateMd(spec);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(registry_->calls, 0);
  auto servers = ServerDeployments();
  ASSERT_EQ(servers.size(), 1u);
  const json& c = servers[0]["spec"]["template"]["spec"]["containers"][0];
  auto command = api::ServerCommand::Parse(c["args"].get<std::vector<std::string>>());
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->model_uri, "s3://models/fraud/v3/model.json");
  EXPECT_EQ(command->model_format, std::nullopt);
  EXPECT_EQ(command->s3_endpoint, "http://minio.storage:9000");
  EXPECT_EQ(command->model_dir, std::string(kModelDir));
  EXPECT_FALSE(Status().contains("model"));
  EXPECT_EQ(c["env"].size(), 4u);

  // Another endpoint is another revision: its pods fetch from elsewhere.
  const std::string first = MetaString(servers[0], "name");
  spec["model"]["s3"]["endpoint"] = "http://ceph.storage:7480";
  objects_.UpdateSpec(api::kModelDeploymentsGvr, kNs, kName, spec);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_NE(Status().value("canaryRevision", first), first);
}

TEST_F(RegistryTest, AFileModelHasNoModelDirAndKeepsItsRevisionName) {
  json spec = {{"model", {{"uri", "file:///models/fraud.json"}}}, {"replicas", 1}};
  CreateMd(spec);
  ASSERT_TRUE(Reconcile().ok());
  auto servers = ServerDeployments();
  ASSERT_EQ(servers.size(), 1u);
  const json& c = servers[0]["spec"]["template"]["spec"]["containers"][0];
  EXPECT_THAT(c["args"].dump(), ::testing::Not(HasSubstr("--model-dir")));
  EXPECT_FALSE(c.contains("env"));
  EXPECT_EQ(servers[0]["spec"]["template"]["spec"]["volumes"].size(), 1u);  // /tmp only
}

}  // namespace
}  // namespace sluice::controllers
