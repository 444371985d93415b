#pragma once

// Revision identity. A revision is everything that changes what a serving pod does: the model
// (uri, format, version, sha256), the runtime (image, resources, batching, cache, env, args) and
// spec.tls (the Secret the pods mount), the online features it reads (the referenced FeatureViews as resolved, so a change of a
// FeatureView's spec makes a new revision and rolls out like any other change).
// Replicas, autoscaling, rollout and traffic settings are not part of it, so changing them never
// starts a rollout.

#include <string>

#include "lib/api/model_deployment.h"

namespace sluice::controllers {

// 10 characters from an alphabet without vowels (no accidental words), stable across processes
// and releases for the same pod-affecting spec. Absent fields and fields equal to their CRD
// default hash alike, so API-server defaulting never creates a revision of its own.
// `features` is a canonical text of the resolved feature views (empty: none, which hashes as a
// spec without spec.features always did).
std::string RevisionHash(const ModelDeploymentSpec& spec, const std::string& features = "");

// "<ModelDeployment name>-<RevisionHash>": the name of the revision's Deployment and Service.
std::string RevisionName(const std::string& model_deployment_name, const ModelDeploymentSpec& spec,
                         const std::string& features = "");

}  // namespace sluice::controllers
