// The CRDs against a real kube-apiserver, through kubectl, which is how users meet them: they
// install and become Established, every sample applies, the server fills the documented defaults,
// invalid specs are refused with an error that names the offending field (and close valid variants
// are accepted), kubectl explain documents the API, kubectl get shows the printer columns and
// kubectl scale works through the scale subresource.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/api_server.h"
#include "tests/support/process.h"

namespace sluice {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

const fs::path kSourceDir = SLUICE_SOURCE_DIR;

std::string CollapseSpaces(const std::string& text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Runs `condition` until it holds or `timeout` passes; the API server publishes OpenAPI and
// discovery for a new CRD a moment after it is Established.
bool Eventually(const std::function<bool()>& condition, seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(250));
  }
}

// The shared API server, a scratch folder and kubectl pointed at both.
class Cluster {
 public:
  static Cluster& Get() {
    static Cluster cluster;
    return cluster;
  }

  ~Cluster() {
    std::error_code ignored;
    fs::remove_all(scratch_, ignored);
  }

  // kubectl with the admin kubeconfig; output is stdout and stderr merged.
  testing::CommandResult Kubectl(std::vector<std::string> args,
                                 seconds timeout = seconds(60)) const {
    std::vector<std::string> argv = {kubectl_, "--kubeconfig=" + kubeconfig_,
                                     "--cache-dir=" + (scratch_ / "kube-cache").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    Result<testing::CommandResult> result = testing::RunCommand(argv, timeout);
    if (!result.ok()) {
      return testing::CommandResult{{}, "running kubectl: " + result.status().ToString()};
    }
    return std::move(result).value();
  }

  // Writes `manifest` to a fresh file in the scratch folder and returns its path.
  std::string WriteManifest(const Json& manifest) {
    const fs::path path = scratch_ / ("manifest-" + std::to_string(++files_) + ".json");
    std::ofstream(path) << manifest.dump(2);
    return path.string();
  }

  // Creates the namespace if it does not exist yet.
  void EnsureNamespace(const std::string& name) {
    const Json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
    auto result = Kubectl({"apply", "-f", WriteManifest(ns)});
    ASSERT_TRUE(result.status.success()) << result.output;
  }

  // The object as JSON (the first JSON document in kubectl's output, after any warning lines).
  Json GetJson(std::vector<std::string> args) const {
    args.insert(args.begin(), "get");
    args.push_back("-o");
    args.push_back("json");
    auto result = Kubectl(args);
    EXPECT_TRUE(result.status.success()) << result.output;
    const size_t start = result.output.find('{');
    if (!result.status.success() || start == std::string::npos) return Json();
    return Json::parse(result.output.substr(start), nullptr, /*allow_exceptions=*/false);
  }

  const std::string& install_error() const { return install_error_; }
  const std::string& server_logs() const { return server_logs_; }

 private:
  Cluster() {
    testing::TestApiServer& server = testing::SharedApiServer();
    kubeconfig_ = server.kubeconfig_path();
    server_logs_ = server.temp_dir() + "/logs";
    // The kubectl built with the cluster has the server's version; the system one is a fallback.
    kubectl_ = fs::exists(fs::path(server.bin_dir()) / "kubectl")
                   ? (fs::path(server.bin_dir()) / "kubectl").string()
                   : "kubectl";
    char pattern[] = "/tmp/sluice-crds-XXXXXX";
    scratch_ = mkdtemp(pattern);
    install_error_ = Install();
  }

  std::string Install() const {
    auto applied = Kubectl({"apply", "--server-side", "--field-manager=sluice-crds-test", "-f",
                            (kSourceDir / "crds" / "sluice.dev_modeldeployments.yaml").string(),
                            "-f", (kSourceDir / "crds" / "sluice.dev_featureviews.yaml").string()});
    if (!applied.status.success()) return "kubectl apply of the CRDs: " + applied.output;
    auto established = Kubectl({"wait", "--for=condition=Established", "--timeout=90s",
                                "crd/modeldeployments.sluice.dev", "crd/featureviews.sluice.dev"},
                               seconds(120));
    if (!established.status.success()) return "CRDs not Established: " + established.output;
    // Discovery lags Established slightly; the tests below use short names and categories.
    bool discovered = Eventually(
        [&] {
          auto r = Kubectl({"api-resources", "--api-group=sluice.dev", "--no-headers"});
          return r.status.success() && r.output.find("modeldeployments") != std::string::npos &&
                 r.output.find("featureviews") != std::string::npos;
        },
        seconds(60));
    if (!discovered) return "sluice.dev resources never appeared in discovery";
    return "";
  }

  std::string kubeconfig_;
  std::string kubectl_;
  std::string server_logs_;
  fs::path scratch_;
  int files_ = 0;
  std::string install_error_;
};

class CrdsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(cluster().install_error(), ""); }

  static Cluster& cluster() { return Cluster::Get(); }

  // A namespace named after the running test, so tests sharing the server never collide.
  std::string TestNamespace() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "crds-";
    for (char c : std::string(info->name())) {
      if (name.size() >= 60) break;
      name += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a')
              : ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c
                                                                   : '-';
    }
    while (name.back() == '-') name.pop_back();
    cluster().EnsureNamespace(name);
    return name;
  }

  static std::string Sample(const std::string& file) {
    return (kSourceDir / "crds" / "samples" / file).string();
  }
};

// Minimal valid objects; each invalid case below changes exactly one thing in one of them.
Json BaseModelDeployment() {
  return Json::parse(R"({
    "apiVersion": "sluice.dev/v1alpha1", "kind": "ModelDeployment",
    "metadata": {"name": "candidate"},
    "spec": {"model": {"uri": "file:///models/fraud/fraud.json"}, "replicas": 2}
  })");
}

Json BaseFeatureView() {
  return Json::parse(R"({
    "apiVersion": "sluice.dev/v1alpha1", "kind": "FeatureView",
    "metadata": {"name": "candidate"},
    "spec": {
      "project": "fraud",
      "entities": [{"name": "card", "joinKey": "card_id", "valueType": "STRING"}],
      "features": [{"name": "velocity", "type": "INT64", "default": "0"}],
      "source": {"type": "parquet", "path": "/data/card.parquet", "timestampField": "ts"},
      "online": {"redis": {"address": "127.0.0.1:6379"}}
    }
  })");
}

