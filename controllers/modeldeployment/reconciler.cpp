#include "controllers/modeldeployment/reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <set>

#include "controllers/analysis/analysis.h"
#include "controllers/modeldeployment/hpa.h"
#include "controllers/rollout/engine.h"
#include "controllers/rollout/policy.h"
#include "controllers/rollout/revision.h"
#include "lib/api/duration.h"
#include "lib/api/feature_view.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers {

using nlohmann::json;

namespace {

EventSeverity Severity(EventType t) {
  return t == EventType::kWarning ? EventSeverity::kWarning : EventSeverity::kNormal;
}

int32_t IntAt(const json& object, std::initializer_list<const char*> path) {
  const json* cur = &object;
  for (const char* key : path) {
    if (!cur->is_object()) return 0;
    auto it = cur->find(key);
    if (it == cur->end()) return 0;
    cur = &*it;
  }
  return cur->is_number_integer() ? cur->get<int32_t>() : 0;
}

std::string LabelOf(const json& object, const char* key) {
  auto meta = object.find("metadata");
  if (meta == object.end()) return {};
  auto labels = meta->find("labels");
  if (labels == meta->end() || !labels->is_object()) return {};
  auto it = labels->find(key);
  return it != labels->end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The status as the API holds it, normalised through the typed view so two equal statuses
// compare equal whatever their key order.
json StatusJson(const ModelDeploymentStatus& status) {
  json j = status;
  return j;
}

Condition MakeCondition(std::string type, std::string status, std::string reason,
                        std::string message, int64_t generation, WallTime now) {
  Condition c;
  c.type = std::move(type);
  c.status = std::move(status);
  c.reason = std::move(reason);
  c.message = std::move(message);
  c.observed_generation = generation;
  c.last_transition_time = now;
  return c;
}

// Sets `c` in `conditions`, keeping lastTransitionTime when the status did not change.
void SetCondition(std::vector<Condition>& conditions, Condition c) {
  for (auto& existing : conditions) {
    if (existing.type != c.type) continue;
    if (existing.status == c.status) c.last_transition_time = existing.last_transition_time;
    existing = std::move(c);
    return;
  }
  conditions.push_back(std::move(c));
}

}  // namespace

struct ModelDeploymentReconciler::Owned {
  // Revision name -> its Deployment / Service (server component).
  std::map<std::string, ObjectPtr> deployments;
  std::map<std::string, ObjectPtr> services;
  std::map<std::string, ObjectPtr> hpas;  // HPA mode only
  ObjectPtr router_deployment;
  ObjectPtr router_service;
};

ModelDeploymentReconciler::ModelDeploymentReconciler(const ObjectReader& reader,
                                                     ObjectWriter& writer, EventRecorder& events,
                                                     ModelDeploymentReconcilerOptions options)
    : reader_(reader),
      writer_(writer),
      events_(events),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {}

Result<Action> ModelDeploymentReconciler::Reconcile(const ObjectKey& key) {
  ObjectPtr object = reader_.Get(api::kModelDeploymentsGvr, key.ns, key.name);
  if (object == nullptr) {
    // Deleted: the garbage collector removes what it owned.
    std::lock_guard<std::mutex> lock(mu_);
    autoscaler_state_.erase(key.String());
    registry_polled_.erase(key.String());
    return Action::WaitForChange();
  }
  if (object->contains("metadata") && (*object)["metadata"].contains("deletionTimestamp")) {
    return Action::WaitForChange();
  }
  return ReconcileObject(key, *object);
}

Status ModelDeploymentReconciler::ApplyIfChanged(const kube::GroupVersionResource& gvr,
                                                 const json& intent, const ObjectPtr& live,
                                                 const std::string& owner_uid) {
  if (live != nullptr && IsSubset(intent, *live)) return Status::Ok();
  bool ours = false;
  if (live != nullptr) {
    const json* ref = ControllerRef(*live);
    ours = ref != nullptr && ref->value("uid", "") == owner_uid;
  }
  const std::string name = MetaString(intent, "name");
  if (ours) {
    auto applied = writer_.Apply(gvr, intent, /*force=*/true);
    if (!applied.ok()) return applied.status().Annotate("applying " + gvr.resource + "/" + name);
    return Status::Ok();
  }
  // Not (yet) in the cache as ours: apply without force so that fields another manager set are
  // a conflict rather than silently taken over.
  auto applied = writer_.Apply(gvr, intent, /*force=*/false);
  if (!applied.ok()) return applied.status().Annotate("applying " + gvr.resource + "/" + name);
  const json* ref = ControllerRef(*applied);
  if (ref == nullptr || ref->value("uid", "") != owner_uid) {
    return Status(
        StatusCode::kAlreadyExists,
        gvr.resource + "/" + name + " exists and is not controlled by this ModelDeployment");
  }
  return Status::Ok();
}

std::map<std::string, int32_t> ModelDeploymentReconciler::Autoscale(const ObjectKey& key,
                                                                    const ModelDeployment& md,
                                                                    const Owned& owned) {
  std::map<std::string, int32_t> out;
  // The same resolution whose fallbacks are tested against the CRD's defaults.
  Result<AutoscalerPolicy> resolved = ResolveAutoscalerPolicy(*md.spec.autoscaling);
  if (!resolved.ok()) {
    // Admission refuses such specs; the engine keeps each revision at minReplicas meanwhile.
    spdlog::warn("md={} autoscaling not applied: {}", key.String(), resolved.status().message());
    return out;
  }
  const AutoscalerPolicy& policy = *resolved;
  const auto now = clock_.Now();
  std::lock_guard<std::mutex> lock(mu_);
  auto& states = autoscaler_state_[key.String()];
  std::map<std::string, AutoscalerState> kept;
  for (const auto& [revision, deployment] : owned.deployments) {
    AutoscalerInput in;
    in.policy = policy;
    in.current_replicas = IntAt(*deployment, {"spec", "replicas"});
    in.ready_replicas = IntAt(*deployment, {"status", "readyReplicas"});
    in.now = now;
    if (auto it = states.find(revision); it != states.end()) in.state = it->second;
    if (options_.concurrency) {
      auto samples =
          options_.concurrency->Samples(key.ns, key.name, revision, now - policy.stable_window);
      if (samples.ok()) in.samples = std::move(*samples);
    }
    AutoscalerDecision d = controllers::Autoscale(in);
    out[revision] = d.desired_replicas;
    kept[revision] = std::move(d.state);
  }
  states = std::move(kept);
  return out;
}

Status ModelDeploymentReconciler::ApplyAll(std::vector<ApplyItem> items,
                                           const std::string& owner_uid) {
  std::vector<ApplyItem*> changed;
  for (auto& item : items) {
    if (item.live == nullptr || !IsSubset(item.intent, *item.live)) changed.push_back(&item);
  }
  if (changed.size() <= 1) {
    for (auto* item : changed) {
      RETURN_IF_ERROR(ApplyIfChanged(*item->gvr, item->intent, item->live, owner_uid));
    }
    return Status::Ok();
  }
  std::vector<std::future<Status>> results;
  results.reserve(changed.size());
  for (auto* item : changed) {
    results.push_back(std::async(std::launch::async, [this, item, &owner_uid] {
      return ApplyIfChanged(*item->gvr, item->intent, item->live, owner_uid);
    }));
  }
  Status first;
  for (auto& r : results) {
    Status s = r.get();
    if (first.ok() && !s.ok()) first = std::move(s);
  }
  return first;
}

Status ModelDeploymentReconciler::WriteInvalidSpecStatus(const json& object,
                                                         const ModelDeployment& md,
                                                         const Status& why,
                                                         const std::string& reason) {
  ModelDeploymentStatus status = md.status.value_or(ModelDeploymentStatus{});
  const WallTime now = clock_.WallNow();
  const int64_t generation = md.Generation();
  const Phase old_phase = status.phase.value_or(Phase::kProgressing);
  const Condition* old_degraded = status.FindCondition("Degraded");
  const bool reported = old_degraded != nullptr && old_degraded->status == "True" &&
                        old_degraded->reason == reason && old_degraded->message == why.message();
  status.observed_generation = generation;
  // A revision that serves keeps serving and keeps its phase; with none, nothing can serve.
  const bool serving = status.stable_revision.has_value() && !status.stable_revision->empty();
  if (reason == "InvalidSpec" || !serving) status.phase = Phase::kDegraded;
  SetCondition(status.conditions,
               MakeCondition("Degraded", "True", reason, why.message(), generation, now));
  SetCondition(status.conditions,
               MakeCondition("Progressing", "False", reason, why.message(), generation, now));
  if (md.status && StatusJson(*md.status) == StatusJson(status)) return Status::Ok();
  json intent = {{"apiVersion", std::string(kApiVersion)},
                 {"kind", std::string(kKind)},
                 {"metadata",
                  {{"name", md.Name()},
                   {"namespace", md.Namespace()},
                   {"resourceVersion", MetaString(object, "resourceVersion")}}},
                 {"status", StatusJson(status)}};
  auto written = writer_.ApplyStatus(api::kModelDeploymentsGvr, intent);
  if (!written.ok()) return written.status().Annotate("writing status");
  if (!md.status || old_phase != status.phase || !md.status->phase || !reported) {
    events_.Record(InvolvedObject::From(object), EventSeverity::kWarning, reason, why.message());
  }
  return Status::Ok();
}

// What one reconcile saw: the ModelDeployment, what it owns in the cache, and the engine's input
// built from them (the autoscaler's sizes and the canary's analysis included).
struct ModelDeploymentReconciler::Observation {
  ModelDeployment md;
  std::string uid;
  Owned owned;
  RolloutInput input;
  RevisionFeatures features;  // the current spec's, resolved from its FeatureViews
  ModelResolution model;      // spec.model as resolved (md.spec.model is its .model)
  std::optional<ModelSourceStatus> previous_model;  // status.model before this reconcile
  std::optional<TlsSecretInfo> tls;                 // spec.tls, its Secret checked
};

// What the reconcile decided to write, in the order it is written.
struct ModelDeploymentReconciler::Intent {
  RolloutDecision decision;
  ModelDeploymentStatus status;  // the engine's, plus what only the reconciler knows
  std::vector<ApplyItem> now;    // the router and every revision that grows or keeps its size
  std::vector<std::pair<json, ObjectPtr>> later;  // scale-downs, after the status
  std::set<std::string> wanted;                   // revisions that keep their objects
  std::map<std::string, HpaRange> hpa_ranges;     // HPA mode: the revisions that keep an HPA
};

Result<Action> ModelDeploymentReconciler::ReconcileObject(const ObjectKey& key,
                                                          const json& object) {
  auto parsed = ParseModelDeployment(object);
  if (!parsed.ok()) {
    // The API server's schema should make this impossible; nothing to do until it changes.
    return TerminalError(parsed.status().Annotate("reading the ModelDeployment"));
  }
  auto policy = ResolveRolloutPolicy(parsed->spec);
  if (!policy.ok()) {
    RETURN_IF_ERROR(WriteInvalidSpecStatus(object, *parsed, policy.status(), "InvalidSpec"));
    return TerminalError(policy.status());
  }
  // The FeatureViews of spec.features, as the cache holds them. A reference the operator cannot
  // resolve rolls nothing out: the revisions that exist keep serving as they are.
  auto features = ResolveFeatures(parsed->spec, [&](const std::string& name) {
    return reader_.Get(api::kFeatureViewsGvr, key.ns, name);
  });
  if (!features.ok()) {
    const char* reason = features.status().code() == StatusCode::kNotFound ? "FeatureViewNotFound"
                                                                           : "InvalidFeatureRef";
    RETURN_IF_ERROR(WriteInvalidSpecStatus(object, *parsed, features.status(), reason));
    return TerminalError(features.status());
  }
  // spec.tls: the Secret must be there before pods mount it (a pod that cannot would only sit in
  // ContainerCreating); until it is, nothing rolls out and the revisions that exist keep serving.
  std::optional<TlsSecretInfo> tls;
  if (parsed->spec.tls) {
    Result<TlsSecretInfo> checked =
        options_.secrets != nullptr
            ? CheckTlsSecret(*options_.secrets, key.ns, parsed->spec.tls->secret_name)
            : Result<TlsSecretInfo>(FailedPrecondition("spec.tls: the operator reads no Secrets"));
    if (!checked.ok()) {
      const char* reason = checked.status().code() == StatusCode::kNotFound ? "TLSSecretNotFound"
                                                                            : "TLSSecretInvalid";
      RETURN_IF_ERROR(WriteInvalidSpecStatus(object, *parsed, checked.status(), reason));
      return Action::RequeueAfter(std::chrono::seconds(30));
    }
    tls = std::move(checked).value();
  }
  // A models:/ URI, resolved through the registry (or its last answer) to the folder the pods
  // fetch; the revision is built from that.
  ModelResolutionInput mi;
  mi.md = &*parsed;
  mi.now = clock_.WallNow();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = registry_polled_.find(key.String()); it != registry_polled_.end()) {
      mi.last_poll = it->second.time;
      mi.last_error_reason = it->second.error_reason;
      mi.last_error = it->second.error;
    }
  }
  mi.refresh_requested = parsed->Annotation(api::kRegistryRefreshAnnotation).has_value();
  mi.default_tracking_uri = options_.default_tracking_uri;
  mi.registry = options_.registry.get();
  mi.secrets = options_.secrets;
  Result<ModelResolution> resolution = ResolveModel(mi);
  if (resolution.ok() && resolution->polled) {
    std::lock_guard<std::mutex> lock(mu_);
    registry_polled_[key.String()] = {mi.now, resolution->degraded_reason, resolution->degraded};
  }
  if (!resolution.ok()) {
    const std::string reason = RegistryErrorReason(resolution.status());
    {
      std::lock_guard<std::mutex> lock(mu_);
      registry_polled_[key.String()] = {mi.now, reason, resolution.status()};
    }
    RETURN_IF_ERROR(WriteInvalidSpecStatus(object, *parsed, resolution.status(), reason));
    // A registry that does not answer is retried with the controller's backoff; a model, alias
    // or Secret that is missing is asked for again at the poll interval.
    if (reason == "RegistryUnavailable") return resolution.status();
    return Action::RequeueAfter(std::chrono::seconds(30));
  }
  const std::optional<ModelSourceStatus> previous_model =
      parsed->status ? parsed->status->model : std::nullopt;
  parsed->spec.model = resolution->model;
  Observation seen = Observe(key, object, std::move(*parsed), std::move(*policy));
  seen.features = std::move(*features);
  seen.model = std::move(*resolution);
  seen.previous_model = previous_model;
  seen.tls = std::move(tls);
  seen.input.desired_revision = RevisionName(seen.md.Name(), seen.md.spec, seen.features.Key());
  ASSIGN_OR_RETURN(Intent intent, DecideWrites(key, seen));
  return Apply(key, object, seen, intent);
}

