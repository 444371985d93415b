#pragma once

// Metrics of the controllers, declared in one place. The interface is what the controller loop
// calls; PrometheusControllerMetrics is the production implementation on a prometheus-cpp
// registry that the operator serves on /metrics. Every hook is cheap and thread-safe.
//
// Names (sluice_operator_*):
//   reconcile_total{controller,result}          result: success | requeue | error | terminal_error
//   reconcile_duration_seconds{controller}      histogram
//   reconcile_errors_total{controller}          errors, terminal ones included
//   workqueue_depth{name}                       keys ready to be handed out
//   workqueue_adds_total{name}
//   workqueue_queue_duration_seconds{name}      histogram: ready -> taken by a worker
//   workqueue_work_duration_seconds{name}       histogram: taken -> done
//   workqueue_retries_total{name}
//   watch_restarts_total{resource}              relists and re-watches after an error
//   leader                                      1 while this replica leads
//   informers_synced                            1 once every informer has listed

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "lib/kube/workqueue.h"

namespace prometheus {
class Registry;
}

namespace sluice::controllers {

enum class ReconcileResult { kSuccess, kRequeue, kError, kTerminalError };
std::string_view ReconcileResultName(ReconcileResult r);

class ControllerMetrics {
 public:
  virtual ~ControllerMetrics() = default;
  virtual void ObserveReconcile(std::string_view controller, ReconcileResult result,
                                std::chrono::nanoseconds duration) {}
  virtual void IncWatchRestarts(std::string_view resource) {}
  virtual void SetLeader(bool leading) {}
  virtual void SetInformersSynced(bool synced) {}
  // Hooks for the work queue named `queue`; nullptr when not measured.
  virtual std::shared_ptr<kube::WorkQueueMetrics> QueueMetrics(std::string_view queue) {
    return nullptr;
  }
};

class PrometheusControllerMetrics final : public ControllerMetrics {
 public:
  // Registers the families on `registry`, which must outlive this object.
  explicit PrometheusControllerMetrics(prometheus::Registry& registry);
  ~PrometheusControllerMetrics() override;

  void ObserveReconcile(std::string_view controller, ReconcileResult result,
                        std::chrono::nanoseconds duration) override;
  void IncWatchRestarts(std::string_view resource) override;
  void SetLeader(bool leading) override;
  void SetInformersSynced(bool synced) override;
  std::shared_ptr<kube::WorkQueueMetrics> QueueMetrics(std::string_view queue) override;

 private:
  struct Families;
  std::unique_ptr<Families> f_;
};

}  // namespace sluice::controllers
