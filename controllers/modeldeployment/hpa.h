#pragma once

// spec.autoscaling.mode HPA: instead of the built-in autoscaler, one autoscaling/v2
// HorizontalPodAutoscaler per revision that takes traffic, scaling the revision's Deployment on
// the pods' own sluice_server_inflight_requests (a Pods metric, served to the HPA controller by
// a custom-metrics adapter such as prometheus-adapter) with targetConcurrency as the average per
// pod. minReplicas and maxReplicas are split by the revision's traffic weight, so a 10% canary
// gets a tenth of the range (at least 1) instead of inheriting the stable's.
//
// In this mode the operator leaves spec.replicas of an HPA-managed Deployment to the HPA; a
// revision that stops taking traffic loses its HPA and is scaled by the rollout engine again.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/api/model_deployment.h"
#include "controllers/modeldeployment/resources.h"

namespace sluice::controllers {

bool HpaMode(const ModelDeploymentSpec& spec);

struct HpaRange {
  int32_t min_replicas = 1;
  int32_t max_replicas = 1;
};

// [ceil(min × weight/100), ceil(max × weight/100)], each at least 1 and min ≤ max. Pure.
HpaRange SplitByWeight(int32_t min_replicas, int32_t max_replicas, int32_t weight);

// The server-side-apply intent of the HPA of `revision` (named like the revision, labelled and
// owner-referenced like its Deployment). Pure.
nlohmann::json RevisionHpa(const ModelDeploymentObject& owner, const std::string& revision,
                           const HpaRange& range, int32_t target_concurrency);

}  // namespace sluice::controllers