ModelDeploymentReconciler::Observation ModelDeploymentReconciler::Observe(const ObjectKey& key,
                                                                          const json& object,
                                                                          ModelDeployment parsed,
                                                                          RolloutPolicy policy) {
  Observation seen{std::move(parsed), MetaString(object, "uid"), {}, {}};
  const ModelDeployment& md = seen.md;
  const std::string& uid = seen.uid;
  Owned& owned = seen.owned;

  // What exists now.
  for (auto& d : reader_.ListOwnedBy(kube::resources::kDeployments, key.ns, uid)) {
    const json* ref = ControllerRef(*d);
    if (ref == nullptr || ref->value("uid", "") != uid) continue;
    const std::string component = LabelOf(*d, api::kLabelComponent);
    if (component == "router") {
      owned.router_deployment = d;
    } else if (component == "server") {
      const std::string revision = LabelOf(*d, api::kLabelRevision);
      if (!revision.empty()) owned.deployments[revision] = d;
    }
  }
  for (auto& h : reader_.ListOwnedBy(kube::resources::kHorizontalPodAutoscalers, key.ns, uid)) {
    const json* ref = ControllerRef(*h);
    if (ref == nullptr || ref->value("uid", "") != uid) continue;
    const std::string revision = LabelOf(*h, api::kLabelRevision);
    if (!revision.empty()) owned.hpas[revision] = h;
  }
  for (auto& s : reader_.ListOwnedBy(kube::resources::kServices, key.ns, uid)) {
    const json* ref = ControllerRef(*s);
    if (ref == nullptr || ref->value("uid", "") != uid) continue;
    const std::string component = LabelOf(*s, api::kLabelComponent);
    if (component == "router") {
      owned.router_service = s;
    } else if (component == "server") {
      const std::string revision = LabelOf(*s, api::kLabelRevision);
      if (!revision.empty()) owned.services[revision] = s;
    }
  }

  RolloutInput& input = seen.input;
  input.desired_revision = RevisionName(md.Name(), md.spec);
  input.desired_model_version = md.spec.model.version;
  input.desired_model_uri = md.spec.model.uri;
  input.policy = std::move(policy);
  input.status = md.status.value_or(ModelDeploymentStatus{});
  input.now = clock_.WallNow();
  input.generation = md.Generation();
  input.controls = Controls::FromAnnotations(md);
  for (const auto& [revision, d] : owned.deployments) {
    RevisionObservation& o = input.observed[revision];
    o.replicas = IntAt(*d, {"spec", "replicas"});
    o.ready_replicas = IntAt(*d, {"status", "readyReplicas"});
    // The API leaves zeros out of a status; a Deployment the controller has not seen yet has
    // none at all, and nothing is known of its pods.
    o.status_current = IntAt(*d, {"status", "observedGeneration"}) >= MetaGeneration(*d);
    if (d->contains("status")) o.pods = IntAt(*d, {"status", "replicas"});
    if (spdlog::should_log(spdlog::level::debug)) {
      // What the rollout engine decides on, for a rollout to be replayed from the log.
      spdlog::debug("md={} rev={} observed replicas={} ready={} pods={} generation={}/{} rv={}",
                    key.String(), revision, o.replicas, o.ready_replicas,
                    o.pods ? std::to_string(*o.pods) : "-",
                    IntAt(*d, {"status", "observedGeneration"}), MetaGeneration(*d),
                    MetaString(*d, "resourceVersion"));
    }
  }
  if (md.spec.autoscaling) {
    input.replicas.min_replicas = md.spec.autoscaling->min_replicas.value_or(1);
    input.replicas.max_replicas =
        std::max(md.spec.autoscaling->max_replicas, input.replicas.min_replicas);
    if (HpaMode(md.spec)) {
      // The HPAs size the revisions; the engine plans with the sizes they chose.
      for (const auto& [revision, d] : owned.deployments) {
        input.replicas.autoscaled[revision] =
            std::clamp(IntAt(*d, {"spec", "replicas"}), input.replicas.min_replicas,
                       input.replicas.max_replicas);
      }
    } else {
      input.replicas.autoscaled = Autoscale(key, md, owned);
    }
  } else {
    input.replicas.fixed = md.spec.replicas.value_or(1);
  }

  // Analysis of the canary, when one is due.
  if (auto window = AnalysisWindow(input.policy, input.status, input.now)) {
    const std::string canary = input.status.canary_revision.value_or("");
    std::shared_ptr<MetricSource> source =
        options_.metric_source ? options_.metric_source(md) : nullptr;
    AnalysisSamples samples;
    if (source) {
      samples = CollectSamples(input.policy.analysis, *source, canary, *window);
    } else {
      samples.revision = canary;
      samples.window = *window;
      samples.source_errors.push_back("no analysis provider is configured in the operator");
    }
    input.verdict =
        Evaluate(input.policy.analysis, samples, AnalysisHistoryFromStatus(input.status));
  }
  return seen;
}

