#pragma once

// What the operator writes on the objects it owns and what other processes read back: label and
// annotation keys, port names, the ModelDeployment resource. One definition here, used by the
// operator, sluice-router and the tests.

#include "lib/kube/client.h"

namespace sluice::api {

// The ModelDeployment resource (sluice.dev/v1alpha1).
inline const kube::GroupVersionResource kModelDeploymentsGvr{
    "sluice.dev", "v1alpha1", "modeldeployments", true, "ModelDeployment"};

// The FeatureView resource (sluice.dev/v1alpha1).
inline const kube::GroupVersionResource kFeatureViewsGvr{"sluice.dev", "v1alpha1", "featureviews",
                                                         true, "FeatureView"};

// Labels on every owned object.
inline constexpr char kLabelModelDeployment[] = "sluice.dev/modeldeployment";
inline constexpr char kLabelRevision[] = "sluice.dev/revision";
inline constexpr char kLabelModelVersion[] = "sluice.dev/model-version";
inline constexpr char kLabelName[] = "app.kubernetes.io/name";
inline constexpr char kLabelInstance[] = "app.kubernetes.io/instance";
inline constexpr char kLabelComponent[] = "app.kubernetes.io/component";
inline constexpr char kLabelManagedBy[] = "app.kubernetes.io/managed-by";
inline constexpr char kNameValue[] = "sluice";
inline constexpr char kManagedByValue[] = "sluice-operator";
// The selector the operator's informers use for owned objects.
inline constexpr char kManagedBySelector[] = "app.kubernetes.io/managed-by=sluice-operator";

// Annotations a user sets on a ModelDeployment to steer its rollout.
inline constexpr char kPauseAnnotation[] = "sluice.dev/pause";
inline constexpr char kPromoteAnnotation[] = "sluice.dev/promote";
inline constexpr char kAbortAnnotation[] = "sluice.dev/abort";
inline constexpr char kRetryAnnotation[] = "sluice.dev/retry";
// One-shot: ask the model registry where a models:/ alias or stage points now.
inline constexpr char kRegistryRefreshAnnotation[] = "sluice.dev/registry-refresh";
// The model and runtime a revision Deployment was built from.
inline constexpr char kRevisionSpecAnnotation[] = "sluice.dev/revision-spec";

// FeatureView materialization. The label selects the Jobs and Pods of a view (its name, cut to
// 63 characters with a hash when longer); the annotation holds the full name, which is what the
// operator matches on. sluice.dev/materialize=now on a FeatureView runs a materialization at
// once; the operator removes it once the Job exists. The trigger annotation on a Job says what
// started it (created, spec-changed, requested, scheduled).
inline constexpr char kLabelFeatureView[] = "sluice.dev/featureview";
inline constexpr char kFeatureViewAnnotation[] = "sluice.dev/featureview";
inline constexpr char kMaterializeAnnotation[] = "sluice.dev/materialize";
inline constexpr char kMaterializeTriggerAnnotation[] = "sluice.dev/materialize-trigger";

// Each revision's Service is named after the revision, so the router finds its EndpointSlices by
// Kubernetes' own service-name label; ports are found by these names.
inline constexpr char kServiceNameLabel[] = "kubernetes.io/service-name";
inline constexpr char kHttpPortName[] = "http";
inline constexpr char kGrpcPortName[] = "grpc";
// sluice-router's admin port (/metrics, /healthz, /readyz), apart from its traffic ports: what
// the operator's scrapers, Prometheus (pod annotations, the chart's PodMonitor) and probes use.
inline constexpr char kAdminPortName[] = "admin";

}  // namespace sluice::api
