#include "dataplane/router/proxy.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/write.hpp>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "lib/http/metrics_exposition.h"
#include "tests/dataplane/router/test_backend.h"
#include "tests/lib/http/http_test_client.h"

namespace sluice::dataplane {
namespace {

namespace http = boost::beast::http;
using sluice::testing::HttpTestClient;
using testing::TestBackend;

// The proxy on its own HttpServer (2 io threads), with a routing table the test sets.
class ProxyHarness {
 public:
  explicit ProxyHarness(ProxyOptions options = {}, int io_threads = 2)
      : registry_(std::make_shared<prometheus::Registry>()), metrics_(registry_) {
    options.model_deployment = "test/md";
    proxy_ = std::make_unique<Proxy>(options, state_, metrics_);
    auto router = std::make_shared<HttpRouter>();
    AddMetricsRoute(*router, registry_);
    proxy_->Register(*router);
    HttpServerOptions o;
    o.io_threads = io_threads;
    o.on_io_thread_stop = [p = proxy_.get()] { p->OnIoThreadStop(); };
    auto s = HttpServer::Create(o, router);
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) server_ = std::move(s).value();
  }
  ~ProxyHarness() {
    if (server_) server_->Shutdown();
  }

  void Route(const TrafficConfig& config,
             const std::vector<std::pair<std::string, std::vector<Endpoint>>>& endpoints) {
    auto previous = state_.Load();
    state_.Publish(RoutingTable::Build(config, endpoints, &metrics_, previous.get()));
  }

  uint16_t port() const { return server_->port(); }
  HttpServer& server() { return *server_; }
  Proxy& proxy() { return *proxy_; }
  std::string MetricsText() const { return RenderPrometheusText(*registry_); }
  double Requests(const std::string& rev, const std::string& code) {
    return metrics_.ForRevision(rev).requests[Index(code)]->Value();
  }
  double Mirrors(const std::string& rev, const std::string& code) {
    return metrics_.ForRevision(rev).mirror_requests[Index(code)]->Value();
  }
  uint64_t DurationCount(const std::string& rev) {
    return metrics_.ForRevision(rev).duration->Collect().histogram.sample_count;
  }

 private:
  static size_t Index(const std::string& code) {
    for (size_t c = 0; c < kCodeClasses; ++c) {
      if (CodeClassLabel(static_cast<CodeClass>(c)) == code) return c;
    }
    return 0;
  }
  std::shared_ptr<prometheus::Registry> registry_;
  RouterMetrics metrics_;
  RoutingState state_;
  std::unique_ptr<Proxy> proxy_;
  std::unique_ptr<HttpServer> server_;
};

Endpoint Local(uint16_t port) {
  return MakeEndpoint("127.0.0.1", port);
}

// A port with nothing listening (bound, then released).
uint16_t ClosedPort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const uint16_t port = a.local_endpoint().port();
  a.close();
  return port;
}

