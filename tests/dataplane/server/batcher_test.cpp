#include "dataplane/server/batcher.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "tests/dataplane/server/fake_runtime.h"
#include "tests/lib/base/fake_clock.h"

namespace sluice::dataplane {
namespace {

using sluice::testing::FakeClock;
using sluice::testing::FakeRuntime;

constexpr size_t kFeatures = 3;

// One submitted request: its rows (row r of request `tag` holds tag*100 + r in every feature),
// its output buffer and its outcome.
class Req final : public BatchCompletion {
 public:
  Req(int tag, size_t n_rows) : tag_(tag), n_rows_(n_rows), rows_(n_rows * kFeatures), out_(n_rows) {
    for (size_t r = 0; r < n_rows; ++r) {
      for (size_t f = 0; f < kFeatures; ++f) rows_[r * kFeatures + f] = static_cast<float>(tag * 100 + r);
    }
  }
  BatchTask Task() { return BatchTask{rows_, n_rows_, out_, this}; }

  void OnBatchDone(Status status, std::chrono::nanoseconds queue_time) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    status_ = std::move(status);
    queue_time_ = queue_time;
    cv_.notify_all();
  }
  bool WaitDone() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return calls_ > 0; });
  }
  bool done() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_ > 0;
  }
  Status status() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::chrono::nanoseconds queue_time() {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_time_;
  }
  // The fake runtime's answer: the sum of the row.
  bool OutputsCorrect() {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t r = 0; r < n_rows_; ++r) {
      if (out_[r] != static_cast<float>(kFeatures * (tag_ * 100 + r))) return false;
    }
    return true;
  }

 private:
  const int tag_;
  const size_t n_rows_;
  std::vector<float> rows_;
  std::vector<float> out_;
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;                     // guarded by mu_
  Status status_;                     // guarded by mu_
  std::chrono::nanoseconds queue_time_{0};  // guarded by mu_
};

std::unique_ptr<Batcher> MakeBatcher(const FakeRuntime& rt, BatcherOptions o, Clock& clock) {
  auto b = Batcher::Create(rt, o, clock);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(b).value() : nullptr;
}

TEST(Batcher, ConcatenatesRequestsThatArriveWhileBusy) {
  FakeRuntime rt(kFeatures);
  rt.Close();
  auto b = MakeBatcher(rt, BatcherOptions{}, Clock::Real());
  Req a(1, 1), r2(2, 2), r3(3, 1), r4(4, 3);
  ASSERT_TRUE(b->Submit(a.Task()).ok());
  ASSERT_TRUE(rt.WaitEntered(1));  // a runs alone and holds the worker
  ASSERT_TRUE(b->Submit(r2.Task()).ok());
  ASSERT_TRUE(b->Submit(r3.Task()).ok());
  ASSERT_TRUE(b->Submit(r4.Task()).ok());
  EXPECT_EQ(b->queued_requests(), 3u);
  rt.Open();
  for (Req* r : {&a, &r2, &r3, &r4}) {
    ASSERT_TRUE(r->WaitDone());
    EXPECT_TRUE(r->status().ok()) << r->status();
    EXPECT_TRUE(r->OutputsCorrect());
    EXPECT_EQ(r->calls(), 1);
  }
  EXPECT_EQ(rt.calls(), (std::vector<size_t>{1, 6}));
}

