// The operator against a real kube-apiserver and etcd (tests/support), run in-process with the
// same wiring as the sluice-operator binary. There is no kube-controller-manager or kubelet
// here: FakeKubelet reports Deployments Ready through their status subresource, and garbage
// collection is not running (the kwok end-to-end test checks deletion).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "operator/operator.h"
#include "lib/api/materialize_command.h"
#include "tests/integration/controllers/operator_env.h"
#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "tests/support/api_server.h"
#include "tests/dataplane/server/server_process.h"
#include "tests/lib/http/http_test_client.h"
#include "tests/support/process.h"

namespace sluice::controllers::it {
namespace {

using std::chrono::seconds;

const std::string kCrdDir = SLUICE_CRD_DIR;

class OperatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto config = kube::Config::FromKubeconfig(sluice::testing::SharedApiServer().kubeconfig_path());
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
    ns_ = "op-it-" + std::to_string(::getpid() % 10000) + "-" + std::to_string(++n);
    ASSERT_TRUE(CreateNamespace(*client_, ns_).ok());
    kubelet_ = std::make_unique<FakeKubelet>(*client_, ns_);
  }

  void TearDown() override {
    StopOperator();
    kubelet_.reset();
  }

  app::OperatorOptions Options(const std::string& identity = "op-a") {
    app::OperatorOptions o;
    o.kubeconfig = sluice::testing::SharedApiServer().kubeconfig_path();
    o.namespaces = {ns_};
    o.leader_elect = true;
    o.leader_election_namespace = ns_;
    o.identity = identity;
    o.lease_duration = seconds(6);
    o.renew_deadline = seconds(4);
    o.retry_period = seconds(1);
    o.metrics_addr = {"127.0.0.1", 0};
    o.health_addr = {"127.0.0.1", 0};
    o.workers = 2;
    o.secret_recheck_period = seconds(1);
    o.workload.server_image = "registry.example/sluice:it";
    return o;
  }

  struct Running {
    std::unique_ptr<app::Operator> op;
    std::thread thread;
    Status result;
  };

  std::unique_ptr<Running> Launch(app::OperatorOptions options) {
    auto op = app::Operator::Create(std::move(options));
    EXPECT_TRUE(op.ok()) << op.status();
    if (!op.ok()) return nullptr;
    auto r = std::make_unique<Running>();
    r->op = std::move(*op);
    Running* raw = r.get();
    r->thread = std::thread([raw] { raw->result = raw->op->Run(); });
    return r;
  }

  static void Halt(std::unique_ptr<Running>& r) {
    if (!r) return;
    r->op->Stop();
    r->thread.join();
    EXPECT_TRUE(r->result.ok()) << r->result;
    r.reset();
  }

  void StartOperator() { op_ = Launch(Options()); }
  void StopOperator() { Halt(op_); }

