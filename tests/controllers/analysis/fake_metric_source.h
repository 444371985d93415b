#pragma once

// A MetricSource driven by a model of each revision's traffic instead of a router or Prometheus:
// a request rate, an error fraction that can change at a fault time, and a p99 latency. Counts
// over a window are exact integrals of that model, so tests know what a check must see.

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "controllers/analysis/metric_source.h"

namespace sluice::controllers::testing {

class FakeMetricSource final : public MetricSource {
 public:
  struct Model {
    double requests_per_second = 0;
    double error_fraction = 0;
    double latency_p99_seconds = 0.02;
    // From `fault_at` on, errors and latency are these instead.
    std::optional<WallTime> fault_at;
    double fault_error_fraction = 0;
    double fault_latency_p99_seconds = 0.02;
    std::optional<Status> traffic_error;  // Traffic() fails with this
  };

  Model& model(const std::string& revision) { return models_[revision]; }
  void SetQuery(const std::string& query, Result<std::optional<double>> value) {
    queries_.insert_or_assign(query, std::move(value));
  }
  int traffic_calls() const { return traffic_calls_; }

  Result<TrafficSample> Traffic(const std::string& revision, const Window& window) override {
    ++traffic_calls_;
    auto it = models_.find(revision);
    if (it == models_.end()) return TrafficSample{};
    const Model& m = it->second;
    if (m.traffic_error) return *m.traffic_error;
    const double total = Seconds(window.start, window.end);
    double faulty = 0;
    if (m.fault_at && *m.fault_at < window.end) {
      faulty = Seconds(std::max(*m.fault_at, window.start), window.end);
    }
    const double healthy = total - faulty;
    TrafficSample s;
    s.requests = static_cast<int64_t>(std::llround(m.requests_per_second * total));
    s.errors =
        static_cast<int64_t>(std::llround(m.requests_per_second * healthy * m.error_fraction +
                                          m.requests_per_second * faulty * m.fault_error_fraction));
    if (s.requests > 0) {
      s.latency_p99_seconds = faulty > 0 ? m.fault_latency_p99_seconds : m.latency_p99_seconds;
    }
    return s;
  }

  Result<std::optional<double>> Query(const std::string& query, const std::string& revision,
                                      const Window& window) override {
    auto it = queries_.find(query);
    if (it == queries_.end()) return std::optional<double>();
    return it->second;
  }

 private:
  static double Seconds(WallTime a, WallTime b) {
    return std::chrono::duration<double>(b - a).count();
  }

  std::map<std::string, Model> models_;
  std::map<std::string, Result<std::optional<double>>> queries_;
  int traffic_calls_ = 0;
};

}  // namespace sluice::controllers::testing
