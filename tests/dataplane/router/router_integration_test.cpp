// sluice-router as a real process against a real kube-apiserver (tests/support) and real
// sluice-server processes on the committed fraud model: the ModelDeployment's status.traffic and
// the revisions' EndpointSlices are written through the API, and the router is observed from the
// outside (answers, /readyz, /metrics).
//
// kube-apiserver refuses loopback addresses in EndpointSlices, so the test runs in a private
// network namespace in which 10.244.0.0/16 is local (e2e/procnode/pod_network.h): the backends
// listen on 10.244.1.X, the API server and the router on 127.0.0.1.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/lib/api/yaml_json.h"
#include "tests/dataplane/grpc/grpc_test_client.h"
#include "tests/lib/http/http_test_client.h"
#include "tests/dataplane/router/test_backend.h"
#include "tests/dataplane/server/server_process.h"
#include "lib/kube/client.h"
#include "e2e/procnode/pod_network.h"
#include "dataplane/router/traffic_source.h"
#include "tests/support/api_server.h"
#include "tests/support/process.h"
#include "lib/api/object_labels.h"

namespace sluice::dataplane {
namespace {

namespace http = boost::beast::http;
using nlohmann::json;
using sluice::testing::HttpReply;
using sluice::testing::HttpTestClient;
using sluice::testing::ServerProcess;

const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;
constexpr char kRevisionHeader[] = "x-sluice-revision";
constexpr char kMd[] = "fraud";
// Fixed ports are free: the test has a network namespace of its own, and each backend an address.
constexpr int kServerGrpcPort = 9081;
constexpr int kRouterGrpcPort = 18081;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// One GET to `address`:`port` (HttpTestClient speaks to 127.0.0.1 only).
std::optional<HttpReply> GetAt(const std::string& address, uint16_t port, const std::string& path) {
  namespace beast = boost::beast;
  boost::asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(2));
  stream.connect({boost::asio::ip::make_address(address), port}, ec);
  if (ec) return std::nullopt;
  http::request<http::string_body> req{http::verb::get, path, 11};
  req.set(http::field::host, address);
  http::write(stream, req, ec);
  if (ec) return std::nullopt;
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res, ec);
  if (ec) return std::nullopt;
  HttpReply reply;
  reply.status = res.result_int();
  reply.body = res.body();
  return reply;
}

// Everything the tests share: the API server with the CRD, an admin client, and the backends:
// three sluice-server processes (revisions v1, v2, v3) and an in-process backend answering 500.
class Environment {
 public:
  static Environment& Get() {
    static Environment* env = new Environment();
    return *env;
  }

  kube::Client& client() { return *client_; }
  const std::string& kubeconfig() const { return kubeconfig_; }
  uint16_t server_port(int i) const { return servers_[static_cast<size_t>(i)].port; }
  static std::string server_address(int i) { return "10.244.1." + std::to_string(i + 1); }
  uint16_t failing_port() const { return failing_->port(); }

  static std::string failing_address() { return "10.244.1.9"; }
  const std::string& error() const { return error_; }

