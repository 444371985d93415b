#include "lib/controller/cache.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace sluice::controllers {

namespace {

std::string LabelIndexName(const std::string& key) {
  return "label:" + key;
}

// Files an object under "<namespace>/<value>" of its label `key`, so one namespace's objects
// are found without looking at another's.
kube::IndexFunc LabelIndexFunc(std::string key) {
  return [key = std::move(key)](const kube::Json& object) -> std::vector<std::string> {
    const kube::Json* label = JsonAt(object, {"metadata", "labels", key.c_str()});
    if (label == nullptr || !label->is_string()) return {};
    return {MetaString(object, "namespace") + "/" + label->get<std::string>()};
  };
}

std::string ObjectIndexName(const std::string& name) {
  return "index:" + name;
}

// Files an object under "<namespace>/<value>" and "*/<value>" for each of its values, so a
// lookup in one namespace or in all reads only the objects it returns.
kube::IndexFunc ObjectIndexFunc(ObjectIndex index) {
  return [index = std::move(index)](const kube::Json& object) -> std::vector<std::string> {
    std::vector<std::string> out;
    const std::string ns = MetaString(object, "namespace");
    for (const std::string& value : index.values(object)) {
      out.push_back(ns + "/" + value);
      out.push_back("*/" + value);
    }
    return out;
  };
}

}  // namespace

InformerCache::InformerCache(kube::Client* client, CacheOptions options)
    : client_(client),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {
  std::sort(options_.namespaces.begin(), options_.namespaces.end());
  options_.namespaces.erase(std::unique(options_.namespaces.begin(), options_.namespaces.end()),
                            options_.namespaces.end());
}

InformerCache::~InformerCache() {
  Stop();
}

std::string InformerCache::GvrKey(const kube::GroupVersionResource& gvr) {
  return gvr.group + "/" + gvr.version + "/" + gvr.resource;
}

Status InformerCache::Register(const kube::GroupVersionResource& gvr,
                               const std::string& label_selector,
                               std::function<void(kube::Json&)> transform,
                               std::vector<ObjectIndex> indexes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopped_) {
    return FailedPrecondition("cache: " + gvr.resource + " registered after Start()");
  }
  const std::string key = GvrKey(gvr);
  if (auto it = entries_.find(key); it != entries_.end()) {
    if (it->second->label_selector == label_selector) return Status::Ok();
    return InvalidArgument("cache: " + gvr.resource + " registered with two label selectors (\"" +
                           it->second->label_selector + "\" and \"" + label_selector + "\")");
  }
  auto entry = std::make_unique<Entry>();
  entry->gvr = gvr;
  entry->label_selector = label_selector;
  for (const ObjectIndex& index : indexes) entry->indexes.push_back(index.name);
  std::vector<std::string> namespaces = options_.namespaces;
  if (namespaces.empty() || !gvr.namespaced) namespaces = {""};
  for (const auto& ns : namespaces) {
    kube::InformerOptions io;
    io.name = ns.empty() ? gvr.resource : ns + "/" + gvr.resource;
    io.resync_period = options_.resync_period;
    io.holding = options_.holding;
    for (const auto& label : options_.indexed_labels) {
      io.indexers.emplace(LabelIndexName(label), LabelIndexFunc(label));
    }
    for (const ObjectIndex& index : indexes) {
      io.indexers.emplace(ObjectIndexName(index.name), ObjectIndexFunc(index));
    }
    io.clock = &clock_;
    io.watcher.label_selector = label_selector;
    io.watcher.watch_timeout = options_.watch_timeout;
    io.watcher.transform = [transform](kube::Json& object) {
      kube::StripManagedFields(object);
      kube::StripLastAppliedConfiguration(object);
      if (transform) transform(object);
    };
    if (options_.metrics != nullptr) {
      ControllerMetrics* metrics = options_.metrics;
      const std::string resource = gvr.resource;
      io.watcher.on_transition = [metrics, resource](const kube::WatcherTransition& t) {
        // A watch that has to start over (after an error, or a relist on 410) is a restart;
        // the first list and ordinary resumes after a clean close are not.
        if (t.to == kube::WatcherState::kBackoff ||
            (t.to == kube::WatcherState::kInitialList && t.from == kube::WatcherState::kWatching)) {
          metrics->IncWatchRestarts(resource);
        }
      };
    }
    std::unique_ptr<kube::ListerWatcher> source;
    if (options_.source) {
      source = options_.source(gvr, ns);
    } else if (client_ != nullptr) {
      source = std::make_unique<kube::ClientListerWatcher>(*client_, gvr, ns);
    } else {
      return InvalidArgument("cache: neither a client nor a source factory");
    }
    entry->informers.emplace(ns,
                             std::make_unique<kube::Informer>(std::move(source), std::move(io)));
  }
  entries_.emplace(key, std::move(entry));
  return Status::Ok();
}

bool InformerCache::IsRegistered(const kube::GroupVersionResource& gvr) const {
  return Find(gvr) != nullptr;
}

const InformerCache::Entry* InformerCache::Find(const kube::GroupVersionResource& gvr) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(GvrKey(gvr));
  return it == entries_.end() ? nullptr : it->second.get();
}

