// PrometheusMetricSource against a real Prometheus (the Debian binary) scraping a /metrics page
// this test serves: router-style counters that grow at a known rate, 20% of them 5xx/error and a
// known latency mix, labelled with namespace and pod as the kubernetes_sd relabelling would.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "controllers/analysis/prometheus_metric_source.h"
#include "lib/http/http_server.h"
#include "controllers/scrape/http_fetcher.h"
#include "tests/support/process.h"

namespace sluice::controllers {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr double kRate = 40;  // requests per second to the canary revision
constexpr char kRevision[] = "fraud-canary";

// Counters as a function of time since `start`: kRate per second, one in five an error
// (3 in 20 5xx, 1 in 20 no answer), 97% under 10 ms and 3% in (0.25 s, 0.5 s].
std::string RouterPage(Steady::time_point start) {
  const double n = std::floor(kRate * std::chrono::duration<double>(Steady::now() - start).count());
  const double e5xx = std::floor(n * 0.15), error = std::floor(n * 0.05);
  const double ok = n - e5xx - error;
  const double slow = std::floor(n * 0.03);
  const double fast = n - slow;
  auto fmt = [](double v) { return std::to_string(static_cast<int64_t>(v)); };
  const std::string rev = std::string("revision=\"") + kRevision + "\"";
  std::string p = "# TYPE sluice_router_requests_total counter\n";
  p += "sluice_router_requests_total{" + rev + ",code=\"2xx\"} " + fmt(ok) + "\n";
  p += "sluice_router_requests_total{" + rev + ",code=\"4xx\"} 0\n";
  p += "sluice_router_requests_total{" + rev + ",code=\"5xx\"} " + fmt(e5xx) + "\n";
  p += "sluice_router_requests_total{" + rev + ",code=\"error\"} " + fmt(error) + "\n";
  p += "sluice_router_requests_total{revision=\"fraud-stable\",code=\"2xx\"} " + fmt(n * 9) + "\n";
  p += "# TYPE sluice_router_request_duration_seconds histogram\n";
  for (const auto& [le, count] : std::vector<std::pair<std::string, double>>{
           {"0.005", 0}, {"0.01", fast}, {"0.25", fast}, {"0.5", n}, {"+Inf", n}}) {
    p += "sluice_router_request_duration_seconds_bucket{" + rev + ",le=\"" + le + "\"} " +
         fmt(count) + "\n";
  }
  p += "sluice_router_request_duration_seconds_count{" + rev + "} " + fmt(n) + "\n";
  return p;
}

class PrometheusIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    start_ = new Steady::time_point(Steady::now());
    auto router = std::make_shared<HttpRouter>();
    router->Handle(HttpVerb::get, "/metrics", [](const HttpRequest&, Responder responder) {
      responder.SendBody(HttpStatus::ok, "text/plain; version=0.0.4", RouterPage(*start_));
    });
    HttpServerOptions so;
    so.address = "127.0.0.1";
    so.io_threads = 1;
    auto server = HttpServer::Create(so, router);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();

    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           ("sluice-prom-" + std::to_string(::getpid())));
    std::filesystem::create_directories(*dir_ + "/data");
    // What the kubernetes_sd relabelling of controllers/analysis/README.md produces, written as
    // static labels (Debian's Prometheus has no Kubernetes discovery).
    std::ofstream(*dir_ + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           "scrape_configs:\n- job_name: sluice-router\n  static_configs:\n"
           "  - targets: ['127.0.0.1:"
        << server_->port() << "']\n    labels: {namespace: ml, pod: fraud-router-abc}\n";
    for (int attempt = 0; attempt < 3 && prometheus_ == nullptr; ++attempt) {
      auto port = testing::PickFreePort();
      ASSERT_TRUE(port.ok());
      testing::SpawnOptions spawn;
      spawn.argv = {"prometheus", "--config.file=" + *dir_ + "/prometheus.yml",
                    "--storage.tsdb.path=" + *dir_ + "/data",
                    "--web.listen-address=127.0.0.1:" + std::to_string(*port), "--log.level=warn"};
      spawn.log_path = *dir_ + "/prometheus.log";
      auto p = testing::Subprocess::Spawn(spawn);
      ASSERT_TRUE(p.ok()) << p.status();
      address_ = new std::string("http://127.0.0.1:" + std::to_string(*port));
      auto fetcher = NewCurlFetcher();
      ASSERT_TRUE(fetcher.ok());
      const auto deadline = Steady::now() + 60s;
      bool ready = false;
      while (Steady::now() < deadline && (*p)->Running()) {
        auto r = (*fetcher)->Get(*address_ + "/-/ready", 1s);
        if (r.ok() && r->status == 200) {
          ready = true;
          break;
        }
        std::this_thread::sleep_for(100ms);  // polling a process that is starting up
      }
      if (ready) {
        prometheus_ = p->release();
      } else {
        delete address_;
        address_ = nullptr;
      }
    }
    ASSERT_NE(prometheus_, nullptr) << testing::TailFile(*dir_ + "/prometheus.log");
  }

  static void TearDownTestSuite() {
    if (prometheus_) (void)prometheus_->Stop(10s);
    delete prometheus_;
    prometheus_ = nullptr;
    if (server_) server_->Shutdown();
    delete server_;
    server_ = nullptr;
    if (dir_) std::filesystem::remove_all(*dir_);
    delete dir_;
    delete address_;
    delete start_;
  }

  void SetUp() override {
    ASSERT_NE(prometheus_, nullptr);
    auto f = NewCurlFetcher();
    ASSERT_TRUE(f.ok());
    fetcher_ = std::move(*f);
    source_ = std::make_unique<PrometheusMetricSource>(
        *fetcher_, PrometheusSourceOptions{*address_, "ml", "fraud", 5s});
    // Wait until Prometheus holds at least 8 scrapes of the page: enough for a 5 s window.
    const auto deadline = Steady::now() + 60s;
    std::optional<double> samples;
    while (Steady::now() < deadline) {
      auto v = source_->Instant(
          "count_over_time(sluice_router_requests_total{namespace=\"ml\",code=\"2xx\","
          "revision=\"fraud-canary\"}[1m])",
          std::chrono::system_clock::now());
      if (v.ok() && *v && **v >= 8) {
        samples = *v;
        break;
      }
      std::this_thread::sleep_for(200ms);  // polling Prometheus for its next scrape
    }
    ASSERT_TRUE(samples.has_value())
        << "Prometheus did not scrape the page: " << testing::TailFile(*dir_ + "/prometheus.log");
  }

  static Window LastSeconds(int n) {
    // A second back from now so the window's end is covered by a scrape already stored.
    const WallTime end = std::chrono::system_clock::now() - 1s;
    return Window{end - std::chrono::seconds(n), end};
  }

  static Steady::time_point* start_;
  static HttpServer* server_;
  static testing::Subprocess* prometheus_;
  static std::string* dir_;
  static std::string* address_;
  std::unique_ptr<HttpFetcher> fetcher_;
  std::unique_ptr<PrometheusMetricSource> source_;
};

