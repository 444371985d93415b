#include "controllers/modeldeployment/resources.h"

#include <algorithm>

#include "lib/controller/object_io.h"
#include "lib/api/object_labels.h"

namespace sluice::controllers {

using nlohmann::json;

const kube::GroupVersionResource kRolesGvr{"rbac.authorization.k8s.io", "v1", "roles", true, "Role"};
const kube::GroupVersionResource kRoleBindingsGvr{"rbac.authorization.k8s.io", "v1",
                                                  "rolebindings", true, "RoleBinding"};

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

json OwnerReference(const ModelDeploymentObject& owner) {
  return {{"apiVersion", std::string(kApiVersion)},
          {"kind", std::string(kKind)},
          {"name", owner.md.Name()},
          {"uid", owner.uid},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

std::string ServerPodSelector(const std::string& md_name) {
  return std::string(api::kLabelModelDeployment) + "=" + md_name + "," + api::kLabelComponent + "=server";
}

std::vector<std::string> ServerArgs(const std::string& md_name, const ModelDeploymentSpec& spec,
                                    const WorkloadOptions& options) {
  std::vector<std::string> args = {
      "--model-name=" + md_name,
      "--model-uri=" + spec.model.uri,
      "--model-format=" + spec.model.format.value_or("auto"),
      "--http-port=" + std::to_string(options.server_http_port),
      "--grpc-port=" + std::to_string(options.server_grpc_port),
      "--log-format=" + options.log_format,
  };
  if (spec.model.version) args.push_back("--model-version=" + *spec.model.version);
  if (spec.model.sha256) args.push_back("--model-sha256=" + *spec.model.sha256);
  if (spec.runtime) {
    if (const auto& b = spec.runtime->batching) {
      args.push_back("--max-batch-size=" + std::to_string(b->max_batch_size.value_or(32)));
      args.push_back("--max-queue-delay=" + b->max_queue_delay.value_or("1ms"));
      args.push_back("--max-queue-size=" + std::to_string(b->max_queue_size.value_or(1024)));
    }
    if (const auto& c = spec.runtime->cache; c && c->enabled.value_or(true)) {
      args.push_back("--cache-capacity=" + std::to_string(c->capacity.value_or(10000)));
      args.push_back("--cache-ttl=" + c->ttl.value_or("60s"));
    }
    if (spec.runtime->args) {
      args.insert(args.end(), spec.runtime->args->begin(), spec.runtime->args->end());
    }
  }
  return args;
}

json RevisionDeployment(const ModelDeploymentObject& owner, const std::string& revision,
                        const ModelDeploymentSpec& revision_spec, int32_t replicas,
                        const WorkloadOptions& options) {
  const std::string md_name = owner.md.Name();
  json labels = CommonLabels(md_name, "server");
  labels[api::kLabelRevision] = revision;
  if (revision_spec.model.version) labels[api::kLabelModelVersion] = *revision_spec.model.version;

  // What the revision was built from, so the operator can re-apply it unchanged after the spec
  // has moved on to a newer revision.
  json pod_spec_source = {{"model", revision_spec.model}};
  if (revision_spec.runtime) pod_spec_source["runtime"] = *revision_spec.runtime;

  json container = {
      {"name", "server"},
      {"image", ServerImage(revision_spec, options)},
      {"imagePullPolicy", options.image_pull_policy},
      {"command", json::array({"sluice-server"})},
      {"args", ServerArgs(md_name, revision_spec, options)},
      {"ports",
       json::array({{{"name", "http"}, {"containerPort", options.server_http_port},
                     {"protocol", "TCP"}},
                    {{"name", "grpc"}, {"containerPort", options.server_grpc_port},
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
  };
  if (revision_spec.runtime && revision_spec.runtime->resources) {
    container["resources"] = *revision_spec.runtime->resources;
  }
  if (revision_spec.runtime && revision_spec.runtime->env && revision_spec.runtime->env->is_array() &&
      !revision_spec.runtime->env->empty()) {
    container["env"] = *revision_spec.runtime->env;
  }

  json pod_labels = labels;
  json deployment = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", Metadata(owner, revision, labels)},
      {"spec",
       {{"replicas", replicas},
        {"revisionHistoryLimit", 2},
        {"selector",
         {{"matchLabels", {{api::kLabelModelDeployment, md_name}, {api::kLabelRevision, revision}}}}},
        {"strategy",
         {{"type", "RollingUpdate"},
          {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", 0}}}}},
        {"template",
         {{"metadata",
           {{"labels", pod_labels},
            {"annotations",
             {{"prometheus.io/scrape", "true"},
              {"prometheus.io/port", std::to_string(options.server_http_port)},
              {"prometheus.io/path", "/metrics"}}}}},
          {"spec",
           {{"automountServiceAccountToken", false},
            {"enableServiceLinks", false},
            {"terminationGracePeriodSeconds", options.termination_grace_seconds},
            {"securityContext", PodSecurity(options)},
            {"containers", json::array({std::move(container)})},
            {"volumes", json::array({{{"name", "tmp"}, {"emptyDir", json::object()}}})}}}}}}},
  };
  deployment["metadata"]["annotations"] = {{api::kRevisionSpecAnnotation, pod_spec_source.dump()}};
  return deployment;
}

json RevisionService(const ModelDeploymentObject& owner, const std::string& revision,
                     const WorkloadOptions& options) {
  const std::string md_name = owner.md.Name();
  json labels = CommonLabels(md_name, "server");
  labels[api::kLabelRevision] = revision;
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", Metadata(owner, revision, labels)},
      {"spec",
       {{"type", "ClusterIP"},
        {"selector", {{api::kLabelModelDeployment, md_name}, {api::kLabelRevision, revision}}},
        {"ports",
         json::array({{{"name", "http"}, {"port", options.server_http_port},
                       {"targetPort", "http"}, {"protocol", "TCP"}},
                      {{"name", "grpc"}, {"port", options.server_grpc_port},
                       {"targetPort", "grpc"}, {"protocol", "TCP"}}})}}},
  };
}

std::string RouterName(const std::string& md_name) { return md_name + "-router"; }

json RouterDeployment(const ModelDeploymentObject& owner, const WorkloadOptions& options) {
  const std::string md_name = owner.md.Name();
  const std::string name = RouterName(md_name);
  json labels = CommonLabels(md_name, "router");
  json container = {
      {"name", "router"},
      {"image", options.router_image.empty() ? options.server_image : options.router_image},
      {"imagePullPolicy", options.image_pull_policy},
      {"command", json::array({"sluice-router"})},
      {"args", json::array({"--model-deployment=" + md_name,
                            "--namespace=" + owner.md.Namespace(),
                            "--http-port=" + std::to_string(options.router_http_port),
                            "--grpc-port=" + std::to_string(options.router_grpc_port),
                            "--upstream-port=" + std::to_string(options.server_http_port),
                            "--upstream-grpc-port=" + std::to_string(options.server_grpc_port),
                            "--log-format=" + options.log_format})},
      {"ports", json::array({{{"name", "http"}, {"containerPort", options.router_http_port},
                              {"protocol", "TCP"}},
                             {{"name", "grpc"}, {"containerPort", options.router_grpc_port},
                              {"protocol", "TCP"}}})},
      {"readinessProbe",
       {{"httpGet", {{"path", "/readyz"}, {"port", "http"}}}, {"periodSeconds", 2}}},
      {"livenessProbe",
       {{"httpGet", {{"path", "/healthz"}, {"port", "http"}}}, {"periodSeconds", 10}}},
      {"lifecycle", {{"preStop", {{"sleep", {{"seconds", options.drain_seconds}}}}}}},
      {"securityContext", RestrictedContainerSecurity()},
  };
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", Metadata(owner, name, labels)},
      {"spec",
       {{"replicas", options.router_replicas},
        {"revisionHistoryLimit", 2},
        {"selector", {{"matchLabels", {{api::kLabelModelDeployment, md_name}, {api::kLabelComponent, "router"}}}}},
        {"template",
         {{"metadata", {{"labels", labels}}},
          {"spec",
           {{"serviceAccountName", name},
            {"enableServiceLinks", false},
            {"terminationGracePeriodSeconds", options.termination_grace_seconds},
            {"securityContext", PodSecurity(options)},
            {"containers", json::array({std::move(container)})}}}}}}},
  };
}

json RouterService(const ModelDeploymentObject& owner, const WorkloadOptions& options) {
  const std::string md_name = owner.md.Name();
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", Metadata(owner, md_name, CommonLabels(md_name, "router"))},
      {"spec",
       {{"type", "ClusterIP"},
        {"selector", {{api::kLabelModelDeployment, md_name}, {api::kLabelComponent, "router"}}},
        {"ports", json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "http"},
                                {"protocol", "TCP"}},
                               {{"name", "grpc"}, {"port", options.router_grpc_port},
                                {"targetPort", "grpc"}, {"protocol", "TCP"},
                                {"appProtocol", "kubernetes.io/h2c"}}})}}},
  };
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
  // EndpointSlices of its namespace (to reach the revisions' pods).
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "Role"},
          {"metadata", Metadata(owner, RouterName(md_name), CommonLabels(md_name, "router"))},
          {"rules",
           json::array({{{"apiGroups", json::array({"sluice.dev"})},
                         {"resources", json::array({"modeldeployments"})},
                         {"resourceNames", json::array({md_name})},
                         {"verbs", json::array({"get", "list", "watch"})}},
                        {{"apiGroups", json::array({"discovery.k8s.io"})},
                         {"resources", json::array({"endpointslices"})},
                         {"verbs", json::array({"get", "list", "watch"})}}})}};
}

