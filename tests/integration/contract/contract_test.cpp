// The contract between the operator and the data plane, checked with both real sides: every
// ModelDeployment sample, and one that sets every field admission accepts, is created on a real
// kube-apiserver (which fills in the CRD's defaults), the operator's own code builds the revision
// and router Deployments from what comes back, and the exact command, args and env of each
// container are run with the real sluice-server and sluice-router binaries until they report
// ready. Substituted, and nothing else: the model URI's value (a local copy of the model, same
// format), port values (free ports), the files of a spec.tls Secret (a local kubelet-style mount
// of test certificates), and for the router its API access (a kubeconfig holding a token of the
// router's own ServiceAccount, bound by the operator's own Role; in a pod the service account is
// found in-cluster).

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "controllers/modeldeployment/resources.h"
#include "lib/api/model_deployment.h"
#include "lib/api/object_labels.h"
#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "tests/lib/api/yaml_json.h"
#include "tests/lib/http/http_test_client.h"
#include "tests/support/api_server.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"
#include "tests/support/tls_files.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kCrdDir = SLUICE_CRD_DIR;
const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;
// How long a process may take to report ready (the model is small; the machine may be busy).
constexpr auto kReadyBound = 60s;

bool Eventually(const std::function<bool()>& condition, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

// RevisionDeployment returns a Result where a spec can fail to build (before the fix it returned
// the object; both compile, so the test also runs against the old code).
[[maybe_unused]] const json& Built(const json& j) {
  return j;
}
[[maybe_unused]] json Built(Result<json> r) {
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : json();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The API server with the CRDs, and an admin client.
class Environment {
 public:
  static Environment& Get() {
    static Environment* env = new Environment();
    return *env;
  }
  kube::Client& client() { return *client_; }
  sluice::testing::TestApiServer& api() { return *api_; }
  const std::string& error() const { return error_; }

 private:
  Environment() : api_(&sluice::testing::SharedApiServer()) {
    auto config = kube::Config::FromKubeconfig(api_->kubeconfig_path());
    if (!config.ok()) {
      error_ = config.status().ToString();
      return;
    }
    auto client = kube::Client::Create(*config);
    if (!client.ok()) {
      error_ = client.status().ToString();
      return;
    }
    client_ = std::move(client).value();
    for (const json& crd :
         controllers::testing::LoadYamlDocuments(kCrdDir + "/sluice.dev_modeldeployments.yaml")) {
      auto applied = client_->Apply(kube::resources::kCustomResourceDefinitions, "", crd,
                                    "contract-test", true);
      if (!applied.ok()) {
        error_ = applied.status().ToString();
        return;
      }
    }
    if (!Eventually([&] { return client_->List(api::kModelDeploymentsGvr, "", {}).ok(); }, 60s)) {
      error_ = "modeldeployments are not served";
    }
  }

  sluice::testing::TestApiServer* api_;
  std::unique_ptr<kube::Client> client_;
  std::string error_;
};

// A ModelDeployment that sets every field admission accepts today (GatewayAPI routing is
// refused until it works; models:/ URIs are in the samples; spec.features needs FeatureViews and a Redis, and is
// checked by the feature enrichment tests). The digest is the model's own.
std::string Sha256Of(const std::string& path) {
  auto r = sluice::testing::RunCommand({"sha256sum", path});
  EXPECT_TRUE(r.ok() && r->status.success()) << path;
  return r.ok() && r->output.size() >= 64 ? r->output.substr(0, 64) : "";
}

json EveryField() {
  json md = json::parse(R"json({
    "apiVersion": "sluice.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "every-field"},
    "spec": {
      "model": {"uri": "s3://models/fraud/3/fraud.json", "format": "xgboost-json",
                "version": "3", "credentials": {"secretRef": {"name": "models-s3"}},
                "s3": {"endpoint": "http://minio.storage:9000", "region": "eu-west-1",
                       "addressingStyle": "path"}},
      "runtime": {
        "image": "registry.example.com/sluice:dev",
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"},
                      "limits": {"cpu": 1, "memory": "256Mi"}},
        "batching": {"maxBatchSize": 16, "maxQueueDelay": "500us", "maxQueueSize": 64},
        "cache": {"enabled": true, "capacity": 2000, "ttl": "1m30s"},
        "env": [{"name": "OMP_NUM_THREADS", "value": "1"},
                {"name": "SLUICE_CONTRACT", "value": "x"}],
        "args": ["--request-timeout-ms=5000", "--log-level=debug"]
      },
      "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "targetConcurrency": 4,
                      "mode": "Concurrency", "stableWindow": "30s", "panicWindow": "3s",
                      "scaleDownDelay": "10s"},
      "rollout": {
        "strategy": "Canary",
        "canary": {
          "steps": [{"weight": 20, "pause": "10s"}, {"weight": 60},
                    {"weight": 100, "pause": "0s"}],
          "analysis": {
            "interval": "2s", "failureThreshold": 3, "minRequests": 5, "noDataPolicy": "Fail",
            "prometheus": {"address": "http://prometheus.monitoring:9090"},
            "metrics": [
              {"name": "error-rate", "builtin": "errorRate", "thresholdRange": {"max": 0.05}},
              {"name": "latency-p99", "builtin": "latencyP99",
               "thresholdRange": {"min": 0, "max": 0.2}},
              {"name": "custom", "query": "sum(rate(x{revision=\"{{revision}}\"}[{{interval}}]))",
               "thresholdRange": {"max": 10}}]}},
        "rolling": {"maxSurge": "25%", "maxUnavailable": 0},
        "progressDeadline": "5m",
        "scaleDownDelay": "1m"
      },
      "traffic": {"router": "Builtin", "mirror": {"percent": 10},
                  "sticky": {"header": "x-user-id"}},
      "tls": {"secretName": "every-field-tls"}
    }
  })json");
  md["spec"]["model"]["sha256"] = Sha256Of(kModelDir + "/fraud.json");
  return md;
}

