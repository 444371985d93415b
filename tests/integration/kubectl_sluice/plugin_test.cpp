// The kubectl-sluice binary, run as a subprocess as a user runs it, against a real kube-apiserver
// and etcd with the real operator reconciling (in-process, the sluice-operator wiring). There is
// no kubelet: FakeKubelet reports Deployments Ready, so revisions become Healthy; the status tree
// is checked without pods.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "lib/api/object_labels.h"
#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "operator/operator.h"
#include "tests/integration/controllers/operator_env.h"
#include "tests/support/api_server.h"
#include "tests/support/process.h"

namespace sluice::controllers::it {
namespace {

using std::chrono::seconds;

const std::string kCrdDir = SLUICE_CRD_DIR;
const std::string kPlugin = KUBECTL_SLUICE_BIN;

struct PluginRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

class PluginTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto config =
        kube::Config::FromKubeconfig(sluice::testing::SharedApiServer().kubeconfig_path());
    ASSERT_TRUE(config.ok()) << config.status();
    auto client = kube::Client::Create(*config);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client).release();
    Status installed = InstallCrds(*client_, kCrdDir);
    ASSERT_TRUE(installed.ok()) << installed;
  }

  void SetUp() override {
    ASSERT_NE(client_, nullptr);
    static std::atomic<int> n{0};
    ns_ = "plugin-it-" + std::to_string(::getpid() % 10000) + "-" + std::to_string(++n);
    ASSERT_TRUE(CreateNamespace(*client_, ns_).ok());
    kubelet_ = std::make_unique<FakeKubelet>(*client_, ns_);
    kubelet_->set_enabled(true);
    app::OperatorOptions o;
    o.kubeconfig = sluice::testing::SharedApiServer().kubeconfig_path();
    o.namespaces = {ns_};
    o.leader_elect = false;
    o.identity = "plugin-it";
    o.metrics_addr = {"127.0.0.1", 0};
    o.health_addr = {"127.0.0.1", 0};
    o.workers = 2;
    o.workload.server_image = "registry.example/sluice:it";
    auto op = app::Operator::Create(std::move(o));
    ASSERT_TRUE(op.ok()) << op.status();
    op_ = std::move(*op);
    op_thread_ = std::thread([this] { op_result_ = op_->Run(); });
  }

  void TearDown() override {
    if (op_) {
      op_->Stop();
      op_thread_.join();
      EXPECT_TRUE(op_result_.ok()) << op_result_;
    }
    kubelet_.reset();
  }

  // Runs `kubectl-sluice ARGS --kubeconfig K -n NS`.
  PluginRun Plugin(std::vector<std::string> args, bool with_namespace = true) {
    std::vector<std::string> argv = {kPlugin};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--kubeconfig=" + sluice::testing::SharedApiServer().kubeconfig_path());
    if (with_namespace) {
      argv.push_back("-n");
      argv.push_back(ns_);
    }
    auto r = sluice::testing::RunCommand(argv, std::chrono::minutes(3));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_TRUE(r->status.exited) << r->status.ToString() << "\n" << r->output;
    return {r->status.exited ? r->status.code : -1, r->output};
  }

  // The fraud sample with steps that hold: 10% for an hour, so the canary stays put until a
  // command moves it. No analysis provider runs here; noDataPolicy Pass says so explicitly.
  json Spec(const std::string& name = "fraud") {
    json md = LoadSample(kCrdDir + "/samples/fraud-modeldeployment.yaml", ns_);
    md["metadata"]["name"] = name;
    md["spec"]["rollout"]["canary"]["steps"] = json::array({{{"weight", 10}, {"pause", "1h"}},
                                                            {{"weight", 50}, {"pause", "1h"}},
                                                            {{"weight", 100}, {"pause", "0s"}}});
    md["spec"]["rollout"]["canary"]["analysis"]["interval"] = "1s";
    md["spec"]["rollout"]["canary"]["analysis"]["noDataPolicy"] = "Pass";
    md["spec"]["rollout"]["scaleDownDelay"] = "1s";
    return md;
  }

  void ApplyMd(const json& md) {
    auto applied = client_->Apply(kMdGvr, ns_, md, "sluice-it", true);
    ASSERT_TRUE(applied.ok()) << applied.status();
  }

  json Md(const std::string& name = "fraud") {
    auto md = client_->Get(kMdGvr, ns_, name);
    return md.ok() ? *md : json::object();
  }

  std::string Annotation(const std::string& key) {
    const json a = Md().value("metadata", json::object()).value("annotations", json::object());
    return a.contains(key) ? a[key].get<std::string>() : "";
  }

  std::string ProgressingReason() { return ConditionReason(Md(), "Progressing"); }

  void SetModelVersion(const std::string& version) {
    json patch = {
        {"spec",
         {{"model",
           {{"version", version}, {"uri", "file:///models/fraud/fraud-v" + version + ".json"}}}}}};
    auto patched = client_->Patch(kMdGvr, ns_, "fraud", kube::PatchType::kMerge, patch.dump());
    ASSERT_TRUE(patched.ok()) << patched.status();
  }

  static kube::Client* client_;
  std::string ns_;
  std::unique_ptr<FakeKubelet> kubelet_;
  std::unique_ptr<app::Operator> op_;
  std::thread op_thread_;
  Status op_result_;
};