 private:
  Environment() {
    auto& api = sluice::testing::SharedApiServer();
    kubeconfig_ = api.kubeconfig_path();
    auto config = kube::Config::FromKubeconfig(kubeconfig_);
    if (!config.ok()) {
      error_ = config.status().ToString();
      return;
    }
    auto client = kube::Client::Create(*config);
    if (!client.ok()) {
      error_ = client.status().ToString();
      return;
    }
    client_ = std::move(client).value();
    for (const json& crd : controllers::testing::LoadYamlDocuments(
             std::string(SLUICE_CRD_DIR) + "/sluice.dev_modeldeployments.yaml")) {
      auto applied = client_->Apply(kube::resources::kCustomResourceDefinitions, "", crd,
                                    "router-tests", true);
      if (!applied.ok()) {
        error_ = applied.status().ToString();
        return;
      }
    }
    if (!Eventually([&] { return client_->List(api::kModelDeploymentsGvr, "", {}).ok(); },
                    std::chrono::seconds(60))) {
      error_ = "modeldeployments are not served";
      return;
    }
    for (const char* version : {"v1", "v2", "v3"}) {
      const std::string address = server_address(static_cast<int>(servers_.size()));
      auto started = StartServer(address, version);
      if (!started.ok()) {
        error_ = started.status().ToString();
        return;
      }
      servers_.push_back(std::move(started).value());
    }
    failing_ = std::make_unique<testing::TestBackend>("failing", 1, std::chrono::seconds(120),
                                                      failing_address());
    failing_->set_answer([](const HttpRequest&) {
      HttpResponse res{HttpStatus::internal_server_error, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = R"({"error":"failing on purpose"})";
      return res;
    });
  }

  struct Backend {
    std::unique_ptr<sluice::testing::Subprocess> process;
    uint16_t port = 0;
  };

  // sluice-server on `address` (port 0, learnt from --port-file), ready on the fraud model.
  static Result<Backend> StartServer(const std::string& address, const std::string& version) {
    const std::string dir = ::testing::TempDir();
    const std::string port_file =
        dir + "/router-it-" + std::to_string(::getpid()) + "-" + version + ".port";
    std::remove(port_file.c_str());
    sluice::testing::SpawnOptions o;
    o.argv = {SLUICE_SERVER_BIN,
              "--http-address",
              address,
              "--http-port",
              "0",
              "--port-file",
              port_file,
              "--model-uri",
              kModelDir + "/fraud.json",
              "--model-name",
              "fraud",
              "--model-version",
              version,
              "--io-threads",
              "1",
              "--drain-grace-ms",
              "0",
              "--grpc-port",
              std::to_string(kServerGrpcPort)};
    o.log_path = port_file + ".log";
    ASSIGN_OR_RETURN(auto process, sluice::testing::Subprocess::Spawn(o));
    Backend b;
    b.process = std::move(process);
    const bool ready = Eventually([&] {
      if (b.port == 0) {
        std::ifstream in(port_file);
        int port = 0;
        if (in >> port && port > 0) b.port = static_cast<uint16_t>(port);
      }
      if (b.port == 0) return false;
      auto r = GetAt(address, b.port, "/v2/health/ready");
      return r && r->status == 200;
    });
    if (!ready) {
      return Unavailable("sluice-server " + version +
                         " did not get ready: " + sluice::testing::TailFile(o.log_path));
    }
    return b;
  }

  std::string kubeconfig_;
  std::unique_ptr<kube::Client> client_;
  std::vector<Backend> servers_;
  std::unique_ptr<testing::TestBackend> failing_;
  std::string error_;
};

json Target(const std::string& revision, int weight, int mirror = 0) {
  json t = {{"revision", revision}, {"weight", weight}};
  if (mirror > 0) t["mirrorPercent"] = mirror;
  return t;
}

class RouterIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Environment& env = Environment::Get();
    ASSERT_TRUE(env.error().empty()) << env.error();
    static int counter = 0;
    ns_ = "router-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    auto created = client().Create(
        kube::resources::kNamespaces, "",
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns_}}}});
    ASSERT_TRUE(created.ok()) << created.status();
  }

  void TearDown() override {
    if (router_) {
      router_->Signal(SIGKILL);
      router_.reset();
    }
    if (!ns_.empty() && Environment::Get().error().empty()) {
      (void)client().Delete(kube::resources::kNamespaces, "", ns_);
    }
  }

  kube::Client& client() { return Environment::Get().client(); }

  void CreateModelDeployment(const json& traffic_spec = json::object()) {
    json md = {{"apiVersion", "sluice.dev/v1alpha1"},
               {"kind", "ModelDeployment"},
               {"metadata", {{"name", kMd}, {"namespace", ns_}}},
               {"spec",
                {{"model", {{"uri", "file:///models/fraud/fraud.json"}, {"version", "1"}}},
                 {"replicas", 1}}}};
    if (!traffic_spec.empty()) md["spec"]["traffic"] = traffic_spec;
    auto created = client().Create(api::kModelDeploymentsGvr, ns_, md);
    ASSERT_TRUE(created.ok()) << created.status();
  }

  void SetTraffic(const std::vector<json>& targets) {
    const json traffic = targets;
    auto patched = client().Patch(api::kModelDeploymentsGvr, ns_, kMd, kube::PatchType::kMerge,
                                  json{{"status", {{"traffic", traffic}}}}.dump(),
                                  {.field_manager = "", .force = false, .subresource = "status"});
    ASSERT_TRUE(patched.ok()) << patched.status();
  }

  // One EndpointSlice for `revision` with one ready endpoint, `address`:`port`.
  void CreateSlice(const std::string& revision, const std::string& address, uint16_t port,
                   const std::string& suffix = "a") {
    json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                  {"kind", "EndpointSlice"},
                  {"metadata",
                   {{"name", revision + "-" + suffix},
                    {"namespace", ns_},
                    {"labels",
                     {{api::kServiceNameLabel, revision},
                      {"endpointslice.kubernetes.io/managed-by", "router-tests"}}}}},
                  {"addressType", "IPv4"},
                  {"ports",
                   {{{"name", "http"}, {"port", port}, {"protocol", "TCP"}},
                    {{"name", "grpc"}, {"port", kServerGrpcPort}, {"protocol", "TCP"}}}},
                  {"endpoints", {{{"addresses", {address}}, {"conditions", {{"ready", true}}}}}}};
    auto created = client().Create(kEndpointSlicesResource, ns_, slice);
    ASSERT_TRUE(created.ok()) << created.status();
  }

  void DeleteSlice(const std::string& revision, const std::string& suffix = "a") {
    ASSERT_TRUE(client().Delete(kEndpointSlicesResource, ns_, revision + "-" + suffix).ok());
  }

  void StartRouter(std::vector<std::string> extra = {}) {
    router_ = std::make_unique<ServerProcess>();
    // The admin port file is written before the traffic one, so it is there once Start returns.
    const std::string admin_file = ::testing::TempDir() + "/router-it-" +
                                   std::to_string(::getpid()) + "-" +
                                   std::to_string(++routers_started_) + ".admin-port";
    std::remove(admin_file.c_str());
    std::vector<std::string> args = {"--kubeconfig",       Environment::Get().kubeconfig(),
                                     "--namespace",        ns_,
                                     "--model-deployment", kMd,
                                     "--revision-header",  kRevisionHeader,
                                     "--io-threads",       "2",
                                     "--admin-port",       "0",
                                     "--admin-port-file",  admin_file};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(router_->Start(SLUICE_ROUTER_BIN, args)) << router_->Log();
    int admin = 0;
    std::ifstream(admin_file) >> admin;
    ASSERT_GT(admin, 0) << router_->Log();
    admin_port_ = static_cast<uint16_t>(admin);
    ASSERT_TRUE(Eventually([&] {
      HttpTestClient c(router_->port(), std::chrono::seconds(2));
      auto r = c.Get("/readyz");
      return r && r->status == 200;
    })) << router_->Log();
  }

  std::optional<HttpReply> Infer(HttpTestClient& c, const std::string& user = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!user.empty()) headers.emplace_back("x-user", user);
    return c.Request(http::verb::post, "/v2/models/fraud/infer", sample_, headers);
  }

  // Sends `n` requests and counts them by the revision that answered.
  std::map<std::string, int> Spread(int n) {
    HttpTestClient c(router_->port());
    std::map<std::string, int> out;
    for (int i = 0; i < n; ++i) {
      auto r = Infer(c);
      if (!r) {
        ++out["<no answer>"];
        continue;
      }
      ++out[r->status == 200 ? r->header(kRevisionHeader) : "<" + std::to_string(r->status) + ">"];
    }
    return out;
  }

  // The router's own metrics, from its admin port.
  std::string Metrics() {
    HttpTestClient c(admin_port_);
    auto r = c.Get("/metrics");
    return r ? r->body : "";
  }
  static bool Has(const std::string& text, const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
  }

  std::string ns_;
  std::unique_ptr<ServerProcess> router_;
  uint16_t admin_port_ = 0;
  static inline int routers_started_ = 0;
  const std::string sample_ = ReadFile(kModelDir + "/sample_request.json");
};