// The ModelDeployments to run: each sample, then the one that sets every field.
std::vector<json> Cases() {
  std::vector<json> out;
  for (const auto& entry : fs::directory_iterator(fs::path(kCrdDir) / "samples")) {
    if (entry.path().extension() != ".yaml") continue;
    for (json& doc : controllers::testing::LoadYamlDocuments(entry.path().string())) {
      if (doc.value("kind", "") == "ModelDeployment") out.push_back(std::move(doc));
    }
  }
  out.push_back(EveryField());
  return out;
}

std::string CaseName(const ::testing::TestParamInfo<json>& info) {
  std::string name = info.param["metadata"]["name"].get<std::string>();
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

// A container's command line and environment, as a pod would run it.
struct Launch {
  std::vector<std::string> argv;
  std::vector<std::string> env;
};

Launch FromContainer(const json& container, const std::string& binary) {
  Launch l;
  EXPECT_EQ(container["command"].size(), 1u) << container["command"];
  EXPECT_EQ(fs::path(binary).filename(), container["command"][0].get<std::string>());
  l.argv.push_back(binary);
  for (const json& a : container.value("args", json::array()))
    l.argv.push_back(a.get<std::string>());
  for (const json& e : container.value("env", json::array())) {
    // A Secret's key reaches the pod by reference; here it is a stand-in value of the same name.
    if (e.contains("valueFrom") && e["valueFrom"].contains("secretKeyRef")) {
      l.env.push_back(e["name"].get<std::string>() + "=contract-" +
                      e["valueFrom"]["secretKeyRef"].value("key", ""));
      continue;
    }
    EXPECT_TRUE(e.contains("value")) << "only literal env values can run outside a pod: " << e;
    l.env.push_back(e["name"].get<std::string>() + "=" + e.value("value", ""));
  }
  return l;
}

// Replaces the value of `--flag=...` in argv; the flag must be there exactly once.
void Substitute(Launch& l, const std::string& flag, const std::string& value) {
  int found = 0;
  for (std::string& a : l.argv) {
    if (a.rfind(flag + "=", 0) == 0) {
      a = flag + "=" + value;
      ++found;
    }
  }
  EXPECT_EQ(found, 1) << flag << " in the container's args";
}

std::string Port() {
  auto p = sluice::testing::PickFreePort();
  EXPECT_TRUE(p.ok()) << p.status();
  return std::to_string(p.ok() ? *p : 0);
}

// A process's output for a failure message: all of it when short, else its start (where a flag
// error is) and its end.
std::string Output(const std::string& path) {
  const std::string text = ReadFile(path);
  if (text.size() <= 6000) return text;
  return text.substr(0, 2000) + "\n[...]\n" + sluice::testing::TailFile(path, 30);
}

// GET `path` on 127.0.0.1:`port`: plain HTTP, or HTTPS verified against `ca_file` when set.
std::optional<int> GetStatus(int port, const std::string& path, const std::string& ca_file) {
  if (ca_file.empty()) {
    sluice::testing::HttpTestClient c(static_cast<uint16_t>(port), 2s);
    auto r = c.Request(boost::beast::http::verb::get, path);
    if (!r) return std::nullopt;
    return r->status;
  }
  auto c = sluice::testing::TlsTestClient::Connect(static_cast<uint16_t>(port), ca_file);
  if (!c.ok()) return std::nullopt;
  auto r = (*c)->Request(boost::beast::http::verb::get, path);
  if (!r.ok()) return std::nullopt;
  return r->status;
}

// Runs `l` and waits until GET `path` on `port` answers 200 (over HTTPS with `ca_file`); the
// failure carries the process's output and how it ended.
class Running {
 public:
  Running(const Launch& l, const std::string& name, int port, const std::string& path,
          const std::string& ca_file = "") {
    sluice::testing::SpawnOptions o;
    o.argv = l.argv;
    o.env = l.env;
    o.log_path =
        ::testing::TempDir() + "/contract-" + std::to_string(::getpid()) + "-" + name + ".log";
    auto spawned = sluice::testing::Subprocess::Spawn(o);
    if (!spawned.ok()) {
      failure_ = spawned.status().ToString();
      return;
    }
    process_ = std::move(spawned).value();
    const bool ready = Eventually(
        [&] {
          if (!process_->Running()) return true;  // no point in waiting
          return GetStatus(port, path, ca_file) == 200;
        },
        std::chrono::duration_cast<std::chrono::seconds>(kReadyBound));
    if (!ready || !process_->Running()) {
      std::string how =
          "still running, not ready after " + std::to_string(kReadyBound.count()) + "s";
      if (!process_->Running() && process_->exit_status())
        how = process_->exit_status()->ToString();
      std::string args;
      for (const std::string& a : l.argv) args += " " + a;
      failure_ = name + " never reported ready on " + path + " (" + how + ")\ncommand:" + args +
                 "\noutput:\n" + Output(o.log_path);
    }
  }

  const std::string& failure() const { return failure_; }

  // SIGTERM twice (the second skips the drain grace period); the process must exit cleanly.
  void StopCleanly() {
    if (!process_ || !process_->Running()) return;
    ASSERT_TRUE(process_->Signal(SIGTERM).ok());
    // The second signal only once the first was taken: wait for the process to say so.
    Eventually([&] { return ReadFile(process_->log_path()).find("draining") != std::string::npos; },
               10s);
    ASSERT_TRUE(process_->Signal(SIGTERM).ok());
    auto status = process_->Wait(60s);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(status->success()) << status->ToString() << "\n"
                                   << sluice::testing::TailFile(process_->log_path());
  }

 private:
  std::unique_ptr<sluice::testing::Subprocess> process_;
  std::string failure_;
};

class ContractTest : public ::testing::TestWithParam<json> {
 protected:
  void SetUp() override {
    ASSERT_EQ(Environment::Get().error(), "") << Environment::Get().api().LogTails();
    ns_ = "contract-" + GetParam()["metadata"]["name"].get<std::string>();
    auto created = client().Create(
        kube::resources::kNamespaces, "",
        json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns_}}}});
    ASSERT_TRUE(created.ok() || created.status().code() == StatusCode::kAlreadyExists)
        << created.status();
  }

  kube::Client& client() { return Environment::Get().client(); }

  // The ModelDeployment as the API server stored it: admitted, defaults filled in.
  ModelDeploymentObject CreateOnTheApiServer() {
    auto created = client().Create(api::kModelDeploymentsGvr, ns_, GetParam());
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return {};
    auto md = ParseModelDeployment(*created);
    EXPECT_TRUE(md.ok()) << md.status();
    return ModelDeploymentObject{md.ok() ? *md : ModelDeployment{},
                                 (*created)["metadata"]["uid"].get<std::string>()};
  }

  // A kubeconfig that authenticates as the router's ServiceAccount, with the Role and
  // RoleBinding the operator creates for it.
  std::string RouterKubeconfig(const ModelDeploymentObject& owner) {
    for (auto [gvr, object] : std::vector<std::pair<const kube::GroupVersionResource*, json>>{
             {&kube::resources::kServiceAccounts, RouterServiceAccount(owner)},
             {&kRolesGvr, RouterRole(owner)},
             {&kRoleBindingsGvr, RouterRoleBinding(owner)}}) {
      auto created = client().Create(*gvr, ns_, object);
      EXPECT_TRUE(created.ok()) << created.status();
    }
    const std::string sa = RouterName(owner.md.Name());
    kube::WriteOptions token_request;
    token_request.subresource = "token";
    auto token = client().Create(kube::resources::kServiceAccounts, ns_,
                                 json{{"apiVersion", "authentication.k8s.io/v1"},
                                      {"kind", "TokenRequest"},
                                      {"metadata", {{"name", sa}}},
                                      {"spec", {{"expirationSeconds", 3600}}}},
                                 token_request);
    EXPECT_TRUE(token.ok()) << token.status();
    if (!token.ok()) return "";
    const std::string path = ::testing::TempDir() + "/contract-" + ns_ + ".kubeconfig";
    std::ofstream(path) << "apiVersion: v1\nkind: Config\n"
                        << "clusters:\n- name: test\n  cluster:\n    server: "
                        << Environment::Get().api().url()
                        << "\n    certificate-authority: " << Environment::Get().api().ca_file()
                        << "\n"
                        << "users:\n- name: router\n  user:\n    token: "
                        << (*token)["status"]["token"].get<std::string>() << "\n"
                        << "contexts:\n- name: router\n  context:\n    cluster: test\n"
                        << "    user: router\n    namespace: " << ns_ << "\n"
                        << "current-context: router\n";
    return path;
  }

  std::string ns_;
};

