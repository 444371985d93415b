#pragma once

// Which pods to scrape: the Ready pods of a ModelDeployment's router or of one revision, found
// by their labels, with the address and the ports to reach them on.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "lib/controller/object_io.h"

namespace sluice::controllers {

struct PodTarget {
  std::string name;
  std::string ip;
  std::map<std::string, std::string> labels;
  std::map<std::string, int32_t> ports;  // container ports by name
};

// Contract: a read with no side effects; never blocks on the network in the cached
// implementation. Only pods that can answer a scrape are returned: Running, with a pod IP, the
// Ready condition True, and not being deleted. Thread-safe.
class PodFinder {
 public:
  virtual ~PodFinder() = default;
  // Pods of namespace `ns` carrying every label of `match`.
  virtual Result<std::vector<PodTarget>> Find(const std::string& ns,
                                              const std::map<std::string, std::string>& match) = 0;
};

// Reads the operator's informer cache, which must hold pods (kube::resources::kPods) with the
// labels looked for; `reader` must outlive the finder.
class CachedPodFinder final : public PodFinder {
 public:
  explicit CachedPodFinder(const ObjectReader& reader) : reader_(reader) {}
  Result<std::vector<PodTarget>> Find(const std::string& ns,
                                      const std::map<std::string, std::string>& match) override;

 private:
  const ObjectReader& reader_;
};

// The PodTarget of a pod object, or nullopt when the pod cannot answer (see PodFinder).
std::optional<PodTarget> ScrapeablePod(const nlohmann::json& pod);

}  // namespace sluice::controllers
