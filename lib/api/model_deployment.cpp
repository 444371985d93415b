#include "lib/api/model_deployment.h"

#include <cmath>
#include <stdexcept>

namespace sluice::controllers {
namespace {

using nlohmann::json;

// Carries the JSON path of a malformed field up to the Parse* entry points.
class FieldError : public std::runtime_error {
 public:
  FieldError(std::string path, const std::string& what)
      : std::runtime_error(what), path_(std::move(path)) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Join(std::string_view parent, const std::string& child) {
  if (child.empty()) return std::string(parent);
  if (parent.empty()) return child;
  if (child.front() == '[') return std::string(parent) + child;
  return std::string(parent) + "." + child;
}

// Runs `fn` and prefixes any error with `path`.
template <typename Fn>
void At(std::string_view path, Fn&& fn) {
  try {
    fn();
  } catch (const FieldError& e) {
    throw FieldError(Join(path, e.path()), e.what());
  } catch (const std::exception& e) {
    throw FieldError(std::string(path), e.what());
  }
}

void RequireObject(const json& j) {
  if (!j.is_object())
    throw std::invalid_argument("must be an object, not " + std::string(j.type_name()));
}

template <typename T>
void Required(const json& j, const char* key, T& out) {
  RequireObject(j);
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) throw FieldError(key, "is required");
  At(key, [&] { out = it->template get<T>(); });
}

template <typename T>
void Optional(const json& j, const char* key, std::optional<T>& out) {
  RequireObject(j);
  out.reset();
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  At(key, [&] { out = it->template get<T>(); });
}

// Lists parsed element by element so an error names its index.
template <typename T>
void List(const json& j, const char* key, std::vector<T>& out) {
  RequireObject(j);
  out.clear();
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  At(key, [&] {
    if (!it->is_array()) throw std::invalid_argument("must be a list");
    for (size_t i = 0; i < it->size(); ++i) {
      At("[" + std::to_string(i) + "]", [&] { out.push_back((*it)[i].template get<T>()); });
    }
  });
}

template <typename T>
void OptionalList(const json& j, const char* key, std::optional<std::vector<T>>& out) {
  RequireObject(j);
  out.reset();
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  std::vector<T> v;
  List(j, key, v);
  out = std::move(v);
}

template <typename T>
void Put(json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

void PutTime(json& j, const char* key, const std::optional<WallTime>& t) {
  if (t) j[key] = FormatTime(*t);
}

void GetTime(const json& j, const char* key, std::optional<WallTime>& out) {
  std::optional<std::string> text;
  Optional(j, key, text);
  out.reset();
  if (!text) return;
  Result<WallTime> t = ParseTime(*text);
  if (!t.ok()) throw FieldError(key, t.status().message());
  out = *t;
}

template <typename T>
Result<T> ParseAs(const json& j, std::string_view what) {
  try {
    return j.get<T>();
  } catch (const FieldError& e) {
    return InvalidArgument(std::string(what) + "." + e.path() + ": " + e.what());
  } catch (const std::exception& e) {
    return InvalidArgument(std::string(what) + ": " + e.what());
  }
}

}  // namespace

int32_t IntOrPercent::Resolve(int32_t total, bool round_up) const {
  if (!percent) return value;
  const double exact = static_cast<double>(total) * value / 100.0;
  return static_cast<int32_t>(round_up ? std::ceil(exact - 1e-9) : std::floor(exact + 1e-9));
}

std::string_view PhaseName(Phase p) {
  switch (p) {
    case Phase::kProgressing:
      return "Progressing";
    case Phase::kHealthy:
      return "Healthy";
    case Phase::kPaused:
      return "Paused";
    case Phase::kDegraded:
      return "Degraded";
    case Phase::kRolledBack:
      return "RolledBack";
  }
  return "Progressing";
}

const Condition* ModelDeploymentStatus::FindCondition(std::string_view type) const {
  for (const Condition& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

const RevisionStatus* ModelDeploymentStatus::FindRevision(std::string_view name) const {
  for (const RevisionStatus& r : revisions) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string ModelDeployment::Name() const {
  return metadata.value("name", "");
}
std::string ModelDeployment::Namespace() const {
  return metadata.value("namespace", "");
}
int64_t ModelDeployment::Generation() const {
  return metadata.value("generation", int64_t{0});
}

std::optional<std::string> ModelDeployment::Annotation(const std::string& key) const {
  auto a = metadata.find("annotations");
  if (a == metadata.end() || !a->is_object()) return std::nullopt;
  auto v = a->find(key);
  if (v == a->end() || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

// --- spec ---

void to_json(json& j, const IntOrPercent& v) {
  if (v.percent) {
    j = std::to_string(v.value) + "%";
  } else {
    j = v.value;
  }
}

void from_json(const json& j, IntOrPercent& v) {
  if (j.is_number_integer()) {
    v.value = j.get<int32_t>();
    v.percent = false;
    return;
  }
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s.size() >= 2 && s.back() == '%' && s.find_first_not_of("0123456789") == s.size() - 1) {
      v.value = std::stoi(s.substr(0, s.size() - 1));
      v.percent = true;
      return;
    }
  }
  throw std::invalid_argument("must be an integer or a percent such as \"25%\", not " + j.dump());
}

void to_json(json& j, const SecretReference& v) {
  j = json::object();
  j["name"] = v.name;
}
void from_json(const json& j, SecretReference& v) { Required(j, "name", v.name); }

void to_json(json& j, const ModelCredentials& v) {
  j = json::object();
  Put(j, "secretRef", v.secret_ref);
}
void from_json(const json& j, ModelCredentials& v) { Optional(j, "secretRef", v.secret_ref); }

void to_json(json& j, const S3Spec& v) {
  j = json::object();
  Put(j, "endpoint", v.endpoint);
  Put(j, "region", v.region);
  Put(j, "addressingStyle", v.addressing_style);
}
void from_json(const json& j, S3Spec& v) {
  Optional(j, "endpoint", v.endpoint);
  Optional(j, "region", v.region);
  Optional(j, "addressingStyle", v.addressing_style);
}

void to_json(json& j, const RegistrySpec& v) {
  j = json::object();
  Put(j, "trackingUri", v.tracking_uri);
  Put(j, "follow", v.follow);
  Put(j, "pollInterval", v.poll_interval);
}
void from_json(const json& j, RegistrySpec& v) {
  Optional(j, "trackingUri", v.tracking_uri);
  Optional(j, "follow", v.follow);
  Optional(j, "pollInterval", v.poll_interval);
}

void to_json(json& j, const ModelSpec& v) {
  j = json::object();
  j["uri"] = v.uri;
  Put(j, "format", v.format);
  Put(j, "version", v.version);
  Put(j, "sha256", v.sha256);
  Put(j, "credentials", v.credentials);
  Put(j, "s3", v.s3);
  Put(j, "registry", v.registry);
}
void from_json(const json& j, ModelSpec& v) {
  Required(j, "uri", v.uri);
  Optional(j, "format", v.format);
  Optional(j, "version", v.version);
  Optional(j, "sha256", v.sha256);
  Optional(j, "credentials", v.credentials);
  Optional(j, "s3", v.s3);
  Optional(j, "registry", v.registry);
}

void to_json(json& j, const ModelSourceStatus& v) {
  j = json::object();
  Put(j, "uri", v.uri);
  Put(j, "version", v.version);
  Put(j, "source", v.source);
  PutTime(j, "resolvedTime", v.resolved_time);
  Put(j, "refusedVersion", v.refused_version);
  Put(j, "refusedReason", v.refused_reason);
}
void from_json(const json& j, ModelSourceStatus& v) {
  Optional(j, "uri", v.uri);
  Optional(j, "version", v.version);
  Optional(j, "source", v.source);
  GetTime(j, "resolvedTime", v.resolved_time);
  Optional(j, "refusedVersion", v.refused_version);
  Optional(j, "refusedReason", v.refused_reason);
}

void to_json(json& j, const BatchingSpec& v) {
  j = json::object();
  Put(j, "maxBatchSize", v.max_batch_size);
  Put(j, "maxQueueDelay", v.max_queue_delay);
  Put(j, "maxQueueSize", v.max_queue_size);
}
void from_json(const json& j, BatchingSpec& v) {
  Optional(j, "maxBatchSize", v.max_batch_size);
  Optional(j, "maxQueueDelay", v.max_queue_delay);
  Optional(j, "maxQueueSize", v.max_queue_size);
}

void to_json(json& j, const CacheSpec& v) {
  j = json::object();
  Put(j, "enabled", v.enabled);
  Put(j, "capacity", v.capacity);
  Put(j, "ttl", v.ttl);
}
void from_json(const json& j, CacheSpec& v) {
  Optional(j, "enabled", v.enabled);
  Optional(j, "capacity", v.capacity);
  Optional(j, "ttl", v.ttl);
}

void to_json(json& j, const RuntimeSpec& v) {
  j = json::object();
  Put(j, "image", v.image);
  Put(j, "resources", v.resources);
  Put(j, "batching", v.batching);
  Put(j, "cache", v.cache);
  Put(j, "env", v.env);
  Put(j, "args", v.args);
  Put(j, "featureBudget", v.feature_budget);
}
void from_json(const json& j, RuntimeSpec& v) {
  Optional(j, "image", v.image);
  Optional(j, "resources", v.resources);
  if (v.resources && !v.resources->is_object()) throw FieldError("resources", "must be an object");
  Optional(j, "batching", v.batching);
  Optional(j, "cache", v.cache);
  Optional(j, "env", v.env);
  if (v.env && !v.env->is_array()) throw FieldError("env", "must be a list");
  Optional(j, "args", v.args);
  Optional(j, "featureBudget", v.feature_budget);
}

void to_json(json& j, const FeatureRef& v) {
  j = json::object();
  j["name"] = v.name;
  Put(j, "features", v.features);
}
void from_json(const json& j, FeatureRef& v) {
  Required(j, "name", v.name);
  Optional(j, "features", v.features);
}

void to_json(json& j, const AutoscalingSpec& v) {
  j = json::object();
  Put(j, "minReplicas", v.min_replicas);
  j["maxReplicas"] = v.max_replicas;
  Put(j, "targetConcurrency", v.target_concurrency);
  Put(j, "mode", v.mode);
  Put(j, "stableWindow", v.stable_window);
  Put(j, "panicWindow", v.panic_window);
  Put(j, "scaleDownDelay", v.scale_down_delay);
}
void from_json(const json& j, AutoscalingSpec& v) {
  Optional(j, "minReplicas", v.min_replicas);
  Required(j, "maxReplicas", v.max_replicas);
  Optional(j, "targetConcurrency", v.target_concurrency);
  Optional(j, "mode", v.mode);
  Optional(j, "stableWindow", v.stable_window);
  Optional(j, "panicWindow", v.panic_window);
  Optional(j, "scaleDownDelay", v.scale_down_delay);
}

void to_json(json& j, const CanaryStep& v) {
  j = json::object();
  j["weight"] = v.weight;
  Put(j, "pause", v.pause);
}
void from_json(const json& j, CanaryStep& v) {
  Required(j, "weight", v.weight);
  Optional(j, "pause", v.pause);
}

void to_json(json& j, const ThresholdRange& v) {
  j = json::object();
  Put(j, "min", v.min);
  Put(j, "max", v.max);
}
void from_json(const json& j, ThresholdRange& v) {
  Optional(j, "min", v.min);
  Optional(j, "max", v.max);
}

void to_json(json& j, const AnalysisMetricSpec& v) {
  j = json::object();
  j["name"] = v.name;
  Put(j, "builtin", v.builtin);
  Put(j, "query", v.query);
  j["thresholdRange"] = v.threshold_range;
}
void from_json(const json& j, AnalysisMetricSpec& v) {
  Required(j, "name", v.name);
  Optional(j, "builtin", v.builtin);
  Optional(j, "query", v.query);
  Required(j, "thresholdRange", v.threshold_range);
}

void to_json(json& j, const PrometheusSpec& v) {
  j = json{{"address", v.address}};
}
void from_json(const json& j, PrometheusSpec& v) {
  Required(j, "address", v.address);
}

void to_json(json& j, const AnalysisSpec& v) {
  j = json::object();
  Put(j, "interval", v.interval);
  Put(j, "failureThreshold", v.failure_threshold);
  Put(j, "minRequests", v.min_requests);
  Put(j, "noDataPolicy", v.no_data_policy);
  Put(j, "prometheus", v.prometheus);
  Put(j, "metrics", v.metrics);
}
void from_json(const json& j, AnalysisSpec& v) {
  Optional(j, "interval", v.interval);
  Optional(j, "failureThreshold", v.failure_threshold);
  Optional(j, "minRequests", v.min_requests);
  Optional(j, "noDataPolicy", v.no_data_policy);
  Optional(j, "prometheus", v.prometheus);
  OptionalList(j, "metrics", v.metrics);
}

void to_json(json& j, const CanarySpec& v) {
  j = json::object();
  Put(j, "steps", v.steps);
  Put(j, "analysis", v.analysis);
}
void from_json(const json& j, CanarySpec& v) {
  OptionalList(j, "steps", v.steps);
  Optional(j, "analysis", v.analysis);
}

void to_json(json& j, const RollingSpec& v) {
  j = json::object();
  Put(j, "maxSurge", v.max_surge);
  Put(j, "maxUnavailable", v.max_unavailable);
}
void from_json(const json& j, RollingSpec& v) {
  Optional(j, "maxSurge", v.max_surge);
  Optional(j, "maxUnavailable", v.max_unavailable);
}

void to_json(json& j, const RolloutSpec& v) {
  j = json::object();
  Put(j, "strategy", v.strategy);
  Put(j, "canary", v.canary);
  Put(j, "rolling", v.rolling);
  Put(j, "progressDeadline", v.progress_deadline);
  Put(j, "scaleDownDelay", v.scale_down_delay);
}
void from_json(const json& j, RolloutSpec& v) {
  Optional(j, "strategy", v.strategy);
  Optional(j, "canary", v.canary);
  Optional(j, "rolling", v.rolling);
  Optional(j, "progressDeadline", v.progress_deadline);
  Optional(j, "scaleDownDelay", v.scale_down_delay);
}

void to_json(json& j, const MirrorSpec& v) {
  j = json{{"percent", v.percent}};
}
void from_json(const json& j, MirrorSpec& v) {
  Required(j, "percent", v.percent);
}

void to_json(json& j, const StickySpec& v) {
  j = json{{"header", v.header}};
}
void from_json(const json& j, StickySpec& v) {
  Required(j, "header", v.header);
}

void to_json(json& j, const TrafficSpec& v) {
  j = json::object();
  Put(j, "router", v.router);
  Put(j, "mirror", v.mirror);
  Put(j, "sticky", v.sticky);
  Put(j, "retryOnStable", v.retry_on_stable);
}
void from_json(const json& j, TrafficSpec& v) {
  Optional(j, "router", v.router);
  Optional(j, "mirror", v.mirror);
  Optional(j, "sticky", v.sticky);
  Optional(j, "retryOnStable", v.retry_on_stable);
}

void to_json(json& j, const TlsSpec& v) {
  j = json{{"secretName", v.secret_name}};
}
void from_json(const json& j, TlsSpec& v) {
  Required(j, "secretName", v.secret_name);
}

void to_json(json& j, const ModelDeploymentSpec& v) {
  j = json::object();
  j["model"] = v.model;
  Put(j, "runtime", v.runtime);
  Put(j, "features", v.features);
  Put(j, "replicas", v.replicas);
  Put(j, "autoscaling", v.autoscaling);
  Put(j, "rollout", v.rollout);
  Put(j, "traffic", v.traffic);
  Put(j, "tls", v.tls);
}
void from_json(const json& j, ModelDeploymentSpec& v) {
  Required(j, "model", v.model);
  Optional(j, "runtime", v.runtime);
  OptionalList(j, "features", v.features);
  Optional(j, "replicas", v.replicas);
  Optional(j, "autoscaling", v.autoscaling);
  Optional(j, "rollout", v.rollout);
  Optional(j, "traffic", v.traffic);
  Optional(j, "tls", v.tls);
}

// --- status ---

void to_json(json& j, const Phase& v) {
  j = std::string(PhaseName(v));
}
void from_json(const json& j, Phase& v) {
  const std::string s = j.get<std::string>();
  for (Phase p : {Phase::kProgressing, Phase::kHealthy, Phase::kPaused, Phase::kDegraded,
                  Phase::kRolledBack}) {
    if (s == PhaseName(p)) {
      v = p;
      return;
    }
  }
  throw std::invalid_argument("unknown phase \"" + s + "\"");
}

void to_json(json& j, const Condition& v) {
  j = json::object();
  j["type"] = v.type;
  j["status"] = v.status;
  Put(j, "observedGeneration", v.observed_generation);
  j["lastTransitionTime"] = FormatTime(v.last_transition_time);
  j["reason"] = v.reason;
  j["message"] = v.message;
}
void from_json(const json& j, Condition& v) {
  Required(j, "type", v.type);
  Required(j, "status", v.status);
  Optional(j, "observedGeneration", v.observed_generation);
  std::optional<WallTime> t;
  GetTime(j, "lastTransitionTime", t);
  v.last_transition_time = t.value_or(WallTime{});
  std::optional<std::string> reason, message;
  Optional(j, "reason", reason);
  Optional(j, "message", message);
  v.reason = reason.value_or("");
  v.message = message.value_or("");
}

void to_json(json& j, const RevisionStatus& v) {
  j = json::object();
  j["name"] = v.name;
  Put(j, "modelVersion", v.model_version);
  Put(j, "modelUri", v.model_uri);
  Put(j, "replicas", v.replicas);
  Put(j, "readyReplicas", v.ready_replicas);
  PutTime(j, "scaleDownTime", v.scale_down_time);
}
void from_json(const json& j, RevisionStatus& v) {
  Required(j, "name", v.name);
  Optional(j, "modelVersion", v.model_version);
  Optional(j, "modelUri", v.model_uri);
  Optional(j, "replicas", v.replicas);
  Optional(j, "readyReplicas", v.ready_replicas);
  GetTime(j, "scaleDownTime", v.scale_down_time);
}

void to_json(json& j, const TrafficTarget& v) {
  j = json::object();
  j["revision"] = v.revision;
  j["weight"] = v.weight;
  Put(j, "mirrorPercent", v.mirror_percent);
}
void from_json(const json& j, TrafficTarget& v) {
  Required(j, "revision", v.revision);
  Required(j, "weight", v.weight);
  Optional(j, "mirrorPercent", v.mirror_percent);
}

void to_json(json& j, const AnalysisStatus& v) {
  j = json::object();
  PutTime(j, "time", v.time);
  Put(j, "verdict", v.verdict);
  Put(j, "values", v.values);
  Put(j, "requests", v.requests);
  Put(j, "consecutiveFailures", v.consecutive_failures);
  Put(j, "message", v.message);
}
void from_json(const json& j, AnalysisStatus& v) {
  GetTime(j, "time", v.time);
  Optional(j, "verdict", v.verdict);
  Optional(j, "values", v.values);
  Optional(j, "requests", v.requests);
  Optional(j, "consecutiveFailures", v.consecutive_failures);
  Optional(j, "message", v.message);
}

void to_json(json& j, const HistoryEntry& v) {
  j = json::object();
  j["revision"] = v.revision;
  Put(j, "modelVersion", v.model_version);
  j["result"] = v.result;
  Put(j, "reason", v.reason);
  Put(j, "message", v.message);
  j["time"] = FormatTime(v.time);
}
void from_json(const json& j, HistoryEntry& v) {
  Required(j, "revision", v.revision);
  Optional(j, "modelVersion", v.model_version);
  Required(j, "result", v.result);
  Optional(j, "reason", v.reason);
  Optional(j, "message", v.message);
  std::optional<WallTime> t;
  GetTime(j, "time", t);
  v.time = t.value_or(WallTime{});
}

void to_json(json& j, const ModelDeploymentStatus& v) {
  j = json::object();
  Put(j, "observedGeneration", v.observed_generation);
  Put(j, "phase", v.phase);
  Put(j, "stableRevision", v.stable_revision);
  Put(j, "canaryRevision", v.canary_revision);
  Put(j, "canaryWeight", v.canary_weight);
  if (!v.revisions.empty()) j["revisions"] = v.revisions;
  if (!v.traffic.empty()) j["traffic"] = v.traffic;
  Put(j, "currentStep", v.current_step);
  PutTime(j, "currentStepStartTime", v.current_step_start_time);
  PutTime(j, "lastProgressTime", v.last_progress_time);
  Put(j, "lastAnalysis", v.last_analysis);
  Put(j, "replicas", v.replicas);
  Put(j, "readyReplicas", v.ready_replicas);
  Put(j, "selector", v.selector);
  Put(j, "model", v.model);
  if (!v.conditions.empty()) j["conditions"] = v.conditions;
  if (!v.history.empty()) j["history"] = v.history;
}
void from_json(const json& j, ModelDeploymentStatus& v) {
  Optional(j, "observedGeneration", v.observed_generation);
  Optional(j, "phase", v.phase);
  Optional(j, "stableRevision", v.stable_revision);
  Optional(j, "canaryRevision", v.canary_revision);
  Optional(j, "canaryWeight", v.canary_weight);
  List(j, "revisions", v.revisions);
  List(j, "traffic", v.traffic);
  Optional(j, "currentStep", v.current_step);
  GetTime(j, "currentStepStartTime", v.current_step_start_time);
  GetTime(j, "lastProgressTime", v.last_progress_time);
  Optional(j, "lastAnalysis", v.last_analysis);
  Optional(j, "replicas", v.replicas);
  Optional(j, "readyReplicas", v.ready_replicas);
  Optional(j, "selector", v.selector);
  Optional(j, "model", v.model);
  List(j, "conditions", v.conditions);
  List(j, "history", v.history);
}

void to_json(json& j, const ModelDeployment& v) {
  j = json::object();
  j["apiVersion"] = kApiVersion;
  j["kind"] = kKind;
  j["metadata"] = v.metadata;
  j["spec"] = v.spec;
  Put(j, "status", v.status);
}
void from_json(const json& j, ModelDeployment& v) {
  RequireObject(j);
  auto m = j.find("metadata");
  v.metadata = m != j.end() && m->is_object() ? *m : json::object();
  Required(j, "spec", v.spec);
  Optional(j, "status", v.status);
}

Result<ModelDeployment> ParseModelDeployment(const json& j) {
  return ParseAs<ModelDeployment>(j, "ModelDeployment");
}
Result<ModelDeploymentSpec> ParseModelDeploymentSpec(const json& j) {
  return ParseAs<ModelDeploymentSpec>(j, "spec");
}
Result<ModelDeploymentStatus> ParseModelDeploymentStatus(const json& j) {
  return ParseAs<ModelDeploymentStatus>(j, "status");
}
json ToJson(const ModelDeployment& md) {
  return md;
}

}  // namespace sluice::controllers
