// Sluice's metrics as a platform team's Prometheus and Grafana see them, with every part real:
// a kube-apiserver + etcd (tests/support), sluice-operator (the binary, canary analysis through
// Prometheus), two sluice-server revisions on the committed fraud model with online features from
// a real redis-server, sluice-router following the ModelDeployment, and Debian's prometheus
// scraping all of them every second with the labels the chart's PodMonitor gives. Steady traffic
// flows through the router while a canary is analysed. Then:
//   - every /metrics endpoint passes `promtool check metrics`;
//   - every query of the Grafana dashboard (charts/sluice/dashboards/sluice.json), with its
//     variables filled in, returns data from that Prometheus, and so do the variables' own queries.
//
// The pods' addresses are in a private network namespace (main() below): EndpointSlices may not
// name loopback addresses. Deployments get Ready through FakeKubelet; the processes above stand in
// for their pods.

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/procnode/pod_network.h"
#include "lib/api/feature_view.h"
#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "tests/integration/controllers/operator_env.h"
#include "tests/support/api_server.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace sluice::monitoring {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using controllers::it::Eventually;
using controllers::it::FakeKubelet;
using testing::Subprocess;
using testing::TailFile;

const std::string kSourceDir = SLUICE_SOURCE_DIR;
const std::string kModelDir = kSourceDir + "/bench/fraud/model";
const kube::GroupVersionResource kMdGvr{"sluice.dev", "v1alpha1", "modeldeployments", true,
                                        "ModelDeployment"};
const kube::GroupVersionResource kSlicesGvr{"discovery.k8s.io", "v1", "endpointslices", true,
                                            "EndpointSlice"};
constexpr char kNs[] = "monitoring";
constexpr char kMd[] = "fraud";
// What $__rate_interval becomes: four scrapes at the 1 s interval below, and then some.
constexpr char kRateInterval[] = "10s";

struct HttpAnswer {
  long status = 0;  // 0: no answer
  std::string body;
};

// One HTTP exchange with libcurl (any address, unlike HttpTestClient).
HttpAnswer Http(const std::string& url, const std::string& post_body = "",
                std::chrono::milliseconds timeout = 10s) {
  HttpAnswer out;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* p, size_t size, size_t n, void* body) -> size_t {
        static_cast<std::string*>(body)->append(p, size * n);
        return size * n;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
  curl_slist* headers = nullptr;
  if (!post_body.empty()) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body.c_str());
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return out;
}

std::string UrlEncode(const std::string& s) {
  CURL* curl = curl_easy_init();
  char* e = curl_easy_escape(curl, s.c_str(), static_cast<int>(s.size()));
  std::string out(e);
  curl_free(e);
  curl_easy_cleanup(curl);
  return out;
}

int ReadPort(const std::string& path) {
  int port = 0;
  std::ifstream(path) >> port;
  return port;
}

// The fraud model's views (values are absent from Redis, so the declared defaults are served;
// the fetch happens, and is timed, all the same).
std::vector<api::FeatureViewConfig> Views(const std::string& redis) {
  api::FeatureViewConfig card;
  card.name = "card_features";
  card.project = "fraud";
  card.entities = {{"card", "card_id", api::FeastType::kString}};
  card.features = {{"velocity_last_24h", api::FeastType::kInt32, "0"},
                   {"cardholder_age", api::FeastType::kInt32, "40"},
                   {"account_age_days", api::FeastType::kInt32, "365"},
                   {"previous_chargebacks", api::FeastType::kInt32, "0"}};
  card.ttl = 1h;
  card.redis_address = redis;
  api::FeatureViewConfig merchant;
  merchant.name = "merchant_features";
  merchant.project = "fraud";
  merchant.entities = {{"merchant", "merchant_id", api::FeastType::kInt64}};
  merchant.features = {{"merchant_category", api::FeastType::kInt32, "5"}};
  merchant.redis_address = redis;
  return {card, merchant};
}

