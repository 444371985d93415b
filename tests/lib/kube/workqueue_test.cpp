#include "lib/kube/workqueue.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/lib/base/fake_clock.h"

namespace sluice::kube {
namespace {

using sluice::testing::FakeClock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

WorkQueueOptions On(FakeClock& clock) {
  WorkQueueOptions options;
  options.name = "test";
  options.clock = &clock;
  return options;
}

TEST(WorkQueueTest, DeduplicatesKeysNotYetTaken) {
  FakeClock clock;
  WorkQueue q(On(clock));
  q.Add("a");
  q.Add("b");
  q.Add("a");
  q.Add("a");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), "b");
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.NumProcessing(), 2u);
}

TEST(WorkQueueTest, KeyAddedWhileHeldComesBackAfterDone) {
  FakeClock clock;
  WorkQueue q(On(clock));
  q.Add("a");
  ASSERT_EQ(q.Get(), "a");
  q.Add("a");
  q.Add("a");
  // Not handed out while a worker holds it.
  EXPECT_EQ(q.Len(), 0u);
  q.Add("b");
  EXPECT_EQ(q.Get(), "b");
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u);
  EXPECT_EQ(q.Get(), "a");
  q.Done("a");
  q.Done("b");
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.NumProcessing(), 0u);
}

TEST(WorkQueueTest, DoneWithoutGetIsIgnored) {
  FakeClock clock;
  WorkQueue q(On(clock));
  q.Add("a");
  q.Done("a");
  q.Done("zzz");
  EXPECT_EQ(q.Len(), 1u);
  EXPECT_EQ(q.Get(), "a");
}

TEST(WorkQueueTest, FirstInFirstOut) {
  FakeClock clock;
  WorkQueue q(On(clock));
  for (const char* k : {"c", "a", "b"}) q.Add(k);
  EXPECT_EQ(q.Get(), "c");
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), "b");
}

TEST(WorkQueueTest, AddAfterHandsKeysOutInDueOrder) {
  FakeClock clock;
  WorkQueue q(On(clock));
  q.AddAfter("c", milliseconds(30));
  q.AddAfter("a", milliseconds(10));
  q.AddAfter("b", milliseconds(20));
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.NumDelayed(), 3u);

  clock.Advance(milliseconds(10));
  EXPECT_EQ(q.Get(), "a");
  clock.Advance(milliseconds(10));
  EXPECT_EQ(q.Get(), "b");

  // A getter waits for c's due time, on the clock.
  std::optional<std::string> got;
  std::thread getter([&] { got = q.Get(); });
  ASSERT_TRUE(clock.BlockUntilWaiterBy(clock.Now() + milliseconds(10)));
  clock.Advance(milliseconds(9));
  EXPECT_EQ(q.NumDelayed(), 1u);
  clock.Advance(milliseconds(1));
  getter.join();
  EXPECT_EQ(got, "c");
}

TEST(WorkQueueTest, AddAfterKeepsTheEarlierDueTime) {
  FakeClock clock;
  WorkQueue q(On(clock));
  q.AddAfter("a", milliseconds(50));
  q.AddAfter("a", milliseconds(10));
  q.AddAfter("a", milliseconds(40));
  EXPECT_EQ(q.NumDelayed(), 1u);
  clock.Advance(milliseconds(10));
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.NumDelayed(), 0u);
  // Zero delay is an ordinary add.
  q.AddAfter("b", nanoseconds(0));
  EXPECT_EQ(q.Len(), 1u);
}

TEST(WorkQueueTest, EarlierDelayedKeyWakesAGetterSleepingUntilLater) {
  FakeClock clock;
  WorkQueue q(On(clock));
  q.AddAfter("late", milliseconds(100));
  std::optional<std::string> got;
  std::thread getter([&] { got = q.Get(); });
  ASSERT_TRUE(clock.BlockUntilWaiterBy(clock.Now() + milliseconds(100)));
  q.AddAfter("soon", milliseconds(5));
  // The getter must re-arm for the earlier due time, not sleep on until 100 ms.
  ASSERT_TRUE(clock.BlockUntilWaiterBy(clock.Now() + milliseconds(5)));
  clock.Advance(milliseconds(5));
  getter.join();
  EXPECT_EQ(got, "soon");
}