Status InformerCache::AddEventHandler(const kube::GroupVersionResource& gvr,
                                      std::shared_ptr<kube::ResourceEventHandler> handler) {
  const Entry* entry = Find(gvr);
  if (entry == nullptr) {
    return FailedPrecondition("cache: " + gvr.resource + " is not registered");
  }
  for (const auto& [ns, informer] : entry->informers) informer->AddEventHandler(handler);
  return Status::Ok();
}

void InformerCache::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopped_) return;
  started_ = true;
  for (auto& [key, entry] : entries_) {
    for (auto& [ns, informer] : entry->informers) informer->Start();
  }
}

void InformerCache::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  for (auto& [key, entry] : entries_) {
    for (auto& [ns, informer] : entry->informers) informer->Stop();
  }
}

bool InformerCache::HasSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) return false;
  for (const auto& [key, entry] : entries_) {
    for (const auto& [ns, informer] : entry->informers) {
      if (!informer->HasSynced()) return false;
    }
  }
  return true;
}

bool InformerCache::WaitForSync(Clock::Steady::time_point deadline) {
  std::vector<kube::Informer*> informers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stopped_) return false;
    for (auto& [key, entry] : entries_) {
      for (auto& [ns, informer] : entry->informers) informers.push_back(informer.get());
    }
  }
  for (auto* informer : informers) {
    if (!informer->WaitForSync(deadline)) return false;
  }
  return true;
}

const kube::Informer* InformerCache::InformerFor(const Entry& entry, const std::string& ns) const {
  if (auto it = entry.informers.find(""); it != entry.informers.end()) return it->second.get();
  auto it = entry.informers.find(ns);
  return it == entry.informers.end() ? nullptr : it->second.get();
}

ObjectPtr InformerCache::Get(const kube::GroupVersionResource& gvr, const std::string& ns,
                             const std::string& name) const {
  const Entry* entry = Find(gvr);
  if (entry == nullptr) return nullptr;
  const kube::Informer* informer = InformerFor(*entry, ns);
  if (informer == nullptr) return nullptr;
  return informer->store()->Get(ns.empty() || !gvr.namespaced ? name : ns + "/" + name);
}

std::vector<ObjectPtr> InformerCache::List(const kube::GroupVersionResource& gvr,
                                           const std::string& ns) const {
  const Entry* entry = Find(gvr);
  if (entry == nullptr) return {};
  if (ns.empty()) {
    std::vector<ObjectPtr> out;
    for (const auto& [informer_ns, informer] : entry->informers) {
      auto objects = informer->store()->List();
      out.insert(out.end(), objects.begin(), objects.end());
    }
    return out;
  }
  const kube::Informer* informer = InformerFor(*entry, ns);
  if (informer == nullptr) return {};
  return informer->store()->ByIndex(kube::kNamespaceIndex, ns);
}

std::vector<ObjectPtr> InformerCache::ListOwnedBy(const kube::GroupVersionResource& gvr,
                                                  const std::string& ns,
                                                  const std::string& owner_uid) const {
  const Entry* entry = Find(gvr);
  if (entry == nullptr || owner_uid.empty()) return {};
  std::vector<ObjectPtr> out;
  auto collect = [&](const kube::Informer& informer) {
    for (auto& object : informer.store()->ByIndex(kube::kOwnerUidIndex, owner_uid)) {
      if (ns.empty() || MetaString(*object, "namespace") == ns) out.push_back(std::move(object));
    }
  };
  if (ns.empty()) {
    for (const auto& [informer_ns, informer] : entry->informers) collect(*informer);
  } else if (const kube::Informer* informer = InformerFor(*entry, ns)) {
    collect(*informer);
  }
  return out;
}

std::vector<ObjectPtr> InformerCache::ListByLabel(const kube::GroupVersionResource& gvr,
                                                  const std::string& ns, const std::string& key,
                                                  const std::string& value) const {
  const bool indexed = std::find(options_.indexed_labels.begin(), options_.indexed_labels.end(),
                                 key) != options_.indexed_labels.end();
  if (!indexed || ns.empty()) return ObjectReader::ListByLabel(gvr, ns, key, value);
  const Entry* entry = Find(gvr);
  if (entry == nullptr) return {};
  const kube::Informer* informer = InformerFor(*entry, ns);
  if (informer == nullptr) return {};
  return informer->store()->ByIndex(LabelIndexName(key), ns + "/" + value);
}

std::vector<ObjectPtr> InformerCache::ListByIndex(const kube::GroupVersionResource& gvr,
                                                  const std::string& ns, const ObjectIndex& index,
                                                  const std::string& value) const {
  const Entry* entry = Find(gvr);
  if (entry == nullptr) return {};
  if (std::find(entry->indexes.begin(), entry->indexes.end(), index.name) == entry->indexes.end()) {
    return ObjectReader::ListByIndex(gvr, ns, index, value);
  }
  const std::string name = ObjectIndexName(index.name);
  if (!ns.empty()) {
    const kube::Informer* informer = InformerFor(*entry, ns);
    if (informer == nullptr) return {};
    return informer->store()->ByIndex(name, ns + "/" + value);
  }
  std::vector<ObjectPtr> out;
  for (const auto& [informer_ns, informer] : entry->informers) {
    auto objects = informer->store()->ByIndex(name, "*/" + value);
    out.insert(out.end(), objects.begin(), objects.end());
  }
  return out;
}

size_t InformerCache::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [key, entry] : entries_) {
    for (const auto& [ns, informer] : entry->informers) n += informer->store()->Size();
  }
  return n;
}

}  // namespace sluice::controllers