TEST(Batcher, RunsInlineOnlyWhenTheWorkerIsIdleAndNothingIsQueued) {
  FakeRuntime rt(kFeatures);
  BatcherOptions o;
  o.run_inline_when_idle = true;
  std::vector<std::pair<size_t, size_t>> batches;  // on_batch runs on the thread that predicted
  std::mutex batches_mu;
  o.on_batch = [&](size_t rows, size_t requests) {
    std::lock_guard<std::mutex> lock(batches_mu);
    batches.emplace_back(rows, requests);
  };
  auto b = MakeBatcher(rt, o, Clock::Real());
  Req idle(1, 2);
  ASSERT_TRUE(b->TryRunInline(idle.Task()));
  EXPECT_TRUE(idle.done());  // answered before TryRunInline returned, on this thread
  EXPECT_TRUE(idle.status().ok());
  EXPECT_TRUE(idle.OutputsCorrect());
  EXPECT_EQ(idle.queue_time(), std::chrono::nanoseconds(0));

  // The worker holds a batch: a new request waits for it (and may join the next batch).
  rt.Close();
  Req a(2, 1), busy(3, 1), queued(4, 1);
  ASSERT_TRUE(b->Submit(a.Task()).ok());
  ASSERT_TRUE(rt.WaitEntered(2));
  EXPECT_FALSE(b->TryRunInline(busy.Task()));
  EXPECT_FALSE(busy.done());
  ASSERT_TRUE(b->Submit(busy.Task()).ok());
  EXPECT_FALSE(b->TryRunInline(queued.Task()));
  ASSERT_TRUE(b->Submit(queued.Task()).ok());
  rt.Open();
  for (Req* r : {&a, &busy, &queued}) {
    ASSERT_TRUE(r->WaitDone());
    EXPECT_TRUE(r->OutputsCorrect());
    EXPECT_EQ(r->calls(), 1);
  }
  EXPECT_EQ(rt.calls(), (std::vector<size_t>{2, 1, 2}));
  {
    std::lock_guard<std::mutex> lock(batches_mu);
    EXPECT_EQ(batches, (std::vector<std::pair<size_t, size_t>>{{2, 1}, {1, 1}, {2, 2}}));
  }

  // A task Submit would refuse is not run either.
  Req bad(5, 1);
  BatchTask t = bad.Task();
  t.n_rows = 2;
  EXPECT_FALSE(b->TryRunInline(t));
  b->Stop();
  Req late(6, 1);
  EXPECT_FALSE(b->TryRunInline(late.Task()));
}

TEST(Batcher, NeverRunsInlineWhenAskedToWaitForBatchesOrNotAskedAtAll) {
  FakeRuntime rt(kFeatures);
  BatcherOptions delayed;
  delayed.run_inline_when_idle = true;
  delayed.max_queue_delay = std::chrono::microseconds(100);
  auto b = MakeBatcher(rt, delayed, Clock::Real());
  Req r(1, 1);
  EXPECT_FALSE(b->TryRunInline(r.Task()));
  auto plain = MakeBatcher(rt, BatcherOptions{}, Clock::Real());
  EXPECT_FALSE(plain->TryRunInline(r.Task()));
  EXPECT_FALSE(r.done());
  EXPECT_TRUE(rt.calls().empty());
}

TEST(Batcher, MaxBatchSizeSplitsAndABigRequestRunsAlone) {
  FakeRuntime rt(kFeatures);
  rt.Close();
  BatcherOptions o;
  o.max_batch_size = 4;
  size_t batches = 0;
  o.on_batch = [&](size_t, size_t) { ++batches; };
  auto b = MakeBatcher(rt, o, Clock::Real());
  Req a(1, 1), r2(2, 2), r3(3, 2), r4(4, 1), r5(5, 3), big(6, 9), r7(7, 1);
  ASSERT_TRUE(b->Submit(a.Task()).ok());
  ASSERT_TRUE(rt.WaitEntered(1));
  for (Req* r : {&r2, &r3, &r4, &r5, &big, &r7}) ASSERT_TRUE(b->Submit(r->Task()).ok());
  rt.Open();
  for (Req* r : {&a, &r2, &r3, &r4, &r5, &big, &r7}) {
    ASSERT_TRUE(r->WaitDone());
    EXPECT_TRUE(r->status().ok());
    EXPECT_TRUE(r->OutputsCorrect());
  }
  EXPECT_EQ(rt.calls(), (std::vector<size_t>{1, 4, 4, 9, 1}));
  EXPECT_EQ(batches, 5u);
}

