#pragma once

// The one entry point the server uses to turn a model URI into a Runtime: fetch (with checksum and
// size limit), pick the runtime by format, check the reference predictions that ship beside the
// model. New formats plug in here.
//
// Contract: LoadModel is a single attempt (see FetchUri: nothing is retried here), thread-safe and
// side-effect free apart from the fetch itself. The returned Runtime is owned by the caller and
// immutable. It is not warmed up: call Runtime::WarmUp before reporting ready.

#include <memory>
#include <string>

#include "lib/base/status.h"
#include "dataplane/runtime/forest.h"
#include "dataplane/runtime/model_source.h"
#include "dataplane/runtime/runtime.h"

namespace sluice::dataplane {

struct LoadOptions {
  // ModelMetadata name and version; an empty name becomes the model file name without extension.
  std::string name;
  std::string version = "1";
  FetchOptions fetch;
  // Refuse to load when reference predictions exist and are not reproduced.
  bool verify_reference = true;
  // Cut the ensemble after learner.attributes.best_iteration (as xgboost's sklearn predict does).
  // Off by default: the raw booster API predicts with every tree.
  bool use_best_iteration = false;
  // Serve the raw margin (sum of leaves plus base margin) instead of the objective's output.
  bool output_margin = false;
  ForestOptions::Layout layout = ForestOptions::Layout::kAuto;
};

// Formats: "xgboost-json", "xgboost-ubj", "xgboost" / "auto" / "" (by extension, then content).
// Anything else is Unimplemented.
Result<std::unique_ptr<Runtime>> LoadModel(const ModelSource& source, const LoadOptions& options);

}  // namespace sluice::dataplane
