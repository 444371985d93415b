// The self-protecting canary end to end, with real processes: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler; sluice-procnode running every pod (sluice-server
// revisions, sluice-router) as a local process on its own pod IP; sluice-operator; a real
// Prometheus scraping the router pods (file_sd; see SetUpTestSuite); and a steady load through
// the router's pod IP.
//
// Measured (printed as one "CANARY ..." line each and written to the JSON report):
//   a) a healthy v2 promoted 10 -> 50 -> 100: failed client requests (must be 0);
//   b) a faulty v2 (20% of /infer answered 500) rolled back, analysed through Prometheus (on the
//      router's own metrics it runs on the real node: e2e/scenario): seconds from v2's first
//      answer to 100% on v1 in status.traffic and to the last answer the router took from v2,
//      and failed requests (must be 0: the router retries v2's failures on v1).

#include <curl/curl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "e2e/canary/load_driver.h"
#include "tests/dataplane/grpc/grpc_test_client.h"
#include "tests/e2e/support/local_cluster.h"
#include "tests/support/mlflow_server.h"
#include "tests/support/s3_server.h"
#include "tests/integration/controllers/operator_env.h"
#include "e2e/procnode/child.h"

namespace sluice::testing {
namespace {

using canary::LoadDriver;
using canary::LoadOptions;
using canary::SteadyTime;
using controllers::it::kMdGvr;
using controllers::it::Phase;
using controllers::it::TrafficOf;
using kube::Json;
using namespace std::chrono_literals;
namespace res = kube::resources;

const std::string kSource = SLUICE_SOURCE_DIR;
// Requests per second through the router: at 10% that is ~10/s on the canary, 50 per 5 s
// analysis interval, well above the default minRequests (10).
constexpr double kRate = 100;
// The issue's target: a bad canary off the traffic within 15 s of the first bad answer.
constexpr double kRollbackTargetSeconds = 15;

double Seconds(SteadyTime::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// GET `url`; the body of a 200 answer.
Result<std::string> HttpGetBody(const std::string& url) {
  CURL* curl = curl_easy_init();
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) return Unavailable(url + ": " + curl_easy_strerror(rc));
  if (code != 200) return Unavailable(url + ": HTTP " + std::to_string(code) + ": " + body);
  return body;
}

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

class CanaryE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    report_ = new Json{{"rate_rps", kRate}, {"scenarios", Json::object()}};
    LocalClusterOptions options;
    options.procnode_bin = SLUICE_PROCNODE_BIN;
    options.pod_bin_dirs = {std::filesystem::path(SLUICE_SERVER_BIN).parent_path().string(),
                            std::filesystem::path(SLUICE_ROUTER_BIN).parent_path().string()};
    auto started = LocalCluster::Start(options);
    if (!started.ok()) {
      start_error_ = new std::string(started.status().ToString());
      return;
    }
    cluster_ = std::move(started).value().release();
    if (std::string error = StartRest(); !error.empty()) start_error_ = new std::string(error);
  }

  // CRDs and Prometheus; each test starts its own operator (the analysis provider is a flag).
  static std::string StartRest() {
    Status crds = controllers::it::InstallCrds(cluster_->client(), kSource + "/crds");
    if (!crds.ok()) return crds.ToString();

    const std::string dir = cluster_->work_dir() + "/prometheus";
    std::filesystem::create_directories(dir + "/data");
    // Debian's prometheus is built without kubernetes_sd_configs, so the router pods reach it
    // through file_sd: the test writes each router pod it finds (pod IP, port admin) with the
    // labels the Kubernetes discovery would have given, and Prometheus rereads the file.
    targets_file_ = new std::string(dir + "/routers.json");
    std::ofstream(*targets_file_) << "[]\n";
    std::ofstream(dir + "/prometheus.yml") << fmt::format(R"(global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
- job_name: sluice-router
  file_sd_configs:
  - files: [{}]
    refresh_interval: 1s
)",
                                                          *targets_file_);
    for (int attempt = 0; attempt < 3 && !prometheus_; ++attempt) {
      auto port = PickFreePort();
      if (!port.ok()) return port.status().ToString();
      SpawnOptions spawn;
      spawn.argv = {"prometheus",
                    "--config.file=" + dir + "/prometheus.yml",
                    "--storage.tsdb.path=" + dir + "/data",
                    "--web.listen-address=127.0.0.1:" + std::to_string(*port),
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn"};
      spawn.log_path = cluster_->work_dir() + "/logs/prometheus.log";
      auto p = Subprocess::Spawn(spawn);
      if (!p.ok()) return p.status().ToString();
      const bool up = WaitFor(
          [&] {
            auto r = procnode::HttpGet("127.0.0.1", *port, "/-/ready", 1s);
            return (r.ok() && *r == 200) || !(*p)->Running();
          },
          60s, 200ms);
      if (up && (*p)->Running()) {
        prometheus_ = std::move(*p).release();
        prometheus_port_ = *port;
      }
    }
    if (!prometheus_) {
      return "prometheus did not start: " + TailFile(cluster_->work_dir() + "/logs/prometheus.log");
    }

    return "";
  }

