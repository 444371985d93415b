#include "lib/controller/controller.h"

#include <exception>

#include <spdlog/spdlog.h>

namespace sluice::controllers {

namespace {

std::string GroupOf(const std::string& api_version) {
  auto slash = api_version.find('/');
  return slash == std::string::npos ? std::string() : api_version.substr(0, slash);
}

// Enqueues keys computed from objects; holds the queue, never the controller, so an informer
// that outlives the controller only adds to a queue that has shut down.
class EnqueueHandler final : public kube::ResourceEventHandler {
 public:
  EnqueueHandler(std::shared_ptr<kube::WorkQueue> queue, MapFunc map)
      : queue_(std::move(queue)), map_(std::move(map)) {}

  void OnAdd(const kube::ObjectPtr& object) override { Enqueue(*object); }
  void OnUpdate(const kube::ObjectPtr& old_object, const kube::ObjectPtr& new_object) override {
    // An owner reference may have changed: both the old and the new owner need a look.
    if (old_object && old_object != new_object) Enqueue(*old_object);
    Enqueue(*new_object);
  }
  void OnDelete(const kube::ObjectPtr& object, bool) override { Enqueue(*object); }

 private:
  void Enqueue(const nlohmann::json& object) {
    for (const auto& key : map_(object)) queue_->Add(key.String());
  }

  std::shared_ptr<kube::WorkQueue> queue_;
  MapFunc map_;
};

}  // namespace

std::vector<ObjectKey> Controller::OwnerKeys(const nlohmann::json& object,
                                             const std::string& primary_group,
                                             const std::string& primary_kind) {
  const nlohmann::json* ref = ControllerRef(object);
  if (ref == nullptr) return {};
  if (ref->value("kind", "") != primary_kind) return {};
  if (GroupOf(ref->value("apiVersion", "")) != primary_group) return {};
  const std::string name = ref->value("name", "");
  if (name.empty()) return {};
  // Owner references are namespace-local: the owner lives in the object's namespace.
  return {ObjectKey{MetaString(object, "namespace"), name}};
}

Controller::Controller(Reconciler& reconciler, ControllerOptions options)
    : reconciler_(reconciler),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {
  kube::WorkQueueOptions qo;
  qo.name = options_.name;
  qo.clock = &clock_;
  qo.rate_limiter = options_.rate_limiter ? std::move(options_.rate_limiter)
                                          : kube::DefaultControllerRateLimiter(clock_);
  if (options_.metrics != nullptr) qo.metrics = options_.metrics->QueueMetrics(options_.name);
  queue_ = std::make_shared<kube::WorkQueue>(std::move(qo));
}

Result<std::unique_ptr<Controller>> Controller::Create(InformerCache& cache,
                                                       Reconciler& reconciler,
                                                       ControllerOptions options) {
  if (options.name.empty()) return InvalidArgument("controller: a name is required");
  if (options.workers < 1) return InvalidArgument("controller: workers must be at least 1");
  if (!cache.IsRegistered(options.primary)) {
    return FailedPrecondition("controller " + options.name + ": " + options.primary.resource +
                              " is not registered in the cache");
  }
  for (const auto& gvr : options.owns) {
    if (!cache.IsRegistered(gvr)) {
      return FailedPrecondition("controller " + options.name + ": owned " + gvr.resource +
                                " is not registered in the cache");
    }
  }
  for (const auto& w : options.watches) {
    if (!cache.IsRegistered(w.gvr) || !w.map) {
      return FailedPrecondition("controller " + options.name + ": watched " + w.gvr.resource +
                                " is not registered in the cache or has no map function");
    }
  }
  std::unique_ptr<Controller> c(new Controller(reconciler, std::move(options)));

  RETURN_IF_ERROR(cache.AddEventHandler(
      c->options_.primary,
      std::make_shared<EnqueueHandler>(c->queue_, [](const nlohmann::json& object) {
        return std::vector<ObjectKey>{
            ObjectKey{MetaString(object, "namespace"), MetaString(object, "name")}};
      })));
  const std::string group = c->options_.primary.group;
  const std::string kind = c->options_.primary_kind;
  for (const auto& gvr : c->options_.owns) {
    RETURN_IF_ERROR(cache.AddEventHandler(
        gvr, std::make_shared<EnqueueHandler>(c->queue_, [group, kind](const nlohmann::json& o) {
          return OwnerKeys(o, group, kind);
        })));
  }
  for (const auto& w : c->options_.watches) {
    RETURN_IF_ERROR(
        cache.AddEventHandler(w.gvr, std::make_shared<EnqueueHandler>(c->queue_, w.map)));
  }
  return c;
}

Controller::~Controller() { Stop(); }

void Controller::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopped_) return;
  started_ = true;
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { Worker(); });
  spdlog::info("controller {} started with {} workers", options_.name, options_.workers);
}

void Controller::Stop() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    workers.swap(workers_);
  }
  queue_->ShutDown();
  for (auto& t : workers) t.join();
  if (!workers.empty()) spdlog::info("controller {} stopped", options_.name);
}

void Controller::Enqueue(const ObjectKey& key) { queue_->Add(key.String()); }

void Controller::Worker() {
  while (auto key = queue_->Get()) {
    Process(*key);
    queue_->Done(*key);
  }
}

void Controller::Process(const std::string& key) {
  auto parsed = ObjectKey::Parse(key);
  if (!parsed.ok()) {
    spdlog::error("controller {}: dropping malformed key \"{}\": {}", options_.name, key,
                  parsed.status().message());
    queue_->Forget(key);
    return;
  }
  const auto start = clock_.Now();
  Result<Action> result = Internal("reconcile did not run");
  try {
    result = reconciler_.Reconcile(*parsed);
  } catch (const std::exception& e) {
    result = Internal(std::string("reconcile threw: ") + e.what());
  } catch (...) {
    result = Internal("reconcile threw a non-standard exception");
  }
  const auto elapsed = clock_.Now() - start;

  ReconcileResult outcome;
  if (result.ok()) {
    queue_->Forget(key);
    if (result->requeue()) {
      queue_->AddAfter(key, result->requeue_after());
      outcome = ReconcileResult::kRequeue;
    } else {
      outcome = ReconcileResult::kSuccess;
    }
  } else if (IsTerminal(result.status())) {
    queue_->Forget(key);
    outcome = ReconcileResult::kTerminalError;
    spdlog::error("{}={} reconcile failed for good (not retried until it changes): {}",
                  options_.log_key, key, result.status().ToString());
  } else {
    const int retries = queue_->NumRequeues(key);
    queue_->AddRateLimited(key);
    outcome = ReconcileResult::kError;
    // Conflicts are ordinary (the cache was a step behind); everything else is worth a warning.
    if (result.status().code() == StatusCode::kConflict) {
      spdlog::debug("{}={} reconcile conflict, retrying (attempt {}): {}", options_.log_key, key,
                    retries + 1, result.status().ToString());
    } else {
      spdlog::warn("{}={} reconcile failed, retrying with backoff (attempt {}): {}",
                   options_.log_key, key, retries + 1, result.status().ToString());
    }
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("{}={} reconciled in {:.1f} ms: {}", options_.log_key, key,
                  std::chrono::duration<double, std::milli>(elapsed).count(),
                  ReconcileResultName(outcome));
  }
  if (options_.metrics != nullptr) {
    options_.metrics->ObserveReconcile(
        options_.name, outcome, std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed));
  }
}

}  // namespace sluice::controllers
