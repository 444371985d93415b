#include "controllers/analysis/analysis.h"

#include <gtest/gtest.h>

#include "tests/controllers/analysis/fake_metric_source.h"

namespace sluice::controllers {
namespace {

using std::chrono::seconds;
using testing::FakeMetricSource;

const WallTime kT0 = WallTime(seconds(1704067200));

AnalysisPolicy DefaultPolicy() {
  AnalysisPolicy p;
  p.interval = seconds(5);
  p.failure_threshold = 2;
  p.min_requests = 10;
  p.no_data = NoDataPolicy::kPause;
  p.metrics = {{"error-rate", BuiltinMetric::kErrorRate, "", std::nullopt, 0.01},
               {"latency-p99", BuiltinMetric::kLatencyP99, "", std::nullopt, 0.5}};
  return p;
}

AnalysisSamples Traffic(int64_t requests, int64_t errors, std::optional<double> p99 = 0.05) {
  AnalysisSamples s;
  s.revision = "md-v2";
  s.window = {kT0, kT0 + seconds(5)};
  s.traffic = TrafficSample{requests, errors, p99};
  return s;
}

TEST(EvaluateTest, HealthyWindowPasses) {
  Verdict v = Evaluate(DefaultPolicy(), Traffic(200, 1, 0.05), std::nullopt);
  EXPECT_EQ(v.outcome, Outcome::kPass);
  EXPECT_FALSE(v.no_data);
  EXPECT_FALSE(v.failed);
  EXPECT_EQ(v.consecutive_failures, 0);
  EXPECT_EQ(v.time, kT0 + seconds(5));
  EXPECT_EQ(v.revision, "md-v2");
  ASSERT_EQ(v.metrics.size(), 2u);
  EXPECT_DOUBLE_EQ(*v.metrics[0].value, 0.005);
  EXPECT_EQ(v.metrics[0].outcome, Outcome::kPass);
  EXPECT_DOUBLE_EQ(*v.metrics[1].value, 0.05);
  EXPECT_EQ(v.requests, 200);
  EXPECT_EQ(v.errors, 1);
}

TEST(EvaluateTest, ATrippedRouterGuardFailsTheWindowAndTheRolloutAtOnce) {
  // The guard kept the canary's requests away, so the window holds too few to judge: without the
  // guard this would be NoData (Pause) and the rollout would wait; with it, it fails now, on the
  // first failure, whatever failureThreshold says.
  AnalysisSamples s = Traffic(3, 1, 0.05);
  s.traffic->guard_tripped = true;
  Verdict v = Evaluate(DefaultPolicy(), s, std::nullopt);
  EXPECT_EQ(v.outcome, Outcome::kFail);
  EXPECT_TRUE(v.guard_tripped);
  EXPECT_TRUE(v.failed);
  EXPECT_EQ(v.consecutive_failures, 1);
  EXPECT_NE(v.message.find("router guard tripped"), std::string::npos) << v.message;
  // An untripped guard changes nothing: the same window is NoData.
  Verdict plain = Evaluate(DefaultPolicy(), Traffic(3, 1, 0.05), std::nullopt);
  EXPECT_EQ(plain.outcome, Outcome::kNoData);
  EXPECT_FALSE(plain.failed);
  EXPECT_FALSE(plain.guard_tripped);
}

TEST(EvaluateTest, ThresholdsAreClosedAndBothBoundsApply) {
  AnalysisPolicy p = DefaultPolicy();
  EXPECT_EQ(Evaluate(p, Traffic(100, 1, 0.5), std::nullopt).outcome, Outcome::kPass);  // = max
  EXPECT_EQ(Evaluate(p, Traffic(100, 2, 0.5), std::nullopt).outcome, Outcome::kFail);
  EXPECT_EQ(Evaluate(p, Traffic(100, 0, 0.51), std::nullopt).outcome, Outcome::kFail);

  AnalysisPolicy with_min;
  with_min.metrics = {{"throughput", BuiltinMetric::kNone, "rate(x)", 5.0, 10.0}};
  AnalysisSamples s;
  s.revision = "md-v2";
  s.query_values["throughput"] = 4.9;
  Verdict v = Evaluate(with_min, s, std::nullopt);
  EXPECT_EQ(v.outcome, Outcome::kFail);
  EXPECT_NE(v.message.find("throughput 4.9 < min 5"), std::string::npos) << v.message;
  s.query_values["throughput"] = 5.0;
  EXPECT_EQ(Evaluate(with_min, s, std::nullopt).outcome, Outcome::kPass);
  s.query_values["throughput"] = 10.5;
  EXPECT_EQ(Evaluate(with_min, s, std::nullopt).outcome, Outcome::kFail);
}

TEST(EvaluateTest, FailureMessageCarriesTheMeasuredValues) {
  Verdict v = Evaluate(DefaultPolicy(), Traffic(200, 30, 0.9), std::nullopt);
  EXPECT_EQ(v.outcome, Outcome::kFail);
  EXPECT_NE(v.message.find("error-rate 0.15 > max 0.01"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("latency-p99 0.9 > max 0.5"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("requests 200"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("failure 1 of 2"), std::string::npos) << v.message;
}

TEST(EvaluateTest, ConsecutiveFailuresReachTheThreshold) {
  AnalysisPolicy p = DefaultPolicy();
  p.failure_threshold = 3;
  std::optional<AnalysisHistory> history;
  Verdict v1 = Evaluate(p, Traffic(100, 50), history);
  EXPECT_EQ(v1.consecutive_failures, 1);
  EXPECT_FALSE(v1.failed);
  history = AnalysisHistory{v1.revision, v1.consecutive_failures};
  Verdict v2 = Evaluate(p, Traffic(100, 50), history);
  EXPECT_EQ(v2.consecutive_failures, 2);
  EXPECT_FALSE(v2.failed);
  history = AnalysisHistory{v2.revision, v2.consecutive_failures};
  Verdict v3 = Evaluate(p, Traffic(100, 50), history);
  EXPECT_EQ(v3.consecutive_failures, 3);
  EXPECT_TRUE(v3.failed);
}

TEST(EvaluateTest, APassResetsTheCountAndAnotherRevisionStartsOver) {
  AnalysisPolicy p = DefaultPolicy();
  Verdict pass = Evaluate(p, Traffic(100, 0), AnalysisHistory{"md-v2", 1});
  EXPECT_EQ(pass.consecutive_failures, 0);
  Verdict other = Evaluate(p, Traffic(100, 50), AnalysisHistory{"md-v1", 1});
  EXPECT_EQ(other.consecutive_failures, 1);
  EXPECT_FALSE(other.failed);
  Verdict same = Evaluate(p, Traffic(100, 50), AnalysisHistory{"md-v2", 1});
  EXPECT_EQ(same.consecutive_failures, 2);
  EXPECT_TRUE(same.failed);
}

TEST(EvaluateTest, BelowMinRequestsIsNoDataNeverAPass) {
  AnalysisPolicy p = DefaultPolicy();
  // 9 requests, all failed: too few to judge, and not a pass either.
  Verdict v = Evaluate(p, Traffic(9, 9), AnalysisHistory{"md-v2", 1});
  EXPECT_EQ(v.outcome, Outcome::kNoData);
  EXPECT_TRUE(v.no_data);
  EXPECT_EQ(v.consecutive_failures, 1);  // kept, neither reset nor counted
  EXPECT_FALSE(v.failed);
  EXPECT_FALSE(v.metrics[0].value.has_value());
  EXPECT_NE(v.message.find("requests 9 < minRequests 10"), std::string::npos) << v.message;
  EXPECT_NE(v.message.find("noDataPolicy Pause"), std::string::npos) << v.message;
  EXPECT_EQ(Evaluate(p, Traffic(10, 0), std::nullopt).outcome, Outcome::kPass);
}

TEST(EvaluateTest, NoDataPolicies) {
  AnalysisPolicy p = DefaultPolicy();
  AnalysisSamples silent = Traffic(0, 0, std::nullopt);

  p.no_data = NoDataPolicy::kPause;
  EXPECT_EQ(Evaluate(p, silent, std::nullopt).outcome, Outcome::kNoData);

  p.no_data = NoDataPolicy::kFail;
  Verdict fail = Evaluate(p, silent, AnalysisHistory{"md-v2", 1});
  EXPECT_EQ(fail.outcome, Outcome::kFail);
  EXPECT_TRUE(fail.no_data);
  EXPECT_EQ(fail.consecutive_failures, 2);
  EXPECT_TRUE(fail.failed);

  p.no_data = NoDataPolicy::kPass;
  Verdict pass = Evaluate(p, silent, AnalysisHistory{"md-v2", 1});
  EXPECT_EQ(pass.outcome, Outcome::kPass);
  EXPECT_TRUE(pass.no_data);  // said out loud, not silent
  EXPECT_NE(pass.message.find("missing data treated as Pass (noDataPolicy Pass)"),
            std::string::npos)
      << pass.message;
  EXPECT_EQ(pass.consecutive_failures, 0);
}

TEST(EvaluateTest, AFailingMetricWinsOverMissingData) {
  AnalysisPolicy p = DefaultPolicy();
  p.no_data = NoDataPolicy::kPass;
  // Enough requests and a bad error rate, but no latency figure.
  Verdict v = Evaluate(p, Traffic(100, 20, std::nullopt), std::nullopt);
  EXPECT_EQ(v.outcome, Outcome::kFail);
  EXPECT_EQ(v.metrics[1].outcome, Outcome::kNoData);
}

TEST(EvaluateTest, MissingQueryValueIsNoData) {
  AnalysisPolicy p;
  p.min_requests = 0;
  p.metrics = {{"cpu", BuiltinMetric::kNone, "sum(rate(cpu[1m]))", std::nullopt, 2.0}};
  AnalysisSamples s;
  s.revision = "md-v2";
  EXPECT_EQ(Evaluate(p, s, std::nullopt).outcome, Outcome::kNoData);
  s.query_values["cpu"] = std::nullopt;
  EXPECT_EQ(Evaluate(p, s, std::nullopt).outcome, Outcome::kNoData);
  s.query_values["cpu"] = 1.5;
  EXPECT_EQ(Evaluate(p, s, std::nullopt).outcome, Outcome::kPass);
}

TEST(EvaluateTest, MinRequestsAppliesEvenWithOnlyQueryMetrics) {
  AnalysisPolicy p;
  p.min_requests = 10;
  p.metrics = {{"cpu", BuiltinMetric::kNone, "q", std::nullopt, 2.0}};
  AnalysisSamples s;
  s.revision = "md-v2";
  s.traffic = TrafficSample{3, 0, std::nullopt};
  s.query_values["cpu"] = 1.0;
  EXPECT_EQ(Evaluate(p, s, std::nullopt).outcome, Outcome::kNoData);
  s.query_values["cpu"] = 3.0;  // a real failure is not hidden by the low traffic
  EXPECT_EQ(Evaluate(p, s, std::nullopt).outcome, Outcome::kFail);
}

TEST(CollectSamplesTest, ReadsWhatThePolicyNeedsAndTurnsErrorsIntoMissingData) {
  FakeMetricSource source;
  source.model("md-v2").requests_per_second = 20;
  source.model("md-v2").error_fraction = 0.1;
  source.SetQuery("q-good", std::optional<double>(0.7));
  source.SetQuery("q-bad", Unavailable("prometheus down"));
  AnalysisPolicy p = DefaultPolicy();
  p.metrics.push_back({"good", BuiltinMetric::kNone, "q-good", std::nullopt, 1.0});
  p.metrics.push_back({"bad", BuiltinMetric::kNone, "q-bad", std::nullopt, 1.0});
  const Window w{kT0, kT0 + seconds(5)};
  AnalysisSamples s = CollectSamples(p, source, "md-v2", w);
  ASSERT_TRUE(s.traffic.has_value());
  EXPECT_EQ(s.traffic->requests, 100);
  EXPECT_EQ(s.traffic->errors, 10);
  EXPECT_EQ(s.query_values.at("good"), 0.7);
  EXPECT_EQ(s.query_values.at("bad"), std::nullopt);
  ASSERT_EQ(s.source_errors.size(), 1u);
  EXPECT_NE(s.source_errors[0].find("prometheus down"), std::string::npos);

  Verdict v = Evaluate(p, s, std::nullopt);
  EXPECT_EQ(v.outcome, Outcome::kFail);  // 10% errors
  EXPECT_NE(v.message.find("prometheus down"), std::string::npos) << v.message;

  source.model("md-v2").traffic_error = Unavailable("router unreachable");
  s = CollectSamples(p, source, "md-v2", w);
  EXPECT_FALSE(s.traffic.has_value());
  p.no_data = NoDataPolicy::kPause;
  p.metrics.resize(2);
  v = Evaluate(p, s, std::nullopt);
  EXPECT_EQ(v.outcome, Outcome::kNoData);
  EXPECT_NE(v.message.find("router unreachable"), std::string::npos) << v.message;
}

TEST(CollectSamplesTest, SkipsTrafficWhenNothingNeedsIt) {
  FakeMetricSource source;
  source.SetQuery("q", std::optional<double>(1.0));
  AnalysisPolicy p;
  p.min_requests = 0;
  p.metrics = {{"m", BuiltinMetric::kNone, "q", std::nullopt, 2.0}};
  AnalysisSamples s = CollectSamples(p, source, "md-v2", {kT0, kT0 + seconds(5)});
  EXPECT_EQ(source.traffic_calls(), 0);
  EXPECT_FALSE(s.traffic.has_value());
  EXPECT_EQ(Evaluate(p, s, std::nullopt).outcome, Outcome::kPass);
}

TEST(ResolveAnalysisPolicyTest, DefaultsAndErrors) {
  Result<AnalysisPolicy> p = ResolveAnalysisPolicy(std::nullopt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->interval, seconds(5));
  EXPECT_EQ(p->failure_threshold, 2);
  EXPECT_EQ(p->min_requests, 10);
  EXPECT_EQ(p->no_data, NoDataPolicy::kPause);
  ASSERT_EQ(p->metrics.size(), 2u);
  EXPECT_EQ(p->metrics[0].builtin, BuiltinMetric::kErrorRate);
  EXPECT_EQ(p->metrics[0].max, 0.01);
  EXPECT_EQ(p->metrics[1].builtin, BuiltinMetric::kLatencyP99);
  EXPECT_EQ(p->metrics[1].max, 0.5);

  AnalysisSpec bad;
  bad.interval = "soon";
  EXPECT_NE(ResolveAnalysisPolicy(bad).status().message().find("analysis.interval"),
            std::string::npos);
  AnalysisSpec both;
  both.metrics = std::vector<AnalysisMetricSpec>{{"m", "errorRate", "q", {std::nullopt, 1.0}}};
  EXPECT_FALSE(ResolveAnalysisPolicy(both).ok());
  AnalysisSpec policy;
  policy.no_data_policy = "Ignore";
  EXPECT_FALSE(ResolveAnalysisPolicy(policy).ok());
}

}  // namespace
}  // namespace sluice::controllers