// One transaction: the entity keys and the nine inputs the request carries itself.
std::string EnrichedRequest() {
  auto col = [](const std::string& name, const std::string& type, json data) {
    return json{{"name", name}, {"datatype", type}, {"shape", {1}}, {"data", std::move(data)}};
  };
  return json{{"inputs",
               {col("card_id", "BYTES", {"c-1"}), col("merchant_id", "INT64", {42}),
                col("amount", "FP32", {204.79}), col("transaction_hour", "INT32", {18}),
                col("foreign_transaction", "FP32", {0}), col("location_mismatch", "FP64", {0}),
                col("device_trust_score", "FP32", {0.73}),
                col("distance_from_home_km", "FP32", {12.4}), col("card_present", "BOOL", {true})}}}
      .dump();
}

// A process started by the environment, with where it listens.
struct Proc {
  std::unique_ptr<Subprocess> process;
  std::string address;
  int port = 0;        // traffic (server, router) or /metrics (operator)
  int admin_port = 0;  // router only
};

// Everything above, started once for the test binary.
class Environment {
 public:
  static Environment& Get() {
    if (instance_ == nullptr) instance_ = new Environment();
    return *instance_;
  }
  // Stops the load and every process, if the environment was built; after the last test.
  static void Destroy() {
    delete instance_;
    instance_ = nullptr;
  }
  ~Environment() {
    stop_ = true;
    if (load_.joinable()) load_.join();
    // The operator first, so it writes nothing more; Subprocess::Stop sends SIGTERM and waits.
    for (Proc* p : {&operator_, &router_}) {
      if (p->process) (void)p->process->Stop(30s);
    }
    for (Proc& p : servers_) (void)p.process->Stop(30s);
    if (prometheus_) (void)prometheus_->Stop(30s);
    kubelet_.reset();
    redis_.reset();
    if (error_.empty() && ::testing::UnitTest::GetInstance()->Passed()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  const std::string& error() const { return error_; }
  const std::string& prometheus_url() const { return prometheus_url_; }
  kube::Client& client() { return *client_; }
  std::string canary() const { return canary_; }
  std::string stable() const { return stable_; }
  // The /metrics pages, by the component that serves them.
  std::map<std::string, std::string> MetricsUrls() const {
    return {{"sluice-server",
             "http://" + servers_[0].address + ":" + std::to_string(servers_[0].port) + "/metrics"},
            {"sluice-router (admin port)",
             "http://127.0.0.1:" + std::to_string(router_.admin_port) + "/metrics"},
            {"sluice-operator", "http://127.0.0.1:" + std::to_string(operator_.port) + "/metrics"}};
  }
  std::string Logs() const {
    std::string out;
    for (const auto& [name, path] : logs_) out += "--- " + name + "\n" + TailFile(path, 25) + "\n";
    return out;
  }
  int requests_sent() const { return sent_.load(); }
  int requests_ok() const { return ok_.load(); }

 private:
  Environment() {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-monitoring-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ + "/prometheus");
    error_ = Start();
  }

  // Returns "" or why the environment could not be built.
  std::string Start() {
    auto& api = testing::SharedApiServer();
    kubeconfig_ = api.kubeconfig_path();
    auto config = kube::Config::FromKubeconfig(kubeconfig_);
    if (!config.ok()) return config.status().ToString();
    auto client = kube::Client::Create(*config);
    if (!client.ok()) return client.status().ToString();
    client_ = std::move(client).value();
    if (Status s = controllers::it::InstallCrds(*client_, kSourceDir + "/crds"); !s.ok()) {
      return s.ToString();
    }
    if (Status s = controllers::it::CreateNamespace(*client_, kNs); !s.ok()) return s.ToString();
    kubelet_ = std::make_unique<FakeKubelet>(*client_, kNs);
    kubelet_->set_enabled(true);

    testing::RedisServerOptions ro;
    ro.log_path = dir_ + "/redis.log";
    auto redis = testing::RedisServer::Start(ro);
    if (!redis.ok()) return redis.status().ToString();
    redis_ = std::move(redis).value();
    for (int i = 0; i < 2; ++i) {
      std::string why = StartServer(i);
      if (!why.empty()) return why;
    }
    if (std::string why = StartPrometheus(); !why.empty()) return why;
    if (std::string why = StartOperator(); !why.empty()) return why;

    // Version 1: the stable revision, served by server 0, behind the router.
    json md = {{"apiVersion", "sluice.dev/v1alpha1"},
               {"kind", "ModelDeployment"},
               {"metadata", {{"name", kMd}, {"namespace", kNs}}},
               {"spec",
                {{"model", {{"uri", "file:///models/fraud/1/fraud.json"}, {"version", "1"}}},
                 {"replicas", 1},
                 {"rollout",
                  {{"strategy", "Canary"},
                   {"canary",
                    {{"steps", json::array({{{"weight", 50}, {"pause", "30m"}},
                                            {{"weight", 100}, {"pause", "0s"}}})},
                     {"analysis",
                      {{"interval", "5s"},
                       {"failureThreshold", 5},
                       {"minRequests", 5},
                       {"noDataPolicy", "Pause"},
                       {"metrics", json::array({{{"name", "error-rate"},
                                                 {"builtin", "errorRate"},
                                                 {"thresholdRange", {{"max", 0.5}}}},
                                                {{"name", "latency-p99"},
                                                 {"builtin", "latencyP99"},
                                                 {"thresholdRange", {{"max", 5}}}}})}}}}}}}}}};
    auto created = client_->Create(kMdGvr, kNs, md);
    if (!created.ok()) return "creating the ModelDeployment: " + created.status().ToString();
    if (!Eventually([&] { return !(stable_ = StatusField("stableRevision")).empty(); }, 120s)) {
      return "no stable revision: " + StatusJson();
    }
    if (std::string why = CreateSlice(stable_, servers_[0]); !why.empty()) return why;
    if (std::string why = StartRouter(); !why.empty()) return why;
    server_revision_[0] = stable_;
    WriteTargets();
    load_ = std::thread([this] { Load(); });
    if (!Eventually([&] { return ok_.load() >= 10; }, 60s)) {
      return "no answers through the router (" + std::to_string(sent_.load()) + " sent)";
    }

    // Version 2: a canary on server 1, analysed through Prometheus at 50%.
    auto patched = client_->Patch(kMdGvr, kNs, kMd, kube::PatchType::kMerge,
                                  R"({"spec":{"model":{"uri":"file:///models/fraud/2/fraud.json",)"
                                  R"("version":"2"}}})");
    if (!patched.ok()) return "patching the ModelDeployment: " + patched.status().ToString();
    if (!Eventually([&] { return !(canary_ = StatusField("canaryRevision")).empty(); }, 120s)) {
      return "no canary revision: " + StatusJson();
    }
    if (std::string why = CreateSlice(canary_, servers_[1]); !why.empty()) return why;
    server_revision_[1] = canary_;
    WriteTargets();
    // A verdict on measured traffic: the analysis read the router's series from Prometheus.
    if (!Eventually(
            [&] {
              auto md = client_->Get(kMdGvr, kNs, kMd);
              if (!md.ok()) return false;
              const json a =
                  (*md).value("status", json::object()).value("lastAnalysis", json::object());
              return a.value("verdict", "") == "Pass";
            },
            180s, 500ms)) {
      return "the canary analysis never passed: " + StatusJson();
    }
    return "";
  }

  std::string StatusField(const std::string& field) {
    auto md = client_->Get(kMdGvr, kNs, kMd);
    if (!md.ok()) return "";
    return (*md).value("status", json::object()).value(field, "");
  }
  std::string StatusJson() {
    auto md = client_->Get(kMdGvr, kNs, kMd);
    return md.ok() ? (*md).value("status", json::object()).dump() : md.status().ToString();
  }

  std::string StartServer(int i) {
    Proc p;
    p.address = "10.244.1." + std::to_string(i + 1);
    const std::string port_file = dir_ + "/server-" + std::to_string(i) + ".port";
    testing::SpawnOptions o;
    o.argv = {SLUICE_SERVER_BIN,
              "--http-address=" + p.address,
              "--http-port=0",
              "--port-file=" + port_file,
              "--model-uri=" + kModelDir + "/fraud.json",
              "--model-name=fraud",
              "--model-version=" + std::to_string(i + 1),
              "--io-threads=1",
              "--drain-grace-ms=0",
              "--feature-views=" + api::FormatFeatureViews(Views(redis_->address())),
              "--feature-budget=1s"};
    o.log_path = dir_ + "/server-" + std::to_string(i) + ".log";
    logs_.emplace_back("sluice-server " + std::to_string(i), o.log_path);
    auto spawned = Subprocess::Spawn(o);
    if (!spawned.ok()) return spawned.status().ToString();
    p.process = std::move(spawned).value();
    const bool ready = Eventually(
        [&] {
          if (p.port == 0) p.port = ReadPort(port_file);
          return p.port > 0 &&
                 Http("http://" + p.address + ":" + std::to_string(p.port) + "/v2/health/ready")
                         .status == 200;
        },
        120s, 100ms);
    if (!ready) return "sluice-server did not get ready: " + TailFile(o.log_path);
    servers_.push_back(std::move(p));
    return "";
  }

  std::string StartPrometheus() {
    const std::string d = dir_ + "/prometheus";
    std::ofstream(d + "/targets.json") << "[]\n";
    std::ofstream(d + "/operator.json") << "[]\n";
    // The labels the chart's PodMonitor gives (namespace, pod, modeldeployment; revision on
    // server pods), written as file_sd targets: Debian's prometheus has no Kubernetes discovery.
    // The operator is scraped with honor_labels, as the chart's ServiceMonitor does.
    std::ofstream(d + "/prometheus.yml") << "global:\n  scrape_interval: 1s\n"
                                            "  evaluation_interval: 1s\n"
                                            "scrape_configs:\n"
                                            "- job_name: sluice-workloads\n"
                                            "  file_sd_configs:\n"
                                            "  - files: ['"
                                         << d << "/targets.json']\n    refresh_interval: 1s\n"
                                         << "- job_name: sluice-operator\n"
                                            "  honor_labels: true\n"
                                            "  file_sd_configs:\n"
                                            "  - files: ['"
                                         << d << "/operator.json']\n    refresh_interval: 1s\n";
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto port = testing::PickFreePort();
      if (!port.ok()) return port.status().ToString();
      testing::SpawnOptions o;
      o.argv = {"prometheus", "--config.file=" + d + "/prometheus.yml",
                "--storage.tsdb.path=" + d + "/data",
                "--web.listen-address=127.0.0.1:" + std::to_string(*port), "--log.level=warn"};
      o.log_path = d + "/prometheus.log";
      auto spawned = Subprocess::Spawn(o);
      if (!spawned.ok()) return spawned.status().ToString();
      prometheus_url_ = "http://127.0.0.1:" + std::to_string(*port);
      const bool ready = Eventually(
          [&] { return (*spawned)->Running() && Http(prometheus_url_ + "/-/ready").status == 200; },
          60s, 100ms);
      if (ready) {
        prometheus_ = std::move(spawned).value();
        logs_.emplace_back("prometheus", o.log_path);
        return "";
      }
    }
    return "prometheus did not start: " + TailFile(d + "/prometheus.log");
  }

