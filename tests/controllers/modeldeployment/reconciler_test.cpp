// The ModelDeployment reconciler against in-memory objects and a fake clock: what it creates and
// owns, how it walks a rollout through the engine's decisions, and what it writes to status.

#include "controllers/modeldeployment/reconciler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controllers/rollout/engine.h"
#include "lib/api/object_labels.h"
#include "lib/api/time.h"
#include "tests/controllers/analysis/fake_metric_source.h"
#include "tests/lib/base/fake_clock.h"
#include "tests/lib/controller/fake_objects.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using testing::FakeEvents;
using testing::FakeObjects;

constexpr char kNs[] = "ml";
constexpr char kName[] = "fraud";

json FraudSpec(const std::string& version, const std::string& no_data_policy = "Pass") {
  return {
      {"model",
       {{"uri", "file:///models/fraud/fraud-v" + version + ".json"},
        {"format", "xgboost-json"},
        {"version", version}}},
      {"runtime",
       {{"resources", {{"requests", {{"cpu", "500m"}, {"memory", "256Mi"}}}}},
        {"batching", {{"maxBatchSize", 32}, {"maxQueueDelay", "1ms"}}}}},
      {"replicas", 2},
      {"rollout",
       {{"strategy", "Canary"},
        {"canary",
         {{"steps", json::array({{{"weight", 10}, {"pause", "10s"}},
                                 {{"weight", 50}, {"pause", "10s"}},
                                 {{"weight", 100}, {"pause", "0s"}}})},
          {"analysis", {{"interval", "5s"}, {"noDataPolicy", no_data_policy}}}}},
        {"scaleDownDelay", "30s"}}},
  };
}

class ModelDeploymentReconcilerTest : public ::testing::Test {
 protected:
  ModelDeploymentReconcilerTest() { Rebuild(); }

  // A new reconciler over the same objects: what an operator restart looks like.
  void Rebuild() {
    ModelDeploymentReconcilerOptions options;
    options.clock = &clock_;
    options.workload.server_image = "example.com/sluice:test";
    if (metric_source_) {
      options.metric_source = [source = metric_source_](const ModelDeployment&) { return source; };
    }
    options.concurrency = concurrency_;
    options.autoscale_period = autoscale_period_;
    reconciler_ = std::make_unique<ModelDeploymentReconciler>(objects_, objects_, events_, options);
  }

  json CreateMd(const json& spec) {
    return objects_.Put(api::kModelDeploymentsGvr,
                        {{"apiVersion", "sluice.dev/v1alpha1"},
                         {"kind", "ModelDeployment"},
                         {"metadata", {{"name", kName}, {"namespace", kNs}}},
                         {"spec", spec}});
  }

  Result<Action> Reconcile() { return reconciler_->Reconcile(ObjectKey{kNs, kName}); }

  json Md() { return *objects_.Find(api::kModelDeploymentsGvr, kNs, kName); }
  json Status() { return Md().value("status", json::object()); }

  // What kube-controller-manager and the kubelet would report: every pod of every server
  // Deployment Ready, for the Deployment's current spec.
  void MarkServersReady() {
    for (const auto& d : objects_.All(kube::resources::kDeployments)) {
      const int replicas = d["spec"].value("replicas", 0);
      objects_.SetStatus(kube::resources::kDeployments, kNs, MetaString(d, "name"),
                         {{"observedGeneration", MetaGeneration(d)},
                          {"replicas", replicas},
                          {"readyReplicas", replicas}});
    }
  }

  std::vector<std::string> ServerDeployments() {
    std::vector<std::string> out;
    for (const auto& d : objects_.All(kube::resources::kDeployments)) {
      if (d["metadata"]["labels"].value(api::kLabelComponent, "") == "server") {
        out.push_back(MetaString(d, "name"));
      }
    }
    return out;
  }

  int32_t Replicas(const std::string& deployment) {
    return (*objects_.Find(kube::resources::kDeployments, kNs, deployment))["spec"]["replicas"];
  }

