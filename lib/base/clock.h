#pragma once

// Time as a dependency. Everything that decides by time (queue backoff, watch backoff, leader
// election, rollout pauses, analysis windows, autoscaler windows) takes a Clock&, so unit tests
// drive it with a FakeClock (tests/lib/base/fake_clock.h) instead of sleeping.

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace sluice {

class Clock {
 public:
  using Steady = std::chrono::steady_clock;
  using Wall = std::chrono::system_clock;

  virtual ~Clock() = default;

  // Monotonic time, for durations and deadlines.
  virtual Steady::time_point Now() const = 0;
  // Wall time, for what is written to the API (Lease renewTime, status timestamps).
  virtual Wall::time_point WallNow() const = 0;

  // Waits on `cv` (with `lock` held on entry and exit) until `deadline` or a notify. A fake clock
  // wakes such waiters when it is advanced past their deadline. Returns false on timeout.
  virtual bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         Steady::time_point deadline) = 0;

  // The process-wide real clock.
  static Clock& Real();
};

class RealClock final : public Clock {
 public:
  Steady::time_point Now() const override { return Steady::now(); }
  Wall::time_point WallNow() const override { return Wall::now(); }
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 Steady::time_point deadline) override {
    return cv.wait_until(lock, deadline) == std::cv_status::no_timeout;
  }
};

inline Clock& Clock::Real() {
  static RealClock clock;
  return clock;
}

}  // namespace sluice
