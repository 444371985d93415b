#pragma once

// Where the Concurrency autoscaler reads in-flight requests: the serving pods' own gauge
// (ConcurrencyScraper) or anything else that can say how busy a revision is.

#include <string>
#include <vector>

#include "controllers/autoscaler/autoscaler.h"
#include "lib/base/clock.h"
#include "lib/base/status.h"

namespace sluice::controllers {

// In-flight concurrency of a revision's pods, for the Concurrency autoscaler.
// Contract: a read with no side effects, answered from samples already taken (it must not block
// for long: it is called on the reconciling thread). Thread-safe.
class ConcurrencySource {
 public:
  virtual ~ConcurrencySource() = default;
  // Samples taken since `since` for `revision` of the ModelDeployment ns/name, oldest first; an
  // error means no data (replicas are then kept as they are).
  virtual Result<std::vector<ConcurrencySample>> Samples(const std::string& ns,
                                                         const std::string& name,
                                                         const std::string& revision,
                                                         Clock::Steady::time_point since) = 0;
};

}  // namespace sluice::controllers