TEST(ProxyTest, PassesRequestAndAnswerThroughUnchanged) {
  TestBackend backend("b1");
  ASSERT_TRUE(backend.ok());
  const std::string binary_body("\x00\x01\x02{\"x\":1}\xff", 12);
  backend.set_answer([&](const HttpRequest&) {
    HttpResponse res{HttpStatus::created, 11};
    res.set(http::field::content_type, "application/octet-stream");
    res.set("Inference-Header-Content-Length", "7");
    res.set("X-Answer", "yes");
    res.body() = binary_body;
    return res;
  });
  ProxyHarness h;
  h.Route({{{"rev", 100, 0}}, ""}, {{"rev", {Local(backend.port())}}});

  HttpTestClient c(h.port());
  auto r = c.Request(http::verb::post, "/v2/models/fraud/infer?trace=1", binary_body,
                     {{"Content-Type", "application/octet-stream"},
                      {"Inference-Header-Content-Length", "9"},
                      {"X-Request-Id", "abc"},
                      {"Connection", "keep-alive, X-Hop"},
                      {"X-Hop", "drop me"},
                      {"Keep-Alive", "timeout=5"},
                      {"TE", "trailers"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, binary_body);
  EXPECT_EQ(r->header("Inference-Header-Content-Length"), "7");
  EXPECT_EQ(r->header("X-Answer"), "yes");
  EXPECT_EQ(r->header("Content-Type"), "application/octet-stream");
  EXPECT_TRUE(r->keep_alive);

  auto seen = backend.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v2/models/fraud/infer?trace=1");
  EXPECT_EQ(seen[0].body, binary_body);
  EXPECT_EQ(seen[0].header("Inference-Header-Content-Length"), "9");
  EXPECT_EQ(seen[0].header("X-Request-Id"), "abc");
  EXPECT_EQ(seen[0].header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(seen[0].header("Content-Length"), "12");
  EXPECT_EQ(seen[0].header("Host"), "127.0.0.1");
  EXPECT_FALSE(seen[0].has_header("X-Hop"));
  EXPECT_FALSE(seen[0].has_header("Keep-Alive"));
  EXPECT_FALSE(seen[0].has_header("TE"));
  EXPECT_FALSE(seen[0].has_header("Connection"));  // HTTP/1.1 keeps it alive by default

  // Another method and an empty body on the same client connection.
  auto g = c.Request(http::verb::get, "/v2/health/ready");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->status, 201);
  ASSERT_EQ(backend.seen().size(), 2u);
  EXPECT_EQ(backend.seen()[1].method, "GET");
  EXPECT_FALSE(backend.seen()[1].has_header("Content-Length"));  // no body, none expected
  EXPECT_EQ(h.Requests("rev", "2xx"), 2);
  EXPECT_EQ(h.DurationCount("rev"), 2u);
}

TEST(ProxyTest, BackendStatusesAreCountedByClass) {
  TestBackend backend("b");
  ASSERT_TRUE(backend.ok());
  backend.set_answer([](const HttpRequest& req) {
    const std::string t(req.target());
    HttpResponse res{t == "/500"   ? HttpStatus::internal_server_error
                     : t == "/404" ? HttpStatus::not_found
                     : t == "/302" ? HttpStatus::found
                                   : HttpStatus::ok,
                     11};
    res.body() = "{\"error\":\"as asked\"}";
    return res;
  });
  ProxyHarness h;
  h.Route({{{"rev", 100, 0}}, ""}, {{"rev", {Local(backend.port())}}});
  HttpTestClient c(h.port());
  for (const char* path : {"/500", "/500", "/404", "/302", "/ok"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(std::to_string(r->status),
              std::string(path).substr(1) == "ok" ? "200" : std::string(path).substr(1));
  }
  EXPECT_EQ(h.Requests("rev", "5xx"), 2);
  EXPECT_EQ(h.Requests("rev", "4xx"), 1);
  EXPECT_EQ(h.Requests("rev", "3xx"), 1);
  EXPECT_EQ(h.Requests("rev", "2xx"), 1);
  EXPECT_EQ(h.Requests("rev", "error"), 0);
  const std::string text = h.MetricsText();
  EXPECT_NE(text.find("sluice_router_requests_total{code=\"5xx\",revision=\"rev\"} 2"),
            std::string::npos)
      << text;
}

TEST(ProxyTest, SplitsExactlyByWeightAndFollowsANewTable) {
  TestBackend a("a");
  TestBackend b("b");
  ASSERT_TRUE(a.ok() && b.ok());
  ProxyHarness h;
  h.Route({{{"ra", 90, 0}, {"rb", 10, 0}}, ""},
          {{"ra", {Local(a.port())}}, {"rb", {Local(b.port())}}});
  HttpTestClient c(h.port());
  for (int i = 0; i < 100; ++i) {
    auto r = c.Post("/v2/models/m/infer", "{}");
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200);
  }
  EXPECT_EQ(a.count(), 90);
  EXPECT_EQ(b.count(), 10);
  h.Route({{{"ra", 0, 0}, {"rb", 100, 0}}, ""},
          {{"ra", {Local(a.port())}}, {"rb", {Local(b.port())}}});
  for (int i = 0; i < 20; ++i) ASSERT_EQ(c.Post("/v2/models/m/infer", "{}")->body, "b:{}");
  EXPECT_EQ(a.count(), 90);
  EXPECT_EQ(b.count(), 30);
  EXPECT_EQ(h.Requests("ra", "2xx"), 90);
  EXPECT_EQ(h.Requests("rb", "2xx"), 30);
}

TEST(ProxyTest, NoEndpointIs503WithAJsonError) {
  ProxyHarness h;
  HttpTestClient c(h.port());
  auto r = c.Get("/v2/models/m");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("\"error\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("test/md"), std::string::npos) << r->body;

  h.Route({{{"rev", 100, 0}}, ""}, {{"rev", {}}});
  r = c.Get("/v2/models/m");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("Content-Type"), "application/json");
}

TEST(ProxyTest, ConnectFailureIs502AndCountsAsError) {
  ProxyHarness h;
  h.Route({{{"rev", 100, 0}}, ""}, {{"rev", {Local(ClosedPort())}}});
  HttpTestClient c(h.port());
  auto r = c.Post("/v2/models/m/infer", "{}");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 502);
  EXPECT_NE(r->body.find("connect"), std::string::npos) << r->body;
  EXPECT_EQ(h.Requests("rev", "error"), 1);
  EXPECT_EQ(h.Requests("rev", "5xx"), 0);
}

TEST(ProxyTest, SlowBackendIs504AfterTheUpstreamTimeout) {
  TestBackend slow("slow");
  ASSERT_TRUE(slow.ok());
  slow.set_delay(std::chrono::milliseconds(1500));
  ProxyOptions o;
  o.upstream.request_timeout = std::chrono::milliseconds(200);
  ProxyHarness h(o);
  h.Route({{{"rev", 100, 0}}, ""}, {{"rev", {Local(slow.port())}}});
  HttpTestClient c(h.port());
  const auto start = std::chrono::steady_clock::now();
  auto r = c.Post("/v2/models/m/infer", "{}");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 504);
  EXPECT_NE(r->body.find("timed out"), std::string::npos) << r->body;
  EXPECT_GE(took, std::chrono::milliseconds(190));
  EXPECT_LT(took, std::chrono::milliseconds(1400));
  EXPECT_EQ(h.Requests("rev", "error"), 1);
  // The timed-out connection is not reused: the next request opens a fresh one and succeeds.
  slow.set_delay(std::chrono::milliseconds(0));
  r = c.Post("/v2/models/m/infer", "{}");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "slow:{}");
}

