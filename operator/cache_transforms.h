#pragma once

// What the operator's cache keeps of the objects it watches. The cache holds every Pod, Job and
// owned object of the namespaces it serves for as long as the operator runs, parsed into
// nlohmann::json (a few hundred bytes per field), so fields no controller reads are dropped on
// receipt instead of being held for ever (the role of client-go's SetTransform).
//
// Contract: a transform keeps every field that a reader of the cache uses. For Pods those readers
// are ScrapeablePod (controllers/scrape), PodTrouble (controllers/modeldeployment), LatestRun and
// FeatureViewOf (controllers/featureview) and the operator's Pod watch; tests/operator/
// cache_transforms_test.cpp runs each of them on full Pods and on trimmed ones and expects the
// same answers. The Deployment readers (the ModelDeployment reconciler: spec for apply-if-changed,
// replica counts) are checked the same way. A controller that starts reading another field must
// keep it here.

#include <nlohmann/json.hpp>

namespace sluice::app {

// Keeps metadata, spec.containers[].{name, ports} and status without the
// per-container image and resource details; drops the rest of the spec (volumes, env, probes,
// tolerations, security contexts and the API server's defaults), and of status conditions all but
// type and status.
void TrimPod(nlohmann::json& pod);

// Keeps a Deployment's metadata and spec (compared with what the operator applies) and the replica
// counts of its status; drops the status conditions.
void TrimDeployment(nlohmann::json& deployment);

}  // namespace sluice::app
