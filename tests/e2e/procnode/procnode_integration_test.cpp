// sluice-procnode against a real control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler): a Deployment of sluice-server lands on the proc node, becomes Ready, answers
// on its pod IP and is published in its Service's EndpointSlice; deleting it drains the process
// (preStop, SIGTERM, clean exit) before the pod object goes. Crashing and unhealthy containers
// are restarted.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/e2e/support/local_cluster.h"
#include "e2e/procnode/child.h"

namespace sluice::testing {
namespace {

using kube::Json;
using namespace std::chrono_literals;
namespace res = kube::resources;

const kube::GroupVersionResource kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices", true,
                                                 "EndpointSlice"};
const kube::GroupVersionResource kNodes{"", "v1", "nodes", false, "Node"};

class ProcNodeTest : public ::testing::Test {
 public:
  static void StopCluster() {
    delete cluster_;
    cluster_ = nullptr;
  }

 protected:
  // One cluster for every suite of this binary: started by the first, stopped by the
  // environment below after the last.
  static void SetUpTestSuite() {
    if (cluster_ || start_error_) return;
    LocalClusterOptions options;
    options.procnode_bin = SLUICE_PROCNODE_BIN;
    options.pod_bin_dirs = {std::filesystem::path(SLUICE_SERVER_BIN).parent_path().string()};
    auto started = LocalCluster::Start(options);
    if (!started.ok()) {
      start_error_ = new Status(started.status());
      return;
    }
    cluster_ = std::move(started).value().release();
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << (start_error_ ? start_error_->ToString() : "no cluster");
    static int counter = 0;
    ns_ = "procnode-" + std::to_string(++counter);
    auto r = client().Create(res::kNamespaces, "", {{"metadata", {{"name", ns_}}}});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  void TearDown() override {
    if (HasFailure() && cluster_) {
      std::cerr << "---- cluster logs\n" << cluster_->LogTails(40) << "\n";
      for (const auto& entry : std::filesystem::recursive_directory_iterator(
               cluster_->procnode_work_dir(),
               std::filesystem::directory_options::skip_permission_denied)) {
        if (entry.path().extension() == ".log") {
          std::cerr << "--- " << entry.path() << "\n" << TailFile(entry.path(), 20) << "\n";
        }
      }
    }
  }

  kube::Client& client() { return cluster_->client(); }

  static Json ServerContainer() {
    return {
        {"name", "server"},
        {"image", "sluice:dev"},
        {"command", Json::array({"sluice-server"})},
        {"args", Json::array({"--model-name=fraud",
                              "--model-uri=file://" + std::string(SLUICE_SOURCE_DIR) +
                                  "/bench/fraud/model/fraud.json",
                              "--http-port=8080", "--drain-grace-ms=500"})},
        {"env", Json::array({{{"name", "POD_NAME"},
                              {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}})},
        {"ports", Json::array({{{"name", "http"}, {"containerPort", 8080}}})},
        {"readinessProbe",
         {{"httpGet", {{"path", "/v2/health/ready"}, {"port", "http"}}},
          {"periodSeconds", 1},
          {"failureThreshold", 2}}},
        {"lifecycle", {{"preStop", {{"sleep", {{"seconds", 3}}}}}}},
    };
  }

  static Json Deployment(const std::string& name, Json container, int grace = 15) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", name}}},
            {"spec",
             {{"replicas", 1},
              {"selector", {{"matchLabels", {{"app", name}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", name}}}}},
                {"spec",
                 {{"terminationGracePeriodSeconds", grace},
                  {"containers", Json::array({std::move(container)})}}}}}}}};
  }

  std::vector<Json> Pods(const std::string& app) {
    kube::ListOptions options;
    options.label_selector = "app=" + app;
    auto list = client().List(res::kPods, ns_, options);
    if (!list.ok()) return {};
    return (*list)["items"].get<std::vector<Json>>();
  }

  static bool PodReady(const Json& pod) {
    for (const auto& c : pod["status"].value("conditions", Json::array())) {
      if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
    }
    return false;
  }

  static LocalCluster* cluster_;
  static Status* start_error_;
  std::string ns_;
};

LocalCluster* ProcNodeTest::cluster_ = nullptr;
Status* ProcNodeTest::start_error_ = nullptr;

class StopClusterAtExit : public ::testing::Environment {
 public:
  void TearDown() override { ProcNodeTest::StopCluster(); }
};
// NOLINTNEXTLINE(cert-err58-cpp): only allocation can throw
::testing::Environment* const g_stop_cluster =
    ::testing::AddGlobalTestEnvironment(new StopClusterAtExit);

TEST_F(ProcNodeTest, NodeIsReadyWithALeaseAndAnAddressInThePodRange) {
  auto node = client().Get(kNodes, "", "proc-0");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)["status"]["addresses"][0]["address"], "10.244.0.1");
  EXPECT_EQ((*node)["status"]["capacity"]["pods"], "110");
  auto lease = client().Get(res::kLeases, "kube-node-lease", "proc-0");
  ASSERT_TRUE(lease.ok()) << lease.status();
  const std::string first = (*lease)["spec"].value("renewTime", "");
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "proc-0");
  // Renewed every 2 s in this cluster.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto l = client().Get(res::kLeases, "kube-node-lease", "proc-0");
        return l.ok() && (*l)["spec"].value("renewTime", "") != first;
      },
      10s));
}

