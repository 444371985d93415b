#pragma once

// The ModelDeployment reconciler. For one key it reads the ModelDeployment and the Deployments
// it owns from the cache, asks the pure rollout engine what the world should look like (which
// revisions, how many replicas each, what traffic weights, which phase), and makes it so:
//   1. server-side apply (field manager "sluice-operator") of the router's objects and of every
//      revision Deployment/Service that grows or stays the same;
//   2. the status through the status subresource, conditioned on the resourceVersion read, so a
//      status computed from a stale cache is refused (kConflict) and recomputed;
//   3. only then scale-downs and deletion of revisions the engine no longer lists, so traffic has
//      left a revision before its pods go;
//   4. Events (the engine's, and one per phase change) and removal of consumed one-shot control
//      annotations, after the status that records their effect is written.
// Objects already equal to their intent in the cache are not written, so a reconcile of an
// object at rest makes no API call. Deletion is left to the garbage collector (ownerReferences);
// there is no finalizer.
//
// Contract: thread-safe across keys (the controller never runs one key twice at once); every
// error is returned for the controller to retry with backoff, except a spec the operator cannot
// realise, which is written to status (Degraded) and returned as a terminal error.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "controllers/analysis/metric_source.h"
#include "controllers/autoscaler/autoscaler.h"
#include "controllers/autoscaler/concurrency_source.h"
#include "controllers/modeldeployment/model_resolution.h"
#include "controllers/modeldeployment/resources.h"
#include "controllers/registry/model_registry.h"
#include "controllers/rollout/policy.h"
#include "lib/api/model_deployment.h"
#include "lib/base/clock.h"
#include "lib/controller/events.h"
#include "lib/controller/object_io.h"
#include "lib/controller/reconciler.h"

namespace sluice::controllers {

struct ModelDeploymentReconcilerOptions {
  WorkloadOptions workload;
  // The analysis provider for a ModelDeployment, or nullptr when none is configured; then every
  // analysis window has no data and spec.rollout.canary.analysis.noDataPolicy decides (never a
  // silent pass). Called on the reconciling thread.
  std::function<std::shared_ptr<MetricSource>(const ModelDeployment&)> metric_source;
  std::shared_ptr<ConcurrencySource> concurrency;  // nullptr: replicas kept within [min, max]
  // How often a ModelDeployment autoscaled in Concurrency mode is reconciled again with nothing
  // else changed, so new concurrency samples turn into replicas; zero: only on changes.
  std::chrono::milliseconds autoscale_period{0};
  Clock* clock = nullptr;  // nullptr: Clock::Real()
  // models:/ URIs: the registry client (nullptr: such ModelDeployments are Degraded with
  // RegistryNotConfigured), the tracking server when the spec names none, and the reader of
  // spec.model.credentials' Secret for the registry token.
  std::shared_ptr<ModelRegistry> registry;
  std::string default_tracking_uri;
  SecretReader* secrets = nullptr;
};

class ModelDeploymentReconciler final : public Reconciler {
 public:
  // `reader`, `writer` and `events` must outlive the reconciler.
  ModelDeploymentReconciler(const ObjectReader& reader, ObjectWriter& writer, EventRecorder& events,
                            ModelDeploymentReconcilerOptions options);

  Result<Action> Reconcile(const ObjectKey& key) override;

 private:
  struct Owned;
  struct Observation;
  struct Intent;
  struct ApplyItem {
    const kube::GroupVersionResource* gvr;
    nlohmann::json intent;
    ObjectPtr live;
  };
  // One reconcile of a ModelDeployment that exists, in three steps: Observe reads the cache
  // (and the analysis provider), DecideWrites asks the rollout engine and turns its decision
  // into objects, Apply writes them in the order the file comment gives.
  Result<Action> ReconcileObject(const ObjectKey& key, const nlohmann::json& object);
  Observation Observe(const ObjectKey& key, const nlohmann::json& object, ModelDeployment md,
                      RolloutPolicy policy);
  Result<Intent> DecideWrites(const ObjectKey& key, const Observation& seen);
  // Consumes intent's object lists.
  Result<Action> Apply(const ObjectKey& key, const nlohmann::json& object, const Observation& seen,
                       Intent& intent);
  // Applies `intent` unless the cached `live` object already matches it. A first apply (no
  // cached object) does not force, so an object of the same name that someone else owns is
  // reported (kConflict) instead of being taken over.
  Status ApplyIfChanged(const kube::GroupVersionResource& gvr, const nlohmann::json& intent,
                        const ObjectPtr& live, const std::string& owner_uid);
  // ApplyIfChanged for every item, the ones that need a write concurrently; the first error.
  Status ApplyAll(std::vector<ApplyItem> items, const std::string& owner_uid);
  // Degraded (and Progressing False) with `reason`; the phase turns Degraded for an invalid spec,
  // and for a bad FeatureView reference only when no stable revision serves. An Event when the
  // condition changes.
  Status WriteInvalidSpecStatus(const nlohmann::json& object, const ModelDeployment& md,
                                const Status& why, const std::string& reason);
  // status.model, the registry's Events and the refusal of a rolled-back registry version.
  void RecordModelSource(const Observation& seen, Intent& out) const;
  // Degraded, naming the cause, while the pods of the revision being rolled out do not run.
  void ReportFailingPods(const ObjectKey& key, const Observation& seen, Intent& out) const;
  std::map<std::string, int32_t> Autoscale(const ObjectKey& key, const ModelDeployment& md,
                                           const Owned& owned);

  const ObjectReader& reader_;
  ObjectWriter& writer_;
  EventRecorder& events_;
  ModelDeploymentReconcilerOptions options_;
  Clock& clock_;

  std::mutex mu_;
  // Autoscaler state per "ns/name" and revision; rebuilt from fresh samples after a restart.
  std::map<std::string, std::map<std::string, AutoscalerState>>
      autoscaler_state_;  // guarded by mu_
  // When the registry was last asked for a ModelDeployment's models:/ URI, and how that went,
  // per "ns/name".
  struct RegistryPoll {
    WallTime time;
    std::string error_reason;
    Status error;
  };
  std::map<std::string, RegistryPoll> registry_polled_;  // guarded by mu_
};

}  // namespace sluice::controllers