Steady::time_point* PrometheusIntegrationTest::start_ = nullptr;
HttpServer* PrometheusIntegrationTest::server_ = nullptr;
testing::Subprocess* PrometheusIntegrationTest::prometheus_ = nullptr;
std::string* PrometheusIntegrationTest::dir_ = nullptr;
std::string* PrometheusIntegrationTest::address_ = nullptr;

TEST_F(PrometheusIntegrationTest, BuiltinMetricsComeFromTheDefaultQueries) {
  auto t = source_->Traffic(kRevision, LastSeconds(5));
  ASSERT_TRUE(t.ok()) << t.status();
  // increase() extrapolates to the window's edges, so counts are near kRate * 5 = 200.
  EXPECT_NEAR(static_cast<double>(t->requests), kRate * 5, kRate * 5 * 0.3);
  ASSERT_GT(t->requests, 0);
  EXPECT_NEAR(static_cast<double>(t->errors) / static_cast<double>(t->requests), 0.2, 0.03);
  // 97% fast, 3% in (0.25, 0.5]: p99 is two thirds into that bucket.
  ASSERT_TRUE(t->latency_p99_seconds.has_value());
  EXPECT_NEAR(*t->latency_p99_seconds, 0.25 + 0.25 * 2.0 / 3.0, 0.03);
}

TEST_F(PrometheusIntegrationTest, CustomQueriesHaveTheirPlaceholdersFilledIn) {
  auto v = source_->Query(
      "sum(rate(sluice_router_requests_total{namespace=\"{{namespace}}\",revision=\"{{revision}}\","
      "code=~\"5xx|error\"}[{{interval}}])) / sum(rate(sluice_router_requests_total{namespace="
      "\"{{namespace}}\",revision=\"{{revision}}\"}[{{interval}}]))",
      kRevision, LastSeconds(5));
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->has_value());
  EXPECT_NEAR(**v, 0.2, 0.03);
}

TEST_F(PrometheusIntegrationTest, NoSeriesIsNoDataAndABadQueryIsAnError) {
  auto t = source_->Traffic("fraud-nonexistent", LastSeconds(5));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->requests, 0);
  EXPECT_FALSE(t->latency_p99_seconds.has_value());
  auto v = source_->Query("sum(rate(nothing_here{revision=\"{{revision}}\"}[{{interval}}]))",
                          kRevision, LastSeconds(5));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->has_value());
  auto bad = source_->Query("sum(rate(", kRevision, LastSeconds(5));
  EXPECT_FALSE(bad.ok());
  // Several series cannot be judged against one threshold.
  auto many = source_->Query("sluice_router_requests_total{namespace=\"{{namespace}}\"}", kRevision,
                             LastSeconds(5));
  EXPECT_FALSE(many.ok());
}

}  // namespace
}  // namespace sluice::controllers
