#include "lib/controller/metrics.h"

#include <map>
#include <mutex>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace sluice::controllers {

std::string_view ReconcileResultName(ReconcileResult r) {
  switch (r) {
    case ReconcileResult::kSuccess: return "success";
    case ReconcileResult::kRequeue: return "requeue";
    case ReconcileResult::kError: return "error";
    case ReconcileResult::kTerminalError: return "terminal_error";
  }
  return "unknown";
}

namespace {

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// Finer from 100 ms to 500 ms, where a reconcile that writes to a busy API server lands: a
// p99 read against a 200 ms objective needs a boundary there, not a line drawn across 100-250 ms.
const prometheus::Histogram::BucketBoundaries& ReconcileBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2,
      0.25,   0.3,   0.4,    0.5,   1,    2.5,   5,    10,  30};
  return kBuckets;
}

const prometheus::Histogram::BucketBoundaries& QueueBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300};
  return kBuckets;
}

}  // namespace

struct PrometheusControllerMetrics::Families {
  explicit Families(prometheus::Registry& r)
      : reconcile_total(prometheus::BuildCounter()
                            .Name("sluice_operator_reconcile_total")
                            .Help("Reconciles by controller and result.")
                            .Register(r)),
        reconcile_duration(prometheus::BuildHistogram()
                               .Name("sluice_operator_reconcile_duration_seconds")
                               .Help("Time spent in one reconcile.")
                               .Register(r)),
        reconcile_errors(prometheus::BuildCounter()
                             .Name("sluice_operator_reconcile_errors_total")
                             .Help("Reconciles that returned an error, terminal ones included.")
                             .Register(r)),
        queue_depth(prometheus::BuildGauge()
                        .Name("sluice_operator_workqueue_depth")
                        .Help("Keys ready to be handed to a worker.")
                        .Register(r)),
        queue_adds(prometheus::BuildCounter()
                       .Name("sluice_operator_workqueue_adds_total")
                       .Help("Keys accepted by the work queue.")
                       .Register(r)),
        queue_latency(prometheus::BuildHistogram()
                          .Name("sluice_operator_workqueue_queue_duration_seconds")
                          .Help("Time a ready key waited for a worker.")
                          .Register(r)),
        queue_work(prometheus::BuildHistogram()
                       .Name("sluice_operator_workqueue_work_duration_seconds")
                       .Help("Time a worker held a key.")
                       .Register(r)),
        queue_retries(prometheus::BuildCounter()
                          .Name("sluice_operator_workqueue_retries_total")
                          .Help("Keys re-added with rate-limited backoff.")
                          .Register(r)),
        watch_restarts(prometheus::BuildCounter()
                           .Name("sluice_operator_watch_restarts_total")
                           .Help("Watches restarted after an error or an expired resourceVersion.")
                           .Register(r)),
        leader(prometheus::BuildGauge()
                   .Name("sluice_operator_leader")
                   .Help("1 while this replica holds the leader Lease.")
                   .Register(r)
                   .Add({})),
        synced(prometheus::BuildGauge()
                   .Name("sluice_operator_informers_synced")
                   .Help("1 once every informer has completed its first list.")
                   .Register(r)
                   .Add({})) {}

  prometheus::Family<prometheus::Counter>& reconcile_total;
  prometheus::Family<prometheus::Histogram>& reconcile_duration;
  prometheus::Family<prometheus::Counter>& reconcile_errors;
  prometheus::Family<prometheus::Gauge>& queue_depth;
  prometheus::Family<prometheus::Counter>& queue_adds;
  prometheus::Family<prometheus::Histogram>& queue_latency;
  prometheus::Family<prometheus::Histogram>& queue_work;
  prometheus::Family<prometheus::Counter>& queue_retries;
  prometheus::Family<prometheus::Counter>& watch_restarts;
  prometheus::Gauge& leader;
  prometheus::Gauge& synced;

  // prometheus-cpp's Family::Add takes a lock and hashes labels; the hot path looks metrics up
  // here instead.
  std::mutex mu;
  std::map<std::string, prometheus::Counter*, std::less<>> by_result;     // guarded by mu
  std::map<std::string, prometheus::Histogram*, std::less<>> durations;  // guarded by mu
  std::map<std::string, prometheus::Counter*, std::less<>> errors;       // guarded by mu
  std::map<std::string, prometheus::Counter*, std::less<>> restarts;     // guarded by mu
};

