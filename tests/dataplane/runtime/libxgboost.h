#pragma once

// Test-side wrapper around Debian's libxgboost C API: trains reference models and predicts with
// XGBoosterPredictFromDense, the answers the native runtime must reproduce.

#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sluice::dataplane::testing {

inline void XgbCheck(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + ": " + XGBGetLastError());
}

class XgbMatrix {
 public:
  XgbMatrix(const std::vector<float>& data, size_t rows, size_t cols) {
    XgbCheck(XGDMatrixCreateFromMat(data.data(), rows, cols, NAN, &h_), "XGDMatrixCreateFromMat");
  }
  ~XgbMatrix() { XGDMatrixFree(h_); }
  XgbMatrix(const XgbMatrix&) = delete;
  XgbMatrix& operator=(const XgbMatrix&) = delete;

  void SetLabels(const std::vector<float>& y) {
    XgbCheck(XGDMatrixSetFloatInfo(h_, "label", y.data(), y.size()), "set label");
  }
  void SetGroups(const std::vector<unsigned>& sizes) {
    XgbCheck(XGDMatrixSetUIntInfo(h_, "group", sizes.data(), sizes.size()), "set group");
  }
  void SetFeatureTypes(const std::vector<std::string>& types) {
    std::vector<const char*> p;
    for (const auto& t : types) p.push_back(t.c_str());
    XgbCheck(XGDMatrixSetStrFeatureInfo(h_, "feature_type", p.data(), p.size()),
             "set feature_type");
  }
  DMatrixHandle get() const { return h_; }

 private:
  DMatrixHandle h_ = nullptr;
};

class XgbBooster {
 public:
  explicit XgbBooster(const XgbMatrix& train) {
    DMatrixHandle m = train.get();
    XgbCheck(XGBoosterCreate(&m, 1, &h_), "XGBoosterCreate");
  }
  XgbBooster() { XgbCheck(XGBoosterCreate(nullptr, 0, &h_), "XGBoosterCreate"); }
  ~XgbBooster() { XGBoosterFree(h_); }
  XgbBooster(const XgbBooster&) = delete;
  XgbBooster& operator=(const XgbBooster&) = delete;

  void Set(const std::string& k, const std::string& v) {
    XgbCheck(XGBoosterSetParam(h_, k.c_str(), v.c_str()), ("set " + k).c_str());
  }
  void Train(const XgbMatrix& train, int rounds) {
    for (int i = 0; i < rounds; ++i) {
      XgbCheck(XGBoosterUpdateOneIter(h_, i, train.get()), "XGBoosterUpdateOneIter");
    }
  }
  void SetAttr(const std::string& k, const std::string& v) {
    XgbCheck(XGBoosterSetAttr(h_, k.c_str(), v.c_str()), "XGBoosterSetAttr");
  }
  void Save(const std::string& path) {
    XgbCheck(XGBoosterSaveModel(h_, path.c_str()), "XGBoosterSaveModel");
  }
  void Load(const std::string& path) {
    XgbCheck(XGBoosterLoadModel(h_, path.c_str()), "XGBoosterLoadModel");
  }

  // Inplace prediction on dense rows (type 0: transformed output, 1: margin).
  std::vector<float> Predict(const std::vector<float>& rows, size_t n, size_t cols, int type = 0,
                             int iteration_end = 0) const {
    char values[256];
    std::snprintf(values, sizeof(values),
                  R"({"data": [%zu, true], "shape": [%zu, %zu], "typestr": "<f4", "version": 3})",
                  reinterpret_cast<size_t>(rows.data()), n, cols);
    const std::string config = R"({"type": )" + std::to_string(type) +
                               R"(, "training": false, "iteration_begin": 0, "iteration_end": )" +
                               std::to_string(iteration_end) +
                               R"(, "strict_shape": false, "cache_id": 0, "missing": NaN})";
    const bst_ulong* shape = nullptr;
    bst_ulong dim = 0;
    const float* result = nullptr;
    XgbCheck(XGBoosterPredictFromDense(h_, values, config.c_str(), nullptr, &shape, &dim, &result),
             "XGBoosterPredictFromDense");
    size_t total = 1;
    for (bst_ulong i = 0; i < dim; ++i) total *= shape[i];
    return std::vector<float>(result, result + total);
  }
  BoosterHandle get() const { return h_; }

 private:
  BoosterHandle h_ = nullptr;
};

}  // namespace sluice::dataplane::testing
