#include "operator/cache_transforms.h"

#include <initializer_list>
#include <string>

namespace sluice::app {

using nlohmann::json;

namespace {

// Keeps only `keys` of `object` (when it is an object).
void KeepOnly(json& object, std::initializer_list<const char*> keys) {
  if (!object.is_object()) return;
  json kept = json::object();
  for (const char* key : keys) {
    auto it = object.find(key);
    if (it != object.end()) kept[key] = std::move(*it);
  }
  object = std::move(kept);
}

void TrimContainerStatuses(json& status, const char* field) {
  auto statuses = status.find(field);
  if (statuses == status.end() || !statuses->is_array()) return;
  for (json& c : *statuses)
    KeepOnly(c, {"name", "ready", "restartCount", "started", "state", "lastState"});
}

}  // namespace

void TrimPod(json& pod) {
  if (!pod.is_object()) return;
  if (auto spec = pod.find("spec"); spec != pod.end() && spec->is_object()) {
    json containers = json::array();
    if (auto it = spec->find("containers"); it != spec->end() && it->is_array()) {
      for (json& c : *it) {
        KeepOnly(c, {"name", "ports"});
        containers.push_back(std::move(c));
      }
    }
    *spec = json{{"containers", std::move(containers)}};
  }
  if (auto status = pod.find("status"); status != pod.end() && status->is_object()) {
    KeepOnly(*status, {"phase", "reason", "message", "podIP", "conditions", "containerStatuses",
                       "initContainerStatuses"});
    // Only whether the Pod is Ready is read; times and messages of conditions are not.
    if (auto conditions = status->find("conditions");
        conditions != status->end() && conditions->is_array()) {
      for (json& c : *conditions) KeepOnly(c, {"type", "status"});
    }
    TrimContainerStatuses(*status, "containerStatuses");
    TrimContainerStatuses(*status, "initContainerStatuses");
  }
}

void TrimDeployment(json& deployment) {
  if (!deployment.is_object()) return;
  if (auto status = deployment.find("status"); status != deployment.end() && status->is_object()) {
    KeepOnly(*status, {"observedGeneration", "replicas", "readyReplicas", "updatedReplicas",
                       "availableReplicas"});
  }
}

}  // namespace sluice::app