Result<ModelDeploymentReconciler::Intent> ModelDeploymentReconciler::DecideWrites(
    const ObjectKey& key, const Observation& seen) {
  const ModelDeployment& md = seen.md;
  const RolloutInput& input = seen.input;
  const Owned& owned = seen.owned;
  const ModelDeploymentObject owner{md, seen.uid};
  Intent out;
  out.decision = Decide(input);
  if (spdlog::should_log(spdlog::level::debug)) {
    std::string decided;
    for (const auto& r : out.decision.revisions) {
      decided += " " + r.name + "=" + std::to_string(r.replicas);
    }
    for (const auto& t : out.decision.status.traffic) {
      decided += " " + t.revision + ":" + std::to_string(t.weight) + "%";
    }
    spdlog::debug("md={} decided{}", key.String(), decided);
  }

  // The status to write: the engine's, plus what only the reconciler knows.
  ModelDeploymentStatus& status = out.status;
  status = out.decision.status;
  status.observed_generation = md.Generation();
  status.selector = ServerPodSelector(md.Name());
  int32_t total = 0, ready = 0;
  for (const auto& [revision, obs] : input.observed) {
    total += obs.replicas;
    ready += obs.ready_replicas;
  }
  status.replicas = total;
  status.ready_replicas = ready;
  RecordModelSource(seen, out);
  ReportFailingPods(key, seen, out);

  // The router, and every revision that grows or keeps its size. These writes are independent
  // of each other, so they go out together: a new ModelDeployment costs one round trip here, not
  // seven.
  const std::vector<std::pair<const kube::GroupVersionResource*, json>> router = {
      {&kube::resources::kServiceAccounts, RouterServiceAccount(owner)},
      {&kRolesGvr, RouterRole(owner)},
      {&kRoleBindingsGvr, RouterRoleBinding(owner)},
      {&kube::resources::kDeployments, RouterDeployment(owner, options_.workload, seen.tls)},
      {&kube::resources::kServices, RouterService(owner, options_.workload, seen.tls)},
  };
  for (const auto& [gvr, intent] : router) {
    ObjectPtr live;
    if (gvr == &kube::resources::kDeployments) {
      live = owned.router_deployment;
    } else if (gvr == &kube::resources::kServices) {
      live = owned.router_service;
    } else {
      live = reader_.Get(*gvr, key.ns, MetaString(intent, "name"));
    }
    out.now.push_back({gvr, intent, live});
  }
  // HPA mode: the revisions taking traffic get an HPA sized by their weight.
  if (HpaMode(md.spec)) {
    for (const TrafficTarget& t : status.traffic) {
      if (t.weight <= 0) continue;
      out.hpa_ranges[t.revision] =
          SplitByWeight(input.replicas.min_replicas, input.replicas.max_replicas, t.weight);
    }
  }
  for (const auto& desired : out.decision.revisions) {
    out.wanted.insert(desired.name);
    ModelDeploymentSpec revision_spec;
    auto existing = owned.deployments.find(desired.name);
    if (desired.name == input.desired_revision) {
      revision_spec = md.spec;
    } else if (existing != owned.deployments.end()) {
      auto from_annotation = RevisionSpecFromDeployment(*existing->second);
      if (!from_annotation.ok()) {
        spdlog::warn("md={} rev={} cannot be re-applied ({}); leaving it as it is", key.String(),
                     desired.name, from_annotation.status().message());
        continue;
      }
      revision_spec = std::move(*from_annotation);
    } else {
      // A revision the status remembers but whose Deployment is gone and whose spec is no
      // longer the current one: nothing to rebuild it from.
      spdlog::warn("md={} rev={} has no Deployment and is not the current spec; skipped",
                   key.String(), desired.name);
      continue;
    }
    const RevisionFeatures features = desired.name == input.desired_revision
                                          ? seen.features
                                          : RevisionFeaturesFromDeployment(*existing->second);
    auto built = RevisionDeployment(owner, desired.name, revision_spec, desired.replicas,
                                    options_.workload, features);
    if (!built.ok()) {
      // Admission refuses such specs; one that got through waits for a change.
      return TerminalError(built.status().Annotate("revision " + desired.name));
    }
    json deployment = std::move(built).value();
    ObjectPtr live = existing == owned.deployments.end() ? nullptr : existing->second;
    if (auto range = out.hpa_ranges.find(desired.name); range != out.hpa_ranges.end()) {
      // The HPA owns the size: the intent repeats what is there (or starts at the HPA's
      // minimum), so applying it never undoes a scaling decision of the HPA.
      deployment["spec"]["replicas"] =
          live != nullptr ? IntAt(*live, {"spec", "replicas"}) : range->second.min_replicas;
      auto hpa = owned.hpas.find(desired.name);
      Result<AutoscalerPolicy> policy = ResolveAutoscalerPolicy(*md.spec.autoscaling);
      if (!policy.ok()) return TerminalError(policy.status());
      out.now.push_back({&kube::resources::kHorizontalPodAutoscalers,
                         RevisionHpa(owner, desired.name, range->second,
                                     static_cast<int32_t>(policy->target_concurrency)),
                         hpa == owned.hpas.end() ? nullptr : hpa->second});
      out.now.push_back({&kube::resources::kDeployments, std::move(deployment), live});
    } else if (live != nullptr && desired.replicas < IntAt(*live, {"spec", "replicas"})) {
      out.later.emplace_back(std::move(deployment), live);
    } else {
      out.now.push_back({&kube::resources::kDeployments, std::move(deployment), live});
    }
    auto service = owned.services.find(desired.name);
    ObjectPtr live_service = service == owned.services.end() ? nullptr : service->second;
    json service_intent =
        RevisionService(owner, desired.name, options_.workload, revision_spec.tls.has_value());
    KeepAllocatedClusterIp(service_intent, live_service.get());
    out.now.push_back({&kube::resources::kServices, std::move(service_intent), live_service});
  }
  return out;
}

