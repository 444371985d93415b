// models:/ resolution against a real MLflow 3.17 tracking server (tests/support/mlflow_server.h)
// with real models logged by the MLflow client (tests/support/mlflow_register.py): versions,
// aliases (and moving one), stages, the not-found paths, and the whole way to a prediction: the
// resolved folder is fetched over MLflow's artifact proxy, its MLmodel parsed, the model file
// loaded by sluice-server's runtime, and its prediction compared with the Python model's; and a
// server that leaves artifacts for clients to read directly (file://).
// It also measures the server's start and the p50 of a resolve (printed, and recorded as test
// properties).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "controllers/registry/model_registry.h"
#include "dataplane/runtime/mlflow_model.h"
#include "dataplane/runtime/model_loader.h"
#include "dataplane/runtime/model_source.h"
#include "tests/support/mlflow_server.h"
#include "tests/support/process.h"

namespace sluice::controllers {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kSourceDir = SLUICE_SOURCE_DIR;
constexpr char kModel[] = "fraud";

class MlflowRegistryIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto python = testing::RegistryPython(kSourceDir);
    ASSERT_TRUE(python.ok()) << python.status();
    python_ = *python;
    testing::MlflowServerOptions options;
    options.python = python_;
    options.source_dir = kSourceDir;
    auto server = testing::MlflowServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    std::cout << "mlflow server started in " << server_->start_duration().count() << " ms\n";
    ::testing::Test::RecordProperty("mlflow_start_ms",
                                    static_cast<int>(server_->start_duration().count()));
    // Two versions; "moving" starts on 1 (the alias test moves it), version 2 in Production.
    auto reg = Register({"register", "--name", kModel, "--versions", "2", "--alias", "champion=1",
                         "--alias", "moving=1", "--stage", "2=Production"});
    ASSERT_TRUE(reg.ok()) << reg.status();
    registered_ = new json(std::move(*reg));
    std::cout << "registered: " << registered_->dump(2) << "\n";
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete registered_;
    registered_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(registered_, nullptr);
  }

  // Runs mlflow_register.py; its last output line is the JSON result.
  static Result<json> Register(std::vector<std::string> args) {
    std::vector<std::string> argv = {python_, kSourceDir + "/tests/support/mlflow_register.py",
                                     "--tracking-uri", server_->tracking_uri()};
    argv.insert(argv.end(), args.begin(), args.end());
    ASSIGN_OR_RETURN(testing::CommandResult r, testing::RunCommand(argv, 10min));
    if (!r.status.success()) return Internal("mlflow_register.py failed: " + r.output);
    std::string out = r.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    const size_t nl = out.rfind('\n');
    json doc = json::parse(out.substr(nl == std::string::npos ? 0 : nl + 1), nullptr, false);
    if (doc.is_discarded()) return Internal("mlflow_register.py printed no JSON: " + out);
    return doc;
  }

  static const json& VersionInfo(int v) { return (*registered_)["versions"][v - 1]; }

  // What the registry client must answer for version v: the download URI through the proxy.
  static std::string ExpectedSource(int v) {
    const std::string uri = VersionInfo(v)["download_uri"];
    const std::string prefix = "mlflow-artifacts:";
    EXPECT_EQ(uri.rfind(prefix, 0), 0u) << uri;
    return server_->tracking_uri() + "/api/2.0/mlflow-artifacts/artifacts" +
           uri.substr(prefix.size());
  }

  Result<ResolvedModel> Resolve(const std::string& uri) {
    ASSIGN_OR_RETURN(RegistryModelRef ref, ParseModelsUri(uri));
    RegistryAccess access;
    access.tracking_uri = server_->tracking_uri();
    access.timeout = 10s;
    return registry_->Resolve(ref, access);
  }

  static std::string python_;
  static testing::MlflowServer* server_;
  static json* registered_;
  std::unique_ptr<ModelRegistry> registry_ = NewMlflowRegistry();
};

std::string MlflowRegistryIntegrationTest::python_;
testing::MlflowServer* MlflowRegistryIntegrationTest::server_ = nullptr;
json* MlflowRegistryIntegrationTest::registered_ = nullptr;

