#include "dataplane/server/rest_frontend.h"

#include <cstring>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/lib/http/http_test_client.h"
#include "tests/dataplane/server/fake_runtime.h"
#include "lib/http/metrics_exposition.h"
#include "dataplane/server/v2_codec.h"

namespace sluice::dataplane {
namespace {

using sluice::testing::FakeRuntime;
using sluice::testing::HttpReply;
using sluice::testing::HttpTestClient;
using sluice::testing::RawConnection;
using json = nlohmann::json;

constexpr char kGood[] =
    R"({"id":"g","inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]})";

std::string ErrorOf(const HttpReply& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("error")) return "<no JSON error: " + r.body + ">";
  return j["error"].get<std::string>();
}

class RestTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions http = {}, ModelOptions model = {}, bool load = true) {
    registry_ = std::make_shared<prometheus::Registry>();
    auto s = InferenceService::Create({}, registry_, Clock::Real());
    ASSERT_TRUE(s.ok());
    service_ = std::move(s).value();
    model.name = "fraud";
    model.version = "1";
    auto m = service_->AddModel(model);
    ASSERT_TRUE(m.ok());
    model_ = *m;
    auto router = std::make_shared<HttpRouter>();
    RegisterV2Routes(*router, *service_);
    AddMetricsRoute(*router, registry_);
    http.address = "127.0.0.1";
    http.port = 0;
    http.io_threads = 2;
    auto server = HttpServer::Create(http, router);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    if (load) Load();
  }
  void Load() {
    auto rt = std::make_unique<FakeRuntime>(3);
    runtime_ = rt.get();
    ASSERT_TRUE(service_->SetRuntime(*model_, std::move(rt)).ok());
    ASSERT_TRUE(service_->WarmUpAndMarkReady(*model_).ok());
  }
  void TearDown() override {
    if (runtime_) runtime_->Open();
    if (service_) service_->Stop();  // before the server: queued answers must not outlive it
    server_.reset();
  }
  uint16_t port() const { return server_->port(); }

  // A good request on a fresh connection succeeds: the server is unharmed.
  void ExpectStillServing() {
    HttpTestClient c(port());
    auto r = c.Post("/v2/models/fraud/infer", kGood);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }

  double Metric(const std::string& line_prefix) {
    HttpTestClient c(port());
    auto r = c.Get("/metrics");
    if (!r) return -1;
    for (size_t pos = 0; pos < r->body.size();) {
      size_t end = r->body.find('\n', pos);
      std::string line = r->body.substr(pos, end - pos);
      if (line.rfind(line_prefix + " ", 0) == 0) return std::stod(line.substr(line_prefix.size() + 1));
      pos = end == std::string::npos ? r->body.size() : end + 1;
    }
    return 0;
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<InferenceService> service_;
  Model* model_ = nullptr;
  FakeRuntime* runtime_ = nullptr;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(RestTest, HealthMetadataAndReadiness) {
  Start({}, {}, /*load=*/false);
  HttpTestClient c(port());
  EXPECT_EQ(c.Get("/v2/health/live")->status, 200);
  auto not_ready = c.Get("/v2/health/ready");
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(ErrorOf(*not_ready), "models are not ready");
  EXPECT_EQ(c.Get("/v2/models/fraud/ready")->status, 503);
  EXPECT_EQ(c.Get("/v2/models/fraud")->status, 503);  // metadata comes with the runtime
  auto early = c.Post("/v2/models/fraud/infer", kGood);
  EXPECT_EQ(early->status, 503);
  EXPECT_NE(ErrorOf(*early).find("not ready"), std::string::npos);

  Load();
  EXPECT_EQ(c.Get("/v2/health/ready")->status, 200);
  EXPECT_EQ(c.Get("/v2/models/fraud/ready")->status, 200);
  EXPECT_EQ(c.Get("/v2/models/fraud/versions/1/ready")->status, 200);
  auto server = json::parse(c.Get("/v2")->body);
  EXPECT_EQ(server["name"], "sluice-server");
  EXPECT_EQ(server["extensions"], json::array({"binary_tensor_data"}));
  auto md = json::parse(c.Get("/v2/models/fraud")->body);
  EXPECT_EQ(md["name"], "fraud");
  EXPECT_EQ(md["versions"], json::array({"1"}));
  EXPECT_EQ(md["inputs"][0]["name"], "input-0");
  EXPECT_EQ(md["inputs"][0]["shape"], json::array({-1, 3}));
  EXPECT_EQ(md["outputs"][0]["name"], "predict");
  EXPECT_EQ(c.Get("/v2/models/fraud/versions/1")->status, 200);

  auto unknown = c.Get("/v2/models/nope");
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(ErrorOf(*unknown), "model 'nope' is not served here");
  auto bad_version = c.Get("/v2/models/fraud/versions/9/ready");
  EXPECT_EQ(bad_version->status, 404);
  EXPECT_EQ(ErrorOf(*bad_version), "model 'fraud' has no version '9'");
  EXPECT_EQ(c.Get("/v2/models/fraud/bogus")->status, 404);

  service_->SetDraining();
  auto draining = c.Get("/v2/health/ready");
  EXPECT_EQ(draining->status, 503);
  EXPECT_EQ(ErrorOf(*draining), "server is draining");
  EXPECT_EQ(c.Get("/v2/health/live")->status, 200);
}

TEST_F(RestTest, InferJson) {
  Start();
  HttpTestClient c(port());
  for (const char* path : {"/v2/models/fraud/infer", "/v2/models/fraud/versions/1/infer"}) {
    auto r = c.Post(path, kGood);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->header("Content-Type"), "application/json");
    auto j = json::parse(r->body);
    EXPECT_EQ(j["id"], "g");
    EXPECT_EQ(j["model_name"], "fraud");
    EXPECT_EQ(j["model_version"], "1");
    EXPECT_EQ(j["outputs"][0]["shape"], json::array({2}));
    EXPECT_EQ(j["outputs"][0]["data"], json::array({6.0, 15.0}));
  }
  EXPECT_EQ(Metric(R"(sluice_server_requests_total{code="200",model="fraud",version="1"})"), 2);
}