void ModelDeploymentReconciler::RecordModelSource(const Observation& seen, Intent& out) const {
  const ModelResolution& r = seen.model;
  ModelDeploymentStatus& status = out.status;
  status.model = r.status;
  if (!status.model) return;
  ModelSourceStatus& m = *status.model;
  const std::string uri = m.uri.value_or("");
  const std::string version = m.version.value_or("");
  std::vector<Event>& events = out.decision.events;
  const std::optional<ModelSourceStatus>& before = seen.previous_model;
  if (!before || before->uri != m.uri) {
    events.push_back({EventType::kNormal, "RegistryResolved",
                      uri + " is version " + version + " at " + m.source.value_or("")});
  } else if (before->version != m.version) {
    events.push_back({EventType::kNormal, "RegistryVersionChanged",
                      uri + " moved from version " + before->version.value_or("") + " to " +
                          version + "; rolling it out"});
  }
  const std::string& desired = seen.input.desired_revision;
  if (status.stable_revision == desired) {
    m.refused_version.reset();
    m.refused_reason.reset();
  } else if (status.phase == Phase::kRolledBack && status.canary_revision == desired &&
             m.refused_version != m.version) {
    const Condition* degraded = status.FindCondition("Degraded");
    m.refused_version = version;
    m.refused_reason = degraded != nullptr ? degraded->message : "rolled back";
    events.push_back({EventType::kWarning, "RegistryVersionRefused",
                      "version " + version + " of " + uri +
                          " was rolled back; the registry is left as it is and the version is "
                          "not rolled out again while " +
                          uri + " names it: " + *m.refused_reason});
  }
  if (!r.degraded.ok()) {
    // The revisions keep serving the last answer; the registry's failure is reported.
    const Condition* degraded = status.FindCondition("Degraded");
    if (degraded == nullptr || degraded->status != "True") {
      const Condition* old = seen.md.status ? seen.md.status->FindCondition("Degraded") : nullptr;
      const std::string message =
          r.degraded.message() + "; serving version " + version + " as last resolved";
      Condition c = MakeCondition("Degraded", "True", r.degraded_reason, message,
                                  seen.md.Generation(), clock_.WallNow());
      const bool was_true = old != nullptr && old->status == "True";
      // The engine reports Degraded False on its own; the time this became True is the old one.
      if (was_true) c.last_transition_time = old->last_transition_time;
      const bool reported = was_true && old->reason == r.degraded_reason && old->message == message;
      SetCondition(status.conditions, std::move(c));
      if (!reported) {
        events.push_back({EventType::kWarning, r.degraded_reason, r.degraded.message()});
      }
    }
  }
  if (r.polled && seen.md.Annotation(api::kRegistryRefreshAnnotation)) {
    out.decision.consumed_annotations.push_back(api::kRegistryRefreshAnnotation);
  }
  if (r.requeue_after) {
    out.decision.requeue_after = out.decision.requeue_after
                                     ? std::min(*out.decision.requeue_after, *r.requeue_after)
                                     : *r.requeue_after;
  }
}