TEST_F(MlflowRegistryIntegrationTest, ResolvesAPinnedVersion) {
  for (int v : {1, 2}) {
    auto got = Resolve("models:/fraud/" + std::to_string(v));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->version, std::to_string(v));
    EXPECT_EQ(got->run_id, VersionInfo(v)["run_id"]);
    EXPECT_EQ(got->source_uri, ExpectedSource(v));
  }
  EXPECT_NE(ExpectedSource(1), ExpectedSource(2));
}

TEST_F(MlflowRegistryIntegrationTest, ResolvesAnAliasAndFollowsItWhenItMoves) {
  auto before = Resolve("models:/fraud@moving");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->version, "1");
  EXPECT_EQ(before->source_uri, ExpectedSource(1));

  auto moved = Register({"set-alias", "--name", kModel, "--alias", "moving", "--version", "2"});
  ASSERT_TRUE(moved.ok()) << moved.status();
  auto after = Resolve("models:/fraud@moving");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version, "2");
  EXPECT_EQ(after->source_uri, ExpectedSource(2));
}

TEST_F(MlflowRegistryIntegrationTest, ResolvesAStageAndLatest) {
  auto prod = Resolve("models:/fraud/Production");
  ASSERT_TRUE(prod.ok()) << prod.status();
  EXPECT_EQ(prod->version, "2");
  EXPECT_EQ(prod->source_uri, ExpectedSource(2));
  auto lower = Resolve("models:/fraud/production");
  ASSERT_TRUE(lower.ok()) << lower.status();
  EXPECT_EQ(lower->version, "2");
  auto latest = Resolve("models:/fraud/latest");
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->version, "2");

  auto staging = Resolve("models:/fraud/Staging");
  ASSERT_FALSE(staging.ok());
  EXPECT_EQ(staging.status().code(), StatusCode::kNotFound) << staging.status();
  EXPECT_NE(staging.status().message().find("Staging"), std::string::npos) << staging.status();
}

TEST_F(MlflowRegistryIntegrationTest, AnAliasThatDoesNotExistIsNotFoundNamingIt) {
  auto got = Resolve("models:/fraud@no-such-alias");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound) << got.status();
  EXPECT_NE(got.status().message().find("\"fraud\""), std::string::npos) << got.status();
  EXPECT_NE(got.status().message().find("\"no-such-alias\""), std::string::npos) << got.status();
}

TEST_F(MlflowRegistryIntegrationTest, AnUnknownModelOrVersionIsNotFound) {
  for (const std::string uri : {"models:/ghost/1", "models:/ghost@champion",
                                "models:/ghost/Production", "models:/ghost/latest"}) {
    SCOPED_TRACE(uri);
    auto got = Resolve(uri);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), StatusCode::kNotFound) << got.status();
    EXPECT_NE(got.status().message().find("\"ghost\""), std::string::npos) << got.status();
  }
  auto version = Resolve("models:/fraud/99");
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.status().code(), StatusCode::kNotFound) << version.status();
  EXPECT_NE(version.status().message().find("version 99"), std::string::npos) << version.status();
}

TEST_F(MlflowRegistryIntegrationTest, AClosedPortIsUnavailableWithinTheTimeout) {
  auto port = testing::PickFreePort();  // released: nothing listens there
  ASSERT_TRUE(port.ok());
  auto ref = ParseModelsUri("models:/fraud@champion");
  ASSERT_TRUE(ref.ok());
  RegistryAccess access;
  access.tracking_uri = "http://127.0.0.1:" + std::to_string(*port);
  access.timeout = 2s;
  const auto start = std::chrono::steady_clock::now();
  auto got = registry_->Resolve(*ref, access);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status();
  EXPECT_NE(got.status().message().find(access.tracking_uri), std::string::npos) << got.status();
}

