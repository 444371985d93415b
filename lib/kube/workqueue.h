#pragma once

// The controllers' work queue: keys ("namespace/name") waiting to be reconciled.
//
// Contract:
// - De-duplicating: a key added several times before a worker takes it is handed out once.
// - One worker per key: a key is never handed to two workers at once. A key added while a worker
//   holds it is remembered and handed out again after that worker calls Done(key).
// - Every key returned by Get() must be given back with Done(key), whatever the outcome.
// - Delays (AddAfter, AddRateLimited) run on the queue's Clock; when a key is already waiting,
//   the earlier of the two due times wins.
// - After ShutDown() the queue refuses new keys and Get() returns nullopt at once, also in
//   threads already blocked in it; keys still queued are dropped (a restarted controller lists
//   everything again). ShutDownWithDrain() also refuses new keys but lets workers take what is
//   already queued and returns when no key is queued or held.
// - All methods are thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "lib/base/clock.h"
#include "lib/kube/rate_limiter.h"

namespace sluice::kube {

// Hooks for queue metrics; the operator implements them with prometheus-cpp. Called with the
// queue's lock held, so implementations must be quick and must not call back into the queue.
class WorkQueueMetrics {
 public:
  virtual ~WorkQueueMetrics() = default;
  // Keys ready to be handed out, after every change.
  virtual void SetDepth(size_t depth) {}
  // A key was accepted (de-duplicated adds are not counted).
  virtual void IncAdds() {}
  // From when a key became ready to when a worker took it.
  virtual void ObserveQueueLatency(std::chrono::nanoseconds latency) {}
  // From Get() to Done() of one key.
  virtual void ObserveWorkDuration(std::chrono::nanoseconds duration) {}
  // An AddRateLimited() call.
  virtual void IncRetries() {}
};

struct WorkQueueOptions {
  std::string name;        // for logs and metric labels
  Clock* clock = nullptr;  // nullptr: Clock::Real(); must outlive the queue
  // nullptr: DefaultControllerRateLimiter(*clock).
  std::unique_ptr<RateLimiter> rate_limiter;
  std::shared_ptr<WorkQueueMetrics> metrics;  // optional
};

class WorkQueue {
 public:
  explicit WorkQueue(WorkQueueOptions options = {});
  ~WorkQueue();

  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Marks `key` as needing work. Ignored after shutdown.
  void Add(const std::string& key);
  // Adds `key` once `delay` has passed on the clock (at once when delay <= 0).
  void AddAfter(const std::string& key, std::chrono::nanoseconds delay);
  // Adds `key` after the rate limiter's delay for it; counts as a retry.
  void AddRateLimited(const std::string& key);
  // Clears the rate limiter's history of `key` (a successful reconcile). Does not remove a
  // pending add.
  void Forget(const std::string& key);
  int NumRequeues(const std::string& key);

  // Blocks until a key is ready and returns it, now held by the caller until Done(key).
  // Returns nullopt when the queue shuts down.
  std::optional<std::string> Get();
  // Gives `key` back; if it was added again meanwhile it becomes ready again.
  void Done(const std::string& key);

  // Keys ready to be handed out (not counting delayed ones or ones held by workers).
  size_t Len() const;
  // Keys waiting for a delay to pass.
  size_t NumDelayed() const;
  // Keys currently held by workers.
  size_t NumProcessing() const;

  void ShutDown();
  void ShutDownWithDrain();
  bool ShuttingDown() const;

  const std::string& name() const { return name_; }

 private:
  using TimePoint = Clock::Steady::time_point;

  void AddLocked(const std::string& key, TimePoint now);
  // Moves delayed keys whose time has come into the ready queue.
  void PromoteDueLocked(TimePoint now);
  void ReportDepthLocked();

  const std::string name_;
  Clock& clock_;
  std::unique_ptr<RateLimiter> rate_limiter_;
  std::shared_ptr<WorkQueueMetrics> metrics_;

  mutable std::mutex mu_;
  std::condition_variable get_cv_;              // a key became ready, a due time moved, or shutdown
  std::condition_variable drain_cv_;            // a key was given back
  std::deque<std::string> queue_;               // guarded by mu_; ready, in order
  std::unordered_set<std::string> dirty_;       // guarded by mu_; needs work
  std::unordered_set<std::string> processing_;  // guarded by mu_; held by a worker
  std::unordered_map<std::string, TimePoint> ready_at_;    // guarded by mu_; when it became ready
  std::unordered_map<std::string, TimePoint> started_at_;  // guarded by mu_; when a worker took it
  std::map<std::string, TimePoint> delayed_by_key_;        // guarded by mu_
  std::set<std::pair<TimePoint, std::string>> delayed_;    // guarded by mu_; by due time
  bool shutting_down_ = false;                             // guarded by mu_
  bool draining_ = false;                                  // guarded by mu_
};

}  // namespace sluice::kube
