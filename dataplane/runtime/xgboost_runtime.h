#pragma once

// XGBoost models evaluated natively (no libxgboost at serving time): JSON and UBJSON model files
// from xgboost 1.x to 3.x, gbtree and dart boosters, numerical and categorical splits, missing
// values, the common objectives (see xgboost_model.h for what is refused).
//
// Metadata: one input "input-0" FP32 [-1, num_features]; one output "predict" FP32 [-1] (binary,
// regression, multi:softmax) or [-1, num_outputs] (multi:softprob, multi-target).
//
// Contract: immutable after creation; Predict is const, lock-free, allocation-free (except for
// models with more than 2048 features or multi:softmax with more than 2048 classes, whose scratch
// does not fit on the stack) and may run on any number of threads at once.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"
#include "dataplane/runtime/forest.h"
#include "dataplane/runtime/model_loader.h"
#include "dataplane/runtime/model_source.h"
#include "dataplane/runtime/reference.h"
#include "dataplane/runtime/runtime.h"
#include "dataplane/runtime/xgboost_model.h"

namespace sluice::dataplane {

class XGBoostRuntime final : public Runtime {
 public:
  // Fetches `source.uri`, verifies `source.sha256`, parses and compiles the model, and checks the
  // reference predictions (explicit `source.reference_uri`, or the file beside the model when it
  // exists) unless options.verify_reference is false.
  static Result<std::unique_ptr<Runtime>> Create(const ModelSource& source,
                                                 const LoadOptions& options);
  // The same, keeping the concrete type.
  static Result<std::unique_ptr<XGBoostRuntime>> Load(const ModelSource& source,
                                                      const LoadOptions& options);
  // From model bytes already in memory: no fetch, no checksum, no reference discovery.
  static Result<std::unique_ptr<XGBoostRuntime>> FromBytes(std::string_view bytes,
                                                           ModelFormat format,
                                                           const LoadOptions& options);

  const ModelMetadata& metadata() const override { return metadata_; }
  size_t num_features() const override { return forest_.num_features(); }
  size_t num_outputs() const override { return num_outputs_; }
  Status Predict(std::span<const float> rows, size_t n_rows, std::span<float> out) const override;
  // Predicts the reference rows (when the model came with them) and a few synthetic rows
  // (all missing, all zero), through both the single-row and the batch kernels.
  Status WarmUp() const override;

  const std::string& objective() const { return objective_; }
  const std::vector<std::string>& feature_names() const override { return feature_names_; }
  const Forest& forest() const { return forest_; }
  // The reference set that was checked at load, if any.
  const ReferenceSet* reference() const { return reference_ ? &*reference_ : nullptr; }

 private:
  XGBoostRuntime(Forest forest, std::string objective, OutputTransform transform,
                 std::vector<std::string> feature_names);

  static Result<std::unique_ptr<XGBoostRuntime>> Build(const XGBoostModel& model,
                                                       const LoadOptions& options,
                                                       std::string default_name);
  void Transform(float* margins, size_t n_rows) const;

  Forest forest_;
  std::string objective_;
  OutputTransform transform_;
  std::vector<std::string> feature_names_;
  size_t num_outputs_ = 1;
  ModelMetadata metadata_;
  std::optional<ReferenceSet> reference_;
};

}  // namespace sluice::dataplane