  json TestSpec() {
    json md = LoadSample(kCrdDir + "/samples/fraud-modeldeployment.yaml", ns_);
    md["spec"]["rollout"]["canary"]["steps"] = json::array(
        {{{"weight", 10}, {"pause", "2s"}}, {{"weight", 50}, {"pause", "2s"}}, {{"weight", 100}, {"pause", "0s"}}});
    // No analysis provider runs here: noDataPolicy Pass says so explicitly (Pause would hold).
    md["spec"]["rollout"]["canary"]["analysis"]["interval"] = "1s";
    md["spec"]["rollout"]["canary"]["analysis"]["noDataPolicy"] = "Pass";
    md["spec"]["rollout"]["scaleDownDelay"] = "2s";
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

  void SetModelVersion(const std::string& version) {
    json patch = {{"spec", {{"model", {{"version", version}, {"uri", "file:///models/fraud/fraud-v" + version + ".json"}}}}}};
    auto patched = client_->Patch(kMdGvr, ns_, "fraud", kube::PatchType::kMerge, patch.dump());
    ASSERT_TRUE(patched.ok()) << patched.status();
  }

  void Annotate(const std::string& key, const std::string& value) {
    json patch = {{"metadata", {{"annotations", {{key, value}}}}}};
    auto patched = client_->Patch(kMdGvr, ns_, "fraud", kube::PatchType::kMerge, patch.dump());
    ASSERT_TRUE(patched.ok()) << patched.status();
  }

  std::vector<json> Owned(const kube::GroupVersionResource& gvr) {
    kube::ListOptions lo;
    lo.label_selector = "sluice.dev/modeldeployment=fraud";
    auto list = client_->List(gvr, ns_, lo);
    EXPECT_TRUE(list.ok()) << list.status();
    return list.ok() ? (*list)["items"].get<std::vector<json>>() : std::vector<json>{};
  }

  void WaitHealthy() {
    ASSERT_TRUE(Eventually([&] { return Phase(Md()) == "Healthy"; }, seconds(60)))
        << Md().dump(2);
  }

  static kube::Client* client_;
  std::string ns_;
  std::unique_ptr<FakeKubelet> kubelet_;
  std::unique_ptr<Running> op_;
};

kube::Client* OperatorTest::client_ = nullptr;

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(OperatorTest, ApplyCreatesOwnedObjectsAndStatusThenHealthyOnReadiness) {
  StartOperator();
  ApplyMd(TestSpec());
  ASSERT_TRUE(Eventually([&] {
    const json md = Md();
    return md.contains("status") && md["status"].value("observedGeneration", 0) == 1 &&
           Phase(md) == "Progressing";
  })) << Md().dump(2);
  const json md = Md();
  const std::string uid = md["metadata"]["uid"];

  ASSERT_TRUE(Eventually([&] { return Owned(kube::resources::kDeployments).size() == 2; }));
  ASSERT_TRUE(Eventually([&] { return Owned(kube::resources::kServices).size() == 2; }));
  auto check_owner = [&](const json& o) {
    SCOPED_TRACE(o["metadata"].value("name", ""));
    ASSERT_EQ(o["metadata"]["ownerReferences"].size(), 1u);
    const json& ref = o["metadata"]["ownerReferences"][0];
    EXPECT_EQ(ref["uid"], uid);
    EXPECT_EQ(ref["kind"], "ModelDeployment");
    EXPECT_EQ(ref["controller"], true);
    EXPECT_EQ(ref["blockOwnerDeletion"], true);
    // One field manager for everything the operator writes.
    std::set<std::string> managers;
    for (const auto& f : o["metadata"].value("managedFields", json::array())) {
      managers.insert(f.value("manager", ""));
    }
    EXPECT_TRUE(managers.count("sluice-operator")) << o["metadata"].dump();
  };
  for (const auto& o : Owned(kube::resources::kDeployments)) check_owner(o);
  for (const auto& o : Owned(kube::resources::kServices)) check_owner(o);
  for (const auto* gvr : {&kube::resources::kServiceAccounts, &kRolesGvr, &kRoleBindingsGvr}) {
    auto o = client_->Get(*gvr, ns_, "fraud-router");
    ASSERT_TRUE(o.ok()) << gvr->resource << ": " << o.status();
    check_owner(*o);
  }

  // The API server kept the pod hardening and the drain hook as written.
  json revision;
  for (const auto& d : Owned(kube::resources::kDeployments)) {
    if (d["metadata"]["labels"].value("app.kubernetes.io/component", "") == "server") revision = d;
  }
  ASSERT_FALSE(revision.is_null());
  const json& c = revision["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
  EXPECT_TRUE(c["lifecycle"]["preStop"].contains("sleep")) << c.dump();
  EXPECT_EQ(revision["spec"]["replicas"], 2);

  kubelet_->set_enabled(true);
  WaitHealthy();
  const json healthy = Md();
  const std::string stable = healthy["status"]["stableRevision"];
  EXPECT_EQ(stable, revision["metadata"]["name"]);
  EXPECT_EQ(TrafficOf(healthy), (std::map<std::string, int>{{stable, 100}}));
  EXPECT_EQ(ConditionReason(healthy, "Ready"), "True/StableAvailable");
  EXPECT_EQ(healthy["status"]["selector"],
            "sluice.dev/modeldeployment=fraud,app.kubernetes.io/component=server");

  // An Event on the phase change, from the operator.
  ASSERT_TRUE(Eventually([&] {
    kube::ListOptions lo;
    lo.field_selector = "involvedObject.name=fraud,reason=PhaseHealthy";
    auto events = client_->List(kube::resources::kEvents, ns_, lo);
    return events.ok() && !(*events)["items"].empty() &&
           (*events)["items"][0]["source"]["component"] == "sluice-operator";
  }));

  // kubectl scale goes through the scale subresource to spec.replicas.
  kube::PatchOptions scale;
  scale.subresource = "scale";
  ASSERT_TRUE(client_->Patch(kMdGvr, ns_, "fraud", kube::PatchType::kMerge,
                             R"({"spec":{"replicas":3}})", scale).ok());
  ASSERT_TRUE(Eventually([&] {
    auto d = client_->Get(kube::resources::kDeployments, ns_, stable);
    return d.ok() && (*d)["spec"]["replicas"] == 3 && StatusOf(Md()).value("replicas", 0) == 3;
  })) << Md().dump(2);
  auto scale_now = client_->Get(kMdGvr, ns_, "fraud", "scale");
  ASSERT_TRUE(scale_now.ok());
  EXPECT_EQ((*scale_now)["status"]["replicas"], 3);
  EXPECT_EQ((*scale_now)["status"]["selector"], healthy["status"]["selector"]);

  // The operator's own endpoints.
  const auto ready = HttpGet(op_->op->health_port(), "/readyz");
  EXPECT_EQ(ready.first, 200);
  const auto metrics = HttpGet(op_->op->metrics_port(), "/metrics");
  EXPECT_EQ(metrics.first, 200);
  EXPECT_THAT(metrics.second, ::testing::HasSubstr(
      "sluice_operator_reconcile_total{controller=\"modeldeployment\",result=\"success\"}"));
  EXPECT_THAT(metrics.second, ::testing::HasSubstr("sluice_operator_leader 1"));
  EXPECT_THAT(metrics.second, ::testing::HasSubstr("sluice_operator_reconcile_duration_seconds_bucket"));
  EXPECT_THAT(metrics.second, ::testing::HasSubstr("sluice_operator_workqueue_depth{name=\"modeldeployment\"}"));
  EXPECT_THAT(metrics.second, ::testing::HasSubstr("process_resident_memory_bytes"));
}

TEST_F(OperatorTest, NewVersionWalksTenFiftyHundredAndRetiresTheOldRevision) {
  StartOperator();
  kubelet_->set_enabled(true);
  ApplyMd(TestSpec());
  WaitHealthy();
  const std::string old_stable = Md()["status"]["stableRevision"];

  // Every status the operator writes, as a watch sees it.
  std::mutex mu;
  std::vector<std::pair<int, std::string>> seen;  // canary weight, phase
  auto informer = kube::Informer::ForResource(*client_, kMdGvr, ns_);
  auto handler = std::make_shared<kube::ResourceEventHandlerFuncs>();
  handler->on_update = [&](const kube::ObjectPtr&, const kube::ObjectPtr& o) {
    std::lock_guard<std::mutex> lock(mu);
    const json& s = (*o).value("status", json::object());
    seen.emplace_back(s.value("canaryWeight", 0), s.value("phase", ""));
  };
  informer->AddEventHandler(handler);
  informer->Start();
  ASSERT_TRUE(informer->WaitForSync(std::chrono::steady_clock::now() + seconds(30)));

  SetModelVersion("2");
  ASSERT_TRUE(Eventually([&] {
    const json md = Md();
    return Phase(md) == "Healthy" && StatusOf(md).value("stableRevision", "") != old_stable;
  }, seconds(90))) << Md().dump(2);
  informer->Stop();
  const json md = Md();
  const std::string new_stable = md["status"]["stableRevision"];
  EXPECT_EQ(TrafficOf(md), (std::map<std::string, int>{{new_stable, 100}}));
  EXPECT_EQ(md["status"]["observedGeneration"], 2);

  std::vector<int> weights;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [w, phase] : seen) {
      if (w > 0 && (weights.empty() || weights.back() != w)) weights.push_back(w);
    }
  }
  // 10 and 50 under the canary, then 100 as the canary becomes the stable revision.
  EXPECT_THAT(weights, ::testing::ElementsAre(10, 50, 100)) << ::testing::PrintToString(weights);