  std::map<std::string, int> Traffic() {
    std::map<std::string, int> out;
    for (const auto& t : Status().value("traffic", json::array())) out[t["revision"]] = t["weight"];
    return out;
  }

  // Reconciles, then once more so that the status just written is what the engine reads.
  void Settle() {
    ASSERT_TRUE(Reconcile().ok());
    ASSERT_TRUE(Reconcile().ok());
  }

  // Deploys v1 and makes it Healthy.
  std::string DeployStable() {
    CreateMd(FraudSpec("1"));
    EXPECT_TRUE(Reconcile().ok());
    MarkServersReady();
    Settle();
    EXPECT_EQ(Status()["phase"], "Healthy");
    return Status()["stableRevision"];
  }

  // Changes the model version and reconciles until the canary's pods are Ready at step 0.
  std::string StartCanary(const std::string& version) {
    json spec = Md()["spec"];
    spec["model"]["version"] = version;
    spec["model"]["uri"] = "file:///models/fraud/fraud-v" + version + ".json";
    objects_.UpdateSpec(api::kModelDeploymentsGvr, kNs, kName, spec);
    EXPECT_TRUE(Reconcile().ok());
    MarkServersReady();
    Settle();
    return Status().value("canaryRevision", "");
  }

  sluice::testing::FakeClock clock_;
  FakeObjects objects_;
  FakeEvents events_;
  // Set before Rebuild() to give the reconciler these providers.
  std::shared_ptr<testing::FakeMetricSource> metric_source_;
  std::shared_ptr<ConcurrencySource> concurrency_;
  std::chrono::milliseconds autoscale_period_{0};
  std::unique_ptr<ModelDeploymentReconciler> reconciler_;
};