// The whole way from models:/ to a prediction, as the operator and sluice-server will do it.
TEST_F(MlflowRegistryIntegrationTest, TheResolvedFolderLoadsAndPredictsLikeThePythonModel) {
  for (const std::string uri : {"models:/fraud@champion", "models:/fraud/Production"}) {
    SCOPED_TRACE(uri);
    auto resolved = Resolve(uri);
    ASSERT_TRUE(resolved.ok()) << resolved.status();
    const json& info = VersionInfo(std::stoi(resolved->version));

    dataplane::FetchOptions fetch;
    fetch.timeout = 30s;
    auto mlmodel = dataplane::FetchUri(resolved->source_uri + "/MLmodel", fetch);
    ASSERT_TRUE(mlmodel.ok()) << mlmodel.status();
    auto file = dataplane::ParseMlflowModel(*mlmodel);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ(file->data, "model.json");
    EXPECT_EQ(file->format, "xgboost-json");

    dataplane::ModelSource source;
    source.uri = dataplane::MlflowModelFileUri(resolved->source_uri, file->data);
    source.format = file->format;
    dataplane::LoadOptions load;
    load.name = kModel;
    load.version = resolved->version;
    load.fetch = fetch;
    auto runtime = dataplane::LoadModel(source, load);
    ASSERT_TRUE(runtime.ok()) << runtime.status();
    ASSERT_EQ((*runtime)->num_features(), 10u);
    ASSERT_EQ((*runtime)->num_outputs(), 1u);
    std::vector<float> row;
    for (const auto& v : info["row"]) row.push_back(v.get<float>());
    std::vector<float> out(1);
    ASSERT_TRUE((*runtime)->Predict(row, 1, out).ok());
    EXPECT_NEAR(out[0], info["prediction"].get<double>(), 1e-5) << "version " << resolved->version;
  }
  // The two versions are different models, so the comparison above can tell them apart.
  EXPECT_GT(std::abs(VersionInfo(1)["prediction"].get<double>() -
                     VersionInfo(2)["prediction"].get<double>()),
            1e-3);
}

TEST_F(MlflowRegistryIntegrationTest, MeasureResolveLatency) {
  // Warm-up, then 50 resolves of an alias: alias -> version -> download URI (two requests).
  ASSERT_TRUE(Resolve("models:/fraud@champion").ok());
  std::vector<double> ms;
  for (int i = 0; i < 50; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto got = Resolve("models:/fraud@champion");
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
    ASSERT_TRUE(got.ok()) << got.status();
  }
  std::sort(ms.begin(), ms.end());
  std::cout << "resolve alias: p50 " << ms[25] << " ms, p90 " << ms[45] << " ms, max " << ms[49]
            << " ms (50 resolves)\n";
  RecordProperty("resolve_p50_us", static_cast<int>(ms[25] * 1000));
}

// A server that does not proxy artifacts (--no-serve-artifacts, a local artifact root): clients
// read the store directly, so the resolved URI is the store's own (file://), and it loads.
TEST(MlflowRegistryDirectStoreTest, ResolvesToTheStoresOwnUriAndLoads) {
  auto python = testing::RegistryPython(kSourceDir);
  ASSERT_TRUE(python.ok()) << python.status();
  testing::MlflowServerOptions options;
  options.python = *python;
  options.source_dir = kSourceDir;
  options.serve_artifacts = false;
  auto server = testing::MlflowServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto run = testing::RunCommand(
      {*python, kSourceDir + "/tests/support/mlflow_register.py", "--tracking-uri",
       (*server)->tracking_uri(), "register", "--name", "direct", "--alias", "live=1"},
      10min);
  ASSERT_TRUE(run.ok() && run->status.success()) << (run.ok() ? run->output : "");
  std::string out = run->output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const json info = json::parse(out.substr(out.rfind('\n') + 1))["versions"][0];
  std::cout << "direct store: source " << info["source"] << ", download_uri "
            << info["download_uri"] << "\n";

  RegistryAccess access;
  access.tracking_uri = (*server)->tracking_uri();
  auto ref = ParseModelsUri("models:/direct@live");
  ASSERT_TRUE(ref.ok());
  auto got = NewMlflowRegistry()->Resolve(*ref, access);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->version, "1");
  const std::string root = (*server)->dir() + "/artifacts/";
  EXPECT_EQ(got->source_uri.rfind("file://" + root, 0), 0u) << got->source_uri;

  dataplane::ModelSource source;
  source.uri = dataplane::MlflowModelFileUri(got->source_uri, "model.json");
  source.format = "xgboost-json";
  auto runtime = dataplane::LoadModel(source, {});
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  std::vector<float> row;
  for (const auto& v : info["row"]) row.push_back(v.get<float>());
  std::vector<float> prediction(1);
  ASSERT_TRUE((*runtime)->Predict(row, 1, prediction).ok());
  EXPECT_NEAR(prediction[0], info["prediction"].get<double>(), 1e-5);
}

}  // namespace
}  // namespace sluice::controllers
