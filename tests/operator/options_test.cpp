#include "operator/options.h"

#include <gtest/gtest.h>

namespace sluice::app {
namespace {

using namespace std::chrono_literals;

Result<OperatorOptions> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "sluice-operator");
  return ParseFlags(static_cast<int>(args.size()), args.data());
}

TEST(OperatorOptionsTest, AnalysisDefaultsToTheRouterAndSamplesEverySecond) {
  auto o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->analysis_provider, OperatorOptions::AnalysisProvider::kRouter);
  EXPECT_TRUE(o->prometheus_url.empty());
  EXPECT_EQ(o->autoscaler_scrape_period, 1000ms);
}

TEST(OperatorOptionsTest, IdleConnectionsFollowTheWorkersUnlessSet) {
  auto o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->kube_idle_connections, 0);
  EXPECT_EQ(KubeIdleConnections(*o), 4u * 8 + 16);
  o = Parse({"--workers=16"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(KubeIdleConnections(*o), 16u * 8 + 16);
  o = Parse({"--workers=16", "--kube-idle-connections=10"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(KubeIdleConnections(*o), 10u);
  EXPECT_FALSE(Parse({"--kube-idle-connections=-1"}).ok());
}

TEST(OperatorOptionsTest, AnalysisFlags) {
  auto o = Parse({"--analysis-provider=prometheus", "--prometheus-url", "http://prom:9090",
                  "--autoscaler-scrape-period=500ms"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->analysis_provider, OperatorOptions::AnalysisProvider::kPrometheus);
  EXPECT_EQ(o->prometheus_url, "http://prom:9090");
  EXPECT_EQ(o->autoscaler_scrape_period, 500ms);
  o = Parse({"--analysis-provider=none"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->analysis_provider, OperatorOptions::AnalysisProvider::kNone);
}

TEST(OperatorOptionsTest, BadAnalysisFlagsAreRefusedNamingTheFlag) {
  for (const auto& args : std::vector<std::vector<const char*>>{
           {"--analysis-provider=graphite"},
           {"--analysis-provider=prometheus"},  // without --prometheus-url
           {"--prometheus-url=prom:9090"},
           {"--autoscaler-scrape-period=10ms"},
           {"--autoscaler-scrape-period=soon"}}) {
    auto o = Parse(args);
    ASSERT_FALSE(o.ok()) << args[0];
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
    const std::string flag(args[0], std::string(args[0]).find('='));
    EXPECT_NE(o.status().message().find(flag), std::string::npos) << o.status();
  }
}

}  // namespace
}  // namespace sluice::app
