#include "controllers/analysis/router_metric_source.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/controllers/scrape/fake_fetcher.h"
#include "tests/lib/controller/fake_objects.h"
#include "controllers/modeldeployment/resources.h"
#include "tests/lib/base/fake_clock.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers {
namespace {

using nlohmann::json;
using testing::FakeFetcher;
using testing::FakeObjects;
using namespace std::chrono_literals;

// What one router pod has counted for one revision so far.
struct Counts {
  int64_t ok = 0;  // 2xx
  int64_t e5xx = 0;
  int64_t error = 0;  // no answer from the backend
  int64_t fast = 0;   // observations <= 0.01 s
  int64_t slow = 0;   // observations in (0.25, 0.5]
};

std::string Page(const std::map<std::string, Counts>& by_revision) {
  std::string out = "# TYPE sluice_router_requests_total counter\n";
  for (const auto& [rev, c] : by_revision) {
    out += "sluice_router_requests_total{revision=\"" + rev + "\",code=\"2xx\"} " +
           std::to_string(c.ok) + "\n";
    out += "sluice_router_requests_total{revision=\"" + rev + "\",code=\"4xx\"} 0\n";
    out += "sluice_router_requests_total{revision=\"" + rev + "\",code=\"5xx\"} " +
           std::to_string(c.e5xx) + "\n";
    out += "sluice_router_requests_total{revision=\"" + rev + "\",code=\"error\"} " +
           std::to_string(c.error) + "\n";
  }
  out += "# TYPE sluice_router_request_duration_seconds histogram\n";
  for (const auto& [rev, c] : by_revision) {
    const int64_t total = c.ok + c.e5xx + c.error;
    auto bucket = [&](const char* le, int64_t n) {
      out += "sluice_router_request_duration_seconds_bucket{revision=\"" + rev + "\",le=\"" + le +
             "\"} " + std::to_string(n) + "\n";
    };
    bucket("0.005", 0);
    bucket("0.01", c.fast);
    bucket("0.25", c.fast);
    bucket("0.5", c.fast + c.slow);
    bucket("+Inf", total);
    out += "sluice_router_request_duration_seconds_count{revision=\"" + rev + "\"} " +
           std::to_string(total) + "\n";
  }
  out += "sluice_router_inflight_requests 0\n";
  return out;
}

class RouterMetricsTest : public ::testing::Test {
 protected:
  RouterMetricsTest() {
    RouterMetricsScraperOptions o;
    o.clock = &clock_;
    o.retention = 60s;
    metrics_ = std::make_unique<RouterMetricsScraper>(objects_, finder_, fetcher_, o);
  }

  void AddModelDeployment(const std::string& name, bool canary) {
    json md = {{"apiVersion", "sluice.dev/v1alpha1"},
               {"kind", "ModelDeployment"},
               {"metadata", {{"name", name}, {"namespace", "ml"}}},
               {"spec", {{"model", {{"uri", "file:///m.json"}}}}}};
    if (canary) {
      md["status"] = {{"phase", "Progressing"},
                      {"stableRevision", name + "-a"},
                      {"canaryRevision", name + "-b"},
                      {"canaryWeight", 10}};
    } else {
      md["status"] = {{"phase", "Healthy"}, {"stableRevision", name + "-a"}};
    }
    objects_.Put(api::kModelDeploymentsGvr, md);
  }