void ModelDeploymentReconciler::ReportFailingPods(const ObjectKey& key, const Observation& seen,
                                                  Intent& out) const {
  const std::string& revision = seen.input.desired_revision;
  auto observed = seen.input.observed.find(revision);
  if (observed == seen.input.observed.end() ||
      observed->second.ready_replicas >= observed->second.replicas) {
    return;
  }
  ModelDeploymentStatus& status = out.status;
  const Condition* degraded = status.FindCondition("Degraded");
  if (degraded != nullptr && degraded->status == "True") return;  // a cause is reported already
  std::string trouble;
  for (const auto& pod :
       reader_.ListByLabel(kube::resources::kPods, key.ns, api::kLabelRevision, revision)) {
    if (LabelOf(*pod, api::kLabelComponent) != "server") {
      continue;
    }
    trouble = PodTrouble(*pod);
    if (!trouble.empty()) break;
  }
  if (trouble.empty()) return;
  std::string message = "revision " + revision + " does not start: " + trouble;
  if (status.stable_revision && *status.stable_revision != revision) {
    message += "; " + *status.stable_revision + " keeps serving";
  }
  const Condition* old = seen.md.status ? seen.md.status->FindCondition("Degraded") : nullptr;
  const bool was = old != nullptr && old->status == "True" && old->reason == "RevisionNotRunning";
  Condition c = MakeCondition("Degraded", "True", "RevisionNotRunning", message,
                              seen.md.Generation(), clock_.WallNow());
  if (was) c.last_transition_time = old->last_transition_time;
  SetCondition(status.conditions, std::move(c));
  if (!was || old->message != message) {
    out.decision.events.push_back({EventType::kWarning, "RevisionNotRunning", message});
  }
}

