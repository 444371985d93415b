#pragma once

// A loaded model, behind one interface so the server, the batcher and the cache know nothing of
// the model format. XGBoost is the first implementation (xgboost_runtime.h).
//
// Contract: a Runtime is immutable after Create() returns, so Predict may be called from several
// threads at once without locks. Predict is const, lock-free and does not allocate on the hot path
// (ThreadSanitizer-clean by construction: it reads shared state only). It never throws and never
// crashes on input from outside: a wrong feature count or a short output buffer is an
// InvalidArgument.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lib/base/status.h"

namespace sluice::dataplane {

struct TensorMetadata {
  std::string name;
  std::string datatype;        // V2 datatype: "FP32", "INT64", "BYTES", ...
  std::vector<int64_t> shape;  // -1 for a variable dimension (the batch)
};

struct ModelMetadata {
  std::string name;
  std::string version;
  std::string platform;  // "xgboost"
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

class Runtime {
 public:
  virtual ~Runtime() = default;

  virtual const ModelMetadata& metadata() const = 0;

  // Number of input features per row and outputs per row (1 for binary and regression,
  // the class count for multi:softprob).
  virtual size_t num_features() const = 0;
  virtual size_t num_outputs() const = 0;

  // The name of each input feature, in row order; empty when the model does not name them.
  // Online feature enrichment assembles rows by these names.
  virtual const std::vector<std::string>& feature_names() const {
    static const std::vector<std::string> kNone;
    return kNone;
  }

  // Dense row-major input: rows.size() == n_rows * num_features(); NaN marks a missing value.
  // Writes n_rows * num_outputs() values to `out`.
  virtual Status Predict(std::span<const float> rows, size_t n_rows,
                         std::span<float> out) const = 0;

  // Runs a few predictions through the whole model so the first request does not pay for page
  // faults and cold caches. The server calls it once before it reports ready; calling it again is
  // harmless. The default predicts one all-missing row.
  virtual Status WarmUp() const {
    std::vector<float> row(num_features(), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> out(num_outputs());
    return Predict(row, 1, out);
  }
};

}  // namespace sluice::dataplane
