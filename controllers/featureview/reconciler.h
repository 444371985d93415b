#pragma once

// The FeatureView reconciler: the checks the API server cannot make (the Redis connection Secret
// exists, holds the key and a connection string the pods can use; the cron schedule's fields are
// in range; durations and typed defaults parse exactly), materialization (the CronJob of
// spec.materialization.schedule and an immediate Job on create, on a spec change and on
// sluice.dev/materialize=now; see materialization.h) and the status that reports both:
// observedGeneration, triggeredGeneration, lastRun, lastMaterialized and the conditions Ready and
// Degraded with a reason, plus an Event per finished run.
//
// Ready is True once a run has succeeded and stays True when a later run fails, because the
// online store still holds the earlier values (served until they are older than spec.ttl); its
// message then says that the last run failed, and Degraded is True with the run's reason
// (SourceNotFound, SchemaMismatch, RedisUnavailable, ...) until a run succeeds again. A spec the
// operator cannot run (a missing Secret, an invalid schedule) makes Ready False.
//
// Contract: reads the FeatureView, its Jobs and their Pods from the cache and the Secret through
// SecretReader (Secrets are not cached: the operator would otherwise hold every Secret of every
// namespace in memory). A missing or malformed Secret is rechecked every `recheck_secret` so that
// creating it later heals the view without touching the FeatureView; no Job is started meanwhile.
// Thread-safe across keys.

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "controllers/featureview/materialization.h"
#include "lib/api/object_labels.h"
#include "lib/base/clock.h"
#include "lib/controller/events.h"
#include "lib/controller/object_io.h"
#include "lib/controller/reconciler.h"
#include "lib/controller/secret_reader.h"
#include "lib/kube/client.h"

namespace sluice::controllers {

using api::kFeatureViewsGvr;

struct FeatureViewReconcilerOptions {
  std::chrono::milliseconds recheck_secret{std::chrono::seconds(30)};
  Clock* clock = nullptr;  // nullptr: Clock::Real()
  MaterializationOptions materialization;
};

// The outcome of validating one FeatureView: OK, or a CamelCase reason and a message naming the
// field. `retry_later` marks problems outside the FeatureView itself (its Secret).
struct FeatureViewCheck {
  bool ok = true;
  std::string reason;
  std::string message;
  bool retry_later = false;
};

class FeatureViewReconciler final : public Reconciler {
 public:
  // `reader`, `secrets`, `writer` and `events` must outlive the reconciler.
  FeatureViewReconciler(const ObjectReader& reader, SecretReader& secrets, ObjectWriter& writer,
                        EventRecorder& events, FeatureViewReconcilerOptions options = {});

  Result<Action> Reconcile(const ObjectKey& key) override;

  // Every check of the spec; errors reading the Secret other than NotFound / Forbidden are
  // returned (the reconcile is retried).
  Result<FeatureViewCheck> Check(const nlohmann::json& feature_view);

 private:
  const ObjectReader& reader_;
  SecretReader& secrets_;
  ObjectWriter& writer_;
  EventRecorder& events_;
  FeatureViewReconcilerOptions options_;
  Clock& clock_;
};

}  // namespace sluice::controllers