// Samples a test sets, per revision.
class FixedConcurrency final : public ConcurrencySource {
 public:
  void Set(const std::string& revision, std::vector<ConcurrencySample> samples) {
    std::lock_guard<std::mutex> lock(mu_);
    samples_[revision] = std::move(samples);
  }
  Result<std::vector<ConcurrencySample>> Samples(const std::string&, const std::string&,
                                                 const std::string& revision,
                                                 Clock::Steady::time_point since) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ConcurrencySample> out;
    for (const auto& s : samples_[revision]) {
      if (s.at >= since) out.push_back(s);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<ConcurrencySample>> samples_;  // guarded by mu_
};

TEST_F(ModelDeploymentReconcilerTest, AFailingCanaryIsRolledBackWithTheMeasuredNumbers) {
  metric_source_ = std::make_shared<testing::FakeMetricSource>();
  Rebuild();
  const std::string stable = DeployStable();
  const std::string canary = StartCanary("2");
  ASSERT_FALSE(canary.empty());
  metric_source_->model(canary).requests_per_second = 20;
  metric_source_->model(canary).error_fraction = 0.2;
  events_.Clear();
  for (int i = 0; i < 4 && Status()["phase"] != "RolledBack"; ++i) {
    clock_.Advance(std::chrono::seconds(5));
    MarkServersReady();
    Settle();
  }
  ASSERT_EQ(Status()["phase"], "RolledBack") << Status().dump(2);
  EXPECT_EQ(Traffic()[stable], 100);
  EXPECT_EQ(Traffic().count(canary), 0u);
  // The last run's numbers, verdict and time in status.
  const json last = Status()["lastAnalysis"];
  EXPECT_EQ(last["verdict"], "Fail");
  EXPECT_DOUBLE_EQ(last["values"]["error-rate"].get<double>(), 0.2);
  EXPECT_EQ(last["requests"], 100);
  EXPECT_TRUE(last.contains("time"));
  // The condition says why, with the measured numbers.
  bool degraded = false;
  const json conditions = Status()["conditions"];
  for (const auto& c : conditions) {
    if (c["type"] == "Degraded" && c["status"] == "True") {
      degraded = true;
      EXPECT_EQ(c["reason"], "AnalysisFailed");
      EXPECT_THAT(c["message"].get<std::string>(),
                  ::testing::HasSubstr("error-rate 0.2 > max 0.01"));
    }
  }
  EXPECT_TRUE(degraded) << conditions.dump(1);
  // An Event for every run, the failing ones as warnings with the numbers.
  int runs = 0;
  for (const auto& e : events_.events()) {
    if (e.reason != "AnalysisFail") continue;
    ++runs;
    EXPECT_EQ(e.type, EventSeverity::kWarning);
    EXPECT_THAT(e.message, ::testing::HasSubstr("error-rate 0.2"));
    EXPECT_THAT(e.message, ::testing::HasSubstr(canary));
  }
  EXPECT_EQ(runs, 2) << "failureThreshold 2: two failed runs, then the rollback";

  // It stays rolled back however long nothing changes...
  for (int i = 0; i < 6; ++i) {
    clock_.Advance(std::chrono::seconds(5));
    MarkServersReady();
    Settle();
  }
  EXPECT_EQ(Status()["phase"], "RolledBack");
  // ...until sluice.dev/retry asks for the same spec again.
  metric_source_->model(canary).error_fraction = 0;
  objects_.Merge(api::kModelDeploymentsGvr, kNs, kName,
                 {{"metadata", {{"annotations", {{api::kRetryAnnotation, "true"}}}}}});
  Settle();
  EXPECT_EQ(Status()["phase"], "Progressing");
  EXPECT_EQ(Status()["canaryRevision"], canary);
  EXPECT_TRUE(events_.Has("Retry"));
}

TEST_F(ModelDeploymentReconcilerTest, ConcurrencyAutoscalingIsRevisitedEveryScrapePeriod) {
  auto concurrency = std::make_shared<FixedConcurrency>();
  concurrency_ = concurrency;
  autoscale_period_ = std::chrono::seconds(1);
  Rebuild();
  json spec = FraudSpec("1");
  spec.erase("replicas");
  spec["autoscaling"] = {{"minReplicas", 1}, {"maxReplicas", 10}, {"targetConcurrency", 4}};
  CreateMd(spec);
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  Settle();
  const std::string rev = Status()["stableRevision"];
  EXPECT_EQ(Replicas(rev), 1);
  // At rest the reconciler still comes back within the period to read new samples.
  auto action = Reconcile();
  ASSERT_TRUE(action.ok());
  ASSERT_TRUE(action->requeue());
  EXPECT_LE(action->requeue_after(), std::chrono::milliseconds(1000));
  // 20 in flight at a target of 4: 5 replicas.
  std::vector<ConcurrencySample> samples;
  for (int i = 0; i < 6; ++i) {
    clock_.Advance(std::chrono::seconds(1));
    samples.push_back({clock_.Now(), 20});
  }
  concurrency->Set(rev, samples);
  Settle();
  EXPECT_EQ(Replicas(rev), 5);
}

TEST_F(ModelDeploymentReconcilerTest, FirstReconcileCreatesOwnedObjectsAndStatus) {
  const json md = CreateMd(FraudSpec("1"));
  auto action = Reconcile();
  ASSERT_TRUE(action.ok()) << action.status();

  // A Deployment and a Service for the revision, and the router's five objects.
  const auto servers = ServerDeployments();
  ASSERT_EQ(servers.size(), 1u);
  const std::string rev = servers[0];
  EXPECT_THAT(rev, ::testing::StartsWith("fraud-"));
  EXPECT_EQ(rev.size(), std::string("fraud-").size() + 10);
  ASSERT_TRUE(objects_.Find(kube::resources::kServices, kNs, rev));
  ASSERT_TRUE(objects_.Find(kube::resources::kDeployments, kNs, "fraud-router"));
  ASSERT_TRUE(objects_.Find(kube::resources::kServices, kNs, "fraud"));
  ASSERT_TRUE(objects_.Find(kube::resources::kServiceAccounts, kNs, "fraud-router"));
  ASSERT_TRUE(objects_.Find(kRolesGvr, kNs, "fraud-router"));
  ASSERT_TRUE(objects_.Find(kRoleBindingsGvr, kNs, "fraud-router"));

  // Every one is controlled by the ModelDeployment, so garbage collection deletes it.
  for (const auto* gvr : {&kube::resources::kDeployments, &kube::resources::kServices,
                          &kube::resources::kServiceAccounts, &kRolesGvr, &kRoleBindingsGvr}) {
    for (const auto& o : objects_.All(*gvr)) {
      const json* ref = ControllerRef(o);
      ASSERT_NE(ref, nullptr) << gvr->resource << "/" << MetaString(o, "name");
      EXPECT_EQ((*ref)["uid"], md["metadata"]["uid"]);
      EXPECT_EQ((*ref)["kind"], "ModelDeployment");
      EXPECT_EQ((*ref)["apiVersion"], "sluice.dev/v1alpha1");
      EXPECT_EQ((*ref)["blockOwnerDeletion"], true);
      EXPECT_EQ(o["metadata"]["labels"][api::kLabelManagedBy], "sluice-operator");
    }
  }

  const json d = *objects_.Find(kube::resources::kDeployments, kNs, rev);
  EXPECT_EQ(d["spec"]["replicas"], 2);
  EXPECT_EQ(d["metadata"]["labels"][api::kLabelRevision], rev);
  EXPECT_EQ(d["metadata"]["labels"][api::kLabelModelDeployment], "fraud");
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0]["image"], "example.com/sluice:test");

  const json status = Status();
  EXPECT_EQ(status["observedGeneration"], 1);
  EXPECT_EQ(status["phase"], "Progressing");
  EXPECT_EQ(status["selector"],
            "sluice.dev/modeldeployment=fraud,app.kubernetes.io/component=server");
  EXPECT_EQ(status["replicas"], 0);  // the Deployment has not reported yet
  EXPECT_TRUE(events_.Has("PhaseProgressing"));
  EXPECT_TRUE(events_.Has("RolloutStarted"));
}

