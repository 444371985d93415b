#pragma once

// Exponential backoff with jitter, for loops that retry an external dependency (the watcher's
// list/watch, leader election). Delays grow initial, initial*factor, ... up to max; each delay is
// drawn uniformly from [(1 - jitter) * d, d] so many clients that failed together do not retry
// together, and `max` stays a true upper bound. The sequence starts again from `initial` when
// the previous failure is at least `reset_after` old, i.e. after a healthy stretch.
//
// Not thread-safe: one Backoff belongs to one retry loop.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

#include "lib/base/clock.h"

namespace sluice {

struct BackoffOptions {
  std::chrono::nanoseconds initial = std::chrono::milliseconds(800);
  std::chrono::nanoseconds max = std::chrono::seconds(30);
  double factor = 2.0;
  // Fraction of each delay that is random, in [0, 1]. 0 gives exact, reproducible delays.
  double jitter = 0.3;
  // A failure this long after the previous one counts as the first of a new sequence.
  std::chrono::nanoseconds reset_after = std::chrono::seconds(120);
  // Seed of the jitter; 0 seeds from std::random_device.
  uint64_t seed = 0;
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {})
      : options_(options), rng_(options.seed != 0 ? options.seed : std::random_device{}()) {
    options_.jitter = std::clamp(options_.jitter, 0.0, 1.0);
    if (options_.factor < 1.0) options_.factor = 1.0;
    if (options_.max < options_.initial) options_.max = options_.initial;
  }

  // Records a failure at `now` and returns how long to wait before the next attempt.
  std::chrono::nanoseconds Next(Clock::Steady::time_point now) {
    if (attempts_ > 0 && now - last_failure_ >= options_.reset_after) attempts_ = 0;
    last_failure_ = now;
    if (attempts_ == 0) {
      nominal_ = options_.initial;
    } else {
      const double grown = static_cast<double>(nominal_.count()) * options_.factor;
      nominal_ = grown >= static_cast<double>(options_.max.count())
                     ? options_.max
                     : std::chrono::nanoseconds(static_cast<int64_t>(grown));
    }
    ++attempts_;
    if (options_.jitter == 0.0) return nominal_;
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const double scale = 1.0 - options_.jitter * unit(rng_);
    return std::chrono::nanoseconds(
        static_cast<int64_t>(static_cast<double>(nominal_.count()) * scale));
  }

  // Forgets the failure history: the next delay is `initial` again.
  void Reset() {
    attempts_ = 0;
    nominal_ = std::chrono::nanoseconds(0);
  }

  // The un-jittered delay the last Next() was drawn from (zero before any failure).
  std::chrono::nanoseconds nominal() const { return nominal_; }
  // Failures since construction or the last reset (explicit or by a healthy stretch).
  int attempts() const { return attempts_; }
  const BackoffOptions& options() const { return options_; }

 private:
  BackoffOptions options_;
  std::mt19937_64 rng_;
  int attempts_ = 0;  // failures in the current sequence; 0: the next one starts it
  std::chrono::nanoseconds nominal_{0};
  Clock::Steady::time_point last_failure_;
};

}  // namespace sluice
