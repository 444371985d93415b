// The local end-to-end test of sluice-operator: the real binary against a kwok cluster (real
// kube-apiserver, kube-controller-manager and kube-scheduler; kwok makes pods Ready on fake
// nodes). Covers the fraud sample from apply to Healthy, a canary walking 10 → 50 → 100 and the
// old revision scaled down, abort, invalid specs refused by the API server, the operator killed
// and restarted mid-rollout, deletion by garbage collection, and a clean SIGTERM.
//
// The tests of the suite run in order against one cluster and one operator process.

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/controllers/operator_env.h"
#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "tests/support/process.h"

namespace sluice::controllers::e2e {
namespace {

using it::ConditionReason;
using it::Eventually;
using it::json;
using it::Phase;
using it::TrafficOf;
using std::chrono::seconds;
namespace fs = std::filesystem;

const std::string kSource = SLUICE_SOURCE_DIR;
const std::string kOperatorBin = SLUICE_OPERATOR_BIN;
constexpr char kNs[] = "sluice-e2e";
constexpr char kSystemNs[] = "sluice-system";

class OperatorE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/sluice-op-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = new std::string(pattern);
    std::cerr << "e2e: cluster and logs in " << *dir_ << "\n";
    const auto start = std::chrono::steady_clock::now();
    auto up = sluice::testing::RunCommand(
        {"bash", kSource + "/e2e/cluster/kwok-up.sh", *dir_, "2"}, seconds(420));
    ASSERT_TRUE(up.ok()) << up.status();
    ASSERT_TRUE(up->status.success()) << up->output;
    std::cerr << "e2e: kwok cluster up in "
              << std::chrono::duration_cast<seconds>(std::chrono::steady_clock::now() - start).count()
              << " s\n";
    auto config = kube::Config::FromKubeconfig(*dir_ + "/kubeconfig");
    ASSERT_TRUE(config.ok()) << config.status();
    auto client = kube::Client::Create(*config);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = client->release();
    Status crds = it::InstallCrds(*client_, kSource + "/crds");
    ASSERT_TRUE(crds.ok()) << crds;
    ASSERT_TRUE(it::CreateNamespace(*client_, kNs).ok());
    ASSERT_TRUE(it::CreateNamespace(*client_, kSystemNs).ok());
    StartOperator("e2e-operator-1");
  }

  static void TearDownTestSuite() {
    if (op_ != nullptr) {
      (void)op_->Stop(seconds(30));
      delete op_;
      op_ = nullptr;
    }
    if (dir_ != nullptr) {
      auto down = sluice::testing::RunCommand({"bash", kSource + "/e2e/cluster/kwok-down.sh", *dir_},
                                              seconds(120));
      if (!down.ok() || !down->status.success()) {
        std::cerr << "e2e: kwok-down failed: " << (down.ok() ? down->output : down.status().ToString());
      }
      if (!::testing::UnitTest::GetInstance()->Passed()) {
        std::cerr << "e2e: keeping " << *dir_ << " for its logs; operator log tail:\n"
                  << sluice::testing::TailFile(*dir_ + "/operator.log", 60) << "\n";
      } else {
        std::error_code ec;
        fs::remove_all(*dir_, ec);
      }
    }
  }

  // Runs the sluice-operator binary and waits until it serves /readyz and leads.
  static void StartOperator(const std::string& identity) {
    fs::remove(*dir_ + "/ports.json");
    sluice::testing::SpawnOptions so;
    so.argv = {kOperatorBin,
               "--kubeconfig=" + *dir_ + "/kubeconfig",
               "--leader-elect=on",
               "--leader-election-namespace=" + std::string(kSystemNs),
               "--identity=" + identity,
               "--lease-duration=6s",
               "--renew-deadline=4s",
               "--retry-period=1s",
               "--metrics-addr=127.0.0.1:0",
               "--health-addr=127.0.0.1:0",
               "--ports-file=" + *dir_ + "/ports.json",
               "--workers=4",
               "--log-format=json",
               "--server-image=registry.invalid/sluice:e2e"};
    so.log_path = *dir_ + "/operator.log";
    so.append_log = true;
    auto spawned = sluice::testing::Subprocess::Spawn(so);
    ASSERT_TRUE(spawned.ok()) << spawned.status();
    op_ = spawned->release();
    ASSERT_TRUE(Eventually([] { return fs::exists(*dir_ + "/ports.json"); }, seconds(30)))
        << sluice::testing::TailFile(*dir_ + "/operator.log");
    std::ifstream f(*dir_ + "/ports.json");
    const json ports = json::parse(f);
    metrics_port_ = ports["metrics"];
    health_port_ = ports["health"];
    ASSERT_TRUE(Eventually([] { return it::HttpGet(health_port_, "/readyz").first == 200; }, seconds(60)))
        << sluice::testing::TailFile(*dir_ + "/operator.log");
    ASSERT_TRUE(Eventually([] {
      return it::HttpGet(metrics_port_, "/metrics").second.find("sluice_operator_leader 1") !=
             std::string::npos;
    }, seconds(60))) << sluice::testing::TailFile(*dir_ + "/operator.log");
  }