TEST_F(RouterIntegrationTest, SplitsByTheStatusWeightsExactly) {
  Environment& env = Environment::Get();
  CreateModelDeployment();
  SetTraffic({Target("fraud-v1", 90), Target("fraud-v2", 10)});
  CreateSlice("fraud-v1", env.server_address(0), env.server_port(0));
  CreateSlice("fraud-v2", env.server_address(1), env.server_port(1));
  StartRouter();
  ASSERT_TRUE(Eventually([&] {
    return Metrics().find("sluice_router_endpoints{revision=\"fraud-v2\"} 1") != std::string::npos;
  })) << Metrics();
  EXPECT_EQ(Spread(100), (std::map<std::string, int>{{"fraud-v1", 90}, {"fraud-v2", 10}}));
  // The answer is the backend's, with the right model version for the revision.
  HttpTestClient c(router_->port());
  for (int i = 0; i < 10; ++i) {
    auto r = Infer(c);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200) << r->body;
    const json body = json::parse(r->body);
    EXPECT_EQ(body.value("model_version", ""),
              r->header(kRevisionHeader) == "fraud-v1" ? "v1" : "v2");
  }
  const std::string m = Metrics();
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="2xx",revision="fraud-v1"} 99)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="2xx",revision="fraud-v2"} 11)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_traffic_weight{revision="fraud-v1"} 90)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_request_duration_seconds_count{revision="fraud-v1"} 99)"))
      << m;
  // The traffic port keeps no /metrics of its own: the path goes to a revision like any other.
  auto forwarded = c.Get("/metrics");
  ASSERT_TRUE(forwarded.has_value());
  EXPECT_EQ(forwarded->body.find("sluice_router_"), std::string::npos) << forwarded->body;
  EXPECT_NE(forwarded->body.find("sluice_server_"), std::string::npos) << forwarded->body;
  // Both ports answer the health checks.
  HttpTestClient admin(admin_port_);
  auto ready = admin.Get("/readyz");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200);
}

