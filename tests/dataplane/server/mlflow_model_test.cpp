// The real sluice-server binary on models registered in a real MLflow tracking server
// (tests/support/mlflow_server.h, logged by the MLflow client: tests/support/mlflow_register.py
// register-file), resolved by the operator's registry client (controllers/registry) to the
// version's folder and started as the operator starts it: --model-format=mlflow
// --model-uri=<folder> --model-dir=<emptyDir>.
//   - MLflow proxying artifacts (mlflow-artifacts:/, fetched over the tracking server's HTTP
//     proxy) and MLflow storing them in a real S3 (moto with SigV4 checking, fetched directly):
//     the server predicts like the fraud model loaded from its file, and serves the registry
//     version it was given; a restart on the same --model-dir fetches nothing.
//   - The tracking token goes to fetches under --mlflow-tracking-uri only (a scripted loopback
//     server records the headers).
//   - A folder without an xgboost flavor, without an MLmodel, or a wrong S3 secret stop the start
//     with a log line naming the cause.
//   - Fetch + load until ready is measured (median of 3 starts, each with a fresh --model-dir).

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "controllers/registry/model_registry.h"
#include "dataplane/runtime/model_loader.h"
#include "dataplane/runtime/reference.h"
#include "dataplane/server/v2_codec.h"
#include "lib/api/metric_names.h"
#include "tests/controllers/registry/scripted_http_server.h"
#include "tests/dataplane/server/server_process.h"
#include "tests/lib/http/http_test_client.h"
#include "tests/support/mlflow_server.h"
#include "tests/support/process.h"
#include "tests/support/s3_server.h"

