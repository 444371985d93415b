#pragma once

// A Clock that only moves when a test says so. Code under test waits through Clock::WaitUntil
// on its own condition variable; Advance() wakes every waiter whose deadline has passed.
//
// No lost wake-ups: a waiter registers while holding its own mutex and keeps holding it until
// cv.wait() releases it atomically; Advance() takes that same mutex before notifying, so the
// notify cannot fall between registration and the wait. Advance() never holds the clock's mutex
// while taking a waiter's mutex, and a woken waiter never deregisters while Advance() may still
// touch its mutex and condition variable (the `notifying` hand-off), so the waiter's objects may
// be destroyed as soon as WaitUntil returns.
//
// Tests synchronise with the code under test through BlockUntilWaiters() instead of sleeping.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <vector>

#include "lib/base/clock.h"

namespace sluice::testing {

class FakeClock final : public Clock {
 public:
  // Wall time starts at 2024-01-01T00:00:00Z so timestamps in tests are reproducible.
  FakeClock() : FakeClock(Wall::time_point(std::chrono::seconds(1704067200))) {}
  explicit FakeClock(Wall::time_point wall_start)
      : wall_start_(wall_start), now_(Steady::time_point(std::chrono::hours(24))) {
    steady_start_ = now_;
  }

  Steady::time_point Now() const override {
    std::lock_guard<std::mutex> guard(mu_);
    return now_;
  }

  Wall::time_point WallNow() const override {
    std::lock_guard<std::mutex> guard(mu_);
    return wall_start_ + std::chrono::duration_cast<Wall::duration>(now_ - steady_start_);
  }

  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 Steady::time_point deadline) override {
    std::list<Waiter>::iterator self;
    {
      std::lock_guard<std::mutex> guard(mu_);
      if (deadline <= now_) return false;
      self = waiters_.insert(waiters_.end(), Waiter{deadline, &cv, lock.mutex(), false});
      changed_.notify_all();
    }
    cv.wait(lock);
    std::unique_lock<std::mutex> guard(mu_);
    if (self->notifying) {
      // Advance() is about to take our mutex to notify us; let it finish before we leave.
      lock.unlock();
      changed_.wait(guard, [&] { return !self->notifying; });
      const bool woke_before_deadline = now_ < deadline;
      waiters_.erase(self);
      changed_.notify_all();
      guard.unlock();
      lock.lock();
      return woke_before_deadline;
    }
    const bool woke_before_deadline = now_ < deadline;
    waiters_.erase(self);
    changed_.notify_all();
    return woke_before_deadline;
  }

  // Moves time forward by `d` and wakes the waiters whose deadline is now due. When it returns,
  // every due waiter has been notified (it may not have run yet).
  void Advance(std::chrono::nanoseconds d) {
    std::vector<std::list<Waiter>::iterator> due;
    {
      std::lock_guard<std::mutex> guard(mu_);
      now_ += std::chrono::duration_cast<Steady::duration>(d);
      for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
        if (!it->notifying && it->deadline <= now_) {
          it->notifying = true;
          due.push_back(it);
        }
      }
    }
    for (auto it : due) {
      {
        std::lock_guard<std::mutex> waiter_lock(*it->mu);
        it->cv->notify_all();
      }
      std::lock_guard<std::mutex> guard(mu_);
      it->notifying = false;
      changed_.notify_all();
    }
  }

  // Advances to the earliest pending deadline (if any); returns the distance moved.
  std::chrono::nanoseconds AdvanceToNextDeadline() {
    const auto next = NextDeadline();
    if (!next) return std::chrono::nanoseconds(0);
    const auto step = *next - Now();
    Advance(step);
    return step;
  }

  // Threads blocked in WaitUntil whose deadline has not passed (a waiter already due is on its
  // way out and is not counted).
  size_t NumWaiters() const {
    std::lock_guard<std::mutex> guard(mu_);
    return CountWaitingLocked();
  }
  bool HasWaiters() const { return NumWaiters() > 0; }

  // Blocks until at least `n` threads wait in WaitUntil, or `timeout` of real time passes (a
  // guard against a hung test, not a pacing device). Returns false on timeout.
  bool BlockUntilWaiters(size_t n,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    std::unique_lock<std::mutex> guard(mu_);
    return changed_.wait_for(guard, timeout, [&] { return CountWaitingLocked() >= n; });
  }

  // Blocks until some thread waits with a deadline at or before `deadline` (and still in the
  // future), e.g. a loop that re-armed its timer. Same timeout rule as BlockUntilWaiters.
  bool BlockUntilWaiterBy(Steady::time_point deadline,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    std::unique_lock<std::mutex> guard(mu_);
    return changed_.wait_for(guard, timeout, [&] {
      return std::any_of(waiters_.begin(), waiters_.end(), [&](const Waiter& w) {
        return !w.notifying && w.deadline > now_ && w.deadline <= deadline;
      });
    });
  }

  // Blocks until some thread waits with exactly `deadline`: a particular waiter, when others
  // with earlier deadlines (backoff timers) wait too. Same timeout rule as BlockUntilWaiters.
  bool BlockUntilWaiterAt(Steady::time_point deadline,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    std::unique_lock<std::mutex> guard(mu_);
    return changed_.wait_for(guard, timeout, [&] {
      return std::any_of(waiters_.begin(), waiters_.end(), [&](const Waiter& w) {
        return !w.notifying && w.deadline > now_ && w.deadline == deadline;
      });
    });
  }

  // The earliest deadline among current waiters, ignoring waits without a deadline.
  std::optional<Steady::time_point> NextDeadline() const {
    std::lock_guard<std::mutex> guard(mu_);
    std::optional<Steady::time_point> next;
    for (const auto& w : waiters_) {
      if (w.notifying || w.deadline <= now_ || w.deadline == Steady::time_point::max()) continue;
      if (!next || w.deadline < *next) next = w.deadline;
    }
    return next;
  }

 private:
  struct Waiter {
    Steady::time_point deadline;
    std::condition_variable* cv;
    std::mutex* mu;
    bool notifying;  // Advance() holds a pointer to cv/mu; the waiter must not leave yet
  };

  size_t CountWaitingLocked() const {
    return static_cast<size_t>(
        std::count_if(waiters_.begin(), waiters_.end(),
                      [&](const Waiter& w) { return !w.notifying && w.deadline > now_; }));
  }

  const Wall::time_point wall_start_;
  Steady::time_point steady_start_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;  // waiters_ or notifying flags changed
  Steady::time_point now_;                   // guarded by mu_
  std::list<Waiter> waiters_;                // guarded by mu_; a list so iterators stay valid
};

}  // namespace sluice::testing