  // The old revision keeps its pods for scaleDownDelay (2s), then its objects go.
  ASSERT_TRUE(Eventually([&] {
    return !client_->Get(kube::resources::kDeployments, ns_, old_stable).ok() &&
           !client_->Get(kube::resources::kServices, ns_, old_stable).ok();
  }, seconds(60)));
  EXPECT_EQ(Owned(kube::resources::kDeployments).size(), 2u);  // router + new revision
}

TEST_F(OperatorTest, AbortAnnotationPutsTrafficBackOnStable) {
  StartOperator();
  kubelet_->set_enabled(true);
  json spec = TestSpec();
  spec["spec"]["rollout"]["canary"]["steps"] = json::array({{{"weight", 10}}, {{"weight", 100}}});
  ApplyMd(spec);
  WaitHealthy();
  const std::string stable = Md()["status"]["stableRevision"];
  SetModelVersion("2");
  ASSERT_TRUE(Eventually([&] { return StatusOf(Md()).value("canaryWeight", 0) == 10; }))
      << Md().dump(2);
  const std::string canary = Md()["status"]["canaryRevision"];

  Annotate("sluice.dev/abort", "true");
  ASSERT_TRUE(Eventually([&] { return Phase(Md()) == "RolledBack"; })) << Md().dump(2);
  const json md = Md();
  EXPECT_EQ(TrafficOf(md), (std::map<std::string, int>{{stable, 100}}));
  EXPECT_EQ(md["status"]["stableRevision"], stable);
  EXPECT_EQ(ConditionReason(md, "Degraded"), "True/Aborted");
  // One-shot: the operator removed it once acted on.
  ASSERT_TRUE(Eventually([&] {
    return !Md()["metadata"].value("annotations", json::object()).contains("sluice.dev/abort");
  }));
  // The rolled-back canary's pods go after scaleDownDelay.
  ASSERT_TRUE(Eventually([&] {
    auto d = client_->Get(kube::resources::kDeployments, ns_, canary);
    return !d.ok() || (*d)["spec"]["replicas"] == 0;
  }, seconds(30)));
}