namespace sluice::dataplane {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using sluice::testing::HttpTestClient;
using sluice::testing::ServerProcess;

const std::string kSourceDir = SLUICE_SOURCE_DIR;
const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;
const std::string kMlflowTestdata = kSourceDir + "/tests/dataplane/runtime/testdata/mlflow";
constexpr char kBucket[] = "models";
constexpr char kMlflowBucket[] = "mlflow";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The value of `metric{model="fraud",version="<version>"}` in the exposition, or -1.
double Gauge(const std::string& text, const std::string& metric, const std::string& version) {
  std::smatch m;
  const std::regex re(metric + R"(\{model="fraud",version=")" + version + R"("\} ([0-9.e+-]+))");
  if (!std::regex_search(text, m, re)) return -1;
  return std::stod(m[1]);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The fraud model loaded straight from its file: what every server below must answer.
const Runtime& DirectModel() {
  static const std::unique_ptr<Runtime> model = [] {
    ModelSource source{kModelDir + "/fraud.json", "xgboost-json", "", ""};
    auto m = LoadModel(source, LoadOptions{});
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? std::move(m).value() : nullptr;
  }();
  return *model;
}

std::vector<float> DirectPredictions(const std::vector<float>& rows) {
  const Runtime& model = DirectModel();
  const size_t n = rows.size() / model.num_features();
  std::vector<float> out(n * model.num_outputs());
  EXPECT_TRUE(model.Predict(rows, n, out).ok());
  return out;
}

// The sample request (JSON) and every fraud reference row (binary) against the file's own
// predictions, and against the trainer's within the reference tolerance; each answer names
// `version`.
void ExpectPredictsLikeTheFile(uint16_t port, const std::string& version) {
  HttpTestClient c(port);
  const json sample_request = json::parse(ReadFile(kModelDir + "/sample_request.json"));
  auto sample = c.Post("/v2/models/fraud/infer", sample_request.dump());
  ASSERT_TRUE(sample);
  ASSERT_EQ(sample->status, 200) << sample->body;
  const json answer = json::parse(sample->body);
  EXPECT_EQ(answer["model_version"], version) << sample->body;
  std::vector<float> rows;
  for (const auto& v : sample_request["inputs"][0]["data"]) rows.push_back(v.get<float>());
  const std::vector<float> want = DirectPredictions(rows);
  ASSERT_EQ(answer["outputs"][0]["data"].size(), want.size()) << sample->body;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_FLOAT_EQ(answer["outputs"][0]["data"][i].get<float>(), want[i]) << "sample row " << i;
  }

  auto ref = ParseReference(ReadFile(kModelDir + "/fraud.reference.json"));
  ASSERT_TRUE(ref.ok()) << ref.status();
  const std::string header = R"({"id":"ref","inputs":[{"name":"input-0","shape":[)" +
                             std::to_string(ref->num_rows) + "," +
                             std::to_string(ref->num_features) +
                             R"(],"datatype":"FP32","parameters":{"binary_data_size":)" +
                             std::to_string(ref->inputs.size() * 4) + "}}]}";
  std::string body = header;
  body.append(reinterpret_cast<const char*>(ref->inputs.data()), ref->inputs.size() * 4);
  auto r = c.Post("/v2/models/fraud/infer", body,
                  {{kInferenceHeaderContentLength, std::to_string(header.size())}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto res = ParseInferResponse(r->body, std::nullopt);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->model_version, version);
  const std::vector<float> direct = DirectPredictions(ref->inputs);
  ASSERT_EQ(res->outputs[0].bytes().size(), ref->num_rows * 4);
  ASSERT_EQ(direct.size(), ref->num_rows);
  for (size_t i = 0; i < ref->num_rows; ++i) {
    float got;
    std::memcpy(&got, res->outputs[0].bytes().data() + 4 * i, 4);
    ASSERT_FLOAT_EQ(got, direct[i]) << "reference row " << i;
    ASSERT_NEAR(got, ref->outputs[i], ref->tolerance) << "reference row " << i;
  }

  auto meta = c.Get("/v2/models/fraud");
  ASSERT_TRUE(meta);
  ASSERT_EQ(meta->status, 200) << meta->body;
  EXPECT_EQ(json::parse(meta->body)["versions"], json::array({version})) << meta->body;
}

// A registered version as the operator sees it.
struct Registered {
  std::string version;
  std::string folder;        // controllers/registry's source_uri: what --model-uri gets
  std::string download_uri;  // as MLflow reported it
};

class ServerMlflowModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto python = sluice::testing::RegistryPython(kSourceDir);
    ASSERT_TRUE(python.ok()) << python.status();
    python_ = new std::string(*python);

    auto s3 = sluice::testing::S3Server::Start();
    ASSERT_TRUE(s3.ok()) << s3.status();
    s3_ = s3->release();
    for (const char* bucket : {kBucket, kMlflowBucket}) {
      Status st = s3_->CreateBucket(bucket);
      ASSERT_TRUE(st.ok()) << st;
    }
    // Folders put there by hand, for the error paths: MLmodel files the real MLflow wrote.
    for (const auto& [key, path] : std::vector<std::pair<std::string, std::string>>{
             {"sklearn/MLmodel", kMlflowTestdata + "/sklearn.MLmodel"},
             {"plain/MLmodel", kMlflowTestdata + "/xgboost_json.MLmodel"},
             {"plain/model.json", kModelDir + "/fraud.json"}}) {
      Status st = s3_->PutFile(kBucket, key, path);
      ASSERT_TRUE(st.ok()) << st;
    }

    // Servers are started from this thread (their children die with the thread that spawned
    // them); the registrations, which end, run side by side.
    sluice::testing::MlflowServerOptions proxy;
    proxy.python = *python_;
    proxy.source_dir = kSourceDir;
    auto p = sluice::testing::MlflowServer::Start(proxy);
    ASSERT_TRUE(p.ok()) << p.status();
    proxy_ = p->release();
    std::cout << "mlflow (artifact proxy) started in " << proxy_->start_duration().count()
              << " ms\n";

    sluice::testing::MlflowServerOptions direct = proxy;
    direct.artifacts_destination = std::string("s3://") + kMlflowBucket + "/mlflow";
    direct.serve_artifacts = false;
    direct.env = S3ClientEnv();
    auto d = sluice::testing::MlflowServer::Start(direct);
    if (d.ok()) {
      s3_mlflow_ = d->release();
      std::cout << "mlflow (artifacts in s3) started in " << s3_mlflow_->start_duration().count()
                << " ms\n";
    } else {
      s3_mlflow_error_ = new Status(d.status());
    }

    // Two versions through the proxy, so the served version cannot be a default "1".
    Status proxy_status = Status::Ok(), s3_status = Status::Ok();
    std::thread proxied([&] {
      auto v1 = RegisterFile(*proxy_, {}, "");
      if (!v1.ok()) {
        proxy_status = v1.status();
        return;
      }
      auto v2 = RegisterFile(*proxy_, {}, "champion");
      if (!v2.ok()) {
        proxy_status = v2.status();
        return;
      }
      auto r = Resolve(*proxy_, "models:/fraud@champion", *v2);
      if (r.ok()) proxy_model_ = new Registered(*r);
      proxy_status = r.status();
    });
    if (s3_mlflow_ != nullptr) {
      auto v1 = RegisterFile(*s3_mlflow_, S3ClientEnv(), "champion");
      Result<Registered> r = v1.status();
      if (v1.ok()) r = Resolve(*s3_mlflow_, "models:/fraud@champion", *v1);
      if (r.ok()) {
        s3_model_ = new Registered(*r);
      } else {
        s3_mlflow_error_ = new Status(r.status());
      }
    }
    proxied.join();
    ASSERT_TRUE(proxy_status.ok()) << proxy_status;
    std::cout << "proxy: version " << proxy_model_->version << ", download_uri "
              << proxy_model_->download_uri << ", folder " << proxy_model_->folder << "\n";
    if (s3_model_ != nullptr) {
      std::cout << "s3: version " << s3_model_->version << ", download_uri "
                << s3_model_->download_uri << ", folder " << s3_model_->folder << "\n";
    }
  }