TEST_F(RouterIntegrationTest, ForwardsGrpcByTheSameWeightsAndMetrics) {
  Environment& env = Environment::Get();
  CreateModelDeployment();
  SetTraffic({Target("fraud-v1", 75), Target("fraud-v2", 25)});
  CreateSlice("fraud-v1", env.server_address(0), env.server_port(0));
  CreateSlice("fraud-v2", env.server_address(1), env.server_port(1));
  StartRouter({"--grpc-port", std::to_string(kRouterGrpcPort)});
  ASSERT_TRUE(Eventually([&] {
    return Metrics().find("sluice_router_endpoints{revision=\"fraud-v2\"} 1") != std::string::npos;
  })) << Metrics();
  sluice::testing::GrpcTestClient grpc_client(kRouterGrpcPort);
  const auto request = sluice::testing::Fp32Request("fraud", {std::vector<float>(12, 1.0f)}, false);
  std::map<std::string, int> served;
  for (int i = 0; i < 40; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    inference::ModelInferResponse response;
    const grpc::Status status = grpc_client.stub().ModelInfer(&ctx, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << router_->Log();
    ASSERT_EQ(response.outputs_size(), 1);
    // The revision named in the metadata is the one whose server answered.
    auto rev = ctx.GetServerInitialMetadata().find(kRevisionHeader);
    ASSERT_NE(rev, ctx.GetServerInitialMetadata().end());
    const std::string revision(rev->second.data(), rev->second.size());
    EXPECT_EQ(response.model_version(), revision == "fraud-v1" ? "v1" : "v2");
    ++served[revision];
  }
  EXPECT_EQ(served, (std::map<std::string, int>{{"fraud-v1", 30}, {"fraud-v2", 10}}));
  // A model the backends do not serve: their NOT_FOUND comes back, counted as a 4xx.
  inference::ModelInferRequest unknown = request;
  unknown.set_model_name("nope");
  grpc::ClientContext ctx;
  inference::ModelInferResponse response;
  EXPECT_EQ(grpc_client.stub().ModelInfer(&ctx, unknown, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // REST and gRPC share one schedule and one set of series.
  EXPECT_EQ(Spread(4), (std::map<std::string, int>{{"fraud-v1", 3}, {"fraud-v2", 1}}));
  const std::string m = Metrics();
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="2xx",revision="fraud-v1"} 33)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="2xx",revision="fraud-v2"} 11)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="4xx",revision="fraud-v1"} 1)") !=
              Has(m, R"(sluice_router_requests_total{code="4xx",revision="fraud-v2"} 1)"))
      << m;
}