TEST(Batcher, FullQueueRefusesAtOnce) {
  FakeRuntime rt(kFeatures);
  rt.Close();
  BatcherOptions o;
  o.max_queue_size = 2;
  auto b = MakeBatcher(rt, o, Clock::Real());
  Req a(1, 1), r2(2, 1), r3(3, 1), r4(4, 1);
  ASSERT_TRUE(b->Submit(a.Task()).ok());
  ASSERT_TRUE(rt.WaitEntered(1));
  ASSERT_TRUE(b->Submit(r2.Task()).ok());
  ASSERT_TRUE(b->Submit(r3.Task()).ok());
  Status full = b->Submit(r4.Task());
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("queue full"), std::string::npos);
  rt.Open();
  for (Req* r : {&a, &r2, &r3}) {
    ASSERT_TRUE(r->WaitDone());
    EXPECT_TRUE(r->status().ok());
  }
  b->Stop();
  EXPECT_EQ(r4.calls(), 0);  // a refused request is never completed
}

TEST(Batcher, QueueDelayWaitsOnTheClockForMoreRows) {
  FakeClock clock;
  FakeRuntime rt(kFeatures);
  BatcherOptions o;
  o.max_batch_size = 4;
  o.max_queue_delay = std::chrono::microseconds(1000);
  auto b = MakeBatcher(rt, o, clock);
  Req a(1, 1), r2(2, 1);
  ASSERT_TRUE(b->Submit(a.Task()).ok());
  ASSERT_TRUE(clock.BlockUntilWaiters(1));  // the worker waits for the batch to fill
  ASSERT_TRUE(b->Submit(r2.Task()).ok());
  EXPECT_FALSE(a.done());
  clock.Advance(std::chrono::microseconds(999));
  EXPECT_TRUE(rt.calls().empty());
  clock.Advance(std::chrono::microseconds(1));
  ASSERT_TRUE(a.WaitDone());
  ASSERT_TRUE(r2.WaitDone());
  EXPECT_EQ(rt.calls(), std::vector<size_t>{2});
  EXPECT_EQ(a.queue_time(), std::chrono::microseconds(1000));

  // A batch that fills up does not wait for the delay.
  Req r3(3, 2), r4(4, 2);
  ASSERT_TRUE(b->Submit(r3.Task()).ok());
  ASSERT_TRUE(b->Submit(r4.Task()).ok());
  ASSERT_TRUE(r3.WaitDone());
  ASSERT_TRUE(r4.WaitDone());
  EXPECT_EQ(rt.calls(), (std::vector<size_t>{2, 4}));
  EXPECT_TRUE(r3.OutputsCorrect());
  EXPECT_TRUE(r4.OutputsCorrect());
}

TEST(Batcher, RequestsQueuedPastTheTimeoutFail) {
  FakeClock clock;
  FakeRuntime rt(kFeatures);
  rt.Close();
  BatcherOptions o;
  o.request_timeout = std::chrono::milliseconds(5);
  auto b = MakeBatcher(rt, o, clock);
  Req a(1, 1), stale(2, 1);
  ASSERT_TRUE(b->Submit(a.Task()).ok());
  ASSERT_TRUE(rt.WaitEntered(1));
  ASSERT_TRUE(b->Submit(stale.Task()).ok());
  clock.Advance(std::chrono::milliseconds(6));
  rt.Open();
  ASSERT_TRUE(a.WaitDone());
  ASSERT_TRUE(stale.WaitDone());
  EXPECT_TRUE(a.status().ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kTimeout);
  EXPECT_EQ(rt.calls(), std::vector<size_t>{1});
}