TEST_F(CrdsTest, CrdsInstallAndAreEstablished) {
  for (const char* name : {"modeldeployments.sluice.dev", "featureviews.sluice.dev"}) {
    SCOPED_TRACE(name);
    const Json crd = cluster().GetJson({"crd", name});
    std::map<std::string, std::string> conditions;
    for (const Json& c : crd["status"]["conditions"]) {
      conditions[c["type"].get<std::string>()] = c["status"].get<std::string>();
    }
    EXPECT_EQ(conditions["Established"], "True");
    EXPECT_EQ(conditions["NamesAccepted"], "True");
    // A non-structural schema is accepted but flagged; ours must not be.
    EXPECT_EQ(conditions.count("NonStructuralSchema"), 0u);
    EXPECT_EQ(crd["status"]["acceptedNames"]["categories"], Json::array({"sluice"}));
  }
  EXPECT_EQ(cluster().GetJson(
                {"crd", "modeldeployments.sluice.dev"})["status"]["acceptedNames"]["shortNames"],
            Json::array({"md"}));
  EXPECT_EQ(cluster().GetJson(
                {"crd", "featureviews.sluice.dev"})["status"]["acceptedNames"]["shortNames"],
            Json::array({"fv"}));
}

TEST_F(CrdsTest, EverySampleApplies) {
  const std::string ns = TestNamespace();
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kSourceDir / "crds" / "samples")) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    auto result =
        cluster().Kubectl({"apply", "--validate=strict", "-n", ns, "-f", entry.path().string()});
    EXPECT_TRUE(result.status.success()) << entry.path() << ": " << result.output;
    // A warning would mean a field was dropped or is deprecated.
    EXPECT_EQ(result.output.find("Warning"), std::string::npos) << result.output;
  }
  EXPECT_GE(files, 4);

  auto listed = cluster().Kubectl({"get", "sluice", "-n", ns, "-o", "name"});
  ASSERT_TRUE(listed.status.success()) << listed.output;
  for (const char* name :
       {"modeldeployment.sluice.dev/fraud", "modeldeployment.sluice.dev/fraud-rolling",
        "modeldeployment.sluice.dev/fraud-autoscaled", "featureview.sluice.dev/card-features",
        "featureview.sluice.dev/merchant-features"}) {
    EXPECT_NE(listed.output.find(name), std::string::npos) << name << " in\n" << listed.output;
  }

  // What the sample says wins over the defaults.
  const Json fraud = cluster().GetJson({"md", "fraud", "-n", ns});
  EXPECT_EQ(fraud["spec"]["rollout"]["canary"]["steps"][0],
            Json::parse(R"({"weight": 10, "pause": "1m"})"));
  EXPECT_EQ(fraud["spec"]["rollout"]["canary"]["analysis"]["metrics"][1]["thresholdRange"]["max"],
            0.05);
  EXPECT_EQ(fraud["spec"]["runtime"]["resources"]["requests"]["cpu"], "200m");
}

TEST_F(CrdsTest, ModelDeploymentDefaultsAreFilled) {
  const std::string ns = TestNamespace();
  auto created = cluster().Kubectl({"apply", "--validate=strict", "-n", ns, "-f",
                                    cluster().WriteManifest(BaseModelDeployment())});
  ASSERT_TRUE(created.status.success()) << created.output;

  const Json spec = cluster().GetJson({"md", "candidate", "-n", ns})["spec"];
  EXPECT_EQ(spec["model"]["format"], "auto");
  EXPECT_EQ(spec["rollout"]["strategy"], "Canary");
  EXPECT_EQ(spec["rollout"]["canary"]["steps"], Json::parse(R"([
    {"weight": 10, "pause": "30s"}, {"weight": 50, "pause": "30s"}, {"weight": 100, "pause": "0s"}
  ])"));
  const Json& analysis = spec["rollout"]["canary"]["analysis"];
  EXPECT_EQ(analysis["interval"], "5s");
  EXPECT_EQ(analysis["failureThreshold"], 2);
  EXPECT_EQ(analysis["minRequests"], 10);
  EXPECT_EQ(analysis["noDataPolicy"], "Pause");
  EXPECT_EQ(analysis["metrics"], Json::parse(R"([
    {"name": "error-rate", "builtin": "errorRate", "thresholdRange": {"max": 0.01}},
    {"name": "latency-p99", "builtin": "latencyP99", "thresholdRange": {"max": 0.5}}
  ])"));
  EXPECT_EQ(spec["rollout"]["rolling"], Json::parse(R"({"maxSurge": "25%", "maxUnavailable": 0})"));
  EXPECT_EQ(spec["rollout"]["progressDeadline"], "10m");
  EXPECT_EQ(spec["rollout"]["scaleDownDelay"], "30s");
  EXPECT_EQ(spec["traffic"], Json::parse(R"({"router": "Builtin", "retryOnStable": true})"));
  // Optional blocks stay absent rather than being invented.
  EXPECT_FALSE(spec.contains("autoscaling"));
  EXPECT_FALSE(spec.contains("runtime"));
}

TEST_F(CrdsTest, AutoscalingRuntimeAndFeatureViewDefaultsAreFilled) {
  const std::string ns = TestNamespace();
  Json md = BaseModelDeployment();
  md["spec"].erase("replicas");
  md["spec"]["autoscaling"] = {{"maxReplicas", 4}};
  md["spec"]["runtime"] = Json::parse(R"({"batching": {}, "cache": {}})");
  auto created = cluster().Kubectl({"apply", "-n", ns, "-f", cluster().WriteManifest(md)});
  ASSERT_TRUE(created.status.success()) << created.output;
  const Json spec = cluster().GetJson({"md", "candidate", "-n", ns})["spec"];
  EXPECT_EQ(spec["autoscaling"], Json::parse(R"({
    "minReplicas": 1, "maxReplicas": 4, "targetConcurrency": 8, "mode": "Concurrency",
    "stableWindow": "60s", "panicWindow": "6s", "scaleDownDelay": "0s"
  })"));
  EXPECT_EQ(spec["runtime"]["batching"],
            Json::parse(R"({"maxBatchSize": 32, "maxQueueDelay": "1ms", "maxQueueSize": 1024})"));
  EXPECT_EQ(spec["runtime"]["cache"],
            Json::parse(R"({"enabled": true, "capacity": 10000, "ttl": "60s"})"));

  Json fv = BaseFeatureView();
  fv["spec"]["materialization"] = {{"schedule", "@hourly"}};
  created = cluster().Kubectl({"apply", "-n", ns, "-f", cluster().WriteManifest(fv)});
  ASSERT_TRUE(created.status.success()) << created.output;
  const Json fv_spec = cluster().GetJson({"fv", "candidate", "-n", ns})["spec"];
  EXPECT_EQ(fv_spec["ttl"], "0s");
  EXPECT_EQ(fv_spec["online"]["redis"]["db"], 0);
  EXPECT_EQ(fv_spec["online"]["redis"]["keyTtl"], "0s");
  EXPECT_EQ(fv_spec["materialization"]["suspend"], false);
}

