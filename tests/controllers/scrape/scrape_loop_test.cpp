#include "controllers/scrape/scrape_loop.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "lib/api/object_labels.h"
#include "lib/kube/client.h"
#include "tests/controllers/scrape/fake_fetcher.h"
#include "tests/lib/base/fake_clock.h"
#include "tests/lib/controller/fake_objects.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using testing::FakeFetcher;
using testing::FakeObjects;
using namespace std::chrono_literals;

json Pod(const std::string& name, const std::string& ip, const std::string& component,
         std::optional<int> http_port, bool ready = true) {
  json ports = json::array();
  if (http_port) ports.push_back({{"name", "http"}, {"containerPort", *http_port}});
  ports.push_back({{"name", "grpc"}, {"containerPort", 9000}});
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name},
        {"namespace", "ml"},
        {"labels", {{api::kLabelComponent, component}, {api::kLabelModelDeployment, "fraud"}}}}},
      {"spec", {{"containers", json::array({{{"name", "c"}, {"ports", ports}}})}}},
      {"status",
       {{"phase", "Running"},
        {"podIP", ip},
        {"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}}}};
}

// Counts the rounds the loop runs and lets the test wait for the n-th.
class Rounds {
 public:
  void Run() {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  bool AwaitAtLeast(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 30s, [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

class ScrapeLoopTest : public ::testing::Test {
 protected:
  ScrapeLoop& Loop() {
    if (!loop_) {
      ScrapeLoopOptions o;
      o.default_port = 8080;
      o.period = 1s;
      o.clock = &clock_;
      loop_ = std::make_unique<ScrapeLoop>(finder_, fetcher_, o, [this] { rounds_.Run(); });
    }
    return *loop_;
  }

  sluice::testing::FakeClock clock_;
  FakeObjects objects_;
  CachedPodFinder finder_{objects_};
  FakeFetcher fetcher_;
  Rounds rounds_;
  std::unique_ptr<ScrapeLoop> loop_;
};

TEST_F(ScrapeLoopTest, FindsOnlyTheReadyPodsWithEveryLabel) {
  objects_.Put(kube::resources::kPods, Pod("router-1", "10.0.0.1", "router", 8081));
  objects_.Put(kube::resources::kPods, Pod("router-2", "10.0.0.2", "router", 8081, false));
  objects_.Put(kube::resources::kPods, Pod("server-1", "10.0.0.3", "server", 8080));
  auto pods =
      Loop().Pods("ml", {{api::kLabelComponent, "router"}, {api::kLabelModelDeployment, "fraud"}});
  ASSERT_TRUE(pods.ok()) << pods.status();
  ASSERT_EQ(pods->size(), 1u);
  EXPECT_EQ((*pods)[0].name, "router-1");
  EXPECT_EQ((*pods)[0].ip, "10.0.0.1");
}

TEST_F(ScrapeLoopTest, FetchesTheHttpPortOrTheDefaultAndParsesThePage) {
  fetcher_.Serve("http://10.0.0.1:8081/metrics", "a_total{x=\"1\"} 3\nb 4\n");
  fetcher_.Serve("http://10.0.0.2:8080/metrics", "b 5\n");
  objects_.Put(kube::resources::kPods, Pod("p1", "10.0.0.1", "router", 8081));
  objects_.Put(kube::resources::kPods, Pod("p2", "10.0.0.2", "router", std::nullopt));
  auto pods = Loop().Pods("ml", {{api::kLabelComponent, "router"}});
  ASSERT_TRUE(pods.ok()) << pods.status();
  ASSERT_EQ(pods->size(), 2u);
  std::map<std::string, PodPage> pages;
  for (const PodTarget& pod : *pods) pages.emplace(pod.name, Loop().Fetch(pod));

  const PodPage& p1 = pages.at("p1");
  EXPECT_EQ(p1.url, "http://10.0.0.1:8081/metrics");
  ASSERT_TRUE(p1.page.ok()) << p1.page.status();
  ASSERT_EQ(p1.page->samples.size(), 2u);
  EXPECT_EQ(p1.page->samples[0].name, "a_total");
  ASSERT_NE(p1.page->samples[0].Label("x"), nullptr);
  EXPECT_EQ(*p1.page->samples[0].Label("x"), "1");
  EXPECT_EQ(p1.page->samples[0].value, 3);

  const PodPage& p2 = pages.at("p2");
  EXPECT_EQ(p2.url, "http://10.0.0.2:8080/metrics");
  ASSERT_TRUE(p2.page.ok()) << p2.page.status();
  ASSERT_EQ(p2.page->samples.size(), 1u);
  EXPECT_EQ(p2.page->samples[0].value, 5);
}

TEST_F(ScrapeLoopTest, FetchesThePortNamedInTheOptionsNotTheTrafficPort) {
  // sluice-router serves /metrics on its admin port only; its traffic port forwards the path.
  fetcher_.Serve("http://10.0.0.1:9191/metrics", "sluice_router_endpoints 1\n");
  fetcher_.Serve("http://10.0.0.1:8080/metrics", "not_the_router 1\n");
  fetcher_.Serve("http://10.0.0.2:9090/metrics", "sluice_router_endpoints 2\n");
  ScrapeLoopOptions o;
  o.default_port = 9090;
  o.port_name = "admin";
  ScrapeLoop loop(finder_, fetcher_, o, [] {});
  const PodPage named =
      loop.Fetch(PodTarget{"p1", "10.0.0.1", {}, {{"http", 8080}, {"admin", 9191}}});
  EXPECT_EQ(named.url, "http://10.0.0.1:9191/metrics");
  ASSERT_TRUE(named.page.ok()) << named.page.status();
  EXPECT_EQ(named.page->samples.at(0).name, "sluice_router_endpoints");
  // No port of that name: the default, never the http port.
  const PodPage fallback = loop.Fetch(PodTarget{"p2", "10.0.0.2", {}, {{"http", 8080}}});
  EXPECT_EQ(fallback.url, "http://10.0.0.2:9090/metrics");
  ASSERT_TRUE(fallback.page.ok()) << fallback.page.status();
  EXPECT_EQ(fallback.page->samples.at(0).value, 2);
}

// A pod that serves TLS on its http port keeps /metrics in plain HTTP on a port named admin.
TEST_F(ScrapeLoopTest, PrefersThePlainAdminPort) {
  fetcher_.Serve("http://10.0.0.5:9090/metrics", "c 7\n");
  json pod = Pod("tls", "10.0.0.5", "server", 8080);
  pod["spec"]["containers"][0]["ports"].push_back({{"name", "admin"}, {"containerPort", 9090}});
  objects_.Put(kube::resources::kPods, pod);
  auto pods = Loop().Pods("ml", {{api::kLabelComponent, "server"}});
  ASSERT_TRUE(pods.ok()) << pods.status();
  ASSERT_EQ(pods->size(), 1u);
  const PodPage page = Loop().Fetch((*pods)[0]);
  EXPECT_EQ(page.url, "http://10.0.0.5:9090/metrics");
  ASSERT_TRUE(page.page.ok()) << page.page.status();
  ASSERT_EQ(page.page->samples.size(), 1u);
  EXPECT_EQ(page.page->samples[0].value, 7);
}

TEST_F(ScrapeLoopTest, APodThatFailsGivesItsReasonNeverAnEmptyPage) {
  PodTarget pod{"p", "10.0.0.9", {}, {{"http", 8080}}};
  const std::string url = "http://10.0.0.9:8080/metrics";

  fetcher_.Fail(url, Unavailable("connect timed out"));
  PodPage refused = Loop().Fetch(pod);
  EXPECT_EQ(refused.page.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(refused.page.status().message(), "connect timed out");

  fetcher_.Serve(url, "busy", 503);
  PodPage busy = Loop().Fetch(pod);
  EXPECT_EQ(busy.page.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(busy.page.status().message(), "GET " + url + ": HTTP 503");

  fetcher_.Serve(url, "not a { page\n");
  PodPage garbled = Loop().Fetch(pod);
  ASSERT_FALSE(garbled.page.ok());
  EXPECT_NE(garbled.page.status().message().find("GET " + url), std::string::npos)
      << garbled.page.status();
  EXPECT_EQ(fetcher_.calls(url), 3);
}

TEST_F(ScrapeLoopTest, RunsARoundAtStartThenEveryPeriodUntilStopped) {
  ScrapeLoop& loop = Loop();
  const auto t0 = clock_.Now();
  loop.Start();
  loop.Start();  // idempotent: still one thread
  ASSERT_TRUE(rounds_.AwaitAtLeast(1));
  for (int i = 1; i <= 3; ++i) {
    // The loop is waiting for its next period, and not before it runs again.
    ASSERT_TRUE(clock_.BlockUntilWaiterAt(t0 + i * 1s));
    EXPECT_EQ(rounds_.count(), i);
    clock_.Advance(1s);
    ASSERT_TRUE(rounds_.AwaitAtLeast(i + 1));
  }
  ASSERT_TRUE(clock_.BlockUntilWaiterAt(t0 + 4s));
  loop.Stop();
  EXPECT_EQ(rounds_.count(), 4);
  // Stopped for good: time passing and Start() run nothing more.
  loop.Start();
  clock_.Advance(10s);
  EXPECT_FALSE(clock_.HasWaiters());
  EXPECT_EQ(rounds_.count(), 4);
}

TEST_F(ScrapeLoopTest, ARoundThatOverrunsIsFollowedByOneRoundNotACatchUpBurst) {
  ScrapeLoopOptions o;
  o.period = 1s;
  o.clock = &clock_;
  // The first round takes 5 periods of (fake) time.
  ScrapeLoop loop(finder_, fetcher_, o, [this] {
    if (rounds_.count() == 0) clock_.Advance(5s);
    rounds_.Run();
  });
  const auto t0 = clock_.Now();
  loop.Start();
  ASSERT_TRUE(rounds_.AwaitAtLeast(2));
  // The second round ran at once at t0+5s; the next waits a full period after it.
  ASSERT_TRUE(clock_.BlockUntilWaiterAt(t0 + 6s));
  EXPECT_EQ(rounds_.count(), 2);
  loop.Stop();
}

}  // namespace
}  // namespace sluice::controllers
