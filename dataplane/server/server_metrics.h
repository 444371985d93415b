#pragma once

// Every Prometheus metric of sluice-server, declared in one place. Names follow
// sluice_server_<what>_<unit>; all carry {model, version} (requests also {code}). Requests for a
// model that does not exist are counted under model="unknown" so clients cannot grow the label
// set.
//
// Thread-safe: the metric objects are prometheus-cpp's (atomic or internally locked); ForModel
// creates a model's series once and then returns the same object.

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "lib/base/status.h"

namespace sluice::dataplane {

class ServerMetrics {
 public:
  // The series of one (model, version).
  class Model {
   public:
    // sluice_server_requests_total{code}
    prometheus::Counter& Requests(int http_code);

    prometheus::Histogram* request_duration;  // sluice_server_request_duration_seconds
    prometheus::Histogram* queue_duration;    // sluice_server_queue_duration_seconds
    prometheus::Histogram* batch_size;        // sluice_server_batch_size (rows per Predict)
    prometheus::Gauge* inflight;              // sluice_server_inflight_requests
    prometheus::Counter* cache_hits;          // sluice_server_cache_hits_total
    prometheus::Counter* cache_misses;        // sluice_server_cache_misses_total
    prometheus::Gauge* loaded;                // sluice_server_model_loaded (0/1)
    prometheus::Gauge* ready;                 // sluice_server_model_ready (0/1)
    prometheus::Gauge* load_seconds;          // sluice_server_model_load_duration_seconds

   private:
    friend class ServerMetrics;
    ServerMetrics* owner_ = nullptr;
    std::string name_;
    std::string version_;
    std::array<std::atomic<prometheus::Counter*>, 500> by_code_{};  // index: code - 100
  };

  // The online-feature series of one (model, version) and its views.
  struct Features {
    // sluice_server_feature_fetch_duration_seconds: the whole fetch of one request.
    prometheus::Histogram* fetch_duration;
    struct View {
      // sluice_server_feature_values_total{view, result}: one per value the model needed from
      // the view, by FeatureResult (indexed by it; labels hit|missing|stale|malformed|default).
      std::array<prometheus::Counter*, 5> values;
      // sluice_server_feature_redis_errors_total{view, kind="error"|"timeout"}: failed
      // exchanges with the view's Redis (each leaves the request's values at their defaults).
      prometheus::Counter* redis_errors;
      prometheus::Counter* redis_timeouts;
    };
    std::vector<View> views;  // in config order
  };
  // Creates the feature series of (name, version) for `views`. Once per model.
  std::unique_ptr<Features> ForFeatures(const std::string& name, const std::string& version,
                                        const std::vector<std::string>& views);

  static Result<std::unique_ptr<ServerMetrics>> Create(
      std::shared_ptr<prometheus::Registry> registry);

  // The series of (name, version); created on first use.
  Model& ForModel(const std::string& name, const std::string& version);
  // Where requests for a model that does not exist are counted.
  Model& Unknown() { return ForModel("unknown", ""); }

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  explicit ServerMetrics(std::shared_ptr<prometheus::Registry> registry);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Family<prometheus::Histogram>* queue_duration_;
  prometheus::Family<prometheus::Histogram>* batch_size_;
  prometheus::Family<prometheus::Gauge>* inflight_;
  prometheus::Family<prometheus::Counter>* cache_hits_;
  prometheus::Family<prometheus::Counter>* cache_misses_;
  prometheus::Family<prometheus::Gauge>* loaded_;
  prometheus::Family<prometheus::Gauge>* ready_;
  prometheus::Family<prometheus::Gauge>* load_seconds_;
  prometheus::Family<prometheus::Histogram>* feature_fetch_duration_;
  prometheus::Family<prometheus::Counter>* feature_values_;
  prometheus::Family<prometheus::Counter>* feature_redis_errors_;

  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Model>> models_;  // guarded by mu_
};

}  // namespace sluice::dataplane
