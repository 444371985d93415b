#pragma once

// Rate limiters decide how long a work-queue item waits before it is handed out again.
//
// Contract: every limiter is thread-safe. When(key) counts as one more requeue of `key` and
// returns the delay to apply now; Forget(key) drops `key`'s history (call it after a successful
// reconcile; idempotent); NumRequeues(key) is how many When() calls happened since the last
// Forget (zero for limiters that keep no per-item history).

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lib/base/clock.h"

namespace sluice::kube {

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  virtual std::chrono::nanoseconds When(const std::string& key) = 0;
  virtual void Forget(const std::string& key) = 0;
  virtual int NumRequeues(const std::string& key) = 0;
};

// Per-item exponential backoff: base * 2^n for the n-th requeue since the last Forget, capped at
// `max`. Failing items slow down on their own; others are not affected.
class ItemExponentialRateLimiter final : public RateLimiter {
 public:
  ItemExponentialRateLimiter(std::chrono::nanoseconds base = std::chrono::milliseconds(5),
                             std::chrono::nanoseconds max = std::chrono::seconds(1000));

  std::chrono::nanoseconds When(const std::string& key) override;
  void Forget(const std::string& key) override;
  int NumRequeues(const std::string& key) override;

 private:
  const std::chrono::nanoseconds base_;
  const std::chrono::nanoseconds max_;
  std::mutex mu_;
  std::unordered_map<std::string, int> failures_;  // guarded by mu_
};

// An overall token bucket: `qps` tokens per second, at most `burst` saved up; every When() takes
// a token, and waits for it when the bucket is empty. It bounds the total retry rate of a
// controller whatever the number of failing items. Implemented as a virtual schedule (the time
// the next token is due) in integer nanoseconds, so the pacing is exact on a fake clock.
class TokenBucketRateLimiter final : public RateLimiter {
 public:
  // qps must be > 0; a burst below 1 is taken as 1. `clock` must outlive the limiter.
  TokenBucketRateLimiter(Clock& clock, double qps = 10.0, int burst = 100);

  std::chrono::nanoseconds When(const std::string& key) override;
  void Forget(const std::string& key) override {}
  int NumRequeues(const std::string& key) override { return 0; }

 private:
  Clock& clock_;
  const std::chrono::nanoseconds interval_;  // time to earn one token
  const int64_t burst_;
  std::mutex mu_;
  // When the bucket would be back to full; none before the first When().
  std::optional<Clock::Steady::time_point> full_at_;  // guarded by mu_
};

// The longest delay of several limiters; NumRequeues is the largest count, Forget reaches all.
class MaxOfRateLimiter final : public RateLimiter {
 public:
  explicit MaxOfRateLimiter(std::vector<std::unique_ptr<RateLimiter>> limiters);

  std::chrono::nanoseconds When(const std::string& key) override;
  void Forget(const std::string& key) override;
  int NumRequeues(const std::string& key) override;

 private:
  const std::vector<std::unique_ptr<RateLimiter>> limiters_;
};

// The controllers' default: per-item exponential (5 ms .. 1000 s) and an overall token bucket
// (10/s, burst 100), whichever asks for the longer wait.
std::unique_ptr<RateLimiter> DefaultControllerRateLimiter(Clock& clock);

}  // namespace sluice::kube