TEST(WorkQueueTest, AddRateLimitedBacksOffPerItemAndForgetResets) {
  FakeClock clock;
  WorkQueue q(On(clock));
  const milliseconds expected[] = {milliseconds(5), milliseconds(10), milliseconds(20),
                                   milliseconds(40)};
  for (auto delay : expected) {
    q.AddRateLimited("a");
    EXPECT_EQ(q.Len(), 0u);
    ASSERT_EQ(clock.NextDeadline(), std::nullopt);  // nobody waits yet
    std::optional<std::string> got;
    std::thread getter([&] { got = q.Get(); });
    ASSERT_TRUE(clock.BlockUntilWaiterBy(clock.Now() + delay));
    EXPECT_EQ(*clock.NextDeadline() - clock.Now(), delay);
    clock.Advance(delay);
    getter.join();
    ASSERT_EQ(got, "a");
    q.Done("a");
  }
  EXPECT_EQ(q.NumRequeues("a"), 4);
  q.Forget("a");
  EXPECT_EQ(q.NumRequeues("a"), 0);
  q.AddRateLimited("a");
  clock.Advance(milliseconds(5));
  EXPECT_EQ(q.Get(), "a");
}

TEST(WorkQueueTest, ShutDownWakesEveryGetterAndRefusesNewKeys) {
  FakeClock clock;
  WorkQueue q(On(clock));
  constexpr int kGetters = 4;
  std::atomic<int> got_nullopt{0};
  std::vector<std::thread> getters;
  for (int i = 0; i < kGetters; ++i) {
    getters.emplace_back([&] {
      if (!q.Get().has_value()) ++got_nullopt;
    });
  }
  ASSERT_TRUE(clock.BlockUntilWaiters(kGetters));
  q.ShutDown();
  for (auto& t : getters) t.join();
  EXPECT_EQ(got_nullopt.load(), kGetters);
  EXPECT_TRUE(q.ShuttingDown());
  q.Add("a");
  q.AddAfter("b", milliseconds(1));
  q.AddRateLimited("c");
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.NumDelayed(), 0u);
  EXPECT_EQ(q.Get(), std::nullopt);
}

TEST(WorkQueueTest, ShutDownWithDrainWaitsForHeldAndQueuedKeys) {
  FakeClock clock;
  WorkQueue q(On(clock));
  q.Add("held");
  ASSERT_EQ(q.Get(), "held");
  q.Add("queued");
  q.AddAfter("delayed", milliseconds(10));
  q.Add("held");  // dirty while held: comes back after Done, during the drain too

  std::atomic<bool> drained{false};
  std::thread drainer([&] {
    q.ShutDownWithDrain();
    drained = true;
  });
  // New keys are refused once the drain started.
  while (!q.ShuttingDown()) std::this_thread::yield();
  q.Add("late");

  EXPECT_EQ(q.Get(), "queued");
  q.Done("queued");
  EXPECT_FALSE(drained.load());  // "held" is still held
  q.Done("held");
  EXPECT_FALSE(drained.load());  // ... and is queued again
  EXPECT_EQ(q.Get(), "held");
  EXPECT_FALSE(drained.load());
  q.Done("held");
  drainer.join();
  EXPECT_TRUE(drained.load());
  // The delayed key and the late add were dropped.
  EXPECT_EQ(q.Get(), std::nullopt);
}

TEST(WorkQueueTest, DrainWithIdleWorkersLetsThemExit) {
  FakeClock clock;
  WorkQueue q(On(clock));
  std::atomic<int> exited{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back([&] {
      while (auto key = q.Get()) q.Done(*key);
      ++exited;
    });
  }
  for (int i = 0; i < 50; ++i) q.Add("k" + std::to_string(i));
  q.ShutDownWithDrain();
  for (auto& t : workers) t.join();
  EXPECT_EQ(exited.load(), 3);
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.NumProcessing(), 0u);
}

