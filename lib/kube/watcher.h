#pragma once

// The watcher: keeps a consumer in step with one resource collection through list + watch.
//
// It is an explicit state machine:
//   kInitialList  list every page (consistent snapshot) -> emit kRestarted with the full set,
//                 remember the list's resourceVersion               -> kWatching
//                 list failed                                       -> kBackoff, then kInitialList
//   kWatching     watch from the last resourceVersion with bookmarks; every event and bookmark
//                 advances it
//                 server closed the stream                          -> kWatching (resume)
//                 410 Gone (HTTP or ERROR event)                    -> kInitialList (relist)
//                 transport or server error, or a watch that closed
//                 at once without events                            -> kBackoff, then kWatching
//   kBackoff      wait (exponential with jitter, on the Clock), then the state it came for
//   kStopped      Stop() was called
//
// Contract:
// - Events reach the sink in order, on the thread that called Run(). A relist emits one
//   kRestarted with the complete current set; the consumer diffs it against what it holds to
//   find objects that vanished meanwhile (Store::Replace does that).
// - No event is emitted twice within one watch, and a resumed watch starts after the last
//   delivered resourceVersion, so events are neither lost nor repeated across clean closes and
//   reconnects; only a relist collapses what happened in between into the kRestarted set.
// - Every failure is retried forever with backoff; the backoff starts over once failures stop
//   for BackoffOptions::reset_after.
// - Stop() may be called from any thread, at any time; Run() returns promptly (an open watch
//   is cancelled, a backoff wait is cut short, a list in flight finishes its current page).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/backoff.h"
#include "lib/base/clock.h"
#include "lib/base/status.h"
#include "lib/kube/client.h"
#include "lib/kube/store.h"

namespace sluice::kube {

enum class WatcherState { kInitialList, kWatching, kBackoff, kStopped };
std::string_view WatcherStateName(WatcherState state);

enum class WatcherEventType { kAdded, kModified, kDeleted, kRestarted, kBookmark };
std::string_view WatcherEventTypeName(WatcherEventType type);

struct WatcherEvent {
  WatcherEventType type;
  ObjectPtr object;                // kAdded, kModified, kDeleted (final state), kBookmark
  std::vector<ObjectPtr> objects;  // kRestarted: every object that exists now
  std::string resource_version;    // where the watcher stands after this event
};

using WatcherSink = std::function<void(WatcherEvent&&)>;

// One step of the state machine, reported for logs, metrics and tests.
struct WatcherTransition {
  WatcherState from;
  WatcherState to;
  Status cause;                         // why (OK for the ordinary list -> watch step)
  std::chrono::nanoseconds backoff{0};  // to == kBackoff: how long it waits
  std::string resource_version;
};

// Where a watcher lists and watches. ClientListerWatcher is the production one; the seam lets a
// watcher run over anything that speaks list + watch.
class ListerWatcher {
 public:
  virtual ~ListerWatcher() = default;
  // One page of the collection.
  virtual Result<Json> List(const ListOptions& options) = 0;
  // Same contract as Client::Watch.
  virtual Status Watch(const WatchOptions& options,
                       const std::function<bool(WatchEvent&&)>& on_event,
                       const CancelFlag* cancel) = 0;
};

// One resource (in one namespace, or all namespaces when `ns` is empty) through `client`, which
// must outlive it.
class ClientListerWatcher final : public ListerWatcher {
 public:
  ClientListerWatcher(Client& client, GroupVersionResource gvr, std::string ns)
      : client_(client), gvr_(std::move(gvr)), ns_(std::move(ns)) {}

  Result<Json> List(const ListOptions& options) override {
    return client_.List(gvr_, ns_, options);
  }
  Status Watch(const WatchOptions& options, const std::function<bool(WatchEvent&&)>& on_event,
               const CancelFlag* cancel) override {
    return client_.Watch(gvr_, ns_, options, on_event, cancel);
  }

 private:
  Client& client_;
  const GroupVersionResource gvr_;
  const std::string ns_;
};

struct WatcherOptions {
  std::string name;  // for logs, e.g. "configmaps"
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;  // 0 lists in one page
  // Each watch asks the server to end it after a random time in [watch_timeout, 2*watch_timeout)
  // so many watchers do not reconnect together; the watcher then resumes.
  std::chrono::seconds watch_timeout{300};
  BackoffOptions backoff;  // 800 ms .. 30 s, x2, jitter, reset after 120 s healthy
  // A watch that ends sooner than this without delivering anything is treated as a failure, so
  // a server that closes at once is not hammered.
  std::chrono::nanoseconds min_watch_duration = std::chrono::seconds(1);
  // Applied to every object before it is shared (e.g. drop metadata.managedFields to save memory).
  std::function<void(Json&)> transform;
  std::function<void(const WatcherTransition&)> on_transition;
  Clock* clock = nullptr;  // nullptr: Clock::Real(); must outlive the watcher
};

class Watcher {
 public:
  Watcher(std::unique_ptr<ListerWatcher> source, WatcherSink sink, WatcherOptions options = {});
  ~Watcher();

  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Runs the state machine on the calling thread until Stop(). Call at most once.
  void Run();
  // Thread-safe and idempotent; Run() returns promptly afterwards.
  void Stop();

  WatcherState state() const;
  std::string resource_version() const;

 private:
  struct ListResult {
    std::vector<ObjectPtr> objects;
    std::string resource_version;
  };

  Result<ListResult> ListAllPages();
  void ListStep();
  void WatchStep();
  void BackoffStep();
  // Moves to kBackoff, to continue with `next` after the wait.
  void FailTo(WatcherState next, const Status& cause);
  void Transition(WatcherState to, const Status& cause, std::chrono::nanoseconds backoff = {});
  ObjectPtr Share(Json&& object);
  void SetResourceVersion(std::string rv);

  std::unique_ptr<ListerWatcher> source_;
  WatcherSink sink_;
  WatcherOptions options_;
  Clock& clock_;
  Backoff backoff_;      // used by the Run() thread only
  std::mt19937_64 rng_;  // used by the Run() thread only

  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable wake_;                     // Stop() cuts a backoff wait short
  WatcherState state_ = WatcherState::kInitialList;  // guarded by mu_
  std::string resource_version_;                     // guarded by mu_

  // Run() thread only.
  WatcherState after_backoff_ = WatcherState::kInitialList;
  Clock::Steady::time_point backoff_until_;
  int gone_without_progress_ = 0;  // 410s since the last delivered event
};

}  // namespace sluice::kube
