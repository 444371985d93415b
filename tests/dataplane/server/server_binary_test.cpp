// The real sluice-server binary on the committed fraud model: reference predictions over REST,
// bad input against the process, and a graceful drain on SIGTERM under load.

#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/lib/http/http_test_client.h"
#include "tests/dataplane/server/server_process.h"
#include "dataplane/runtime/reference.h"
#include "dataplane/server/v2_codec.h"

namespace sluice::dataplane {
namespace {

using sluice::testing::HttpReply;
using sluice::testing::HttpTestClient;
using sluice::testing::RawConnection;
using sluice::testing::ServerProcess;
using json = nlohmann::json;

const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string ErrorOf(const HttpReply& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("error")) return "<no JSON error: " + r.body + ">";
  return j["error"].get<std::string>();
}

// Starts the server on the fraud model with `extra` flags (and `env`) and waits until it is ready.
void StartFraud(ServerProcess& p, std::vector<std::string> extra = {},
                const std::vector<std::string>& env = {}) {
  std::vector<std::string> args = {"--model-uri", kModelDir + "/fraud.json", "--model-name", "fraud",
                                   "--io-threads", "2", "--log-format", "json",
                                   "--drain-grace-ms", "100"};
  args.insert(args.end(), extra.begin(), extra.end());
  ASSERT_TRUE(p.Start(SLUICE_SERVER_BIN, args, env)) << p.Log();
  ASSERT_TRUE(p.WaitReady()) << p.Log();
}

TEST(ServerBinary, AnswersTheReferencePredictions) {
  ServerProcess p;
  StartFraud(p);
  auto ref = ParseReference(ReadFile(kModelDir + "/fraud.reference.json"));
  ASSERT_TRUE(ref.ok()) << ref.status();
  ASSERT_EQ(ref->num_outputs, 1u);

  // All reference rows in one request; binary FP32 because the rows hold missing values (NaN),
  // which JSON cannot carry.
  const std::string header =
      R"({"id":"ref","inputs":[{"name":"input-0","shape":[)" + std::to_string(ref->num_rows) + "," +
      std::to_string(ref->num_features) +
      R"(],"datatype":"FP32","parameters":{"binary_data_size":)" +
      std::to_string(ref->inputs.size() * 4) + "}}]}";
  std::string body = header;
  body.append(reinterpret_cast<const char*>(ref->inputs.data()), ref->inputs.size() * 4);
  HttpTestClient c(p.port());
  auto r = c.Post("/v2/models/fraud/infer", body,
                  {{kInferenceHeaderContentLength, std::to_string(header.size())}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto res = ParseInferResponse(r->body, std::nullopt);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->id, "ref");
  ASSERT_EQ(res->outputs.size(), 1u);
  ASSERT_EQ(res->outputs[0].bytes().size(), ref->num_rows * 4);
  for (size_t i = 0; i < ref->num_rows; ++i) {
    float got;
    std::memcpy(&got, res->outputs[0].bytes().data() + 4 * i, 4);
    ASSERT_NEAR(got, ref->outputs[i], ref->tolerance) << "row " << i;
  }

  // The committed sample request, as JSON, one request per row and all at once agree.
  auto sample = c.Post("/v2/models/fraud/infer", ReadFile(kModelDir + "/sample_request.json"));
  ASSERT_TRUE(sample);
  ASSERT_EQ(sample->status, 200) << sample->body;
  auto j = json::parse(sample->body);
  EXPECT_EQ(j["id"], "fraud-sample");
  EXPECT_EQ(j["outputs"][0]["shape"], json::array({4}));

  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find(R"(sluice_server_requests_total{code="200",model="fraud",version="1"} 2)"),
            std::string::npos);
  EXPECT_NE(metrics->body.find(R"(sluice_server_model_ready{model="fraud",version="1"} 1)"),
            std::string::npos);
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(std::chrono::seconds(30)), 0) << p.Log();
  // Structured logs carry the model identity.
  EXPECT_NE(p.Log().find(R"("model":"fraud","version":"1","msg":"ready)"), std::string::npos) << p.Log();
}

TEST(ServerBinary, BadInputIsRefusedAndTheProcessCarriesOn) {
  ServerProcess p;
  StartFraud(p, {"--max-body-bytes", "65536", "--header-timeout-ms", "300", "--max-header-bytes",
                 "4096"});
  const std::string good =
      R"({"inputs":[{"name":"input-0","shape":[1,12],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12]}]})";
  auto expect_good = [&] {
    HttpTestClient c(p.port());
    auto r = c.Post("/v2/models/fraud/infer", good);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  };
  struct Case {
    std::string body;
    int status;
    std::string fragment;
    std::vector<std::pair<std::string, std::string>> headers;
  };
  const std::string binary_header =
      R"({"inputs":[{"name":"input-0","shape":[1,12],"datatype":"FP32","parameters":{"binary_data_size":48}}]})";
  const std::vector<Case> cases = {
      {R"({"inputs": [{"name")", 400, "malformed JSON", {}},
      {R"({"inputs":[{"name":"input-0","shape":[1,11],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11]}]})",
       400, "takes [-1,12]", {}},
      {R"({"inputs":[{"name":"input-0","shape":[1,12],"datatype":"FP32","data":[1,2,3]}]})", 400,
       "needs 12", {}},
      {R"({"inputs":[{"name":"input-0","shape":[1,12],"datatype":"BOOL","data":[1,2,3,4,5,6,7,8,9,10,11,12]}]})",
       400, "not a BOOL value", {}},
      {R"({"inputs":[]})", 400, "the request has 0", {}},
      {binary_header + std::string(40, '\0'), 400, "truncated binary data",
       {{kInferenceHeaderContentLength, std::to_string(binary_header.size())}}},
      {std::string(70000, '{'), 413, "exceeds the limit", {}},
      {good, 431, "header exceeds", {{"X-Pad", std::string(5000, 'p')}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.fragment);
    HttpTestClient client(p.port());
    auto r = client.Post("/v2/models/fraud/infer", c.body, c.headers);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->body;
    EXPECT_NE(ErrorOf(*r).find(c.fragment), std::string::npos) << ErrorOf(*r);
    expect_good();
  }
  {
    HttpTestClient client(p.port());
    auto r = client.Post("/v2/models/nope/infer", good);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(ErrorOf(*r), "model 'nope' is not served here");
  }
  // Slowloris: a header that never ends is cut off with 408.
  RawConnection slow(p.port());
  ASSERT_TRUE(slow.Write("POST /v2/models/fraud/infer HTTP/1.1\r\nHost: x\r\n"));
  auto r = slow.ReadReply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(ErrorOf(*r), "timed out reading the request header");
  expect_good();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(std::chrono::seconds(30)), 0) << p.Log();
}

// SLUICE_FAULT_ERROR_PERCENT=20: exactly one request in five answers 500 "injected fault", and
// the server says so loudly at start; health and metadata are untouched.
TEST(ServerBinary, FaultInjectionFromTheEnvironmentFailsOneRequestInFive) {
  ServerProcess p;
  StartFraud(p, {}, {"SLUICE_FAULT_ERROR_PERCENT=20"});
  const std::string good = ReadFile(kModelDir + "/sample_request.json");
  HttpTestClient c(p.port());
  int failed = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = c.Post("/v2/models/fraud/infer", good);
    ASSERT_TRUE(r);
    if (i % 5 == 4) {
      EXPECT_EQ(r->status, 500) << "request " << i << ": " << r->body;
      EXPECT_EQ(r->body, R"({"error":"injected fault"})");
    } else {
      EXPECT_EQ(r->status, 200) << "request " << i << ": " << r->body;
    }
    failed += r->status == 500;
  }
  EXPECT_EQ(failed, 20);
  auto health = c.Get("/v2/health/ready");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_NE(p.Log().find("FAULT INJECTION IS ON: error 20%, delay 0 ms"), std::string::npos)
      << p.Log();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(std::chrono::seconds(30)), 0) << p.Log();
}