  static void TearDownTestSuite() {
    delete proxy_model_;
    delete s3_model_;
    delete s3_mlflow_error_;
    delete proxy_;
    delete s3_mlflow_;
    delete s3_;
    delete python_;
    proxy_model_ = s3_model_ = nullptr;
    s3_mlflow_error_ = nullptr;
    proxy_ = s3_mlflow_ = nullptr;
    s3_ = nullptr;
    python_ = nullptr;
  }

  void SetUp() override { ASSERT_NE(proxy_model_, nullptr); }

  void TearDown() override {
    for (const auto& d : dirs_) fs::remove_all(d);
  }

  // What MLflow's S3 artifact store (boto3) and sluice-server need to reach moto.
  static std::vector<std::string> S3ClientEnv(const std::string& secret = "") {
    return {"MLFLOW_S3_ENDPOINT_URL=" + s3_->endpoint(),
            "AWS_ACCESS_KEY_ID=" + s3_->access_key(),
            "AWS_SECRET_ACCESS_KEY=" + (secret.empty() ? s3_->secret_key() : secret),
            "AWS_SESSION_TOKEN=",
            "AWS_WEB_IDENTITY_TOKEN_FILE=",
            "AWS_REGION=us-east-1",
            "AWS_DEFAULT_REGION=us-east-1",
            "NO_PROXY=127.0.0.1,localhost",
            "no_proxy=127.0.0.1,localhost"};
  }