TEST_F(ModelDeploymentReconcilerTest, ReadyPodsMakeItHealthyWithAllTraffic) {
  CreateMd(FraudSpec("1"));
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  Settle();
  const json status = Status();
  EXPECT_EQ(status["phase"], "Healthy");
  const std::string rev = status["stableRevision"];
  EXPECT_EQ(Traffic(), (std::map<std::string, int>{{rev, 100}}));
  EXPECT_EQ(status["readyReplicas"], 2);
  EXPECT_EQ(status["replicas"], 2);
  bool ready = false;
  for (const auto& c : status["conditions"]) {
    if (c["type"] == "Ready") ready = c["status"] == "True";
  }
  EXPECT_TRUE(ready);
  EXPECT_TRUE(events_.Has("PhaseHealthy"));
}

TEST_F(ModelDeploymentReconcilerTest, AFirstDeployWhoseModelNeverLoadsIsDegradedAtTheDeadline) {
  json spec = FraudSpec("1");
  spec["rollout"]["progressDeadline"] = "60s";
  CreateMd(spec);
  auto first = Reconcile();
  ASSERT_TRUE(first.ok()) << first.status();
  // Nothing else is timed: the reconciler is asked back at the deadline.
  EXPECT_EQ(first->requeue_after(), std::chrono::seconds(60));
  clock_.Advance(std::chrono::seconds(30));
  Settle();
  EXPECT_EQ(Status()["phase"], "Progressing");
  EXPECT_FALSE(events_.Has("ProgressDeadlineExceeded"));

  clock_.Advance(std::chrono::seconds(30));
  Settle();
  json status = Status();
  EXPECT_EQ(status["phase"], "Degraded");
  json degraded;
  for (const auto& c : status["conditions"]) {
    if (c["type"] == "Degraded") degraded = c;
  }
  EXPECT_EQ(degraded["status"], "True");
  EXPECT_EQ(degraded["reason"], "ProgressDeadlineExceeded");
  EXPECT_THAT(degraded.value("message", ""), ::testing::HasSubstr("never became ready"));
  EXPECT_TRUE(events_.Has("ProgressDeadlineExceeded"));
  EXPECT_TRUE(events_.Has("PhaseDegraded"));

  // The pods come up after all: Healthy, and no longer Degraded.
  MarkServersReady();
  Settle();
  status = Status();
  EXPECT_EQ(status["phase"], "Healthy");
  for (const auto& c : status["conditions"]) {
    if (c["type"] == "Degraded") {
      EXPECT_EQ(c["status"], "False");
    }
  }
}

