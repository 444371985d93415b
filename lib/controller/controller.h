#pragma once

// The generic controller (after controller-runtime): event handlers on the shared cache turn
// changes of the primary resource, of the objects it owns and of anything else it watches into
// keys on a rate-limited, de-duplicating work queue; N workers hand each key to the Reconciler.
//
// The rule for what follows a reconcile lives here and nowhere else:
//   Ok(WaitForChange)   forget the key's backoff; nothing until an event enqueues it again
//   Ok(RequeueAfter d)  forget the key's backoff; enqueue again after d
//   error               enqueue again with the queue's per-key exponential backoff
//                       (5 ms doubling to 1000 s) under an overall token bucket
//   terminal error      forget the key's backoff; not retried until an event enqueues it
// An exception escaping a reconciler is caught and treated as an error, so one bad object
// cannot take the operator down.
//
// Contract: one key is never reconciled by two workers at once (the queue's rule); different
// keys run concurrently. Start() once; Stop() stops taking work, lets in-flight reconciles
// finish, joins the workers and is idempotent. Events arriving before Start() are queued and
// handled once the workers run (a standby replica keeps its queue warm).

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/base/clock.h"
#include "lib/controller/cache.h"
#include "lib/controller/metrics.h"
#include "lib/kube/client.h"
#include "lib/kube/rate_limiter.h"
#include "lib/kube/workqueue.h"
#include "lib/controller/reconciler.h"

namespace sluice::controllers {

// Maps an object of a watched resource to the keys of primary objects to reconcile.
using MapFunc = std::function<std::vector<ObjectKey>(const nlohmann::json& object)>;

struct WatchSpec {
  kube::GroupVersionResource gvr;
  MapFunc map;
};

struct ControllerOptions {
  std::string name;                 // "modeldeployment": logs, metrics, queue name
  std::string log_key = "obj";      // the key in log lines: "md" gives md=ns/name
  kube::GroupVersionResource primary;
  std::string primary_kind;         // "ModelDeployment": matched against ownerReferences
  // Resources whose controller ownerReference names a primary object: a change enqueues it.
  std::vector<kube::GroupVersionResource> owns;
  std::vector<WatchSpec> watches;
  int workers = 2;
  Clock* clock = nullptr;               // nullptr: Clock::Real(); must outlive the controller
  ControllerMetrics* metrics = nullptr;  // optional; must outlive the controller
  // nullptr: kube::DefaultControllerRateLimiter(clock).
  std::unique_ptr<kube::RateLimiter> rate_limiter;
};

class Controller {
 public:
  // Registers the event handlers on `cache`; every resource in options (primary, owns, watches)
  // must already be registered there. `reconciler` must outlive the controller.
  static Result<std::unique_ptr<Controller>> Create(InformerCache& cache, Reconciler& reconciler,
                                                    ControllerOptions options);
  ~Controller();

  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  void Start();
  void Stop();

  // Enqueues a key by hand (tests, and mapping done outside the handlers).
  void Enqueue(const ObjectKey& key);

  const std::string& name() const { return options_.name; }
  kube::WorkQueue& queue() { return *queue_; }

  // The keys of primary objects that `object` (of an owned resource) belongs to: its controller
  // ownerReference when it names a primary kind of the primary group. Exposed for tests.
  static std::vector<ObjectKey> OwnerKeys(const nlohmann::json& object,
                                          const std::string& primary_group,
                                          const std::string& primary_kind);

 private:
  Controller(Reconciler& reconciler, ControllerOptions options);
  void Worker();
  void Process(const std::string& key);

  Reconciler& reconciler_;
  ControllerOptions options_;
  Clock& clock_;
  std::shared_ptr<kube::WorkQueue> queue_;  // shared with the cache's event handlers

  std::mutex mu_;
  bool started_ = false;              // guarded by mu_
  bool stopped_ = false;              // guarded by mu_
  std::vector<std::thread> workers_;  // guarded by mu_
};

}  // namespace sluice::controllers