  // A Ready router pod of `md` at `ip`: traffic on container port 8080 named http, /metrics on
  // `port` named admin.
  void AddRouterPod(const std::string& md, const std::string& pod, const std::string& ip,
                    int port = 9090) {
    objects_.Put(
        kube::resources::kPods,
        {{"apiVersion", "v1"},
         {"kind", "Pod"},
         {"metadata",
          {{"name", pod},
           {"namespace", "ml"},
           {"labels",
            {{api::kLabelComponent, "router"},
             {api::kLabelModelDeployment, md},
             {api::kLabelManagedBy, api::kManagedByValue}}}}},
         {"spec",
          {{"containers",
            json::array(
                {{{"name", "router"},
                  {"ports", json::array({{{"name", "http"}, {"containerPort", 8080}},
                                         {{"name", "admin"}, {"containerPort", port}}})}}})}}},
         {"status",
          {{"phase", "Running"},
           {"podIP", ip},
           {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}});
  }

  void SetCounts(const std::string& ip, const std::map<std::string, Counts>& c, int port = 9090) {
    fetcher_.Serve("http://" + ip + ":" + std::to_string(port) + "/metrics", Page(c));
  }

  Window Last(std::chrono::seconds length) {
    const WallTime end = clock_.WallNow();
    return Window{end - length, end};
  }

  sluice::testing::FakeClock clock_;
  FakeObjects objects_;
  CachedPodFinder finder_{objects_};
  FakeFetcher fetcher_;
  std::unique_ptr<RouterMetricsScraper> metrics_;
};

TEST_F(RouterMetricsTest, AWindowIsTheDifferenceOfTheScrapesBoundingItSummedOverPods) {
  AddModelDeployment("fraud", true);
  AddRouterPod("fraud", "router-1", "10.0.0.1");
  AddRouterPod("fraud", "router-2", "10.0.0.2", 9191);
  SetCounts("10.0.0.1", {{"fraud-b", {100, 1, 0, 101, 0}}, {"fraud-a", {900, 0, 0, 900, 0}}});
  SetCounts("10.0.0.2", {{"fraud-b", {50, 0, 0, 50, 0}}}, 9191);
  metrics_->ScrapeOnce();
  clock_.Advance(5s);
  // Over the window: pod 1 served 40 more (2 of them 5xx, 1 no answer) and pod 2 another 60;
  // 3 of the 100 were slow.
  SetCounts("10.0.0.1", {{"fraud-b", {137, 3, 1, 138, 3}}, {"fraud-a", {2000, 0, 0, 2000, 0}}});
  SetCounts("10.0.0.2", {{"fraud-b", {110, 0, 0, 110, 0}}}, 9191);

  auto t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(5s));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->requests, 100);
  EXPECT_EQ(t->errors, 3);
  // 97 fast, 3 in (0.25, 0.5]: rank 99 is the 2nd of the 3 slow ones: 0.25 + 0.25 * 2/3.
  ASSERT_TRUE(t->latency_p99_seconds.has_value());
  EXPECT_NEAR(*t->latency_p99_seconds, 0.25 + 0.25 * 2.0 / 3.0, 1e-9);
  // The other revision is measured on its own.
  auto stable = metrics_->Traffic("ml", "fraud", "fraud-a", Last(5s));
  ASSERT_TRUE(stable.ok());
  EXPECT_EQ(stable->requests, 1100);
  EXPECT_EQ(stable->errors, 0);
}

TEST_F(RouterMetricsTest, TheWindowIsNotWidenedToScrapesOutsideIt) {
  AddModelDeployment("fraud", true);
  AddRouterPod("fraud", "router-1", "10.0.0.1");
  SetCounts("10.0.0.1", {{"fraud-b", {0, 0, 0, 0, 0}}});
  metrics_->ScrapeOnce();  // t0
  clock_.Advance(5s);
  SetCounts("10.0.0.1", {{"fraud-b", {50, 0, 0, 50, 0}}});
  metrics_->ScrapeOnce();  // t0+5
  clock_.Advance(5s);
  SetCounts("10.0.0.1", {{"fraud-b", {60, 40, 0, 100, 0}}});
  // [t0+5, t0+10): only the last 50, 40 of them errors; the healthy first 50 are outside.
  auto t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(5s));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->requests, 50);
  EXPECT_EQ(t->errors, 40);
}

TEST_F(RouterMetricsTest, ACounterResetCountsWhatTheRestartedRouterServed) {
  AddModelDeployment("fraud", true);
  AddRouterPod("fraud", "router-1", "10.0.0.1");
  SetCounts("10.0.0.1", {{"fraud-b", {500, 5, 0, 505, 0}}});
  metrics_->ScrapeOnce();
  clock_.Advance(2s);
  SetCounts("10.0.0.1", {{"fraud-b", {520, 5, 0, 525, 0}}});  // +20
  metrics_->ScrapeOnce();
  clock_.Advance(2s);
  SetCounts("10.0.0.1", {{"fraud-b", {7, 1, 0, 8, 0}}});  // restarted: 8 since
  metrics_->ScrapeOnce();
  clock_.Advance(1s);
  SetCounts("10.0.0.1", {{"fraud-b", {17, 1, 0, 18, 0}}});  // +10
  auto t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(5s));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->requests, 20 + 8 + 10);
  EXPECT_EQ(t->errors, 1);
}