  // `mlflow_register.py register-file` of the fraud model; the version MLflow gave it.
  struct Logged {
    std::string version, download_uri;
  };
  static Result<Logged> RegisterFile(const sluice::testing::MlflowServer& server,
                                     const std::vector<std::string>& env,
                                     const std::string& alias) {
    std::vector<std::string> argv = {*python_,
                                     kSourceDir + "/tests/support/mlflow_register.py",
                                     "--tracking-uri",
                                     server.tracking_uri(),
                                     "register-file",
                                     "--name",
                                     "fraud",
                                     "--file",
                                     kModelDir + "/fraud.json"};
    if (!alias.empty()) argv.insert(argv.end(), {"--alias", alias});
    ASSIGN_OR_RETURN(sluice::testing::CommandResult r,
                     sluice::testing::RunCommand(argv, 10min, env));
    if (!r.status.success()) return Internal("mlflow_register.py failed: " + r.output);
    std::string out = r.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    const size_t nl = out.rfind('\n');
    const json doc = json::parse(out.substr(nl == std::string::npos ? 0 : nl + 1), nullptr, false);
    if (doc.is_discarded() || !doc.contains("version")) {
      return Internal("mlflow_register.py printed no JSON: " + out);
    }
    return Logged{doc["version"], doc["download_uri"]};
  }

  // The operator's resolution of `uri`; it must name the version just logged.
  static Result<Registered> Resolve(const sluice::testing::MlflowServer& server,
                                    const std::string& uri, const Logged& logged) {
    ASSIGN_OR_RETURN(controllers::RegistryModelRef ref, controllers::ParseModelsUri(uri));
    controllers::RegistryAccess access;
    access.tracking_uri = server.tracking_uri();
    access.timeout = 30s;
    ASSIGN_OR_RETURN(controllers::ResolvedModel resolved,
                     controllers::NewMlflowRegistry()->Resolve(ref, access));
    if (resolved.version != logged.version) {
      return Internal(uri + " resolved to version " + resolved.version + ", registered " +
                      logged.version);
    }
    return Registered{resolved.version, resolved.source_uri, logged.download_uri};
  }

  std::string FreshDir() {
    const fs::path d =
        fs::temp_directory_path() /
        ("sluice-mlflow-model-" + std::to_string(::getpid()) + "-" + std::to_string(dirs_.size()));
    fs::remove_all(d);
    dirs_.push_back(d);
    return d.string();
  }