  std::string StartOperator() {
    const std::string ports = dir_ + "/operator-ports.json";
    testing::SpawnOptions o;
    o.argv = {SLUICE_OPERATOR_BIN,
              "--kubeconfig=" + kubeconfig_,
              "--namespaces=" + std::string(kNs),
              "--leader-elect=off",
              "--metrics-addr=127.0.0.1:0",
              "--health-addr=127.0.0.1:0",
              "--ports-file=" + ports,
              "--log-format=text",
              "--server-image=sluice:monitoring",
              "--analysis-provider=prometheus",
              "--prometheus-url=" + prometheus_url_};
    o.log_path = dir_ + "/operator.log";
    logs_.emplace_back("sluice-operator", o.log_path);
    auto spawned = Subprocess::Spawn(o);
    if (!spawned.ok()) return spawned.status().ToString();
    operator_.process = std::move(spawned).value();
    operator_.address = "127.0.0.1";
    const bool ready = Eventually(
        [&] {
          if (operator_.port == 0) {
            std::ifstream in(ports);
            const json j = json::parse(in, nullptr, false);
            if (j.is_object()) operator_.port = j.value("metrics", 0);
          }
          return operator_.port > 0 && operator_.process->Running();
        },
        60s, 100ms);
    if (!ready) return "sluice-operator did not start: " + TailFile(o.log_path);
    return "";
  }