  // The fraud sample with pauses short enough for a test. No analysis provider runs in this
  // cluster, so noDataPolicy Pass says explicitly that missing data must not hold the rollout.
  static json FraudSample(const std::string& name = "fraud") {
    json md = it::LoadSample(kSource + "/crds/samples/fraud-modeldeployment.yaml", kNs);
    md["metadata"]["name"] = name;
    md["spec"]["rollout"]["canary"]["steps"] = json::array(
        {{{"weight", 10}, {"pause", "3s"}}, {{"weight", 50}, {"pause", "3s"}}, {{"weight", 100}, {"pause", "0s"}}});
    md["spec"]["rollout"]["canary"]["analysis"]["interval"] = "1s";
    md["spec"]["rollout"]["canary"]["analysis"]["noDataPolicy"] = "Pass";
    md["spec"]["rollout"]["scaleDownDelay"] = "3s";
    return md;
  }

  static json Md(const std::string& name = "fraud") {
    auto md = client_->Get(it::kMdGvr, kNs, name);
    return md.ok() ? *md : json::object();
  }

  static void Patch(const std::string& name, const json& patch) {
    auto patched = client_->Patch(it::kMdGvr, kNs, name, kube::PatchType::kMerge, patch.dump());
    ASSERT_TRUE(patched.ok()) << patched.status();
  }

  static void SetModelVersion(const std::string& name, const std::string& version) {
    Patch(name, {{"spec", {{"model", {{"version", version},
                                      {"uri", "file:///models/fraud/fraud-v" + version + ".json"}}}}}});
  }

  static std::vector<json> Labelled(const kube::GroupVersionResource& gvr, const std::string& md) {
    kube::ListOptions lo;
    lo.label_selector = "sluice.dev/modeldeployment=" + md;
    auto list = client_->List(gvr, kNs, lo);
    return list.ok() ? (*list)["items"].get<std::vector<json>>() : std::vector<json>{};
  }

  static bool PodsReady(const std::string& md, size_t want) {
    auto pods = Labelled(kube::resources::kPods, md);
    size_t ready = 0;
    for (const auto& p : pods) {
      if (p["metadata"].contains("deletionTimestamp")) continue;
      for (const auto& c : p["status"].value("conditions", json::array())) {
        if (c.value("type", "") == "Ready" && c.value("status", "") == "True") ++ready;
      }
    }
    return ready == want;
  }

  static std::string OperatorLogTail() { return sluice::testing::TailFile(*dir_ + "/operator.log", 40); }

  static std::string* dir_;
  static kube::Client* client_;
  static sluice::testing::Subprocess* op_;
  static int metrics_port_;
  static int health_port_;
};

std::string* OperatorE2e::dir_ = nullptr;
kube::Client* OperatorE2e::client_ = nullptr;
sluice::testing::Subprocess* OperatorE2e::op_ = nullptr;
int OperatorE2e::metrics_port_ = 0;
int OperatorE2e::health_port_ = 0;

