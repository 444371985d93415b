#pragma once

// Reference predictions shipped beside a model and checked when it loads, so a model that this
// runtime evaluates differently from the trainer (a format change, an unsupported feature, a
// truncated download that still parses) refuses to load instead of serving wrong answers.
//
// File format (`<model without extension>.reference.json`):
//   {
//     "inputs":  [[0.5, null, 3], ...],        one row per entry; null is a missing value
//     "outputs": [0.12, ...] or [[0.1, 0.9], ...],  the trainer's predictions per row
//     "tolerance": 1e-6,                       optional absolute tolerance (default 1e-6)
//     "relative_tolerance": 0                  optional, added as rel * |expected|
//   }
// Outputs are what Predict returns: after the objective's transform (probabilities for
// binary:logistic, the class index for multi:softmax).

#include <cstddef>
#include <string_view>
#include <vector>

#include "lib/base/status.h"
#include "dataplane/runtime/runtime.h"

namespace sluice::dataplane {

struct ReferenceSet {
  size_t num_rows = 0;
  size_t num_features = 0;
  size_t num_outputs = 0;
  std::vector<float> inputs;   // num_rows × num_features, NaN for null
  std::vector<float> outputs;  // num_rows × num_outputs
  double tolerance = 1e-6;
  double relative_tolerance = 0.0;
};

// Parses the file. Malformed input (ragged rows, non-numbers, no rows) is InvalidArgument.
Result<ReferenceSet> ParseReference(std::string_view bytes);

// Predicts the reference inputs and compares. A shape mismatch or any output outside the
// tolerance is FailedPrecondition naming the first bad row, output index, and both values.
Status CheckReference(const Runtime& runtime, const ReferenceSet& reference);

}  // namespace sluice::dataplane
