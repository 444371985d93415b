#include "lib/kube/curl_transport.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/lib/kube/loopback_server.h"
#include "tests/support/connect_proxy.h"
#include "tests/support/pki.h"

namespace sluice::kube {
namespace {

using testing::LoopbackServer;
using testing::LoopbackTls;
using testing::ServedRequest;
using testing::ServerConnection;
using Ms = std::chrono::milliseconds;

// A flag one thread raises and another waits for, with a deadline.
class Signal {
 public:
  void Raise() {
    std::lock_guard<std::mutex> lock(mu_);
    raised_ = true;
    cv_.notify_all();
  }
  bool Wait(Ms timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return raised_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool raised_ = false;
};

std::unique_ptr<LoopbackServer> Serve(LoopbackServer::Handler h, const LoopbackTls* tls = nullptr) {
  auto s = LoopbackServer::Start(std::move(h), tls);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

std::unique_ptr<CurlTransport> Transport(Config c, CurlTransportOptions o = {}) {
  auto t = CurlTransport::Create(c, o);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

Config ConfigFor(const LoopbackServer& s) {
  Config c;
  c.server = s.url();
  return c;
}

Request Get(std::string path, Ms timeout = Ms(10'000)) {
  Request r;
  r.path = std::move(path);
  r.timeout = timeout;
  r.headers.emplace_back("Accept", "application/json");
  return r;
}

TEST(CurlTransportTest, SendsRequestAndReadsAnswer) {
  std::mutex mu;
  ServedRequest seen;
  auto server = Serve([&](const ServedRequest& r, ServerConnection& c) {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen = r;
    }
    c.Respond(200, R"({"ok":true})", {{"Content-Type", "application/json"}, {"X-Thing", "v"}});
  });
  Config config = ConfigFor(*server);
  config.bearer_token = "tok";
  config.user_agent = "sluice-test/1";
  auto t = Transport(config);
  auto r = t->Send(Get("/api/v1/namespaces?limit=1"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"ok":true})");
  EXPECT_EQ(r->Header("x-thing"), "v");
  EXPECT_EQ(r->Header("content-type"), "application/json");
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.path, "/api/v1/namespaces?limit=1");
  EXPECT_EQ(seen.headers["authorization"], "Bearer tok");
  EXPECT_EQ(seen.headers["user-agent"], "sluice-test/1");
  EXPECT_EQ(seen.headers["accept"], "application/json");
}

TEST(CurlTransportTest, MethodsAndBodies) {
  auto server = Serve([&](const ServedRequest& r, ServerConnection& c) {
    auto ct = r.headers.find("content-type");
    c.Respond(200, r.method + "|" + (ct == r.headers.end() ? "" : ct->second) + "|" + r.body);
  });
  auto t = Transport(ConfigFor(*server));
  for (const std::string method : {"POST", "PUT", "PATCH", "DELETE"}) {
    Request r = Get("/x");
    r.method = method;
    r.body = "{\"m\":\"" + method + "\"}";
    r.headers.emplace_back("Content-Type", "application/merge-patch+json");
    auto resp = t->Send(r);
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp->body, method + "|application/merge-patch+json|" + r.body);
  }
  Request empty_post = Get("/x");
  empty_post.method = "POST";
  auto resp = t->Send(empty_post);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->body, "POST||");
  Request bare_delete = Get("/x");
  bare_delete.method = "DELETE";
  EXPECT_EQ(t->Send(bare_delete)->body, "DELETE||");
}

TEST(CurlTransportTest, HttpErrorsAreAnswersNotFailures) {
  auto server = Serve([](const ServedRequest&, ServerConnection& c) {
    c.Respond(404, R"({"kind":"Status","code":404})", {{"Retry-After", "3"}});
  });
  auto t = Transport(ConfigFor(*server));
  auto r = t->Send(Get("/missing"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->Header("retry-after"), "3");
}

TEST(CurlTransportTest, ConnectionsAreReused) {
  auto server = Serve([](const ServedRequest&, ServerConnection& c) { c.Respond(200, "{}"); });
  auto t = Transport(ConfigFor(*server));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(t->Send(Get("/r"))->status == 200);
  EXPECT_EQ(server->connections_accepted(), 1);
  EXPECT_EQ(t->connections_opened(), 1u);
}

TEST(CurlTransportTest, ConcurrentSendsUseAtMostOneConnectionPerThread) {
  auto server = Serve([](const ServedRequest& r, ServerConnection& c) { c.Respond(200, r.path); });
  auto t = Transport(ConfigFor(*server));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 25; ++j) {
        const std::string path = "/t" + std::to_string(i) + "/" + std::to_string(j);
        auto r = t->Send(Get(path));
        if (r.ok() && r->body == path) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_LE(server->connections_accepted(), 4);
}

// Sends `rounds` rounds of `width` requests that are all in flight at once (the server holds
// each answer until the whole round has arrived) and returns the connections the transport
// opened.
uint64_t ConnectionsForConcurrentRounds(size_t max_idle_handles, int width, int rounds) {
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  auto server = Serve([&](const ServedRequest& r, ServerConnection& c) {
    std::unique_lock<std::mutex> lock(mu);
    const int round = arrived++ / width;
    cv.notify_all();
    cv.wait_for(lock, Ms(30'000), [&] { return arrived >= (round + 1) * width; });
    lock.unlock();
    c.Respond(200, r.path);
  });
  CurlTransportOptions o;
  o.max_idle_handles = max_idle_handles;
  auto t = Transport(ConfigFor(*server), o);
  for (int round = 0; round < rounds; ++round) {
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < width; ++i) {
      threads.emplace_back([&] {
        auto r = t->Send(Get("/c"));
        if (r.ok() && r->status == 200) ++ok;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), width) << "round " << round;
  }
  return t->connections_opened();
}

TEST(CurlTransportTest, PoolSizedToTheConcurrencyKeepsEveryConnection) {
  // 24 requests at once, three times over: a pool of 24 idle handles opens 24 connections and
  // reuses them in the later rounds.
  EXPECT_EQ(ConnectionsForConcurrentRounds(24, 24, 3), 24u);
}

TEST(CurlTransportTest, PoolSmallerThanTheConcurrencyReopensConnections) {
  // Only 4 handles survive a round, so every later round opens 20 new connections.
  EXPECT_EQ(ConnectionsForConcurrentRounds(4, 24, 3), 24u + 20u + 20u);
}

TEST(CurlTransportTest, StreamDeliversChunksAsTheyArrive) {
  Signal first_delivered;
  std::atomic<bool> second_sent_in_time{false};
  auto server = Serve([&](const ServedRequest&, ServerConnection& c) {
    c.StartChunked(200);
    c.Chunk("{\"type\":\"ADDED\"}\n");
    // The second chunk goes out only once the client has seen the first: a transport that
    // buffered the body would never get here in time.
    second_sent_in_time = first_delivered.Wait(Ms(10'000));
    c.Chunk("{\"type\":\"DELETED\"}\n");
    c.EndChunks();
  });
  auto t = Transport(ConfigFor(*server));
  std::string got;
  int header_status = 0;
  auto r = t->Stream(
      Get("/watch", Ms(0)),
      [&](int status, const std::vector<Header>& headers) {
        header_status = status;
        return true;
      },
      [&](std::string_view chunk) {
        got.append(chunk);
        if (got.find("ADDED") != std::string::npos) first_delivered.Raise();
        return true;
      },
      nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 200);
  EXPECT_EQ(header_status, 200);
  EXPECT_TRUE(second_sent_in_time.load());
  EXPECT_EQ(got, "{\"type\":\"ADDED\"}\n{\"type\":\"DELETED\"}\n");
}

TEST(CurlTransportTest, StreamCancelIsPromptAndClosesTheConnection) {
  Signal peer_closed;
  auto server = Serve([&](const ServedRequest&, ServerConnection& c) {
    c.StartChunked(200);
    c.Chunk("{}\n");
    if (c.WaitForPeerClose(Ms(20'000))) peer_closed.Raise();
  });
  auto t = Transport(ConfigFor(*server));
  CancelFlag cancel{false};
  std::chrono::steady_clock::time_point cancelled_at;
  std::thread canceller;
  auto r = t->Stream(
      Get("/watch", Ms(0)), [](int, const std::vector<Header>&) { return true; },
      [&](std::string_view) {
        if (!canceller.joinable()) {
          canceller = std::thread([&] {
            cancelled_at = std::chrono::steady_clock::now();
            cancel.store(true);
          });
        }
        return true;
      },
      &cancel);
  const auto returned_at = std::chrono::steady_clock::now();
  canceller.join();
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_LT(returned_at - cancelled_at, Ms(1000));  // poll interval is 50ms
  EXPECT_TRUE(peer_closed.Wait(Ms(10'000)));
}

TEST(CurlTransportTest, StreamCallbackCanStop) {
  auto server = Serve([&](const ServedRequest&, ServerConnection& c) {
    c.StartChunked(200);
    c.Chunk("one\n");
    c.WaitForPeerClose(Ms(20'000));
  });
  auto t = Transport(ConfigFor(*server));
  int chunks = 0;
  auto r = t->Stream(
      Get("/watch", Ms(0)), [](int, const std::vector<Header>&) { return true; },
      [&](std::string_view) { return ++chunks, false; }, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 200);
  EXPECT_EQ(chunks, 1);
}

TEST(CurlTransportTest, SilentStreamHitsTheIdleTimeout) {
  auto server = Serve([&](const ServedRequest&, ServerConnection& c) {
    c.StartChunked(200);
    c.Chunk("{}\n");
    c.WaitForPeerClose(Ms(20'000));
  });
  auto t = Transport(ConfigFor(*server));
  Request req = Get("/watch", Ms(0));
  req.idle_timeout = Ms(300);
  const auto start = std::chrono::steady_clock::now();
  auto r = t->Stream(
      req, [](int, const std::vector<Header>&) { return true; },
      [](std::string_view) { return true; }, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout) << r.status();
  EXPECT_GE(std::chrono::steady_clock::now() - start, Ms(300));
  EXPECT_LT(std::chrono::steady_clock::now() - start, Ms(5000));
}

TEST(CurlTransportTest, RequestTimeout) {
  auto server =
      Serve([&](const ServedRequest&, ServerConnection& c) { c.WaitForPeerClose(Ms(20'000)); });
  auto t = Transport(ConfigFor(*server));
  auto r = t->Send(Get("/slow", Ms(300)));
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout) << r.status();
}

TEST(CurlTransportTest, ConnectionRefusedIsUnavailable) {
  int port;
  {
    auto server = Serve([](const ServedRequest&, ServerConnection&) {});
    port = server->port();
  }
  Config c;
  c.server = "http://127.0.0.1:" + std::to_string(port);
  auto r = Transport(c)->Send(Get("/x"));
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status();
}

TEST(CurlTransportTest, CreateRejectsBadServers) {
  Config c;
  EXPECT_EQ(CurlTransport::Create(c).status().code(), StatusCode::kInvalidArgument);
  c.server = "ftp://127.0.0.1";
  EXPECT_EQ(CurlTransport::Create(c).status().code(), StatusCode::kInvalidArgument);
}

TEST(CurlTransportTest, ServerPathPrefixIsKept) {
  auto server = Serve([](const ServedRequest& r, ServerConnection& c) { c.Respond(200, r.path); });
  Config c = ConfigFor(*server);
  c.server += "/k8s/clusters/c-1/";
  EXPECT_EQ(Transport(c)->Send(Get("/api/v1"))->body, "/k8s/clusters/c-1/api/v1");
}

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("sluice-token-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "token").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Replaced by rename, as the kubelet rotates projected tokens.
  void WriteToken(const std::string& token) {
    std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << token << "\n";
    std::filesystem::rename(tmp, path_);
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(TokenFileTest, RotatedTokenIsPickedUp) {
  auto server = Serve([](const ServedRequest& r, ServerConnection& c) {
    auto it = r.headers.find("authorization");
    c.Respond(200, it == r.headers.end() ? "" : it->second);
  });
  WriteToken("one");
  Config c = ConfigFor(*server);
  c.bearer_token = "one";
  c.token_file = path_;
  auto t = Transport(c);
  EXPECT_EQ(t->Send(Get("/"))->body, "Bearer one");
  WriteToken("two");
  EXPECT_EQ(t->Send(Get("/"))->body, "Bearer two");
  std::filesystem::remove(path_);  // unreadable: the last good token stays
  EXPECT_EQ(t->Send(Get("/"))->body, "Bearer two");
}

TEST_F(TokenFileTest, UnauthorizedAfterRotationIsResentOnce) {
  // The token rotates while the request is in flight: the 401 makes the transport read the file
  // again and resend with the new token.
  std::atomic<int> requests{0};
  auto server = Serve([&](const ServedRequest& r, ServerConnection& c) {
    ++requests;
    if (r.headers.at("authorization") == "Bearer old") {
      WriteToken("new");
      c.Respond(401, R"({"kind":"Status","code":401,"reason":"Unauthorized"})");
    } else {
      c.Respond(200, r.headers.at("authorization"));
    }
  });
  WriteToken("old");
  Config c = ConfigFor(*server);
  c.bearer_token = "old";
  c.token_file = path_;
  auto t = Transport(c);
  auto r = t->Send(Get("/"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "Bearer new");
  EXPECT_EQ(requests.load(), 2);
}

TEST_F(TokenFileTest, UnauthorizedWithoutRotationIsReturned) {
  auto server = Serve([&](const ServedRequest&, ServerConnection& c) { c.Respond(401, "{}"); });
  WriteToken("same");
  Config c = ConfigFor(*server);
  c.bearer_token = "same";
  c.token_file = path_;
  EXPECT_EQ(Transport(c)->Send(Get("/"))->status, 401);
}

// --- TLS ---

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = sluice::testing::CertificateAuthority::Create("test-ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::move(*ca);
    auto other = sluice::testing::CertificateAuthority::Create("other-ca");
    ASSERT_TRUE(other.ok());
    other_ca_ = std::move(*other);
    sluice::testing::CertificateRequest ip_cert;
    ip_cert.common_name = "server";
    ip_cert.ip_addresses = {"127.0.0.1"};
    ip_cert.server_auth = true;
    ip_server_ = *ca_->Issue(ip_cert);
    sluice::testing::CertificateRequest dns_cert;
    dns_cert.common_name = "server";
    dns_cert.dns_names = {"kubernetes.test"};
    dns_cert.server_auth = true;
    dns_server_ = *ca_->Issue(dns_cert);
    sluice::testing::CertificateRequest client;
    client.common_name = "alice";
    client.organizations = {"team-a"};
    client.client_auth = true;
    client_ = *ca_->Issue(client);
  }

  static void Echo(const ServedRequest& r, ServerConnection& c) {
    c.Respond(200, r.client_cert_subject);
  }

  std::unique_ptr<sluice::testing::CertificateAuthority> ca_, other_ca_;
  sluice::testing::CertifiedKey ip_server_, dns_server_, client_;
};

TEST_F(TlsTest, VerifiesWithTheConfiguredCaOnly) {
  LoopbackTls tls{ip_server_.cert_pem, ip_server_.key_pem, ""};
  auto server = Serve(&Echo, &tls);
  Config good = ConfigFor(*server);
  good.ca_pem = ca_->cert_pem();
  auto r = Transport(good)->Send(Get("/"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);

  Config wrong = ConfigFor(*server);
  wrong.ca_pem = other_ca_->cert_pem();
  EXPECT_EQ(Transport(wrong)->Send(Get("/")).status().code(), StatusCode::kFailedPrecondition);

  Config system_store = ConfigFor(*server);  // no CA: the system store, which lacks ours
  EXPECT_EQ(Transport(system_store)->Send(Get("/")).status().code(),
            StatusCode::kFailedPrecondition);

  Config insecure = ConfigFor(*server);
  insecure.insecure_skip_tls_verify = true;
  EXPECT_EQ(Transport(insecure)->Send(Get("/"))->status, 200);
}

TEST_F(TlsTest, TlsServerNameIsVerifiedInsteadOfTheAddress) {
  LoopbackTls tls{dns_server_.cert_pem, dns_server_.key_pem, ""};
  auto server = Serve(&Echo, &tls);
  Config by_address = ConfigFor(*server);
  by_address.ca_pem = ca_->cert_pem();
  EXPECT_EQ(Transport(by_address)->Send(Get("/")).status().code(), StatusCode::kFailedPrecondition);

  Config by_name = by_address;
  by_name.tls_server_name = "kubernetes.test";
  auto r = Transport(by_name)->Send(Get("/"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);

  Config wrong_name = by_address;
  wrong_name.tls_server_name = "other.test";
  EXPECT_EQ(Transport(wrong_name)->Send(Get("/")).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(TlsTest, ClientCertificateFromMemory) {
  LoopbackTls tls{ip_server_.cert_pem, ip_server_.key_pem, ca_->cert_pem()};
  auto server = Serve(&Echo, &tls);
  Config with_cert = ConfigFor(*server);
  with_cert.ca_pem = ca_->cert_pem();
  with_cert.client_cert_pem = client_.cert_pem;
  with_cert.client_key_pem = client_.key_pem;
  auto t = Transport(with_cert);
  auto r = t->Send(Get("/"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->body.find("CN=alice"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("O=team-a"), std::string::npos) << r->body;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(t->Send(Get("/"))->status, 200);
  EXPECT_EQ(t->connections_opened(), 1u);

  Config without = ConfigFor(*server);
  without.ca_pem = ca_->cert_pem();
  EXPECT_FALSE(Transport(without)->Send(Get("/")).ok());
}

TEST_F(TlsTest, ClientCertificateFromTheExecPlugin) {
  LoopbackTls tls{ip_server_.cert_pem, ip_server_.key_pem, ca_->cert_pem()};
  auto server = Serve(&Echo, &tls);
  const auto dir =
      std::filesystem::temp_directory_path() / ("sluice-exec-cert-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "cred.json") << nlohmann::json{
      {"apiVersion", "client.authentication.k8s.io/v1"},
      {"kind", "ExecCredential"},
      {"status",
       {{"clientCertificateData", client_.cert_pem},
        {"clientKeyData",
         client_.key_pem}}}}.dump();
  const std::string plugin = (dir / "plugin.sh").string();
  std::ofstream(plugin) << "#!/bin/sh\ncat '" << (dir / "cred.json").string() << "'\n";
  ::chmod(plugin.c_str(), 0755);
  Config c = ConfigFor(*server);
  c.ca_pem = ca_->cert_pem();
  c.exec =
      ExecConfig{plugin, {}, {}, "client.authentication.k8s.io/v1", "", false, "Never", "u", ""};
  auto t = Transport(c);
  auto r = t->Send(Get("/"));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->body.find("CN=alice"), std::string::npos) << r->body;
  EXPECT_EQ(t->exec_provider()->runs(), 1u);
}

TEST_F(TlsTest, ThroughAConnectProxyWithTlsServerName) {
  LoopbackTls tls{dns_server_.cert_pem, dns_server_.key_pem, ""};
  auto server = Serve(&Echo, &tls);
  auto proxy = sluice::testing::ConnectProxy::Start();
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  Config c = ConfigFor(*server);
  c.ca_pem = ca_->cert_pem();
  c.tls_server_name = "kubernetes.test";
  c.proxy_url = (*proxy)->url();
  auto r = Transport(c)->Send(Get("/"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  // The proxy is asked for the real address; TLS inside the tunnel verifies the server name.
  EXPECT_EQ((*proxy)->targets(),
            std::vector<std::string>{"127.0.0.1:" + std::to_string(server->port())});
}

// --- proxy-url ---

TEST(ProxyTest, EveryConnectionGoesThroughTheProxy) {
  auto server = Serve([](const ServedRequest& r, ServerConnection& c) { c.Respond(200, r.path); });
  auto proxy = sluice::testing::ConnectProxy::Start();
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  // no_proxy from the environment would send loopback traffic direct; the kubeconfig's proxy
  // is used regardless.
  setenv("no_proxy", "127.0.0.1,localhost", 1);
  Config c = ConfigFor(*server);
  c.proxy_url = (*proxy)->url();
  auto t = Transport(c);
  auto r = t->Send(Get("/api/v1/namespaces"));
  unsetenv("no_proxy");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "/api/v1/namespaces");
  const std::string target = "127.0.0.1:" + std::to_string(server->port());
  EXPECT_EQ((*proxy)->targets(), std::vector<std::string>{target});

  // A proxy that is not there is a transport failure naming the request.
  auto dead = sluice::testing::ConnectProxy::Start();
  ASSERT_TRUE(dead.ok());
  Config via_dead = ConfigFor(*server);
  via_dead.proxy_url = (*dead)->url();
  dead->reset();
  auto failed = Transport(via_dead)->Send(Get("/x"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable) << failed.status();
}

// --- exec credential plugins ---

class ExecTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-exec-transport-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // Prints tok-<run>, counting runs in a file.
    plugin_ = (dir_ / "plugin.sh").string();
    std::ofstream(plugin_)
        << "#!/bin/sh\nd='" << dir_.string()
        << "'\nn=$(( $(cat \"$d/count\" 2>/dev/null || echo 0) + 1 ))\necho $n > \"$d/count\"\n"
           "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
           "\"ExecCredential\",\"status\":{\"token\":\"tok-%s\"}}' \"$n\"\n";
    ::chmod(plugin_.c_str(), 0755);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Config WithPlugin(const LoopbackServer& s, const std::string& command) {
    Config c = ConfigFor(s);
    c.exec = ExecConfig{command, {},      {}, "client.authentication.k8s.io/v1", "", false,
                        "Never", "robot", ""};
    return c;
  }
  int Runs() {
    std::ifstream in(dir_ / "count");
    int n = 0;
    in >> n;
    return n;
  }
  std::filesystem::path dir_;
  std::string plugin_;
};

// Accepts only `token`; answers with the Authorization header it got.
LoopbackServer::Handler AcceptOnly(std::string token, std::atomic<int>* requests) {
  return [token, requests](const ServedRequest& r, ServerConnection& c) {
    ++*requests;
    auto it = r.headers.find("authorization");
    const std::string got = it == r.headers.end() ? "" : it->second;
    if (got == "Bearer " + token) {
      c.Respond(200, got);
    } else {
      c.Respond(401, R"({"kind":"Status","code":401,"reason":"Unauthorized"})");
    }
  };
}

TEST_F(ExecTransportTest, TokenIsCachedAcrossRequests) {
  std::atomic<int> requests{0};
  auto server = Serve(AcceptOnly("tok-1", &requests));
  auto t = Transport(WithPlugin(*server, plugin_));
  for (int i = 0; i < 5; ++i) {
    auto r = t->Send(Get("/"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->body, "Bearer tok-1");
  }
  EXPECT_EQ(Runs(), 1);
  EXPECT_EQ(requests.load(), 5);
}

TEST_F(ExecTransportTest, UnauthorizedRunsThePluginAgainAndResendsOnce) {
  std::atomic<int> requests{0};
  auto server = Serve(AcceptOnly("tok-2", &requests));
  auto t = Transport(WithPlugin(*server, plugin_));
  auto r = t->Send(Get("/"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "Bearer tok-2");
  EXPECT_EQ(requests.load(), 2);
  EXPECT_EQ(Runs(), 2);
  EXPECT_EQ(t->Send(Get("/"))->status, 200);
  EXPECT_EQ(Runs(), 2);

  // A server that refuses everything: one resend with the fresh token, then the 401 is the
  // answer (no loop).
  std::atomic<int> refused{0};
  auto strict = Serve(AcceptOnly("never", &refused));
  auto t2 = Transport(WithPlugin(*strict, plugin_));
  EXPECT_EQ(t2->Send(Get("/"))->status, 401);
  EXPECT_EQ(refused.load(), 2);
  EXPECT_EQ(Runs(), 4);
  // A stream answered 401 drops the credential; the next request runs the plugin.
  auto status = t2->Stream(
      Get("/watch"), [](int, const std::vector<Header>&) { return true; },
      [](std::string_view) { return true; }, nullptr);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 401);
  EXPECT_EQ(Runs(), 4);
  t2->Send(Get("/"));
  EXPECT_EQ(Runs(), 6);
}

TEST_F(ExecTransportTest, PluginFailureIsTheRequestsError) {
  std::atomic<int> requests{0};
  auto server = Serve(AcceptOnly("x", &requests));
  auto t = Transport(WithPlugin(*server, (dir_ / "absent-plugin").string()));
  auto r = t->Send(Get("/"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(r.status().message().find("absent-plugin"), std::string::npos) << r.status();
  auto s = t->Stream(
      Get("/watch"), [](int, const std::vector<Header>&) { return true; },
      [](std::string_view) { return true; }, nullptr);
  EXPECT_EQ(s.status().code(), StatusCode::kUnauthorized);
  EXPECT_EQ(requests.load(), 0);
}

TEST_F(ExecTransportTest, StaticTokenWinsOverThePlugin) {
  std::atomic<int> requests{0};
  auto server = Serve(AcceptOnly("static", &requests));
  Config c = WithPlugin(*server, plugin_);
  c.bearer_token = "static";
  c.client_cert_pem = "unused";  // with both a token and a certificate the plugin is not needed
  c.client_key_pem = "unused";
  // (plain http: the certificate is never presented)
  auto t = Transport(c);
  EXPECT_EQ(t->Send(Get("/"))->body, "Bearer static");
  EXPECT_EQ(Runs(), 0);
}

TEST_F(ExecTransportTest, ConcurrentRequestsRunThePluginOnce) {
  std::atomic<int> requests{0};
  auto server = Serve(AcceptOnly("tok-1", &requests));
  auto t = Transport(WithPlugin(*server, plugin_));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        auto r = t->Send(Get("/"));
        if (r.ok() && r->status == 200) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 30);
  EXPECT_EQ(Runs(), 1);
}

}  // namespace
}  // namespace sluice::kube
