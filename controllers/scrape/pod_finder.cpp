#include "controllers/scrape/pod_finder.h"

#include "lib/api/object_labels.h"

namespace sluice::controllers {

using nlohmann::json;

std::optional<PodTarget> ScrapeablePod(const json& pod) {
  const json& meta = pod.value("metadata", json::object());
  if (meta.contains("deletionTimestamp")) return std::nullopt;
  const json& status = pod.value("status", json::object());
  if (status.value("phase", "") != "Running") return std::nullopt;
  PodTarget t;
  t.ip = status.value("podIP", "");
  if (t.ip.empty()) return std::nullopt;
  bool ready = false;
  for (const json& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") ready = c.value("status", "") == "True";
  }
  if (!ready) return std::nullopt;
  t.name = meta.value("name", "");
  const json labels = meta.value("labels", json::object());
  for (const auto& [k, v] : labels.items()) {
    if (v.is_string()) t.labels[k] = v.get<std::string>();
  }
  const json& spec = pod.value("spec", json::object());
  for (const json& c : spec.value("containers", json::array())) {
    for (const json& p : c.value("ports", json::array())) {
      if (p.contains("name") && p["name"].is_string() && p.contains("containerPort") &&
          p["containerPort"].is_number_integer()) {
        t.ports.emplace(p["name"].get<std::string>(), p["containerPort"].get<int32_t>());
      }
    }
  }
  return t;
}

Result<std::vector<PodTarget>> CachedPodFinder::Find(
    const std::string& ns, const std::map<std::string, std::string>& match) {
  std::vector<PodTarget> out;
  // Narrowed by the most selective label looked for (the operator's cache indexes it), then
  // checked against every label below.
  std::vector<ObjectPtr> candidates;
  auto by = match.find(api::kLabelModelDeployment);
  if (by == match.end()) by = match.find(api::kLabelRevision);
  if (by != match.end()) {
    candidates = reader_.ListByLabel(kube::resources::kPods, ns, by->first, by->second);
  } else {
    candidates = reader_.List(kube::resources::kPods, ns);
  }
  for (const ObjectPtr& pod : candidates) {
    std::optional<PodTarget> t = ScrapeablePod(*pod);
    if (!t) continue;
    bool matches = true;
    for (const auto& [k, v] : match) {
      auto it = t->labels.find(k);
      if (it == t->labels.end() || it->second != v) {
        matches = false;
        break;
      }
    }
    if (matches) out.push_back(std::move(*t));
  }
  return out;
}

}  // namespace sluice::controllers
