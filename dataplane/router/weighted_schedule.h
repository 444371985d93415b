#pragma once

// Deterministic traffic shares for the router: which revision takes the n-th request, which
// revision a sticky caller belongs to, and which requests are copied to a mirror. Pure and
// immutable (MirrorShare aside), so the hot path reads them without locks.

#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sluice::dataplane {

// The order in which a smooth weighted round robin visits indices with the given weights (the
// nginx algorithm), precomputed for one period. Over ANY window of period() consecutive picks,
// index i is chosen exactly weights[i] / gcd(weights) times, and the picks of each index are
// spread evenly over the period instead of coming in bursts.
class WeightedSchedule {
 public:
  WeightedSchedule() = default;
  // Negative weights count as 0; indices with weight 0 are never chosen.
  explicit WeightedSchedule(const std::vector<int32_t>& weights);

  bool empty() const { return sequence_.empty(); }
  size_t period() const { return sequence_.size(); }
  // The index for the n-th pick; -1 when every weight is 0.
  int At(uint64_t n) const { return sequence_.empty() ? -1 : sequence_[n % sequence_.size()]; }
  // The index owning `hash` when the hash space is cut into consecutive ranges sized by weight:
  // the same hash maps to the same index for as long as the weights stay the same, and the share
  // of uniformly distributed hashes each index gets is its weight share. -1 when every weight is 0.
  int ForHash(uint64_t hash) const;

  bool operator==(const WeightedSchedule& other) const {
    return sequence_ == other.sequence_ && cumulative_ == other.cumulative_;
  }

 private:
  std::vector<uint16_t> sequence_;
  std::vector<int64_t> cumulative_;  // cumulative_[i]: sum of weights[0..i]
};

// A stable 64-bit hash of a sticky header's value (FNV-1a, then a finalizer that spreads the
// bits), identical across processes and runs, so every router replica pins a caller alike.
uint64_t StickyHash(std::string_view value);

// Takes exactly `percent` of the calls to Take(), evenly spread: call n is taken when
// floor((n+1)·p/100) > floor(n·p/100). Thread-safe (one atomic counter).
class MirrorShare {
 public:
  explicit MirrorShare(int32_t percent);
  bool Take();
  int32_t percent() const { return percent_; }

 private:
  const int32_t percent_;
  std::atomic<uint64_t> calls_{0};
};

}  // namespace sluice::dataplane
