// TLS on the real binaries: sluice-server serving HTTPS and TLS gRPC from a kubelet-style Secret
// mount, plain HTTP refused on that port, metrics in plain HTTP on --admin-port, a certificate
// swapped in place (the `..data` symlink) served to new connections without a restart, a broken
// one refused and counted while the previous one stays; and sluice-router terminating TLS in
// front of it and speaking TLS to it, verified against the Secret's CA.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "dataplane/grpc/grpc_predict_v2.grpc.pb.h"
#include "lib/http/tls.h"
#include "tests/dataplane/server/server_process.h"
#include "tests/lib/http/http_test_client.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"
#include "tests/support/tls_files.h"

namespace sluice::testing {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;

const std::string kModelDir = SLUICE_FRAUD_MODEL_DIR;

bool Eventually(const std::function<bool()>& condition, std::chrono::seconds timeout = 60s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

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

// A line of a Prometheus page, e.g. `name{result="error"}`, and its value; -1 when absent.
double MetricValue(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

std::shared_ptr<grpc::Channel> TlsChannel(uint16_t port, const std::string& ca_pem) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ca_pem;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::SslCredentials(o),
                                   args);
}

grpc::Status ModelMetadata(const std::shared_ptr<grpc::Channel>& channel,
                           inference::ModelMetadataResponse* out) {
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  inference::ModelMetadataRequest req;
  req.set_name("fraud");
  return stub->ModelMetadata(&ctx, req, out);
}

class TlsProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-tls-process-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto ca = CertificateAuthority::Create("sluice test CA");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::move(ca).value();
    secret_ = std::make_unique<MountedTlsSecret>((dir_ / "secret").string());
    first_ = Leaf();
    ASSERT_TRUE(secret_->Write(first_, ca_->cert_pem()).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CertifiedKey Leaf() {
    CertificateRequest req;
    req.common_name = "fraud";
    req.dns_names = {"localhost"};
    req.ip_addresses = {"127.0.0.1"};
    req.server_auth = true;
    auto leaf = ca_->Issue(req);
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    return leaf.ok() ? *leaf : CertifiedKey{};
  }

  static std::string Fingerprint(const CertifiedKey& k) {
    auto f = CertificateFingerprint(k.cert_pem);
    return f.ok() ? *f : "";
  }

  // Starts sluice-server with TLS from the Secret mount, gRPC and a plain admin port.
  void StartServer() {
    grpc_port_ = FreePort();
    admin_port_ = FreePort();
    ASSERT_TRUE(server_.Start(
        SLUICE_SERVER_BIN,
        {"--model-uri", "file://" + kModelDir + "/fraud.json", "--io-threads", "1", "--grpc-port",
         std::to_string(grpc_port_), "--admin-port", std::to_string(admin_port_), "--tls-cert-file",
         secret_->cert_file(), "--tls-key-file", secret_->key_file()}))
        << server_.Log();
    ASSERT_TRUE(Eventually([&] { return HttpsGet(server_.port(), "/v2/health/ready") == 200; }))
        << server_.Log();
  }

  int HttpsGet(uint16_t port, const std::string& path) {
    auto c = TlsTestClient::Connect(port, secret_->ca_file());
    if (!c.ok()) return -1;
    auto r = (*c)->Request(http::verb::get, path);
    return r.ok() ? r->status : -1;
  }

  std::string ServedFingerprint(uint16_t port) {
    auto c = TlsTestClient::Connect(port, secret_->ca_file());
    return c.ok() ? (*c)->peer_fingerprint() : "";
  }

  std::string AdminMetrics() {
    HttpTestClient c(admin_port_, std::chrono::seconds(5));
    auto r = c.Get("/metrics");
    return r && r->status == 200 ? r->body : "";
  }

  std::filesystem::path dir_;
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<MountedTlsSecret> secret_;
  CertifiedKey first_;
  ServerProcess server_;
  uint16_t grpc_port_ = 0;
  uint16_t admin_port_ = 0;
};

TEST_F(TlsProcessTest, ServerServesHttpsAndTlsGrpcOnlyAndMetricsInPlainHttp) {
  StartServer();
  auto c = TlsTestClient::Connect(server_.port(), secret_->ca_file(), "localhost");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->peer_fingerprint(), Fingerprint(first_));
  auto infer = (*c)->Request(http::verb::post, "/v2/models/fraud/infer",
                             ReadFile(kModelDir + "/sample_request.json"));
  ASSERT_TRUE(infer.ok()) << infer.status();
  EXPECT_EQ(infer->status, 200) << infer->body;
  EXPECT_NE(infer->body.find("\"outputs\""), std::string::npos) << infer->body;

  // Plain HTTP to the TLS port gets no HTTP answer.
  const std::string plain = PlainHttpExchange(server_.port());
  EXPECT_EQ(plain.find("HTTP/1.1"), std::string::npos) << plain;

  // The admin port: metrics and health in plain HTTP, no inference.
  const std::string metrics = AdminMetrics();
  EXPECT_NE(metrics.find("sluice_server_tls_reloads_total"), std::string::npos) << metrics;
  HttpTestClient admin(admin_port_, std::chrono::seconds(5));
  auto ready = admin.Get("/v2/health/ready");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200);
  auto models = admin.Get("/v2/models/fraud");
  ASSERT_TRUE(models.has_value());
  EXPECT_EQ(models->status, 404);

  // gRPC over TLS, verified against the CA; plain-text gRPC to the same port fails.
  inference::ModelMetadataResponse md;
  grpc::Status s = ModelMetadata(TlsChannel(grpc_port_, ca_->cert_pem()), &md);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(md.name(), "fraud");
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto insecure = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(grpc_port_),
                                            grpc::InsecureChannelCredentials(), args);
  inference::ModelMetadataResponse none;
  EXPECT_FALSE(ModelMetadata(insecure, &none).ok());

  server_.Signal(SIGTERM);
  server_.Signal(SIGTERM);
  EXPECT_EQ(server_.Wait(60s), 0) << server_.Log();
}

