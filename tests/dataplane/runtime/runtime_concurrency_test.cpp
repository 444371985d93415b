// Predict is const and lock-free: many threads share one runtime. Run under ThreadSanitizer
// (label tsan) this proves the hot path reads shared state only.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/dataplane/runtime/test_util.h"
#include "dataplane/runtime/xgboost_runtime.h"

namespace sluice::dataplane {
namespace {

TEST(RuntimeConcurrency, ManyThreadsShareOneRuntime) {
  for (auto layout : {ForestOptions::Layout::kPerfect, ForestOptions::Layout::kSparse}) {
    LoadOptions opts;
    opts.layout = layout;
    auto loaded = XGBoostRuntime::Load(
        testing::Source(testing::RepoPath("bench/fraud/model/fraud.ubj")), opts);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    const XGBoostRuntime& rt = **loaded;
    const ReferenceSet& ref = *rt.reference();
    const size_t nf = rt.num_features();
    std::vector<float> expected(ref.num_rows);
    ASSERT_TRUE(rt.Predict(ref.inputs, ref.num_rows, expected).ok());

    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        std::vector<float> out(ref.num_rows);
        for (int iter = 0; iter < 20; ++iter) {
          // Alternate single rows and batches of different sizes so every kernel runs.
          const size_t batch = (t + iter) % 3 == 0 ? 1 : 8 + (t * 7 + iter) % 25;
          for (size_t r = 0; r < ref.num_rows; r += batch) {
            const size_t n = std::min(batch, ref.num_rows - r);
            Status s = rt.Predict(std::span<const float>(ref.inputs).subspan(r * nf, n * nf), n,
                                  std::span<float>(out).subspan(r, n));
            if (!s.ok()) mismatches++;
          }
          if (out != expected) mismatches++;
        }
        if (!rt.WarmUp().ok()) mismatches++;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0);
  }
}

}  // namespace
}  // namespace sluice::dataplane