  static void TearDownTestSuite() {
    if (report_) {
      std::filesystem::create_directories(
          std::filesystem::path(SLUICE_CANARY_REPORT).parent_path());
      std::ofstream(SLUICE_CANARY_REPORT) << report_->dump(2) << "\n";
      std::cout << "canary report: " << SLUICE_CANARY_REPORT << "\n";
    }
    if (prometheus_) (void)prometheus_->Stop(10s);
    delete prometheus_;
    delete cluster_;
    prometheus_ = nullptr;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    ASSERT_NE(cluster_, nullptr);
    static int counter = 0;
    ns_ = "canary-" + std::to_string(++counter);
    ASSERT_TRUE(controllers::it::CreateNamespace(client(), ns_).ok());
  }

  // sluice-operator with `flags` added to the defaults; its log is logs/sluice-operator-<ns>.log.
  void StartOperator(const std::vector<std::string>& flags) {
    SpawnOptions op;
    op.argv = {SLUICE_OPERATOR_BIN,         "--kubeconfig=" + cluster_->kubeconfig_path(),
               "--leader-elect=off",        "--metrics-addr=127.0.0.1:0",
               "--health-addr=127.0.0.1:0", "--log-format=text",
               "--server-image=sluice:e2e"};
    op.argv.insert(op.argv.end(), flags.begin(), flags.end());
    op.log_path = operator_log();
    auto started = Subprocess::Spawn(op);
    ASSERT_TRUE(started.ok()) << started.status();
    operator_ = std::move(*started);
  }
  // Waits stop early when the operator has died; the test then fails with its exit and log.
  bool OperatorDied() { return operator_ && !operator_->Running(); }
  std::string OperatorDeath() {
    return "sluice-operator exited (" +
           (operator_->exit_status() ? operator_->exit_status()->ToString() : "?") + "):\n" +
           TailFile(operator_log(), 30);
  }

  std::string operator_log() const {
    return cluster_->work_dir() + "/logs/sluice-operator-" + ns_ + ".log";
  }
  std::string prometheus_url() const {
    return "http://127.0.0.1:" + std::to_string(prometheus_port_);
  }

  void TearDown() override {
    if (extra_load_) extra_load_->Stop();
    if (load_) load_->Stop();
    if (HasFailure() && cluster_) {
      std::cerr << "---- logs\n"
                << cluster_->LogTails(40) << "\n--- operator\n"
                << TailFile(operator_log(), 60) << "\n";
      auto md = client().Get(kMdGvr, ns_, "fraud");
      if (md.ok()) std::cerr << "--- md status\n" << (*md)["status"].dump(2) << "\n";
      const std::string pods = cluster_->procnode_work_dir() + "/pods";
      for (const auto& e : std::filesystem::recursive_directory_iterator(pods)) {
        if (e.path().extension() == ".log" &&
            e.path().string().find(ns_ + "_") != std::string::npos) {
          std::cerr << "--- " << e.path() << "\n" << TailFile(e.path(), 25) << "\n";
        }
      }
    }
    if (operator_) (void)operator_->Stop(10s);
    // Deleting the namespace drains every pod of the scenario through the proc node.
    (void)client().Delete(res::kNamespaces, "", ns_);
  }

  kube::Client& client() { return cluster_->client(); }

  // The v1 ModelDeployment: one server replica, the default analysis, canary steps as given.
  Json ModelDeployment(const Json& steps) const {
    Json canary = Json::object();
    if (!steps.is_null()) canary["steps"] = steps;
    return {{"apiVersion", "sluice.dev/v1alpha1"},
            {"kind", "ModelDeployment"},
            {"metadata", {{"name", "fraud"}, {"namespace", ns_}}},
            {"spec",
             {{"model",
               {{"uri", "file://" + kSource + "/bench/fraud/model/fraud.json"},
                {"format", "xgboost-json"},
                {"version", "1"}}},
              {"replicas", 1},
              {"rollout", {{"strategy", "Canary"}, {"canary", canary}}}}}};
  }

  Json GetMd() {
    auto md = client().Get(kMdGvr, ns_, "fraud");
    return md.ok() ? *md : Json();
  }