TEST_F(TlsProcessTest, ServerFollowsTheSecretAndKeepsTheOldCertificateWhenTheNewOneIsBroken) {
  StartServer();
  ASSERT_EQ(ServedFingerprint(server_.port()), Fingerprint(first_));
  auto kept = TlsTestClient::Connect(server_.port(), secret_->ca_file());
  ASSERT_TRUE(kept.ok()) << kept.status();

  // Renewed, as the kubelet writes it: new connections get the new certificate, no restart.
  const CertifiedKey second = Leaf();
  ASSERT_TRUE(secret_->Write(second, ca_->cert_pem()).ok());
  EXPECT_TRUE(Eventually([&] { return ServedFingerprint(server_.port()) == Fingerprint(second); }))
      << server_.Log();
  EXPECT_EQ(MetricValue(AdminMetrics(), R"(sluice_server_tls_reloads_total{result="reloaded"})"),
            1);
  // gRPC follows the same files.
  inference::ModelMetadataResponse md;
  EXPECT_TRUE(
      Eventually([&] { return ModelMetadata(TlsChannel(grpc_port_, ca_->cert_pem()), &md).ok(); }));
  // A connection made before the swap keeps working.
  auto r = (*kept)->Request(http::verb::get, "/v2/health/live");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);

  // A key that does not match: refused, counted, logged; the second certificate stays.
  CertifiedKey broken = Leaf();
  broken.key_pem = Leaf().key_pem;
  ASSERT_TRUE(secret_->Write(broken, ca_->cert_pem()).ok());
  EXPECT_TRUE(Eventually([&] {
    return MetricValue(AdminMetrics(), R"(sluice_server_tls_reloads_total{result="error"})") == 1;
  })) << server_.Log();
  EXPECT_EQ(ServedFingerprint(server_.port()), Fingerprint(second));
  EXPECT_NE(server_.Log().find("does not load"), std::string::npos) << server_.Log();
  EXPECT_EQ(HttpsGet(server_.port(), "/v2/health/ready"), 200);
}

TEST_F(TlsProcessTest, RouterTerminatesTlsAndSpeaksTlsToTheServer) {
  StartServer();
  ServerProcess router;
  const uint16_t router_grpc = FreePort();
  const std::string table =
      "tls-rev=100@127.0.0.1:" + std::to_string(server_.port()) + "+" + std::to_string(grpc_port_);
  ASSERT_TRUE(router.Start(
      SLUICE_ROUTER_BIN,
      {"--static-traffic", table, "--io-threads", "1", "--admin-port", "0", "--grpc-port",
       std::to_string(router_grpc), "--tls-cert-file", secret_->cert_file(), "--tls-key-file",
       secret_->key_file(), "--upstream-tls", "--upstream-ca-file", secret_->ca_file()}))
      << router.Log();
  ASSERT_TRUE(Eventually([&] { return HttpsGet(router.port(), "/readyz") == 200; }))
      << router.Log();

  auto c = TlsTestClient::Connect(router.port(), secret_->ca_file());
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string body = ReadFile(kModelDir + "/sample_request.json");
  for (int i = 0; i < 5; ++i) {  // reuses its TLS connection to the server
    auto infer = (*c)->Request(http::verb::post, "/v2/models/fraud/infer", body);
    ASSERT_TRUE(infer.ok()) << infer.status();
    EXPECT_EQ(infer->status, 200) << infer->body << "\n" << router.Log();
  }
  inference::ModelMetadataResponse md;
  grpc::Status s = ModelMetadata(TlsChannel(router_grpc, ca_->cert_pem()), &md);
  EXPECT_TRUE(s.ok()) << s.error_message() << "\n" << router.Log();
  EXPECT_EQ(md.name(), "fraud");

  // A router that trusts another CA refuses the server: 502, never plain text.
  auto other = CertificateAuthority::Create("another CA");
  ASSERT_TRUE(other.ok());
  const std::string other_ca = (dir_ / "other-ca.crt").string();
  ASSERT_TRUE(WriteFile(other_ca, (*other)->cert_pem()).ok());
  ServerProcess distrustful;
  ASSERT_TRUE(distrustful.Start(
      SLUICE_ROUTER_BIN, {"--static-traffic", table, "--io-threads", "1", "--admin-port", "0",
                          "--upstream-tls", "--upstream-ca-file", other_ca}))
      << distrustful.Log();
  HttpTestClient plain(distrustful.port(), std::chrono::seconds(10));
  std::optional<HttpReply> refused;
  ASSERT_TRUE(Eventually([&] {
    auto ready = plain.Get("/readyz");
    return ready && ready->status == 200;
  })) << distrustful.Log();
  refused = plain.Request(http::verb::post, "/v2/models/fraud/infer", body);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 502) << refused->body;
  EXPECT_NE(refused->body.find("TLS handshake"), std::string::npos) << refused->body;
}

}  // namespace
}  // namespace sluice::testing
