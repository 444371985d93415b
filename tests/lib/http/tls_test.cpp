#include "lib/http/tls.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "lib/http/http_server.h"
#include "tests/support/pki.h"
#include "tests/support/tls_files.h"

namespace sluice {
namespace {

using testing::CertificateAuthority;
using testing::CertificateRequest;
using testing::CertifiedKey;
using testing::MountedTlsSecret;
using testing::TlsTestClient;
namespace http = boost::beast::http;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-tls-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto ca = CertificateAuthority::Create("sluice test CA");
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = std::move(ca).value();
    secret_ = std::make_unique<MountedTlsSecret>(dir_.string() + "/secret");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CertifiedKey Leaf() {
    CertificateRequest req;
    req.common_name = "sluice-server";
    req.dns_names = {"localhost"};
    req.ip_addresses = {"127.0.0.1"};
    req.server_auth = true;
    auto leaf = ca_->Issue(req);
    EXPECT_TRUE(leaf.ok()) << leaf.status().ToString();
    return leaf.ok() ? *leaf : CertifiedKey{};
  }

  std::unique_ptr<ReloadingTlsContext> Reloading(std::chrono::milliseconds poll,
                                                 std::function<void(const Status&)> cb = {}) {
    ReloadingTlsOptions o;
    o.files = {secret_->cert_file(), secret_->key_file(), ""};
    o.poll_period = poll;
    o.on_reload = std::move(cb);
    auto r = ReloadingTlsContext::Create(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  std::unique_ptr<HttpServer> Serve(std::shared_ptr<const TlsContextSource> tls) {
    auto router = std::make_shared<HttpRouter>();
    router->Handle(HttpVerb::get, "/hello", [](const HttpRequest&, Responder r) {
      r.SendBody(HttpStatus::ok, "text/plain", "hello over tls");
    });
    router->Handle(HttpVerb::post, "/echo", [](const HttpRequest& req, Responder r) {
      r.SendBody(HttpStatus::ok, "text/plain", req.body());
    });
    HttpServerOptions o;
    o.io_threads = 2;
    o.tls = std::move(tls);
    o.header_timeout = std::chrono::milliseconds(2'000);
    auto s = HttpServer::Create(o, router);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  std::string Fingerprint(const CertifiedKey& k) {
    auto f = CertificateFingerprint(k.cert_pem);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? *f : "";
  }

  std::filesystem::path dir_;
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<MountedTlsSecret> secret_;
};

TEST_F(TlsTest, ContextRefusesMissingFilesAndMismatchedKey) {
  auto a = Leaf();
  auto b = Leaf();
  ASSERT_TRUE(secret_->Write(a, ca_->cert_pem()).ok());
  auto missing = MakeServerTlsContext({dir_.string() + "/nope.crt", secret_->key_file(), ""});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.crt"), std::string::npos)
      << missing.status().ToString();

  const std::string other_key = dir_.string() + "/other.key";
  ASSERT_TRUE(testing::WriteFile(other_key, b.key_pem, 0600).ok());
  auto mismatched = MakeServerTlsContext({secret_->cert_file(), other_key, ""});
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("other.key"), std::string::npos)
      << mismatched.status().ToString();

  EXPECT_TRUE(MakeServerTlsContext({secret_->cert_file(), secret_->key_file(), ""}).ok());
  EXPECT_FALSE(MakeClientTlsContext(dir_.string() + "/no-ca.crt").ok());
  EXPECT_TRUE(MakeClientTlsContext(secret_->ca_file()).ok());
}

TEST_F(TlsTest, ServesHttpsAndRefusesPlainHttp) {
  auto leaf = Leaf();
  ASSERT_TRUE(secret_->Write(leaf, ca_->cert_pem()).ok());
  std::shared_ptr<ReloadingTlsContext> tls = Reloading(std::chrono::milliseconds(0));
  ASSERT_NE(tls, nullptr);
  auto server = Serve(tls);
  ASSERT_NE(server, nullptr);

  auto client = TlsTestClient::Connect(server->port(), secret_->ca_file(), "localhost");
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->peer_fingerprint(), Fingerprint(leaf));
  for (int i = 0; i < 3; ++i) {  // keep-alive: several requests on one connection
    auto got = (*client)->Request(http::verb::post, "/echo", "payload " + std::to_string(i));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->status, 200);
    EXPECT_EQ(got->body, "payload " + std::to_string(i));
  }

  const std::string plain = testing::PlainHttpExchange(server->port());
  EXPECT_EQ(plain.find("HTTP/1.1"), std::string::npos) << plain;

  // A client that does not trust the issuing CA fails the handshake.
  auto other_ca = CertificateAuthority::Create("another CA");
  ASSERT_TRUE(other_ca.ok());
  const std::string other_ca_file = dir_.string() + "/other-ca.crt";
  ASSERT_TRUE(testing::WriteFile(other_ca_file, (*other_ca)->cert_pem()).ok());
  EXPECT_FALSE(TlsTestClient::Connect(server->port(), other_ca_file).ok());
  // Wrong name.
  EXPECT_FALSE(
      TlsTestClient::Connect(server->port(), secret_->ca_file(), "elsewhere.example").ok());
}

TEST_F(TlsTest, SymlinkSwapServesTheNewCertificateToNewConnections) {
  auto first = Leaf();
  ASSERT_TRUE(secret_->Write(first, ca_->cert_pem()).ok());
  std::shared_ptr<ReloadingTlsContext> tls = Reloading(std::chrono::milliseconds(0));
  ASSERT_NE(tls, nullptr);
  auto server = Serve(tls);
  ASSERT_NE(server, nullptr);
  auto old_conn = TlsTestClient::Connect(server->port(), secret_->ca_file());
  ASSERT_TRUE(old_conn.ok()) << old_conn.status().ToString();
  EXPECT_EQ((*old_conn)->peer_fingerprint(), Fingerprint(first));

  EXPECT_TRUE(tls->CheckNow().ok());  // nothing changed
  EXPECT_EQ(tls->reloads(), 0u);

  auto second = Leaf();
  ASSERT_TRUE(secret_->Write(second, ca_->cert_pem()).ok());
  ASSERT_TRUE(tls->CheckNow().ok());
  EXPECT_EQ(tls->reloads(), 1u);

  auto new_conn = TlsTestClient::Connect(server->port(), secret_->ca_file());
  ASSERT_TRUE(new_conn.ok()) << new_conn.status().ToString();
  EXPECT_EQ((*new_conn)->peer_fingerprint(), Fingerprint(second));
  EXPECT_NE(Fingerprint(first), Fingerprint(second));
  // The connection made before the swap keeps working.
  auto got = (*old_conn)->Request(http::verb::get, "/hello");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, "hello over tls");
}

TEST_F(TlsTest, BadNewCertificateKeepsTheOldOneAndIsReported) {
  auto first = Leaf();
  ASSERT_TRUE(secret_->Write(first, ca_->cert_pem()).ok());
  std::atomic<int> errors{0};
  std::shared_ptr<ReloadingTlsContext> tls =
      Reloading(std::chrono::milliseconds(0), [&](const Status& s) {
        if (!s.ok()) errors.fetch_add(1);
      });
  ASSERT_NE(tls, nullptr);
  auto server = Serve(tls);
  ASSERT_NE(server, nullptr);

  // A key that belongs to another certificate.
  CertifiedKey broken = Leaf();
  broken.key_pem = Leaf().key_pem;
  ASSERT_TRUE(secret_->Write(broken, ca_->cert_pem()).ok());
  Status s = tls->CheckNow();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(tls->failures(), 1u);
  EXPECT_EQ(tls->reloads(), 0u);
  EXPECT_EQ(errors.load(), 1);
  // Not retried until the files change again.
  EXPECT_TRUE(tls->CheckNow().ok());
  EXPECT_EQ(tls->failures(), 1u);

  auto conn = TlsTestClient::Connect(server->port(), secret_->ca_file());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  EXPECT_EQ((*conn)->peer_fingerprint(), Fingerprint(first));

  // Fixed: served.
  auto third = Leaf();
  ASSERT_TRUE(secret_->Write(third, ca_->cert_pem()).ok());
  EXPECT_TRUE(tls->CheckNow().ok());
  auto conn3 = TlsTestClient::Connect(server->port(), secret_->ca_file());
  ASSERT_TRUE(conn3.ok()) << conn3.status().ToString();
  EXPECT_EQ((*conn3)->peer_fingerprint(), Fingerprint(third));
}

TEST_F(TlsTest, PollingPicksUpTheSwapByItself) {
  auto first = Leaf();
  ASSERT_TRUE(secret_->Write(first, ca_->cert_pem()).ok());
  auto tls = Reloading(std::chrono::milliseconds(20));
  ASSERT_NE(tls, nullptr);
  tls->Start();
  ASSERT_TRUE(secret_->Write(Leaf(), ca_->cert_pem()).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (tls->reloads() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(tls->reloads(), 1u);
  tls->Stop();
}

}  // namespace
}  // namespace sluice