  // Creates the MD, waits until v1 is Healthy with all traffic and the router pod is Ready, and
  // starts the load through the router's pod IP.
  void DeployV1AndStartLoad(const Json& steps, const Json& spec_patch = nullptr) {
    Json md = ModelDeployment(steps);
    if (!spec_patch.is_null()) md["spec"].merge_patch(spec_patch);
    auto created = client().Create(kMdGvr, ns_, md);
    ASSERT_TRUE(created.ok()) << created.status();
    std::string& router_ip = router_ip_;
    router_ip.clear();
    ASSERT_TRUE(WaitFor(
        [&] {
          if (OperatorDied()) return true;
          const Json md = GetMd();
          if (Phase(md) != "Healthy" || TrafficOf(md).size() != 1) return false;
          kube::ListOptions options;
          options.label_selector =
              "app.kubernetes.io/component=router,sluice.dev/modeldeployment=fraud";
          auto pods = client().List(res::kPods, ns_, options);
          if (!pods.ok()) return false;
          for (const auto& p : (*pods)["items"]) {
            if (p["metadata"].contains("deletionTimestamp")) continue;
            for (const auto& c : p["status"].value("conditions", Json::array())) {
              if (c.value("type", "") == "Ready" && c.value("status", "") == "True") {
                router_ip = p["status"].value("podIP", "");
              }
            }
          }
          return !router_ip.empty();
        },
        120s, 250ms))
        << "v1 never became Healthy behind a Ready router; status: " << GetMd()["status"].dump();
    ASSERT_FALSE(OperatorDied()) << OperatorDeath();
    stable_ = GetMd()["status"].value("stableRevision", "");
    // Written to a temporary file and renamed, so Prometheus never reads half a file.
    const Json targets = Json::array(
        // The router's admin port, the one the operator's pod template names "admin".
        {{{"targets", Json::array({router_ip + ":9090"})},
          {"labels", {{"namespace", ns_}, {"modeldeployment", "fraud"}, {"pod_ip", router_ip}}}}});
    std::ofstream(*targets_file_ + ".tmp") << targets.dump() << "\n";
    std::filesystem::rename(*targets_file_ + ".tmp", *targets_file_);
    load_options_.url = "http://" + router_ip + ":8080/v2/models/fraud/infer";
    load_options_.body = ReadFile(kSource + "/bench/fraud/model/sample_request.json");
    load_options_.rate = rate_;
    load_ = std::make_unique<LoadDriver>(load_options_);
    load_->Start();
    // The router answers from v1 before anything changes.
    ASSERT_TRUE(WaitFor(
        [&] {
          auto s = load_->Summarize(load_->started(), std::chrono::steady_clock::now());
          return s.by_version["1"] >= std::min<int64_t>(50, static_cast<int64_t>(rate_ * 3));
        },
        30s))
        << "no answers from v1 through the router";
    const auto s = load_->Summarize(load_->started(), std::chrono::steady_clock::now());
    ASSERT_EQ(s.failed, 0) << "failures before the rollout began";
  }

  // Status changes of the MD while waiting for `done`, with the time each was first seen.
  struct Observed {
    std::vector<std::pair<SteadyTime, std::map<std::string, int>>> traffic;
    std::vector<std::pair<SteadyTime, std::string>> phases;
    Json last;
  };
  bool Watch(Observed& seen, const std::function<bool(const Json&)>& done,
             std::chrono::seconds timeout) {
    return WaitFor(
        [&] {
          if (OperatorDied()) return true;
          Json md = GetMd();
          if (md.is_null()) return false;
          const auto now = std::chrono::steady_clock::now();
          const auto traffic = TrafficOf(md);
          if (seen.traffic.empty() || seen.traffic.back().second != traffic) {
            seen.traffic.emplace_back(now, traffic);
          }
          if (seen.phases.empty() || seen.phases.back().second != Phase(md)) {
            seen.phases.emplace_back(now, Phase(md));
          }
          seen.last = md;
          return done(md);
        },
        timeout, 100ms);
  }

  // A measurement window, not a wait for a condition: the load keeps running meanwhile.
  static void KeepLoadFor(std::chrono::seconds window) { std::this_thread::sleep_for(window); }

  void PrintTimeline() {
    for (const auto& line : load_->Timeline()) std::cout << "  load " << line << "\n";
  }