  // sluice-server as the operator starts it for a registry model.
  std::vector<std::string> Args(const std::string& folder, const std::string& version,
                                const std::vector<std::string>& extra = {},
                                std::string model_dir = "") {
    if (model_dir.empty()) model_dir = FreshDir();
    std::vector<std::string> args = {"--model-format=mlflow",    "--model-uri=" + folder,
                                     "--model-name=fraud",       "--model-version=" + version,
                                     "--model-dir=" + model_dir, "--io-threads=1",
                                     "--drain-grace-ms=0"};
    if (folder.starts_with("s3://")) args.push_back("--s3-endpoint=" + s3_->endpoint());
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // Starts until ready `runs` times, each with a fresh --model-dir; prints the medians.
  void Measure(const std::string& what, const Registered& model,
               const std::vector<std::string>& env) {
    std::vector<double> ready_ms, fetch_ms, load_ms;
    for (int i = 0; i < 3; ++i) {
      ServerProcess p;
      const auto start = std::chrono::steady_clock::now();
      ASSERT_TRUE(p.Start(SLUICE_SERVER_BIN, Args(model.folder, model.version), env)) << p.Log();
      ASSERT_TRUE(p.WaitReady()) << p.Log();
      ready_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
      auto metrics = HttpTestClient(p.port()).Get("/metrics");
      ASSERT_TRUE(metrics);
      fetch_ms.push_back(1e3 * Gauge(metrics->body, api::kServerModelFetchSeconds, model.version));
      load_ms.push_back(1e3 * Gauge(metrics->body, api::kServerModelLoadSeconds, model.version));
      EXPECT_GT(fetch_ms.back(), 0) << metrics->body;
      EXPECT_GT(load_ms.back(), 0) << metrics->body;
    }
    std::cout << what << ": process start to ready " << Median(ready_ms)
              << " ms (median of 3: " << ready_ms[0] << ", " << ready_ms[1] << ", " << ready_ms[2]
              << "); server gauges " << api::kServerModelFetchSeconds << " " << Median(fetch_ms)
              << " ms, " << api::kServerModelLoadSeconds << " " << Median(load_ms) << " ms\n";
    RecordProperty(what + "_ready_ms", static_cast<int>(Median(ready_ms)));
  }

  static inline std::string* python_ = nullptr;
  static inline sluice::testing::S3Server* s3_ = nullptr;
  static inline sluice::testing::MlflowServer* proxy_ = nullptr;
  static inline sluice::testing::MlflowServer* s3_mlflow_ = nullptr;
  static inline Status* s3_mlflow_error_ = nullptr;
  static inline Registered* proxy_model_ = nullptr;
  static inline Registered* s3_model_ = nullptr;
  std::vector<fs::path> dirs_;
};

TEST_F(ServerMlflowModelTest, ThroughTheArtifactProxyItServesTheRegisteredVersion) {
  EXPECT_TRUE(proxy_model_->download_uri.starts_with("mlflow-artifacts:/"))
      << proxy_model_->download_uri;
  EXPECT_TRUE(proxy_model_->folder.starts_with(proxy_->tracking_uri() +
                                               "/api/2.0/mlflow-artifacts/artifacts/"))
      << proxy_model_->folder;
  EXPECT_EQ(proxy_model_->version, "2");
  ServerProcess p;
  ASSERT_TRUE(p.Start(SLUICE_SERVER_BIN, Args(proxy_model_->folder, proxy_model_->version)))
      << p.Log();
  ASSERT_TRUE(p.WaitReady()) << p.Log();
  ExpectPredictsLikeTheFile(p.port(), proxy_model_->version);
  auto metrics = HttpTestClient(p.port()).Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(Gauge(metrics->body, api::kServerModelBytes, proxy_model_->version),
            static_cast<double>(ReadFile(kModelDir + "/fraud.json").size()))
      << metrics->body;
  EXPECT_NE(p.Log().find("loading model.json (format xgboost-json)"), std::string::npos) << p.Log();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(30s), 0) << p.Log();
}

TEST_F(ServerMlflowModelTest, FromArtifactsMlflowStoredInS3ItFetchesFromS3Directly) {
  ASSERT_NE(s3_model_, nullptr) << "MLflow with an s3:// artifact root: "
                                << (s3_mlflow_error_ ? s3_mlflow_error_->ToString() : "?");
  EXPECT_TRUE(
      s3_model_->download_uri.starts_with(std::string("s3://") + kMlflowBucket + "/mlflow/"))
      << s3_model_->download_uri;
  EXPECT_EQ(s3_model_->folder, s3_model_->download_uri);
  ServerProcess p;
  ASSERT_TRUE(
      p.Start(SLUICE_SERVER_BIN, Args(s3_model_->folder, s3_model_->version), S3ClientEnv()))
      << p.Log();
  ASSERT_TRUE(p.WaitReady()) << p.Log();
  ExpectPredictsLikeTheFile(p.port(), s3_model_->version);
  EXPECT_EQ(p.Log().find(s3_->secret_key()), std::string::npos) << p.Log();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(30s), 0) << p.Log();

  // A restart in the same pod (same --model-dir) fetches nothing, not even the MLmodel: with a
  // secret S3 refuses it still gets ready.
  const std::string dir = dirs_.back().string();
  ServerProcess again;
  ASSERT_TRUE(again.Start(SLUICE_SERVER_BIN, Args(s3_model_->folder, s3_model_->version, {}, dir),
                          S3ClientEnv("wrong-secret-so-any-fetch-would-fail")))
      << again.Log();
  ASSERT_TRUE(again.WaitReady()) << again.Log();
  EXPECT_NE(again.Log().find("MLmodel from an earlier start"), std::string::npos) << again.Log();
  EXPECT_NE(again.Log().find("nothing fetched"), std::string::npos) << again.Log();
  ExpectPredictsLikeTheFile(again.port(), s3_model_->version);
}