TEST_F(OperatorE2e, FraudSampleComesUpHealthyWithReadyPods) {
  ASSERT_NE(client_, nullptr);
  const auto applied_at = std::chrono::steady_clock::now();
  auto applied = client_->Apply(it::kMdGvr, kNs, FraudSample(), "kubectl", true);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_TRUE(Eventually([] { return Phase(Md()) == "Healthy"; }, seconds(180)))
      << Md().dump(2) << OperatorLogTail();
  std::cerr << "e2e: apply -> Healthy in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - applied_at).count()
            << " ms\n";
  const json md = Md();
  const std::string stable = md["status"]["stableRevision"];
  EXPECT_EQ(TrafficOf(md), (std::map<std::string, int>{{stable, 100}}));
  EXPECT_EQ(md["status"]["readyReplicas"], 2);
  EXPECT_EQ(md["status"]["observedGeneration"], md["metadata"]["generation"]);
  // The revision's pods (2) and the router's (1) are Ready on the fake nodes.
  EXPECT_TRUE(Eventually([] { return PodsReady("fraud", 3); }, seconds(60)));
  EXPECT_EQ(Labelled(kube::resources::kDeployments, "fraud").size(), 2u);
  EXPECT_EQ(Labelled(kube::resources::kServices, "fraud").size(), 2u);

  // Structured logs: one JSON object per line, with md=ns/name lifted into a field.
  std::ifstream log(*dir_ + "/operator.log");
  std::string line;
  bool found = false;
  while (std::getline(log, line)) {
    json entry = json::parse(line, nullptr, false);
    ASSERT_FALSE(entry.is_discarded()) << "not JSON: " << line;
    if (entry.value("md", "") == std::string(kNs) + "/fraud") found = true;
  }
  EXPECT_TRUE(found);
}

TEST_F(OperatorE2e, NewVersionWalksTenFiftyHundredAndTheOldRevisionIsScaledDown) {
  const std::string old_stable = Md()["status"].value("stableRevision", "");
  ASSERT_FALSE(old_stable.empty());
  std::vector<int> weights;
  std::vector<int> old_replicas;
  SetModelVersion("fraud", "2");
  ASSERT_TRUE(Eventually([&] {
    const json md = Md();
    const int w = md["status"].value("canaryWeight", 0);
    if (w > 0 && (weights.empty() || weights.back() != w)) weights.push_back(w);
    auto old = client_->Get(kube::resources::kDeployments, kNs, old_stable);
    if (old.ok()) {
      const int r = (*old)["spec"]["replicas"];
      if (old_replicas.empty() || old_replicas.back() != r) old_replicas.push_back(r);
    }
    return Phase(md) == "Healthy" && md["status"].value("stableRevision", "") != old_stable;
  }, seconds(180), std::chrono::milliseconds(100))) << Md().dump(2) << OperatorLogTail();
  const json md = Md();
  const std::string stable = md["status"]["stableRevision"];
  EXPECT_EQ(TrafficOf(md), (std::map<std::string, int>{{stable, 100}}));
  // 10 and 50 under the canary; the moment at 100 before the promotion completes is brief and
  // may fall between two polls.
  ASSERT_GE(weights.size(), 2u) << ::testing::PrintToString(weights);
  EXPECT_EQ(weights[0], 10) << ::testing::PrintToString(weights);
  EXPECT_EQ(weights[1], 50) << ::testing::PrintToString(weights);
  for (size_t i = 2; i < weights.size(); ++i) EXPECT_EQ(weights[i], 100) << ::testing::PrintToString(weights);
  // The old stable kept its full size for the whole canary.
  EXPECT_EQ(old_replicas, std::vector<int>{2});
  // After the promotion it is scaled down and its objects and pods go.
  ASSERT_TRUE(Eventually([&] {
    return !client_->Get(kube::resources::kDeployments, kNs, old_stable).ok() &&
           !client_->Get(kube::resources::kServices, kNs, old_stable).ok();
  }, seconds(60))) << OperatorLogTail();
  ASSERT_TRUE(Eventually([] { return PodsReady("fraud", 3) && Labelled(kube::resources::kPods, "fraud").size() == 3; },
                         seconds(120)));
}

