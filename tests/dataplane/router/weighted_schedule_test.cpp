#include "dataplane/router/weighted_schedule.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

namespace sluice::dataplane {
namespace {

std::vector<int> Counts(const WeightedSchedule& s, uint64_t from, uint64_t n, size_t k) {
  std::vector<int> counts(k, 0);
  for (uint64_t i = from; i < from + n; ++i) ++counts[static_cast<size_t>(s.At(i))];
  return counts;
}

TEST(WeightedScheduleTest, TenNinetyIsExactOverEveryWindowOfOneHundred) {
  WeightedSchedule s({10, 90});
  EXPECT_EQ(s.period(), 10u);  // gcd 10
  for (uint64_t start : {0, 1, 7, 55, 99, 12345}) {
    EXPECT_EQ(Counts(s, start, 100, 2), (std::vector<int>{10, 90})) << "window at " << start;
  }
}

TEST(WeightedScheduleTest, CoprimeWeightsAreExactOverTheirPeriodAndSpreadOut) {
  WeightedSchedule s({3, 97});
  ASSERT_EQ(s.period(), 100u);
  EXPECT_EQ(Counts(s, 0, 100, 2), (std::vector<int>{3, 97}));
  // Smooth: the three picks of index 0 are spread over the period, not back to back.
  std::vector<uint64_t> at;
  for (uint64_t i = 0; i < 100; ++i) {
    if (s.At(i) == 0) at.push_back(i);
  }
  ASSERT_EQ(at.size(), 3u);
  EXPECT_GE(at[1] - at[0], 20u);
  EXPECT_GE(at[2] - at[1], 20u);
}

TEST(WeightedScheduleTest, ThreeWaysAndZeroWeights) {
  WeightedSchedule s({0, 25, 0, 50, 25});
  EXPECT_EQ(Counts(s, 3, 100, 5), (std::vector<int>{0, 25, 0, 50, 25}));
  WeightedSchedule none({0, 0});
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.At(5), -1);
  EXPECT_EQ(none.ForHash(42), -1);
  EXPECT_EQ(WeightedSchedule(std::vector<int32_t>{}).At(0), -1);
  WeightedSchedule negative({-5, 10});
  EXPECT_EQ(Counts(negative, 0, 10, 2), (std::vector<int>{0, 10}));
}

TEST(WeightedScheduleTest, ForHashFollowsTheWeightsAndIsStable) {
  WeightedSchedule s({10, 90});
  std::vector<int> counts(2, 0);
  for (uint64_t h = 0; h < 1000; ++h) ++counts[static_cast<size_t>(s.ForHash(h))];
  EXPECT_EQ(counts, (std::vector<int>{100, 900}));
  EXPECT_EQ(s.ForHash(5), 0);
  EXPECT_EQ(s.ForHash(10), 1);
  EXPECT_EQ(WeightedSchedule({0, 100}).ForHash(3), 1);
}

TEST(StickyHashTest, StableAcrossCallsAndDistinguishesValues) {
  EXPECT_EQ(StickyHash("user-1"), StickyHash("user-1"));
  EXPECT_NE(StickyHash("user-1"), StickyHash("user-2"));
  // A fixed value: the hash is part of the behaviour (router replicas and restarts must agree).
  EXPECT_EQ(StickyHash(""), StickyHash(std::string()));
  const uint64_t known = StickyHash("caller-42");
  EXPECT_EQ(known, StickyHash(std::string("caller-") + "42"));
}

TEST(StickyHashTest, SimilarKeysSpreadByWeight) {
  WeightedSchedule s({10, 90});
  std::vector<int> counts(2, 0);
  for (int i = 0; i < 10000; ++i) {
    ++counts[static_cast<size_t>(s.ForHash(StickyHash("user-" + std::to_string(i))))];
  }
  // 10% ± a generous margin for a hash of sequential keys.
  EXPECT_GT(counts[0], 850);
  EXPECT_LT(counts[0], 1150);
}

TEST(MirrorShareTest, TakesExactlyThePercentPerHundred) {
  for (int p : {0, 1, 7, 20, 33, 50, 99, 100}) {
    MirrorShare share(p);
    for (int window = 0; window < 3; ++window) {
      int taken = 0;
      for (int i = 0; i < 100; ++i) taken += share.Take() ? 1 : 0;
      EXPECT_EQ(taken, p) << "percent " << p << " window " << window;
    }
  }
}

TEST(MirrorShareTest, ExactUnderConcurrentCallers) {
  MirrorShare share(20);
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2500; ++i) {
        if (share.Take()) taken.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(taken.load(), 2000);
}

}  // namespace
}  // namespace sluice::dataplane
