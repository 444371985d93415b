#include "dataplane/router/upstream.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <optional>
#include <thread>

#include "lib/http/wire.h"
#include "tests/dataplane/router/test_backend.h"

namespace sluice::dataplane {
namespace {

namespace http = boost::beast::http;
using testing::TestBackend;

class Capture final : public UpstreamCallback {
 public:
  explicit Capture(std::optional<UpstreamOutcome>& out) : out_(out) {}
  void OnUpstreamDone(UpstreamOutcome&& outcome) override { out_ = std::move(outcome); }

 private:
  std::optional<UpstreamOutcome>& out_;
};

std::shared_ptr<const UpstreamRequest> Post(std::string body, bool keep_alive = true) {
  UpstreamRequest req;
  AppendRequestLine("POST", "/v2/models/m/infer", 11, req.bytes);
  AppendField("Host", "127.0.0.1", req.bytes);
  if (!keep_alive) AppendField("Connection", "close", req.bytes);
  AppendField("Content-Length", std::to_string(body.size()), req.bytes);
  req.bytes += "\r\n" + body;
  return std::make_shared<const UpstreamRequest>(std::move(req));
}

// Runs one exchange on `ioc` (the test thread is the pool's only thread).
UpstreamOutcome SendOne(boost::asio::io_context& ioc, UpstreamPool& pool, const Endpoint& ep,
                        std::string body = "{}", bool keep_alive = true) {
  std::optional<UpstreamOutcome> out;
  pool.Send(ep, Post(std::move(body), keep_alive), false, std::make_unique<Capture>(out));
  ioc.restart();
  while (!out && ioc.run_one_for(std::chrono::seconds(10)) > 0) {
  }
  EXPECT_TRUE(out.has_value());
  return out ? std::move(*out) : UpstreamOutcome{UpstreamFailure::kTimeout, "no answer", {}, false};
}

TEST(UpstreamPoolTest, ReusesOneKeepAliveConnection) {
  TestBackend backend("b");
  ASSERT_TRUE(backend.ok());
  boost::asio::io_context ioc;
  auto pool = UpstreamPool::Create(ioc.get_executor(), UpstreamOptions{});
  const Endpoint ep = MakeEndpoint("127.0.0.1", backend.port());
  for (int i = 0; i < 20; ++i) {
    UpstreamOutcome o = SendOne(ioc, *pool, ep, std::to_string(i));
    ASSERT_EQ(o.failure, UpstreamFailure::kNone) << o.detail;
    EXPECT_EQ(o.response.body(), "b:" + std::to_string(i));
    EXPECT_EQ(o.reused_connection, i > 0);
  }
  EXPECT_EQ(pool->connections_opened(), 1u);
  EXPECT_EQ(pool->idle_connections(), 1u);
  EXPECT_EQ(pool->active_exchanges(), 0u);
  pool->Shutdown();
  EXPECT_EQ(pool->idle_connections(), 0u);
}

TEST(UpstreamPoolTest, AConnectionTheBackendClosedIsNotReused) {
  // The backend closes idle connections after 50 ms.
  TestBackend backend("b", 1, std::chrono::milliseconds(50));
  ASSERT_TRUE(backend.ok());
  boost::asio::io_context ioc;
  auto pool = UpstreamPool::Create(ioc.get_executor(), UpstreamOptions{});
  const Endpoint ep = MakeEndpoint("127.0.0.1", backend.port());
  ASSERT_EQ(SendOne(ioc, *pool, ep).failure, UpstreamFailure::kNone);
  // Wait until the backend has closed it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (backend.server().open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(backend.server().open_connections(), 0u);
  UpstreamOutcome o = SendOne(ioc, *pool, ep);
  EXPECT_EQ(o.failure, UpstreamFailure::kNone) << o.detail;
  EXPECT_FALSE(o.reused_connection);
  EXPECT_EQ(pool->connections_opened(), 2u);
}

TEST(UpstreamPoolTest, ConnectionCloseAnswersAndZeroIdleLimitAreNotPooled) {
  TestBackend backend("b");
  ASSERT_TRUE(backend.ok());
  boost::asio::io_context ioc;
  auto pool = UpstreamPool::Create(ioc.get_executor(), UpstreamOptions{});
  const Endpoint ep = MakeEndpoint("127.0.0.1", backend.port());
  // The backend answers "Connection: close" to a request that asks for it.
  for (int i = 0; i < 3; ++i) {
    UpstreamOutcome o = SendOne(ioc, *pool, ep, "{}", /*keep_alive=*/false);
    ASSERT_EQ(o.failure, UpstreamFailure::kNone) << o.detail;
    EXPECT_FALSE(o.response.keep_alive());
  }
  EXPECT_EQ(pool->connections_opened(), 3u);
  EXPECT_EQ(pool->idle_connections(), 0u);

  UpstreamOptions no_idle;
  no_idle.max_idle_per_endpoint = 0;
  auto pool2 = UpstreamPool::Create(ioc.get_executor(), no_idle);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(SendOne(ioc, *pool2, ep).failure, UpstreamFailure::kNone);
  EXPECT_EQ(pool2->connections_opened(), 3u);
  EXPECT_EQ(pool2->idle_connections(), 0u);
}

TEST(UpstreamPoolTest, RequestTimeoutCoversTheWholeExchange) {
  TestBackend slow("slow");
  ASSERT_TRUE(slow.ok());
  slow.set_delay(std::chrono::milliseconds(600));
  boost::asio::io_context ioc;
  UpstreamOptions o;
  o.request_timeout = std::chrono::milliseconds(150);
  auto pool = UpstreamPool::Create(ioc.get_executor(), o);
  const auto start = std::chrono::steady_clock::now();
  UpstreamOutcome out = SendOne(ioc, *pool, MakeEndpoint("127.0.0.1", slow.port()));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(out.failure, UpstreamFailure::kTimeout) << out.detail;
  EXPECT_NE(out.detail.find("150 ms"), std::string::npos) << out.detail;
  EXPECT_GE(took, std::chrono::milliseconds(140));
  EXPECT_LT(took, std::chrono::milliseconds(590));
  EXPECT_EQ(pool->idle_connections(), 0u);  // a timed-out connection is never pooled
}

TEST(UpstreamPoolTest, ShutdownEndsExchangesInFlight) {
  TestBackend slow("slow");
  ASSERT_TRUE(slow.ok());
  slow.set_delay(std::chrono::milliseconds(400));
  boost::asio::io_context ioc;
  auto pool = UpstreamPool::Create(ioc.get_executor(), UpstreamOptions{});
  std::optional<UpstreamOutcome> out;
  pool->Send(MakeEndpoint("127.0.0.1", slow.port()), Post("{}"), false,
             std::make_unique<Capture>(out));
  while (slow.count() == 0) ioc.run_one_for(std::chrono::milliseconds(10));
  pool->Shutdown();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->failure, UpstreamFailure::kShutdown);
  // Nothing is left pending on the context: it runs out of work.
  ioc.restart();
  ioc.run_for(std::chrono::seconds(5));
  EXPECT_TRUE(ioc.stopped());
  std::optional<UpstreamOutcome> late;
  pool->Send(MakeEndpoint("127.0.0.1", slow.port()), Post("{}"), false,
             std::make_unique<Capture>(late));
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->failure, UpstreamFailure::kShutdown);
}

}  // namespace
}  // namespace sluice::dataplane