TEST_F(ModelDeploymentReconcilerTest, AtRestAReconcileWritesNothing) {
  DeployStable();
  const int writes = objects_.writes();
  const int status_writes = objects_.status_writes();
  events_.Clear();
  auto action = Reconcile();
  ASSERT_TRUE(action.ok());
  EXPECT_EQ(objects_.writes(), writes);
  EXPECT_EQ(objects_.status_writes(), status_writes);
  EXPECT_TRUE(events_.events().empty());
  EXPECT_FALSE(action->requeue());
}

TEST_F(ModelDeploymentReconcilerTest, NewVersionWalksTheCanaryStepsAndScalesTheOldRevisionDown) {
  const std::string stable = DeployStable();
  const std::string canary = StartCanary("2");
  ASSERT_FALSE(canary.empty());
  ASSERT_NE(canary, stable);
  EXPECT_EQ(Status()["phase"], "Progressing");
  EXPECT_EQ(Traffic(), (std::map<std::string, int>{{stable, 90}, {canary, 10}}));
  EXPECT_EQ(Status()["currentStep"], 0);
  // The stable revision keeps its full size for the whole canary.
  EXPECT_EQ(Replicas(stable), 2);

  // The step's pause (10s) passes and the analysis (noDataPolicy Pass) lets it advance.
  for (int i = 0; i < 4 && Status()["currentStep"] == 0; ++i) {
    clock_.Advance(std::chrono::seconds(5));
    MarkServersReady();
    Settle();
  }
  EXPECT_EQ(Status()["currentStep"], 1);
  MarkServersReady();
  Settle();
  EXPECT_EQ(Traffic(), (std::map<std::string, int>{{stable, 50}, {canary, 50}}));

  for (int i = 0; i < 6 && Status().value("stableRevision", "") != canary; ++i) {
    clock_.Advance(std::chrono::seconds(5));
    MarkServersReady();
    Settle();
  }
  EXPECT_EQ(Status()["stableRevision"], canary);
  EXPECT_EQ(Status()["phase"], "Healthy");
  EXPECT_EQ(Traffic(), (std::map<std::string, int>{{canary, 100}}));
  // The written status keeps how each rollout ended: the first deploy, then this promotion.
  const json history = Status().value("history", json::array());
  ASSERT_EQ(history.size(), 2u) << history.dump(2);
  EXPECT_EQ(history[0]["revision"], stable);
  EXPECT_EQ(history[0]["result"], "Deployed");
  EXPECT_EQ(history[1]["revision"], canary);
  EXPECT_EQ(history[1]["result"], "Promoted");
  EXPECT_EQ(history[1]["modelVersion"], "2");
  // The old stable keeps its pods for scaleDownDelay (30s), then goes.
  EXPECT_TRUE(objects_.Find(kube::resources::kDeployments, kNs, stable));
  clock_.Advance(std::chrono::seconds(31));
  Settle();
  EXPECT_EQ(Replicas(stable), 0);
  MarkServersReady();  // the old pods are gone
  Settle();
  EXPECT_FALSE(objects_.Find(kube::resources::kDeployments, kNs, stable).has_value());
  EXPECT_FALSE(objects_.Find(kube::resources::kServices, kNs, stable).has_value());
  EXPECT_EQ(ServerDeployments(), std::vector<std::string>{canary});
}

