#include "controllers/analysis/prometheus_metric_source.h"
#include "lib/api/metric_names.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace sluice::controllers {

using nlohmann::json;

namespace {

std::string UrlEncode(std::string_view in) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size() * 3);
  for (unsigned char c : in) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A label value inside a PromQL string literal.
std::string Quote(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Selector(const std::string& ns, const std::string& revision,
                     const std::string& extra = "") {
  return "{namespace=" + Quote(ns) + "," + api::kRevisionLabel + "=" + Quote(revision) + extra + "}";
}

void ReplaceAll(std::string& s, std::string_view from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

}  // namespace

std::string PromDuration(const Window& window) {
  const auto ms = std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(window.end - window.start).count());
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string ExpandQuery(const std::string& query, const std::string& ns, const std::string& name,
                        const std::string& revision, const std::string& interval) {
  std::string out = query;
  ReplaceAll(out, "{{namespace}}", ns);
  ReplaceAll(out, "{{name}}", name);
  ReplaceAll(out, "{{revision}}", revision);
  ReplaceAll(out, "{{interval}}", interval);
  return out;
}

std::string RequestsQuery(const std::string& ns, const std::string& revision,
                          const std::string& interval) {
  return "sum(increase(" + std::string(api::kRouterRequestsTotal) + Selector(ns, revision) + "[" + interval +
         "]))";
}

std::string ErrorsQuery(const std::string& ns, const std::string& revision,
                        const std::string& interval) {
  return "sum(increase(" + std::string(api::kRouterRequestsTotal) +
         Selector(ns, revision,
                  "," + std::string(api::kCodeLabel) + "=~\"" + api::kCode5xx + "|" +
                      api::kCodeError + "\"") +
         "[" + interval + "]))";
}

std::string LatencyP99Query(const std::string& ns, const std::string& revision,
                            const std::string& interval) {
  return "histogram_quantile(0.99, sum by (le) (increase(" +
         std::string(api::kRouterRequestDurationBucket) +
         Selector(ns, revision) + "[" + interval + "])))";
}

std::string GuardQuery(const std::string& ns, const std::string& revision) {
  return "max(" + std::string(api::kRouterGuardTripped) + Selector(ns, revision) + ")";
}

Result<std::optional<double>> ParseInstantResponse(int http_status, const std::string& body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Unavailable("Prometheus answered HTTP " + std::to_string(http_status) +
                       " with a body that is not JSON");
  }
  if (doc.value("status", "") != "success") {
    return Unavailable("Prometheus: " + doc.value("errorType", std::string("error")) + ": " +
                       doc.value("error", std::string("(no message)")) + " (HTTP " +
                       std::to_string(http_status) + ")");
  }
  const json& data = doc.value("data", json::object());
  const std::string type = data.value("resultType", "");
  const json& result = data.value("result", json());
  const json* value = nullptr;
  if (type == "vector") {
    if (!result.is_array()) return Unavailable("Prometheus: vector result is not an array");
    if (result.empty()) return std::optional<double>();
    if (result.size() > 1) {
      return InvalidArgument("the query returned " + std::to_string(result.size()) +
                             " series; it must return one (aggregate with sum, max, ...)");
    }
    value = result[0].contains("value") ? &result[0]["value"] : nullptr;
  } else if (type == "scalar") {
    value = &result;
  } else {
    return InvalidArgument("the query returned a " + type + "; it must return a vector or scalar");
  }
  if (value == nullptr || !value->is_array() || value->size() != 2 || !(*value)[1].is_string()) {
    return Unavailable("Prometheus: malformed sample in the answer");
  }
  const std::string text = (*value)[1].get<std::string>();
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) {
    return Unavailable("Prometheus: \"" + text + "\" is not a number");
  }
  if (std::isnan(v)) return std::optional<double>();
  return std::optional<double>(v);
}

PrometheusMetricSource::PrometheusMetricSource(HttpFetcher& fetcher,
                                               PrometheusSourceOptions options)
    : fetcher_(fetcher), options_(std::move(options)) {}

Result<std::optional<double>> PrometheusMetricSource::Instant(const std::string& promql,
                                                              WallTime at) {
  std::string base = options_.address;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.empty()) return FailedPrecondition("no Prometheus address");
  const double seconds = std::chrono::duration<double>(at.time_since_epoch()).count();
  char time[40];
  std::snprintf(time, sizeof(time), "%.3f", seconds);
  const std::string url = base + "/api/v1/query?query=" + UrlEncode(promql) + "&time=" + time;
  ASSIGN_OR_RETURN(FetchResponse response, fetcher_.Get(url, options_.timeout));
  auto value = ParseInstantResponse(response.status, response.body);
  if (!value.ok()) return value.status().Annotate(promql);
  return value;
}

Result<TrafficSample> PrometheusMetricSource::Traffic(const std::string& revision,
                                                      const Window& window) {
  const std::string interval = PromDuration(window);
  TrafficSample s;
  // Asked first: a tripped guard leaves the canary with no requests to count.
  ASSIGN_OR_RETURN(std::optional<double> guard,
                   Instant(GuardQuery(options_.ns, revision), window.end));
  s.guard_tripped = guard && *guard > 0;
  ASSIGN_OR_RETURN(std::optional<double> requests,
                   Instant(RequestsQuery(options_.ns, revision, interval), window.end));
  s.requests = requests ? std::llround(*requests) : 0;
  if (s.requests == 0) return s;
  ASSIGN_OR_RETURN(std::optional<double> errors,
                   Instant(ErrorsQuery(options_.ns, revision, interval), window.end));
  s.errors = errors ? std::llround(*errors) : 0;
  ASSIGN_OR_RETURN(s.latency_p99_seconds,
                   Instant(LatencyP99Query(options_.ns, revision, interval), window.end));
  return s;
}

Result<std::optional<double>> PrometheusMetricSource::Query(const std::string& query,
                                                            const std::string& revision,
                                                            const Window& window) {
  return Instant(ExpandQuery(query, options_.ns, options_.name, revision, PromDuration(window)),
                 window.end);
}

}  // namespace sluice::controllers
