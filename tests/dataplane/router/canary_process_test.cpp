// The real sluice-router in front of two real sluice-server processes on the fraud model, a
// stable revision and a canary that fails (fault injection: every inference answers 500 / gRPC
// INTERNAL), is killed, or is too slow: callers see no failure, the canary's failures are in its
// series and the retries in theirs; with retries off the failures reach callers; the guard trips
// after 20 outcomes and the canary gets nothing more; the retry budget caps retries when the
// stable fails too.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "dataplane/grpc/grpc_predict_v2.grpc.pb.h"
#include "tests/dataplane/grpc/grpc_test_client.h"
#include "tests/dataplane/server/server_process.h"
#include "tests/lib/http/http_test_client.h"
#include "tests/support/process.h"

namespace sluice::testing {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;

const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;
constexpr char kRevisionHeader[] = "x-sluice-revision";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

uint16_t FreePort() {
  auto p = PickFreePort();
  EXPECT_TRUE(p.ok()) << p.status();
  return static_cast<uint16_t>(p.ok() ? *p : 0);
}

// `name{a="x",b="y"}` with the labels in prometheus-cpp's order (sorted by name).
std::string Series(const std::string& name, const std::map<std::string, std::string>& labels) {
  std::string out = name + "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    out += k + "=\"" + v + "\"";
    first = false;
  }
  return out + "}";
}

// The value of a series on a Prometheus page; 0 when absent (a counter not yet created).
double Value(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return 0;
}

double Requests(const std::string& page, const std::string& revision, const std::string& code) {
  return Value(page,
               Series("sluice_router_requests_total", {{"code", code}, {"revision", revision}}));
}

double Retries(const std::string& page, const std::string& outcome) {
  return Value(page, Series("sluice_router_retries_total",
                            {{"outcome", outcome}, {"revision", "canary"}, {"to", "stable"}}));
}

struct Backend {
  std::unique_ptr<ServerProcess> process = std::make_unique<ServerProcess>();
  uint16_t grpc_port = 0;
};

class CanaryProcessTest : public ::testing::Test {
 protected:
  // A sluice-server on the fraud model; `env` adds fault injection.
  Backend StartServer(const std::vector<std::string>& env) {
    Backend b;
    b.grpc_port = FreePort();
    EXPECT_TRUE(b.process->Start(
        SLUICE_SERVER_BIN,
        {"--model-uri", "file://" + kModelDir + "/fraud.json", "--io-threads", "1", "--grpc-port",
         std::to_string(b.grpc_port), "--admin-port", std::to_string(FreePort())},
        env))
        << b.process->Log();
    EXPECT_TRUE(b.process->WaitReady()) << b.process->Log();
    return b;
  }

  // stable at 100 - canary_weight, canary at canary_weight, stable named stable.
  void StartRouter(int canary_weight, const std::vector<std::string>& extra = {}) {
    grpc_port_ = FreePort();
    admin_port_ = FreePort();
    const auto entry = [](const char* name, int weight, const Backend& b) {
      return std::string(name) + "=" + std::to_string(weight) +
             "@127.0.0.1:" + std::to_string(b.process->port()) + "+" + std::to_string(b.grpc_port);
    };
    std::vector<std::string> args = {"--static-traffic",
                                     entry("stable", 100 - canary_weight, stable_) + ";" +
                                         entry("canary", canary_weight, canary_),
                                     "--stable-revision",
                                     "stable",
                                     "--grpc-port",
                                     std::to_string(grpc_port_),
                                     "--admin-port",
                                     std::to_string(admin_port_),
                                     "--revision-header",
                                     kRevisionHeader,
                                     "--io-threads",
                                     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(router_.Start(SLUICE_ROUTER_BIN, args)) << router_.Log();
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      HttpTestClient c(router_.port(), 2s);
      auto r = c.Get("/readyz");
      if (r && r->status == 200) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "router not ready\n" << router_.Log();
  }

  std::string Metrics() {
    HttpTestClient c(admin_port_, 10s);
    auto r = c.Get("/metrics");
    return r && r->status == 200 ? r->body : "";
  }

  // Sends `n` REST inferences one after the other; answers by status and by serving revision.
  struct Tally {
    std::map<int, int> status;  // -1: no answer
    std::map<std::string, int> revision;
  };
  Tally Rest(int n) {
    Tally t;
    HttpTestClient c(router_.port(), 30s);
    for (int i = 0; i < n; ++i) {
      auto r = c.Request(http::verb::post, "/v2/models/fraud/infer", sample_);
      ++t.status[r ? r->status : -1];
      if (r) ++t.revision[r->header(kRevisionHeader)];
    }
    return t;
  }

  // The same over gRPC, by status code and revision.
  Tally Grpc(int n, std::chrono::milliseconds deadline = 10s) {
    Tally t;
    GrpcTestClient client(grpc_port_);
    const auto request = Fp32Request("fraud", {std::vector<float>(12, 1.0f)}, false);
    for (int i = 0; i < n; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + deadline);
      inference::ModelInferResponse response;
      const grpc::Status s = client.stub().ModelInfer(&ctx, request, &response);
      ++t.status[static_cast<int>(s.error_code())];
      auto rev = ctx.GetServerInitialMetadata().find(kRevisionHeader);
      if (rev != ctx.GetServerInitialMetadata().end()) {
        ++t.revision[std::string(rev->second.data(), rev->second.size())];
      }
    }
    return t;
  }

