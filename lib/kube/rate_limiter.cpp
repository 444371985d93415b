#include "lib/kube/rate_limiter.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace sluice::kube {

ItemExponentialRateLimiter::ItemExponentialRateLimiter(std::chrono::nanoseconds base,
                                                       std::chrono::nanoseconds max)
    : base_(base), max_(std::max(base, max)) {}

std::chrono::nanoseconds ItemExponentialRateLimiter::When(const std::string& key) {
  int exponent;
  {
    std::lock_guard<std::mutex> guard(mu_);
    exponent = failures_[key]++;
  }
  if (base_.count() <= 0) return std::chrono::nanoseconds(0);
  // Doubling past 62 bits overflows; by then the cap has long been reached.
  if (exponent >= 62) return max_;
  const int64_t base = base_.count();
  const int64_t factor = int64_t{1} << exponent;
  if (base > max_.count() / factor) return max_;
  return std::chrono::nanoseconds(base * factor);
}

void ItemExponentialRateLimiter::Forget(const std::string& key) {
  std::lock_guard<std::mutex> guard(mu_);
  failures_.erase(key);
}

int ItemExponentialRateLimiter::NumRequeues(const std::string& key) {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

namespace {
std::chrono::nanoseconds TokenInterval(double qps) {
  assert(qps > 0 && "token bucket needs a positive rate");
  if (!(qps > 0)) qps = 1e-9;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(1e9 / qps)));
}
}  // namespace

TokenBucketRateLimiter::TokenBucketRateLimiter(Clock& clock, double qps, int burst)
    : clock_(clock), interval_(TokenInterval(qps)), burst_(std::max(burst, 1)) {}

std::chrono::nanoseconds TokenBucketRateLimiter::When(const std::string& /*key*/) {
  const auto now = clock_.Now();
  std::lock_guard<std::mutex> guard(mu_);
  // full_at_ is the time the bucket refills completely; taking a token pushes it one interval
  // later. The token is available once the bucket would hold at least zero tokens, i.e. at
  // full_at_ - burst * interval.
  const auto base = full_at_ && *full_at_ > now ? *full_at_ : now;
  full_at_ = base + interval_;
  const auto available_at = *full_at_ - burst_ * interval_;
  return available_at > now
             ? std::chrono::duration_cast<std::chrono::nanoseconds>(available_at - now)
             : std::chrono::nanoseconds(0);
}

MaxOfRateLimiter::MaxOfRateLimiter(std::vector<std::unique_ptr<RateLimiter>> limiters)
    : limiters_(std::move(limiters)) {}

std::chrono::nanoseconds MaxOfRateLimiter::When(const std::string& key) {
  std::chrono::nanoseconds longest(0);
  // Every limiter must see the requeue, so no early exit.
  for (const auto& l : limiters_) longest = std::max(longest, l->When(key));
  return longest;
}

void MaxOfRateLimiter::Forget(const std::string& key) {
  for (const auto& l : limiters_) l->Forget(key);
}

int MaxOfRateLimiter::NumRequeues(const std::string& key) {
  int most = 0;
  for (const auto& l : limiters_) most = std::max(most, l->NumRequeues(key));
  return most;
}

std::unique_ptr<RateLimiter> DefaultControllerRateLimiter(Clock& clock) {
  std::vector<std::unique_ptr<RateLimiter>> limiters;
  limiters.push_back(std::make_unique<ItemExponentialRateLimiter>(std::chrono::milliseconds(5),
                                                                  std::chrono::seconds(1000)));
  limiters.push_back(std::make_unique<TokenBucketRateLimiter>(clock, 10.0, 100));
  return std::make_unique<MaxOfRateLimiter>(std::move(limiters));
}

}  // namespace sluice::kube
