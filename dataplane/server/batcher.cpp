#include "dataplane/server/batcher.h"

#include <algorithm>
#include <cstring>

namespace sluice::dataplane {

Result<std::unique_ptr<Batcher>> Batcher::Create(const Runtime& runtime,
                                                 const BatcherOptions& options, Clock& clock) {
  if (options.max_batch_size < 1) return InvalidArgument("batcher: max_batch_size must be >= 1");
  if (options.max_queue_size < 1) return InvalidArgument("batcher: max_queue_size must be >= 1");
  if (options.max_queue_delay.count() < 0 || options.request_timeout.count() < 0) {
    return InvalidArgument("batcher: delays must not be negative");
  }
  std::unique_ptr<Batcher> b(new Batcher(runtime, options, clock));
  b->worker_ = std::thread([raw = b.get()] { raw->Run(); });
  return b;
}

Batcher::Batcher(const Runtime& runtime, const BatcherOptions& options, Clock& clock)
    : runtime_(runtime),
      options_(options),
      clock_(clock),
      features_(runtime.num_features()),
      outputs_(runtime.num_outputs()),
      ring_(options.max_queue_size) {
  batch_.reserve(options.max_queue_size);
  expired_.reserve(options.max_queue_size);
  in_.resize(options.max_batch_size * features_);
  out_.resize(options.max_batch_size * outputs_);
}

Batcher::~Batcher() { Stop(); }

Status Batcher::Submit(const BatchTask& task) {
  if (task.done == nullptr) return InvalidArgument("batcher: task has no completion");
  if (task.rows.size() != task.n_rows * features_) {
    return InvalidArgument("batcher: " + std::to_string(task.rows.size()) + " values for " +
                           std::to_string(task.n_rows) + " rows of " + std::to_string(features_) +
                           " features");
  }
  if (task.out.size() != task.n_rows * outputs_) {
    return InvalidArgument("batcher: output buffer does not fit " + std::to_string(task.n_rows) +
                           " rows");
  }
  const auto now = clock_.Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Unavailable("batcher is stopped");
    if (count_ == ring_.size()) {
      return ResourceExhausted("queue full: " + std::to_string(count_) + " requests waiting");
    }
    ring_[(head_ + count_) % ring_.size()] = Item{task, now};
    ++count_;
    queued_rows_ += task.n_rows;
  }
  cv_.notify_one();
  return Status::Ok();
}

bool Batcher::TryRunInline(const BatchTask& task) {
  if (!options_.run_inline_when_idle || options_.max_queue_delay.count() > 0) return false;
  if (task.done == nullptr || task.rows.size() != task.n_rows * features_ ||
      task.out.size() != task.n_rows * outputs_) {
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || worker_busy_ || inline_busy_ || count_ > 0) return false;
    inline_busy_ = true;
  }
  Status status = runtime_.Predict(task.rows, task.n_rows, task.out);
  {
    std::lock_guard<std::mutex> lock(mu_);
    inline_busy_ = false;
  }
  if (options_.on_batch) options_.on_batch(task.n_rows, 1);
  task.done->OnBatchDone(std::move(status), std::chrono::nanoseconds(0));
  return true;
}

void Batcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

size_t Batcher::queued_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

void Batcher::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return count_ > 0 || stopping_; });
    if (count_ == 0) return;  // stopping and drained
    if (options_.max_queue_delay.count() > 0 && !stopping_) {
      // Wait for a full batch, at most until the oldest request has waited max_queue_delay.
      const auto deadline = ring_[head_].enqueued + options_.max_queue_delay;
      while (queued_rows_ < options_.max_batch_size && !stopping_ && clock_.Now() < deadline) {
        clock_.WaitUntil(cv_, lock, deadline);
      }
    }
    const auto now = clock_.Now();
    TakeBatchLocked(now);
    worker_busy_ = true;
    lock.unlock();
    RunBatch(now);
    lock.lock();
    worker_busy_ = false;
  }
}

void Batcher::TakeBatchLocked(Clock::Steady::time_point now) {
  batch_.clear();
  expired_.clear();
  size_t rows = 0;
  while (count_ > 0) {
    Item& item = ring_[head_];
    const bool expired =
        options_.request_timeout.count() > 0 && now - item.enqueued >= options_.request_timeout;
    if (!expired) {
      // The first request always fits, however large; later ones only while the batch has room.
      if (!batch_.empty() && rows + item.task.n_rows > options_.max_batch_size) break;
      rows += item.task.n_rows;
    }
    (expired ? expired_ : batch_).push_back(item);
    queued_rows_ -= item.task.n_rows;
    head_ = (head_ + 1) % ring_.size();
    --count_;
    if (batch_.size() + expired_.size() >= ring_.size()) break;
  }
}

void Batcher::RunBatch(Clock::Steady::time_point started) {
  for (const Item& item : expired_) {
    item.task.done->OnBatchDone(
        Timeout("request waited longer than the " +
                std::to_string(options_.request_timeout.count()) + " us request timeout"),
        started - item.enqueued);
  }
  if (batch_.empty()) return;
  size_t rows = 0;
  for (const Item& item : batch_) rows += item.task.n_rows;

  Status status;
  if (batch_.size() == 1) {
    // Nothing to gather: predict straight into the caller's buffers.
    const BatchTask& t = batch_[0].task;
    status = runtime_.Predict(t.rows, t.n_rows, t.out);
  } else {
    if (in_.size() < rows * features_) in_.resize(rows * features_);
    if (out_.size() < rows * outputs_) out_.resize(rows * outputs_);
    float* dst = in_.data();
    for (const Item& item : batch_) {
      std::memcpy(dst, item.task.rows.data(), item.task.rows.size_bytes());
      dst += item.task.rows.size();
    }
    status = runtime_.Predict(std::span<const float>(in_.data(), rows * features_), rows,
                              std::span<float>(out_.data(), rows * outputs_));
    if (status.ok()) {
      const float* src = out_.data();
      for (const Item& item : batch_) {
        std::memcpy(item.task.out.data(), src, item.task.out.size_bytes());
        src += item.task.out.size();
      }
    }
  }
  if (options_.on_batch) options_.on_batch(rows, batch_.size());
  for (const Item& item : batch_) item.task.done->OnBatchDone(status, started - item.enqueued);
}

}  // namespace sluice::dataplane