TEST_F(RouterIntegrationTest, AStatusChangeMovesTrafficWithinOneSecond) {
  Environment& env = Environment::Get();
  CreateModelDeployment();
  SetTraffic({Target("fraud-v1", 100), Target("fraud-v2", 0)});
  CreateSlice("fraud-v1", env.server_address(0), env.server_port(0));
  CreateSlice("fraud-v2", env.server_address(1), env.server_port(1));
  StartRouter();
  ASSERT_EQ(Spread(20), (std::map<std::string, int>{{"fraud-v1", 20}}));

  HttpTestClient c(router_->port());
  const auto changed = std::chrono::steady_clock::now();
  SetTraffic({Target("fraud-v1", 0), Target("fraud-v2", 100)});
  const auto written = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration moved{};
  bool seen = false;
  while (std::chrono::steady_clock::now() - written < std::chrono::seconds(5)) {
    auto r = Infer(c);
    ASSERT_TRUE(r.has_value());
    if (r->header(kRevisionHeader) == "fraud-v2") {
      moved = std::chrono::steady_clock::now() - written;
      seen = true;
      break;
    }
  }
  ASSERT_TRUE(seen) << router_->Log();
  const double ms = std::chrono::duration<double, std::milli>(moved).count();
  const double write_ms = std::chrono::duration<double, std::milli>(written - changed).count();
  std::cerr << "weight change reached the request path " << ms
            << " ms after the status write returned (the write took " << write_ms << " ms)\n";
  EXPECT_LT(moved, std::chrono::seconds(1));
  // And it stays moved.
  EXPECT_EQ(Spread(50), (std::map<std::string, int>{{"fraud-v2", 50}}));
}

TEST_F(RouterIntegrationTest, CountsEveryErrorClassPerRevision) {
  Environment& env = Environment::Get();
  CreateModelDeployment();
  // v1: a real server (2xx and 4xx), bad: answers 500, dead: nothing listens.
  SetTraffic({Target("fraud-v1", 50), Target("bad", 25), Target("dead", 25)});
  CreateSlice("fraud-v1", env.server_address(0), env.server_port(0));
  CreateSlice("bad", env.failing_address(), env.failing_port());
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor probe(ioc, {boost::asio::ip::make_address("10.244.1.8"), 0});
  const uint16_t dead_port = probe.local_endpoint().port();
  probe.close();
  CreateSlice("dead", "10.244.1.8", dead_port);
  StartRouter();
  ASSERT_TRUE(Eventually([&] {
    return Metrics().find("sluice_router_endpoints{revision=\"dead\"} 1") != std::string::npos;
  }));
  EXPECT_EQ(Spread(100),
            (std::map<std::string, int>{{"fraud-v1", 50}, {"<500>", 25}, {"<502>", 25}}));
  HttpTestClient c(router_->port());
  // A malformed request is the backend's 4xx, passed through.
  int v1_4xx = 0;
  for (int i = 0; i < 4; ++i) {
    auto r = c.Request(http::verb::post, "/v2/models/fraud/infer", "{not json");
    ASSERT_TRUE(r.has_value());
    if (r->status == 400) ++v1_4xx;
  }
  EXPECT_EQ(v1_4xx, 2);  // the other two went to `bad` (500) and `dead` (502)
  const std::string m = Metrics();
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="2xx",revision="fraud-v1"} 50)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="4xx",revision="fraud-v1"} 2)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="5xx",revision="bad"} 26)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="error",revision="dead"} 26)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="error",revision="fraud-v1"} 0)")) << m;
}