  const std::vector<std::string> kFailAll = {"SLUICE_FAULT_ERROR_PERCENT=100"};
  const std::vector<std::string> kNoGuard = {"--guard-max-error-rate", "1"};
  Backend stable_;
  Backend canary_;
  ServerProcess router_;
  uint16_t grpc_port_ = 0;
  uint16_t admin_port_ = 0;
  const std::string sample_ = ReadFile(kModelDir + "/sample_request.json");
};

TEST_F(CanaryProcessTest, ACanaryThat500sCostsCallersNothingOverRestAndGrpc) {
  stable_ = StartServer({});
  canary_ = StartServer(kFailAll);
  StartRouter(10, kNoGuard);

  Tally rest = Rest(100);
  EXPECT_EQ(rest.status, (std::map<int, int>{{200, 100}})) << router_.Log();
  EXPECT_EQ(rest.revision, (std::map<std::string, int>{{"stable", 100}}));
  std::string m = Metrics();
  // The canary's failures are its own, as the analysis reads them; the retries' answers are the
  // stable's.
  EXPECT_EQ(Requests(m, "canary", "5xx"), 10) << m;
  EXPECT_EQ(Requests(m, "canary", "2xx"), 0);
  EXPECT_EQ(Requests(m, "stable", "2xx"), 100);
  EXPECT_EQ(Retries(m, "2xx"), 10);

  Tally grpc = Grpc(100);
  EXPECT_EQ(grpc.status, (std::map<int, int>{{0, 100}})) << router_.Log();
  EXPECT_EQ(grpc.revision, (std::map<std::string, int>{{"stable", 100}}));
  m = Metrics();
  EXPECT_EQ(Requests(m, "canary", "5xx"), 20) << m;
  EXPECT_EQ(Requests(m, "stable", "2xx"), 200);
  EXPECT_EQ(Retries(m, "2xx"), 20);
  EXPECT_EQ(Retries(m, "denied"), 0);
}

TEST_F(CanaryProcessTest, WithRetriesOffTheCanarysFailuresReachCallers) {
  stable_ = StartServer({});
  canary_ = StartServer(kFailAll);
  StartRouter(10, {"--guard-max-error-rate", "1", "--retry-on-stable=false"});
  Tally rest = Rest(100);
  EXPECT_EQ(rest.status, (std::map<int, int>{{200, 90}, {500, 10}})) << router_.Log();
  Tally grpc = Grpc(100);
  EXPECT_EQ(grpc.status,
            (std::map<int, int>{{0, 90}, {static_cast<int>(grpc::StatusCode::INTERNAL), 10}}));
  const std::string m = Metrics();
  EXPECT_EQ(Requests(m, "canary", "5xx"), 20) << m;
  EXPECT_EQ(Retries(m, "2xx"), 0);
}

