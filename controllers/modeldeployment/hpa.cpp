#include "controllers/modeldeployment/hpa.h"
#include "lib/api/object_labels.h"
#include "lib/api/metric_names.h"

#include <algorithm>

namespace sluice::controllers {

using nlohmann::json;

bool HpaMode(const ModelDeploymentSpec& spec) {
  return spec.autoscaling && spec.autoscaling->mode.value_or("Concurrency") == "HPA";
}

HpaRange SplitByWeight(int32_t min_replicas, int32_t max_replicas, int32_t weight) {
  weight = std::clamp(weight, 0, 100);
  auto share = [weight](int32_t n) {
    return static_cast<int32_t>((static_cast<int64_t>(std::max(n, 0)) * weight + 99) / 100);
  };
  HpaRange r;
  r.min_replicas = std::max(1, share(min_replicas));
  r.max_replicas = std::max(r.min_replicas, share(max_replicas));
  return r;
}

json RevisionHpa(const ModelDeploymentObject& owner, const std::string& revision,
                 const HpaRange& range, int32_t target_concurrency) {
  const std::string& md = owner.md.Name();
  return {
      {"apiVersion", "autoscaling/v2"},
      {"kind", "HorizontalPodAutoscaler"},
      {"metadata",
       {{"name", revision},
        {"namespace", owner.md.Namespace()},
        {"labels",
         {{api::kLabelManagedBy, api::kManagedByValue},
          {api::kLabelComponent, "server"},
          {api::kLabelModelDeployment, md},
          {api::kLabelRevision, revision}}},
        {"ownerReferences", json::array({OwnerReference(owner)})}}},
      {"spec",
       {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", revision}}},
        {"minReplicas", range.min_replicas},
        {"maxReplicas", range.max_replicas},
        {"metrics",
         json::array(
             {{{"type", "Pods"},
               {"pods",
                {{"metric", {{"name", api::kServerInflightRequests}}},
                 {"target",
                  {{"type", "AverageValue"},
                   {"averageValue", std::to_string(std::max(1, target_concurrency))}}}}}}})}}},
  };
}

}  // namespace sluice::controllers