// A raw HTTP/1.1 backend run by a script: for each accepted connection, how many requests it
// answers (200 "ok", keep-alive) before it reads one more and closes without answering.
class ScriptedBackend {
 public:
  explicit ScriptedBackend(std::vector<int> answers_per_connection)
      : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        thread_([this, script = std::move(answers_per_connection)] { Run(script); }) {}
  ~ScriptedBackend() {
    // Wakes an accept() still waiting for a connection the script expected (Linux).
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted() const { return accepted_.load(); }

 private:
  // Reads one request (headers and a Content-Length body); false when the peer went away.
  static bool ReadRequest(boost::asio::ip::tcp::socket& s, std::string& pending) {
    boost::system::error_code ec;
    char buf[4096];
    for (;;) {
      const size_t end = pending.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t cl = pending.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) length = std::stoul(pending.substr(cl + 16));
        if (pending.size() >= end + 4 + length) {
          pending.erase(0, end + 4 + length);
          return true;
        }
      }
      const size_t n = s.read_some(boost::asio::buffer(buf), ec);
      if (ec) return false;
      pending.append(buf, n);
    }
  }
  void Run(const std::vector<int>& script) {
    for (int answers : script) {
      boost::asio::ip::tcp::socket s(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec) return;
      accepted_.fetch_add(1);
      std::string pending;
      for (int i = 0; i < answers && ReadRequest(s, pending); ++i) {
        boost::asio::write(
            s,
            boost::asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")),
            ec);
      }
      ReadRequest(s, pending);
      s.close(ec);
    }
  }
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(ProxyTest, BackendClosingWithoutAnAnswerIs502) {
  ScriptedBackend backend({0});  // reads the request and closes
  ProxyHarness h;
  h.Route({{{"rev", 100, 0}}, ""}, {{"rev", {Local(backend.port())}}});
  HttpTestClient c(h.port());
  auto r = c.Post("/v2/models/m/infer", "{}");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 502);
  EXPECT_NE(r->body.find("closed the connection"), std::string::npos) << r->body;
  EXPECT_EQ(h.Requests("rev", "error"), 1);
}

TEST(ProxyTest, AKeptAliveConnectionClosedBeforeTheAnswerIsRetriedOnANewOne) {
  // Connection 1 answers once, then takes the second request and closes (the backend ended the
  // idle connection as the router wrote to it); connection 2 answers.
  ScriptedBackend backend({1, 1});
  ProxyHarness h({}, 1);  // one io thread: both requests share its pool
  h.Route({{{"rev", 100, 0}}, ""}, {{"rev", {Local(backend.port())}}});
  HttpTestClient c(h.port());
  for (int i = 0; i < 2; ++i) {
    auto r = c.Post("/v2/models/m/infer", "{}");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200) << "request " << i << ": " << r->body;
    EXPECT_EQ(r->body, "ok");
  }
  EXPECT_EQ(backend.accepted(), 2);
  EXPECT_EQ(h.Requests("rev", "2xx"), 2);
  EXPECT_EQ(h.Requests("rev", "error"), 0);
  EXPECT_NE(h.MetricsText().find("sluice_router_upstream_reconnects_total{revision=\"rev\"} 1"),
            std::string::npos)
      << h.MetricsText();
}