TEST_F(ProcNodeTest, ServerDeploymentBecomesReadyAnswersOnItsPodIpAndDrainsOnDelete) {
  const Json service = {
      {"metadata", {{"name", "fraud"}}},
      {"spec",
       {{"selector", {{"app", "fraud"}}},
        {"ports", Json::array({{{"name", "http"}, {"port", 8080}, {"targetPort", "http"}}})}}}};
  ASSERT_TRUE(client().Create(res::kServices, ns_, service).ok());
  auto created = client().Create(res::kDeployments, ns_, Deployment("fraud", ServerContainer()));
  ASSERT_TRUE(created.ok()) << created.status();

  Json pod;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto pods = Pods("fraud");
        if (pods.size() != 1 || !PodReady(pods[0])) return false;
        pod = pods[0];
        return true;
      },
      90s, 250ms))
      << "no Ready pod";
  const std::string ip = pod["status"].value("podIP", "");
  const std::string name = pod["metadata"]["name"];
  EXPECT_THAT(ip, ::testing::StartsWith("10.244."));
  EXPECT_EQ(pod["spec"]["nodeName"], "proc-0");
  EXPECT_EQ(pod["status"]["phase"], "Running");
  EXPECT_EQ(pod["status"]["hostIP"], "10.244.0.1");
  EXPECT_EQ(pod["status"]["containerStatuses"][0]["restartCount"], 0);
  EXPECT_EQ(pod["status"]["containerStatuses"][0]["ready"], true);

  auto ready = procnode::HttpGet(ip, 8080, "/v2/health/ready", 2s);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(*ready, 200);
  // The server listens on its pod IP only: no other pod's address reaches it.
  EXPECT_FALSE(procnode::HttpGet("127.0.0.1", 8080, "/v2/health/ready", 1s).ok());

  // The EndpointSlice controller publishes the pod IP as a ready endpoint.
  auto endpoint = [&]() -> Json {
    kube::ListOptions options;
    options.label_selector = "kubernetes.io/service-name=fraud";
    auto slices = client().List(kEndpointSlices, ns_, options);
    if (!slices.ok()) return nullptr;
    for (const auto& s : (*slices)["items"]) {
      for (const auto& e : s.value("endpoints", Json::array())) {
        if (e["addresses"][0] == ip) return e;
      }
    }
    return nullptr;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        Json e = endpoint();
        return !e.is_null() && e["conditions"].value("ready", false);
      },
      30s))
      << "pod IP " << ip << " not a ready endpoint";

  // The pod's environment came from the spec (fieldRef) and the log went to the work dir.
  const std::string pod_dir = cluster_->procnode_work_dir() + "/pods/" + ns_ + "_" + name + "_" +
                              pod["metadata"]["uid"].get<std::string>();
  EXPECT_TRUE(std::filesystem::exists(pod_dir + "/server.log")) << pod_dir;

  // Delete the Deployment: the pod drains. During preStop (3 s) the endpoint is no longer
  // ready but the server still answers; then SIGTERM, a clean exit, and the pod object goes.
  kube::DeleteOptions background;
  background.propagation = kube::PropagationPolicy::kBackground;
  ASSERT_TRUE(client().Delete(res::kDeployments, ns_, "fraud", background).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        Json e = endpoint();
        return !e.is_null() && !e["conditions"].value("ready", true);
      },
      30s))
      << "endpoint never became not-ready while draining";
  auto during = procnode::HttpGet(ip, 8080, "/v2/health/live", 2s);
  EXPECT_TRUE(during.ok() && *during == 200) << "the server must still serve during preStop";

  ASSERT_TRUE(WaitFor(
      [&] { return client().Get(res::kPods, ns_, name).status().code() == StatusCode::kNotFound; },
      40s))
      << "pod object not removed";
  EXPECT_FALSE(procnode::HttpGet(ip, 8080, "/v2/health/live", 1s).ok()) << "process still up";
  std::ifstream log(cluster_->procnode_log());
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_THAT(text.str(), ::testing::HasSubstr("pod=" + ns_ + "/" + name + " preStop sleep"));
  EXPECT_THAT(text.str(),
              ::testing::HasSubstr("pod=" + ns_ + "/" + name + " stopped code=0 signal=0"));
}

