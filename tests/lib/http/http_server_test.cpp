#include "lib/http/http_server.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <sys/socket.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/lib/http/http_test_client.h"
#include "lib/http/metrics_exposition.h"
#include <prometheus/counter.h>

namespace sluice {
namespace {

using testing::HttpTestClient;
using testing::RawConnection;
namespace http = boost::beast::http;

std::string ErrorOf(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.contains("error") || !j["error"].is_string()) return "<not a JSON error>";
  return j["error"].get<std::string>();
}

// A Responder parked by a handler until the test releases it.
class Parked {
 public:
  void Park(Responder r) {
    std::lock_guard<std::mutex> lock(mu_);
    parked_.push_back(std::move(r));
    cv_.notify_all();
  }
  bool WaitParked(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return parked_.size() >= n; });
  }
  // Answers every parked request from this (non-io) thread.
  void ReleaseAll(std::string body) {
    std::vector<Responder> rs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      rs.swap(parked_);
    }
    for (auto& r : rs) r.SendBody(HttpStatus::ok, "text/plain", body);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Responder> parked_;  // guarded by mu_
};

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    if (options.io_threads == 0) options.io_threads = 2;
    auto router = std::make_shared<HttpRouter>();
    router->Handle(HttpVerb::get, "/hello", [](const HttpRequest&, Responder r) {
      r.SendBody(HttpStatus::ok, "text/plain", "hello");
    });
    router->Handle(HttpVerb::post, "/echo", [](const HttpRequest& req, Responder r) {
      r.SendBody(HttpStatus::ok, "text/plain", req.body());
    });
    router->Handle(HttpVerb::post, "/later", [](const HttpRequest& req, Responder r) {
      // Answer from another thread after a short while, as a batcher would.
      std::thread([body = req.body(), r = std::move(r)]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        r.SendBody(HttpStatus::ok, "text/plain", "later:" + body);
      }).detach();
    });
    router->Handle(HttpVerb::get, "/drop", [](const HttpRequest&, Responder) {});
    router->Handle(HttpVerb::get, "/park", [this](const HttpRequest&, Responder r) {
      parked_.Park(std::move(r));
    });
    router->HandlePrefix(HttpVerb::get, "/files/", [](const HttpRequest& req, Responder r) {
      r.SendBody(HttpStatus::ok, "text/plain", std::string(req.target()));
    });
    auto registry = std::make_shared<prometheus::Registry>();
    prometheus::BuildCounter().Name("test_things_total").Help("Things.").Register(*registry).Add({}).Increment(3);
    AddMetricsRoute(*router, registry);
    auto server = HttpServer::Create(options, router);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  uint16_t port() const { return server_->port(); }

  Parked parked_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  Start();
  HttpTestClient c(port());
  for (int i = 0; i < 20; ++i) {
    auto r = c.Get("/hello");
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello");
    EXPECT_TRUE(r->keep_alive);
    EXPECT_EQ(r->header("Server"), "sluice");
  }
  EXPECT_EQ(server_->open_connections(), 1u);
  auto e = c.Post("/echo", std::string(100000, 'x'));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->body.size(), 100000u);
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  Start();
  HttpTestClient c(port());
  auto nf = c.Get("/nope?x=1");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(ErrorOf(nf->body), "no route for /nope");
  auto na = c.Post("/hello", "x");
  ASSERT_TRUE(na);
  EXPECT_EQ(na->status, 405);
  EXPECT_EQ(na->header("Allow"), "GET");
  EXPECT_NE(ErrorOf(na->body).find("not allowed"), std::string::npos);
  auto prefix = c.Get("/files/a/b?q");
  ASSERT_TRUE(prefix);
  EXPECT_EQ(prefix->body, "/files/a/b?q");
}