TEST_F(ModelDeploymentReconcilerTest, AbortAnnotationSendsTrafficBackAndIsConsumed) {
  const std::string stable = DeployStable();
  const std::string canary = StartCanary("2");
  ASSERT_EQ(Traffic()[canary], 10);
  objects_.Merge(api::kModelDeploymentsGvr, kNs, kName,
                 {{"metadata", {{"annotations", {{api::kAbortAnnotation, "true"}}}}}});
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Status()["phase"], "RolledBack");
  EXPECT_EQ(Traffic(), (std::map<std::string, int>{{stable, 100}}));
  EXPECT_EQ(Md()["metadata"]["annotations"].count(api::kAbortAnnotation), 0u);
  bool warned = false;
  for (const auto& e : events_.events()) {
    if (e.reason == "Aborted") warned = e.type == EventSeverity::kWarning;
  }
  EXPECT_TRUE(warned);
  EXPECT_TRUE(events_.Has("PhaseRolledBack"));
  json history = Status().value("history", json::array());
  ASSERT_EQ(history.size(), 2u) << history.dump(2);
  EXPECT_EQ(history[1]["revision"], canary);
  EXPECT_EQ(history[1]["result"], "Aborted");
  EXPECT_EQ(history[1]["reason"], "Aborted");
  // Stays rolled back: the same spec is not retried without sluice.dev/retry, and history does
  // not grow while it waits.
  Settle();
  EXPECT_EQ(Status()["phase"], "RolledBack");
  EXPECT_EQ(Status().value("history", json::array()).size(), 2u);
}

TEST_F(ModelDeploymentReconcilerTest, WithoutAnAnalysisProviderPauseHoldsTheCanary) {
  // noDataPolicy Pause and no provider configured: never a silent pass.
  objects_.Put(api::kModelDeploymentsGvr, {{"apiVersion", "sluice.dev/v1alpha1"},
                                           {"kind", "ModelDeployment"},
                                           {"metadata", {{"name", kName}, {"namespace", kNs}}},
                                           {"spec", FraudSpec("1", "Pause")}});
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  Settle();
  const std::string canary = StartCanary("2");
  for (int i = 0; i < 8; ++i) {
    clock_.Advance(std::chrono::seconds(5));
    MarkServersReady();
    Settle();
  }
  EXPECT_EQ(Status()["currentStep"], 0);
  EXPECT_EQ(Traffic()[canary], 10);
  EXPECT_EQ(Status()["phase"], "Paused");
  EXPECT_EQ(Status()["lastAnalysis"]["verdict"], "NoData");
  EXPECT_THAT(Status()["lastAnalysis"]["message"].get<std::string>(),
              ::testing::HasSubstr("no analysis provider"));
}

TEST_F(ModelDeploymentReconcilerTest, RestartedReconcilerResumesAtTheSameStep) {
  const std::string stable = DeployStable();
  const std::string canary = StartCanary("2");
  for (int i = 0; i < 4 && Status()["currentStep"] == 0; ++i) {
    clock_.Advance(std::chrono::seconds(5));
    MarkServersReady();
    Settle();
  }
  ASSERT_EQ(Status()["currentStep"], 1);
  const json before = Status();
  Rebuild();
  Settle();
  EXPECT_EQ(Status()["currentStep"], 1);
  EXPECT_EQ(Status()["currentStepStartTime"], before["currentStepStartTime"]);
  EXPECT_EQ(Traffic(), (std::map<std::string, int>{{stable, 50}, {canary, 50}}));
}

TEST_F(ModelDeploymentReconcilerTest, StatusFromAStaleCacheIsRefusedAndRetried) {
  CreateMd(FraudSpec("1"));
  // The reconciler reads the object, then someone else writes it before the status lands:
  // emulated by failing the status write with the server's answer to a stale resourceVersion.
  objects_.FailWrites(0, {});
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  const int status_writes = objects_.status_writes();
  objects_.FailWrites(6, sluice::Status(StatusCode::kConflict, "the object has been modified"));
  auto failed = Reconcile();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kConflict);
  EXPECT_FALSE(IsTerminal(failed.status()));
  EXPECT_EQ(objects_.status_writes(), status_writes);
  objects_.FailWrites(0, {});
  Settle();
  EXPECT_EQ(Status()["phase"], "Healthy");
}