// The operator reads a real sluice-router's guard: the router (a static table with the
// ModelDeployment's revision names, in front of two real sluice-server processes, the canary's
// failing every inference) stands behind a router Pod object that points the operator's scraper
// at its admin port. The canary's failures are retried on the stable, the guard trips after 20 of
// them, and the operator rolls the canary back with reason RouterGuardTripped, though the step
// would hold for a minute and the windows after the trip have no canary traffic.
TEST_F(OperatorTest, ATrippedRouterGuardRollsTheCanaryBack) {
  StartOperator();
  kubelet_->set_enabled(true);
  json spec = TestSpec();
  spec["spec"]["rollout"]["canary"]["steps"] =
      json::array({{{"weight", 50}, {"pause", "60s"}}, {{"weight", 100}}});
  spec["spec"]["rollout"]["canary"]["analysis"]["noDataPolicy"] = "Pause";
  ApplyMd(spec);
  WaitHealthy();
  const std::string stable = Md()["status"]["stableRevision"];
  SetModelVersion("2");
  ASSERT_TRUE(Eventually([&] { return StatusOf(Md()).value("canaryWeight", 0) == 50; }))
      << Md().dump(2);
  const std::string canary = Md()["status"]["canaryRevision"];

  namespace t = sluice::testing;
  const std::string model = std::string(SLUICE_FRAUD_MODEL_DIR) + "/fraud.json";
  auto port = [] {
    auto p = t::PickFreePort();
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : 0;
  };
  t::ServerProcess good, bad, router;
  const std::vector<std::string> server_args = {"--model-uri", "file://" + model, "--io-threads",
                                                "1", "--admin-port"};
  auto start_server = [&](t::ServerProcess& s, std::vector<std::string> env) {
    std::vector<std::string> args = server_args;
    args.push_back(std::to_string(port()));
    ASSERT_TRUE(s.Start(SLUICE_SERVER_BIN, args, env)) << s.Log();
    ASSERT_TRUE(s.WaitReady()) << s.Log();
  };
  start_server(good, {});
  start_server(bad, {"SLUICE_FAULT_ERROR_PERCENT=100"});
  const int admin = port();
  ASSERT_TRUE(router.Start(SLUICE_ROUTER_BIN,
                           {"--static-traffic",
                            stable + "=50@127.0.0.1:" + std::to_string(good.port()) + ";" + canary +
                                "=50@127.0.0.1:" + std::to_string(bad.port()),
                            "--stable-revision", stable, "--admin-port", std::to_string(admin)}))
      << router.Log();

  // The router's pod as the operator's scraper finds it: Running, Ready, a port named admin.
  json sa = {{"apiVersion", "v1"},
             {"kind", "ServiceAccount"},
             {"metadata", {{"name", "default"}, {"namespace", ns_}}}};
  (void)client_->Create(kube::resources::kServiceAccounts, ns_, sa);
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", "fraud-router-it"},
        {"namespace", ns_},
        {"labels",
         {{"app.kubernetes.io/component", "router"},
          {"sluice.dev/modeldeployment", "fraud"},
          {"app.kubernetes.io/managed-by", "sluice-operator"}}}}},
      {"spec",
       {{"automountServiceAccountToken", false},
        {"containers", json::array({{{"name", "router"},
                                     {"image", "registry.example/sluice:it"},
                                     {"ports", json::array({{{"name", "admin"},
                                                             {"containerPort", admin}}})}}})}}}};
  auto created = client_->Create(kube::resources::kPods, ns_, pod);
  ASSERT_TRUE(created.ok()) << created.status();
  json status = {{"status",
                  {{"phase", "Running"},
                   {"podIP", "127.0.0.1"},
                   {"podIPs", json::array({{{"ip", "127.0.0.1"}}})},
                   {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
  kube::PatchOptions status_patch;
  status_patch.subresource = "status";
  auto patched = client_->Patch(kube::resources::kPods, ns_, "fraud-router-it",
                                kube::PatchType::kMerge, status.dump(), status_patch);
  ASSERT_TRUE(patched.ok()) << patched.status();

  // Callers through the router see no failure; 60 requests give the canary 30, and its 20th
  // failure trips the guard.
  const std::string body =
      ReadFileOrEmpty(std::string(SLUICE_FRAUD_MODEL_DIR) + "/sample_request.json");
  t::HttpTestClient c(router.port(), seconds(30));
  for (int i = 0; i < 60; ++i) {
    auto r = c.Request(boost::beast::http::verb::post, "/v2/models/fraud/infer", body);
    ASSERT_TRUE(r.has_value()) << router.Log();
    ASSERT_EQ(r->status, 200) << r->body << "\n" << router.Log();
  }
  t::HttpTestClient metrics(static_cast<uint16_t>(admin), seconds(10));
  auto page = metrics.Get("/metrics");
  ASSERT_TRUE(page.has_value());
  ASSERT_NE(page->body.find("sluice_router_guard_tripped{revision=\"" + canary + "\"} 1"),
            std::string::npos)
      << page->body;

  // The next check fails on the guard and rolls back, long before the step's minute is over.
  ASSERT_TRUE(Eventually([&] { return Phase(Md()) == "RolledBack"; }, seconds(30))) << Md().dump(2);
  const json md = Md();
  EXPECT_EQ(TrafficOf(md), (std::map<std::string, int>{{stable, 100}}));
  EXPECT_EQ(ConditionReason(md, "Degraded"), "True/RouterGuardTripped");
  EXPECT_THAT(StatusOf(md)["lastAnalysis"].value("message", ""),
              ::testing::HasSubstr("router guard tripped"));
}

TEST_F(OperatorTest, RestartedOperatorResumesTheRolloutAtTheSameStep) {
  StartOperator();
  kubelet_->set_enabled(true);
  json spec = TestSpec();
  // Step 1 waits for a promote, so the rollout sits there across the restart.
  spec["spec"]["rollout"]["canary"]["steps"] =
      json::array({{{"weight", 10}, {"pause", "1s"}}, {{"weight", 50}}, {{"weight", 100}, {"pause", "0s"}}});
  ApplyMd(spec);
  WaitHealthy();
  SetModelVersion("2");
  ASSERT_TRUE(Eventually([&] {
    const json s = Md()["status"];
    return s.value("currentStep", -1) == 1 && s.value("canaryWeight", 0) == 50;
  })) << Md().dump(2);
  const json before = Md()["status"];

  StopOperator();
  op_ = Launch(Options("op-b"));
  ASSERT_NE(op_, nullptr);
  // The new process leads and has reconciled the ModelDeployment at least once.
  ASSERT_TRUE(Eventually([&] {
    const auto m = HttpGet(op_->op->metrics_port(), "/metrics").second;
    return m.find("sluice_operator_leader 1") != std::string::npos &&
           m.find("sluice_operator_reconcile_total{controller=\"modeldeployment\"") !=
               std::string::npos;
  })) << HttpGet(op_->op->metrics_port(), "/metrics").second;
  auto lease = client_->Get(kube::resources::kLeases, ns_, "sluice-operator");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "op-b");
  const json after = Md()["status"];
  EXPECT_EQ(after["currentStep"], 1);
  EXPECT_EQ(after["canaryWeight"], 50);
  EXPECT_EQ(after["canaryRevision"], before["canaryRevision"]);
  EXPECT_EQ(after["currentStepStartTime"], before["currentStepStartTime"]);

  Annotate("sluice.dev/promote", "true");
  ASSERT_TRUE(Eventually([&] {
    const json md = Md();
    return Phase(md) == "Healthy" && md["status"]["stableRevision"] == before["canaryRevision"];
  })) << Md().dump(2);
}

TEST_F(OperatorTest, AStandbyTakesOverAtOnceWhenTheLeaderStops) {
  StartOperator();
  ASSERT_TRUE(Eventually([&] { return op_->op->leading(); }));
  auto standby = Launch(Options("op-standby"));
  ASSERT_NE(standby, nullptr);
  // Warm but idle: synced, ready, not leading.
  ASSERT_TRUE(Eventually([&] { return standby->op->ready(); }));
  EXPECT_EQ(HttpGet(standby->op->health_port(), "/readyz").first, 200);
  EXPECT_FALSE(standby->op->leading());

  const auto stopped = std::chrono::steady_clock::now();
  StopOperator();
  ASSERT_TRUE(Eventually([&] { return standby->op->leading(); }, seconds(10)));
  const auto takeover = std::chrono::steady_clock::now() - stopped;
  // Released on stop: no waiting out the 6 s lease.
  EXPECT_LT(takeover, seconds(5));
  std::cerr << "standby took over " << std::chrono::duration_cast<std::chrono::milliseconds>(takeover).count()
            << " ms after the leader stopped\n";

  kubelet_->set_enabled(true);
  ApplyMd(TestSpec());
  WaitHealthy();
  Halt(standby);
}

TEST_F(OperatorTest, FeatureViewReportsItsSecretAndHealsWhenItAppears) {
  StartOperator();
  json fv = LoadSample(kCrdDir + "/samples/fraud-featureviews.yaml", ns_);
  auto applied = client_->Apply(kFvGvr, ns_, fv, "sluice-it", true);
  ASSERT_TRUE(applied.ok()) << applied.status();
  auto get = [&] {
    auto o = client_->Get(kFvGvr, ns_, "card-features");
    return o.ok() ? *o : json::object();
  };
  ASSERT_TRUE(Eventually([&] { return ConditionReason(get(), "Degraded") == "True/SecretNotFound"; }))
      << get().dump(2);
  EXPECT_EQ(get()["status"]["observedGeneration"], 1);
  EXPECT_EQ(ConditionReason(get(), "Ready"), "False/SecretNotFound");

  auto secret = client_->Create(kube::resources::kSecrets, ns_,
                                {{"apiVersion", "v1"},
                                 {"kind", "Secret"},
                                 {"metadata", {{"name", "fraud-redis"}}},
                                 {"stringData", {{"connection", "redis.feast:6379,password=x"}}}});
  ASSERT_TRUE(secret.ok()) << secret.status();
  ASSERT_TRUE(Eventually([&] { return ConditionReason(get(), "Degraded") == "False/AsExpected"; }))
      << get().dump(2);
  EXPECT_EQ(ConditionReason(get(), "Ready"), "False/NotMaterialized");
}

// The materialization the operator starts is accepted by the real API server as built, and a
// finished run (written here as the Job controller and the kubelet would: no kubelet runs in
// this tier; the node e2e runs a real Job) moves the FeatureView's status and Events.
TEST_F(OperatorTest, FeatureViewRunsMaterializationJobsAndReportsTheirResults) {
  auto secret = client_->Create(kube::resources::kSecrets, ns_,
                                {{"apiVersion", "v1"},
                                 {"kind", "Secret"},
                                 {"metadata", {{"name", "fraud-redis"}}},
                                 {"stringData", {{"connection", "redis.sluice-features.svc.cluster.local:6379"}}}});
  ASSERT_TRUE(secret.ok()) << secret.status();
  StartOperator();
  json fv = LoadSample(kCrdDir + "/samples/fraud-featureviews.yaml", ns_);
  ASSERT_TRUE(client_->Apply(kFvGvr, ns_, fv, "sluice-it", true).ok());
  const kube::GroupVersionResource jobs{"batch", "v1", "jobs", true, "Job"};
  const kube::GroupVersionResource cronjobs{"batch", "v1", "cronjobs", true, "CronJob"};
  auto get = [&](const kube::GroupVersionResource& gvr, const std::string& name) {
    auto o = client_->Get(gvr, ns_, name);
    return o.ok() ? *o : json::object();
  };
  auto list_jobs = [&] {
    auto list = client_->List(jobs, ns_);
    return list.ok() ? (*list)["items"].get<std::vector<json>>() : std::vector<json>{};
  };

  ASSERT_TRUE(Eventually([&] { return !get(cronjobs, "card-features-materialize").empty(); }));
  const json cron = get(cronjobs, "card-features-materialize");
  EXPECT_EQ(cron["spec"]["schedule"], "*/15 * * * *");
  EXPECT_EQ(cron["spec"]["timeZone"], "Etc/UTC");
  EXPECT_EQ(cron["spec"]["concurrencyPolicy"], "Forbid");
  EXPECT_EQ(cron["spec"]["suspend"], false);
  EXPECT_EQ(cron["metadata"]["ownerReferences"][0]["kind"], "FeatureView");

  ASSERT_TRUE(Eventually([&] { return list_jobs().size() == 1; })) << list_jobs().size();
  const json job = list_jobs()[0];
  const std::string job_name = job["metadata"]["name"];
  EXPECT_EQ(job["metadata"]["annotations"]["sluice.dev/materialize-trigger"], "created");
  EXPECT_EQ(job["spec"]["backoffLimit"], 2);
  const json& c = job["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "registry.example/sluice:it");
  EXPECT_EQ(c["command"][0], "sluice-materialize");
  EXPECT_EQ(c["terminationMessagePolicy"], "FallbackToLogsOnError");
  EXPECT_EQ(c["env"][0]["valueFrom"]["secretKeyRef"]["name"], "fraud-redis");
  EXPECT_THAT(c["args"].dump(), ::testing::HasSubstr("card_features.parquet"));
  ASSERT_TRUE(Eventually([&] { return StatusOf(get(kFvGvr, "card-features")).value("triggeredGeneration", 0) == 1; }));
  EXPECT_EQ(ConditionReason(get(kFvGvr, "card-features"), "Ready"), "False/NotMaterialized");

  // The run's pod, with the result in its termination message, and the Job complete.
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", job_name + "-abcde"},
                {"labels", job["spec"]["template"]["metadata"]["labels"]},
                {"annotations", job["spec"]["template"]["metadata"]["annotations"]}}},
              {"spec", job["spec"]["template"]["spec"]}};
  pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] = job_name;
  ASSERT_TRUE(client_->Create(kube::resources::kPods, ns_, pod).ok());
  api::MaterializeResult r;
  r.ok = true;
  r.run_time = "2026-01-01T00:04:00Z";
  r.source_watermark = "2025-12-31T23:00:00Z";
  r.rows_read = 120;
  r.entities_written = 40;
  r.duration_seconds = 1.5;
  const std::string result = r.ToJson().dump();
  json pod_status = {{"apiVersion", "v1"},
                     {"kind", "Pod"},
                     {"metadata", {{"name", job_name + "-abcde"}, {"namespace", ns_}}},
                     {"status",
                      {{"phase", "Succeeded"},
                       {"containerStatuses",
                        json::array({{{"name", "materialize"},
                                      {"image", c["image"]},
                                      {"imageID", ""},
                                      {"ready", false},
                                      {"restartCount", 0},
                                      {"state",
                                       {{"terminated",
                                         {{"exitCode", 0},
                                          {"reason", "Completed"},
                                          {"startedAt", "2026-01-01T00:04:00Z"},
                                          {"finishedAt", "2026-01-01T00:04:02Z"},
                                          {"message", result}}}}}}})}}}};
  auto written = client_->Apply(kube::resources::kPods, ns_, pod_status, "it-kubelet", true, "status");
  ASSERT_TRUE(written.ok()) << written.status();
  json job_status = {{"apiVersion", "batch/v1"},
                     {"kind", "Job"},
                     {"metadata", {{"name", job_name}, {"namespace", ns_}}},
                     {"status",
                      {{"startTime", "2026-01-01T00:04:00Z"},
                       {"completionTime", "2026-01-01T00:04:03Z"},
                       {"succeeded", 1},
                       {"conditions",
                        json::array({{{"type", "SuccessCriteriaMet"}, {"status", "True"},
                                      {"lastTransitionTime", "2026-01-01T00:04:03Z"}},
                                     {{"type", "Complete"}, {"status", "True"},
                                      {"lastTransitionTime", "2026-01-01T00:04:03Z"}}})}}}};
  written = client_->Apply(jobs, ns_, job_status, "it-job-controller", true, "status");
  ASSERT_TRUE(written.ok()) << written.status();

  ASSERT_TRUE(Eventually([&] { return ConditionReason(get(kFvGvr, "card-features"), "Ready") == "True/Materialized"; }))
      << get(kFvGvr, "card-features").dump(2);
  const json status = get(kFvGvr, "card-features")["status"];
  EXPECT_EQ(status["lastMaterialized"]["rows"], 120);
  EXPECT_EQ(status["lastMaterialized"]["entitiesWritten"], 40);
  EXPECT_EQ(status["lastMaterialized"]["job"], job_name);
  EXPECT_EQ(status["lastMaterialized"]["end"], "2026-01-01T00:04:00Z");
  EXPECT_EQ(ConditionReason(get(kFvGvr, "card-features"), "Degraded"), "False/AsExpected");
  ASSERT_TRUE(Eventually([&] {
    auto events = client_->List(kube::resources::kEvents, ns_);
    if (!events.ok()) return false;
    for (const auto& e : (*events)["items"]) {
      if (e.value("reason", "") == "Materialized" && e["involvedObject"].value("name", "") == "card-features") {
        return e.value("message", "").find("120 rows") != std::string::npos;
      }
    }
    return false;
  }));

  // A request by annotation runs once more, and the annotation is removed.
  auto patched = client_->Patch(kFvGvr, ns_, "card-features", kube::PatchType::kMerge,
                                R"({"metadata": {"annotations": {"sluice.dev/materialize": "now"}}})");
  ASSERT_TRUE(patched.ok()) << patched.status();
  ASSERT_TRUE(Eventually([&] { return list_jobs().size() == 2; })) << list_jobs().size();
  ASSERT_TRUE(Eventually([&] {
    return !get(kFvGvr, "card-features")["metadata"].value("annotations", json::object()).contains("sluice.dev/materialize");
  }));
  std::this_thread::sleep_for(seconds(1));
  EXPECT_EQ(list_jobs().size(), 2u);
}