TEST_F(OperatorE2e, AbortPutsTrafficBackOnStable) {
  const std::string stable = Md()["status"].value("stableRevision", "");
  Patch("fraud", {{"spec", {{"rollout", {{"canary", {{"steps", json::array({{{"weight", 10}}, {{"weight", 100}, {"pause", "0s"}}})}}}}}}}});
  SetModelVersion("fraud", "3");
  ASSERT_TRUE(Eventually([] { return Md()["status"].value("canaryWeight", 0) == 10; }, seconds(120)))
      << Md().dump(2);
  Patch("fraud", {{"metadata", {{"annotations", {{"sluice.dev/abort", "true"}}}}}});
  ASSERT_TRUE(Eventually([] { return Phase(Md()) == "RolledBack"; }, seconds(60))) << Md().dump(2);
  const json md = Md();
  EXPECT_EQ(TrafficOf(md), (std::map<std::string, int>{{stable, 100}}));
  EXPECT_EQ(ConditionReason(md, "Degraded"), "True/Aborted");
  EXPECT_TRUE(Eventually([] {
    return !Md()["metadata"].value("annotations", json::object()).contains("sluice.dev/abort");
  }));
  // The rolled-back canary's pods go; the stable's stay.
  EXPECT_TRUE(Eventually([] { return PodsReady("fraud", 3) && Labelled(kube::resources::kPods, "fraud").size() == 3; },
                         seconds(120)));
}

TEST_F(OperatorE2e, InvalidSpecsAreRefusedWithTheFieldNamed) {
  struct Case {
    const char* what;
    std::function<void(json&)> mutate;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"weights not increasing",
       [](json& m) { m["spec"]["rollout"]["canary"]["steps"] = json::array({{{"weight", 50}}, {{"weight", 10}}, {{"weight", 100}}}); },
       "spec.rollout.canary.steps"},
      {"last step not 100",
       [](json& m) { m["spec"]["rollout"]["canary"]["steps"] = json::array({{{"weight", 10}}, {{"weight", 50}}}); },
       "spec.rollout.canary.steps"},
      {"weight above 100",
       [](json& m) { m["spec"]["rollout"]["canary"]["steps"] = json::array({{{"weight", 150}}}); },
       "spec.rollout.canary.steps[0].weight"},
      {"replicas and autoscaling",
       [](json& m) { m["spec"]["autoscaling"] = {{"minReplicas", 1}, {"maxReplicas", 3}}; },
       "spec.replicas"},
      {"minReplicas above maxReplicas",
       [](json& m) { m["spec"].erase("replicas"); m["spec"]["autoscaling"] = {{"minReplicas", 5}, {"maxReplicas", 3}}; },
       "spec.autoscaling.minReplicas"},
      {"uri scheme", [](json& m) { m["spec"]["model"]["uri"] = "ftp://models/fraud.json"; },
       "spec.model.uri"},
      {"unknown format", [](json& m) { m["spec"]["model"]["format"] = "onnx"; },
       "spec.model.format"},
      {"bad pause duration",
       [](json& m) { m["spec"]["rollout"]["canary"]["steps"] = json::array({{{"weight", 100}, {"pause", "soon"}}}); },
       "spec.rollout.canary.steps[0].pause"},
      {"analysis interval too short",
       [](json& m) { m["spec"]["rollout"]["canary"]["analysis"]["interval"] = "100ms"; },
       "spec.rollout.canary.analysis.interval"},
      {"mirror percent", [](json& m) { m["spec"]["traffic"]["mirror"] = {{"percent", 150}}; },
       "spec.traffic.mirror.percent"},
      {"unknown noDataPolicy",
       [](json& m) { m["spec"]["rollout"]["canary"]["analysis"]["noDataPolicy"] = "Ignore"; },
       "spec.rollout.canary.analysis.noDataPolicy"},
      {"both surge and unavailable zero",
       [](json& m) { m["spec"]["rollout"]["strategy"] = "Rolling"; m["spec"]["rollout"]["rolling"] = {{"maxSurge", 0}, {"maxUnavailable", 0}}; },
       "spec.rollout.rolling.maxSurge"},
      {"negative replicas", [](json& m) { m["spec"]["replicas"] = -1; }, "spec.replicas"},
  };
  int refused = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    json md = FraudSample("invalid");
    c.mutate(md);
    auto created = client_->Create(it::kMdGvr, kNs, md);
    ASSERT_FALSE(created.ok()) << "accepted: " << c.what;
    EXPECT_EQ(created.status().code(), StatusCode::kInvalid) << created.status();
    std::string all = created.status().message();
    for (const auto& cause : created.status().causes()) all += " | " + cause.field + ": " + cause.message;
    EXPECT_THAT(all, ::testing::HasSubstr(c.field));
    ++refused;
  }
  EXPECT_GE(refused, 10);
  EXPECT_FALSE(client_->Get(it::kMdGvr, kNs, "invalid").ok());
}