// One change to a base object and what the refusal must say: the path of the offending field as
// the server reports it, and words of the message.
struct SpecCase {
  std::string name;
  bool feature_view = false;
  const char* merge_patch;
  std::vector<std::string> expected;
};

std::ostream& operator<<(std::ostream& os, const SpecCase& c) {
  return os << c.name;
}

Json Candidate(const SpecCase& c) {
  Json object = c.feature_view ? BaseFeatureView() : BaseModelDeployment();
  object.merge_patch(Json::parse(c.merge_patch));
  return object;
}

class InvalidSpecTest : public CrdsTest, public ::testing::WithParamInterface<SpecCase> {};

TEST_P(InvalidSpecTest, IsRefusedNamingTheField) {
  cluster().EnsureNamespace("crds-invalid");
  const Json candidate = Candidate(GetParam());
  auto result = cluster().Kubectl({"create", "--dry-run=server", "--validate=strict", "-n",
                                   "crds-invalid", "-f", cluster().WriteManifest(candidate)});
  EXPECT_FALSE(result.status.success()) << "accepted:\n" << candidate.dump(2);
  for (const std::string& expected : GetParam().expected) {
    EXPECT_NE(result.output.find(expected), std::string::npos)
        << "missing \"" << expected << "\" in:\n"
        << result.output;
  }
}

// Errors read "<field path>: <Invalid value|Required value|...>: <message>"; `path + ": "` only
// matches the path part, since the messages name fields without a colon after them.
std::string At(const std::string& path) {
  return path + ": ";
}