TEST(Batcher, StopFinishesQueuedWorkThenRefuses) {
  FakeRuntime rt(kFeatures);
  rt.Close();
  auto b = MakeBatcher(rt, BatcherOptions{}, Clock::Real());
  Req a(1, 1), r2(2, 2), r3(3, 1);
  ASSERT_TRUE(b->Submit(a.Task()).ok());
  ASSERT_TRUE(rt.WaitEntered(1));
  ASSERT_TRUE(b->Submit(r2.Task()).ok());
  ASSERT_TRUE(b->Submit(r3.Task()).ok());
  auto stopped = std::async(std::launch::async, [&] { b->Stop(); });
  EXPECT_EQ(stopped.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  rt.Open();
  stopped.get();
  for (Req* r : {&a, &r2, &r3}) {
    EXPECT_TRUE(r->done());
    EXPECT_TRUE(r->status().ok());
    EXPECT_TRUE(r->OutputsCorrect());
  }
  Req late(4, 1);
  EXPECT_EQ(b->Submit(late.Task()).code(), StatusCode::kUnavailable);
}

TEST(Batcher, RuntimeErrorReachesEveryRequestInTheBatch) {
  FakeRuntime rt(kFeatures);
  rt.Close();
  auto b = MakeBatcher(rt, BatcherOptions{}, Clock::Real());
  Req a(1, 1), r2(2, 1), r3(3, 1);
  ASSERT_TRUE(b->Submit(a.Task()).ok());
  ASSERT_TRUE(rt.WaitEntered(1));
  ASSERT_TRUE(b->Submit(r2.Task()).ok());
  ASSERT_TRUE(b->Submit(r3.Task()).ok());
  rt.FailWith(Internal("model exploded"));
  rt.Open();
  for (Req* r : {&a, &r2, &r3}) {
    ASSERT_TRUE(r->WaitDone());
    EXPECT_EQ(r->status().code(), StatusCode::kInternal);
  }
}

TEST(Batcher, RejectsBadTasksAndOptions) {
  FakeRuntime rt(kFeatures);
  auto b = MakeBatcher(rt, BatcherOptions{}, Clock::Real());
  std::vector<float> rows(5), out(1);
  Req owner(0, 1);
  EXPECT_EQ(b->Submit(BatchTask{rows, 1, out, &owner}).code(), StatusCode::kInvalidArgument);
  std::vector<float> rows_ok(3), out_bad(2);
  EXPECT_EQ(b->Submit(BatchTask{rows_ok, 1, out_bad, &owner}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b->Submit(BatchTask{rows_ok, 1, out, nullptr}).code(), StatusCode::kInvalidArgument);
  BatcherOptions zero;
  zero.max_batch_size = 0;
  EXPECT_FALSE(Batcher::Create(rt, zero, Clock::Real()).ok());
  BatcherOptions no_queue;
  no_queue.max_queue_size = 0;
  EXPECT_FALSE(Batcher::Create(rt, no_queue, Clock::Real()).ok());
}

TEST(Batcher, ConcurrentSubmittersEachGetTheirOwnAnswers) {
  FakeRuntime rt(kFeatures);
  BatcherOptions o;
  o.max_batch_size = 16;
  o.max_queue_size = 64;
  auto b = MakeBatcher(rt, o, Clock::Real());
  constexpr int kThreads = 6;
  constexpr int kPerThread = 300;
  std::atomic<int> correct{0};
  std::atomic<size_t> rows_submitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kPerThread; ++i) {
        const size_t n = 1 + rng() % 5;
        Req r(t * 1000 + i, n);
        Status s;
        while ((s = b->Submit(r.Task())).code() == StatusCode::kResourceExhausted) {
          std::this_thread::yield();
        }
        if (!s.ok() || !r.WaitDone()) continue;
        rows_submitted += n;
        if (r.status().ok() && r.OutputsCorrect() && r.calls() == 1) ++correct;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(correct.load(), kThreads * kPerThread);
  size_t rows_predicted = 0;
  for (size_t n : rt.calls()) {
    EXPECT_LE(n, 16u);
    rows_predicted += n;
  }
  EXPECT_EQ(rows_predicted, rows_submitted.load());
}

}  // namespace
}  // namespace sluice::dataplane
