#include "controllers/modeldeployment/resources.h"

#include <algorithm>

#include "lib/api/feature_view.h"
#include "lib/api/object_labels.h"
#include "lib/base/duration.h"
#include "lib/controller/object_io.h"

namespace sluice::controllers {

using nlohmann::json;

const kube::GroupVersionResource kRolesGvr{"rbac.authorization.k8s.io", "v1", "roles", true,
                                           "Role"};
const kube::GroupVersionResource kRoleBindingsGvr{"rbac.authorization.k8s.io", "v1", "rolebindings",
                                                  true, "RoleBinding"};

namespace {

json CommonLabels(const std::string& md_name, const char* component) {
  return {{api::kLabelName, api::kNameValue},
          {api::kLabelInstance, md_name},
          {api::kLabelManagedBy, api::kManagedByValue},
          {api::kLabelComponent, component},
          {api::kLabelModelDeployment, md_name}};
}

json Metadata(const ModelDeploymentObject& owner, const std::string& name, json labels) {
  return {{"name", name},
          {"namespace", owner.md.Namespace()},
          {"labels", std::move(labels)},
          {"ownerReferences", json::array({OwnerReference(owner)})}};
}

json RestrictedContainerSecurity() {
  return {{"allowPrivilegeEscalation", false},
          {"readOnlyRootFilesystem", true},
          {"runAsNonRoot", true},
          {"capabilities", {{"drop", json::array({"ALL"})}}}};
}

json PodSecurity(const WorkloadOptions& options) {
  return {{"runAsNonRoot", true},
          {"runAsUser", options.run_as_user},
          {"runAsGroup", options.run_as_user},
          {"fsGroup", options.run_as_user},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

std::string ServerImage(const ModelDeploymentSpec& spec, const WorkloadOptions& options) {
  if (spec.runtime && spec.runtime->image && !spec.runtime->image->empty()) {
    return *spec.runtime->image;
  }
  return options.server_image;
}

}  // namespace

std::string DefaultServerImage() {
  return std::string("ghcr.io/sluice-dev/sluice-dataplane:") + SLUICE_PROJECT_VERSION;
}

json OwnerReference(const ModelDeploymentObject& owner) {
  return {{"apiVersion", std::string(kApiVersion)},
          {"kind", std::string(kKind)},
          {"name", owner.md.Name()},
          {"uid", owner.uid},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

std::string ServerPodSelector(const std::string& md_name) {
  return std::string(api::kLabelModelDeployment) + "=" + md_name + "," + api::kLabelComponent +
         "=server";
}

std::string PodTrouble(const json& pod) {
  const json* statuses = JsonAt(pod, {"status", "containerStatuses"});
  if (statuses == nullptr || !statuses->is_array()) return {};
  for (const auto& c : *statuses) {
    const std::string waiting = StringAt(c, {"state", "waiting", "reason"});
    const json* last = JsonAt(c, {"lastState", "terminated"});
    const bool failed_before = last != nullptr && last->value("exitCode", 0) != 0;
    if (waiting.empty() || waiting == "ContainerCreating" || waiting == "PodInitializing") {
      if (!failed_before || c.value("ready", false)) continue;
    }
    std::string why = last != nullptr ? last->value("message", "") : "";
    // The last line of a log tail; a JSON log line's "msg".
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    if (auto nl = why.rfind('\n'); nl != std::string::npos) why = why.substr(nl + 1);
    if (!why.empty() && why.front() == '{') {
      json line = json::parse(why, nullptr, false);
      if (line.is_object() && line.contains("msg") && line["msg"].is_string()) why = line["msg"];
    }
    if (why.empty()) why = StringAt(c, {"state", "waiting", "message"});
    if (why.size() > 512) why = why.substr(0, 509) + "...";
    std::string out = "pod " + MetaString(pod, "name") + ": " +
                      (waiting.empty() ? std::string("restarting") : waiting);
    if (last != nullptr) out += " (exit " + std::to_string(last->value("exitCode", 0)) + ")";
    if (!why.empty()) out += ": " + why;
    return out;
  }
  return {};
}

bool IsRemoteModel(const ModelSpec& model) {
  return !model.uri.starts_with("file://") && model.uri.find("://") != std::string::npos;
}

json ModelCredentialsEnv(const ModelSpec& model) {
  json env = json::array();
  if (!model.credentials || !model.credentials->secret_ref) return env;
  for (const char* key : kModelCredentialKeys) {
    // Each key optional: a Secret for S3 has no token, one for a registry's proxy no AWS keys.
    env.push_back(
        {{"name", key},
         {"valueFrom",
          {{"secretKeyRef",
            {{"name", model.credentials->secret_ref->name}, {"key", key}, {"optional", true}}}}}});
  }
  return env;
}

namespace {

std::string TlsPath(const char* file) {
  return std::string(kTlsDir) + "/" + file;
}

// The Secret of spec.tls, read-only; group-readable by the pod's fsGroup only.
json TlsVolume(const std::string& secret_name) {
  return {{"name", "tls"}, {"secret", {{"secretName", secret_name}, {"defaultMode", 0440}}}};
}
json TlsVolumeMount() {
  return {{"name", "tls"}, {"mountPath", std::string(kTlsDir)}, {"readOnly", true}};
}

// Kubelet probes over HTTPS do not verify the certificate; they only need the scheme.
void UseHttpsProbes(json& container) {
  for (const char* probe : {"readinessProbe", "livenessProbe", "startupProbe"}) {
    if (container.contains(probe)) container[probe]["httpGet"]["scheme"] = "HTTPS";
  }
}

}  // namespace

Result<TlsSecretInfo> CheckTlsSecret(SecretReader& secrets, const std::string& ns,
                                     const std::string& name) {
  auto secret = secrets.GetSecret(ns, name);
  if (!secret.ok()) {
    return Status(secret.status().code(), "spec.tls.secretName: Secret " + ns + "/" + name + ": " +
                                              secret.status().message());
  }
  for (const char* key : {"tls.crt", "tls.key"}) {
    if (!SecretValue(*secret, key).ok()) {
      return InvalidArgument("spec.tls.secretName: Secret " + ns + "/" + name + " has no " + key);
    }
  }
  return TlsSecretInfo{name, SecretValue(*secret, "ca.crt").ok()};
}

Result<api::ServerCommand> ServerCommandFor(const std::string& md_name,
                                            const ModelDeploymentSpec& spec,
                                            const WorkloadOptions& options) {
  api::ServerCommand c;
  c.model_name = md_name;
  c.model_uri = spec.model.uri;
  c.model_format = spec.model.format;
  c.model_version = spec.model.version;
  c.model_sha256 = spec.model.sha256;
  if (IsRemoteModel(spec.model)) c.model_dir = std::string(kModelDir);
  if (const auto& s3 = spec.model.s3) {
    c.s3_endpoint = s3->endpoint;
    c.s3_region = s3->region;
    c.s3_addressing_style = s3->addressing_style;
  }
  if (spec.model.registry) c.mlflow_tracking_uri = spec.model.registry->tracking_uri;
  c.http_port = options.server_http_port;
  c.grpc_port = options.server_grpc_port;
  c.log_format = options.log_format;
  if (spec.tls) {
    c.tls_cert_file = TlsPath("tls.crt");
    c.tls_key_file = TlsPath("tls.key");
    c.admin_port = options.server_admin_port;
  }
  const RuntimeSpec runtime = spec.runtime.value_or(RuntimeSpec{});
  // The CRD: absent batching evaluates every request on its own; absent cache means no cache.
  c.batching = runtime.batching.has_value();
  if (const auto& b = runtime.batching) {
    c.max_batch_size = b->max_batch_size;
    if (b->max_queue_delay) {
      auto delay = ParseGoDuration(*b->max_queue_delay);
      if (!delay.ok()) return delay.status().Annotate("spec.runtime.batching.maxQueueDelay");
      c.max_queue_delay = std::chrono::duration_cast<std::chrono::microseconds>(*delay);
    }
    c.max_queue_size = b->max_queue_size;
  }
  c.cache = runtime.cache.has_value() && runtime.cache->enabled.value_or(true);
  if (runtime.cache && *c.cache) {
    c.cache_capacity = runtime.cache->capacity;
    if (runtime.cache->ttl) {
      auto ttl = ParseGoDuration(*runtime.cache->ttl);
      if (!ttl.ok()) return ttl.status().Annotate("spec.runtime.cache.ttl");
      c.cache_ttl = std::chrono::duration_cast<std::chrono::milliseconds>(*ttl);
    }
  }
  if (runtime.feature_budget) {
    auto budget = ParseGoDuration(*runtime.feature_budget);
    if (!budget.ok()) return budget.status().Annotate("spec.runtime.featureBudget");
    c.feature_budget = std::chrono::duration_cast<std::chrono::microseconds>(*budget);
  }
  c.extra_args = runtime.args.value_or(std::vector<std::string>{});
  return c;
}

std::string RevisionFeatures::Key() const {
  if (feature_views.empty()) return {};
  return ToJson().dump();
}

json RevisionFeatures::ToJson() const {
  return {{"views", feature_views}, {"env", env}};
}

RevisionFeatures RevisionFeatures::FromJson(const json& j) {
  RevisionFeatures f;
  if (!j.is_object()) return f;
  if (auto v = j.find("views"); v != j.end() && v->is_string()) f.feature_views = *v;
  if (auto e = j.find("env"); e != j.end() && e->is_array()) f.env = *e;
  return f;
}

Result<RevisionFeatures> ResolveFeatures(const ModelDeploymentSpec& spec,
                                         const std::function<ObjectPtr(const std::string&)>& find) {
  RevisionFeatures out;
  if (!spec.features || spec.features->empty()) return out;
  std::vector<api::FeatureViewConfig> views;
  for (size_t i = 0; i < spec.features->size(); ++i) {
    const FeatureRef& ref = (*spec.features)[i];
    const std::string where = "spec.features[" + std::to_string(i) + "]";
    ObjectPtr fv = find(ref.name);
    if (fv == nullptr) {
      return NotFound(where + ": FeatureView " + ref.name +
                      " does not exist in the ModelDeployment's namespace");
    }
    const std::string env = api::RedisConnectionEnv(i);
    auto config = api::FeatureViewConfig::FromResource(
        *fv, env, ref.features.value_or(std::vector<std::string>{}), /*with_source=*/false);
    if (!config.ok()) return InvalidArgument(where + ": " + config.status().message());
    for (const auto& f : config->features) {
      if (f.type == api::FeastType::kString || f.type == api::FeastType::kBytes) {
        return InvalidArgument(where + ": feature " + f.name + " of FeatureView " + ref.name +
                               " is " + std::string(api::FeastTypeName(f.type)) +
                               "; the model takes numbers, so select only numeric features");
      }
    }
    if (!config->redis_connection_env.empty()) {
      const json& secret_ref = (*fv)["spec"]["online"]["redis"]["addressSecretRef"];
      out.env.push_back(
          {{"name", env},
           {"valueFrom",
            {{"secretKeyRef",
              {{"name", secret_ref.value("name", "")}, {"key", secret_ref.value("key", "")}}}}}});
    }
    views.push_back(std::move(*config));
  }
  out.feature_views = api::FormatFeatureViews(views);
  return out;
}

const ObjectIndex& FeatureViewsReadIndex() {
  static const ObjectIndex kIndex{
      "feature-views-read", [](const json& md) {
        std::vector<std::string> names;
        const json* features = JsonAt(md, {"spec", "features"});
        if (features == nullptr || !features->is_array()) return names;
        for (const auto& ref : *features) {
          if (!ref.is_object()) continue;
          std::string name = ref.value("name", "");
          if (name.empty()) continue;
          if (std::find(names.begin(), names.end(), name) == names.end()) {
            names.push_back(std::move(name));
          }
        }
        return names;
      }};
  return kIndex;
}

std::vector<ObjectKey> ModelDeploymentsReading(const ObjectReader& reader, const std::string& ns,
                                               const std::string& fv_name) {
  std::vector<ObjectKey> out;
  for (const auto& md :
       reader.ListByIndex(api::kModelDeploymentsGvr, ns, FeatureViewsReadIndex(), fv_name)) {
    out.push_back(ObjectKey{MetaString(*md, "namespace"), MetaString(*md, "name")});
  }
  return out;
}

Result<json> RevisionDeployment(const ModelDeploymentObject& owner, const std::string& revision,
                                const ModelDeploymentSpec& revision_spec, int32_t replicas,
                                const WorkloadOptions& options, const RevisionFeatures& features) {
  const std::string md_name = owner.md.Name();
  ASSIGN_OR_RETURN(api::ServerCommand command, ServerCommandFor(md_name, revision_spec, options));
  if (!features.feature_views.empty()) command.feature_views = features.feature_views;
  json labels = CommonLabels(md_name, "server");
  labels[api::kLabelRevision] = revision;
  if (revision_spec.model.version) labels[api::kLabelModelVersion] = *revision_spec.model.version;

  // What the revision was built from, so the operator can re-apply it unchanged after the spec
  // has moved on to a newer revision.
  json pod_spec_source = {{"model", revision_spec.model}};
  if (revision_spec.runtime) pod_spec_source["runtime"] = *revision_spec.runtime;
  // Under a key of its own: the FeatureViews as they were resolved for this revision, which a
  // later change of a FeatureView must not alter.
  if (!features.feature_views.empty()) pod_spec_source["resolvedFeatures"] = features.ToJson();
  if (revision_spec.tls) pod_spec_source["tls"] = *revision_spec.tls;

  json container = {
      {"name", "server"},
      {"image", ServerImage(revision_spec, options)},
      {"imagePullPolicy", options.image_pull_policy},
      {"command", json::array({"sluice-server"})},
      {"args", command.ToArgs()},
      {"ports", json::array({{{"name", api::kHttpPortName},
                              {"containerPort", options.server_http_port},
                              {"protocol", "TCP"}},
                             {{"name", api::kGrpcPortName},
                              {"containerPort", options.server_grpc_port},
                              {"protocol", "TCP"}}})},
      // Ready only once the model is loaded and warmed up; a draining server reports not ready.
      {"readinessProbe",
       {{"httpGet", {{"path", "/v2/health/ready"}, {"port", "http"}}},
        {"periodSeconds", 2},
        {"failureThreshold", 2}}},
      {"livenessProbe",
       {{"httpGet", {{"path", "/v2/health/live"}, {"port", "http"}}},
        {"periodSeconds", 10},
        {"failureThreshold", 3}}},
      // Loading a large model may take minutes; liveness starts counting only after this.
      {"startupProbe",
       {{"httpGet", {{"path", "/v2/health/live"}, {"port", "http"}}},
        {"periodSeconds", 2},
        {"failureThreshold", 150}}},
      {"lifecycle", {{"preStop", {{"sleep", {{"seconds", options.drain_seconds}}}}}}},
      {"securityContext", RestrictedContainerSecurity()},
      {"volumeMounts", json::array({{{"name", "tmp"}, {"mountPath", "/tmp"}}})},
      // A server that cannot start (a model it cannot fetch or load) says why in its last log
      // line; the operator reports it from the pod's status.
      {"terminationMessagePolicy", "FallbackToLogsOnError"},
  };
  json volumes = json::array({{{"name", "tmp"}, {"emptyDir", json::object()}}});
  if (IsRemoteModel(revision_spec.model)) {
    // Fetched once per pod: a restarted container finds the file and loads it at once.
    container["volumeMounts"].push_back({{"name", "model"}, {"mountPath", std::string(kModelDir)}});
    volumes.push_back({{"name", "model"}, {"emptyDir", json::object()}});
  }
  int32_t metrics_port = options.server_http_port;
  if (revision_spec.tls) {
    // Traffic and probes over TLS; /metrics (the autoscaler's scrape, Prometheus) in plain HTTP
    // on the admin port.
    UseHttpsProbes(container);
    container["ports"].push_back({{"name", kAdminPortName},
                                  {"containerPort", options.server_admin_port},
                                  {"protocol", "TCP"}});
    container["volumeMounts"].push_back(TlsVolumeMount());
    volumes.push_back(TlsVolume(revision_spec.tls->secret_name));
    metrics_port = options.server_admin_port;
  }
  if (revision_spec.runtime && revision_spec.runtime->resources) {
    container["resources"] = *revision_spec.runtime->resources;
  }
  json env = json::array();
  if (revision_spec.runtime && revision_spec.runtime->env &&
      revision_spec.runtime->env->is_array()) {
    env = *revision_spec.runtime->env;
  }
  for (const auto& e : features.env) env.push_back(e);
  for (const auto& e : ModelCredentialsEnv(revision_spec.model)) env.push_back(e);
  if (!env.empty()) container["env"] = std::move(env);

  json pod_labels = labels;
  json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", Metadata(owner, revision, labels)},
      {"spec",
       {{"replicas", replicas},
        {"revisionHistoryLimit", 2},
        {"selector",
         {{"matchLabels",
           {{api::kLabelModelDeployment, md_name}, {api::kLabelRevision, revision}}}}},
        {"strategy",
         {{"type", "RollingUpdate"},
          {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", 0}}}}},
        {"template",
         {{"metadata",
           {{"labels", pod_labels},
            {"annotations",
             {{"prometheus.io/scrape", "true"},
              {"prometheus.io/port", std::to_string(metrics_port)},
              {"prometheus.io/path", "/metrics"}}}}},
          {"spec",
           {{"automountServiceAccountToken", false},
            {"enableServiceLinks", false},
            {"terminationGracePeriodSeconds", options.termination_grace_seconds},
            {"securityContext", PodSecurity(options)},
            {"containers", json::array({std::move(container)})},
            {"volumes", std::move(volumes)}}}}}}},
  };
  deployment["metadata"]["annotations"] = {{api::kRevisionSpecAnnotation, pod_spec_source.dump()}};
  return deployment;
}

json RevisionService(const ModelDeploymentObject& owner, const std::string& revision,
                     const WorkloadOptions& options, bool tls) {
  const std::string md_name = owner.md.Name();
  json labels = CommonLabels(md_name, "server");
  labels[api::kLabelRevision] = revision;
  json service = {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", Metadata(owner, revision, labels)},
      {"spec",
       {{"type", "ClusterIP"},
        {"clusterIP", "None"},
        {"selector", {{api::kLabelModelDeployment, md_name}, {api::kLabelRevision, revision}}},
        {"ports", json::array({{{"name", "http"},
                                {"port", options.server_http_port},
                                {"targetPort", "http"},
                                {"protocol", "TCP"}},
                               {{"name", "grpc"},
                                {"port", options.server_grpc_port},
                                {"targetPort", "grpc"},
                                {"protocol", "TCP"}}})}}},
  };
  if (tls) service["spec"]["ports"][0]["appProtocol"] = "https";
  return service;
}

void KeepAllocatedClusterIp(nlohmann::json& intent, const nlohmann::json* live) {
  if (live == nullptr) return;
  const std::string allocated = StringAt(*live, {"spec", "clusterIP"});
  if (!allocated.empty() && allocated != "None") intent["spec"].erase("clusterIP");
}

std::string RouterName(const std::string& md_name) {
  return md_name + "-router";
}

api::RouterCommand RouterCommandFor(const ModelDeploymentObject& owner,
                                    const WorkloadOptions& options,
                                    const std::optional<TlsSecretInfo>& tls) {
  api::RouterCommand c;
  c.model_deployment = owner.md.Name();
  c.ns = owner.md.Namespace();
  c.http_port = options.router_http_port;
  c.grpc_port = options.router_grpc_port;
  c.admin_port = options.router_admin_port;
  c.upstream_port = options.server_http_port;
  c.upstream_grpc_port = options.server_grpc_port;
  c.log_format = options.log_format;
  if (tls) {
    c.tls_cert_file = TlsPath("tls.crt");
    c.tls_key_file = TlsPath("tls.key");
    // Revisions that serve TLS say so in their EndpointSlices; their certificates chain to the
    // Secret's CA, else to a public one.
    if (tls->has_ca) c.upstream_ca_file = TlsPath("ca.crt");
  }
  return c;
}

json RouterDeployment(const ModelDeploymentObject& owner, const WorkloadOptions& options,
                      const std::optional<TlsSecretInfo>& tls) {
  const std::string md_name = owner.md.Name();
  const std::string name = RouterName(md_name);
  json labels = CommonLabels(md_name, "router");
  json container = {
      {"name", "router"},
      {"image", options.router_image.empty() ? options.server_image : options.router_image},
      {"imagePullPolicy", options.image_pull_policy},
      {"command", json::array({"sluice-router"})},
      {"args", RouterCommandFor(owner, options, tls).ToArgs()},
      {"ports",
       json::array(
           {{{"name", "http"}, {"containerPort", options.router_http_port}, {"protocol", "TCP"}},
            {{"name", "grpc"}, {"containerPort", options.router_grpc_port}, {"protocol", "TCP"}},
            {{"name", api::kAdminPortName},
             {"containerPort", options.router_admin_port},
             {"protocol", "TCP"}}})},
      // Probes go to the traffic port: ready means the port clients use accepts and answers.
      {"readinessProbe",
       {{"httpGet", {{"path", "/readyz"}, {"port", "http"}}}, {"periodSeconds", 2}}},
      {"livenessProbe",
       {{"httpGet", {{"path", "/healthz"}, {"port", "http"}}}, {"periodSeconds", 10}}},
      {"lifecycle", {{"preStop", {{"sleep", {{"seconds", options.drain_seconds}}}}}}},
      {"securityContext", RestrictedContainerSecurity()},
  };
  json pod_spec = {{"serviceAccountName", name},
                   {"enableServiceLinks", false},
                   {"terminationGracePeriodSeconds", options.termination_grace_seconds},
                   {"securityContext", PodSecurity(options)}};
  if (tls) {
    UseHttpsProbes(container);
    container["volumeMounts"] = json::array({TlsVolumeMount()});
    pod_spec["volumes"] = json::array({TlsVolume(tls->secret_name)});
  }
  pod_spec["containers"] = json::array({std::move(container)});
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", Metadata(owner, name, labels)},
      {"spec",
       {{"replicas", options.router_replicas},
        {"revisionHistoryLimit", 2},
        {"selector",
         {{"matchLabels",
           {{api::kLabelModelDeployment, md_name}, {api::kLabelComponent, "router"}}}}},
        {"template",
         {{"metadata",
           {{"labels", labels},
            // Metrics on the admin port, never the traffic port.
            {"annotations",
             {{"prometheus.io/scrape", "true"},
              {"prometheus.io/port", std::to_string(options.router_admin_port)},
              {"prometheus.io/path", "/metrics"}}}}},
          {"spec", std::move(pod_spec)}}}}},
  };
}

json RouterService(const ModelDeploymentObject& owner, const WorkloadOptions& options,
                   const std::optional<TlsSecretInfo>& tls) {
  const std::string md_name = owner.md.Name();
  json service = {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", Metadata(owner, md_name, CommonLabels(md_name, "router"))},
      {"spec",
       {{"type", "ClusterIP"},
        {"selector", {{api::kLabelModelDeployment, md_name}, {api::kLabelComponent, "router"}}},
        {"ports",
         json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "http"}, {"protocol", "TCP"}},
                      {{"name", "grpc"},
                       {"port", options.router_grpc_port},
                       {"targetPort", "grpc"},
                       {"protocol", "TCP"},
                       {"appProtocol", "kubernetes.io/h2c"}}})}}},
  };
  if (tls) {
    service["spec"]["ports"][0]["appProtocol"] = "https";
    service["spec"]["ports"][1]["appProtocol"] = "grpc";  // HTTP/2 over TLS, not h2c
  }
  return service;
}

json RouterServiceAccount(const ModelDeploymentObject& owner) {
  const std::string md_name = owner.md.Name();
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata", Metadata(owner, RouterName(md_name), CommonLabels(md_name, "router"))}};
}

json RouterRole(const ModelDeploymentObject& owner) {
  const std::string md_name = owner.md.Name();
  // Read access to this one ModelDeployment (the router follows its status.traffic) and to the
  // EndpointSlices of its namespace (to reach the revisions' pods). The router only lists and
  // watches (informers, the ModelDeployment by field selector); the operator's own rules must
  // hold every verb granted here (charts/sluice/templates/rbac.yaml).
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "Role"},
          {"metadata", Metadata(owner, RouterName(md_name), CommonLabels(md_name, "router"))},
          {"rules", json::array({{{"apiGroups", json::array({"sluice.dev"})},
                                  {"resources", json::array({"modeldeployments"})},
                                  {"resourceNames", json::array({md_name})},
                                  {"verbs", json::array({"list", "watch"})}},
                                 {{"apiGroups", json::array({"discovery.k8s.io"})},
                                  {"resources", json::array({"endpointslices"})},
                                  {"verbs", json::array({"list", "watch"})}}})}};
}

