#pragma once

// The informer: a watcher feeding a store, with event handlers and periodic resync. Controllers
// read the store (level-based) and use the handlers only to learn which keys to enqueue.
//
// Contract:
// - Handlers run one at a time, in event order, on the informer's threads; they must be quick
//   (enqueue a key) and must not call Stop(). When a handler runs, the store already reflects
//   the change it reports.
// - A relist after the watch broke (410 Gone) reports what changed meanwhile: adds, updates for
//   objects whose resourceVersion moved, and deletes with final_state_unknown for objects that
//   vanished. Nothing is reported twice.
// - HasSynced() turns true once the first complete list is in the store and its handlers ran,
//   and stays true.
// - With a resync period, every cached object is re-delivered as OnUpdate(obj, obj) each period
//   (on the Clock), so a controller revisits objects even when nothing changed.
// - Start() once; Stop() is idempotent, prompt, and joins the informer's threads.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/base/clock.h"
#include "lib/kube/client.h"
#include "lib/kube/store.h"
#include "lib/kube/watcher.h"

namespace sluice::kube {

class ResourceEventHandler {
 public:
  virtual ~ResourceEventHandler() = default;
  virtual void OnAdd(const ObjectPtr& object) {}
  virtual void OnUpdate(const ObjectPtr& old_object, const ObjectPtr& new_object) {}
  // `final_state_unknown`: the object vanished while the watch was broken and `object` is the
  // last version this informer saw; otherwise `object` is the object as it was deleted.
  virtual void OnDelete(const ObjectPtr& object, bool final_state_unknown) {}
};

// A handler made of optional functions.
class ResourceEventHandlerFuncs final : public ResourceEventHandler {
 public:
  std::function<void(const ObjectPtr&)> on_add;
  std::function<void(const ObjectPtr&, const ObjectPtr&)> on_update;
  std::function<void(const ObjectPtr&, bool)> on_delete;

  void OnAdd(const ObjectPtr& object) override {
    if (on_add) on_add(object);
  }
  void OnUpdate(const ObjectPtr& old_object, const ObjectPtr& new_object) override {
    if (on_update) on_update(old_object, new_object);
  }
  void OnDelete(const ObjectPtr& object, bool final_state_unknown) override {
    if (on_delete) on_delete(object, final_state_unknown);
  }
};

// Drops metadata.managedFields: controllers rarely read it and it is often the largest part of
// an object. Use as WatcherOptions::transform.
void StripManagedFields(Json& object);
// Drops the kubectl.kubernetes.io/last-applied-configuration annotation: a second copy of the
// object as `kubectl apply` last sent it, which controllers do not need.
void StripLastAppliedConfiguration(Json& object);

struct InformerOptions {
  std::string name;  // for logs
  Indexers indexers = DefaultIndexers();
  Store::Holding holding = Store::Holding::kParsed;  // see Store
  std::chrono::nanoseconds resync_period{0};         // zero: no resync
  WatcherOptions watcher;                            // selectors, paging, backoff, transform
  Clock* clock = nullptr;  // nullptr: Clock::Real(); also used by the watcher; must outlive
};

class Informer {
 public:
  Informer(std::unique_ptr<ListerWatcher> source, InformerOptions options);
  // Production wiring: list + watch `gvr` in `ns` ("" for all namespaces) through `client`,
  // which must outlive the informer.
  static std::unique_ptr<Informer> ForResource(Client& client, const GroupVersionResource& gvr,
                                               const std::string& ns, InformerOptions options = {});
  ~Informer();

  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // A handler added after Start() first gets OnAdd for every object already cached.
  void AddEventHandler(std::shared_ptr<ResourceEventHandler> handler);

  void Start();
  void Stop();

  bool HasSynced() const;
  // Waits until synced; false at the deadline (on the informer's clock) or when stopped.
  bool WaitForSync(Clock::Steady::time_point deadline);

  // The reader half of the cache; valid for as long as the caller keeps it.
  std::shared_ptr<const Store> store() const { return store_; }
  // The resourceVersion of the last event applied.
  std::string resource_version() const;
  WatcherState watcher_state() const { return watcher_->state(); }

 private:
  void OnWatcherEvent(WatcherEvent&& event);
  void DispatchLocked(const StoreChange& change);
  void ResyncLoop();

  const std::string name_;
  const std::chrono::nanoseconds resync_period_;
  Clock& clock_;
  std::shared_ptr<Store> store_;
  std::unique_ptr<Watcher> watcher_;

  // Serialises the store writes with handler calls, so handlers see events one at a time and in
  // order, whether they come from the watch or from resync.
  mutable std::mutex dispatch_mu_;
  std::vector<std::shared_ptr<ResourceEventHandler>> handlers_;  // guarded by dispatch_mu_
  std::string resource_version_;                                 // guarded by dispatch_mu_

  mutable std::mutex mu_;
  std::condition_variable sync_cv_;    // synced_ or stopped_ changed
  std::condition_variable resync_cv_;  // stopped_ changed
  bool started_ = false;               // guarded by mu_
  bool stopped_ = false;               // guarded by mu_
  bool synced_ = false;                // guarded by mu_

  std::thread watch_thread_;
  std::thread resync_thread_;
};

}  // namespace sluice::kube
