#include "lib/kube/workqueue.h"

namespace sluice::kube {

WorkQueue::WorkQueue(WorkQueueOptions options)
    : name_(std::move(options.name)),
      clock_(options.clock != nullptr ? *options.clock : Clock::Real()),
      rate_limiter_(options.rate_limiter != nullptr ? std::move(options.rate_limiter)
                                                    : DefaultControllerRateLimiter(clock_)),
      metrics_(std::move(options.metrics)) {}

WorkQueue::~WorkQueue() {
  ShutDown();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return;
  AddLocked(key, clock_.Now());
}

void WorkQueue::AddLocked(const std::string& key, TimePoint now) {
  if (!dirty_.insert(key).second) return;
  if (metrics_) metrics_->IncAdds();
  // A key held by a worker stays only dirty; Done() makes it ready again.
  if (processing_.count(key) != 0) return;
  queue_.push_back(key);
  ready_at_[key] = now;
  ReportDepthLocked();
  get_cv_.notify_one();
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::nanoseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return;
  const TimePoint now = clock_.Now();
  if (delay.count() <= 0) {
    AddLocked(key, now);
    return;
  }
  const TimePoint due = now + std::chrono::duration_cast<Clock::Steady::duration>(delay);
  auto existing = delayed_by_key_.find(key);
  if (existing != delayed_by_key_.end()) {
    if (existing->second <= due) return;
    delayed_.erase({existing->second, key});
    existing->second = due;
  } else {
    delayed_by_key_.emplace(key, due);
  }
  delayed_.emplace(due, key);
  // A getter may be sleeping until a later due time; one of them must look again.
  if (delayed_.begin()->second == key) get_cv_.notify_one();
}

void WorkQueue::AddRateLimited(const std::string& key) {
  const auto delay = rate_limiter_->When(key);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return;
    if (metrics_) metrics_->IncRetries();
  }
  AddAfter(key, delay);
}

void WorkQueue::Forget(const std::string& key) {
  rate_limiter_->Forget(key);
}

int WorkQueue::NumRequeues(const std::string& key) {
  return rate_limiter_->NumRequeues(key);
}

void WorkQueue::PromoteDueLocked(TimePoint now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    delayed_by_key_.erase(key);
    AddLocked(key, now);
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (shutting_down_ && !draining_) return std::nullopt;
    const TimePoint now = clock_.Now();
    if (!shutting_down_) PromoteDueLocked(now);
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      processing_.insert(key);
      dirty_.erase(key);
      auto ready = ready_at_.find(key);
      if (ready != ready_at_.end()) {
        if (metrics_) metrics_->ObserveQueueLatency(now - ready->second);
        ready_at_.erase(ready);
      }
      started_at_[key] = now;
      ReportDepthLocked();
      // Several keys may have become ready at once; pass the turn on.
      if (!queue_.empty()) get_cv_.notify_one();
      return key;
    }
    // Draining: a key still held may come back dirty on Done(), so stay until nothing is held.
    if (shutting_down_ && processing_.empty()) return std::nullopt;
    const TimePoint deadline =
        (!shutting_down_ && !delayed_.empty()) ? delayed_.begin()->first : TimePoint::max();
    clock_.WaitUntil(get_cv_, lock, deadline);
  }
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (processing_.erase(key) == 0) return;
  const TimePoint now = clock_.Now();
  auto started = started_at_.find(key);
  if (started != started_at_.end()) {
    if (metrics_) metrics_->ObserveWorkDuration(now - started->second);
    started_at_.erase(started);
  }
  if (dirty_.count(key) != 0 && (!shutting_down_ || draining_)) {
    queue_.push_back(key);
    ready_at_[key] = now;
    ReportDepthLocked();
    get_cv_.notify_one();
  }
  if (shutting_down_) {
    drain_cv_.notify_all();
    if (processing_.empty()) get_cv_.notify_all();
  }
}

size_t WorkQueue::Len() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t WorkQueue::NumDelayed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delayed_.size();
}

size_t WorkQueue::NumProcessing() const {
  std::lock_guard<std::mutex> lock(mu_);
  return processing_.size();
}

void WorkQueue::ShutDown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutting_down_ = true;
  draining_ = false;
  delayed_.clear();
  delayed_by_key_.clear();
  get_cv_.notify_all();
  drain_cv_.notify_all();
}

void WorkQueue::ShutDownWithDrain() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!shutting_down_) draining_ = true;
  shutting_down_ = true;
  delayed_.clear();
  delayed_by_key_.clear();
  get_cv_.notify_all();
  // A plain ShutDown() meanwhile abandons the queued keys; then only held keys are waited for.
  drain_cv_.wait(lock, [&] { return processing_.empty() && (queue_.empty() || !draining_); });
}

bool WorkQueue::ShuttingDown() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutting_down_;
}

void WorkQueue::ReportDepthLocked() {
  if (metrics_) metrics_->SetDepth(queue_.size());
}

}  // namespace sluice::kube
