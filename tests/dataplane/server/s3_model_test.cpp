// The real sluice-server binary fetching the fraud model from a real S3-compatible server (moto
// with SigV4 checking on, tests/support/s3_server.h) into --model-dir: it serves the reference
// predictions, exports the fetch and load gauges, and a second start on the same directory
// reuses the file without fetching (it is started with a wrong secret key, so any request to S3
// would fail). A wrong digest keeps the server from starting and leaves no file.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "dataplane/runtime/model_source.h"
#include "dataplane/runtime/model_store.h"
#include "dataplane/runtime/reference.h"
#include "dataplane/server/v2_codec.h"
#include "lib/api/metric_names.h"
#include "tests/dataplane/server/server_process.h"
#include "tests/lib/http/http_test_client.h"
#include "tests/support/s3_server.h"

namespace sluice::dataplane {
namespace {

namespace fs = std::filesystem;
using sluice::testing::HttpTestClient;
using sluice::testing::ServerProcess;

const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;
const std::string kUri = "s3://models/fraud/v3/fraud.json";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The value of `metric{model="fraud",version="1"}` in the exposition, or -1.
double Gauge(const std::string& text, const std::string& metric) {
  std::smatch m;
  const std::regex re(metric + R"(\{model="fraud",version="1"\} ([0-9.e+-]+))");
  if (!std::regex_search(text, m, re)) return -1;
  return std::stod(m[1]);
}

class S3ModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto s = sluice::testing::S3Server::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = s->release();
    Status st = server_->CreateBucket("models");
    ASSERT_TRUE(st.ok()) << st;
    st = server_->PutFile("models", "fraud/v3/fraud.json", kModelDir + "/fraud.json");
    ASSERT_TRUE(st.ok()) << st;
    st = server_->PutFile("models", "fraud/v3/fraud.reference.json",
                          kModelDir + "/fraud.reference.json");
    ASSERT_TRUE(st.ok()) << st;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    dir_ = fs::temp_directory_path() /
           ("sluice-s3-model-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> Args(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"--model-uri",      kUri,
                                     "--model-name",     "fraud",
                                     "--s3-endpoint",    server_->endpoint(),
                                     "--model-dir",      dir_.string(),
                                     "--io-threads",     "1",
                                     "--drain-grace-ms", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::vector<std::string> Env(const std::string& secret) const {
    return {"AWS_ACCESS_KEY_ID=" + server_->access_key(), "AWS_SECRET_ACCESS_KEY=" + secret,
            "AWS_SESSION_TOKEN=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "AWS_REGION=us-east-1"};
  }
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    if (!fs::exists(dir_)) return out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  static inline sluice::testing::S3Server* server_ = nullptr;
  fs::path dir_;
};

// Every reference row in one binary request; the answers match the trainer's.
void ExpectReferencePredictions(uint16_t port) {
  auto ref = ParseReference(ReadFile(kModelDir + "/fraud.reference.json"));
  ASSERT_TRUE(ref.ok()) << ref.status();
  const std::string header = R"({"id":"ref","inputs":[{"name":"input-0","shape":[)" +
                             std::to_string(ref->num_rows) + "," +
                             std::to_string(ref->num_features) +
                             R"(],"datatype":"FP32","parameters":{"binary_data_size":)" +
                             std::to_string(ref->inputs.size() * 4) + "}}]}";
  std::string body = header;
  body.append(reinterpret_cast<const char*>(ref->inputs.data()), ref->inputs.size() * 4);
  HttpTestClient c(port);
  auto r = c.Post("/v2/models/fraud/infer", body,
                  {{kInferenceHeaderContentLength, std::to_string(header.size())}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto res = ParseInferResponse(r->body, std::nullopt);
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res->outputs[0].bytes().size(), ref->num_rows * 4);
  for (size_t i = 0; i < ref->num_rows; ++i) {
    float got;
    std::memcpy(&got, res->outputs[0].bytes().data() + 4 * i, 4);
    ASSERT_NEAR(got, ref->outputs[i], ref->tolerance) << "row " << i;
  }
}

TEST_F(S3ModelTest, FetchesOnceIntoTheModelDirAndReusesItOnRestart) {
  const std::string model = ReadFile(kModelDir + "/fraud.json");
  const std::string digest = "sha256:" + Sha256Hex(model);
  {
    ServerProcess p;
    ASSERT_TRUE(
        p.Start(SLUICE_SERVER_BIN, Args({"--model-sha256", digest}), Env(server_->secret_key())))
        << p.Log();
    ASSERT_TRUE(p.WaitReady()) << p.Log();
    ExpectReferencePredictions(p.port());
    HttpTestClient c(p.port());
    auto metrics = c.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(Gauge(metrics->body, api::kServerModelBytes), static_cast<double>(model.size()));
    EXPECT_GT(Gauge(metrics->body, api::kServerModelFetchSeconds), 0.0) << metrics->body;
    EXPECT_GT(Gauge(metrics->body, api::kServerModelLoadSeconds), 0.0) << metrics->body;
    EXPECT_NE(p.Log().find("fetched "), std::string::npos) << p.Log();
    EXPECT_NE(p.Log().find("MB/s"), std::string::npos) << p.Log();
    EXPECT_EQ(p.Log().find(server_->secret_key()), std::string::npos);
    p.Signal(SIGTERM);
    EXPECT_EQ(p.Wait(std::chrono::seconds(30)), 0) << p.Log();
  }
  const std::string name = LocalModelName(kUri, digest);
  ASSERT_EQ(Files().size(), 2u);
  EXPECT_EQ(ReadFile((dir_ / name).string()), model);

  // Second start, same URI and directory, and a secret S3 would refuse: nothing may be fetched.
  ServerProcess again;
  ASSERT_TRUE(again.Start(SLUICE_SERVER_BIN, Args({"--model-sha256", digest}),
                          Env("wrong-secret-so-any-fetch-would-fail")))
      << again.Log();
  ASSERT_TRUE(again.WaitReady()) << again.Log();
  EXPECT_NE(again.Log().find("nothing fetched"), std::string::npos) << again.Log();
  ExpectReferencePredictions(again.port());
  HttpTestClient c(again.port());
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(Gauge(metrics->body, api::kServerModelFetchSeconds), 0.0) << metrics->body;
  EXPECT_EQ(Gauge(metrics->body, api::kServerModelBytes), static_cast<double>(model.size()));
}

TEST_F(S3ModelTest, AWrongDigestStopsTheStartAndLeavesNoFile) {
  const std::string wrong = Sha256Hex("not the fraud model");
  ServerProcess p;
  ASSERT_TRUE(p.Start(SLUICE_SERVER_BIN, Args({"--model-sha256", "sha256:" + wrong}),
                      Env(server_->secret_key())))
      << p.Log();
  EXPECT_EQ(p.Wait(std::chrono::seconds(60)), 1) << p.Log();
  EXPECT_NE(p.Log().find(wrong), std::string::npos) << p.Log();
  EXPECT_NE(p.Log().find("checksum mismatch"), std::string::npos) << p.Log();
  EXPECT_TRUE(Files().empty());
}

TEST_F(S3ModelTest, AWrongSecretStopsTheStartNamingTheS3Error) {
  ServerProcess p;
  ASSERT_TRUE(p.Start(SLUICE_SERVER_BIN, Args(), Env("wrong-secret"))) << p.Log();
  EXPECT_EQ(p.Wait(std::chrono::seconds(60)), 1) << p.Log();
  EXPECT_NE(p.Log().find("SignatureDoesNotMatch"), std::string::npos) << p.Log();
  EXPECT_NE(p.Log().find(kUri), std::string::npos) << p.Log();
  EXPECT_EQ(p.Log().find("wrong-secret"), std::string::npos) << p.Log();
}

}  // namespace
}  // namespace sluice::dataplane
