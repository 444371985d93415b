#include "controllers/analysis/prometheus_metric_source.h"

#include <gtest/gtest.h>

#include "tests/controllers/scrape/fake_fetcher.h"

namespace sluice::controllers {
namespace {

using testing::FakeFetcher;
using namespace std::chrono_literals;

TEST(PrometheusQueryTest, PlaceholdersAreReplacedEverywhere) {
  EXPECT_EQ(ExpandQuery(
                "sum(rate(x{namespace=\"{{namespace}}\",revision=\"{{revision}}\","
                "md=\"{{name}}\"}[{{interval}}])) / sum(rate(y{r=\"{{revision}}\"}[{{interval}}]))",
                "ml", "fraud", "fraud-7c9", "5s"),
            "sum(rate(x{namespace=\"ml\",revision=\"fraud-7c9\",md=\"fraud\"}[5s])) / "
            "sum(rate(y{r=\"fraud-7c9\"}[5s]))");
}

TEST(PrometheusQueryTest, WindowLengthAsAPromQLDuration) {
  const WallTime t0{std::chrono::seconds(1'700'000'000)};
  EXPECT_EQ(PromDuration({t0, t0 + 5s}), "5s");
  EXPECT_EQ(PromDuration({t0, t0 + 5500ms}), "5500ms");
  EXPECT_EQ(PromDuration({t0, t0}), "1ms");
}

TEST(PrometheusQueryTest, BuiltinQueriesSelectTheRevisionInItsNamespace) {
  EXPECT_EQ(
      RequestsQuery("ml", "fraud-1", "5s"),
      "sum(increase(sluice_router_requests_total{namespace=\"ml\",revision=\"fraud-1\"}[5s]))");
  EXPECT_EQ(ErrorsQuery("ml", "fraud-1", "5s"),
            "sum(increase(sluice_router_requests_total{namespace=\"ml\",revision=\"fraud-1\","
            "code=~\"5xx|error\"}[5s]))");
  EXPECT_EQ(LatencyP99Query("ml", "fraud-1", "10s"),
            "histogram_quantile(0.99, sum by (le) (increase("
            "sluice_router_request_duration_seconds_bucket{namespace=\"ml\",revision=\"fraud-1\"}"
            "[10s])))");
}

TEST(PrometheusResponseTest, VectorScalarEmptyNaNAndErrors) {
  auto v = ParseInstantResponse(
      200,
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"0.25"]}]}})");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 0.25);
  v = ParseInstantResponse(
      200, R"({"status":"success","data":{"resultType":"scalar","result":[1.0,"3"]}})");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 3);
  v = ParseInstantResponse(200,
                           R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value());
  v = ParseInstantResponse(
      200,
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}})");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value()) << "0/0 over an idle window is no data, not a number";
  v = ParseInstantResponse(
      200,
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}})");
  EXPECT_FALSE(v.ok());
  v = ParseInstantResponse(
      400, R"({"status":"error","errorType":"bad_data","error":"parse error at char 5"})");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("parse error at char 5"), std::string::npos);
  EXPECT_FALSE(ParseInstantResponse(502, "<html>bad gateway</html>").ok());
  EXPECT_FALSE(ParseInstantResponse(
                   200, R"({"status":"success","data":{"resultType":"matrix","result":[]}})")
                   .ok());
}

TEST(PrometheusSourceTest, QueriesAreSentEncodedAtTheWindowEnd) {
  FakeFetcher fetcher;
  PrometheusSourceOptions o;
  o.address = "http://prom:9090/";
  o.ns = "ml";
  o.name = "fraud";
  PrometheusMetricSource source(fetcher, o);
  const WallTime end{std::chrono::milliseconds(1'700'000'005'250)};
  const std::string url =
      "http://prom:9090/api/v1/query?query=max%28up%7Bnamespace%3D%22ml%22%7D%5B5s%5D%29"
      "&time=1700000005.250";
  fetcher.Serve(
      url,
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}})");
  auto v = source.Query("max(up{namespace=\"{{namespace}}\"}[{{interval}}])", "fraud-1",
                        Window{end - 5s, end});
  ASSERT_TRUE(v.ok()) << v.status() << " url " << fetcher.last_url();
  EXPECT_EQ(*v, 1);
  EXPECT_EQ(fetcher.calls(url), 1);
}

TEST(PrometheusSourceTest, AnUnreachablePrometheusIsAnError) {
  FakeFetcher fetcher;
  PrometheusMetricSource source(fetcher, {"http://prom:9090", "ml", "fraud", 1s});
  const WallTime end{std::chrono::seconds(1'700'000'000)};
  EXPECT_FALSE(source.Traffic("fraud-1", Window{end - 5s, end}).ok());
}

}  // namespace
}  // namespace sluice::controllers
