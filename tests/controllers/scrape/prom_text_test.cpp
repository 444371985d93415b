#include "controllers/scrape/prom_text.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace sluice::controllers {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(PromTextTest, CountersGaugesAndHistogramsWithComments) {
  auto parsed =
      ParsePrometheusText(R"(# HELP sluice_router_requests_total Requests by revision and class.
# TYPE sluice_router_requests_total counter
sluice_router_requests_total{revision="fraud-abc",code="2xx"} 1027
sluice_router_requests_total{revision="fraud-abc",code="5xx"} 3 1700000000000
# a free comment
	
# TYPE sluice_router_request_duration_seconds histogram
sluice_router_request_duration_seconds_bucket{revision="fraud-abc",le="0.005"} 10
sluice_router_request_duration_seconds_bucket{revision="fraud-abc",le="+Inf"} 1030
sluice_router_request_duration_seconds_sum{revision="fraud-abc"} 4.5e+00
sluice_router_request_duration_seconds_count{revision="fraud-abc"} 1030
sluice_router_inflight_requests 2
)");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->samples.size(), 7u);
  EXPECT_EQ(parsed->types.at("sluice_router_requests_total"), PromType::kCounter);
  EXPECT_EQ(parsed->types.at("sluice_router_request_duration_seconds"), PromType::kHistogram);
  EXPECT_EQ(parsed->help.at("sluice_router_requests_total"), "Requests by revision and class.");
  const PromSample& errors = parsed->samples[1];
  EXPECT_EQ(errors.name, "sluice_router_requests_total");
  EXPECT_EQ(*errors.Label("code"), "5xx");
  EXPECT_EQ(errors.value, 3);
  EXPECT_EQ(errors.timestamp_ms, 1700000000000);
  EXPECT_EQ(*parsed->samples[3].Label("le"), "+Inf");
  EXPECT_DOUBLE_EQ(parsed->samples[4].value, 4.5);
  EXPECT_TRUE(parsed->samples[6].labels.empty());
  EXPECT_EQ(parsed->samples[6].value, 2);
}

TEST(PromTextTest, LabelValuesKeepEscapesCommasBracesAndSpaces) {
  auto parsed = ParsePrometheusText(
      "m{a=\"x\\\"y\",b=\"back\\\\slash\",c=\"line\\nbreak\",d=\"{,} =\", } 1\r\n"
      "m{ a = \"spaced\" } 2\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->samples.size(), 2u);
  const PromSample& s = parsed->samples[0];
  EXPECT_EQ(*s.Label("a"), "x\"y");
  EXPECT_EQ(*s.Label("b"), "back\\slash");
  EXPECT_EQ(*s.Label("c"), "line\nbreak");
  EXPECT_EQ(*s.Label("d"), "{,} =");
  EXPECT_EQ(*parsed->samples[1].Label("a"), "spaced");
}

TEST(PromTextTest, SpecialValues) {
  auto parsed = ParsePrometheusText("a +Inf\nb -Inf\nc NaN\nd 1e-3\ne -0\nf Inf\ng nan\nh 0x10\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->samples[0].value, kInf);
  EXPECT_EQ(parsed->samples[1].value, -kInf);
  EXPECT_TRUE(std::isnan(parsed->samples[2].value));
  EXPECT_DOUBLE_EQ(parsed->samples[3].value, 0.001);
  EXPECT_EQ(parsed->samples[4].value, 0);
  EXPECT_EQ(parsed->samples[5].value, kInf);
  EXPECT_TRUE(std::isnan(parsed->samples[6].value));
  EXPECT_EQ(parsed->samples[7].value, 16);
}

TEST(PromTextTest, MalformedInputIsRefusedWithTheLine) {
  const char* bad[] = {
      "m{a=\"unterminated} 1\n",
      "m{a=\"x\",a=\"y\"} 1\n",              // duplicate label
      "m{a=\"bad \\t escape\"} 1\n",         // unknown escape
      "m{a=x} 1\n",                          // unquoted value
      "m{1a=\"x\"} 1\n",                     // bad label name
      "m 1 2 3\n",                           // trailing garbage
      "m one\n",                             // not a number
      "m\n",                                 // no value
      "m 1 12.5\n",                          // fractional timestamp
      "9m 1\n",                              // bad metric name
      "# TYPE m countr\n",                   // unknown type
      "# TYPE m counter\n# TYPE m gauge\n",  // second TYPE
      "m{a=\"x\" b=\"y\"} 1\n",              // missing comma
  };
  for (const char* text : bad) {
    auto parsed = ParsePrometheusText(std::string("ok 1\n") + text);
    EXPECT_FALSE(parsed.ok()) << "accepted: " << text;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
      const std::string where =
          "line " + std::to_string(1 + std::count(text, text + std::strlen(text), '\n'));
      EXPECT_NE(parsed.status().message().find(where), std::string::npos)
          << parsed.status().message();
    }
  }
}

TEST(PromTextTest, EmptyAndCommentOnlyPagesHaveNoSamples) {
  auto parsed = ParsePrometheusText("");
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->samples.empty());
  parsed = ParsePrometheusText("# just a comment\n#\n# HELP\n\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->samples.empty());
}

TEST(HistogramQuantileTest, InterpolatesLikePromQL) {
  // 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.5], 10 in (0.5, 1].
  std::vector<HistogramBucket> b = {{0.1, 50}, {0.5, 90}, {1, 100}, {kInf, 100}};
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.5, b), 0.1);
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.25, b), 0.05);  // within the first bucket, from 0
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.7, b), 0.3);    // 20 of 40 into (0.1, 0.5]
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.99, b), 0.95);  // 9 of 10 into (0.5, 1]
}

TEST(HistogramQuantileTest, RankInTheInfBucketGivesTheLargestFiniteBound) {
  std::vector<HistogramBucket> b = {{kInf, 100}, {0.5, 90}, {0.1, 50}};  // any order
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.99, b), 0.5);
}

TEST(HistogramQuantileTest, NoDataCases) {
  EXPECT_FALSE(HistogramQuantile(0.99, {}).has_value());
  EXPECT_FALSE(HistogramQuantile(0.99, {{0.1, 0}, {kInf, 0}}).has_value());
  EXPECT_FALSE(HistogramQuantile(0.99, {{0.1, 5}, {1, 10}}).has_value());  // no +Inf
  EXPECT_FALSE(HistogramQuantile(1.5, {{0.1, 5}, {kInf, 10}}).has_value());
}

TEST(HistogramQuantileTest, NonMonotonicCountsAreRaised) {
  // The 0.5 bucket read lower than 0.1 (series scraped at slightly different times).
  std::vector<HistogramBucket> b = {{0.1, 60}, {0.5, 55}, {1, 100}, {kInf, 100}};
  // Treated as 60 at 0.5: rank 70 falls in (0.5, 1], 10 of 40 in.
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.7, b), 0.625);
}

}  // namespace
}  // namespace sluice::controllers
