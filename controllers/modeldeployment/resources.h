#pragma once

// The Kubernetes objects a ModelDeployment owns, as server-side-apply intents: pure functions of
// the ModelDeployment, a revision name and the operator's settings. Each intent holds exactly the
// fields the operator manages, so applying it again is a no-op and fields set by others (e.g.
// a Deployment's status, a Service's clusterIP) are left alone.
//
// Per revision (one model + runtime): a Deployment of sluice-server and a headless Service, both
// named after the revision (<md>-<hash>). Per ModelDeployment: the router's Deployment
// (<md>-router), its Service (<md>, the address clients call), and the ServiceAccount, Role and
// RoleBinding that let the router watch its ModelDeployment's status.traffic.
// Every object carries a controller ownerReference to the ModelDeployment (blockOwnerDeletion),
// so deleting the ModelDeployment garbage-collects all of them.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/api/model_deployment.h"
#include "lib/api/router_command.h"
#include "lib/api/server_command.h"
#include "lib/controller/object_io.h"
#include "lib/controller/reconciler.h"
#include "lib/controller/secret_reader.h"
#include "lib/kube/client.h"

namespace sluice::controllers {

// The data-plane image of this version of the project, the one e2e/images/build.sh builds:
// "ghcr.io/sluice-dev/sluice-dataplane:<CMake project version>".
std::string DefaultServerImage();

// Settings that come from the operator's flags rather than from the ModelDeployment.
struct WorkloadOptions {
  std::string server_image = DefaultServerImage();
  std::string router_image;  // empty: server_image (one image holds both binaries)
  std::string image_pull_policy = "IfNotPresent";
  int32_t router_replicas = 1;
  int32_t server_http_port = 8080;
  int32_t server_grpc_port = 8081;
  int32_t router_http_port = 8080;
  int32_t router_grpc_port = 8081;
  int32_t router_admin_port = 9090;  // /metrics, /healthz, /readyz (container port "admin")
  // With spec.tls: the server's plain-HTTP port for /metrics and health (scrapers, no TLS).
  int32_t server_admin_port = 9090;
  // preStop sleep: the pod keeps serving while endpoints are removed from every node, before
  // SIGTERM starts sluice-server's own drain.
  int32_t drain_seconds = 5;
  int64_t termination_grace_seconds = 30;
  int64_t run_as_user = 65532;
  std::string log_format = "json";
};

// spec.tls in the pods: the Secret is mounted read-only here (tls.crt, tls.key, ca.crt).
inline constexpr std::string_view kTlsDir = "/etc/sluice/tls";
inline constexpr char kAdminPortName[] = "admin";

// The Secret of spec.tls as the reconciler found it.
struct TlsSecretInfo {
  std::string secret_name;
  bool has_ca = false;  // it has a ca.crt: the router verifies the servers against it
};

// Checks that the kubernetes.io/tls Secret `name` exists in `ns` with tls.crt and tls.key:
// NotFound when it is absent, InvalidArgument when a key is missing, the reader's error
// otherwise.
Result<TlsSecretInfo> CheckTlsSecret(SecretReader& secrets, const std::string& ns,
                                     const std::string& name);

// Where a serving pod keeps a fetched model: an emptyDir, so a restarted container reuses it.
inline constexpr std::string_view kModelDir = "/var/lib/sluice/model";

// The keys of spec.model.credentials.secretRef that become the serving container's environment.
inline constexpr const char* kModelCredentialKeys[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MLFLOW_TRACKING_TOKEN"};

// Why a serving pod does not run, from its status: a container waiting in CrashLoopBackOff,
// CreateContainerConfigError, ErrImagePull, ... or restarted after a failed run, with the last
// line of its termination message (the server's fatal error). Empty when nothing is wrong.
std::string PodTrouble(const nlohmann::json& pod);

// A model the server downloads (http(s)://, s3://, a registry's folder), as opposed to a file
// already in the pod.
bool IsRemoteModel(const ModelSpec& model);

// The serving container's env entries for spec.model.credentials (secretKeyRef, each optional).
nlohmann::json ModelCredentialsEnv(const ModelSpec& model);

// RBAC resources (not in the client's well-known list).
extern const kube::GroupVersionResource kRolesGvr;
extern const kube::GroupVersionResource kRoleBindingsGvr;

// A ModelDeployment as the cache holds it: the typed view plus its identity.
struct ModelDeploymentObject {
  ModelDeployment md;
  std::string uid;
};

// The controller ownerReference every owned object carries.
nlohmann::json OwnerReference(const ModelDeploymentObject& owner);

// The scale subresource's status.selector: every serving pod of the ModelDeployment.
std::string ServerPodSelector(const std::string& md_name);

// sluice-server's command line for the model and runtime in `spec`: exactly what the spec says
// (the API server has filled in the CRD's defaults, so the operator keeps no copy of them), the
// operator's ports and log format, then spec.runtime.args as they are (last, so they win).
// InvalidArgument when a duration of the spec cannot be read (admission should refuse it).
Result<api::ServerCommand> ServerCommandFor(const std::string& md_name,
                                            const ModelDeploymentSpec& spec,
                                            const WorkloadOptions& options);

// The online features a revision's server reads, resolved from the FeatureViews spec.features
// references: sluice-server's --feature-views value, and the environment variables that carry
// the Redis connection strings of views that keep theirs in a Secret (secretKeyRef; the Secret
// must be in the ModelDeployment's namespace, as the FeatureView's is).
struct RevisionFeatures {
  std::string feature_views;  // api::FormatFeatureViews; empty: no features
  nlohmann::json env = nlohmann::json::array();
  // Canonical text for the revision hash; empty when there are no features.
  std::string Key() const;
  nlohmann::json ToJson() const;
  static RevisionFeatures FromJson(const nlohmann::json& j);
  friend bool operator==(const RevisionFeatures&, const RevisionFeatures&) = default;
};

// Resolves spec.features: `find` returns the named FeatureView of the ModelDeployment's
// namespace or nullptr. NotFound names a missing view; InvalidArgument names an unknown feature
// or one the model cannot take (STRING, BYTES: the model takes numbers).
Result<RevisionFeatures> ResolveFeatures(const ModelDeploymentSpec& spec,
                                         const std::function<ObjectPtr(const std::string&)>& find);

// Files a ModelDeployment under the name of every FeatureView its spec.features references.
// Register it with the cache's ModelDeployments so ModelDeploymentsReading reads only those.
const ObjectIndex& FeatureViewsReadIndex();
// The ModelDeployments in `ns` whose spec.features references FeatureView `fv_name`.
std::vector<ObjectKey> ModelDeploymentsReading(const ObjectReader& reader, const std::string& ns,
                                               const std::string& fv_name);

// The revision's Deployment; fails as ServerCommandFor does.
Result<nlohmann::json> RevisionDeployment(const ModelDeploymentObject& owner,
                                          const std::string& revision,
                                          const ModelDeploymentSpec& revision_spec,
                                          int32_t replicas, const WorkloadOptions& options,
                                          const RevisionFeatures& features = {});
// Headless (clusterIP None): the router reaches a revision's pods through the Service's
// EndpointSlices, never through a virtual IP, so the API server allocates none (the costliest
// step of creating a Service on a busy API server). With `tls` (the revision's spec.tls) the http
// port says appProtocol https, which the router reads from the EndpointSlices to speak TLS to this
// revision.
nlohmann::json RevisionService(const ModelDeploymentObject& owner, const std::string& revision,
                               const WorkloadOptions& options, bool tls = false);
// A revision Service created with a virtual IP (before revision Services were headless) keeps
// it: the clusterIP of a Service cannot change, so the intent leaves the field to what is there.
void KeepAllocatedClusterIp(nlohmann::json& intent, const nlohmann::json* live);

std::string RouterName(const std::string& md_name);  // <md>-router
// sluice-router's command line: the ModelDeployment to follow and the operator's ports. API access
// is the pod's service account (RouterServiceAccount), found in-cluster.
// With `tls` (spec.tls, checked): the router serves TLS from the mounted Secret, verifies TLS
// revisions against its ca.crt when it has one, probes use HTTPS, the Service says https.
api::RouterCommand RouterCommandFor(const ModelDeploymentObject& owner,
                                    const WorkloadOptions& options,
                                    const std::optional<TlsSecretInfo>& tls = std::nullopt);
nlohmann::json RouterDeployment(const ModelDeploymentObject& owner, const WorkloadOptions& options,
                                const std::optional<TlsSecretInfo>& tls = std::nullopt);
nlohmann::json RouterService(const ModelDeploymentObject& owner, const WorkloadOptions& options,
                             const std::optional<TlsSecretInfo>& tls = std::nullopt);
nlohmann::json RouterServiceAccount(const ModelDeploymentObject& owner);
nlohmann::json RouterRole(const ModelDeploymentObject& owner);
nlohmann::json RouterRoleBinding(const ModelDeploymentObject& owner);

// The model and runtime a revision Deployment was built from (kept in an annotation), so a
// revision other than the spec's current one is re-applied exactly as it was created.
Result<ModelDeploymentSpec> RevisionSpecFromDeployment(const nlohmann::json& deployment);
// The features a revision Deployment was built with (none for one built before features).
RevisionFeatures RevisionFeaturesFromDeployment(const nlohmann::json& deployment);

}  // namespace sluice::controllers
