// The committed fraud model on the real XGBoost runtime, served by the REST and the gRPC
// frontends over one InferenceService: typed FP32 contents, raw contents and the REST path must
// give the same predictions, and those must be the reference predictions shipped with the model.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/dataplane/grpc/grpc_test_client.h"
#include "tests/lib/http/http_test_client.h"
#include "dataplane/grpc/grpc_frontend.h"
#include "dataplane/runtime/model_loader.h"
#include "dataplane/runtime/reference.h"
#include "dataplane/server/rest_frontend.h"
#include "dataplane/server/v2_codec.h"

namespace sluice::dataplane {
namespace {

using sluice::testing::Fp32Output;
using sluice::testing::Fp32Request;
using sluice::testing::GrpcTestClient;
using sluice::testing::HttpTestClient;
using json = nlohmann::json;

const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class FraudTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ref = ParseReference(ReadFile(kModelDir + "/fraud.reference.json"));
    ASSERT_TRUE(ref.ok()) << ref.status();
    ref_ = std::move(ref).value();
    ASSERT_EQ(ref_.num_outputs, 1u);

    auto registry = std::make_shared<prometheus::Registry>();
    auto s = InferenceService::Create({}, registry, Clock::Real());
    ASSERT_TRUE(s.ok()) << s.status();
    service_ = std::move(s).value();
    ModelOptions options;
    options.name = "fraud";
    auto model = service_->AddModel(options);
    ASSERT_TRUE(model.ok()) << model.status();
    LoadOptions load;
    load.name = "fraud";
    auto runtime = LoadModel(ModelSource{kModelDir + "/fraud.json", "auto", "", ""}, load);
    ASSERT_TRUE(runtime.ok()) << runtime.status();
    ASSERT_TRUE(service_->SetRuntime(**model, std::move(runtime).value()).ok());
    ASSERT_TRUE(service_->WarmUpAndMarkReady(**model).ok());

    auto router = std::make_shared<HttpRouter>();
    RegisterV2Routes(*router, *service_);
    HttpServerOptions http;
    http.address = "127.0.0.1";
    http.port = 0;
    http.io_threads = 1;
    auto server = HttpServer::Create(http, router);
    ASSERT_TRUE(server.ok()) << server.status();
    http_ = std::move(server).value();

    GrpcFrontendOptions grpc;
    grpc.address = "127.0.0.1";
    auto frontend = GrpcFrontend::Create(grpc, *service_);
    ASSERT_TRUE(frontend.ok()) << frontend.status();
    grpc_ = std::move(frontend).value();
    client_ = std::make_unique<GrpcTestClient>(grpc_->port());
  }

  void TearDown() override {
    client_.reset();
    grpc_.reset();
    http_.reset();
    service_.reset();
  }

  std::vector<std::vector<float>> ReferenceRows() const {
    std::vector<std::vector<float>> rows;
    for (size_t r = 0; r < ref_.num_rows; ++r) {
      const float* row = ref_.inputs.data() + r * ref_.num_features;
      rows.emplace_back(row, row + ref_.num_features);
    }
    return rows;
  }

  // All reference rows over REST as binary FP32 (JSON cannot carry the missing values, NaN).
  std::vector<float> RestPredict() {
    const std::string header = R"({"inputs":[{"name":"input-0","shape":[)" +
                               std::to_string(ref_.num_rows) + "," +
                               std::to_string(ref_.num_features) +
                               R"(],"datatype":"FP32","parameters":{"binary_data_size":)" +
                               std::to_string(ref_.inputs.size() * 4) + "}}]}";
    std::string body = header;
    body.append(reinterpret_cast<const char*>(ref_.inputs.data()), ref_.inputs.size() * 4);
    HttpTestClient c(http_->port());
    auto r = c.Post("/v2/models/fraud/infer", body,
                    {{kInferenceHeaderContentLength, std::to_string(header.size())}});
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
    if (!r || r->status != 200) return {};
    auto res = ParseInferResponse(r->body, std::nullopt);
    EXPECT_TRUE(res.ok()) << res.status();
    if (!res.ok() || res->outputs.empty()) return {};
    std::vector<float> out(res->outputs[0].bytes().size() / 4);
    std::memcpy(out.data(), res->outputs[0].bytes().data(), out.size() * 4);
    return out;
  }

  ReferenceSet ref_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<GrpcFrontend> grpc_;
  std::unique_ptr<GrpcTestClient> client_;
};

