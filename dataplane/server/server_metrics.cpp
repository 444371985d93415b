#include "dataplane/server/server_metrics.h"
#include "lib/api/metric_names.h"

#include <exception>

namespace sluice::dataplane {

namespace {

// 50 us to 10 s: the server answers in microseconds when warm, the tail matters most.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
  return b;
}

// 50 us to 100 ms, fine where the default 2 ms budget lies.
const prometheus::Histogram::BucketBoundaries& FeatureBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015,
      0.002,   0.0025, 0.003,   0.005,  0.01,   0.025,  0.05,   0.1};
  return b;
}

const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const prometheus::Histogram::BucketBoundaries b = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  return b;
}

}  // namespace

Result<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    std::shared_ptr<prometheus::Registry> registry) {
  if (!registry) return InvalidArgument("server metrics: a registry is required");
  try {
    return std::unique_ptr<ServerMetrics>(new ServerMetrics(std::move(registry)));
  } catch (const std::exception& e) {  // prometheus-cpp reports name clashes by throwing
    return Internal(std::string("server metrics: ") + e.what());
  }
}

ServerMetrics::ServerMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)) {
  auto& r = *registry_;
  requests_ = &prometheus::BuildCounter()
                   .Name("sluice_server_requests_total")
                   .Help("Inference requests answered, by model, version and HTTP status code.")
                   .Register(r);
  request_duration_ =
      &prometheus::BuildHistogram()
           .Name("sluice_server_request_duration_seconds")
           .Help("Time from a complete inference request to its answer being handed to the "
                 "transport.")
           .Register(r);
  queue_duration_ = &prometheus::BuildHistogram()
                         .Name("sluice_server_queue_duration_seconds")
                         .Help("Time an inference request waited in the batch queue.")
                         .Register(r);
  batch_size_ = &prometheus::BuildHistogram()
                     .Name("sluice_server_batch_size")
                     .Help("Rows per model Predict call.")
                     .Register(r);
  inflight_ = &prometheus::BuildGauge()
                   .Name(api::kServerInflightRequests)
                   .Help("Inference requests being processed now (the autoscaler's signal).")
                   .Register(r);
  cache_hits_ = &prometheus::BuildCounter()
                     .Name("sluice_server_cache_hits_total")
                     .Help("Inference requests answered from the response cache.")
                     .Register(r);
  cache_misses_ = &prometheus::BuildCounter()
                       .Name("sluice_server_cache_misses_total")
                       .Help("Inference requests not found in the response cache.")
                       .Register(r);
  loaded_ = &prometheus::BuildGauge()
                 .Name("sluice_server_model_loaded")
                 .Help("1 when the model is loaded.")
                 .Register(r);
  ready_ = &prometheus::BuildGauge()
                .Name("sluice_server_model_ready")
                .Help("1 when the model is loaded, warmed up and serving.")
                .Register(r);
  load_seconds_ = &prometheus::BuildGauge()
                       .Name("sluice_server_model_load_duration_seconds")
                       .Help("Time the model took to fetch, load and warm up.")
                       .Register(r);
  feature_fetch_duration_ =
      &prometheus::BuildHistogram()
           .Name("sluice_server_feature_fetch_duration_seconds")
           .Help("Time the online feature fetch of one request took (all views, all rows), "
                 "bounded by --feature-budget.")
           .Register(r);
  feature_values_ =
      &prometheus::BuildCounter()
           .Name("sluice_server_feature_values_total")
           .Help("Online feature values the model needed, by view and result: hit, missing, "
                 "stale (older than the view's ttl), malformed, default (not read: Redis failed "
                 "or the budget ran out). All but hit are served the declared default or NaN.")
           .Register(r);
  feature_redis_errors_ =
      &prometheus::BuildCounter()
           .Name("sluice_server_feature_redis_errors_total")
           .Help("Failed exchanges with a feature view's Redis, by kind (error, timeout).")
           .Register(r);
}

std::unique_ptr<ServerMetrics::Features> ServerMetrics::ForFeatures(
    const std::string& name, const std::string& version, const std::vector<std::string>& views) {
  auto f = std::make_unique<Features>();
  f->fetch_duration =
      &feature_fetch_duration_->Add({{"model", name}, {"version", version}}, FeatureBuckets());
  static constexpr const char* kResults[] = {"hit", "missing", "stale", "malformed", "default"};
  for (const std::string& view : views) {
    Features::View v;
    for (size_t i = 0; i < v.values.size(); ++i) {
      v.values[i] = &feature_values_->Add(
          {{"model", name}, {"version", version}, {"view", view}, {"result", kResults[i]}});
    }
    v.redis_errors = &feature_redis_errors_->Add(
        {{"model", name}, {"version", version}, {"view", view}, {"kind", "error"}});
    v.redis_timeouts = &feature_redis_errors_->Add(
        {{"model", name}, {"version", version}, {"view", view}, {"kind", "timeout"}});
    f->views.push_back(v);
  }
  return f;
}

ServerMetrics::Model& ServerMetrics::ForModel(const std::string& name,
                                              const std::string& version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = models_[{name, version}];
  if (slot) return *slot;
  auto m = std::make_unique<Model>();
  const prometheus::Labels labels{{"model", name}, {"version", version}};
  m->owner_ = this;
  m->name_ = name;
  m->version_ = version;
  m->request_duration = &request_duration_->Add(labels, LatencyBuckets());
  m->queue_duration = &queue_duration_->Add(labels, LatencyBuckets());
  m->batch_size = &batch_size_->Add(labels, BatchBuckets());
  m->inflight = &inflight_->Add(labels);
  m->cache_hits = &cache_hits_->Add(labels);
  m->cache_misses = &cache_misses_->Add(labels);
  m->loaded = &loaded_->Add(labels);
  m->ready = &ready_->Add(labels);
  m->load_seconds = &load_seconds_->Add(labels);
  slot = std::move(m);
  return *slot;
}

prometheus::Counter& ServerMetrics::Model::Requests(int http_code) {
  if (http_code < 100 || http_code > 599) http_code = 500;
  auto& cached = by_code_[static_cast<size_t>(http_code - 100)];
  if (prometheus::Counter* c = cached.load(std::memory_order_acquire)) return *c;
  // Family::Add returns the existing series for the same labels, so a race only repeats a lookup.
  prometheus::Counter& c = owner_->requests_->Add(
      {{"model", name_}, {"version", version_}, {"code", std::to_string(http_code)}});
  cached.store(&c, std::memory_order_release);
  return c;
}

}  // namespace sluice::dataplane