  std::string CreateSlice(const std::string& revision, const Proc& server) {
    json slice = {
        {"apiVersion", "discovery.k8s.io/v1"},
        {"kind", "EndpointSlice"},
        {"metadata",
         {{"name", revision + "-monitoring"},
          {"namespace", kNs},
          {"labels",
           {{"kubernetes.io/service-name", revision},
            {"endpointslice.kubernetes.io/managed-by", "monitoring-tests"}}}}},
        {"addressType", "IPv4"},
        {"ports", {{{"name", "http"}, {"port", server.port}, {"protocol", "TCP"}}}},
        {"endpoints", {{{"addresses", {server.address}}, {"conditions", {{"ready", true}}}}}}};
    auto created = client_->Create(kSlicesGvr, kNs, slice);
    return created.ok() ? "" : "EndpointSlice " + revision + ": " + created.status().ToString();
  }

  std::string StartRouter() {
    const std::string port_file = dir_ + "/router.port";
    const std::string admin_file = dir_ + "/router.admin-port";
    testing::SpawnOptions o;
    o.argv = {SLUICE_ROUTER_BIN,
              "--kubeconfig=" + kubeconfig_,
              "--namespace=" + std::string(kNs),
              "--model-deployment=" + std::string(kMd),
              "--http-address=127.0.0.1",
              "--http-port=0",
              "--port-file=" + port_file,
              "--admin-port=0",
              "--admin-port-file=" + admin_file,
              "--io-threads=1",
              "--drain-grace-ms=0"};
    o.log_path = dir_ + "/router.log";
    logs_.emplace_back("sluice-router", o.log_path);
    auto spawned = Subprocess::Spawn(o);
    if (!spawned.ok()) return spawned.status().ToString();
    router_.process = std::move(spawned).value();
    router_.address = "127.0.0.1";
    const bool ready = Eventually(
        [&] {
          if (router_.port == 0) router_.port = ReadPort(port_file);
          if (router_.admin_port == 0) router_.admin_port = ReadPort(admin_file);
          return router_.port > 0 && router_.admin_port > 0 &&
                 Http("http://127.0.0.1:" + std::to_string(router_.admin_port) + "/readyz")
                         .status == 200;
        },
        60s, 100ms);
    if (!ready) return "sluice-router did not get ready: " + TailFile(o.log_path);
    return "";
  }