TEST_F(ServerMlflowModelTest, AFolderWithoutAnXgboostFlavorStopsTheStartNamingWhatItHas) {
  const std::string folder = std::string("s3://") + kBucket + "/sklearn";
  ServerProcess p;
  ASSERT_TRUE(p.Start(SLUICE_SERVER_BIN, Args(folder, "1"), S3ClientEnv())) << p.Log();
  EXPECT_EQ(p.Wait(60s), 1) << p.Log();
  EXPECT_NE(p.Log().find("no xgboost flavor (it has: python_function, sklearn)"), std::string::npos)
      << p.Log();
  EXPECT_NE(p.Log().find("cannot read the MLflow model at " + folder), std::string::npos)
      << p.Log();
}

TEST_F(ServerMlflowModelTest, AFolderWithoutAnMLmodelStopsTheStartNamingTheMissingFile) {
  const std::string folder =
      proxy_->tracking_uri() + "/api/2.0/mlflow-artifacts/artifacts/0/models/m-none/artifacts";
  ServerProcess p;
  ASSERT_TRUE(p.Start(SLUICE_SERVER_BIN, Args(folder, "1"))) << p.Log();
  EXPECT_EQ(p.Wait(60s), 1) << p.Log();
  EXPECT_NE(p.Log().find("fetching the MLmodel file"), std::string::npos) << p.Log();
  EXPECT_NE(p.Log().find("NotFound"), std::string::npos) << p.Log();
  EXPECT_NE(p.Log().find("HTTP 404"), std::string::npos) << p.Log();
  EXPECT_NE(p.Log().find(folder + "/MLmodel"), std::string::npos) << p.Log();
}

TEST_F(ServerMlflowModelTest, AWrongS3SecretStopsTheStartNamingTheS3Error) {
  const std::string folder = std::string("s3://") + kBucket + "/plain";
  // The folder itself is good: with the right secret the server gets ready.
  {
    ServerProcess good;
    ASSERT_TRUE(good.Start(SLUICE_SERVER_BIN, Args(folder, "1"), S3ClientEnv())) << good.Log();
    ASSERT_TRUE(good.WaitReady()) << good.Log();
  }
  ServerProcess p;
  ASSERT_TRUE(p.Start(SLUICE_SERVER_BIN, Args(folder, "1"), S3ClientEnv("wrong-secret")))
      << p.Log();
  EXPECT_EQ(p.Wait(60s), 1) << p.Log();
  EXPECT_NE(p.Log().find("SignatureDoesNotMatch"), std::string::npos) << p.Log();
  EXPECT_NE(p.Log().find("fetching the MLmodel file"), std::string::npos) << p.Log();
  EXPECT_NE(p.Log().find(folder + "/MLmodel"), std::string::npos) << p.Log();
  EXPECT_EQ(p.Log().find("wrong-secret"), std::string::npos) << p.Log();
}

TEST_F(ServerMlflowModelTest, MeasureFetchAndLoadUntilReady) {
  Measure("mlflow proxy", *proxy_model_, {});
  ASSERT_NE(s3_model_, nullptr) << "MLflow with an s3:// artifact root: "
                                << (s3_mlflow_error_ ? s3_mlflow_error_->ToString() : "?");
  Measure("mlflow s3", *s3_model_, S3ClientEnv());
}

