#include "dataplane/router/canary_guard.h"

#include <algorithm>

namespace sluice::dataplane {

RetryBudget::RetryBudget(int64_t percent, int64_t burst)
    : percent_(std::clamp<int64_t>(percent, 0, 100)),
      cap_milli_(std::max<int64_t>(burst, 1) * 1000),
      milli_tokens_(cap_milli_) {}

void RetryBudget::Deposit() {
  if (percent_ == 0) return;
  int64_t current = milli_tokens_.load(std::memory_order_relaxed);
  while (current < cap_milli_) {
    const int64_t next = std::min(cap_milli_, current + percent_ * 10);
    if (milli_tokens_.compare_exchange_weak(current, next, std::memory_order_relaxed)) return;
  }
}

bool RetryBudget::TryWithdraw() {
  if (percent_ == 0) return false;
  int64_t current = milli_tokens_.load(std::memory_order_relaxed);
  while (current >= 1000) {
    if (milli_tokens_.compare_exchange_weak(current, current - 1000, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

CanaryGuard::CanaryGuard(GuardOptions options, prometheus::Gauge* tripped_gauge)
    : options_(options), gauge_(tripped_gauge) {
  if (gauge_ != nullptr) gauge_->Set(0);
}

int64_t CanaryGuard::SliceIndex(Clock::time_point now) const {
  const auto slice = std::max<int64_t>(1, options_.window.count() / static_cast<int64_t>(kSlices));
  return std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() /
         slice;
}

bool CanaryGuard::Record(bool error, Clock::time_point now) {
  if (tripped()) return false;
  const int64_t index = SliceIndex(now);
  int64_t requests = 0;
  int64_t errors = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slice& s = slices_[static_cast<size_t>(index) % kSlices];
    if (s.index != index) s = Slice{index, 0, 0};
    ++s.requests;
    if (error) ++s.errors;
    for (const Slice& w : slices_) {
      if (w.index > index - static_cast<int64_t>(kSlices) && w.index <= index) {
        requests += w.requests;
        errors += w.errors;
      }
    }
  }
  if (requests < options_.min_samples || errors < options_.min_errors) return false;
  if (static_cast<double>(errors) <= options_.max_error_rate * static_cast<double>(requests)) {
    return false;
  }
  bool expected = false;
  if (!tripped_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) return false;
  if (gauge_ != nullptr) gauge_->Set(1);
  return true;
}

std::pair<int64_t, int64_t> CanaryGuard::Counts(Clock::time_point now) const {
  const int64_t index = SliceIndex(now);
  std::lock_guard<std::mutex> lock(mu_);
  int64_t requests = 0;
  int64_t errors = 0;
  for (const Slice& w : slices_) {
    if (w.index > index - static_cast<int64_t>(kSlices) && w.index <= index) {
      requests += w.requests;
      errors += w.errors;
    }
  }
  return {requests, errors};
}

}  // namespace sluice::dataplane