  // Patches in v2 with `runtime_env`, runs the faulty-canary scenario and records it as `name`.
  void RunFaultyCanary(const std::string& name, const Json& analysis) {
    Json patch = {
        {"spec",
         {{"model", {{"version", "2"}}},
          {"runtime",
           {{"env", Json::array({{{"name", "SLUICE_FAULT_ERROR_PERCENT"}, {"value", "20"}}})}}}}}};
    if (!analysis.is_null()) patch["spec"]["rollout"]["canary"]["analysis"] = analysis;
    const SteadyTime patched = std::chrono::steady_clock::now();
    auto r = client().Patch(kMdGvr, ns_, "fraud", kube::PatchType::kMerge, patch.dump());
    ASSERT_TRUE(r.ok()) << r.status();

    Observed seen;
    std::string canary;
    const bool rolled_back = Watch(
        seen,
        [&](const Json& md) {
          if (canary.empty()) canary = md["status"].value("canaryRevision", "");
          return Phase(md) == "RolledBack" &&
                 TrafficOf(md) == std::map<std::string, int>{{stable_, 100}};
        },
        150s);
    // The load runs on for a fixed window: the router must not send anything more to v2.
    KeepLoadFor(5s);
    load_->Stop();
    PrintTimeline();
    ASSERT_FALSE(OperatorDied()) << OperatorDeath();
    ASSERT_TRUE(rolled_back) << "no rollback; last status: " << seen.last["status"].dump();

    // When the canary first got traffic, and when the status put it all back on v1.
    std::optional<SteadyTime> canary_weighted, back_on_stable;
    for (const auto& [t, traffic] : seen.traffic) {
      auto it = traffic.find(canary);
      if (!canary_weighted && it != traffic.end() && it->second > 0) canary_weighted = t;
      if (canary_weighted && !back_on_stable &&
          traffic == std::map<std::string, int>{{stable_, 100}}) {
        back_on_stable = t;
      }
    }
    ASSERT_TRUE(canary_weighted.has_value()) << "the canary never got a weight";
    ASSERT_TRUE(back_on_stable.has_value());

    const auto records = load_->Records();
    // The fault's onset is the canary's first answer: it fails 20 % from its first request, and
    // the router retries those on v1, so callers see v2's good answers and never its failures.
    std::optional<SteadyTime> first_bad, last_v2;
    int64_t failed = 0, total = 0, served_by_v2 = 0;
    for (const auto& rec : records) {
      if (rec.done < patched) continue;
      ++total;
      const bool v2 = rec.model_version == "2" || !rec.ok();  // only v2 fails in this run
      if (!rec.ok()) ++failed;
      if (v2) {
        if (!first_bad || rec.done < *first_bad) first_bad = rec.done;
        if (rec.ok()) ++served_by_v2;
        if (!last_v2 || rec.done > *last_v2) last_v2 = rec.done;
      }
    }
    ASSERT_TRUE(first_bad.has_value()) << "the canary never answered";
    const double to_status = Seconds(*back_on_stable - *first_bad);
    const double to_router = Seconds(*last_v2 - *first_bad);
    const double canary_lived = Seconds(*back_on_stable - *canary_weighted);
    std::cout << fmt::format(
        "CANARY {}: rollback_status_s={:.2f} rollback_router_s={:.2f} (from the first bad answer "
        "to 100% on v1 in status.traffic / to the router's last v2 answer) failed_requests={} "
        "of {} v2_ok={} canary_weighted_for_s={:.2f} target_s={}\n",
        name, to_status, to_router, failed, total, served_by_v2, canary_lived,
        kRollbackTargetSeconds);
    (*report_)["scenarios"][name] = {
        {"rollback_status_seconds", to_status},
        {"rollback_router_seconds", to_router},
        {"failed_requests", failed},
        {"requests", total},
        {"v2_successful_answers", served_by_v2},
        {"canary_weighted_seconds", canary_lived},
        {"target_seconds", kRollbackTargetSeconds},
        {"phase", Phase(seen.last)},
        {"last_analysis", seen.last["status"].value("lastAnalysis", Json())}};

    // A bad canary costs callers nothing: its failures are retried on v1 (retryOnStable).
    EXPECT_EQ(failed, 0);
    EXPECT_LE(to_status, kRollbackTargetSeconds);
    EXPECT_LE(to_router, kRollbackTargetSeconds + 1.0);
    // Nothing is answered by v2 once the rollback is in the status (plus the router's watch).
    EXPECT_LT(Seconds(*last_v2 - *back_on_stable), 1.0);
  }

  static LocalCluster* cluster_;
  static Subprocess* prometheus_;
  static int prometheus_port_;
  static std::string* start_error_;
  static std::string* targets_file_;
  static Json* report_;
  std::string ns_;
  std::string stable_;
  std::string router_ip_;  // the Ready router pod's IP, once DeployV1AndStartLoad found it
  double rate_ = kRate;
  LoadOptions load_options_;
  std::unique_ptr<LoadDriver> load_;
  std::unique_ptr<LoadDriver> extra_load_;
  std::unique_ptr<Subprocess> operator_;
};