// clang-format off
INSTANTIATE_TEST_SUITE_P(
    ModelDeployment, InvalidSpecTest,
    ::testing::Values(
        SpecCase{"StepsNotIncreasing", false,
                 R"({"spec": {"rollout": {"canary": {"steps": [{"weight": 50}, {"weight": 10}, {"weight": 100}]}}}})",
                 {At("spec.rollout.canary.steps"), "strictly increasing"}},
        SpecCase{"StepsRepeatAWeight", false,
                 R"({"spec": {"rollout": {"canary": {"steps": [{"weight": 10}, {"weight": 10}, {"weight": 100}]}}}})",
                 {At("spec.rollout.canary.steps"), "strictly increasing"}},
        SpecCase{"StepsDoNotEndAt100", false,
                 R"({"spec": {"rollout": {"canary": {"steps": [{"weight": 10}, {"weight": 50}]}}}})",
                 {At("spec.rollout.canary.steps"), "must end with a step of weight 100"}},
        SpecCase{"StepsEmpty", false,
                 R"({"spec": {"rollout": {"canary": {"steps": []}}}})",
                 {At("spec.rollout.canary.steps"), "at least 1 item"}},
        SpecCase{"StepWeightZero", false,
                 R"({"spec": {"rollout": {"canary": {"steps": [{"weight": 0}, {"weight": 100}]}}}})",
                 {At("spec.rollout.canary.steps[0].weight"), "greater than or equal to 1"}},
        SpecCase{"StepWeightOver100", false,
                 R"({"spec": {"rollout": {"canary": {"steps": [{"weight": 10}, {"weight": 150}]}}}})",
                 {At("spec.rollout.canary.steps[1].weight"), "less than or equal to 100"}},
        SpecCase{"StepPauseNotADuration", false,
                 R"({"spec": {"rollout": {"canary": {"steps": [{"weight": 100, "pause": "forever"}]}}}})",
                 {At("spec.rollout.canary.steps[0].pause"), "must be a duration"}},
        SpecCase{"ReplicasAndAutoscaling", false,
                 R"({"spec": {"autoscaling": {"maxReplicas": 3}}})",
                 {At("spec.replicas"), "mutually exclusive"}},
        SpecCase{"NeitherReplicasNorAutoscaling", false,
                 R"({"spec": {"replicas": null}})",
                 {At("spec.replicas") + "Required value", "one of spec.replicas or spec.autoscaling"}},
        SpecCase{"MinReplicasOverMax", false,
                 R"({"spec": {"replicas": null, "autoscaling": {"minReplicas": 5, "maxReplicas": 3}}})",
                 {At("spec.autoscaling.minReplicas"), "must not exceed"}},
        SpecCase{"PanicWindowOverStableWindow", false,
                 R"({"spec": {"replicas": null, "autoscaling": {"maxReplicas": 3, "stableWindow": "10s", "panicWindow": "20s"}}})",
                 {At("spec.autoscaling.panicWindow"), "must not exceed"}},
        SpecCase{"AutoscalingModeUnknown", false,
                 R"({"spec": {"replicas": null, "autoscaling": {"maxReplicas": 3, "mode": "CPU"}}})",
                 {At("spec.autoscaling.mode") + "Unsupported value"}},
        SpecCase{"UriSchemeNotAllowed", false,
                 R"({"spec": {"model": {"uri": "ftp://models/fraud.json"}}})",
                 {At("spec.model.uri"), "file:///path"}},
        SpecCase{"UriFileNotAbsolute", false,
                 R"({"spec": {"model": {"uri": "file://fraud.json"}}})",
                 {At("spec.model.uri")}},
        SpecCase{"FormatUnknown", false,
                 R"({"spec": {"model": {"format": "onnx"}}})",
                 {At("spec.model.format") + "Unsupported value"}},
        SpecCase{"Sha256NotHex", false,
                 R"({"spec": {"model": {"sha256": "abc"}}})",
                 {At("spec.model.sha256")}},
        SpecCase{"VersionWithSpace", false,
                 R"({"spec": {"model": {"version": "v 1"}}})",
                 {At("spec.model.version")}},
        SpecCase{"IntervalNotADuration", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"interval": "5 seconds"}}}}})",
                 {At("spec.rollout.canary.analysis.interval"), "between 1s and 10m"}},
        SpecCase{"IntervalTooShort", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"interval": "100ms"}}}}})",
                 {At("spec.rollout.canary.analysis.interval")}},
        SpecCase{"TlsWithoutSecretName", false,
                 R"({"spec": {"tls": {}}})",
                 {At("spec.tls.secretName") + "Required value"}},
        SpecCase{"TlsSecretNameNotAName", false,
                 R"({"spec": {"tls": {"secretName": "Fraud_TLS"}}})",
                 {At("spec.tls.secretName"), "must be a Secret name"}},
        SpecCase{"TlsUnknownField", false,
                 R"({"spec": {"tls": {"secretName": "fraud-tls", "cert": "x"}}})",
                 {"spec.tls.cert"}},
        SpecCase{"NoDataPolicyUnknown", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"noDataPolicy": "Ignore"}}}}})",
                 {At("spec.rollout.canary.analysis.noDataPolicy") + "Unsupported value"}},
        SpecCase{"MetricWithBuiltinAndQuery", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"metrics": [{"name": "m", "builtin": "errorRate", "query": "up", "thresholdRange": {"max": 0.01}}]}}}}})",
                 {At("spec.rollout.canary.analysis.metrics[0].builtin"), "exactly one of builtin or query"}},
        SpecCase{"MetricWithoutSource", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"metrics": [{"name": "m", "thresholdRange": {"max": 1}}]}}}}})",
                 {At("spec.rollout.canary.analysis.metrics[0].builtin"), "exactly one of builtin or query"}},
        SpecCase{"ThresholdMinOverMax", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"metrics": [{"name": "m", "query": "up", "thresholdRange": {"min": 2, "max": 1}}]}}}}})",
                 {At("spec.rollout.canary.analysis.metrics[0].thresholdRange.min"), "must not exceed"}},
        SpecCase{"ThresholdWithoutBounds", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"metrics": [{"name": "m", "query": "up", "thresholdRange": {}}]}}}}})",
                 {At("spec.rollout.canary.analysis.metrics[0].thresholdRange"), "needs min, max or both"}},
        SpecCase{"ErrorRateWrittenAsPercent", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"metrics": [{"name": "m", "builtin": "errorRate", "thresholdRange": {"max": 5}}]}}}}})",
                 {At("spec.rollout.canary.analysis.metrics[0].thresholdRange"), "fraction between 0 and 1"}},
        SpecCase{"MetricNamesRepeated", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"metrics": [{"name": "m", "builtin": "errorRate", "thresholdRange": {"max": 0.01}}, {"name": "m", "builtin": "latencyP99", "thresholdRange": {"max": 1}}]}}}}})",
                 {At("spec.rollout.canary.analysis.metrics[1]") + "Duplicate value"}},
        SpecCase{"PrometheusAddressNotHttp", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"prometheus": {"address": "prometheus:9090"}}}}}})",
                 {At("spec.rollout.canary.analysis.prometheus.address")}},
        SpecCase{"ProgressDeadlineNotADuration", false,
                 R"({"spec": {"rollout": {"progressDeadline": "10 minutes"}}})",
                 {At("spec.rollout.progressDeadline")}},
        SpecCase{"RollingSurgeAndUnavailableZero", false,
                 R"({"spec": {"rollout": {"strategy": "Rolling", "rolling": {"maxSurge": 0, "maxUnavailable": "0%"}}}})",
                 {At("spec.rollout.rolling.maxSurge"), "must not both be zero"}},
        SpecCase{"MaxUnavailableOver100Percent", false,
                 R"({"spec": {"rollout": {"rolling": {"maxUnavailable": "150%"}}}})",
                 {At("spec.rollout.rolling.maxUnavailable"), "percent from 0% to 100%"}},
        SpecCase{"MaxSurgeNegative", false,
                 R"({"spec": {"rollout": {"rolling": {"maxSurge": -1}}}})",
                 {At("spec.rollout.rolling.maxSurge"), "non-negative"}},
        SpecCase{"StrategyUnknown", false,
                 R"({"spec": {"rollout": {"strategy": "BlueGreen"}}})",
                 {At("spec.rollout.strategy") + "Unsupported value"}},
        SpecCase{"MirrorOver100", false,
                 R"({"spec": {"traffic": {"mirror": {"percent": 150}}}})",
                 {At("spec.traffic.mirror.percent"), "less than or equal to 100"}},
        SpecCase{"MirrorWithGatewayApi", false,
                 R"({"spec": {"traffic": {"router": "GatewayAPI", "mirror": {"percent": 10}}}})",
                 {At("spec.traffic.mirror") + "Forbidden", "needs spec.traffic.router Builtin"}},
        SpecCase{"StickyWithGatewayApi", false,
                 R"({"spec": {"traffic": {"router": "GatewayAPI", "sticky": {"header": "x-user"}}}})",
                 {At("spec.traffic.sticky") + "Forbidden", "needs spec.traffic.router Builtin"}},
        SpecCase{"StickyHeaderNotAToken", false,
                 R"({"spec": {"traffic": {"sticky": {"header": "x user"}}}})",
                 {At("spec.traffic.sticky.header")}},
        SpecCase{"QueueSmallerThanBatch", false,
                 R"({"spec": {"runtime": {"batching": {"maxBatchSize": 64, "maxQueueSize": 8}}}})",
                 {At("spec.runtime.batching.maxQueueSize"), "at least spec.runtime.batching.maxBatchSize"}},
        SpecCase{"QueueDelayTooLong", false,
                 R"({"spec": {"runtime": {"batching": {"maxQueueDelay": "5s"}}}})",
                 {At("spec.runtime.batching.maxQueueDelay"), "at most 1s"}},
        SpecCase{"CacheTtlNotADuration", false,
                 R"({"spec": {"runtime": {"cache": {"ttl": "1d"}}}})",
                 {At("spec.runtime.cache.ttl")}},
        SpecCase{"RequestsOverLimits", false,
                 R"({"spec": {"runtime": {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}}}})",
                 {At("spec.runtime.resources.requests"), "must not exceed"}},
        SpecCase{"QuantityMalformed", false,
                 R"({"spec": {"runtime": {"resources": {"limits": {"cpu": "lots"}}}}})",
                 {At("spec.runtime.resources.limits.cpu")}},
        SpecCase{"EnvValueAndValueFrom", false,
                 R"({"spec": {"runtime": {"env": [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}}})",
                 {At("spec.runtime.env[0].valueFrom") + "Forbidden"}},
        SpecCase{"ModelsUriWithThreeParts", false,
                 R"({"spec": {"model": {"uri": "models:/fraud/1/extra"}}})",
                 {At("spec.model.uri"), "models:/name/version, models:/name@alias"}},
        SpecCase{"S3BucketUppercase", false,
                 R"({"spec": {"model": {"uri": "s3://Models/fraud.json"}}})",
                 {At("spec.model.uri")}},
        SpecCase{"RegistryWithAnS3Uri", false,
                 R"({"spec": {"model": {"uri": "s3://models/fraud.json", "registry": {"trackingUri": "http://mlflow:5000"}}}})",
                 {At("spec.model.registry") + "Forbidden", "models:/ URIs only"}},
        SpecCase{"S3SettingsWithAFileUri", false,
                 R"({"spec": {"model": {"s3": {"region": "eu-west-1"}}}})",
                 {At("spec.model.s3") + "Forbidden", "s3:// URIs and to models:/ URIs"}},
        SpecCase{"FormatWithAModelsUri", false,
                 R"({"spec": {"model": {"uri": "models:/fraud/3", "format": "xgboost-json"}}})",
                 {At("spec.model.format") + "Forbidden", "MLmodel file names its format"}},
        SpecCase{"Sha256WithAnAlias", false,
                 R"({"spec": {"model": {"uri": "models:/fraud@champion", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}})",
                 {At("spec.model.uri") + "Forbidden", "pin a version"}},
        SpecCase{"VersionWithAStage", false,
                 R"({"spec": {"model": {"uri": "models:/fraud/Production", "version": "7"}}})",
                 {At("spec.model.uri") + "Forbidden", "pin a version"}},
        SpecCase{"PollIntervalTooShort", false,
                 R"({"spec": {"model": {"uri": "models:/fraud@champion", "registry": {"pollInterval": "1s"}}}})",
                 {At("spec.model.registry.pollInterval"), "at least 5s"}},
        SpecCase{"S3EndpointWithAPath", false,
                 R"({"spec": {"model": {"uri": "s3://models/fraud.json", "s3": {"endpoint": "http://minio:9000/bucket"}}}})",
                 {At("spec.model.s3.endpoint")}},
        SpecCase{"CredentialsWithoutASecretName", false,
                 R"({"spec": {"model": {"uri": "s3://models/fraud.json", "credentials": {"secretRef": {}}}}})",
                 {"spec.model.credentials.secretRef.name"}},
        SpecCase{"GatewayApiRouterNotSupportedYet", false,
                 R"({"spec": {"traffic": {"router": "GatewayAPI"}}})",
                 {At("spec.traffic.router") + "Forbidden", "GatewayAPI is not supported yet"}},
        SpecCase{"GatewayApiWithHpaNotSupportedYet", false,
                 R"({"spec": {"replicas": null, "autoscaling": {"minReplicas": 3, "maxReplicas": 3, "mode": "HPA"}, "traffic": {"router": "GatewayAPI"}}})",
                 {At("spec.traffic.router") + "Forbidden", "GatewayAPI is not supported yet"}},
        SpecCase{"FeatureViewReferencedTwice", false,
                 R"({"spec": {"features": [{"name": "card-features"}, {"name": "card-features"}]}})",
                 {At("spec.features[1]") + "Duplicate value"}},
        SpecCase{"FeatureBudgetWithoutFeatures", false,
                 R"({"spec": {"runtime": {"featureBudget": "10ms"}}})",
                 {At("spec.runtime.featureBudget"), "applies to online features"}},
        SpecCase{"FeatureBudgetOverASecond", false,
                 R"({"spec": {"features": [{"name": "card-features"}], "runtime": {"featureBudget": "2s"}}})",
                 {At("spec.runtime.featureBudget"), "at most 1s"}},
        SpecCase{"NameTooLongForRevisionServices", false,
                 R"({"metadata": {"name": "a-model-deployment-name-that-is-too-long-for-services"}})",
                 {"metadata.name must be a DNS-1035 label", "at most 52 characters"}},
        SpecCase{"UnknownField", false,
                 R"({"spec": {"replica": 2}})",
                 {"unknown field \"spec.replica\""}}),
    [](const auto& info) { return info.param.name; });