TEST_F(RouterMetricsTest, ARouterPodThatAppearsInsideTheWindowStartsFromZero) {
  AddModelDeployment("fraud", true);
  AddRouterPod("fraud", "router-1", "10.0.0.1");
  SetCounts("10.0.0.1", {{"fraud-b", {10, 0, 0, 10, 0}}});
  metrics_->ScrapeOnce();
  clock_.Advance(3s);
  AddRouterPod("fraud", "router-2", "10.0.0.2");
  SetCounts("10.0.0.2", {{"fraud-b", {7, 0, 0, 7, 0}}});
  SetCounts("10.0.0.1", {{"fraud-b", {15, 0, 0, 15, 0}}});
  clock_.Advance(2s);
  auto t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(5s));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->requests, 5 + 7);
}

TEST_F(RouterMetricsTest, AFailedScrapeAtABoundIsAnErrorNeverAZero) {
  AddModelDeployment("fraud", true);
  AddRouterPod("fraud", "router-1", "10.0.0.1");
  SetCounts("10.0.0.1", {{"fraud-b", {10, 0, 0, 10, 0}}});
  metrics_->ScrapeOnce();
  clock_.Advance(5s);
  fetcher_.Fail("http://10.0.0.1:9090/metrics", Timeout("no answer within 500ms"));
  auto t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(5s));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("router-1"), std::string::npos) << t.status();

  // A page that does not parse is no better, nor a router answering 500; each time after a
  // good scrape at the window's start.
  for (const auto& [body, status] : std::vector<std::pair<std::string, int>>{
           {"sluice_router_requests_total{revision=\"x\" 1\n", 200}, {"oops", 500}}) {
    clock_.Advance(1s);
    SetCounts("10.0.0.1", {{"fraud-b", {10, 0, 0, 10, 0}}});
    metrics_->ScrapeOnce();
    clock_.Advance(5s);
    fetcher_.Serve("http://10.0.0.1:9090/metrics", body, status);
    t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(5s));
    EXPECT_FALSE(t.ok()) << body;
    // A failed scrape inside a window whose bounds are good is passed over.
    SetCounts("10.0.0.1", {{"fraud-b", {12, 0, 0, 12, 0}}});
    clock_.Advance(1s);
    t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(6s));
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->requests, 2);
  }
}

TEST_F(RouterMetricsTest, NoRouterPodIsAnError) {
  AddModelDeployment("fraud", true);
  metrics_->ScrapeOnce();
  clock_.Advance(5s);
  auto t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(5s));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no Ready router pod"), std::string::npos) << t.status();
}

TEST_F(RouterMetricsTest, AWindowThatBeganBeforeTheHistoryHasNoData) {
  AddModelDeployment("fraud", true);
  AddRouterPod("fraud", "router-1", "10.0.0.1");
  SetCounts("10.0.0.1", {{"fraud-b", {10, 0, 0, 10, 0}}});
  // Nothing scraped before the call: the window's start is not covered.
  auto t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(5s));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("window start"), std::string::npos) << t.status();
  // The call itself scraped: the next window is measured from there.
  clock_.Advance(5s);
  SetCounts("10.0.0.1", {{"fraud-b", {30, 0, 0, 30, 0}}});
  t = metrics_->Traffic("ml", "fraud", "fraud-b", Last(5s));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->requests, 20);
}