LocalCluster* CanaryE2E::cluster_ = nullptr;
Subprocess* CanaryE2E::prometheus_ = nullptr;
int CanaryE2E::prometheus_port_ = 0;
std::string* CanaryE2E::start_error_ = nullptr;
std::string* CanaryE2E::targets_file_ = nullptr;
Json* CanaryE2E::report_ = nullptr;

const Json kFastSteps = Json::parse(R"([{"weight": 10, "pause": "10s"},
                                        {"weight": 50, "pause": "10s"},
                                        {"weight": 100, "pause": "0s"}])");

TEST_F(CanaryE2E, HealthyCanaryIsPromotedWithoutAFailedRequest) {
  StartOperator({"--analysis-provider=router"});
  DeployV1AndStartLoad(kFastSteps);
  const SteadyTime patched = std::chrono::steady_clock::now();
  auto r = client().Patch(kMdGvr, ns_, "fraud", kube::PatchType::kMerge,
                          R"({"spec":{"model":{"version":"2"}}})");
  ASSERT_TRUE(r.ok()) << r.status();
  Observed seen;
  std::string canary;
  const bool promoted = Watch(
      seen,
      [&](const Json& md) {
        if (canary.empty()) canary = md["status"].value("canaryRevision", "");
        const std::string stable = md["status"].value("stableRevision", "");
        return Phase(md) == "Healthy" && !stable.empty() && stable != stable_ &&
               TrafficOf(md) == std::map<std::string, int>{{stable, 100}};
      },
      150s);
  const SteadyTime done = std::chrono::steady_clock::now();
  // A fixed window of load after the promotion: every answer in it must come from v2.
  KeepLoadFor(3s);
  load_->Stop();
  PrintTimeline();
  ASSERT_FALSE(OperatorDied()) << OperatorDeath();
  ASSERT_TRUE(promoted) << "not promoted; last status: " << seen.last["status"].dump();

  std::vector<int> weights;
  for (const auto& [t, traffic] : seen.traffic) {
    auto it = traffic.find(canary);
    if (it != traffic.end() && (weights.empty() || weights.back() != it->second)) {
      weights.push_back(it->second);
    }
  }
  auto s = load_->Summarize(patched, std::chrono::steady_clock::now() + 1h);
  auto tail = load_->Summarize(done + 1s, std::chrono::steady_clock::now() + 1h);
  std::string steps;
  for (int w : weights) steps += (steps.empty() ? "" : ",") + std::to_string(w);
  std::cout << fmt::format(
      "CANARY healthy-promotion: failed_requests={} of {} (v1 {} / v2 {}) canary_weights={} "
      "promotion_s={:.1f}\n",
      s.failed, s.total, s.by_version["1"], s.by_version["2"], steps, Seconds(done - patched));
  (*report_)["scenarios"]["healthy_promotion"] = {
      {"failed_requests", s.failed},     {"requests", s.total},
      {"v1_answers", s.by_version["1"]}, {"v2_answers", s.by_version["2"]},
      {"canary_weights", weights},       {"promotion_seconds", Seconds(done - patched)}};

  EXPECT_EQ(s.failed, 0);
  EXPECT_THAT(weights, ::testing::ElementsAre(10, 50, 100));
  EXPECT_GT(s.by_version["2"], 0);
  // Once promoted, the router sends everything to v2.
  EXPECT_EQ(tail.by_version["1"], 0);
  EXPECT_GT(tail.by_version["2"], 0);
  // gRPC takes the same way: the router pod's grpc port (the operator's default, 8081) to the
  // revisions' grpc port, and v2 answers.
  auto channel = grpc::CreateChannel(router_ip_ + ":8081", grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  const auto request =
      sluice::testing::Fp32Request("fraud", {std::vector<float>(12, 1.0f)}, /*raw=*/false);
  for (int i = 0; i < 10; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    inference::ModelInferResponse response;
    const grpc::Status status = stub->ModelInfer(&ctx, request, &response);
    ASSERT_TRUE(status.ok()) << "gRPC through the router: " << status.error_message();
    EXPECT_EQ(response.model_version(), "2");
  }
}

// The faulty canary rolled back on the router's own metrics runs on the real node
// (e2e/scenario, ctest real_node_e2e). Here the same default analysis (error rate <= 1%, p99 <=
// 500 ms, every 5 s, 2 failures) is computed by PromQL from the Prometheus that scrapes the router
// pods.
TEST_F(CanaryE2E, FaultyCanaryIsRolledBackOnPrometheus) {
  StartOperator({"--analysis-provider=prometheus", "--prometheus-url=" + prometheus_url()});
  DeployV1AndStartLoad(nullptr);  // the default steps: 10% and 50% for 30 s, then 100%
  RunFaultyCanary("faulty-rollback-prometheus", nullptr);
  // The verdicts came from series Prometheus holds for this namespace's router.
  const std::string query = "sum(sluice_router_requests_total{namespace=\"" + ns_ + "\"})";
  auto answer = HttpGetBody(prometheus_url() + "/api/v1/query?query=" + UrlEncode(query));
  ASSERT_TRUE(answer.ok()) << answer.status();
  const Json result = Json::parse(*answer, nullptr, false);
  ASSERT_TRUE(result.is_object() && !result["data"]["result"].empty()) << *answer;
  EXPECT_GT(std::stod(result["data"]["result"][0]["value"][1].get<std::string>()), 100.0);
}

// "Promote in the registry -> safe rollout in the cluster": the ModelDeployment follows
// models:/fraud@champion in a real MLflow whose artifacts are in a real S3 server (moto, SigV4
// checked), and its pods fetch each version from S3 with the Secret's keys. Moving the alias to
// v2 rolls v2 out through the canary; moving it to v3, which fails a share of its requests
// (SLUICE_FAULT_ONLY_VERSION=3), rolls v3 back, and the registry version is refused in status and
// an Event while v2 keeps serving. Measured: alias move -> the canary's first step.
TEST_F(CanaryE2E, RegistryAliasMovesRollOutAndARolledBackVersionIsRefused) {
  auto s3 = S3Server::Start();
  ASSERT_TRUE(s3.ok()) << s3.status();
  ASSERT_TRUE((*s3)->CreateBucket("mlflow").ok());
  auto python = S3Server::VenvPython();
  ASSERT_TRUE(python.ok()) << python.status();
  MlflowServerOptions mo;
  mo.python = *python;
  mo.source_dir = kSource;
  mo.artifacts_destination = "s3://mlflow/artifacts";
  mo.serve_artifacts = false;  // clients (the pods) read the versions from S3 themselves
  mo.env = {"MLFLOW_S3_ENDPOINT_URL=" + (*s3)->endpoint(),
            "AWS_ACCESS_KEY_ID=" + (*s3)->access_key(),
            "AWS_SECRET_ACCESS_KEY=" + (*s3)->secret_key(), "AWS_DEFAULT_REGION=us-east-1"};
  auto mlflow = MlflowServer::Start(mo);
  ASSERT_TRUE(mlflow.ok()) << mlflow.status();
  const std::string tracking = (*mlflow)->tracking_uri();
  // Registers bench/fraud/model/fraud.json as the next version and points the alias at it.
  auto register_version = [&]() -> std::string {
    std::vector<std::string> env = mo.env;
    auto r = RunCommand({*python, kSource + "/tests/support/mlflow_register.py", "--tracking-uri",
                         tracking, "register-file", "--name", "fraud", "--file",
                         kSource + "/bench/fraud/model/fraud.json", "--alias", "champion"},
                        std::chrono::seconds(180), env);
    if (!r.ok() || !r->status.success()) {
      ADD_FAILURE() << "register-file: " << (r.ok() ? r->output : r.status().ToString());
      return "";
    }
    const std::string last = r->output.substr(r->output.rfind('{'));
    return Json::parse(last, nullptr, false).value("version", "");
  };
  ASSERT_EQ(register_version(), "1");

  Json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata", {{"name", "fraud-models"}}},
                 {"stringData",
                  {{"AWS_ACCESS_KEY_ID", (*s3)->access_key()},
                   {"AWS_SECRET_ACCESS_KEY", (*s3)->secret_key()}}}};
  ASSERT_TRUE(client().Create(res::kSecrets, ns_, secret).ok());
  StartOperator({"--analysis-provider=router"});
  const Json patch = {
      {"model",
       {{"uri", "models:/fraud@champion"},
        {"format", nullptr},
        {"version", nullptr},
        {"credentials", {{"secretRef", {{"name", "fraud-models"}}}}},
        {"s3", {{"endpoint", (*s3)->endpoint()}, {"region", "us-east-1"}}},
        {"registry", {{"trackingUri", tracking}, {"pollInterval", "5s"}}}}},
      {"runtime",
       {{"env", Json::array({{{"name", "SLUICE_FAULT_ERROR_PERCENT"}, {"value", "50"}},
                             {{"name", "SLUICE_FAULT_ONLY_VERSION"}, {"value", "3"}}})}}}};
  const Json steps = Json::parse(R"([{"weight": 10, "pause": "10s"}, {"weight": 100, "pause": "0s"}])");
  // v1 from the registry answers through the router (the served version is the registry's).
  DeployV1AndStartLoad(steps, patch);
  if (HasFatalFailure()) return;
  EXPECT_EQ(GetMd()["status"]["model"]["version"], "1");
  EXPECT_THAT(controllers::it::StatusOf(GetMd()).value("model", Json::object()).value("source", ""),
              ::testing::StartsWith("s3://mlflow/"));

  // v2: the alias moves, the operator sees it at its next poll and rolls v2 out.
  ASSERT_EQ(register_version(), "2");
  const SteadyTime moved = std::chrono::steady_clock::now();
  Observed seen;
  std::optional<SteadyTime> first_step;
  std::string canary;
  const bool promoted = Watch(
      seen,
      [&](const Json& md) {
        const std::string c = md["status"].value("canaryRevision", "");
        if (!c.empty()) canary = c;
        if (!first_step && !canary.empty() && TrafficOf(md)[canary] > 0) {
          first_step = std::chrono::steady_clock::now();
        }
        return !canary.empty() && Phase(md) == "Healthy" &&
               md["status"].value("stableRevision", "") == canary;
      },
      180s);
  ASSERT_FALSE(OperatorDied()) << OperatorDeath();
  ASSERT_TRUE(promoted) << seen.last["status"].dump();
  ASSERT_TRUE(first_step.has_value());
  EXPECT_EQ(seen.last["status"]["model"]["version"], "2");
  const std::string v2 = canary;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = load_->Summarize(moved, std::chrono::steady_clock::now());
        return s.by_version["2"] >= 20;
      },
      30s))
      << "no answers from registry version 2 through the router";
  const auto promotion = load_->Summarize(moved, std::chrono::steady_clock::now());
  EXPECT_EQ(promotion.failed, 0) << "failed requests while v2 was rolled out";

  // v3 fails half of its requests: rolled back, refused, and v2 keeps serving.
  ASSERT_EQ(register_version(), "3");
  const SteadyTime moved_bad = std::chrono::steady_clock::now();
  Observed bad;
  const bool rolled_back = Watch(
      bad,
      [&](const Json& md) {
        return Phase(md) == "RolledBack" && TrafficOf(md) == std::map<std::string, int>{{v2, 100}} &&
               md["status"].value("model", Json::object()).value("refusedVersion", "") == "3";
      },
      180s);
  ASSERT_FALSE(OperatorDied()) << OperatorDeath();
  ASSERT_TRUE(rolled_back) << bad.last["status"].dump();
  EXPECT_THAT(controllers::it::StatusOf(bad.last).value("model", Json::object()).value("refusedReason", ""),
              ::testing::Not(::testing::IsEmpty()));
  // Events are queued by the recorder and posted after the status write: wait for it.
  const bool refused_event = WaitFor(
      [&] {
        auto events = client().List(res::kEvents, ns_);
        if (!events.ok()) return false;
        for (const auto& e : (*events)["items"]) {
          if (e.value("reason", "") == "RegistryVersionRefused" &&
              e.value("message", "").find("version 3 of models:/fraud@champion") !=
                  std::string::npos) {
            return true;
          }
        }
        return false;
      },
      30s);
  EXPECT_TRUE(refused_event) << "no RegistryVersionRefused Event naming version 3";
  // The alias still names v3; later polls do not start it again, and v2 answers.
  const SteadyTime after = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = load_->Summarize(after, std::chrono::steady_clock::now());
        return s.by_version["2"] >= 50;
      },
      30s));
  const auto tail = load_->Summarize(after, std::chrono::steady_clock::now());
  EXPECT_EQ(tail.failed, 0);
  EXPECT_EQ(Phase(GetMd()), "RolledBack");
  const auto bad_window = load_->Summarize(moved_bad, after);
  load_->Stop();

  // Wrong S3 credentials: the pods cannot fetch, and the ModelDeployment says why.
  Json wrong = secret;
  wrong["metadata"]["name"] = "fraud-models-wrong";
  wrong["stringData"]["AWS_SECRET_ACCESS_KEY"] = "not-the-secret";
  ASSERT_TRUE(client().Create(res::kSecrets, ns_, wrong).ok());
  Json other = ModelDeployment(steps);
  other["metadata"]["name"] = "fraud-wrong-keys";
  other["spec"].merge_patch(patch);
  other["spec"]["model"]["uri"] = "models:/fraud/2";
  other["spec"]["model"]["credentials"]["secretRef"]["name"] = "fraud-models-wrong";
  ASSERT_TRUE(client().Create(kMdGvr, ns_, other).ok());
  Json degraded;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto md = client().Get(kMdGvr, ns_, "fraud-wrong-keys");
        if (!md.ok()) return false;
        for (const auto& c :
             controllers::it::StatusOf(*md).value("conditions", Json::array())) {
          if (c.value("type", "") == "Degraded" && c.value("status", "") == "True") degraded = c;
        }
        return !degraded.is_null();
      },
      90s))
      << "no Degraded condition for pods that cannot fetch the model";
  EXPECT_EQ(degraded["reason"], "RevisionNotRunning") << degraded.dump();
  EXPECT_THAT(degraded.value("message", ""), ::testing::HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(degraded.value("message", ""), ::testing::Not(::testing::HasSubstr("not-the-secret")));

  const double alias_to_step = Seconds(*first_step - moved);
  std::cout << fmt::format(
      "CANARY registry: alias_move_to_first_step_s={:.2f} (poll interval 5s) "
      "promotion_failed_requests={} of {} rollback_failed_requests={} of {}\n",
      alias_to_step, promotion.failed, promotion.total, bad_window.failed, bad_window.total);
  (*report_)["scenarios"]["registry"] = {{"alias_move_to_first_step_seconds", alias_to_step},
                                         {"poll_interval_seconds", 5},
                                         {"promotion_failed_requests", promotion.failed},
                                         {"rollback_failed_requests", bad_window.failed},
                                         {"rollback_requests", bad_window.total}};
  // The operator polls every 5 s; the canary's pods fetch from S3 and become Ready on top.
  EXPECT_LE(alias_to_step, 30.0);
}