TEST_F(OperatorTest, ModelDeploymentNamingAMissingFeatureViewIsDegraded) {
  StartOperator();
  json md = TestSpec();
  md["spec"]["features"] = json::array({{{"name", "card-features"}, {"features", json::array({"velocity_last_24h"})}}});
  ApplyMd(md);
  ASSERT_TRUE(Eventually([&] { return ConditionReason(Md(), "Degraded") == "True/FeatureViewNotFound"; }))
      << Md().dump(2);
  EXPECT_TRUE(Owned(kube::resources::kDeployments).empty() ||
              [&] {
                for (const auto& d : Owned(kube::resources::kDeployments)) {
                  if (d["metadata"]["labels"].value("app.kubernetes.io/component", "") == "server") return false;
                }
                return true;
              }());

  // The view appears: the FeatureView watch brings the ModelDeployment back, and it rolls out
  // with the view in its server's arguments.
  json fv = LoadSample(kCrdDir + "/samples/fraud-featureviews.yaml", ns_);
  ASSERT_TRUE(client_->Apply(kFvGvr, ns_, fv, "sluice-it", true).ok());
  ASSERT_TRUE(Eventually([&] {
    for (const auto& d : Owned(kube::resources::kDeployments)) {
      if (d["metadata"]["labels"].value("app.kubernetes.io/component", "") != "server") continue;
      const json& c = d["spec"]["template"]["spec"]["containers"][0];
      return c["args"].dump().find("--feature-views=") != std::string::npos &&
             c.contains("env") && c["env"].dump().find("fraud-redis") != std::string::npos;
    }
    return false;
  })) << Md().dump(2);
}

}  // namespace
}  // namespace sluice::controllers::it
