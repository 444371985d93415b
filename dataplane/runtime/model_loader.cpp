#include "dataplane/runtime/model_loader.h"

#include "dataplane/runtime/xgboost_runtime.h"

namespace sluice::dataplane {

Result<std::unique_ptr<Runtime>> LoadModel(const ModelSource& source, const LoadOptions& options) {
  const std::string& f = source.format;
  if (f.empty() || f == "auto" || f.rfind("xgboost", 0) == 0 || f == "json" || f == "ubj") {
    return XGBoostRuntime::Create(source, options);
  }
  return Unimplemented("model format \"" + f + "\" is not supported");
}

}  // namespace sluice::dataplane