// A step in load: 20 -> 100 requests/s on a revision whose answers take 50 ms more (so about 1,
// then 5 requests are in flight) with targetConcurrency 2. Three replicas are needed after the
// step; the panic window (6 s at twice the target) must get there within 10 s.
TEST_F(CanaryE2E, StepInLoadScalesTheRevisionWithinTenSeconds) {
  StartOperator({"--analysis-provider=router"});
  rate_ = 20;
  const Json spec = {
      {"replicas", nullptr},
      {"autoscaling",
       {{"minReplicas", 1}, {"maxReplicas", 4}, {"targetConcurrency", 2}, {"mode", "Concurrency"}}},
      {"runtime", {{"env", Json::array({{{"name", "SLUICE_FAULT_DELAY_MS"}, {"value", "50"}}})}}}};
  DeployV1AndStartLoad(kFastSteps, spec);
  auto deployment_replicas = [&](const char* field) {
    auto d = client().Get(res::kDeployments, ns_, stable_);
    if (!d.ok()) return -1;
    return field == std::string("spec") ? (*d)["spec"].value("replicas", 0)
                                        : (*d)["status"].value("readyReplicas", 0);
  };
  // Before the step one replica is enough, and that is what runs.
  ASSERT_TRUE(WaitFor([&] { return deployment_replicas("spec") == 1; }, 30s));

  LoadOptions step = load_options_;
  step.rate = 80;
  extra_load_ = std::make_unique<LoadDriver>(step);
  const SteadyTime stepped = std::chrono::steady_clock::now();
  extra_load_->Start();
  std::optional<SteadyTime> decided, ready;
  WaitFor(
      [&] {
        if (OperatorDied()) return true;
        const auto now = std::chrono::steady_clock::now();
        if (!decided && deployment_replicas("spec") >= 3) decided = now;
        if (decided && !ready && deployment_replicas("status") >= 3) ready = now;
        return ready.has_value();
      },
      60s, 100ms);
  extra_load_->Stop();
  load_->Stop();
  PrintTimeline();
  ASSERT_FALSE(OperatorDied()) << OperatorDeath();
  ASSERT_TRUE(decided.has_value()) << "never scaled to 3; replicas=" << deployment_replicas("spec")
                                   << " md status: " << GetMd()["status"].dump();
  const double to_decision = Seconds(*decided - stepped);
  const double to_ready = ready ? Seconds(*ready - stepped) : -1;
  auto s = load_->Summarize(stepped, std::chrono::steady_clock::now() + 1h);
  auto s2 = extra_load_->Summarize(stepped, std::chrono::steady_clock::now() + 1h);
  std::cout << fmt::format(
      "CANARY autoscale-step: 20->100 rps, +50 ms per answer, targetConcurrency=2: replicas 1->3 "
      "decided_s={:.2f} ready_s={:.2f} failed_requests={} of {} target_s=10\n",
      to_decision, to_ready, s.failed + s2.failed, s.total + s2.total);
  (*report_)["scenarios"]["autoscale_step"] = {{"replicas_decided_seconds", to_decision},
                                               {"replicas_ready_seconds", to_ready},
                                               {"failed_requests", s.failed + s2.failed},
                                               {"requests", s.total + s2.total},
                                               {"target_seconds", 10}};
  EXPECT_LE(to_decision, 10.0);
  EXPECT_TRUE(ready.has_value()) << "3 replicas decided but not Ready within 60 s";
}

}  // namespace
}  // namespace sluice::testing