namespace {

class PrometheusQueueMetrics final : public kube::WorkQueueMetrics {
 public:
  PrometheusQueueMetrics(prometheus::Gauge& depth, prometheus::Counter& adds,
                         prometheus::Histogram& latency, prometheus::Histogram& work,
                         prometheus::Counter& retries)
      : depth_(depth), adds_(adds), latency_(latency), work_(work), retries_(retries) {}

  void SetDepth(size_t depth) override { depth_.Set(static_cast<double>(depth)); }
  void IncAdds() override { adds_.Increment(); }
  void ObserveQueueLatency(std::chrono::nanoseconds latency) override {
    latency_.Observe(Seconds(latency));
  }
  void ObserveWorkDuration(std::chrono::nanoseconds duration) override {
    work_.Observe(Seconds(duration));
  }
  void IncRetries() override { retries_.Increment(); }

 private:
  prometheus::Gauge& depth_;
  prometheus::Counter& adds_;
  prometheus::Histogram& latency_;
  prometheus::Histogram& work_;
  prometheus::Counter& retries_;
};

}  // namespace

PrometheusControllerMetrics::PrometheusControllerMetrics(prometheus::Registry& registry)
    : f_(std::make_unique<Families>(registry)) {}

PrometheusControllerMetrics::~PrometheusControllerMetrics() = default;

void PrometheusControllerMetrics::ObserveReconcile(std::string_view controller,
                                                   ReconcileResult result,
                                                   std::chrono::nanoseconds duration) {
  const std::string_view result_name = ReconcileResultName(result);
  std::string key;
  key.reserve(controller.size() + result_name.size() + 1);
  key.append(controller).append("/").append(result_name);
  prometheus::Counter* counter;
  prometheus::Histogram* histogram;
  prometheus::Counter* errors = nullptr;
  {
    std::lock_guard<std::mutex> lock(f_->mu);
    auto it = f_->by_result.find(key);
    if (it == f_->by_result.end()) {
      it = f_->by_result
               .emplace(key, &f_->reconcile_total.Add({{"controller", std::string(controller)},
                                                      {"result", std::string(result_name)}}))
               .first;
    }
    counter = it->second;
    auto h = f_->durations.find(controller);
    if (h == f_->durations.end()) {
      h = f_->durations
              .emplace(std::string(controller),
                       &f_->reconcile_duration.Add({{"controller", std::string(controller)}},
                                                   ReconcileBuckets()))
              .first;
    }
    histogram = h->second;
    if (result == ReconcileResult::kError || result == ReconcileResult::kTerminalError) {
      auto e = f_->errors.find(controller);
      if (e == f_->errors.end()) {
        e = f_->errors
                .emplace(std::string(controller),
                         &f_->reconcile_errors.Add({{"controller", std::string(controller)}}))
                .first;
      }
      errors = e->second;
    }
  }
  counter->Increment();
  histogram->Observe(Seconds(duration));
  if (errors) errors->Increment();
}

void PrometheusControllerMetrics::IncWatchRestarts(std::string_view resource) {
  prometheus::Counter* counter;
  {
    std::lock_guard<std::mutex> lock(f_->mu);
    auto it = f_->restarts.find(resource);
    if (it == f_->restarts.end()) {
      it = f_->restarts
               .emplace(std::string(resource),
                        &f_->watch_restarts.Add({{"resource", std::string(resource)}}))
               .first;
    }
    counter = it->second;
  }
  counter->Increment();
}

void PrometheusControllerMetrics::SetLeader(bool leading) { f_->leader.Set(leading ? 1 : 0); }

void PrometheusControllerMetrics::SetInformersSynced(bool synced) {
  f_->synced.Set(synced ? 1 : 0);
}

std::shared_ptr<kube::WorkQueueMetrics> PrometheusControllerMetrics::QueueMetrics(
    std::string_view queue) {
  const prometheus::Labels labels = {{"name", std::string(queue)}};
  std::lock_guard<std::mutex> lock(f_->mu);
  return std::make_shared<PrometheusQueueMetrics>(
      f_->queue_depth.Add(labels), f_->queue_adds.Add(labels),
      f_->queue_latency.Add(labels, QueueBuckets()), f_->queue_work.Add(labels, QueueBuckets()),
      f_->queue_retries.Add(labels));
}

}  // namespace sluice::controllers