TEST_P(ContractTest, TheGeneratedServerAndRouterStartAndReportReady) {
  const ModelDeploymentObject owner = CreateOnTheApiServer();
  ASSERT_FALSE(owner.uid.empty());
  const WorkloadOptions options;

  // sluice-server, as the revision Deployment runs it.
  const json revision =
      Built(RevisionDeployment(owner, owner.md.Name() + "-contract", owner.md.spec, 1, options));
  ASSERT_TRUE(revision.is_object());
  Launch server =
      FromContainer(revision["spec"]["template"]["spec"]["containers"][0], SLUICE_SERVER_BIN);
  // The model, in the format the spec names (or its URI's extension says).
  const std::string& uri = owner.md.spec.model.uri;
  const bool ubj = owner.md.spec.model.format.value_or("auto") == "xgboost-ubj" ||
                   uri.substr(uri.size() - 4) == ".ubj";
  Substitute(server, "--model-uri", "file://" + kModelDir + (ubj ? "/fraud.ubj" : "/fraud.json"));
  // A remote model is fetched into the pod's emptyDir: here a folder of the test's own.
  if (IsRemoteModel(owner.md.spec.model)) {
    const std::string dir = ::testing::TempDir() + "/contract-" + ns_ + "-model";
    std::filesystem::create_directories(dir);
    Substitute(server, "--model-dir", dir);
  }
  // spec.tls: the Secret's files as the kubelet mounts them, with certificates of a test CA.
  std::unique_ptr<sluice::testing::MountedTlsSecret> secret;
  std::string ca_file;
  if (owner.md.spec.tls) {
    auto ca = sluice::testing::CertificateAuthority::Create("contract CA");
    ASSERT_TRUE(ca.ok()) << ca.status();
    sluice::testing::CertificateRequest req;
    req.common_name = owner.md.Name();
    req.ip_addresses = {"127.0.0.1"};
    req.server_auth = true;
    auto leaf = (*ca)->Issue(req);
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    secret = std::make_unique<sluice::testing::MountedTlsSecret>(::testing::TempDir() +
                                                                 "/contract-" + ns_ + "-tls");
    ASSERT_TRUE(secret->Write(*leaf, (*ca)->cert_pem()).ok());
    ca_file = secret->ca_file();
    Substitute(server, "--tls-cert-file", secret->cert_file());
    Substitute(server, "--tls-key-file", secret->key_file());
  }
  const std::string http_port = Port();
  Substitute(server, "--http-port", http_port);
  Substitute(server, "--grpc-port", Port());
  std::string admin_port;
  if (owner.md.spec.tls) {
    admin_port = Port();
    Substitute(server, "--admin-port", admin_port);
  }
  Running server_process(server, ns_ + "-server", std::stoi(http_port), "/v2/health/ready",
                         ca_file);
  ASSERT_EQ(server_process.failure(), "");
  // With TLS, metrics and health stay reachable in plain HTTP on the admin port.
  if (!admin_port.empty()) {
    EXPECT_EQ(GetStatus(std::stoi(admin_port), "/metrics", ""), 200);
    EXPECT_EQ(GetStatus(std::stoi(admin_port), "/v2/health/ready", ""), 200);
    EXPECT_EQ(GetStatus(std::stoi(http_port), "/v2/health/ready", ""), std::nullopt);
  }

  // It serves the model under the name and version the spec gives.
  {
    const std::string path =
        "/v2/models/" + owner.md.Name() +
        (owner.md.spec.model.version ? "/versions/" + *owner.md.spec.model.version
                                     : std::string()) +
        "/infer";
    const std::string body = ReadFile(kModelDir + "/sample_request.json");
    if (ca_file.empty()) {
      sluice::testing::HttpTestClient c(static_cast<uint16_t>(std::stoi(http_port)));
      auto answer = c.Request(boost::beast::http::verb::post, path, body);
      ASSERT_TRUE(answer.has_value());
      EXPECT_EQ(answer->status, 200) << path << ": " << answer->body;
    } else {
      auto c = sluice::testing::TlsTestClient::Connect(
          static_cast<uint16_t>(std::stoi(http_port)), ca_file);
      ASSERT_TRUE(c.ok()) << c.status();
      auto answer = (*c)->Request(boost::beast::http::verb::post, path, body);
      ASSERT_TRUE(answer.ok()) << answer.status();
      EXPECT_EQ(answer->status, 200) << path << ": " << answer->body;
    }
  }

  // sluice-router, as the router Deployment runs it.
  std::optional<TlsSecretInfo> tls;
  if (owner.md.spec.tls) tls = TlsSecretInfo{owner.md.spec.tls->secret_name, true};
  const json router_deployment = RouterDeployment(owner, options, tls);
  Launch router = FromContainer(router_deployment["spec"]["template"]["spec"]["containers"][0],
                                SLUICE_ROUTER_BIN);
  const std::string router_port = Port();
  Substitute(router, "--http-port", router_port);
  Substitute(router, "--grpc-port", Port());
  const std::string router_admin_port = Port();
  Substitute(router, "--admin-port", router_admin_port);
  if (secret) {
    Substitute(router, "--tls-cert-file", secret->cert_file());
    Substitute(router, "--tls-key-file", secret->key_file());
    Substitute(router, "--upstream-ca-file", secret->ca_file());
  }
  const std::string kubeconfig = RouterKubeconfig(owner);
  ASSERT_FALSE(kubeconfig.empty());
  router.env.push_back("KUBECONFIG=" + kubeconfig);
  Running router_process(router, ns_ + "-router", std::stoi(router_port), "/readyz", ca_file);
  ASSERT_EQ(router_process.failure(), "");
  // Its metrics on the admin port the pod template names (and Prometheus is told to scrape).
  {
    const json& ports = router_deployment["spec"]["template"]["spec"]["containers"][0]["ports"];
    EXPECT_TRUE(std::any_of(ports.begin(), ports.end(), [](const json& p) {
      return p.value("name", "") == api::kAdminPortName;
    })) << ports;
    sluice::testing::HttpTestClient c(static_cast<uint16_t>(std::stoi(router_admin_port)));
    auto metrics = c.Get("/metrics");
    ASSERT_TRUE(metrics.has_value());
    EXPECT_EQ(metrics->status, 200);
    EXPECT_NE(metrics->body.find("sluice_router_routing_updates_total"), std::string::npos)
        << metrics->body;
  }

  router_process.StopCleanly();
  server_process.StopCleanly();
}

INSTANTIATE_TEST_SUITE_P(EveryModelDeployment, ContractTest, ::testing::ValuesIn(Cases()),
                         CaseName);

}  // namespace
}  // namespace sluice::controllers