TEST_F(RestTest, InferBinaryInAndOut) {
  Start();
  const float rows[6] = {1, 2, 3, 0.5f, 0.25f, 0.25f};
  const std::string header =
      R"({"inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP32","parameters":{"binary_data_size":24}}],)"
      R"("outputs":[{"name":"predict","parameters":{"binary_data":true}}]})";
  std::string body = header + std::string(reinterpret_cast<const char*>(rows), sizeof(rows));
  HttpTestClient c(port());
  auto r = c.Post("/v2/models/fraud/infer", body,
                  {{kInferenceHeaderContentLength, std::to_string(header.size())},
                   {"Content-Type", "application/octet-stream"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->header("Content-Type"), "application/octet-stream");
  const size_t json_len = std::stoul(r->header(kInferenceHeaderContentLength));
  auto head = json::parse(r->body.substr(0, json_len));
  EXPECT_EQ(head["outputs"][0]["parameters"]["binary_data_size"], 8);
  EXPECT_FALSE(head["outputs"][0].contains("data"));
  ASSERT_EQ(r->body.size() - json_len, 8u);
  float out[2];
  std::memcpy(out, r->body.data() + json_len, 8);
  EXPECT_EQ(out[0], 6.0f);
  EXPECT_EQ(out[1], 1.0f);

  // binary_data_output makes every output binary; JSON input this time.
  auto all = c.Post("/v2/models/fraud/infer",
                    R"({"parameters":{"binary_data_output":true},"inputs":[{"name":"input-0","shape":[1,3],)"
                    R"("datatype":"FP32","data":[1,1,1]}]})");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->status, 200);
  auto parsed = ParseInferResponse(all->body, std::stoul(all->header(kInferenceHeaderContentLength)));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  float v;
  std::memcpy(&v, parsed->outputs[0].bytes().data(), 4);
  EXPECT_EQ(v, 3.0f);
}

struct BadCase {
  std::string name;
  std::string path;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  int status;
  std::string error_fragment;
};

TEST_F(RestTest, BadInputGetsAClear4xxAndTheServerCarriesOn) {
  HttpServerOptions http;
  http.max_body_bytes = 4096;
  http.max_header_bytes = 2048;
  Start(http);
  const std::string header =
      R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}]})";
  const std::vector<BadCase> cases = {
      {"malformed JSON", "/v2/models/fraud/infer", R"({"inputs":[)", {}, 400, "malformed JSON"},
      {"not an object", "/v2/models/fraud/infer", "[]", {}, 400, "must be a JSON object"},
      {"wrong shape", "/v2/models/fraud/infer",
       R"({"inputs":[{"name":"input-0","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]})", {}, 400,
       "has shape [2,2]"},
      {"shape/data mismatch", "/v2/models/fraud/infer",
       R"({"inputs":[{"name":"input-0","shape":[2,3],"datatype":"FP32","data":[1,2,3]}]})", {}, 400,
       "needs 6"},
      {"wrong datatype", "/v2/models/fraud/infer",
       R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":["a","b","c"]}]})", {},
       400, "is a string, not a FP32 value"},
      {"unsupported datatype", "/v2/models/fraud/infer",
       R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"BYTES","data":["a","b","c"]}]})", {},
       400, "datatype BYTES"},
      {"unknown datatype", "/v2/models/fraud/infer",
       R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FLOAT","data":[1,2,3]}]})", {}, 400,
       "unknown datatype 'FLOAT'"},
      {"wrong tensor count", "/v2/models/fraud/infer",
       R"({"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP32","data":[1,2,3]},)"
       R"({"name":"b","shape":[1],"datatype":"FP32","data":[1]}]})",
       {}, 400, "the request has 2"},
      {"unknown model", "/v2/models/nope/infer", kGood, {}, 404, "model 'nope' is not served here"},
      {"unknown version", "/v2/models/fraud/versions/7/infer", kGood, {}, 404, "no version '7'"},
      {"truncated binary", "/v2/models/fraud/infer", header + std::string(8, '\0'),
       {{kInferenceHeaderContentLength, std::to_string(header.size())}}, 400, "truncated binary data"},
      {"header length past the body", "/v2/models/fraud/infer", kGood,
       {{kInferenceHeaderContentLength, "100000"}}, 400, "exceeds the body size"},
      {"oversized body", "/v2/models/fraud/infer", std::string(5000, ' '), {}, 413,
       "exceeds the limit of 4096"},
      {"header too large", "/v2/models/fraud/infer", kGood, {{"X-Junk", std::string(4000, 'j')}}, 431,
       "header exceeds"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    HttpTestClient client(port());
    auto r = client.Post(c.path, c.body, c.headers);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->body;
    EXPECT_NE(ErrorOf(*r).find(c.error_fragment), std::string::npos) << ErrorOf(*r);
    ExpectStillServing();
  }
  EXPECT_EQ(Metric(R"(sluice_server_requests_total{code="400",model="fraud",version="1"})"), 10);
  EXPECT_EQ(Metric(R"(sluice_server_requests_total{code="404",model="unknown",version=""})"), 2);
}