// clang-format on

// clang-format off
INSTANTIATE_TEST_SUITE_P(
    FeatureView, InvalidSpecTest,
    ::testing::Values(
        SpecCase{"NoEntities", true,
                 R"({"spec": {"entities": []}})",
                 {At("spec.entities"), "at least 1 item"}},
        SpecCase{"JoinKeysRepeated", true,
                 R"({"spec": {"entities": [{"name": "card", "valueType": "STRING"}, {"name": "card2", "joinKey": "card", "valueType": "STRING"}]}})",
                 {At("spec.entities"), "join keys must be unique"}},
        SpecCase{"EntityValueTypeUnknown", true,
                 R"({"spec": {"entities": [{"name": "card", "valueType": "UUID"}]}})",
                 {At("spec.entities[0].valueType") + "Unsupported value"}},
        SpecCase{"FeatureNamesRepeated", true,
                 R"({"spec": {"features": [{"name": "velocity", "type": "INT64"}, {"name": "velocity", "type": "DOUBLE"}]}})",
                 {At("spec.features[1]") + "Duplicate value"}},
        SpecCase{"FeatureNamedLikeAJoinKey", true,
                 R"({"spec": {"features": [{"name": "card_id", "type": "STRING"}]}})",
                 {At("spec.features"), "must differ from every entity join key"}},
        SpecCase{"NoFeatures", true,
                 R"({"spec": {"features": []}})",
                 {At("spec.features"), "at least 1 item"}},
        SpecCase{"FeatureTypeUnknown", true,
                 R"({"spec": {"features": [{"name": "velocity", "type": "FLOAT128"}]}})",
                 {At("spec.features[0].type") + "Unsupported value"}},
        SpecCase{"IntDefaultNotAnInteger", true,
                 R"({"spec": {"features": [{"name": "velocity", "type": "INT64", "default": "abc"}]}})",
                 {At("spec.features[0].default"), "must be a value of the feature's type"}},
        SpecCase{"Int32DefaultOutOfRange", true,
                 R"({"spec": {"features": [{"name": "velocity", "type": "INT32", "default": "3000000000"}]}})",
                 {At("spec.features[0].default")}},
        SpecCase{"BoolDefaultNotTrueOrFalse", true,
                 R"({"spec": {"features": [{"name": "flag", "type": "BOOL", "default": "yes"}]}})",
                 {At("spec.features[0].default")}},
        SpecCase{"DoubleDefaultWithComma", true,
                 R"({"spec": {"features": [{"name": "rate", "type": "DOUBLE", "default": "0,5"}]}})",
                 {At("spec.features[0].default")}},
        SpecCase{"BytesDefaultNotBase64", true,
                 R"({"spec": {"features": [{"name": "blob", "type": "BYTES", "default": "not base64!"}]}})",
                 {At("spec.features[0].default")}},
        SpecCase{"FeatureNameNotAnIdentifier", true,
                 R"({"spec": {"features": [{"name": "txn-count", "type": "INT64"}]}})",
                 {At("spec.features[0].name")}},
        SpecCase{"TtlNotADuration", true,
                 R"({"spec": {"ttl": "1d"}})",
                 {At("spec.ttl"), "must be a duration"}},
        SpecCase{"ProjectWithDash", true,
                 R"({"spec": {"project": "fraud-detection"}})",
                 {At("spec.project")}},
        SpecCase{"SourceTypeUnknown", true,
                 R"({"spec": {"source": {"type": "bigquery"}}})",
                 {At("spec.source.type") + "Unsupported value"}},
        SpecCase{"FileSourceWithoutKnownExtension", true,
                 R"({"spec": {"source": {"type": "file", "path": "/data/card.json"}}})",
                 {At("spec.source.path"), "must end in .parquet or .csv"}},
        SpecCase{"SourceWithoutTimestampField", true,
                 R"({"spec": {"source": {"timestampField": null}}})",
                 {At("spec.source.timestampField") + "Required value"}},
        SpecCase{"RedisAddressAndSecret", true,
                 R"({"spec": {"online": {"redis": {"addressSecretRef": {"name": "redis", "key": "url"}}}}})",
                 {At("spec.online.redis.address"), "exactly one of address or addressSecretRef"}},
        SpecCase{"RedisWithoutAddress", true,
                 R"({"spec": {"online": {"redis": {"address": null}}}})",
                 {At("spec.online.redis.address"), "exactly one of address or addressSecretRef"}},
        SpecCase{"RedisAddressWithoutPort", true,
                 R"({"spec": {"online": {"redis": {"address": "redis"}}}})",
                 {At("spec.online.redis.address"), "must be host:port"}},
        SpecCase{"RedisPortTooLarge", true,
                 R"({"spec": {"online": {"redis": {"address": "redis:70000"}}}})",
                 {At("spec.online.redis.address"), "must be host:port"}},
        SpecCase{"RedisDbOutOfRange", true,
                 R"({"spec": {"online": {"redis": {"db": 16}}}})",
                 {At("spec.online.redis.db")}},
        SpecCase{"ScheduleNotCron", true,
                 R"({"spec": {"materialization": {"schedule": "every hour"}}})",
                 {At("spec.materialization.schedule"), "five-field cron"}},
        SpecCase{"SourceInObjectStoreNotSupportedYet", true,
                 R"({"spec": {"source": {"type": "csv", "path": "s3://features/card.csv"}}})",
                 {At("spec.source.path") + "Forbidden", "object stores come with the model storage work"}},
        SpecCase{"SourceRelativePath", true,
                 R"({"spec": {"source": {"type": "csv", "path": "data/card.csv"}}})",
                 {At("spec.source.path"), "an absolute path, file:///path or an http(s):// URL"}}),
    [](const auto& info) { return info.param.name; });
