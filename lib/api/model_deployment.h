#pragma once

// The typed view of the ModelDeployment custom resource (sluice.dev/v1alpha1). Field names and
// JSON names follow crds/sluice.dev_modeldeployments.yaml exactly; every optional field of the
// schema is a std::optional (or an empty container) here, so absent stays absent and an object
// survives a parse → serialize round trip unchanged. Defaults are the API server's job (the CRD
// declares them); code that needs a value with its default applied goes through the Resolve*
// functions of the rollout, analysis and autoscaler modules.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/api/time.h"
#include "lib/base/status.h"

namespace sluice::controllers {

// An int-or-string field holding a count or a percent ("25%").
struct IntOrPercent {
  int32_t value = 0;
  bool percent = false;

  // Percent values are value% of `total`, rounded up or down; counts are returned as they are.
  int32_t Resolve(int32_t total, bool round_up) const;
  friend bool operator==(const IntOrPercent&, const IntOrPercent&) = default;
};

struct SecretReference {
  std::string name;
};

// spec.model.credentials: a Secret in the ModelDeployment's namespace whose keys the serving
// pods get as environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, MLFLOW_TRACKING_TOKEN; each optional), and whose MLFLOW_TRACKING_TOKEN the
// operator sends to the model registry.
struct ModelCredentials {
  std::optional<SecretReference> secret_ref;
};

// spec.model.s3: how s3:// locations are reached (the model URI's, or a registry's artifacts).
struct S3Spec {
  std::optional<std::string> endpoint;          // empty: AWS
  std::optional<std::string> region;            // empty: the pod's AWS_REGION, else us-east-1
  std::optional<std::string> addressing_style;  // auto | path | virtual
};

// spec.model.registry: models:/ URIs only.
struct RegistrySpec {
  std::optional<std::string> tracking_uri;   // absent: the operator's --mlflow-tracking-uri
  std::optional<bool> follow;                // default true: roll out where an alias/stage moves
  std::optional<std::string> poll_interval;  // default 30s
};

struct ModelSpec {
  std::string uri;
  // auto | xgboost-json | xgboost-ubj in the API; the operator itself writes "mlflow" into a
  // revision resolved from a registry (an MLflow model folder, whose MLmodel names the file).
  std::optional<std::string> format;
  std::optional<std::string> version;
  std::optional<std::string> sha256;
  std::optional<ModelCredentials> credentials;
  std::optional<S3Spec> s3;
  std::optional<RegistrySpec> registry;
};

struct BatchingSpec {
  std::optional<int32_t> max_batch_size;
  std::optional<std::string> max_queue_delay;
  std::optional<int32_t> max_queue_size;
};

struct CacheSpec {
  std::optional<bool> enabled;
  std::optional<int32_t> capacity;
  std::optional<std::string> ttl;
};

struct RuntimeSpec {
  std::optional<std::string> image;
  // Kubernetes core shapes (ResourceRequirements, []EnvVar) are kept as JSON: the operator copies
  // them into the pod template as they are.
  std::optional<nlohmann::json> resources;
  std::optional<BatchingSpec> batching;
  std::optional<CacheSpec> cache;
  std::optional<nlohmann::json> env;
  std::optional<std::vector<std::string>> args;
  std::optional<std::string> feature_budget;  // a duration; spec.features only
};

struct FeatureRef {
  std::string name;
  std::optional<std::vector<std::string>> features;
};

struct AutoscalingSpec {
  std::optional<int32_t> min_replicas;
  int32_t max_replicas = 1;
  std::optional<int32_t> target_concurrency;
  std::optional<std::string> mode;  // Concurrency | HPA
  std::optional<std::string> stable_window;
  std::optional<std::string> panic_window;
  std::optional<std::string> scale_down_delay;
};

struct CanaryStep {
  int32_t weight = 0;
  std::optional<std::string> pause;  // absent: wait for sluice.dev/promote
};

struct ThresholdRange {
  std::optional<double> min;
  std::optional<double> max;
};

struct AnalysisMetricSpec {
  std::string name;
  std::optional<std::string> builtin;  // errorRate | latencyP99
  std::optional<std::string> query;
  ThresholdRange threshold_range;
};

struct PrometheusSpec {
  std::string address;
};

struct AnalysisSpec {
  std::optional<std::string> interval;
  std::optional<int32_t> failure_threshold;
  std::optional<int32_t> min_requests;
  std::optional<std::string> no_data_policy;  // Pause | Fail | Pass
  std::optional<PrometheusSpec> prometheus;
  std::optional<std::vector<AnalysisMetricSpec>> metrics;
};

struct CanarySpec {
  std::optional<std::vector<CanaryStep>> steps;
  std::optional<AnalysisSpec> analysis;
};

struct RollingSpec {
  std::optional<IntOrPercent> max_surge;
  std::optional<IntOrPercent> max_unavailable;
};

struct RolloutSpec {
  std::optional<std::string> strategy;  // Canary | Rolling
  std::optional<CanarySpec> canary;
  std::optional<RollingSpec> rolling;
  std::optional<std::string> progress_deadline;
  std::optional<std::string> scale_down_delay;
};

struct MirrorSpec {
  int32_t percent = 0;
};

struct StickySpec {
  std::string header;
};

struct TrafficSpec {
  std::optional<std::string> router;  // Builtin | GatewayAPI
  std::optional<MirrorSpec> mirror;
  std::optional<StickySpec> sticky;
  // Default true: a request the canary fails (5xx, no answer, timeout) is sent once more to the
  // stable revision within the caller's deadline (see lib/api/canary_protection.h).
  std::optional<bool> retry_on_stable;
};

// spec.tls: the data plane serves TLS with the certificate of a kubernetes.io/tls Secret (tls.crt,
// tls.key, optional ca.crt) in the ModelDeployment's namespace, mounted into the server and router
// pods and followed when it changes.
struct TlsSpec {
  std::string secret_name;
};

struct ModelDeploymentSpec {
  ModelSpec model;
  std::optional<RuntimeSpec> runtime;
  std::optional<std::vector<FeatureRef>> features;
  std::optional<int32_t> replicas;
  std::optional<AutoscalingSpec> autoscaling;
  std::optional<RolloutSpec> rollout;
  std::optional<TrafficSpec> traffic;
  std::optional<TlsSpec> tls;
};

// --- status ---

enum class Phase { kProgressing, kHealthy, kPaused, kDegraded, kRolledBack };
std::string_view PhaseName(Phase p);

// metav1.Condition.
struct Condition {
  std::string type;
  std::string status;  // "True" | "False" | "Unknown"
  std::optional<int64_t> observed_generation;
  WallTime last_transition_time;
  std::string reason;
  std::string message;
};

struct RevisionStatus {
  std::string name;
  std::optional<std::string> model_version;
  std::optional<std::string> model_uri;
  std::optional<int32_t> replicas;
  std::optional<int32_t> ready_replicas;
  // Set on a revision that no longer takes traffic but keeps its pods for a while (the previous
  // stable after a promotion, a rolled-back canary): when they go.
  std::optional<WallTime> scale_down_time;
};

struct TrafficTarget {
  std::string revision;
  int32_t weight = 0;
  std::optional<int32_t> mirror_percent;
};

struct AnalysisStatus {
  std::optional<WallTime> time;
  std::optional<std::string> verdict;  // Pass | Fail | NoData
  std::optional<std::map<std::string, double>> values;
  std::optional<int64_t> requests;
  std::optional<int32_t> consecutive_failures;
  std::optional<std::string> message;
};

// status.model: what a models:/ URI resolved to, and the registry version last refused.
struct ModelSourceStatus {
  std::optional<std::string> uri;      // the spec.model.uri this resolution is for
  std::optional<std::string> version;  // the registry's version number
  std::optional<std::string> source;   // where that version's artifacts are
  std::optional<WallTime> resolved_time;
  // A registry version whose canary was rolled back; it is not rolled out again until the
  // registry names another version (or sluice.dev/retry).
  std::optional<std::string> refused_version;
  std::optional<std::string> refused_reason;
};

// One finished rollout in status.history: how a revision's rollout ended.
struct HistoryEntry {
  std::string revision;
  std::optional<std::string> model_version;
  // Deployed (a first revision became stable), Promoted, RolledBack (analysis failed), Aborted
  // (sluice.dev/abort), Superseded (a newer spec replaced the canary) or Reverted (the spec went
  // back to the stable revision).
  std::string result;
  std::optional<std::string> reason;   // the machine-readable cause, e.g. AnalysisFailed
  std::optional<std::string> message;  // what a person reads
  WallTime time;                       // when the rollout ended
};

// status.history keeps this many entries, the oldest dropped first.
inline constexpr size_t kMaxHistory = 10;

struct ModelDeploymentStatus {
  std::optional<int64_t> observed_generation;
  std::optional<Phase> phase;
  std::optional<std::string> stable_revision;
  std::optional<std::string> canary_revision;
  std::optional<int32_t> canary_weight;
  std::vector<RevisionStatus> revisions;
  std::vector<TrafficTarget> traffic;
  std::optional<int32_t> current_step;
  std::optional<WallTime> current_step_start_time;
  // When the rollout last moved forward (a step or rollout began, or another pod of the revision
  // being rolled out became Ready); progressDeadline counts from here while it waits for pods.
  std::optional<WallTime> last_progress_time;
  std::optional<AnalysisStatus> last_analysis;
  std::optional<int32_t> replicas;
  std::optional<int32_t> ready_replicas;
  std::optional<std::string> selector;
  std::optional<ModelSourceStatus> model;
  std::vector<Condition> conditions;
  // Finished rollouts, oldest first, at most kMaxHistory.
  std::vector<HistoryEntry> history;