json RouterRoleBinding(const ModelDeploymentObject& owner) {
  const std::string md_name = owner.md.Name();
  const std::string name = RouterName(md_name);
  return {
      {"apiVersion", "rbac.authorization.k8s.io/v1"},
      {"kind", "RoleBinding"},
      {"metadata", Metadata(owner, name, CommonLabels(md_name, "router"))},
      {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}}},
      {"subjects",
       json::array(
           {{{"kind", "ServiceAccount"}, {"name", name}, {"namespace", owner.md.Namespace()}}})}};
}

Result<ModelDeploymentSpec> RevisionSpecFromDeployment(const json& deployment) {
  const json* source = Annotation(deployment, api::kRevisionSpecAnnotation);
  if (source == nullptr || !source->is_string()) {
    return NotFound("Deployment " + MetaString(deployment, "name") + " has no " +
                    api::kRevisionSpecAnnotation + " annotation");
  }
  json parsed = json::parse(source->get<std::string>(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return InvalidArgument("Deployment " + MetaString(deployment, "name") + ": annotation " +
                           api::kRevisionSpecAnnotation + " is not a JSON object");
  }
  parsed.erase("resolvedFeatures");
  return ParseModelDeploymentSpec(parsed);
}

RevisionFeatures RevisionFeaturesFromDeployment(const json& deployment) {
  const json* source = Annotation(deployment, api::kRevisionSpecAnnotation);
  if (source == nullptr || !source->is_string()) return {};
  json parsed = json::parse(source->get<std::string>(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("resolvedFeatures"))
    return {};
  return RevisionFeatures::FromJson(parsed["resolvedFeatures"]);
}

}  // namespace sluice::controllers