TEST(ProxyTest, ANewConnectionClosedBeforeTheAnswerIsNotRetried) {
  // Connection 1 answers once and closes on the second request; so does the new connection 2,
  // which was not kept alive: the request fails (502) after exactly one reconnect.
  ScriptedBackend backend({1, 0, 1});
  ProxyHarness h({}, 1);
  h.Route({{{"rev", 100, 0}}, ""}, {{"rev", {Local(backend.port())}}});
  HttpTestClient c(h.port());
  auto r = c.Post("/v2/models/m/infer", "{}");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200);
  r = c.Post("/v2/models/m/infer", "{}");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 502) << r->body;
  EXPECT_NE(r->body.find("closed the connection"), std::string::npos) << r->body;
  EXPECT_EQ(backend.accepted(), 2);
  EXPECT_EQ(h.Requests("rev", "error"), 1);
}

TEST(ProxyTest, MirrorsTheShareToAShadowWithoutTouchingThePrimary) {
  TestBackend primary("primary");
  TestBackend shadow("shadow");
  ASSERT_TRUE(primary.ok() && shadow.ok());
  ProxyHarness h;
  h.Route({{{"stable", 100, 0}, {"shadow", 0, 30}}, ""},
          {{"stable", {Local(primary.port())}}, {"shadow", {Local(shadow.port())}}});
  HttpTestClient c(h.port());
  for (int i = 0; i < 100; ++i) {
    auto r = c.Post("/v2/models/m/infer", "{\"i\":" + std::to_string(i) + "}");
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->body, "primary:{\"i\":" + std::to_string(i) + "}");
  }
  ASSERT_TRUE(shadow.WaitCount(30));
  EXPECT_EQ(primary.count(), 100);
  // Mirror calls finish on their own; wait for their metrics.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (h.Mirrors("shadow", "2xx") < 30 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(h.Mirrors("shadow", "2xx"), 30);
  EXPECT_EQ(shadow.count(), 30);
  EXPECT_EQ(h.Requests("shadow", "2xx"), 0);  // mirrored copies are not primary traffic
  EXPECT_EQ(h.Requests("stable", "2xx"), 100);
  // The copies carry the same request.
  EXPECT_EQ(shadow.seen()[0].target, "/v2/models/m/infer");
  EXPECT_EQ(shadow.seen()[0].body.rfind("{\"i\":", 0), 0u);
}

TEST(ProxyTest, ADeadOrSlowMirrorNeverDelaysOrFailsThePrimary) {
  TestBackend primary("primary");
  TestBackend slow_shadow("slow");
  ASSERT_TRUE(primary.ok() && slow_shadow.ok());
  slow_shadow.set_delay(std::chrono::milliseconds(800));
  ProxyHarness h;
  h.Route({{{"stable", 100, 0}, {"dead", 0, 100}, {"slow", 0, 100}}, ""},
          {{"stable", {Local(primary.port())}},
           {"dead", {Local(ClosedPort())}},
           {"slow", {Local(slow_shadow.port())}}});
  HttpTestClient c(h.port());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto r = c.Post("/v2/models/m/infer", "{}");
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(700));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((h.Mirrors("dead", "error") < 20 || h.Mirrors("slow", "2xx") < 20) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(h.Mirrors("dead", "error"), 20);
  EXPECT_EQ(h.Mirrors("slow", "2xx"), 20);
  EXPECT_EQ(h.Requests("stable", "2xx"), 20);
}

TEST(ProxyTest, MirrorLimitDropsCopiesAndCountsThem) {
  TestBackend primary("primary");
  TestBackend slow_shadow("slow");
  ASSERT_TRUE(primary.ok() && slow_shadow.ok());
  slow_shadow.set_delay(std::chrono::milliseconds(500));
  ProxyOptions o;
  o.max_mirror_inflight = 2;
  ProxyHarness h(o, /*io_threads=*/1);
  h.Route({{{"stable", 100, 0}, {"slow", 0, 100}}, ""},
          {{"stable", {Local(primary.port())}}, {"slow", {Local(slow_shadow.port())}}});
  HttpTestClient c(h.port());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.Post("/x", "{}")->status, 200);
  const std::string text = h.MetricsText();
  EXPECT_NE(text.find("sluice_router_mirror_dropped_total{revision=\"slow\"} 8"), std::string::npos)
      << text;
}