// --mlflow-tracking-uri and MLFLOW_TRACKING_TOKEN: a loopback server holding an MLflow folder
// (the MLmodel MLflow wrote, the fraud model as model.json) records every request's headers.
TEST(ServerMlflowTokenTest, TheTokenGoesOnlyToFetchesUnderTheTrackingUri) {
  using controllers::testing::HttpReply;
  using controllers::testing::HttpRequest;
  const std::string mlmodel = ReadFile(kMlflowTestdata + "/xgboost_json.MLmodel");
  const std::string model = ReadFile(kModelDir + "/fraud.json");
  controllers::testing::ScriptedHttpServer http([&](const HttpRequest& r) {
    if (r.target == "/mlflow/m-1/artifacts/MLmodel") return HttpReply{200, mlmodel};
    if (r.target == "/mlflow/m-1/artifacts/model.json") return HttpReply{200, model};
    return HttpReply{404, "{}"};
  });
  const std::string folder = http.Url() + "/mlflow/m-1/artifacts";
  const std::string token = "tok-" + std::to_string(::getpid()) + "-secret";
  const std::string bearer = "Authorization: Bearer " + token + "\r\n";
  std::vector<fs::path> dirs;

  auto run = [&](const std::string& tracking_uri) -> std::vector<HttpRequest> {
    const size_t before = http.requests().size();
    const fs::path dir =
        fs::temp_directory_path() /
        ("sluice-mlflow-token-" + std::to_string(::getpid()) + "-" + std::to_string(dirs.size()));
    fs::remove_all(dir);
    dirs.push_back(dir);
    ServerProcess p;
    EXPECT_TRUE(
        p.Start(SLUICE_SERVER_BIN,
                {"--model-format=mlflow", "--model-uri=" + folder, "--model-name=fraud",
                 "--model-version=7", "--model-dir=" + dir.string(),
                 "--mlflow-tracking-uri=" + tracking_uri, "--io-threads=1", "--drain-grace-ms=0"},
                {"MLFLOW_TRACKING_TOKEN=" + token}))
        << p.Log();
    EXPECT_TRUE(p.WaitReady()) << p.Log();
    ExpectPredictsLikeTheFile(p.port(), "7");
    EXPECT_EQ(p.Log().find(token), std::string::npos) << p.Log();
    const auto all = http.requests();
    return std::vector<HttpRequest>(all.begin() + static_cast<long>(before), all.end());
  };
  auto targets = [](const std::vector<HttpRequest>& reqs) {
    std::vector<std::string> out;
    for (const auto& r : reqs) out.push_back(r.target);
    return out;
  };

  // Under the tracking URI (as the operator writes it, and with a trailing slash): both the
  // MLmodel and the model file carry the token.
  for (const std::string& tracking : {http.Url(), http.Url() + "/", http.Url() + "/mlflow"}) {
    SCOPED_TRACE("tracking " + tracking);
    const auto reqs = run(tracking);
    const auto t = targets(reqs);
    ASSERT_NE(std::find(t.begin(), t.end(), "/mlflow/m-1/artifacts/MLmodel"), t.end());
    ASSERT_NE(std::find(t.begin(), t.end(), "/mlflow/m-1/artifacts/model.json"), t.end());
    for (const auto& r : reqs) {
      EXPECT_NE(r.headers.find(bearer), std::string::npos) << r.target << "\n" << r.headers;
    }
  }

  // Not under it: another port whose digits begin the same (a plain prefix test would match),
  // another path, another host. No Authorization header at all.
  const std::string other_port = http.Url().substr(0, http.Url().size() - 1);
  for (const std::string& tracking :
       {other_port, http.Url() + "/mlflow-other", std::string("http://mlflow.invalid:5000")}) {
    SCOPED_TRACE("tracking " + tracking);
    const auto reqs = run(tracking);
    const auto t = targets(reqs);
    ASSERT_NE(std::find(t.begin(), t.end(), "/mlflow/m-1/artifacts/MLmodel"), t.end());
    ASSERT_NE(std::find(t.begin(), t.end(), "/mlflow/m-1/artifacts/model.json"), t.end());
    for (const auto& r : reqs) {
      EXPECT_EQ(r.headers.find("Authorization"), std::string::npos) << r.target << "\n"
                                                                    << r.headers;
    }
  }
  for (const auto& d : dirs) fs::remove_all(d);
}

}  // namespace
}  // namespace sluice::dataplane