// clang-format on

// Close relatives of the refused specs that must be accepted, so no rule is broader than its
// message says.
class ValidSpecTest : public CrdsTest, public ::testing::WithParamInterface<SpecCase> {};

TEST_P(ValidSpecTest, IsAccepted) {
  cluster().EnsureNamespace("crds-valid");
  const Json candidate = Candidate(GetParam());
  auto result = cluster().Kubectl({"create", "--dry-run=server", "--validate=strict", "-n",
                                   "crds-valid", "-f", cluster().WriteManifest(candidate)});
  EXPECT_TRUE(result.status.success()) << result.output << "\n" << candidate.dump(2);
}

// clang-format off
INSTANTIATE_TEST_SUITE_P(
    Both, ValidSpecTest,
    ::testing::Values(
        SpecCase{"BaseModelDeployment", false,
                 "{}",
                 {}},
        SpecCase{"BaseFeatureView", true,
                 "{}",
                 {}},
        SpecCase{"TlsFromASecret", false,
                 R"({"spec": {"tls": {"secretName": "fraud-tls"}}})",
                 {}},
        SpecCase{"FeaturesReferenced", false,
                 R"({"spec": {"features": [{"name": "card-features", "features": ["velocity_last_24h"]}, {"name": "merchant-features"}]}})",
                 {}},
        SpecCase{"TwoStepsWithoutPause", false,
                 R"({"spec": {"rollout": {"canary": {"steps": [{"weight": 1}, {"weight": 100}]}}}})",
                 {}},
        SpecCase{"SingleStep", false,
                 R"({"spec": {"rollout": {"canary": {"steps": [{"weight": 100, "pause": "1h30m"}]}}}})",
                 {}},
        SpecCase{"HttpsUri", false,
                 R"({"spec": {"model": {"uri": "https://models.example.com/fraud/1/fraud.ubj", "format": "xgboost-ubj", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}})",
                 {}},
        SpecCase{"S3WithEndpointAndCredentials", false,
                 R"({"spec": {"model": {"uri": "s3://ml-models/fraud/v3/fraud.ubj", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "credentials": {"secretRef": {"name": "minio"}}, "s3": {"endpoint": "http://minio.storage.svc:9000", "region": "us-east-1", "addressingStyle": "path"}}}})",
                 {}},
        SpecCase{"MlflowAliasFollowed", false,
                 R"({"spec": {"model": {"uri": "models:/fraud@champion", "format": "auto", "credentials": {"secretRef": {"name": "mlflow"}}, "s3": {"endpoint": "https://storage.googleapis.com"}, "registry": {"trackingUri": "https://mlflow.example.com/prefix", "follow": true, "pollInterval": "5s"}}}})",
                 {}},
        SpecCase{"MlflowPinnedVersionWithSha", false,
                 R"({"spec": {"model": {"uri": "models:/fraud/12", "version": "v12", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}})",
                 {}},
        SpecCase{"MlflowStage", false,
                 R"({"spec": {"model": {"uri": "models:/fraud-model.v2/Production", "registry": {"follow": false}}}})",
                 {}},
        SpecCase{"ZeroReplicas", false,
                 R"({"spec": {"replicas": 0}})",
                 {}},
        SpecCase{"RollingSurgeZeroUnavailableOne", false,
                 R"({"spec": {"rollout": {"strategy": "Rolling", "rolling": {"maxSurge": 0, "maxUnavailable": 1}}}})",
                 {}},
        SpecCase{"RollingPercents", false,
                 R"({"spec": {"rollout": {"strategy": "Rolling", "rolling": {"maxSurge": "100%", "maxUnavailable": "0%"}}}})",
                 {}},
        SpecCase{"PromqlMetricWithBothBounds", false,
                 R"j({"spec": {"rollout": {"canary": {"analysis": {"prometheus": {"address": "http://prometheus.monitoring:9090"}, "metrics": [{"name": "auc-drop", "query": "sum(rate(x{revision=\"{{revision}}\"}[{{interval}}]))", "thresholdRange": {"min": 0, "max": 0.2}}]}}}}})j",
                 {}},
        SpecCase{"EqualBoundsAndFullErrorRate", false,
                 R"({"spec": {"rollout": {"canary": {"analysis": {"metrics": [{"name": "e", "builtin": "errorRate", "thresholdRange": {"min": 0, "max": 1}}, {"name": "p", "builtin": "latencyP99", "thresholdRange": {"min": 0.1, "max": 0.1}}]}}}}})",
                 {}},
        SpecCase{"RuntimeInFull", false,
                 R"({"spec": {"runtime": {"image": "ghcr.io/sluice/sluice:0.1.0", "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": 2, "memory": "512Mi"}}, "batching": {"maxBatchSize": 8, "maxQueueDelay": "500us", "maxQueueSize": 8}, "cache": {"enabled": false, "capacity": 1, "ttl": "1s"}, "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}], "args": ["--log-format=json"]}}})",
                 {}},
        SpecCase{"NameOf52Characters", false,
                 R"({"metadata": {"name": "a-model-deployment-name-that-is-just-short-enough-ok"}})",
                 {}},
        SpecCase{"TypedDefaults", true,
                 R"({"spec": {"features": [{"name": "i32", "type": "INT32", "default": "-2147483648"}, {"name": "i64", "type": "INT64", "default": "9000000000000000000"}, {"name": "f", "type": "FLOAT", "default": "-1.5e3"}, {"name": "d", "type": "DOUBLE", "default": ".25"}, {"name": "b", "type": "BOOL", "default": "false"}, {"name": "y", "type": "BYTES", "default": "AAE="}, {"name": "s", "type": "STRING", "default": "unknown"}, {"name": "t", "type": "UNIX_TIMESTAMP", "default": "0"}, {"name": "nodefault", "type": "DOUBLE"}]}})",
                 {}},
        SpecCase{"TwoEntitiesDefaultJoinKeys", true,
                 R"({"spec": {"entities": [{"name": "card", "valueType": "STRING"}, {"name": "merchant", "valueType": "INT64"}]}})",
                 {}},
        SpecCase{"RedisFromSecretIpv6AndCron", true,
                 R"({"spec": {"online": {"redis": {"address": null, "addressSecretRef": {"name": "redis", "key": "url"}, "db": 15, "keyTtl": "168h"}}, "ttl": "24h", "materialization": {"schedule": "0 */6 * * 1-5"}, "source": {"type": "file", "path": "https://features.example.com/card.csv"}}})",
                 {}},
        SpecCase{"SourceOverHttp", true,
                 R"({"spec": {"source": {"type": "csv", "path": "http://models.sluice-models.svc.cluster.local/features/merchant_features.csv"}}})",
                 {}},
        SpecCase{"RedisIpv6Address", true,
                 R"({"spec": {"online": {"redis": {"address": "[::1]:6379"}}}})",
                 {}}),
    [](const auto& info) { return info.param.name; });