  // Rewrites the file_sd targets (through a rename: Prometheus never reads half a file).
  void WriteTargets() {
    json workloads = json::array();
    workloads.push_back({{"targets", {"127.0.0.1:" + std::to_string(router_.admin_port)}},
                         {"labels",
                          {{"namespace", kNs},
                           {"pod", "fraud-router-0"},
                           {"modeldeployment", kMd},
                           {"component", "router"}}}});
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (server_revision_[i].empty()) continue;
      workloads.push_back(
          {{"targets", {servers_[i].address + ":" + std::to_string(servers_[i].port)}},
           {"labels",
            {{"namespace", kNs},
             {"pod", server_revision_[i] + "-0"},
             {"modeldeployment", kMd},
             {"revision", server_revision_[i]},
             {"component", "server"}}}});
    }
    const json op =
        json::array({{{"targets", {"127.0.0.1:" + std::to_string(operator_.port)}},
                      {"labels", {{"namespace", "sluice-system"}, {"pod", "sluice-operator-0"}}}}});
    const std::string d = dir_ + "/prometheus/";
    for (const auto& [name, content] :
         {std::pair{"targets.json", workloads}, {"operator.json", op}}) {
      std::ofstream(d + name + ".tmp") << content.dump() << "\n";
      std::filesystem::rename(d + name + ".tmp", d + name);
    }
  }

  // Steady traffic through the router until the process exits: about 25 requests a second.
  void Load() {
    const std::string url =
        "http://127.0.0.1:" + std::to_string(router_.port) + "/v2/models/fraud/infer";
    const std::string body = EnrichedRequest();
    auto next = std::chrono::steady_clock::now();
    while (!stop_.load()) {
      ++sent_;
      if (Http(url, body, 5s).status == 200) ++ok_;
      next += 40ms;
      std::this_thread::sleep_until(next);  // pacing an open-loop load, not waiting on a state
    }
  }

  static inline Environment* instance_ = nullptr;
  std::string dir_;
  std::string error_;
  std::string kubeconfig_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<FakeKubelet> kubelet_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::vector<Proc> servers_;
  std::string server_revision_[2];
  std::unique_ptr<Subprocess> prometheus_;
  std::string prometheus_url_;
  Proc operator_;
  Proc router_;
  std::string stable_, canary_;
  std::vector<std::pair<std::string, std::string>> logs_;  // name, log file
  std::thread load_;
  std::atomic<bool> stop_{false};
  std::atomic<int> sent_{0}, ok_{0};
};

class MonitoringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Environment& env = Environment::Get();
    ASSERT_EQ(env.error(), "") << env.Logs();
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << Environment::Get().Logs();
  }

  // An instant query: the result vector, or why there is none.
  static Result<json> Query(const std::string& promql) {
    const HttpAnswer a =
        Http(Environment::Get().prometheus_url() + "/api/v1/query?query=" + UrlEncode(promql));
    if (a.status != 200) return Unavailable("HTTP " + std::to_string(a.status) + ": " + a.body);
    const json j = json::parse(a.body, nullptr, false);
    if (!j.is_object() || j.value("status", "") != "success") return Unavailable(a.body);
    return j["data"].value("result", json::array());
  }

  // At least one sample that is a number (histogram_quantile over an idle window gives NaN).
  static bool HasNumber(const json& result) {
    for (const json& series : result) {
      const std::string v = series["value"][1].get<std::string>();
      if (v != "NaN") return true;
    }
    return false;
  }
};

TEST_F(MonitoringTest, EveryMetricsEndpointPassesPromtoolCheckMetrics) {
  for (const auto& [name, url] : Environment::Get().MetricsUrls()) {
    const HttpAnswer page = Http(url);
    ASSERT_EQ(page.status, 200) << name << " " << url;
    // Traffic went through every part, so the labelled series and histograms are there to lint.
    EXPECT_NE(page.body.find("_bucket{"), std::string::npos) << name << ":\n" << page.body;
    const std::string file =
        ::testing::TempDir() + "/monitoring-page-" + std::to_string(::getpid());
    std::ofstream(file) << page.body;
    auto checked =
        testing::RunCommand({"sh", "-c", "promtool check metrics < '" + file + "'"}, 60s);
    ASSERT_TRUE(checked.ok()) << checked.status();
    EXPECT_TRUE(checked->status.success())
        << name << " (" << url << "): promtool check metrics says:\n"
        << checked->output;
    std::remove(file.c_str());
  }
  // The per-ModelDeployment series the dashboard and the alerts read come from the operator.
  const std::string op = Http(Environment::Get().MetricsUrls().at("sluice-operator")).body;
  for (const std::string series :
       {std::string("sluice_operator_modeldeployment_phase{namespace=\"monitoring\","
                    "modeldeployment=\"fraud\",phase=\""),
        "sluice_operator_modeldeployment_traffic_weight{namespace=\"monitoring\",modeldeployment="
        "\"fraud\",revision=\"" +
            Environment::Get().canary() + "\"} ",
        std::string("sluice_operator_modeldeployment_analysis_verdict{namespace=\"monitoring\","
                    "modeldeployment=\"fraud\",verdict=\"Pass\"} 1")}) {
    EXPECT_NE(op.find(series), std::string::npos) << series << "\n" << op;
  }
}