TEST_F(RouterIntegrationTest, MirrorsToAShadowRevision) {
  Environment& env = Environment::Get();
  CreateModelDeployment({{"mirror", {{"percent", 40}}}});
  SetTraffic({Target("fraud-v1", 100), Target("fraud-v3", 0, 40)});
  CreateSlice("fraud-v1", env.server_address(0), env.server_port(0));
  CreateSlice("fraud-v3", env.server_address(2), env.server_port(2));
  StartRouter();
  ASSERT_TRUE(Eventually([&] {
    return Metrics().find("sluice_router_endpoints{revision=\"fraud-v3\"} 1") != std::string::npos;
  }));
  EXPECT_EQ(Spread(100), (std::map<std::string, int>{{"fraud-v1", 100}}));
  std::string m;
  ASSERT_TRUE(Eventually([&] {
    m = Metrics();
    return Has(m, R"(sluice_router_mirror_requests_total{code="2xx",revision="fraud-v3"} 40)");
  })) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="2xx",revision="fraud-v3"} 0)")) << m;
  EXPECT_TRUE(Has(m, R"(sluice_router_requests_total{code="2xx",revision="fraud-v1"} 100)")) << m;
  // The shadow really served them: its own metrics say so.
  auto sm = GetAt(env.server_address(2), env.server_port(2), "/metrics");
  ASSERT_TRUE(sm.has_value());
  EXPECT_NE(sm->body.find(R"(version="v3"} )"), std::string::npos);
}

TEST_F(RouterIntegrationTest, StickyHeaderKeepsACallerOnOneRevision) {
  Environment& env = Environment::Get();
  CreateModelDeployment({{"sticky", {{"header", "x-user"}}}});
  SetTraffic({Target("fraud-v1", 50), Target("fraud-v2", 50)});
  CreateSlice("fraud-v1", env.server_address(0), env.server_port(0));
  CreateSlice("fraud-v2", env.server_address(1), env.server_port(1));
  StartRouter();
  ASSERT_TRUE(Eventually([&] {
    return Metrics().find("sluice_router_endpoints{revision=\"fraud-v2\"} 1") != std::string::npos;
  }));
  HttpTestClient c(router_->port());
  std::map<std::string, int> callers;
  for (int user = 0; user < 30; ++user) {
    std::string first;
    for (int i = 0; i < 4; ++i) {
      auto r = Infer(c, "caller-" + std::to_string(user));
      ASSERT_TRUE(r.has_value());
      const std::string rev = r->header(kRevisionHeader);
      if (i == 0) first = rev;
      ASSERT_EQ(rev, first) << "caller-" << user;
    }
    ++callers[first];
  }
  EXPECT_GT(callers["fraud-v1"], 3);
  EXPECT_GT(callers["fraud-v2"], 3);
}

TEST_F(RouterIntegrationTest, NoReadyEndpointIs503) {
  Environment& env = Environment::Get();
  CreateModelDeployment();
  SetTraffic({Target("fraud-v1", 100)});
  StartRouter();  // ready: listed, though nothing can serve
  HttpTestClient c(router_->port());
  auto r = Infer(c);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(json::parse(r->body).value("error", "").find("no revision"), std::string::npos)
      << r->body;
  // An endpoint appears: served. It goes away: 503 again.
  CreateSlice("fraud-v1", env.server_address(0), env.server_port(0));
  ASSERT_TRUE(Eventually([&] {
    auto a = Infer(c);
    return a && a->status == 200;
  }));
  DeleteSlice("fraud-v1");
  ASSERT_TRUE(Eventually([&] {
    auto a = Infer(c);
    return a && a->status == 503;
  }));
  const std::string m = Metrics();
  EXPECT_TRUE(Has(m, R"(sluice_router_endpoints{revision="fraud-v1"} 0)")) << m;
}