TEST_F(HttpServerTest, AnswersFromAnotherThreadAndDroppedResponderIs500) {
  Start();
  HttpTestClient c(port());
  auto later = c.Post("/later", "abc");
  ASSERT_TRUE(later);
  EXPECT_EQ(later->body, "later:abc");
  auto dropped = c.Get("/drop");
  ASSERT_TRUE(dropped);
  EXPECT_EQ(dropped->status, 500);
  EXPECT_EQ(ErrorOf(dropped->body), "request dropped without an answer");
  auto again = c.Get("/hello");  // the connection is still usable
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  RawConnection raw(port());
  ASSERT_TRUE(raw.ok());
  // The first is answered late from another thread; the others are immediate. Order must hold.
  ASSERT_TRUE(raw.Write(
      "POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
      "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r1 = raw.ReadReply();
  auto r2 = raw.ReadReply();
  auto r3 = raw.ReadReply();
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->body, "later:one");
  EXPECT_EQ(r2->body, "two");
  EXPECT_EQ(r3->body, "hello");
}

TEST_F(HttpServerTest, OversizedBodyIs413AndTheServerKeepsServing) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  Start(o);
  HttpTestClient c(port());
  auto big = c.Post("/echo", std::string(5000, 'x'));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_NE(ErrorOf(big->body).find("exceeds the limit of 1024"), std::string::npos);
  EXPECT_FALSE(big->keep_alive);

  // Chunked: the size is only known while reading.
  RawConnection raw(port());
  std::string chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "200\r\n" + std::string(512, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  ASSERT_TRUE(raw.Write(chunked));
  auto r = raw.ReadReply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);

  HttpTestClient fresh(port());
  auto ok = fresh.Post("/echo", std::string(1000, 'z'));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpServerTest, OversizedHeaderIs431) {
  HttpServerOptions o;
  o.max_header_bytes = 4096;
  Start(o);
  HttpTestClient c(port());
  auto r = c.Request(http::verb::get, "/hello", "", {{"X-Big", std::string(8000, 'h')}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_NE(ErrorOf(r->body).find("header exceeds"), std::string::npos);
  HttpTestClient fresh(port());
  auto ok = fresh.Get("/hello");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpServerTest, SlowHeaderGets408) {
  HttpServerOptions o;
  o.header_timeout = std::chrono::milliseconds(300);
  Start(o);
  RawConnection raw(port());
  ASSERT_TRUE(raw.Write("GET /hello HTTP/1.1\r\nHost: x\r\n"));  // never finishes the header
  const auto start = std::chrono::steady_clock::now();
  auto r = raw.ReadReply(std::chrono::seconds(10));
  ASSERT_TRUE(r) << raw.last_error().message();
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(ErrorOf(r->body), "timed out reading the request header");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(raw.WaitClosed(std::chrono::seconds(5)));
  HttpTestClient fresh(port());
  auto ok = fresh.Get("/hello");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpServerTest, TricklingHeaderBytesDoesNotResetTheTimeout) {
  HttpServerOptions o;
  o.header_timeout = std::chrono::milliseconds(400);
  Start(o);
  RawConnection raw(port());
  ASSERT_TRUE(raw.Write("GET /hello HTTP/1.1\r\n"));
  const auto start = std::chrono::steady_clock::now();
  // One header byte every 50 ms: each byte arrives well within the timeout, the header never ends.
  std::atomic<bool> stop{false};
  const int fd = raw.native_fd();
  std::thread trickle([&] {
    while (!stop.load()) {
      if (::send(fd, "a", 1, MSG_NOSIGNAL) != 1) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  auto r = raw.ReadReply(std::chrono::seconds(10));
  stop.store(true);
  trickle.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(HttpServerTest, SlowBodyGets408) {
  HttpServerOptions o;
  o.body_timeout = std::chrono::milliseconds(300);
  Start(o);
  RawConnection raw(port());
  ASSERT_TRUE(raw.Write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten.."));
  auto r = raw.ReadReply(std::chrono::seconds(10));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(ErrorOf(r->body), "timed out reading the request body");
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  HttpServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(200);
  Start(o);
  RawConnection raw(port());
  ASSERT_TRUE(raw.Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = raw.ReadReply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(raw.WaitClosed(std::chrono::seconds(5)));
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  Start();
  RawConnection raw(port());
  ASSERT_TRUE(raw.Write("THIS IS NOT HTTP\r\n\r\n"));
  auto r = raw.ReadReply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(ErrorOf(r->body).find("malformed HTTP request"), std::string::npos);
  RawConnection raw2(port());
  ASSERT_TRUE(raw2.Write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"));
  auto r2 = raw2.ReadReply();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 400);
}

TEST_F(HttpServerTest, ExpectContinueIsHonoured) {
  Start();
  RawConnection raw(port());
  ASSERT_TRUE(raw.Write(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = raw.ReadReply();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(raw.Write("hello"));
  auto r = raw.ReadReply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
}

TEST_F(HttpServerTest, MetricsRouteServesTheTextFormat) {
  Start();
  HttpTestClient c(port());
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Type"), kPrometheusContentType);
  EXPECT_NE(r->body.find("# TYPE test_things_total counter"), std::string::npos);
  EXPECT_NE(r->body.find("test_things_total 3"), std::string::npos);
}

TEST_F(HttpServerTest, DrainAnswersInFlightClosesIdleAndStopsAccepting) {
  HttpServerOptions o;
  o.drain_idle_timeout = std::chrono::milliseconds(100);
  Start(o);
  HttpTestClient idle(port());
  ASSERT_TRUE(idle.Get("/hello"));
  HttpTestClient busy(port());
  std::future<std::optional<testing::HttpReply>> pending =
      std::async(std::launch::async, [&] { return busy.Get("/park"); });
  ASSERT_TRUE(parked_.WaitParked(1));

  std::future<bool> drained = std::async(std::launch::async, [&] {
    return server_->Drain(std::chrono::steady_clock::now() + std::chrono::seconds(20));
  });
  // New connections are refused once draining has begun.
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    HttpTestClient late(port(), std::chrono::seconds(2));
    refused = !late.Connect() || !late.Get("/hello");
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(refused);
  // The drain waits for the parked request.
  EXPECT_EQ(drained.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  parked_.ReleaseAll("finally");
  auto reply = pending.get();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "finally");
  EXPECT_FALSE(reply->keep_alive);
  EXPECT_TRUE(drained.get());
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(HttpServerTest, ManyClientsConcurrently) {
  Start();
  constexpr int kClients = 8;
  constexpr int kRequests = 150;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      HttpTestClient c(port());
      for (int i = 0; i < kRequests; ++i) {
        const std::string body = std::to_string(t) + ":" + std::to_string(i);
        auto r = (i % 3 == 0) ? c.Post("/later", body) : c.Post("/echo", body);
        if (r && r->status == 200 && r->body == ((i % 3 == 0) ? "later:" + body : body)) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
}

}  // namespace
}  // namespace sluice