kube::Client* PluginTest::client_ = nullptr;

TEST_F(PluginTest, RolloutDrivenThroughThePlugin) {
  ApplyMd(Spec());
  // --wait follows the first deploy to Healthy.
  PluginRun r = Plugin({"status", "fraud", "--wait", "--timeout=120s"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("fraud: Healthy"), std::string::npos) << r.output;
  const std::string v1 = Md()["status"].value("stableRevision", "");
  ASSERT_FALSE(v1.empty());

  r = Plugin({"get"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("NAME    PHASE     STABLE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fraud   Healthy   " + v1 + " (1)   -        100"), std::string::npos)
      << r.output;
  r = Plugin({"get", "-A"}, /*with_namespace=*/false);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(ns_ + "   fraud"), std::string::npos) << r.output;

  // A new model version: the canary holds at 10% for its hour.
  SetModelVersion("2");
  ASSERT_TRUE(Eventually(
      [&] {
        const json md = Md();
        return Phase(md) == "Progressing" && TrafficOf(md).size() == 2;
      },
      seconds(120)))
      << Md().dump(2);
  const std::string v2 = Md()["status"].value("canaryRevision", "");
  r = Plugin({"status", "fraud"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Step:        1/3  weight 10%  pause 1h"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Traffic:     " + v1 + " 90%  " + v2 + " 10%"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(v1 + "  stable  model 1  weight 90%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(v2 + "  canary  model 2  weight 10%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("└─ Deployment " + v2), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Deployment fraud-router"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("RolloutStarted"), std::string::npos) << r.output;  // an Event
  EXPECT_NE(r.output.find("Progressing   True"), std::string::npos) << r.output;

  // pause: the annotation appears and the operator reports Paused.
  r = Plugin({"pause", "fraud"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("modeldeployment \"fraud\" paused"), std::string::npos) << r.output;
  EXPECT_EQ(Annotation(api::kPauseAnnotation), "true");
  ASSERT_TRUE(Eventually([&] { return ProgressingReason() == "True/Paused"; }, seconds(60)))
      << Md().dump(2);
  EXPECT_EQ(Phase(Md()), "Paused");
  r = Plugin({"get"});
  EXPECT_NE(r.output.find("fraud   Paused"), std::string::npos) << r.output;
  // A paused rollout does not settle: --wait gives up at its timeout with its own code.
  r = Plugin({"status", "fraud", "--wait", "--timeout=3s"});
  EXPECT_EQ(r.code, 6) << r.output;
  EXPECT_NE(r.output.find("timed out after 3s"), std::string::npos) << r.output;

  // resume: the annotation goes, the rollout continues.
  r = Plugin({"resume", "fraud"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(Annotation(api::kPauseAnnotation), "");
  ASSERT_TRUE(Eventually([&] { return Phase(Md()) == "Progressing"; }, seconds(60)))
      << Md().dump(2);
  r = Plugin({"resume", "fraud"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("is not paused"), std::string::npos) << r.output;

  // abort: rolled back; --wait says so with its code.
  r = Plugin({"abort", "fraud"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("canary " + v2 + " rolls back to " + v1), std::string::npos) << r.output;
  r = Plugin({"status", "fraud", "--wait", "--timeout=120s"});
  EXPECT_EQ(r.code, 5) << r.output;
  EXPECT_NE(r.output.find("was rolled back"), std::string::npos) << r.output;
  // The operator removes the annotation once the status that records the rollback is written.
  auto abort_consumed = [&] { return Annotation(api::kAbortAnnotation).empty(); };
  ASSERT_TRUE(Eventually(abort_consumed, seconds(60))) << Md().dump(2);
  // Aborting again has nothing to act on, and says so; the operator drops it too (a retry set
  // while it is still there would be aborted at once).
  r = Plugin({"abort", "fraud"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("note: no rollout is in progress"), std::string::npos) << r.output;
  ASSERT_TRUE(Eventually(abort_consumed, seconds(60))) << Md().dump(2);

  // retry, then promote in full: Healthy on v2.
  r = Plugin({"retry", "fraud"});
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_TRUE(Eventually([&] { return Phase(Md()) == "Progressing"; }, seconds(60)))
      << Md().dump(2);
  ASSERT_TRUE(Eventually([&] { return TrafficOf(Md()).size() == 2; }, seconds(60))) << Md().dump(2);
  r = Plugin({"promote", "fraud", "--full"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("(sluice.dev/promote=full)"), std::string::npos) << r.output;
  r = Plugin({"status", "fraud", "--wait", "--timeout=120s"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(Md()["status"].value("stableRevision", ""), v2);

  // history: Deployed v1, Aborted v2, Promoted v2, from status.history.
  r = Plugin({"history", "fraud"});
  ASSERT_EQ(r.code, 0) << r.output;
  SCOPED_TRACE(r.output);
  const size_t deployed = r.output.find("1   " + v1 + "   1       Deployed");
  const size_t aborted = r.output.find("2   " + v2 + "   2       Aborted    Aborted");
  const size_t promoted = r.output.find("3   " + v2 + "   2       Promoted");
  ASSERT_NE(deployed, std::string::npos);
  ASSERT_NE(aborted, std::string::npos);
  ASSERT_NE(promoted, std::string::npos);
  const json history = Md()["status"]["history"];
  ASSERT_EQ(history.size(), 3u) << history.dump(2);
  EXPECT_EQ(history[1]["result"], "Aborted");
}

TEST_F(PluginTest, WaitExitsDegradedOnASpecTheOperatorCannotRealise) {
  json md = Spec("broken");
  md["spec"]["features"] = json::array({{{"name", "missing-view"}}});
  ApplyMd(md);
  PluginRun r = Plugin({"status", "broken", "--wait", "--timeout=120s"});
  EXPECT_EQ(r.code, 4) << r.output;
  EXPECT_NE(r.output.find("\"broken\" is Degraded"), std::string::npos) << r.output;
  r = Plugin({"status", "broken"});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Degraded      True     FeatureViewNotFound"), std::string::npos)
      << r.output;
}

TEST_F(PluginTest, WatchRendersAgainWhenTheModelDeploymentChanges) {
  ApplyMd(Spec());
  ASSERT_TRUE(Eventually([&] { return Phase(Md()) == "Healthy"; }, seconds(120))) << Md().dump(2);
  const std::string log = ::testing::TempDir() + "/plugin-watch-" + ns_ + ".log";
  sluice::testing::SpawnOptions so;
  so.argv = {kPlugin,
             "status",
             "fraud",
             "--watch",
             "-n",
             ns_,
             "--kubeconfig=" + sluice::testing::SharedApiServer().kubeconfig_path()};
  so.log_path = log;
  auto watcher = sluice::testing::Subprocess::Spawn(so);
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  auto log_text = [&] {
    std::ifstream in(log);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  ASSERT_TRUE(Eventually(
      [&] { return log_text().find("Phase:       Healthy") != std::string::npos; }, seconds(60)))
      << log_text();
  SetModelVersion("2");
  ASSERT_TRUE(Eventually([&] { return log_text().find("Step:        1/3") != std::string::npos; },
                         seconds(120)))
      << log_text();
  EXPECT_TRUE((*watcher)->Running()) << log_text();
  auto stopped = (*watcher)->Stop(seconds(10));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
}

TEST_F(PluginTest, MissingObjectsAndBadUsageHaveTheirOwnExitCodes) {
  PluginRun r = Plugin({"status", "nope"});
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("modeldeployment \"nope\" in namespace \"" + ns_ + "\" not found"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(Plugin({"promote", "nope"}).code, 3);
  EXPECT_EQ(Plugin({"history", "nope"}).code, 3);
  EXPECT_EQ(Plugin({"status", "nope", "--wait", "--timeout=5s"}).code, 3);
  r = Plugin({"promote"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("promote needs the ModelDeployment's NAME"), std::string::npos)
      << r.output;
  EXPECT_EQ(Plugin({"frobnicate", "x"}).code, 2);
  r = Plugin({"get"});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("No resources found in " + ns_ + " namespace."), std::string::npos)
      << r.output;
  r = Plugin({"status", "--help"}, false);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("5 RolledBack"), std::string::npos) << r.output;
  // An API server that is not there: exit 1.
  const std::string bad = ::testing::TempDir() + "/plugin-bad-kubeconfig-" + ns_;
  {
    std::ofstream out(bad);
    out << "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
           "    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n"
           "users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n"
           "    cluster: c\n    user: u\ncurrent-context: x\n";
  }
  auto run =
      sluice::testing::RunCommand({kPlugin, "get", "--kubeconfig", bad}, std::chrono::minutes(2));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.code, 1) << run->output;
  // KUBECONFIG is honoured when --kubeconfig is not given.
  run = sluice::testing::RunCommand(
      {kPlugin, "get", "-n", ns_}, std::chrono::minutes(2),
      {"KUBECONFIG=" + sluice::testing::SharedApiServer().kubeconfig_path()});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.code, 0) << run->output;
}

// Installed on PATH, kubectl finds the binary as the `sluice` plugin and passes its arguments on.
TEST_F(PluginTest, KubectlRunsItAsAPlugin) {
  ApplyMd(Spec());
  ASSERT_TRUE(Eventually([&] { return Phase(Md()) == "Healthy"; }, seconds(120))) << Md().dump(2);
  const char* bin = std::getenv("SLUICE_K8S_BIN");  // NOLINT(concurrency-mt-unsafe)
  ASSERT_NE(bin, nullptr);
  const std::string plugin_dir = kPlugin.substr(0, kPlugin.rfind('/'));
  const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe)
  auto run = sluice::testing::RunCommand(
      {std::string(bin) + "/kubectl", "sluice", "get", "-n", ns_,
       "--kubeconfig=" + sluice::testing::SharedApiServer().kubeconfig_path()},
      std::chrono::minutes(2), {"PATH=" + plugin_dir + ":" + (path ? path : "/usr/bin:/bin")});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->status.code, 0) << run->output;
  EXPECT_NE(run->output.find("fraud   Healthy"), std::string::npos) << run->output;
}

}  // namespace
}  // namespace sluice::controllers::it