// clang-format on

TEST_F(CrdsTest, ExplainDocumentsTheApi) {
  std::string explained;
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = cluster().Kubectl({"explain", "modeldeployment.spec.rollout"});
        explained = CollapseSpaces(r.output);
        return r.status.success() && explained.find("progressDeadline") != std::string::npos;
      },
      seconds(60)))
      << explained;
  for (const char* text : {"How a new revision replaces the stable one", "strategy",
                           "Canary: the new revision takes "
                           "traffic in the steps of rollout.canary",
                           "canary", "rolling", "progressDeadline",
                           "How long the previous stable revision keeps its pods"}) {
    EXPECT_NE(explained.find(text), std::string::npos) << text << " in\n" << explained;
  }

  auto recursive = cluster().Kubectl({"explain", "modeldeployment.spec.rollout", "--recursive"});
  ASSERT_TRUE(recursive.status.success()) << recursive.output;
  for (const char* field : {"steps", "weight", "pause", "analysis", "failureThreshold",
                            "noDataPolicy", "thresholdRange", "maxSurge", "maxUnavailable"}) {
    EXPECT_NE(recursive.output.find(field), std::string::npos) << field;
  }

  // The spec's description is where the control annotations are documented.
  auto spec = cluster().Kubectl({"explain", "md.spec"});
  ASSERT_TRUE(spec.status.success()) << spec.output;
  for (const char* annotation :
       {"sluice.dev/pause", "sluice.dev/promote", "sluice.dev/abort", "sluice.dev/retry"}) {
    EXPECT_NE(spec.output.find(annotation), std::string::npos) << annotation;
  }

  auto fv = cluster().Kubectl({"explain", "featureview.spec.features.default"});
  ASSERT_TRUE(fv.status.success()) << fv.output;
  EXPECT_NE(CollapseSpaces(fv.output).find("The value served when the feature is missing"),
            std::string::npos)
      << fv.output;
}

// The status an operator writes mid-rollout.
const char* kProgressingStatus = R"({"status": {
  "observedGeneration": 1, "phase": "Progressing",
  "stableRevision": "fraud-7d9f8c6b5a", "canaryRevision": "fraud-5c4b3a2918", "canaryWeight": 10,
  "revisions": [
    {"name": "fraud-7d9f8c6b5a", "modelVersion": "1", "replicas": 2, "readyReplicas": 2},
    {"name": "fraud-5c4b3a2918", "modelVersion": "2", "replicas": 1, "readyReplicas": 1}],
  "traffic": [{"revision": "fraud-7d9f8c6b5a", "weight": 90},
              {"revision": "fraud-5c4b3a2918", "weight": 10}],
  "currentStep": 0, "currentStepStartTime": "2025-01-01T00:00:00Z",
  "lastAnalysis": {"time": "2025-01-01T00:00:05Z", "verdict": "Pass",
                   "values": {"error-rate": 0.002, "latency-p99": 0.012}, "requests": 412,
                   "consecutiveFailures": 0, "message": "all metrics within range"},
  "replicas": 3, "readyReplicas": 3, "selector": "sluice.dev/model-deployment=fraud",
  "conditions": [{"type": "Progressing", "status": "True", "observedGeneration": 1,
                  "lastTransitionTime": "2025-01-01T00:00:00Z", "reason": "CanaryStep",
                  "message": "step 1 of 3: 10% to fraud-5c4b3a2918"}]
}})";

std::vector<std::string> Fields(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> fields;
  for (std::string field; in >> field;) fields.push_back(field);
  return fields;
}