TEST_F(OperatorE2e, KilledOperatorRestartsAndResumesAtTheSameStep) {
  json md = FraudSample("fraud-restart");
  md["spec"]["replicas"] = 1;
  md["spec"]["rollout"]["canary"]["steps"] =
      json::array({{{"weight", 10}, {"pause", "2s"}}, {{"weight", 50}}, {{"weight", 100}, {"pause", "0s"}}});
  ASSERT_TRUE(client_->Apply(it::kMdGvr, kNs, md, "kubectl", true).ok());
  ASSERT_TRUE(Eventually([] { return Phase(Md("fraud-restart")) == "Healthy"; }, seconds(180)))
      << Md("fraud-restart").dump(2);
  SetModelVersion("fraud-restart", "2");
  ASSERT_TRUE(Eventually([] {
    const json s = Md("fraud-restart")["status"];
    return s.value("currentStep", -1) == 1 && s.value("canaryWeight", 0) == 50;
  }, seconds(180))) << Md("fraud-restart").dump(2);
  const json before = Md("fraud-restart")["status"];

  // kill -9: no drain, no Lease release; the next process waits out the Lease.
  ASSERT_TRUE(op_->Signal(SIGKILL).ok());
  auto killed = op_->Wait(seconds(10));
  ASSERT_TRUE(killed.ok());
  EXPECT_EQ(killed->signal, SIGKILL);
  delete op_;
  op_ = nullptr;
  StartOperator("e2e-operator-2");
  ASSERT_TRUE(Eventually([] {
    return it::HttpGet(metrics_port_, "/metrics").second.find(
               "sluice_operator_reconcile_total{controller=\"modeldeployment\"") != std::string::npos;
  }, seconds(60)));
  auto lease = client_->Get(kube::resources::kLeases, kSystemNs, "sluice-operator");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "e2e-operator-2");
  const json after = Md("fraud-restart")["status"];
  EXPECT_EQ(after["currentStep"], 1);
  EXPECT_EQ(after["canaryWeight"], 50);
  EXPECT_EQ(after["canaryRevision"], before["canaryRevision"]);
  EXPECT_EQ(after["currentStepStartTime"], before["currentStepStartTime"]);

  Patch("fraud-restart", {{"metadata", {{"annotations", {{"sluice.dev/promote", "true"}}}}}});
  ASSERT_TRUE(Eventually([&] {
    const json m = Md("fraud-restart");
    return Phase(m) == "Healthy" && m["status"].value("stableRevision", "") == before["canaryRevision"];
  }, seconds(120))) << Md("fraud-restart").dump(2);
}

TEST_F(OperatorE2e, DeletingTheModelDeploymentRemovesEveryOwnedObject) {
  ASSERT_TRUE(client_->Delete(it::kMdGvr, kNs, "fraud").ok());
  ASSERT_TRUE(client_->Delete(it::kMdGvr, kNs, "fraud-restart").ok());
  for (const char* name : {"fraud", "fraud-restart"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(Eventually([&] {
      return Labelled(kube::resources::kDeployments, name).empty() &&
             Labelled(kube::resources::kServices, name).empty() &&
             Labelled(kube::resources::kServiceAccounts, name).empty() &&
             Labelled(it::kRolesGvr, name).empty() && Labelled(it::kRoleBindingsGvr, name).empty() &&
             Labelled(kube::resources::kPods, name).empty();
    }, seconds(120))) << "left: " << Labelled(kube::resources::kDeployments, name).size()
                      << " deployments, " << Labelled(kube::resources::kPods, name).size() << " pods";
  }
}

TEST_F(OperatorE2e, SigtermExitsZeroAndReleasesTheLease) {
  ASSERT_NE(op_, nullptr);
  ASSERT_TRUE(op_->Signal(SIGTERM).ok());
  auto exited = op_->Wait(seconds(40));
  ASSERT_TRUE(exited.ok()) << exited.status();
  EXPECT_TRUE(exited->success()) << exited->ToString() << OperatorLogTail();
  delete op_;
  op_ = nullptr;
  auto lease = client_->Get(kube::resources::kLeases, kSystemNs, "sluice-operator");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"].value("holderIdentity", ""), "");
}

}  // namespace
}  // namespace sluice::controllers::e2e
