#pragma once

// A parser for the Prometheus text exposition format 0.0.4 (what every /metrics endpoint of
// Sluice serves, and what the operator scrapes from routers and servers), and the quantile of a
// cumulative histogram computed the way PromQL's histogram_quantile does.
//
// Contract: pure, no I/O. The parser reads the whole text or fails with InvalidArgument naming
// the line; it never returns part of a malformed exposition, so a scrape is all or nothing.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/status.h"

namespace sluice::controllers {

enum class PromType { kUntyped, kCounter, kGauge, kHistogram, kSummary };

struct PromSample {
  std::string name;  // as written, e.g. "x_bucket" for a histogram's bucket series
  std::vector<std::pair<std::string, std::string>> labels;  // in the order written, unescaped
  double value = 0;                                         // +Inf, -Inf and NaN are kept as such
  std::optional<int64_t> timestamp_ms;

  // The value of label `key`, or nullptr.
  const std::string* Label(std::string_view key) const;
};

struct PromExposition {
  std::vector<PromSample> samples;          // in the order written
  std::map<std::string, PromType> types;    // from # TYPE lines, by family name
  std::map<std::string, std::string> help;  // from # HELP lines, unescaped
};

// Lines: "# HELP name text", "# TYPE name counter|gauge|histogram|summary|untyped", other
// comments (ignored), blank lines, and samples `name{l="v",...} value [timestamp]`. Label values
// take the escapes \\, \" and \n; a trailing comma in the label set is allowed. Duplicate label
// names, bad escapes, bad numbers and trailing garbage are errors.
Result<PromExposition> ParsePrometheusText(std::string_view text);

// One bucket of a cumulative histogram: the count of observations <= upper_bound.
struct HistogramBucket {
  double upper_bound = 0;
  double count = 0;
};

// The q-quantile (0 <= q <= 1) of a cumulative histogram, as histogram_quantile: the bucket
// holding rank q * total, linear interpolation within it (from 0 for the first bucket), the
// largest finite bound when the rank falls in +Inf. nullopt without a +Inf bucket, with no
// observations, or for q outside [0, 1]. Buckets may come in any order; counts that decrease
// with the bound (scrape skew between series) are raised to keep the histogram monotonic.
std::optional<double> HistogramQuantile(double q, std::vector<HistogramBucket> buckets);

}  // namespace sluice::controllers