TEST_F(MonitoringTest, EveryDashboardQueryReturnsData) {
  std::ifstream in(kSourceDir + "/charts/sluice/dashboards/sluice.json");
  const json dashboard = json::parse(in, nullptr, false);
  ASSERT_TRUE(dashboard.is_object()) << "charts/sluice/dashboards/sluice.json does not parse";

  // Every target of every panel (rows hold theirs in .panels when collapsed).
  struct Expr {
    std::string panel, promql;
  };
  std::vector<Expr> exprs;
  std::function<void(const json&)> walk = [&](const json& panels) {
    for (const json& p : panels) {
      for (const json& t : p.value("targets", json::array())) {
        std::string q = t.value("expr", "");
        for (const auto& [var, value] :
             std::vector<std::pair<std::string, std::string>>{{"$__rate_interval", kRateInterval},
                                                              {"$namespace", kNs},
                                                              {"$modeldeployment", kMd}}) {
          for (size_t at = q.find(var); at != std::string::npos; at = q.find(var, at)) {
            q.replace(at, var.size(), value);
          }
        }
        EXPECT_EQ(q.find('$'), std::string::npos) << "a variable left in: " << q;
        exprs.push_back({p.value("title", ""), q});
      }
      if (p.contains("panels")) walk(p["panels"]);
    }
  };
  walk(dashboard.value("panels", json::array()));
  ASSERT_GE(exprs.size(), 15u);

  // Every query answers with a number, waiting while Prometheus catches up.
  std::map<std::string, std::string> missing;  // promql -> last answer
  const bool all = Eventually(
      [&] {
        missing.clear();
        for (const Expr& e : exprs) {
          auto r = Query(e.promql);
          if (!r.ok() || !HasNumber(*r)) {
            missing[e.panel + ": " + e.promql] = r.ok() ? r->dump() : r.status().ToString();
          }
        }
        return missing.empty();
      },
      180s, 1s);
  std::string why;
  for (const auto& [q, answer] : missing) why += "\n  " + q + "\n    -> " + answer;
  EXPECT_TRUE(all) << missing.size() << " of " << exprs.size()
                   << " dashboard queries return no data:" << why;

  // The panels about a canary show both revisions.
  auto split =
      Query("max by (revision) (sluice_operator_modeldeployment_traffic_weight{namespace=\"" +
            std::string(kNs) + "\", modeldeployment=\"" + kMd + "\"})");
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->size(), 2u) << split->dump();

  // The variables: label_values(SELECTOR, LABEL) offers this ModelDeployment.
  const std::regex label_values(R"(label_values\((.*),\s*(\w+)\))");
  for (const json& v : dashboard["templating"].value("list", json::array())) {
    if (v.value("type", "") != "query") continue;
    std::string q = v["query"].is_object() ? v["query"].value("query", "") : v.value("query", "");
    for (size_t at = q.find("$namespace"); at != std::string::npos; at = q.find("$namespace")) {
      q.replace(at, 10, kNs);
    }
    std::smatch m;
    ASSERT_TRUE(std::regex_match(q, m, label_values)) << q;
    const HttpAnswer a = Http(Environment::Get().prometheus_url() + "/api/v1/label/" + m[2].str() +
                              "/values?match[]=" + UrlEncode(m[1].str()));
    ASSERT_EQ(a.status, 200) << a.body;
    const json values = json::parse(a.body)["data"];
    const std::string want = v.value("name", "") == "namespace" ? kNs : kMd;
    EXPECT_NE(std::find(values.begin(), values.end(), want), values.end())
        << v.value("name", "") << ": " << values.dump();
  }
  std::cerr << "dashboard: " << exprs.size() << " queries answered; "
            << Environment::Get().requests_ok() << " of " << Environment::Get().requests_sent()
            << " requests through the router answered 200\n";
}

}  // namespace
}  // namespace sluice::monitoring

// The pods' addresses (10.244.1.x) are local in a private network namespace, entered while the
// process has one thread.
int main(int argc, char** argv) {
  auto cidr = sluice::procnode::ParseCidr("10.244.0.0/16");
  sluice::Status s = cidr.ok() ? sluice::procnode::EnterPrivateNetwork(*cidr) : cidr.status();
  if (!s.ok()) {
    std::fprintf(stderr, "cannot set up the private network: %s\n", s.ToString().c_str());
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  struct Teardown : ::testing::Environment {
    void TearDown() override { sluice::monitoring::Environment::Destroy(); }
  };
  ::testing::AddGlobalTestEnvironment(new Teardown);
  return RUN_ALL_TESTS();
}