Result<Action> ModelDeploymentReconciler::Apply(const ObjectKey& key, const json& object,
                                                const Observation& seen, Intent& intent) {
  const ModelDeployment& md = seen.md;
  const RolloutInput& input = seen.input;
  const Owned& owned = seen.owned;
  const std::string& uid = seen.uid;
  const ModelDeploymentStatus& status = intent.status;
  const RolloutDecision& decision = intent.decision;

  // 1. The router, and every revision that grows or keeps its size, together.
  RETURN_IF_ERROR(ApplyAll(std::move(intent.now), uid));

  // 2. The status.
  const Phase old_phase = input.status.phase.value_or(Phase::kProgressing);
  const bool had_phase = md.status.has_value() && md.status->phase.has_value();
  const json new_status = StatusJson(status);
  if (!md.status || StatusJson(*md.status) != new_status) {
    json patch = {{"apiVersion", std::string(kApiVersion)},
                  {"kind", std::string(kKind)},
                  {"metadata",
                   {{"name", md.Name()},
                    {"namespace", md.Namespace()},
                    {"resourceVersion", MetaString(object, "resourceVersion")}}},
                  {"status", new_status}};
    auto written = writer_.ApplyStatus(api::kModelDeploymentsGvr, patch);
    if (!written.ok()) return written.status().Annotate("writing status");
  }

  // 3. Scale-downs, and revisions no longer needed. An HPA goes first: a revision that no
  // longer takes traffic (or a mode that is no longer HPA) is sized by the engine again.
  for (const auto& [revision, h] : owned.hpas) {
    // Before a revision's scale-down, or when the mode is no longer HPA: its HPA would undo it.
    if (intent.hpa_ranges.count(revision)) continue;
    RETURN_IF_ERROR(writer_.Delete(kube::resources::kHorizontalPodAutoscalers, key.ns,
                                   MetaString(*h, "name"), MetaString(*h, "uid")));
  }
  for (auto& [deployment, live] : intent.later) {
    RETURN_IF_ERROR(ApplyIfChanged(kube::resources::kDeployments, deployment, live, uid));
  }
  for (const auto& [revision, d] : owned.deployments) {
    if (intent.wanted.count(revision)) continue;
    RETURN_IF_ERROR(writer_.Delete(kube::resources::kDeployments, key.ns, MetaString(*d, "name"),
                                   MetaString(*d, "uid")));
    spdlog::info("md={} rev={} deleted: no longer stable, canary or draining", key.String(),
                 revision);
  }
  for (const auto& [revision, s] : owned.services) {
    if (intent.wanted.count(revision)) continue;
    RETURN_IF_ERROR(writer_.Delete(kube::resources::kServices, key.ns, MetaString(*s, "name"),
                                   MetaString(*s, "uid")));
  }

  // 4. Events and one-shot annotations, now that the status records what they did.
  const InvolvedObject involved = InvolvedObject::From(object);
  if (input.verdict && status.last_analysis && status.last_analysis->time &&
      (!input.status.last_analysis || !input.status.last_analysis->time ||
       *input.status.last_analysis->time != *status.last_analysis->time)) {
    // Every analysis run, with what it measured: the record of why a canary moved on or not.
    const Verdict& v = *input.verdict;
    events_.Record(involved,
                   v.outcome == Outcome::kPass ? EventSeverity::kNormal : EventSeverity::kWarning,
                   "Analysis" + std::string(OutcomeName(v.outcome)),
                   "revision " + v.revision + " window " + FormatTime(v.window.start) + ".." +
                       FormatTime(v.window.end) + ": " + v.message);
  }
  for (const auto& e : decision.events) {
    events_.Record(involved, Severity(e.type), e.reason, e.message);
  }
  const Phase new_phase = status.phase.value_or(Phase::kProgressing);
  if (!had_phase || old_phase != new_phase) {
    std::string message = had_phase ? "phase " + std::string(PhaseName(old_phase)) + " -> " +
                                          std::string(PhaseName(new_phase))
                                    : "phase " + std::string(PhaseName(new_phase));
    if (const Condition* c = status.FindCondition(
            new_phase == Phase::kHealthy                                       ? "Ready"
            : new_phase == Phase::kDegraded || new_phase == Phase::kRolledBack ? "Degraded"
                                                                               : "Progressing")) {
      message += ": " + c->message;
    }
    const bool bad = new_phase == Phase::kDegraded || new_phase == Phase::kRolledBack;
    events_.Record(involved, bad ? EventSeverity::kWarning : EventSeverity::kNormal,
                   "Phase" + std::string(PhaseName(new_phase)), message);
    spdlog::info("md={} {}", key.String(), message);
  }
  if (!decision.consumed_annotations.empty()) {
    json annotations = json::object();
    for (const auto& a : decision.consumed_annotations) annotations[a] = nullptr;
    auto patched = writer_.MergePatch(api::kModelDeploymentsGvr, key.ns, key.name,
                                      {{"metadata", {{"annotations", annotations}}}});
    if (!patched.ok() && patched.status().code() != StatusCode::kNotFound) {
      return patched.status().Annotate("removing consumed control annotations");
    }
  }

  std::optional<std::chrono::milliseconds> requeue = decision.requeue_after;
  if (md.spec.autoscaling && !HpaMode(md.spec) && options_.concurrency &&
      options_.autoscale_period.count() > 0) {
    requeue = requeue ? std::min(*requeue, options_.autoscale_period) : options_.autoscale_period;
  }
  if (requeue) return Action::RequeueAfter(*requeue);
  return Action::WaitForChange();
}

}  // namespace sluice::controllers