TEST_F(RouterMetricsTest, OnlyModelDeploymentsUnderACanaryAreScrapedInTheBackground) {
  AddModelDeployment("fraud", true);
  AddModelDeployment("quiet", false);
  AddRouterPod("fraud", "router-1", "10.0.0.1");
  AddRouterPod("quiet", "router-q", "10.0.0.9");
  SetCounts("10.0.0.1", {{"fraud-b", {1, 0, 0, 1, 0}}});
  SetCounts("10.0.0.9", {{"quiet-a", {1, 0, 0, 1, 0}}});
  for (int i = 0; i < 3; ++i) {
    metrics_->ScrapeOnce();
    clock_.Advance(1s);
  }
  EXPECT_EQ(fetcher_.calls("http://10.0.0.1:9090/metrics"), 3);
  EXPECT_EQ(fetcher_.calls("http://10.0.0.9:9090/metrics"), 0);
  EXPECT_EQ(metrics_->SnapshotCount("ml", "fraud"), 3u);
  // Past the retention only what is still needed is kept.
  for (int i = 0; i < 70; ++i) {
    metrics_->ScrapeOnce();
    clock_.Advance(1s);
  }
  EXPECT_LE(metrics_->SnapshotCount("ml", "fraud"), 62u);
}

TEST_F(RouterMetricsTest, TheBackgroundScraperSamplesEveryPeriod) {
  AddModelDeployment("fraud", true);
  AddRouterPod("fraud", "router-1", "10.0.0.1");
  SetCounts("10.0.0.1", {{"fraud-b", {1, 0, 0, 1, 0}}});
  metrics_->Start();
  // The most snapshots held at once: the clock runs ahead of the scraper thread, so older ones
  // may already be pruned by the time it stops.
  size_t most = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (most < 4 && std::chrono::steady_clock::now() < deadline) {
    most = std::max(most, metrics_->SnapshotCount("ml", "fraud"));
    clock_.Advance(500ms);
    std::this_thread::yield();
  }
  metrics_->Stop();
  EXPECT_GE(most, 4u);
}

TEST(RouterCountersTest, ReadsOnlyTheRouterSeries) {
  auto c = ParseRouterCounters(
      "sluice_router_requests_total{revision=\"r\",code=\"2xx\"} 5\n"
      "sluice_router_mirror_requests_total{revision=\"r\",code=\"2xx\"} 99\n"
      "sluice_router_request_duration_seconds_bucket{revision=\"r\",le=\"+Inf\"} 5\n"
      "sluice_router_request_duration_seconds_bucket{revision=\"r\",le=\"0.1\"} 4\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->at("r").requests_by_code.at("2xx"), 5);
  EXPECT_EQ(c->at("r").requests_by_code.size(), 1u);
  EXPECT_EQ(c->at("r").buckets.size(), 2u);
  EXPECT_EQ(c->at("r").buckets.at(0.1), 4);
}

TEST(RouterCountersTest, AGuardTrippedInTheLastScrapeOfAnyPodTripsTheWindow) {
  auto page = [](double tripped) {
    return ParseRouterCounters(
        "sluice_router_requests_total{revision=\"c\",code=\"5xx\"} 30\n"
        "sluice_router_guard_tripped{revision=\"c\"} " +
        std::to_string(tripped) + "\n");
  };
  auto calm = page(0);
  auto tripped = page(1);
  ASSERT_TRUE(calm.ok() && tripped.ok());
  EXPECT_EQ(tripped->at("c").guard_tripped, 1);
  RouterMetricsScraper::Snapshot first, last;
  first.at = WallTime(std::chrono::seconds(100));
  last.at = WallTime(std::chrono::seconds(105));
  first.pods["router-a"].revisions = *calm;
  first.pods["router-b"].revisions = *calm;
  last.pods["router-a"].revisions = *calm;
  last.pods["router-b"].revisions = *tripped;
  auto sample = TrafficBetween({&first, &last}, "c");
  ASSERT_TRUE(sample.ok()) << sample.status();
  EXPECT_TRUE(sample->guard_tripped);
  // Tripped at the start only (the weights changed since): not tripped now.
  auto reversed = TrafficBetween({&last, &first}, "c");
  ASSERT_TRUE(reversed.ok()) << reversed.status();
  EXPECT_FALSE(reversed->guard_tripped);
}

}  // namespace
}  // namespace sluice::controllers