TEST_F(FraudTest, TypedRawAndRestGiveTheReferencePredictions) {
  const auto rows = ReferenceRows();
  inference::ModelInferResponse typed, raw;
  grpc::Status s = client_->Infer(Fp32Request("fraud", rows, false), &typed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = client_->Infer(Fp32Request("fraud", rows, true), &raw);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(typed.raw_output_contents_size(), 0);
  EXPECT_EQ(raw.raw_output_contents_size(), 1);
  const std::vector<float> from_typed = Fp32Output(typed);
  const std::vector<float> from_raw = Fp32Output(raw);
  const std::vector<float> from_rest = RestPredict();
  ASSERT_EQ(from_typed.size(), ref_.num_rows);
  ASSERT_EQ(from_raw.size(), ref_.num_rows);
  ASSERT_EQ(from_rest.size(), ref_.num_rows);
  for (size_t i = 0; i < ref_.num_rows; ++i) {
    // One runtime behind both protocols: bit-identical answers, and the reference ones.
    EXPECT_EQ(std::memcmp(&from_typed[i], &from_rest[i], 4), 0) << "row " << i;
    EXPECT_EQ(std::memcmp(&from_raw[i], &from_rest[i], 4), 0) << "row " << i;
    EXPECT_NEAR(from_typed[i], ref_.outputs[i], ref_.tolerance) << "row " << i;
  }
}

TEST_F(FraudTest, TheCommittedSampleRequestAgreesWithRest) {
  const std::string body = ReadFile(kModelDir + "/sample_request.json");
  HttpTestClient c(http_->port());
  auto rest = c.Post("/v2/models/fraud/infer", body);
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->status, 200) << rest->body;
  const json rest_out = json::parse(rest->body)["outputs"][0]["data"];

  const json sample = json::parse(body);
  const auto& input = sample["inputs"][0];
  const auto shape = input["shape"].get<std::vector<int64_t>>();
  const auto data = input["data"].get<std::vector<float>>();
  std::vector<std::vector<float>> rows;
  for (int64_t r = 0; r < shape[0]; ++r) {
    rows.emplace_back(data.begin() + r * shape[1], data.begin() + (r + 1) * shape[1]);
  }
  inference::ModelInferRequest req = Fp32Request("fraud", rows, false);
  req.set_id(sample["id"].get<std::string>());
  inference::ModelInferResponse res;
  grpc::Status s = client_->Infer(req, &res);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(res.id(), "fraud-sample");
  const auto grpc_out = Fp32Output(res);
  ASSERT_EQ(grpc_out.size(), rest_out.size());
  for (size_t i = 0; i < grpc_out.size(); ++i) {
    EXPECT_FLOAT_EQ(grpc_out[i], rest_out[i].get<float>()) << "row " << i;
  }
}

// 2,000 sequential calls from one client over loopback, one row each. Prints the latency
// percentiles of both protocols; asserts that every call answered the same prediction.
TEST_F(FraudTest, SequentialLatency) {
  const auto rows = ReferenceRows();
  const inference::ModelInferRequest req = Fp32Request("fraud", {rows[0]}, true);
  constexpr int kCalls = 2000;
  auto percentiles = [](std::vector<double>& us) {
    std::sort(us.begin(), us.end());
    return std::make_pair(us[us.size() / 2], us[us.size() * 99 / 100]);
  };

  std::vector<double> grpc_us;
  grpc_us.reserve(kCalls);
  float first = 0;
  for (int i = 0; i < kCalls; ++i) {
    inference::ModelInferResponse res;
    const auto t0 = std::chrono::steady_clock::now();
    grpc::Status s = client_->Infer(req, &res);
    grpc_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(s.ok()) << s.error_message();
    const float got = Fp32Output(res).at(0);
    if (i == 0) first = got;
    ASSERT_EQ(got, first) << "call " << i;
  }
  EXPECT_NEAR(first, ref_.outputs[0], ref_.tolerance);

  // The floor under ModelInfer: an RPC that does no work.
  std::vector<double> live_us;
  live_us.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    inference::ServerLiveResponse live;
    const auto t0 = std::chrono::steady_clock::now();
    grpc::Status s = client_->Call(&inference::GRPCInferenceService::Stub::ServerLive,
                                   inference::ServerLiveRequest{}, &live);
    live_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(s.ok() && live.live());
  }

  const std::string header = R"({"inputs":[{"name":"input-0","shape":[1,)" +
                             std::to_string(ref_.num_features) +
                             R"(],"datatype":"FP32","parameters":{"binary_data_size":)" +
                             std::to_string(ref_.num_features * 4) + "}}]}";
  std::string body = header;
  body.append(reinterpret_cast<const char*>(rows[0].data()), rows[0].size() * 4);
  HttpTestClient http(http_->port());
  std::vector<double> rest_us;
  rest_us.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = http.Post("/v2/models/fraud/infer", body,
                       {{kInferenceHeaderContentLength, std::to_string(header.size())}});
    rest_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(r && r->status == 200);
  }

  const auto [g50, g99] = percentiles(grpc_us);
  const auto [r50, r99] = percentiles(rest_us);
  const auto [l50, l99] = percentiles(live_us);
  std::printf(
      "%d sequential calls, one client, loopback: gRPC ModelInfer p50 %.0f us p99 %.0f us; "
      "gRPC ServerLive p50 %.0f us p99 %.0f us; REST infer p50 %.0f us p99 %.0f us\n",
      kCalls, g50, g99, l50, l99, r50, r99);
  RecordProperty("grpc_p50_us", static_cast<int>(g50));
  RecordProperty("grpc_p99_us", static_cast<int>(g99));
  RecordProperty("rest_p50_us", static_cast<int>(r50));
  RecordProperty("rest_p99_us", static_cast<int>(r99));
}

}  // namespace
}  // namespace sluice::dataplane
