#pragma once

// The operator's shared cache: one informer per (resource, namespace) that any controller or
// reconciler reads, so a Deployment is listed and watched once however many controllers care
// about it (the role of controller-runtime's cache).
//
// Contract:
// - Register every resource before Start(); Register after Start() is an error.
// - Namespaces: an empty list caches every namespace (one informer per resource); otherwise one
//   informer per listed namespace, and reads of other namespaces see nothing.
// - Reads (the ObjectReader half) never block on the network and are thread-safe.
// - Stop() stops every informer and is idempotent; event handlers are not called afterwards.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/base/clock.h"
#include "lib/controller/metrics.h"
#include "lib/controller/object_io.h"
#include "lib/kube/client.h"
#include "lib/kube/informer.h"
#include "lib/kube/watcher.h"

namespace sluice::controllers {

// Makes the list/watch source for one resource in one namespace ("" = all). Production: the
// client; unit tests: an in-memory source.
using ListerWatcherFactory = std::function<std::unique_ptr<kube::ListerWatcher>(
    const kube::GroupVersionResource& gvr, const std::string& ns)>;

struct CacheOptions {
  std::vector<std::string> namespaces;  // empty: all namespaces
  std::chrono::nanoseconds resync_period{0};
  Clock* clock = nullptr;                // nullptr: Clock::Real(); must outlive the cache
  ControllerMetrics* metrics = nullptr;  // optional; must outlive the cache
  ListerWatcherFactory source;           // nullptr: list/watch through the client
  std::chrono::seconds watch_timeout{300};
  // Label keys every informer indexes, so ListByLabel on them reads only the matching objects
  // instead of filtering every object of the namespace.
  std::vector<std::string> indexed_labels;
  // How each informer's store holds its objects (kube::Store): kPacked trades a parse per read
  // for a fraction of the memory, for caches that hold many objects and read few at a time.
  kube::Store::Holding holding = kube::Store::Holding::kParsed;
};

class InformerCache final : public ObjectReader {
 public:
  // `client` must outlive the cache (unused when options.source is set).
  InformerCache(kube::Client* client, CacheOptions options);
  ~InformerCache() override;

  InformerCache(const InformerCache&) = delete;
  InformerCache& operator=(const InformerCache&) = delete;

  // Caches `gvr`; only objects matching `label_selector` when it is set. Registering the same
  // resource twice is a no-op when the selector is equal and InvalidArgument otherwise.
  // Every object is cached without metadata.managedFields and kubectl's last-applied-configuration
  // annotation. `transform` (optional) trims each object further before it is cached: what it
  // removes is invisible to every reader of the cache and to event handlers, so it must keep every
  // field any controller reads (the operator's are in operator/cache_transforms.h).
  // `indexes` are kept for this resource, so ListByIndex with one of them reads only the objects
  // it names (their values are computed from the transformed object).
  Status Register(const kube::GroupVersionResource& gvr, const std::string& label_selector = "",
                  std::function<void(kube::Json&)> transform = nullptr,
                  std::vector<ObjectIndex> indexes = {});
  bool IsRegistered(const kube::GroupVersionResource& gvr) const;

  // Adds `handler` to every informer of `gvr` (registered first).
  Status AddEventHandler(const kube::GroupVersionResource& gvr,
                         std::shared_ptr<kube::ResourceEventHandler> handler);

  void Start();
  void Stop();
  bool HasSynced() const;
  // True once every informer synced; false at `deadline` or after Stop().
  bool WaitForSync(Clock::Steady::time_point deadline);

  // ObjectReader.
  ObjectPtr Get(const kube::GroupVersionResource& gvr, const std::string& ns,
                const std::string& name) const override;
  std::vector<ObjectPtr> List(const kube::GroupVersionResource& gvr,
                              const std::string& ns) const override;
  std::vector<ObjectPtr> ListOwnedBy(const kube::GroupVersionResource& gvr, const std::string& ns,
                                     const std::string& owner_uid) const override;
  // From the index when `key` is one of CacheOptions::indexed_labels and `ns` is set; otherwise
  // ObjectReader's filter of List().
  std::vector<ObjectPtr> ListByLabel(const kube::GroupVersionResource& gvr, const std::string& ns,
                                     const std::string& key,
                                     const std::string& value) const override;
  // From the index when `gvr` was registered with `index` (by name); otherwise ObjectReader's
  // filter of List().
  std::vector<ObjectPtr> ListByIndex(const kube::GroupVersionResource& gvr, const std::string& ns,
                                     const ObjectIndex& index,
                                     const std::string& value) const override;

  // Objects cached across all informers (for logs and metrics).
  size_t Size() const;

 private:
  struct Entry {
    kube::GroupVersionResource gvr;
    std::string label_selector;
    std::vector<std::string> indexes;  // names of the ObjectIndexes kept
    // namespace ("" for all) -> informer
    std::map<std::string, std::unique_ptr<kube::Informer>> informers;
  };
  static std::string GvrKey(const kube::GroupVersionResource& gvr);
  // The informer that holds objects of `ns`, or nullptr.
  const kube::Informer* InformerFor(const Entry& entry, const std::string& ns) const;
  const Entry* Find(const kube::GroupVersionResource& gvr) const;

  kube::Client* client_;
  CacheOptions options_;
  Clock& clock_;

  mutable std::mutex mu_;
  // Entries are added only before Start() and never removed, so after Start() they are read
  // without the lock.
  std::map<std::string, std::unique_ptr<Entry>> entries_;  // guarded by mu_ until Start()
  bool started_ = false;                                   // guarded by mu_
  bool stopped_ = false;                                   // guarded by mu_
};

}  // namespace sluice::controllers
