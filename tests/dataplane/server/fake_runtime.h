#pragma once

// A Runtime for unit tests: output j of a row is (sum of the row's features) + j, so every answer
// can be checked against its input. It records the row count of each Predict call, can hold
// Predict calls at a gate until the test opens it, and can fail on demand.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <vector>

#include "dataplane/runtime/runtime.h"

namespace sluice::testing {

class FakeRuntime final : public dataplane::Runtime {
 public:
  explicit FakeRuntime(size_t features, size_t outputs = 1) : features_(features), outputs_(outputs) {
    metadata_.name = "fake";
    metadata_.version = "1";
    metadata_.platform = "fake";
    metadata_.inputs = {{"input-0", "FP32", {-1, static_cast<int64_t>(features)}}};
    metadata_.outputs = {{"predict", "FP32",
                          outputs == 1 ? std::vector<int64_t>{-1}
                                       : std::vector<int64_t>{-1, static_cast<int64_t>(outputs)}}};
  }

  const dataplane::ModelMetadata& metadata() const override { return metadata_; }
  size_t num_features() const override { return features_; }
  size_t num_outputs() const override { return outputs_; }

  Status Predict(std::span<const float> rows, size_t n_rows, std::span<float> out) const override {
    std::unique_lock<std::mutex> lock(mu_);
    calls_.push_back(n_rows);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !gated_; });
    if (!fail_.ok()) return fail_;
    lock.unlock();
    if (rows.size() != n_rows * features_ || out.size() != n_rows * outputs_) {
      return InvalidArgument("fake runtime: bad spans");
    }
    for (size_t r = 0; r < n_rows; ++r) {
      float sum = std::accumulate(rows.begin() + r * features_, rows.begin() + (r + 1) * features_, 0.0f);
      for (size_t j = 0; j < outputs_; ++j) out[r * outputs_ + j] = sum + static_cast<float>(j);
    }
    return Status::Ok();
  }

  // Predict calls block (after recording themselves) until Open().
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    gated_ = true;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    gated_ = false;
    cv_.notify_all();
  }
  // Waits until `n` Predict calls have started; false after 10 s.
  bool WaitEntered(size_t n) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_ >= n; });
  }
  void FailWith(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(s);
  }
  std::vector<size_t> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  const size_t features_;
  const size_t outputs_;
  dataplane::ModelMetadata metadata_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::vector<size_t> calls_;  // guarded by mu_
  mutable size_t entered_ = 0;         // guarded by mu_
  bool gated_ = false;                 // guarded by mu_
  Status fail_;                        // guarded by mu_
};

}  // namespace sluice::testing