TEST_F(ModelDeploymentReconcilerTest, AnObjectOfTheSameNameOwnedByNobodyIsNotTakenOver) {
  objects_.Put(kube::resources::kServices, {{"apiVersion", "v1"},
                                            {"kind", "Service"},
                                            {"metadata", {{"name", kName}, {"namespace", kNs}}},
                                            {"spec", {{"selector", {{"app", "someone-else"}}}}}});
  CreateMd(FraudSpec("1"));
  auto result = Reconcile();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kConflict);
  EXPECT_EQ((*objects_.Find(kube::resources::kServices, kNs, kName))["spec"]["selector"]["app"],
            "someone-else");
}

TEST_F(ModelDeploymentReconcilerTest, ASpecTheEngineCannotUseIsDegradedAndTerminal) {
  json spec = FraudSpec("1");
  // The API server's CEL rules refuse this; the reconciler must not trust that blindly.
  spec["rollout"]["canary"]["steps"] = json::array({{{"weight", 50}}, {{"weight", 20}}});
  CreateMd(spec);
  auto result = Reconcile();
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(IsTerminal(result.status()));
  EXPECT_EQ(Status()["phase"], "Degraded");
  bool degraded = false;
  const json status = Status();
  for (const auto& c : status["conditions"]) {
    if (c["type"] == "Degraded") {
      degraded = c["status"] == "True" && c["reason"] == "InvalidSpec";
      EXPECT_THAT(c["message"].get<std::string>(), ::testing::HasSubstr("steps"));
    }
  }
  EXPECT_TRUE(degraded) << status.dump(2);
  EXPECT_TRUE(events_.Has("InvalidSpec"));
  EXPECT_TRUE(ServerDeployments().empty());
}

TEST_F(ModelDeploymentReconcilerTest, ADeletedModelDeploymentNeedsNothing) {
  auto action = Reconcile();
  ASSERT_TRUE(action.ok());
  EXPECT_FALSE(action->requeue());
  EXPECT_EQ(objects_.writes(), 0);
}

TEST_F(ModelDeploymentReconcilerTest, ARollingUpdateMovesOnlyOnWhatTheDeploymentsHaveDone) {
  json spec = FraudSpec("1");
  spec["replicas"] = 3;
  spec["rollout"] = {{"strategy", "Rolling"},
                     {"rolling", {{"maxSurge", 1}, {"maxUnavailable", 0}}}};
  CreateMd(spec);
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  Settle();
  ASSERT_EQ(Status()["phase"], "Healthy");
  const std::string old = Status()["stableRevision"];
  spec["model"]["version"] = "2";
  spec["model"]["uri"] = "file:///models/fraud/fraud-v2.json";
  objects_.UpdateSpec(api::kModelDeploymentsGvr, kNs, kName, spec);
  Settle();
  const std::string next = Status()["canaryRevision"];
  EXPECT_EQ(Replicas(old), 3);
  EXPECT_EQ(Replicas(next), 1);

  // The surge pod is Ready: one old pod goes. The new revision does not grow into its room
  // before the Deployment controller has acted: its status still counts 3 pods, and readiness
  // it describes belongs to the earlier size.
  MarkServersReady();
  Settle();
  EXPECT_EQ(Replicas(old), 2);
  EXPECT_EQ(Replicas(next), 1);
  // The old pod is gone (the status says so for the current spec): the new revision grows.
  MarkServersReady();
  Settle();
  EXPECT_EQ(Replicas(old), 2);
  EXPECT_EQ(Replicas(next), 2);
}

TEST_F(ModelDeploymentReconcilerTest, ScaleSubresourceChangeResizesWithoutARollout) {
  const std::string stable = DeployStable();
  json spec = Md()["spec"];
  spec["replicas"] = 5;
  objects_.UpdateSpec(api::kModelDeploymentsGvr, kNs, kName, spec);
  Settle();
  EXPECT_EQ(Replicas(stable), 5);
  EXPECT_EQ(Status()["stableRevision"], stable);
  EXPECT_FALSE(Status().contains("canaryRevision") &&
               !Status()["canaryRevision"].get<std::string>().empty());
  EXPECT_EQ(Status()["observedGeneration"], 2);
}

}  // namespace
}  // namespace sluice::controllers

