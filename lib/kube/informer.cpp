#include "lib/kube/informer.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace sluice::kube {

void StripManagedFields(Json& object) {
  auto meta = object.find("metadata");
  if (meta != object.end() && meta->is_object()) meta->erase("managedFields");
}

void StripLastAppliedConfiguration(Json& object) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return;
  auto annotations = meta->find("annotations");
  if (annotations != meta->end() && annotations->is_object()) {
    annotations->erase("kubectl.kubernetes.io/last-applied-configuration");
  }
}

Informer::Informer(std::unique_ptr<ListerWatcher> source, InformerOptions options)
    : name_(options.name),
      resync_period_(options.resync_period),
      clock_(options.clock != nullptr ? *options.clock : Clock::Real()),
      store_(std::make_shared<Store>(std::move(options.indexers), options.holding)) {
  WatcherOptions watcher_options = std::move(options.watcher);
  watcher_options.clock = &clock_;
  if (watcher_options.name.empty()) watcher_options.name = name_;
  watcher_ = std::make_unique<Watcher>(
      std::move(source), [this](WatcherEvent&& event) { OnWatcherEvent(std::move(event)); },
      std::move(watcher_options));
}

std::unique_ptr<Informer> Informer::ForResource(Client& client, const GroupVersionResource& gvr,
                                                const std::string& ns, InformerOptions options) {
  if (options.name.empty()) options.name = ns.empty() ? gvr.resource : ns + "/" + gvr.resource;
  return std::make_unique<Informer>(std::make_unique<ClientListerWatcher>(client, gvr, ns),
                                    std::move(options));
}

Informer::~Informer() {
  Stop();
}

void Informer::AddEventHandler(std::shared_ptr<ResourceEventHandler> handler) {
  std::lock_guard<std::mutex> dispatch(dispatch_mu_);
  for (const auto& object : store_->List()) handler->OnAdd(object);
  handlers_.push_back(std::move(handler));
}

void Informer::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stopped_) return;
    started_ = true;
  }
  watch_thread_ = std::thread([this] { watcher_->Run(); });
  if (resync_period_.count() > 0) resync_thread_ = std::thread([this] { ResyncLoop(); });
}

void Informer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    sync_cv_.notify_all();
    resync_cv_.notify_all();
  }
  watcher_->Stop();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (resync_thread_.joinable()) resync_thread_.join();
}

bool Informer::HasSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return synced_;
}

bool Informer::WaitForSync(Clock::Steady::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!synced_ && !stopped_) {
    if (!clock_.WaitUntil(sync_cv_, lock, deadline) && clock_.Now() >= deadline) break;
  }
  return synced_;
}

std::string Informer::resource_version() const {
  std::lock_guard<std::mutex> dispatch(dispatch_mu_);
  return resource_version_;
}

void Informer::DispatchLocked(const StoreChange& change) {
  for (const auto& handler : handlers_) {
    switch (change.kind) {
      case StoreChange::Kind::kAdded:
        handler->OnAdd(change.new_object);
        break;
      case StoreChange::Kind::kUpdated:
        handler->OnUpdate(change.old_object, change.new_object);
        break;
      case StoreChange::Kind::kDeleted:
        handler->OnDelete(change.new_object, change.final_state_unknown);
        break;
    }
  }
}

void Informer::OnWatcherEvent(WatcherEvent&& event) {
  bool first_sync = false;
  {
    std::lock_guard<std::mutex> dispatch(dispatch_mu_);
    switch (event.type) {
      case WatcherEventType::kRestarted: {
        const auto changes = store_->Replace(std::move(event.objects));
        for (const auto& change : changes) DispatchLocked(change);
        first_sync = true;
        break;
      }
      case WatcherEventType::kAdded:
      case WatcherEventType::kModified:
        DispatchLocked(store_->Upsert(std::move(event.object)));
        break;
      case WatcherEventType::kDeleted:
        DispatchLocked(store_->Remove(std::move(event.object)));
        break;
      case WatcherEventType::kBookmark:
        break;
    }
    resource_version_ = std::move(event.resource_version);
  }
  if (first_sync) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!synced_) {
      synced_ = true;
      spdlog::info("informer {}: synced, {} objects", name_, store_->Size());
    }
    sync_cv_.notify_all();
  }
}

void Informer::ResyncLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto next = clock_.Now() + std::chrono::duration_cast<Clock::Steady::duration>(resync_period_);
  while (!stopped_) {
    if (clock_.Now() < next) {
      clock_.WaitUntil(resync_cv_, lock, next);
      continue;
    }
    if (synced_) {
      lock.unlock();
      {
        std::lock_guard<std::mutex> dispatch(dispatch_mu_);
        for (const auto& object : store_->List()) {
          for (const auto& handler : handlers_) handler->OnUpdate(object, object);
        }
      }
      lock.lock();
    }
    next = clock_.Now() + std::chrono::duration_cast<Clock::Steady::duration>(resync_period_);
  }
}

}  // namespace sluice::kube
