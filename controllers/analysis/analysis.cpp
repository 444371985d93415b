#include "controllers/analysis/analysis.h"

#include <algorithm>
#include <cstdio>

#include "lib/api/canary_protection.h"
#include "lib/api/duration.h"

namespace sluice::controllers {
namespace {

std::string FormatValue(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

// "error-rate 0.034 > max 0.01" / "latency-p99 0.21 within [-, 0.5]" / "error-rate no data".
std::string Describe(const MetricResult& r) {
  std::string out = r.name + " ";
  if (!r.value) return out + "no data";
  out += FormatValue(*r.value);
  if (r.outcome == Outcome::kFail) {
    if (r.max && *r.value > *r.max) return out + " > max " + FormatValue(*r.max);
    if (r.min && *r.value < *r.min) return out + " < min " + FormatValue(*r.min);
  }
  return out + " within [" + (r.min ? FormatValue(*r.min) : "-") + ", " +
         (r.max ? FormatValue(*r.max) : "-") + "]";
}

Result<std::chrono::milliseconds> DurationField(const std::optional<std::string>& text,
                                                const char* fallback, std::string_view field) {
  Result<std::chrono::milliseconds> d = ParseDuration(text.value_or(fallback));
  if (!d.ok()) return d.status().Annotate(field);
  return d;
}

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kPass:
      return "Pass";
    case Outcome::kFail:
      return "Fail";
    case Outcome::kNoData:
      return "NoData";
  }
  return "NoData";
}

std::string_view NoDataPolicyName(NoDataPolicy p) {
  switch (p) {
    case NoDataPolicy::kPause:
      return "Pause";
    case NoDataPolicy::kFail:
      return "Fail";
    case NoDataPolicy::kPass:
      return "Pass";
  }
  return "Pause";
}

std::string_view BuiltinMetricName(BuiltinMetric m) {
  switch (m) {
    case BuiltinMetric::kErrorRate:
      return "errorRate";
    case BuiltinMetric::kLatencyP99:
      return "latencyP99";
    case BuiltinMetric::kNone:
      return "";
  }
  return "";
}

Verdict Evaluate(const AnalysisPolicy& policy, const AnalysisSamples& samples,
                 const std::optional<AnalysisHistory>& history) {
  Verdict v;
  v.revision = samples.revision;
  v.window = samples.window;
  v.time = samples.window.end;

  // Below minRequests the traffic-derived values are noise: a 1-request window with one error is
  // not a 100% error rate, and a 0-request window has no latency at all.
  bool enough_traffic = false;
  if (samples.traffic) {
    v.requests = samples.traffic->requests;
    v.errors = samples.traffic->errors;
    enough_traffic =
        samples.traffic->requests > 0 && samples.traffic->requests >= policy.min_requests;
  }

  bool any_fail = false;
  bool any_missing = false;
  for (const MetricCheck& check : policy.metrics) {
    MetricResult r;
    r.name = check.name;
    r.min = check.min;
    r.max = check.max;
    switch (check.builtin) {
      case BuiltinMetric::kErrorRate:
        if (enough_traffic) {
          r.value = static_cast<double>(samples.traffic->errors) /
                    static_cast<double>(samples.traffic->requests);
        }
        break;
      case BuiltinMetric::kLatencyP99:
        if (enough_traffic) r.value = samples.traffic->latency_p99_seconds;
        break;
      case BuiltinMetric::kNone: {
        auto it = samples.query_values.find(check.name);
        if (it != samples.query_values.end()) r.value = it->second;
        break;
      }
    }
    if (!r.value) {
      r.outcome = Outcome::kNoData;
      any_missing = true;
    } else if ((check.min && *r.value < *check.min) || (check.max && *r.value > *check.max)) {
      r.outcome = Outcome::kFail;
      any_fail = true;
    } else {
      r.outcome = Outcome::kPass;
    }
    v.metrics.push_back(std::move(r));
  }
  // A window below minRequests does not count as a pass, whatever the query metrics say; a
  // failing query still fails it.
  if (policy.min_requests > 0 && !enough_traffic) any_missing = true;
  // The router measured the canary above the error-rate limit and holds its requests back: the
  // windows that follow would have no canary traffic to judge.
  if (samples.traffic && samples.traffic->guard_tripped) {
    v.guard_tripped = true;
    any_fail = true;
  }

  if (any_fail) {
    v.outcome = Outcome::kFail;
  } else if (any_missing) {
    v.no_data = true;
    switch (policy.no_data) {
      case NoDataPolicy::kPause:
        v.outcome = Outcome::kNoData;
        break;
      case NoDataPolicy::kFail:
        v.outcome = Outcome::kFail;
        break;
      case NoDataPolicy::kPass:
        v.outcome = Outcome::kPass;
        break;
    }
  } else {
    v.outcome = Outcome::kPass;
  }

  const int32_t previous =
      history && history->revision == samples.revision ? history->consecutive_failures : 0;
  switch (v.outcome) {
    case Outcome::kFail:
      v.consecutive_failures = previous + 1;
      break;
    case Outcome::kNoData:
      v.consecutive_failures = previous;
      break;
    case Outcome::kPass:
      v.consecutive_failures = 0;
      break;
  }
  v.failed =
      v.guard_tripped || v.consecutive_failures >= std::max<int32_t>(1, policy.failure_threshold);

  std::string msg;
  for (const MetricResult& r : v.metrics) {
    if (!msg.empty()) msg += "; ";
    msg += Describe(r);
  }
  if (v.guard_tripped) {
    msg =
        "router guard tripped: the canary's error rate over its last requests passed the "
        "limit, its requests go to the stable revision" +
        (msg.empty() ? std::string() : "; " + msg);
  }
  if (msg.empty()) msg = "no metrics";
  msg += "; requests " + std::to_string(v.requests);
  if (v.requests < policy.min_requests) {
    msg += " < minRequests " + std::to_string(policy.min_requests);
  }
  for (const std::string& e : samples.source_errors) msg += "; " + e;
  if (v.no_data && !any_fail) {
    msg += "; missing data treated as ";
    msg += OutcomeName(v.outcome);
    msg += " (noDataPolicy ";
    msg += NoDataPolicyName(policy.no_data);
    msg += ")";
  }
  if (v.outcome == Outcome::kFail && !v.guard_tripped) {
    msg += "; failure " + std::to_string(v.consecutive_failures) + " of " +
           std::to_string(policy.failure_threshold);
  }
  v.message = std::move(msg);
  return v;
}

AnalysisSamples CollectSamples(const AnalysisPolicy& policy, MetricSource& source,
                               const std::string& revision, const Window& window) {
  AnalysisSamples s;
  s.revision = revision;
  s.window = window;
  bool need_traffic = policy.min_requests > 0;
  for (const MetricCheck& check : policy.metrics) {
    if (check.builtin != BuiltinMetric::kNone) need_traffic = true;
  }
  if (need_traffic) {
    Result<TrafficSample> traffic = source.Traffic(revision, window);
    if (traffic.ok()) {
      s.traffic = *traffic;
    } else {
      s.source_errors.push_back("traffic: " + traffic.status().ToString());
    }
  }
  for (const MetricCheck& check : policy.metrics) {
    if (check.builtin != BuiltinMetric::kNone) continue;
    Result<std::optional<double>> value = source.Query(check.query, revision, window);
    if (value.ok()) {
      s.query_values[check.name] = *value;
    } else {
      s.query_values[check.name] = std::nullopt;
      s.source_errors.push_back(check.name + ": " + value.status().ToString());
    }
  }
  return s;
}

Result<AnalysisPolicy> ResolveAnalysisPolicy(const std::optional<AnalysisSpec>& spec) {
  const std::string base = "spec.rollout.canary.analysis";
  AnalysisSpec a = spec.value_or(AnalysisSpec{});
  AnalysisPolicy p;
  ASSIGN_OR_RETURN(p.interval, DurationField(a.interval, "5s", base + ".interval"));
  if (p.interval.count() <= 0) return InvalidArgument(base + ".interval: must be positive");
  p.failure_threshold = a.failure_threshold.value_or(2);
  if (p.failure_threshold < 1) return InvalidArgument(base + ".failureThreshold: must be >= 1");
  p.min_requests = a.min_requests.value_or(10);
  if (p.min_requests < 0) return InvalidArgument(base + ".minRequests: must be >= 0");
  const std::string policy = a.no_data_policy.value_or("Pause");
  if (policy == "Pause") {
    p.no_data = NoDataPolicy::kPause;
  } else if (policy == "Fail") {
    p.no_data = NoDataPolicy::kFail;
  } else if (policy == "Pass") {
    p.no_data = NoDataPolicy::kPass;
  } else {
    return InvalidArgument(base + ".noDataPolicy: unknown value \"" + policy + "\"");
  }

  if (!a.metrics) {
    p.metrics = {
        {"error-rate", BuiltinMetric::kErrorRate, "", std::nullopt, api::kDefaultMaxErrorRate},
        {"latency-p99", BuiltinMetric::kLatencyP99, "", std::nullopt, 0.5},
    };
    return p;
  }
  for (size_t i = 0; i < a.metrics->size(); ++i) {
    const AnalysisMetricSpec& m = (*a.metrics)[i];
    const std::string field = base + ".metrics[" + std::to_string(i) + "]";
    MetricCheck c;
    c.name = m.name;
    c.min = m.threshold_range.min;
    c.max = m.threshold_range.max;
    if (m.builtin.has_value() == m.query.has_value()) {
      return InvalidArgument(field + ": takes exactly one of builtin or query");
    }
    if (m.builtin) {
      if (*m.builtin == "errorRate") {
        c.builtin = BuiltinMetric::kErrorRate;
      } else if (*m.builtin == "latencyP99") {
        c.builtin = BuiltinMetric::kLatencyP99;
      } else {
        return InvalidArgument(field + ".builtin: unknown value \"" + *m.builtin + "\"");
      }
    } else {
      c.query = *m.query;
    }
    if (!c.min && !c.max) return InvalidArgument(field + ".thresholdRange: needs min or max");
    p.metrics.push_back(std::move(c));
  }
  return p;
}

}  // namespace sluice::controllers