TEST_F(RouterIntegrationTest, DrainsWithoutAFailedRequest) {
  Environment& env = Environment::Get();
  CreateModelDeployment();
  SetTraffic({Target("fraud-v1", 50), Target("fraud-v2", 50)});
  CreateSlice("fraud-v1", env.server_address(0), env.server_port(0));
  CreateSlice("fraud-v2", env.server_address(1), env.server_port(1));
  StartRouter({"--drain-grace-ms", "3000", "--drain-timeout-ms", "10000"});

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      HttpTestClient c(router_->port());
      while (!stop.load()) {
        auto r = Infer(c);
        if (r && r->status == 200) {
          ok.fetch_add(1);
        } else {
          failed.fetch_add(1);
        }
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return ok.load() >= 200; }));
  const int at_term = ok.load();
  router_->Signal(SIGTERM);
  // Not ready at once, and requests keep being served through the grace period.
  ASSERT_TRUE(Eventually(
      [&] {
        HttpTestClient c(router_->port(), std::chrono::seconds(1));
        auto r = c.Get("/readyz");
        return r && r->status == 503;
      },
      std::chrono::seconds(2)));
  EXPECT_TRUE(Eventually([&] { return ok.load() >= at_term + 20; }, std::chrono::seconds(2)));
  // The load balancer in front stops sending once it sees not-ready: so do the clients.
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  auto code = router_->Wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value()) << router_->Log();
  EXPECT_EQ(*code, 0) << router_->Log();
  EXPECT_NE(router_->Log().find("drained; every in-flight request answered"), std::string::npos)
      << router_->Log();
  router_.reset();
}

TEST_F(RouterIntegrationTest, NotReadyUntilTheApiServerAnswers) {
  // A kubeconfig whose server does not answer: the router listens and is alive, never ready.
  std::string kubeconfig = ReadFile(Environment::Get().kubeconfig());
  const std::string url = sluice::testing::SharedApiServer().url();
  ASSERT_NE(kubeconfig.find(url), std::string::npos);
  kubeconfig.replace(kubeconfig.find(url), url.size(), "https://127.0.0.1:1");
  const std::string path = ::testing::TempDir() + "/router-it-unreachable.kubeconfig";
  {
    std::ofstream out(path);
    out << kubeconfig;
  }
  ServerProcess router;
  ASSERT_TRUE(router.Start(SLUICE_ROUTER_BIN, {"--kubeconfig", path, "--namespace", ns_,
                                               "--model-deployment", kMd, "--admin-port", "0"}))
      << router.Log();
  HttpTestClient c(router.port());
  ASSERT_TRUE(Eventually([&] {
    auto r = c.Get("/healthz");
    return r && r->status == 200;
  }));
  for (int i = 0; i < 5; ++i) {
    auto ready = c.Get("/readyz");
    ASSERT_TRUE(ready.has_value());
    EXPECT_EQ(ready->status, 503);
    EXPECT_NE(ready->body.find("not listed"), std::string::npos) << ready->body;
    auto r = Infer(c);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 503);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST_F(RouterIntegrationTest, HelpDocumentsEveryFlagAndBadFlagsFail) {
  auto help = sluice::testing::RunCommand({SLUICE_ROUTER_BIN, "--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->status.success());
  for (const char* flag :
       {"--model-deployment", "--namespace", "--http-port", "--http-address", "--upstream-port",
        "--kubeconfig", "--log-format", "--upstream-timeout-ms", "--connect-timeout-ms",
        "--max-idle-per-endpoint", "--drain-grace-ms", "--admin-port", "--admin-port-file"}) {
    EXPECT_NE(help->output.find(flag), std::string::npos) << flag;
  }
  auto missing = sluice::testing::RunCommand({SLUICE_ROUTER_BIN, "--namespace=x"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status.code, 2);
  EXPECT_NE(missing->output.find("--model-deployment is required"), std::string::npos);
}

}  // namespace
}  // namespace sluice::dataplane

// Enters the private network before anything else, while the process has one thread.
int main(int argc, char** argv) {
  auto cidr = sluice::procnode::ParseCidr("10.244.0.0/16");
  sluice::Status s = cidr.ok() ? sluice::procnode::EnterPrivateNetwork(*cidr) : cidr.status();
  if (!s.ok()) {
    std::fprintf(stderr, "cannot set up the private network: %s\n", s.ToString().c_str());
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