json RouterRoleBinding(const ModelDeploymentObject& owner) {
  const std::string md_name = owner.md.Name();
  const std::string name = RouterName(md_name);
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "RoleBinding"},
          {"metadata", Metadata(owner, name, CommonLabels(md_name, "router"))},
          {"roleRef",
           {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}}},
          {"subjects", json::array({{{"kind", "ServiceAccount"},
                                     {"name", name},
                                     {"namespace", owner.md.Namespace()}}})}};
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
  return ParseModelDeploymentSpec(parsed);
}

bool IsSubset(const json& intent, const json& live) {
  if (intent.is_object()) {
    if (!live.is_object()) return false;
    for (auto it = intent.begin(); it != intent.end(); ++it) {
      auto found = live.find(it.key());
      if (found == live.end() || !IsSubset(it.value(), *found)) return false;
    }
    return true;
  }
  if (intent.is_array()) {
    if (!live.is_array() || live.size() != intent.size()) return false;
    for (size_t i = 0; i < intent.size(); ++i) {
      if (!IsSubset(intent[i], live[i])) return false;
    }
    return true;
  }
  if (intent.is_number() && live.is_number()) {
    // 1 and 1.0 are the same quantity to the API server.
    return intent.get<double>() == live.get<double>();
  }
  if (intent.is_number_integer() && live.is_string()) {
    // Quantities written as numbers come back as strings ("cpu: 1" -> "1").
    return std::to_string(intent.get<int64_t>()) == live.get<std::string>();
  }
  return intent == live;
}

}  // namespace sluice::controllers