  const Condition* FindCondition(std::string_view type) const;
  const RevisionStatus* FindRevision(std::string_view name) const;
};

struct ModelDeployment {
  nlohmann::json metadata = nlohmann::json::object();  // metav1.ObjectMeta, kept whole
  ModelDeploymentSpec spec;
  std::optional<ModelDeploymentStatus> status;

  std::string Name() const;
  std::string Namespace() const;
  int64_t Generation() const;
  // The value of annotation `key`, nullopt when absent.
  std::optional<std::string> Annotation(const std::string& key) const;
};

inline constexpr std::string_view kApiVersion = "sluice.dev/v1alpha1";
inline constexpr std::string_view kKind = "ModelDeployment";

// Non-throwing entry points: malformed input (a wrong JSON type, an unknown enum value, a bad
// timestamp) is InvalidArgument naming the field, never an exception.
Result<ModelDeployment> ParseModelDeployment(const nlohmann::json& j);
Result<ModelDeploymentSpec> ParseModelDeploymentSpec(const nlohmann::json& j);
Result<ModelDeploymentStatus> ParseModelDeploymentStatus(const nlohmann::json& j);
// The whole object with apiVersion and kind.
nlohmann::json ToJson(const ModelDeployment& md);

// nlohmann ADL hooks. from_json throws nlohmann::json exceptions on malformed input; use the
// Parse* functions above across module boundaries.
void to_json(nlohmann::json& j, const IntOrPercent& v);
void from_json(const nlohmann::json& j, IntOrPercent& v);
void to_json(nlohmann::json& j, const SecretReference& v);
void from_json(const nlohmann::json& j, SecretReference& v);
void to_json(nlohmann::json& j, const ModelCredentials& v);
void from_json(const nlohmann::json& j, ModelCredentials& v);
void to_json(nlohmann::json& j, const S3Spec& v);
void from_json(const nlohmann::json& j, S3Spec& v);
void to_json(nlohmann::json& j, const RegistrySpec& v);
void from_json(const nlohmann::json& j, RegistrySpec& v);
void to_json(nlohmann::json& j, const ModelSourceStatus& v);
void from_json(const nlohmann::json& j, ModelSourceStatus& v);
void to_json(nlohmann::json& j, const ModelSpec& v);
void from_json(const nlohmann::json& j, ModelSpec& v);
void to_json(nlohmann::json& j, const BatchingSpec& v);
void from_json(const nlohmann::json& j, BatchingSpec& v);
void to_json(nlohmann::json& j, const CacheSpec& v);
void from_json(const nlohmann::json& j, CacheSpec& v);
void to_json(nlohmann::json& j, const RuntimeSpec& v);
void from_json(const nlohmann::json& j, RuntimeSpec& v);
void to_json(nlohmann::json& j, const FeatureRef& v);
void from_json(const nlohmann::json& j, FeatureRef& v);
void to_json(nlohmann::json& j, const AutoscalingSpec& v);
void from_json(const nlohmann::json& j, AutoscalingSpec& v);
void to_json(nlohmann::json& j, const CanaryStep& v);
void from_json(const nlohmann::json& j, CanaryStep& v);
void to_json(nlohmann::json& j, const ThresholdRange& v);
void from_json(const nlohmann::json& j, ThresholdRange& v);
void to_json(nlohmann::json& j, const AnalysisMetricSpec& v);
void from_json(const nlohmann::json& j, AnalysisMetricSpec& v);
void to_json(nlohmann::json& j, const PrometheusSpec& v);
void from_json(const nlohmann::json& j, PrometheusSpec& v);
void to_json(nlohmann::json& j, const AnalysisSpec& v);
void from_json(const nlohmann::json& j, AnalysisSpec& v);
void to_json(nlohmann::json& j, const CanarySpec& v);
void from_json(const nlohmann::json& j, CanarySpec& v);
void to_json(nlohmann::json& j, const RollingSpec& v);
void from_json(const nlohmann::json& j, RollingSpec& v);
void to_json(nlohmann::json& j, const RolloutSpec& v);
void from_json(const nlohmann::json& j, RolloutSpec& v);
void to_json(nlohmann::json& j, const MirrorSpec& v);
void from_json(const nlohmann::json& j, MirrorSpec& v);
void to_json(nlohmann::json& j, const StickySpec& v);
void from_json(const nlohmann::json& j, StickySpec& v);
void to_json(nlohmann::json& j, const TrafficSpec& v);
void from_json(const nlohmann::json& j, TrafficSpec& v);
void to_json(nlohmann::json& j, const TlsSpec& v);
void from_json(const nlohmann::json& j, TlsSpec& v);
void to_json(nlohmann::json& j, const ModelDeploymentSpec& v);
void from_json(const nlohmann::json& j, ModelDeploymentSpec& v);
void to_json(nlohmann::json& j, const Phase& v);
void from_json(const nlohmann::json& j, Phase& v);
void to_json(nlohmann::json& j, const Condition& v);
void from_json(const nlohmann::json& j, Condition& v);
void to_json(nlohmann::json& j, const RevisionStatus& v);
void from_json(const nlohmann::json& j, RevisionStatus& v);
void to_json(nlohmann::json& j, const TrafficTarget& v);
void from_json(const nlohmann::json& j, TrafficTarget& v);
void to_json(nlohmann::json& j, const AnalysisStatus& v);
void from_json(const nlohmann::json& j, AnalysisStatus& v);
void to_json(nlohmann::json& j, const HistoryEntry& v);
void from_json(const nlohmann::json& j, HistoryEntry& v);
void to_json(nlohmann::json& j, const ModelDeploymentStatus& v);
void from_json(const nlohmann::json& j, ModelDeploymentStatus& v);
void to_json(nlohmann::json& j, const ModelDeployment& v);
void from_json(const nlohmann::json& j, ModelDeployment& v);

}  // namespace sluice::controllers
