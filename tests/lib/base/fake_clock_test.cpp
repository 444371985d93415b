#include "tests/lib/base/fake_clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(FakeClockTest, TimeMovesOnlyWhenAdvanced) {
  FakeClock clock;
  const auto t0 = clock.Now();
  const auto w0 = clock.WallNow();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(milliseconds(1500));
  EXPECT_EQ(clock.Now() - t0, milliseconds(1500));
  EXPECT_EQ(clock.WallNow() - w0, milliseconds(1500));
}

TEST(FakeClockTest, PastDeadlineTimesOutAtOnce) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  EXPECT_FALSE(clock.WaitUntil(cv, lock, clock.Now()));
  EXPECT_FALSE(clock.HasWaiters());
}

TEST(FakeClockTest, AdvanceWakesOnlyDueWaiters) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  const auto start = clock.Now();
  std::atomic<int> woke_early{0};
  std::atomic<int> woke_late{0};
  auto waiter = [&](milliseconds after, std::atomic<int>& woke) {
    std::unique_lock<std::mutex> lock(mu);
    while (clock.Now() < start + after) clock.WaitUntil(cv, lock, start + after);
    ++woke;
  };
  std::thread early(waiter, milliseconds(10), std::ref(woke_early));
  std::thread late(waiter, milliseconds(100), std::ref(woke_late));
  ASSERT_TRUE(clock.BlockUntilWaiters(2));
  clock.Advance(milliseconds(10));
  early.join();
  EXPECT_EQ(woke_early.load(), 1);
  EXPECT_EQ(woke_late.load(), 0);
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  EXPECT_EQ(clock.NextDeadline(), start + milliseconds(100));
  clock.Advance(milliseconds(90));
  late.join();
  EXPECT_EQ(woke_late.load(), 1);
  EXPECT_FALSE(clock.HasWaiters());
}

TEST(FakeClockTest, OrdinaryNotifyStillWakesAWaiter) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  std::thread t([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!ready) EXPECT_TRUE(clock.WaitUntil(cv, lock, Clock::Steady::time_point::max()));
  });
  ASSERT_TRUE(clock.BlockUntilWaiters(1));
  {
    std::lock_guard<std::mutex> lock(mu);
    ready = true;
  }
  cv.notify_all();
  t.join();
}

// Many rounds of "a thread waits for a deadline, the test advances exactly to it": a lost wake-up
// would hang a round (and fail through the join guard), a stale waiter would break the count.
TEST(FakeClockTest, NoLostWakeupsUnderRepeatedAdvance) {
  FakeClock clock;
  for (int round = 0; round < 300; ++round) {
    auto mu = std::make_unique<std::mutex>();
    auto cv = std::make_unique<std::condition_variable>();
    const auto deadline = clock.Now() + milliseconds(5);
    std::atomic<bool> done{false};
    std::thread t([&] {
      std::unique_lock<std::mutex> lock(*mu);
      while (clock.Now() < deadline) clock.WaitUntil(*cv, lock, deadline);
      done = true;
    });
    // Advance may race with the registration: either it is counted and woken, or it registers
    // after the advance and sees the deadline already passed.
    if (round % 2 == 0) {
      ASSERT_TRUE(clock.BlockUntilWaiters(1));
    }
    clock.Advance(milliseconds(5));
    t.join();
    EXPECT_TRUE(done.load());
    // The waiter's mutex and condition variable die right after it returned.
    cv.reset();
    mu.reset();
  }
}

TEST(FakeClockTest, BlockUntilWaitersTimesOutWhenNobodyWaits) {
  FakeClock clock;
  EXPECT_FALSE(clock.BlockUntilWaiters(1, milliseconds(20)));
}

}  // namespace
}  // namespace sluice::testing