// The flags win over the environment: no errors, but every answer at least 150 ms late.
TEST(ServerBinary, FaultFlagsOverrideTheEnvironment) {
  ServerProcess p;
  StartFraud(p, {"--fault-error-percent", "0", "--fault-delay-ms", "150"},
             {"SLUICE_FAULT_ERROR_PERCENT=100"});
  const std::string good = ReadFile(kModelDir + "/sample_request.json");
  HttpTestClient c(p.port());
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto r = c.Post("/v2/models/fraud/infer", good);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_GE(took, std::chrono::milliseconds(150));
  }
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(std::chrono::seconds(30)), 0) << p.Log();
}

// Clients on keep-alive connections send continuously; SIGTERM arrives; every request the
// server read must be answered 200, and the process must exit 0.
TEST(ServerBinary, SigtermDrainsUnderLoadWithoutFailingAcceptedRequests) {
  ServerProcess p;
  StartFraud(p, {"--drain-grace-ms", "500", "--drain-timeout-ms", "20000",
                 "--drain-idle-timeout-ms", "3000", "--max-batch-size", "16"});
  const std::string body = ReadFile(kModelDir + "/sample_request.json");
  constexpr int kClients = 6;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, ok_after_signal{0}, failed{0}, refused{0};
  std::atomic<bool> signalled{false};
  std::mutex mu;
  std::vector<std::string> failures;  // guarded by mu
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&] {
      auto client = std::make_unique<HttpTestClient>(p.port());
      while (!stop.load()) {
        if (!client->connected() && !client->Connect()) {
          ++refused;  // not accepted: the listener is closed
          return;
        }
        std::string error;
        auto r = client->Request(boost::beast::http::verb::post, "/v2/models/fraud/infer", body, {},
                                 &error);
        if (!r) {
          // The server closes a connection only after answering with Connection: close, so a
          // request written on an open connection and never answered is a lost request.
          ++failed;
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back(error);
          return;
        }
        if (r->status != 200) {
          ++failed;
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back(std::to_string(r->status) + " " + r->body);
          return;
        }
        ++ok;
        if (signalled.load()) ++ok_after_signal;
        if (!r->keep_alive) client = std::make_unique<HttpTestClient>(p.port());
      }
    });
  }
  // Let the load run, then ask the server to stop.
  const auto load_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ok.load() < 3000 && std::chrono::steady_clock::now() < load_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(ok.load(), 3000) << "the load never got going:\n" << p.Log();
  signalled.store(true);
  p.Signal(SIGTERM);
  // During the grace period the server reports not ready but still serves.
  bool saw_not_ready = false;
  const auto grace_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!saw_not_ready && std::chrono::steady_clock::now() < grace_deadline) {
    HttpTestClient probe(p.port(), std::chrono::seconds(2));
    auto r = probe.Get("/v2/health/ready");
    if (!r) break;
    saw_not_ready = r->status == 503;
  }
  EXPECT_TRUE(saw_not_ready);
  const auto exit_code = p.Wait(std::chrono::seconds(40));
  stop.store(true);
  for (auto& c : clients) c.join();
  EXPECT_EQ(exit_code, 0) << p.Log();
  EXPECT_EQ(failed.load(), 0) << (failures.empty() ? "" : failures.front());
  EXPECT_GT(ok_after_signal.load(), 0);
  EXPECT_EQ(refused.load(), kClients);  // every client ended at the closed listener
  EXPECT_NE(p.Log().find("every in-flight request answered"), std::string::npos) << p.Log();
  std::cout << "drain: " << ok.load() << " requests answered, " << ok_after_signal.load()
            << " after SIGTERM, " << failed.load() << " failed\n";
}

}  // namespace
}  // namespace sluice::dataplane