// Many producers add keys from a small set while workers take and give them back. Two rules must
// hold: no key is ever held by two workers at once, and every add is followed by a processing
// of that key that saw it (nothing lost).
TEST(WorkQueueTest, OneWorkerPerKeyAndNothingLostUnderConcurrency) {
  WorkQueueOptions options;  // real clock; no delays involved
  options.name = "hammer";
  WorkQueue q(std::move(options));
  constexpr int kKeys = 32;
  constexpr int kProducers = 4;
  constexpr int kAddsPerProducer = 5000;
  constexpr int kWorkers = 4;

  std::array<std::atomic<int>, kKeys> version{};  // bumped before every Add
  std::array<std::atomic<int>, kKeys> seen{};     // highest version a worker started after
  std::array<std::atomic<bool>, kKeys> held{};
  std::array<std::atomic<int>, kKeys> processed{};
  std::atomic<int> overlaps{0};

  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.Get()) {
        const int k = std::stoi(key->substr(1));
        if (held[k].exchange(true)) ++overlaps;
        const int v = version[k].load();
        int prev = seen[k].load();
        while (prev < v && !seen[k].compare_exchange_weak(prev, v)) {
        }
        ++processed[k];
        std::this_thread::yield();  // widen the window for an overlap
        held[k].store(false);
        q.Done(*key);
      }
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937 rng(p + 1);
      std::uniform_int_distribution<int> pick(0, kKeys - 1);
      for (int i = 0; i < kAddsPerProducer; ++i) {
        const int k = pick(rng);
        version[k].fetch_add(1);
        q.Add("k" + std::to_string(k));
      }
    });
  }
  for (auto& t : producers) t.join();
  q.ShutDownWithDrain();
  for (auto& t : workers) t.join();

  EXPECT_EQ(overlaps.load(), 0);
  int total = 0;
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_EQ(seen[k].load(), version[k].load()) << "key k" << k << " lost its last add";
    total += processed[k].load();
  }
  // De-duplication: fewer reconciles than adds (not a strict bound, but all adds being handed
  // out one by one would mean the dirty set does nothing).
  EXPECT_GT(total, 0);
  EXPECT_LE(total, kProducers * kAddsPerProducer);
}

class RecordingMetrics : public WorkQueueMetrics {
 public:
  void SetDepth(size_t depth) override { depth_ = depth; }
  void IncAdds() override { ++adds_; }
  void ObserveQueueLatency(nanoseconds latency) override { latencies_.push_back(latency); }
  void ObserveWorkDuration(nanoseconds duration) override { durations_.push_back(duration); }
  void IncRetries() override { ++retries_; }

  size_t depth_ = 0;
  int adds_ = 0;
  int retries_ = 0;
  std::vector<nanoseconds> latencies_;
  std::vector<nanoseconds> durations_;
};

TEST(WorkQueueTest, MetricsHooksSeeDepthAddsLatencyDurationAndRetries) {
  FakeClock clock;
  auto metrics = std::make_shared<RecordingMetrics>();
  WorkQueueOptions options = On(clock);
  options.metrics = metrics;
  WorkQueue q(std::move(options));
  q.Add("a");
  q.Add("a");  // de-duplicated: not an add
  q.Add("b");
  EXPECT_EQ(metrics->adds_, 2);
  EXPECT_EQ(metrics->depth_, 2u);
  clock.Advance(milliseconds(7));
  ASSERT_EQ(q.Get(), "a");
  EXPECT_EQ(metrics->depth_, 1u);
  ASSERT_EQ(metrics->latencies_.size(), 1u);
  EXPECT_EQ(metrics->latencies_[0], milliseconds(7));
  clock.Advance(milliseconds(3));
  q.Done("a");
  ASSERT_EQ(metrics->durations_.size(), 1u);
  EXPECT_EQ(metrics->durations_[0], milliseconds(3));
  q.AddRateLimited("a");
  EXPECT_EQ(metrics->retries_, 1);
}

}  // namespace
}  // namespace sluice::kube