TEST(ProxyTest, StickyHeaderPinsCallers) {
  TestBackend a("a");
  TestBackend b("b");
  ASSERT_TRUE(a.ok() && b.ok());
  ProxyHarness h;
  h.Route({{{"ra", 50, 0}, {"rb", 50, 0}}, "X-User"},
          {{"ra", {Local(a.port())}}, {"rb", {Local(b.port())}}});
  HttpTestClient c(h.port());
  std::map<std::string, int> per_backend;
  for (int user = 0; user < 40; ++user) {
    std::string first;
    for (int i = 0; i < 5; ++i) {
      auto r = c.Request(http::verb::post, "/v2/models/m/infer", "{}",
                         {{"x-user", "caller-" + std::to_string(user)}});
      ASSERT_TRUE(r.has_value());
      const std::string who = r->body.substr(0, r->body.find(':'));
      if (i == 0) first = who;
      ASSERT_EQ(who, first) << "caller-" << user;
    }
    ++per_backend[first];
  }
  // Both revisions get callers.
  EXPECT_GT(per_backend["a"], 5);
  EXPECT_GT(per_backend["b"], 5);
  // Without the header: exact weighted alternation.
  const int a_before = a.count();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Post("/x", "{}").has_value());
  EXPECT_EQ(a.count() - a_before, 5);
}

TEST(ProxyTest, RevisionHeaderNamesTheServingRevision) {
  TestBackend a("a");
  ASSERT_TRUE(a.ok());
  ProxyOptions o;
  o.revision_header = "X-Sluice-Revision";
  ProxyHarness h(o);
  h.Route({{{"rev-a", 100, 0}}, ""}, {{"rev-a", {Local(a.port())}}});
  HttpTestClient c(h.port());
  auto r = c.Get("/v2/models/m");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->header("X-Sluice-Revision"), "rev-a");
}

TEST(ProxyTest, ConcurrentClientsWhileTheTableChanges) {
  TestBackend a("a", 2);
  TestBackend b("b", 2);
  ASSERT_TRUE(a.ok() && b.ok());
  ProxyHarness h;
  const std::vector<std::pair<std::string, std::vector<Endpoint>>> eps = {
      {"ra", {Local(a.port())}}, {"rb", {Local(b.port())}}};
  h.Route({{{"ra", 50, 0}, {"rb", 50, 10}}, ""}, eps);
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    int i = 0;
    while (!stop.load()) {
      const int w = (i++ % 11) * 10;
      h.Route({{{"ra", w, 0}, {"rb", 100 - w, 10}}, ""}, eps);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      HttpTestClient c(h.port());
      for (int i = 0; i < 150; ++i) {
        auto r = c.Post("/v2/models/m/infer", "{}");
        if (r && r->status == 200) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  stop = true;
  flipper.join();
  EXPECT_EQ(ok.load(), 600);
  EXPECT_EQ(h.Requests("ra", "2xx") + h.Requests("rb", "2xx"), 600);
  EXPECT_EQ(h.proxy().inflight(), 0);
}

TEST(ProxyTest, DrainAnswersRequestsInFlight) {
  TestBackend slow("slow");
  ASSERT_TRUE(slow.ok());
  slow.set_delay(std::chrono::milliseconds(300));
  ProxyHarness h;
  h.Route({{{"rev", 100, 0}}, ""}, {{"rev", {Local(slow.port())}}});
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      HttpTestClient c(h.port());
      auto r = c.Post("/v2/models/m/infer", "{}");
      if (r && r->status == 200) ok.fetch_add(1);
    });
  }
  ASSERT_TRUE(slow.WaitCount(4));
  EXPECT_TRUE(h.server().Drain(std::chrono::steady_clock::now() + std::chrono::seconds(10)));
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 4);
}

TEST(ProxyTest, StoppingTheServerEndsUpstreamCallsInFlight) {
  TestBackend slow("slow");
  ASSERT_TRUE(slow.ok());
  slow.set_delay(std::chrono::milliseconds(1500));
  auto h = std::make_unique<ProxyHarness>();
  h->Route({{{"rev", 100, 0}}, ""}, {{"rev", {Local(slow.port())}}});
  std::thread client([&] {
    HttpTestClient c(h->port(), std::chrono::seconds(5));
    c.Post("/v2/models/m/infer", "{}");
  });
  ASSERT_TRUE(slow.WaitCount(1));
  const auto start = std::chrono::steady_clock::now();
  h->server().Shutdown();  // must not wait for the backend's answer
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
  client.join();
  h.reset();
}

}  // namespace
}  // namespace sluice::dataplane