TEST_F(CrdsTest, GetShowsThePrinterColumns) {
  const std::string ns = TestNamespace();
  auto applied = cluster().Kubectl({"apply", "-n", ns, "-f", Sample("fraud-modeldeployment.yaml")});
  ASSERT_TRUE(applied.status.success()) << applied.output;
  auto patched = cluster().Kubectl({"patch", "md", "fraud", "-n", ns, "--subresource=status",
                                    "--type=merge", "-p", kProgressingStatus});
  ASSERT_TRUE(patched.status.success()) << patched.output;

  auto table = cluster().Kubectl({"get", "md", "fraud", "-n", ns});
  ASSERT_TRUE(table.status.success()) << table.output;
  std::istringstream lines(table.output);
  std::string header, row;
  std::getline(lines, header);
  std::getline(lines, row);
  EXPECT_EQ(Fields(header), (std::vector<std::string>{"NAME", "PHASE", "STABLE", "CANARY", "WEIGHT",
                                                      "READY", "AGE"}))
      << table.output;
  std::vector<std::string> cells = Fields(row);
  ASSERT_EQ(cells.size(), 7u) << table.output;
  EXPECT_EQ(std::vector<std::string>(cells.begin(), cells.begin() + 6),
            (std::vector<std::string>{"fraud", "Progressing", "fraud-7d9f8c6b5a",
                                      "fraud-5c4b3a2918", "10", "3"}))
      << table.output;

  auto wide = cluster().Kubectl({"get", "md", "fraud", "-n", ns, "-o", "wide"});
  ASSERT_TRUE(wide.status.success()) << wide.output;
  std::istringstream wide_lines(wide.output);
  std::getline(wide_lines, header);
  EXPECT_EQ(Fields(header),
            (std::vector<std::string>{"NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "READY", "AGE",
                                      "VERSION", "REGISTRY", "STEP", "REPLICAS"}))
      << wide.output;

  // The status is stored as written, so the operator and the router can round-trip it.
  const Json status = cluster().GetJson({"md", "fraud", "-n", ns})["status"];
  EXPECT_EQ(status["lastAnalysis"]["values"]["error-rate"], 0.002);
  EXPECT_EQ(status["traffic"][1]["weight"], 10);
  EXPECT_EQ(status["conditions"][0]["reason"], "CanaryStep");

  // A status the schema does not allow is refused on the status subresource too.
  auto bad = cluster().Kubectl({"patch", "md", "fraud", "-n", ns, "--subresource=status",
                                "--type=merge", "-p", R"({"status": {"phase": "Exploded"}})"});
  EXPECT_FALSE(bad.status.success());
  EXPECT_NE(bad.output.find(At("status.phase") + "Unsupported value"), std::string::npos)
      << bad.output;

  // FeatureView columns.
  applied = cluster().Kubectl({"apply", "-n", ns, "-f", Sample("fraud-featureviews.yaml")});
  ASSERT_TRUE(applied.status.success()) << applied.output;
  patched = cluster().Kubectl({"patch", "fv", "card-features", "-n", ns, "--subresource=status",
                               "--type=merge", "-p", R"({"status": {
      "observedGeneration": 1,
      "lastMaterialized": {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z",
                           "rows": 125000, "entitiesWritten": 5000,
                           "completionTime": "2025-01-02T00:01:10Z"},
      "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-02T00:01:10Z",
                      "reason": "Materialized", "message": "125000 rows"}]}})"});
  ASSERT_TRUE(patched.status.success()) << patched.output;
  table = cluster().Kubectl({"get", "fv", "card-features", "-n", ns});
  ASSERT_TRUE(table.status.success()) << table.output;
  std::istringstream fv_lines(table.output);
  std::getline(fv_lines, header);
  std::getline(fv_lines, row);
  EXPECT_EQ(Fields(header), (std::vector<std::string>{"NAME", "PROJECT", "TTL", "ROWS", "ENTITIES",
                                                      "MATERIALIZED", "READY", "AGE"}))
      << table.output;
  cells = Fields(row);
  ASSERT_GE(cells.size(), 7u) << table.output;
  EXPECT_EQ(std::vector<std::string>(cells.begin(), cells.begin() + 5),
            (std::vector<std::string>{"card-features", "fraud", "24h", "125000", "5000"}))
      << table.output;
  EXPECT_EQ(cells[6], "True") << table.output;
}

TEST_F(CrdsTest, ScaleWorksThroughTheScaleSubresource) {
  const std::string ns = TestNamespace();
  auto applied = cluster().Kubectl({"apply", "-n", ns, "-f", Sample("rolling-modeldeployment.yaml"),
                                    "-f", Sample("autoscaled-modeldeployment.yaml")});
  ASSERT_TRUE(applied.status.success()) << applied.output;
  auto patched = cluster().Kubectl({"patch", "md", "fraud-rolling", "-n", ns,
                                    "--subresource=status", "--type=merge", "-p",
                                    R"({"status": {"replicas": 3, "readyReplicas": 3,
                                        "selector": "sluice.dev/model-deployment=fraud-rolling"}})"});
  ASSERT_TRUE(patched.status.success()) << patched.output;

  auto scaled = cluster().Kubectl({"scale", "md", "fraud-rolling", "-n", ns, "--replicas=5"});
  ASSERT_TRUE(scaled.status.success()) << scaled.output;
  EXPECT_EQ(cluster().GetJson({"md", "fraud-rolling", "-n", ns})["spec"]["replicas"], 5);

  const Json scale = cluster().GetJson({"md", "fraud-rolling", "-n", ns, "--subresource=scale"});
  EXPECT_EQ(scale["kind"], "Scale");
  EXPECT_EQ(scale["spec"]["replicas"], 5);
  EXPECT_EQ(scale["status"]["replicas"], 3);
  EXPECT_EQ(scale["status"]["selector"], "sluice.dev/model-deployment=fraud-rolling");

  // --current-replicas is a precondition checked against the scale subresource.
  auto stale = cluster().Kubectl(
      {"scale", "md", "fraud-rolling", "-n", ns, "--current-replicas=3", "--replicas=1"});
  EXPECT_FALSE(stale.status.success()) << stale.output;
  EXPECT_EQ(cluster().GetJson({"md", "fraud-rolling", "-n", ns})["spec"]["replicas"], 5);

  // An autoscaled ModelDeployment is sized by its autoscaler; scaling it by hand is refused
  // with the rule that says why, not silently overridden.
  auto refused = cluster().Kubectl({"scale", "md", "fraud-autoscaled", "-n", ns, "--replicas=3"});
  EXPECT_FALSE(refused.status.success()) << refused.output;
  EXPECT_NE(refused.output.find("mutually exclusive"), std::string::npos) << refused.output;
  EXPECT_FALSE(
      cluster().GetJson({"md", "fraud-autoscaled", "-n", ns})["spec"].contains("replicas"));
}

TEST_F(CrdsTest, CategoryListsBothKinds) {
  const std::string ns = TestNamespace();
  auto applied = cluster().Kubectl({"apply", "-n", ns, "-f", Sample("fraud-featureviews.yaml"),
                                    "-f", Sample("rolling-modeldeployment.yaml")});
  ASSERT_TRUE(applied.status.success()) << applied.output;
  auto all = cluster().Kubectl({"get", "sluice", "-n", ns, "-o", "name"});
  ASSERT_TRUE(all.status.success()) << all.output;
  EXPECT_NE(all.output.find("modeldeployment.sluice.dev/fraud-rolling"), std::string::npos)
      << all.output;
  EXPECT_NE(all.output.find("featureview.sluice.dev/merchant-features"), std::string::npos)
      << all.output;
}

}  // namespace
}  // namespace sluice
