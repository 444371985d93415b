#include "lib/base/backoff.h"

#include <gtest/gtest.h>

#include <chrono>

namespace sluice {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using TimePoint = Clock::Steady::time_point;

TEST(BackoffTest, DoublesFromInitialUpToMaxWithoutJitter) {
  Backoff backoff({.initial = milliseconds(800), .max = seconds(30), .factor = 2.0, .jitter = 0.0});
  TimePoint t;
  const milliseconds expected[] = {milliseconds(800),   milliseconds(1600),  milliseconds(3200),
                                   milliseconds(6400),  milliseconds(12800), milliseconds(25600),
                                   milliseconds(30000), milliseconds(30000)};
  for (auto want : expected) {
    t += seconds(1);
    EXPECT_EQ(backoff.Next(t), want);
  }
  EXPECT_EQ(backoff.attempts(), 8);
}

TEST(BackoffTest, JitterStaysWithinTheBandBelowTheNominalDelay) {
  Backoff backoff({.initial = milliseconds(800), .max = seconds(30), .jitter = 0.3, .seed = 42});
  TimePoint t;
  bool varied = false;
  std::chrono::nanoseconds first{};
  for (int i = 0; i < 200; ++i) {
    backoff.Reset();
    auto d = backoff.Next(t);
    EXPECT_LE(d, milliseconds(800));
    EXPECT_GE(d, milliseconds(560));
    if (i == 0) first = d;
    if (d != first) varied = true;
  }
  EXPECT_TRUE(varied);
  // At the cap the band is [0.7 * max, max].
  for (int i = 0; i < 20; ++i) backoff.Next(t);
  auto capped = backoff.Next(t);
  EXPECT_LE(capped, seconds(30));
  EXPECT_GE(capped, milliseconds(21000));
}

TEST(BackoffTest, StartsOverAfterAHealthyStretch) {
  Backoff backoff({.initial = milliseconds(100),
                   .max = seconds(10),
                   .jitter = 0.0,
                   .reset_after = seconds(120)});
  TimePoint t;
  EXPECT_EQ(backoff.Next(t), milliseconds(100));
  t += seconds(1);
  EXPECT_EQ(backoff.Next(t), milliseconds(200));
  t += seconds(119);  // 119 s since the last failure: not yet healthy long enough
  EXPECT_EQ(backoff.Next(t), milliseconds(400));
  t += seconds(120);
  EXPECT_EQ(backoff.Next(t), milliseconds(100));
  EXPECT_EQ(backoff.attempts(), 1);
}

TEST(BackoffTest, ExplicitResetForgetsHistory) {
  Backoff backoff({.initial = milliseconds(100), .jitter = 0.0});
  TimePoint t;
  backoff.Next(t);
  backoff.Next(t);
  backoff.Reset();
  EXPECT_EQ(backoff.attempts(), 0);
  EXPECT_EQ(backoff.Next(t), milliseconds(100));
}

}  // namespace
}  // namespace sluice
