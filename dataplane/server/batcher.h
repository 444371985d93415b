#pragma once

// Dynamic batching for one model: rows from many requests are concatenated into one
// Runtime::Predict call and the outputs scattered back.
//
// A batch closes when it holds max_batch_size rows, or when its oldest request has waited
// max_queue_delay (0: take whatever is queued as soon as the worker is free, so batches form only
// from requests that arrive while the previous batch runs). A request bigger than max_batch_size
// runs alone. At most max_queue_size requests wait; beyond that Submit refuses at once.
//
// Allocation: the queue is a fixed ring and the batch buffers grow to their high-water mark once;
// Submit and the worker allocate nothing per request.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "lib/base/clock.h"
#include "lib/base/status.h"
#include "dataplane/runtime/runtime.h"

namespace sluice::dataplane {

struct BatcherOptions {
  size_t max_batch_size = 32;  // rows per Predict call; >= 1
  std::chrono::microseconds max_queue_delay{0};
  size_t max_queue_size = 1024;  // requests waiting, not rows; >= 1
  // A request still queued this long after Submit fails with Timeout instead of running.
  // Zero: no limit.
  std::chrono::microseconds request_timeout{0};
  // Called after each Predict with its row count and request count (metrics), on the thread that
  // ran it.
  std::function<void(size_t rows, size_t requests)> on_batch;
  // With no max_queue_delay, a request that finds the worker idle and nothing queued would run
  // alone at once anyway; TryRunInline then runs it on the caller's thread and saves the two
  // thread hand-offs (to the worker and back), which dominate the latency of a small model.
  bool run_inline_when_idle = false;
};

// Told the outcome of one submitted request, exactly once, on the batcher's worker thread (on the
// caller's thread for TryRunInline). The caller owns the object and keeps it (and the rows and
// output buffer of its task) alive until then.
class BatchCompletion {
 public:
  virtual ~BatchCompletion() = default;
  // `queue_time` is the time from Submit until the batch containing the request started.
  virtual void OnBatchDone(Status status, std::chrono::nanoseconds queue_time) = 0;
};

struct BatchTask {
  std::span<const float> rows;  // n_rows * runtime.num_features(), row-major
  size_t n_rows = 0;
  std::span<float> out;  // n_rows * runtime.num_outputs()
  BatchCompletion* done = nullptr;
};

// Thread-safe. The Runtime must outlive the Batcher.
class Batcher {
 public:
  static Result<std::unique_ptr<Batcher>> Create(const Runtime& runtime,
                                                 const BatcherOptions& options, Clock& clock);
  ~Batcher();  // Stop()

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues the task. On OK, task.done is called later exactly once. Errors (task.done is then
  // never called): InvalidArgument for mismatched spans, ResourceExhausted when max_queue_size
  // requests already wait, Unavailable after Stop.
  Status Submit(const BatchTask& task);

  // Runs the task now on this thread, as a batch of its own, when options.run_inline_when_idle is
  // set, max_queue_delay is zero, nothing is queued and neither the worker nor another caller is
  // predicting; task.done is then called here before it returns true. Otherwise (and for a task
  // Submit would refuse) returns false without touching the task: Submit it. Not to be called
  // once Stop may run: Stop does not wait for a task running inline.
  bool TryRunInline(const BatchTask& task);

  // Refuses new work, runs everything already queued, joins the worker. Idempotent.
  void Stop();

  size_t queued_requests() const;
  const BatcherOptions& options() const { return options_; }

 private:
  struct Item {
    BatchTask task;
    Clock::Steady::time_point enqueued;
  };

  Batcher(const Runtime& runtime, const BatcherOptions& options, Clock& clock);
  void Run();
  // Moves up to max_batch_size rows of items from the ring into `batch_`; under mu_.
  void TakeBatchLocked(Clock::Steady::time_point now);
  void RunBatch(Clock::Steady::time_point started);

  const Runtime& runtime_;
  const BatcherOptions options_;
  Clock& clock_;
  const size_t features_;
  const size_t outputs_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> ring_;   // guarded by mu_; capacity max_queue_size
  size_t head_ = 0;          // guarded by mu_
  size_t count_ = 0;         // guarded by mu_
  size_t queued_rows_ = 0;   // guarded by mu_
  bool stopping_ = false;    // guarded by mu_
  bool worker_busy_ = false;  // guarded by mu_; the worker is running a batch
  bool inline_busy_ = false;  // guarded by mu_; a caller is running a task inline

  // Worker-only state.
  std::vector<Item> batch_;
  std::vector<Item> expired_;
  std::vector<float> in_;
  std::vector<float> out_;

  std::thread worker_;
};

}  // namespace sluice::dataplane