TEST_F(CanaryProcessTest, TheGuardTripsAfterTwentyOutcomesAndTheCanaryGetsNoMore) {
  stable_ = StartServer({});
  canary_ = StartServer(kFailAll);
  // The default guard (error rate above 1 % over at least 20 requests in the last second); a
  // budget that retries everything, so this test is about the guard alone.
  StartRouter(50, {"--retry-budget-percent", "100"});
  const std::string tripped = Series("sluice_router_guard_tripped", {{"revision", "canary"}});
  const std::string diverted =
      Series("sluice_router_guard_diverted_total", {{"revision", "canary"}});
  EXPECT_EQ(Value(Metrics(), tripped), 0);
  // In rounds of 10 until it trips: on a quiet machine 40 requests (20 canary outcomes) do it; a
  // loaded one may spread them over more than the guard's one-second window.
  int sent = 0;
  while (sent < 2000 && Value(Metrics(), tripped) != 1) {
    Tally t = Rest(10);
    ASSERT_EQ(t.status, (std::map<int, int>{{200, 10}})) << router_.Log();
    sent += 10;
  }
  std::string m = Metrics();
  ASSERT_EQ(Value(m, tripped), 1) << m;
  const double canary_requests = Requests(m, "canary", "5xx");
  EXPECT_GE(canary_requests, 20) << m;
  EXPECT_EQ(Requests(m, "canary", "2xx"), 0);
  const double diverted_before = Value(m, diverted);
  // From now on the canary gets nothing, over REST and gRPC; exactly its share is diverted.
  EXPECT_EQ(Rest(100).revision, (std::map<std::string, int>{{"stable", 100}}));
  EXPECT_EQ(Grpc(100).status, (std::map<int, int>{{0, 100}}));
  m = Metrics();
  EXPECT_EQ(Requests(m, "canary", "5xx") + Requests(m, "canary", "2xx"), canary_requests) << m;
  EXPECT_EQ(Value(m, diverted), diverted_before + 100) << m;
  EXPECT_EQ(Retries(m, "2xx"), canary_requests);
  EXPECT_NE(router_.Log().find("canary guard tripped"), std::string::npos) << router_.Log();
}

TEST_F(CanaryProcessTest, AKilledCanaryCostsCallersNothing) {
  stable_ = StartServer({});
  canary_ = StartServer({});
  StartRouter(10, kNoGuard);
  EXPECT_EQ(Rest(10).status, (std::map<int, int>{{200, 10}}));
  canary_.process->Signal(SIGKILL);
  canary_.process->Wait(30s);
  Tally rest = Rest(100);
  EXPECT_EQ(rest.status, (std::map<int, int>{{200, 100}})) << router_.Log();
  Tally grpc = Grpc(100);
  EXPECT_EQ(grpc.status, (std::map<int, int>{{0, 100}})) << router_.Log();
  const std::string m = Metrics();
  // Refused connections are the canary's errors (code "error" over REST, UNAVAILABLE over gRPC).
  EXPECT_EQ(Requests(m, "canary", "error"), 10) << m;
  EXPECT_EQ(Requests(m, "canary", "5xx"), 10) << m;
  EXPECT_EQ(Retries(m, "2xx"), 20);
}

TEST_F(CanaryProcessTest, ASlowCanaryIsRetriedWithinTheCallersGrpcDeadline) {
  stable_ = StartServer({});
  canary_ = StartServer({"SLUICE_FAULT_DELAY_MS=5000"});
  // The router gives a backend 500 ms; the caller allows 10 s: the stable gets the rest.
  StartRouter(50, {"--guard-max-error-rate", "1", "--upstream-timeout-ms", "500"});
  Tally grpc = Grpc(6);
  EXPECT_EQ(grpc.status, (std::map<int, int>{{0, 6}})) << router_.Log();
  std::string m = Metrics();
  EXPECT_EQ(Requests(m, "canary", "5xx"), 3) << m;  // DEADLINE_EXCEEDED
  EXPECT_EQ(Retries(m, "2xx"), 3);
  // Over REST the timeout is the whole budget: nothing is left for a retry, and it says so.
  Tally rest = Rest(4);
  EXPECT_EQ(rest.status, (std::map<int, int>{{200, 2}, {504, 2}})) << router_.Log();
  m = Metrics();
  EXPECT_EQ(Retries(m, "expired"), 2) << m;
}

TEST_F(CanaryProcessTest, TheBudgetCapsRetriesWhenTheStableFailsToo) {
  stable_ = StartServer(kFailAll);
  canary_ = StartServer(kFailAll);
  StartRouter(50, {"--guard-max-error-rate", "1", "--retry-budget-percent", "10"});
  Tally rest = Rest(200);
  EXPECT_EQ(rest.status, (std::map<int, int>{{500, 200}})) << router_.Log();
  const std::string m = Metrics();
  const double sent = Retries(m, "5xx");
  const double denied = Retries(m, "denied");
  EXPECT_EQ(sent + denied, 100) << m;  // every canary failure asked for one
  // 10 % of 200 requests plus the burst of 20: at most 40 extra requests for the stable.
  EXPECT_LE(sent, 40) << m;
  EXPECT_GE(denied, 60) << m;
  EXPECT_EQ(Requests(m, "stable", "5xx"), 100 + sent) << m;
  // The stable's own failures are never retried.
  EXPECT_EQ(Value(m, Series("sluice_router_retries_total",
                            {{"outcome", "5xx"}, {"revision", "stable"}, {"to", "canary"}})),
            0);
}

}  // namespace
}  // namespace sluice::testing