TEST_F(ProcNodeTest, CrashingContainerIsRestartedWithBackoff) {
  Json c = ServerContainer();
  c["args"] = Json::array({"--model-uri=/nonexistent/model.json", "--http-port=8080"});
  auto created = client().Create(res::kDeployments, ns_, Deployment("crash", c));
  ASSERT_TRUE(created.ok()) << created.status();
  Json pod;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto pods = Pods("crash");
        if (pods.size() != 1 || !pods[0].contains("status")) return false;
        pod = pods[0];
        const auto& statuses = pod["status"].value("containerStatuses", Json::array());
        return !statuses.empty() && statuses[0].value("restartCount", 0) >= 2;
      },
      60s, 250ms))
      << pod.dump(2);
  const Json& cs = pod["status"]["containerStatuses"][0];
  EXPECT_NE(cs["lastState"]["terminated"]["exitCode"], 0);
  EXPECT_FALSE(PodReady(pod));
}

TEST_F(ProcNodeTest, FailingLivenessProbeRestartsTheContainer) {
  Json c = ServerContainer();
  c["livenessProbe"] = {{"httpGet", {{"path", "/no-such-path"}, {"port", "http"}}},
                        {"periodSeconds", 1},
                        {"failureThreshold", 2}};
  c.erase("lifecycle");
  auto created = client().Create(res::kDeployments, ns_, Deployment("unhealthy", c, 2));
  ASSERT_TRUE(created.ok()) << created.status();
  Json pod;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto pods = Pods("unhealthy");
        if (pods.size() != 1 || !pods[0].contains("status")) return false;
        pod = pods[0];
        const auto& statuses = pod["status"].value("containerStatuses", Json::array());
        return !statuses.empty() && statuses[0].value("restartCount", 0) >= 1;
      },
      60s, 250ms))
      << pod.dump(2);
  // The restarted process serves on the same pod IP.
  const std::string ip = pod["status"].value("podIP", "");
  EXPECT_TRUE(WaitFor(
      [&] {
        auto r = procnode::HttpGet(ip, 8080, "/v2/health/ready", 1s);
        return r.ok() && *r == 200;
      },
      30s));
}

// A proc node that ends, gracefully (SIGTERM) or not (SIGKILL), takes its pod processes with it.
class ProcNodeExitTest : public ProcNodeTest, public ::testing::WithParamInterface<int> {};

TEST_P(ProcNodeExitTest, PodProcessesEndWithTheNode) {
  const int signal = GetParam();
  const std::string node = "proc-exit-" + std::to_string(signal);
  SpawnOptions spawn;
  spawn.argv = {
      SLUICE_PROCNODE_BIN, "--kubeconfig=" + cluster_->kubeconfig_path(), "--node-name=" + node,
      "--work-dir=" + cluster_->work_dir() + "/" + node,
      // Its own range, inside the test's private network (10.244.0.0/14).
      std::string("--pod-cidr=") + (signal == SIGKILL ? "10.246.0.0/16" : "10.245.0.0/16"),
      "--bin-dir=" + std::filesystem::path(SLUICE_SERVER_BIN).parent_path().string()};
  spawn.log_path = cluster_->work_dir() + "/logs/" + node + ".log";
  auto procnode = Subprocess::Spawn(spawn);
  ASSERT_TRUE(procnode.ok()) << procnode.status();

  Json pod = {{"metadata", {{"name", "pinned"}, {"labels", {{"app", "pinned"}}}}},
              {"spec",
               {{"nodeName", node},
                {"terminationGracePeriodSeconds", 5},
                {"containers", Json::array({ServerContainer()})}}}};
  auto created = client().Create(res::kPods, ns_, pod);
  ASSERT_TRUE(created.ok()) << created.status();
  std::string ip;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto pods = Pods("pinned");
        if (pods.size() != 1 || !PodReady(pods[0])) return false;
        ip = pods[0]["status"].value("podIP", "");
        return true;
      },
      60s, 250ms))
      << TailFile((*procnode)->log_path());
  auto up = procnode::HttpGet(ip, 8080, "/v2/health/live", 2s);
  ASSERT_TRUE(up.ok() && *up == 200);

  ASSERT_TRUE((*procnode)->Signal(signal).ok());
  auto ended = (*procnode)->Wait(15s);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_TRUE(
      WaitFor([&] { return !procnode::HttpGet(ip, 8080, "/v2/health/live", 1s).ok(); }, 10s))
      << "the pod process outlived its node (signal " << signal << ")";
}

INSTANTIATE_TEST_SUITE_P(Signals, ProcNodeExitTest, ::testing::Values(SIGTERM, SIGKILL));

}  // namespace
}  // namespace sluice::testing
