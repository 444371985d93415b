#include "lib/kube/rate_limiter.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/lib/base/fake_clock.h"

namespace sluice::kube {
namespace {

using sluice::testing::FakeClock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(ItemExponentialRateLimiterTest, DoublesPerItemFromFiveMilliseconds) {
  ItemExponentialRateLimiter limiter;  // 5 ms .. 1000 s
  EXPECT_EQ(limiter.When("a"), milliseconds(5));
  EXPECT_EQ(limiter.When("a"), milliseconds(10));
  EXPECT_EQ(limiter.When("a"), milliseconds(20));
  EXPECT_EQ(limiter.When("a"), milliseconds(40));
  EXPECT_EQ(limiter.NumRequeues("a"), 4);
  // Another item has its own history.
  EXPECT_EQ(limiter.When("b"), milliseconds(5));
  EXPECT_EQ(limiter.NumRequeues("b"), 1);
}

TEST(ItemExponentialRateLimiterTest, CapsAtMaxAndNeverOverflows) {
  ItemExponentialRateLimiter limiter(milliseconds(5), seconds(1000));
  nanoseconds last{};
  for (int i = 0; i < 200; ++i) {
    auto d = limiter.When("a");
    EXPECT_GE(d, last);
    EXPECT_LE(d, seconds(1000));
    last = d;
  }
  EXPECT_EQ(last, seconds(1000));
  // 5 ms * 2^17 = 655.36 s is the last step below the cap; 2^18 is capped.
  ItemExponentialRateLimiter fresh(milliseconds(5), seconds(1000));
  for (int i = 0; i < 17; ++i) fresh.When("k");
  EXPECT_EQ(fresh.When("k"), milliseconds(655360));
  EXPECT_EQ(fresh.When("k"), seconds(1000));
}

TEST(ItemExponentialRateLimiterTest, ForgetResets) {
  ItemExponentialRateLimiter limiter;
  limiter.When("a");
  limiter.When("a");
  limiter.Forget("a");
  EXPECT_EQ(limiter.NumRequeues("a"), 0);
  EXPECT_EQ(limiter.When("a"), milliseconds(5));
  limiter.Forget("never-seen");  // idempotent, harmless
}

TEST(TokenBucketRateLimiterTest, BurstThenOneTokenPerInterval) {
  FakeClock clock;
  TokenBucketRateLimiter limiter(clock, 10.0, 100);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(limiter.When("x"), nanoseconds(0)) << i;
  EXPECT_EQ(limiter.When("x"), milliseconds(100));
  EXPECT_EQ(limiter.When("x"), milliseconds(200));
  EXPECT_EQ(limiter.When("x"), milliseconds(300));
  // Three tokens are owed; after 1 s (ten tokens earned) seven are back.
  clock.Advance(seconds(1));
  for (int i = 0; i < 7; ++i) ASSERT_EQ(limiter.When("x"), nanoseconds(0)) << i;
  EXPECT_EQ(limiter.When("x"), milliseconds(100));
  EXPECT_EQ(limiter.NumRequeues("x"), 0);
}

TEST(TokenBucketRateLimiterTest, PacesAtTheRateWhenCallersWaitTheirTurn) {
  FakeClock clock;
  TokenBucketRateLimiter limiter(clock, 10.0, 100);
  for (int i = 0; i < 100; ++i) limiter.When("x");
  const auto start = clock.Now();
  int passed = 0;
  // A caller that always waits the delay it was given gets exactly 10 per second.
  while (clock.Now() - start < seconds(10)) {
    auto d = limiter.When("x");
    EXPECT_EQ(d, milliseconds(100));
    clock.Advance(d);
    ++passed;
  }
  EXPECT_EQ(passed, 100);
}

TEST(TokenBucketRateLimiterTest, RefillsNoFurtherThanTheBurst) {
  FakeClock clock;
  TokenBucketRateLimiter limiter(clock, 10.0, 5);
  clock.Advance(seconds(3600));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(limiter.When("x"), nanoseconds(0));
  EXPECT_EQ(limiter.When("x"), milliseconds(100));
}

TEST(MaxOfRateLimiterTest, DefaultControllerLimiterTakesTheLongerWait) {
  FakeClock clock;
  auto limiter = DefaultControllerRateLimiter(clock);
  // Per-item backoff dominates while the bucket has tokens.
  EXPECT_EQ(limiter->When("a"), milliseconds(5));
  EXPECT_EQ(limiter->When("a"), milliseconds(10));
  EXPECT_EQ(limiter->NumRequeues("a"), 2);
  // 98 more distinct failing items drain the bucket (100 tokens in all) ...
  for (int i = 0; i < 98; ++i) EXPECT_EQ(limiter->When("k" + std::to_string(i)), milliseconds(5));
  // ... then the bucket dominates even for a fresh item.
  EXPECT_EQ(limiter->When("fresh"), milliseconds(100));
  limiter->Forget("a");
  EXPECT_EQ(limiter->NumRequeues("a"), 0);
}

}  // namespace
}  // namespace sluice::kube