TEST_F(RestTest, SlowClientGets408AndOthersAreServed) {
  HttpServerOptions http;
  http.header_timeout = std::chrono::milliseconds(300);
  Start(http);
  RawConnection slow(port());
  ASSERT_TRUE(slow.Write("POST /v2/models/fraud/infer HTTP/1.1\r\nHost: x\r\nContent-"));
  ExpectStillServing();  // a stuck client does not block others
  auto r = slow.ReadReply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(ErrorOf(*r), "timed out reading the request header");
  ExpectStillServing();
}

TEST_F(RestTest, FullQueueIs503) {
  ModelOptions m;
  m.batcher.max_queue_size = 1;
  Start({}, m);
  runtime_->Close();
  const size_t before = runtime_->calls().size();
  auto first = std::async(std::launch::async, [&] {
    HttpTestClient c(port());
    return c.Post("/v2/models/fraud/infer", kGood);
  });
  ASSERT_TRUE(runtime_->WaitEntered(before + 1));  // the first holds the worker
  auto second = std::async(std::launch::async, [&] {
    HttpTestClient c(port());
    return c.Post("/v2/models/fraud/infer", kGood);
  });
  // Wait until the second is queued: then the third finds the queue full.
  for (int i = 0; i < 1000 && Metric(R"(sluice_server_inflight_requests{model="fraud",version="1"})") < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  HttpTestClient c(port());
  auto third = c.Post("/v2/models/fraud/infer", kGood);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 503);
  EXPECT_NE(ErrorOf(*third).find("queue full"), std::string::npos);
  runtime_->Open();
  EXPECT_EQ(first.get()->status, 200);
  EXPECT_EQ(second.get()->status, 200);
}

TEST_F(RestTest, ModelPathParsing) {
  ModelPath p;
  ASSERT_TRUE(ParseModelPath("/v2/models/a%2Fb/versions/3/infer", p));
  EXPECT_EQ(p.name, "a/b");
  EXPECT_EQ(p.version, "3");
  EXPECT_EQ(p.action, "infer");
  ASSERT_TRUE(ParseModelPath("/v2/models/m", p));
  EXPECT_EQ(p.name, "m");
  EXPECT_EQ(p.version, "");
  EXPECT_EQ(p.action, "");
  EXPECT_FALSE(ParseModelPath("/v2/models/", p));
  EXPECT_FALSE(ParseModelPath("/v2/models/m/", p));
  EXPECT_FALSE(ParseModelPath("/v2/models/m/versions", p));
  EXPECT_FALSE(ParseModelPath("/v2/models/m/x/y", p));
  EXPECT_FALSE(ParseModelPath("/v2/models/%zz", p));
  EXPECT_FALSE(ParseModelPath("/v2/models/a%2", p));
}

}  // namespace
}  // namespace sluice::dataplane
