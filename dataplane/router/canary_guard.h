#pragma once

// The router's protection of callers from a bad canary (the rules: lib/api/canary_protection.h).
// - RetryBudget: how many failed canary requests may be sent once more to the stable revision.
// - CanaryGuard: one canary revision's recent outcomes, and whether they tripped it.
// Both are thread-safe and shared by the REST and gRPC proxies.

#include <prometheus/gauge.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "lib/api/canary_protection.h"

namespace sluice::dataplane {

// A token bucket in thousandths of a retry: every primary request adds `percent`/100 of a token
// (up to `burst` tokens), every retry takes a whole one. Over any stretch of time the retries are
// at most percent % of the primary requests plus `burst`, so a failing stable revision (whose
// failures are never retried) or a failing canary at a high weight cannot multiply the load. The
// bucket starts full so the first failures of a canary are covered before traffic has filled it.
class RetryBudget {
 public:
  explicit RetryBudget(int64_t percent = api::kRetryBudgetPercent, int64_t burst = 20);

  // A primary request was routed.
  void Deposit();
  // True when a retry may be sent (and takes its token).
  bool TryWithdraw();

  int64_t percent() const { return percent_; }

 private:
  const int64_t percent_;
  const int64_t cap_milli_;
  std::atomic<int64_t> milli_tokens_;
};

struct GuardOptions {
  // Trips when errors / requests > max_error_rate over the window, with at least min_samples
  // requests and min_errors errors in it. A max_error_rate of 1 or more never trips.
  double max_error_rate = api::kDefaultMaxErrorRate;
  int64_t min_samples = api::kGuardMinSamples;
  int64_t min_errors = api::kGuardMinErrors;
  std::chrono::milliseconds window{api::kGuardWindowMs};
  friend bool operator==(const GuardOptions&, const GuardOptions&) = default;
};

// The outcomes of one canary revision over the last `window` (the analysis interval; in 10
// slices, so an outcome leaves the window between 0.9 and 1 window after it came). Once tripped it
// stays tripped: the routing table makes a new guard when the revision's weight or role changes
// (the operator decided), and only then does the revision get requests again.
class CanaryGuard {
 public:
  using Clock = std::chrono::steady_clock;

  // `tripped_gauge` (may be null) is set to 0 now and to 1 when the guard trips.
  CanaryGuard(GuardOptions options, prometheus::Gauge* tripped_gauge);

  // Records one outcome of a request sent to the revision; true when this outcome tripped it.
  bool Record(bool error, Clock::time_point now);
  bool tripped() const { return tripped_.load(std::memory_order_acquire); }

  // Requests and errors in the window ending at `now` (for tests and logs).
  std::pair<int64_t, int64_t> Counts(Clock::time_point now) const;

 private:
  static constexpr size_t kSlices = 10;
  struct Slice {
    int64_t index = -1;  // which slice of time (now / slice length) the counts are for
    int64_t requests = 0;
    int64_t errors = 0;
  };
  int64_t SliceIndex(Clock::time_point now) const;

  const GuardOptions options_;
  prometheus::Gauge* const gauge_;
  std::atomic<bool> tripped_{false};
  mutable std::mutex mu_;
  std::array<Slice, kSlices> slices_{};  // guarded by mu_
};

}  // namespace sluice::dataplane