namespace sluice::controllers {
namespace {

class HpaModeTest : public ModelDeploymentReconcilerTest {
 protected:
  json HpaSpec(const std::string& version) {
    json spec = FraudSpec(version, "Pass");
    spec.erase("replicas");
    spec["autoscaling"] = {
        {"mode", "HPA"}, {"minReplicas", 2}, {"maxReplicas", 20}, {"targetConcurrency", 6}};
    return spec;
  }
  std::optional<json> Hpa(const std::string& revision) {
    return objects_.Find(kube::resources::kHorizontalPodAutoscalers, kNs, revision);
  }
  // What the HPA controller does: writes the Deployment's replicas.
  void HpaScales(const std::string& revision, int replicas) {
    objects_.Merge(kube::resources::kDeployments, kNs, revision,
                   {{"spec", {{"replicas", replicas}}}});
  }
};

TEST_F(HpaModeTest, EachServingRevisionGetsAnHpaSizedByItsWeightAndKeepsItsScale) {
  CreateMd(HpaSpec("1"));
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  Settle();
  ASSERT_EQ(Status()["phase"], "Healthy");
  const std::string stable = Status()["stableRevision"];
  auto hpa = Hpa(stable);
  ASSERT_TRUE(hpa.has_value());
  EXPECT_EQ((*hpa)["spec"]["minReplicas"], 2);
  EXPECT_EQ((*hpa)["spec"]["maxReplicas"], 20);
  EXPECT_EQ((*hpa)["spec"]["metrics"][0]["pods"]["target"]["averageValue"], "6");
  EXPECT_EQ(Replicas(stable), 2);

  // The HPA scales the stable to 7; reconciles leave that alone.
  HpaScales(stable, 7);
  MarkServersReady();
  Settle();
  clock_.Advance(std::chrono::seconds(30));
  Settle();
  EXPECT_EQ(Replicas(stable), 7);

  // A canary at 10%: its own HPA with a tenth of the range, the stable's with 90%.
  json spec = HpaSpec("2");
  objects_.UpdateSpec(api::kModelDeploymentsGvr, kNs, kName, spec);
  ASSERT_TRUE(Reconcile().ok());
  MarkServersReady();
  Settle();
  const std::string canary = Status().value("canaryRevision", "");
  ASSERT_FALSE(canary.empty());
  ASSERT_EQ(Traffic()[canary], 10) << Status().dump();
  auto canary_hpa = Hpa(canary);
  ASSERT_TRUE(canary_hpa.has_value());
  EXPECT_EQ((*canary_hpa)["spec"]["minReplicas"], 1);
  EXPECT_EQ((*canary_hpa)["spec"]["maxReplicas"], 2);
  EXPECT_EQ((*Hpa(stable))["spec"]["maxReplicas"], 18);
  EXPECT_EQ(Replicas(stable), 7);

  // Aborted: the canary takes no traffic, loses its HPA, and the engine scales it down.
  objects_.Merge(api::kModelDeploymentsGvr, kNs, kName,
                 {{"metadata", {{"annotations", {{api::kAbortAnnotation, "true"}}}}}});
  Settle();
  EXPECT_EQ(Status()["phase"], "RolledBack");
  EXPECT_FALSE(Hpa(canary).has_value());
  EXPECT_EQ((*Hpa(stable))["spec"]["maxReplicas"], 20);
  clock_.Advance(std::chrono::seconds(31));
  MarkServersReady();
  Settle();
  EXPECT_EQ(Replicas(canary), 0);

  // Back to the built-in autoscaler: no HPA is left behind.
  spec = Md()["spec"];
  spec["autoscaling"]["mode"] = "Concurrency";
  objects_.UpdateSpec(api::kModelDeploymentsGvr, kNs, kName, spec);
  Settle();
  EXPECT_TRUE(objects_.All(kube::resources::kHorizontalPodAutoscalers).empty());
}

}  // namespace
}  // namespace sluice::controllers
