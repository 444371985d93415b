#pragma once

// The transport-independent inference core: the model registry (name, version -> runtime,
// batcher, cache, ready state) and Infer (InferRequest -> InferResponse). The REST frontend and a
// gRPC frontend are thin adapters over it.
//
// Lifecycle: AddModel for every model before any frontend serves (the registry is then fixed and
// read without locks); SetRuntime when a model has loaded (frontends may already be serving:
// liveness and metadata answer while a model loads); WarmUpAndMarkReady; SetDraining when the
// process is asked to stop; Stop after the frontends have drained.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/registry.h>

#include "lib/base/clock.h"
#include "lib/base/status.h"
#include "dataplane/runtime/runtime.h"
#include "dataplane/server/batcher.h"
#include "dataplane/server/fault_injection.h"
#include "dataplane/server/feature_enricher.h"
#include "dataplane/server/inference.h"
#include "dataplane/server/response_cache.h"
#include "dataplane/server/server_metrics.h"

namespace sluice::dataplane {

struct ModelOptions {
  std::string name;
  std::string version = "1";
  // Off: Predict runs on the caller's thread, one request at a time per call.
  bool batching = true;
  BatcherOptions batcher;
  bool cache = false;
  ResponseCacheOptions cache_options;
  // Online features (feature_enricher.h): empty, requests carry the model's input as it is.
  // With views, requests carry entity keys and features by name, and rows are assembled before
  // the cache and the batcher; the response cache then keys on the assembled rows.
  std::vector<api::FeatureViewConfig> feature_views;
  std::chrono::microseconds feature_budget{2000};
};

class InferenceService;

// One (name, version). Owned by the service; its address is stable for the service's life.
class Model {
 public:
  const std::string& name() const { return options_.name; }
  const std::string& version() const { return options_.version; }
  bool loaded() const { return state_.load(std::memory_order_acquire) >= kLoaded; }
  bool ready() const { return state_.load(std::memory_order_acquire) == kReady; }
  // Null until loaded.
  const ModelMetadata* metadata() const { return loaded() ? &runtime_->metadata() : nullptr; }
  ServerMetrics::Model& metrics() const { return *metrics_; }

 private:
  friend class InferenceService;
  enum State : int { kDeclared = 0, kLoaded = 1, kReady = 2 };

  ModelOptions options_;
  ServerMetrics::Model* metrics_ = nullptr;
  // Written once by SetRuntime before state_ becomes kLoaded (release); read after an acquire.
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<ResponseCache> cache_;
  std::unique_ptr<ServerMetrics::Features> feature_metrics_;
  std::unique_ptr<FeatureEnricher> enricher_;  // null without feature views
  std::atomic<int> state_{kDeclared};
};

// Called exactly once with the response or the error.
using InferCallback = std::function<void(Result<InferResponse>)>;

struct InferenceServiceOptions {
  std::string server_name = "sluice-server";
  std::string server_version = "0.1.0";  // sluice-server sets the project version
  // Applied to every Infer call, whichever frontend it comes from; off by default.
  FaultOptions faults;
};

class InferenceService {
 public:
  static Result<std::unique_ptr<InferenceService>> Create(
      const InferenceServiceOptions& options, std::shared_ptr<prometheus::Registry> registry,
      Clock& clock);
  ~InferenceService();  // Stop()

  // Declares a model. Only before frontends serve. AlreadyExists for a duplicate (name, version).
  Result<Model*> AddModel(const ModelOptions& options);

  // Attaches the loaded runtime and starts the model's batcher, cache and feature enrichment.
  // Once per model; FailedPrecondition when called again; InvalidArgument when the model's
  // feature views do not fit the runtime (FeaturePlan::Create).
  Status SetRuntime(Model& model, std::unique_ptr<Runtime> runtime);
  // Runs the runtime's warm-up and one request through the batcher, then reports ready.
  Status WarmUpAndMarkReady(Model& model);
  // Records how long loading took (metrics).
  void RecordLoadTime(Model& model, std::chrono::duration<double> seconds);

  // The model by name; an empty version picks the last version added for the name.
  // NotFound names what is missing.
  Result<Model*> FindModel(std::string_view name, std::string_view version) const;
  std::vector<std::string> Versions(std::string_view name) const;

  // Live while the process runs; ready when every model is ready and the service is not draining.
  bool ready() const;
  void SetDraining() { draining_.store(true, std::memory_order_release); }
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  // Runs one inference on `model`. `done` runs exactly once: on this thread for errors found
  // here, cache hits and unbatched models; otherwise on the model's batcher thread (or the fault
  // injector's delay thread when a fault delay is set). Tensors of the request may view memory
  // owned by the caller, which must stay valid until `done` runs.
  // With feature views the rows are assembled here first, on this thread (bounded by the
  // model's feature budget).
  // Errors: InvalidArgument (inputs do not fit the model), FailedPrecondition (not ready),
  // ResourceExhausted (queue full), Timeout (queued too long), Unavailable (stopped),
  // Internal("injected fault") (fault injection), and what the runtime reports.
  void Infer(Model& model, InferRequest&& request, InferCallback done);

  // Finishes queued work and stops every batcher. Later Infer calls fail with Unavailable.
  void Stop();

  const InferenceServiceOptions& options() const { return options_; }
  ServerMetrics& metrics() { return *metrics_; }
  Clock& clock() { return clock_; }

 private:
  class Pending;

  InferenceService(const InferenceServiceOptions& options, std::unique_ptr<ServerMetrics> metrics,
                   std::unique_ptr<FaultInjector> faults, Clock& clock);
  void InferNow(Model& model, InferRequest&& request, InferCallback done);

  const InferenceServiceOptions options_;
  std::unique_ptr<ServerMetrics> metrics_;
  Clock& clock_;
  std::unique_ptr<FaultInjector> faults_;  // null when fault injection is off
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  // Fixed once frontends serve (see the lifecycle above), so lookups take no lock.
  std::map<std::string, std::vector<std::unique_ptr<Model>>, std::less<>> models_;
};

// The HTTP status for a Status from Infer or the codec (400, 404, 503, 500 ...).
int HttpStatusFor(const Status& status);

}  // namespace sluice::dataplane
