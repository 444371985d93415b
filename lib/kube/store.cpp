#include "lib/kube/store.h"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <utility>

namespace sluice::kube {

namespace {
const std::string& StringAt(const Json& object, const char* section, const char* field) {
  static const std::string kEmpty;
  auto s = object.find(section);
  if (s == object.end() || !s->is_object()) return kEmpty;
  auto f = s->find(field);
  if (f == s->end() || !f->is_string()) return kEmpty;
  return f->get_ref<const std::string&>();
}
}  // namespace

std::string KeyOf(const Json& object) {
  const std::string& ns = StringAt(object, "metadata", "namespace");
  const std::string& name = StringAt(object, "metadata", "name");
  return ns.empty() ? name : ns + "/" + name;
}

std::string ResourceVersionOf(const Json& object) {
  return StringAt(object, "metadata", "resourceVersion");
}

std::vector<std::string> NamespaceIndexFunc(const Json& object) {
  const std::string& ns = StringAt(object, "metadata", "namespace");
  if (ns.empty()) return {};
  return {ns};
}

std::vector<std::string> OwnerUidIndexFunc(const Json& object) {
  std::vector<std::string> uids;
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return uids;
  auto refs = meta->find("ownerReferences");
  if (refs == meta->end() || !refs->is_array()) return uids;
  for (const auto& ref : *refs) {
    auto uid = ref.find("uid");
    if (uid != ref.end() && uid->is_string()) uids.push_back(uid->get<std::string>());
  }
  return uids;
}

Indexers DefaultIndexers() {
  return {{kNamespaceIndex, NamespaceIndexFunc}, {kOwnerUidIndex, OwnerUidIndexFunc}};
}

Store::Store(Indexers indexers, Holding holding)
    : indexers_(std::move(indexers)), holding_(holding) {
  for (const auto& [name, fn] : indexers_) indices_[name];
}

Store::Item Store::Keep(const ObjectPtr& object) const {
  Item item;
  item.resource_version = ResourceVersionOf(*object);
  if (holding_ == Holding::kParsed) {
    item.object = object;
    return item;
  }
  std::vector<std::uint8_t> bytes = Json::to_msgpack(*object);
  item.packed = std::make_shared<const std::string>(bytes.begin(), bytes.end());
  return item;
}

ObjectPtr Store::Load(const Item& item) {
  if (item.object != nullptr) return item.object;
  Json parsed = Json::from_msgpack(*item.packed, /*strict=*/true, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    // The bytes are this store's own encoding of a valid object.
    spdlog::critical("store: a packed object does not decode");
    std::abort();
  }
  return std::make_shared<const Json>(std::move(parsed));
}

void Store::IndexLocked(const std::string& key, const Json& object) {
  for (const auto& [name, fn] : indexers_) {
    auto& index = indices_[name];
    for (auto& value : fn(object)) index[std::move(value)].insert(key);
  }
}

void Store::UnindexLocked(const std::string& key, const Json& object) {
  for (const auto& [name, fn] : indexers_) {
    auto& index = indices_[name];
    for (const auto& value : fn(object)) {
      auto it = index.find(value);
      if (it == index.end()) continue;
      it->second.erase(key);
      if (it->second.empty()) index.erase(it);
    }
  }
}

// The store has one writer, so an item read under one lock is still there under the next: old
// objects are read back (a parse, when packed) and new ones packed outside the lock.
StoreChange Store::Upsert(ObjectPtr object) {
  std::string key = KeyOf(*object);
  Item kept = Keep(object);
  Item old_item;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = items_.find(key);
    if (it == items_.end()) {
      IndexLocked(key, *object);
      items_.emplace(std::move(key), std::move(kept));
      return {StoreChange::Kind::kAdded, nullptr, std::move(object)};
    }
    old_item = it->second;
  }
  ObjectPtr old = Load(old_item);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(key);
  UnindexLocked(key, *old);
  IndexLocked(key, *object);
  it->second = std::move(kept);
  return {StoreChange::Kind::kUpdated, std::move(old), std::move(object)};
}

StoreChange Store::Remove(ObjectPtr final_object) {
  const std::string key = KeyOf(*final_object);
  std::optional<Item> old_item;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = items_.find(key);
    if (it != items_.end()) old_item = it->second;
  }
  if (!old_item) return {StoreChange::Kind::kDeleted, final_object, std::move(final_object)};
  ObjectPtr old = Load(*old_item);
  std::lock_guard<std::mutex> lock(mu_);
  UnindexLocked(key, *old);
  items_.erase(key);
  return {StoreChange::Kind::kDeleted, std::move(old), std::move(final_object)};
}

std::vector<StoreChange> Store::Replace(std::vector<ObjectPtr> objects) {
  std::map<std::string, ObjectPtr> fresh;
  for (auto& object : objects) {
    std::string key = KeyOf(*object);
    fresh[std::move(key)] = std::move(object);
  }
  // What changed, found by key and resourceVersion alone; the old objects of updates and deletes
  // are then read back, and the new ones packed, before the store switches in one step.
  struct Step {
    StoreChange::Kind kind;
    std::string key;
    ObjectPtr old_object;
    ObjectPtr new_object;
    Item kept;
  };
  std::vector<Step> steps;
  std::vector<std::pair<size_t, Item>> to_load;  // steps[i] needs items_[key] read back
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Both maps are ordered by key: one merge pass finds deletes, adds and updates.
    auto old_it = items_.begin();
    auto new_it = fresh.begin();
    while (old_it != items_.end() || new_it != fresh.end()) {
      if (new_it == fresh.end() || (old_it != items_.end() && old_it->first < new_it->first)) {
        to_load.emplace_back(steps.size(), old_it->second);
        steps.push_back({StoreChange::Kind::kDeleted, old_it->first, nullptr, nullptr, {}});
        ++old_it;
        continue;
      }
      if (old_it == items_.end() || new_it->first < old_it->first) {
        steps.push_back({StoreChange::Kind::kAdded, new_it->first, nullptr, new_it->second, {}});
        ++new_it;
        continue;
      }
      const std::string rv = ResourceVersionOf(*new_it->second);
      if (old_it->second.resource_version != rv || rv.empty()) {
        to_load.emplace_back(steps.size(), old_it->second);
        steps.push_back({StoreChange::Kind::kUpdated, new_it->first, nullptr, new_it->second, {}});
      }
      ++old_it;
      ++new_it;
    }
  }
  for (auto& [i, item] : to_load) steps[i].old_object = Load(item);
  for (auto& step : steps) {
    if (step.new_object != nullptr) step.kept = Keep(step.new_object);
  }
  std::vector<StoreChange> changes;
  changes.reserve(steps.size());
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& step : steps) {
    switch (step.kind) {
      case StoreChange::Kind::kDeleted:
        UnindexLocked(step.key, *step.old_object);
        items_.erase(step.key);
        // The object vanished between two lists: its last known state stands for the final one.
        changes.push_back({step.kind, step.old_object, step.old_object, true});
        break;
      case StoreChange::Kind::kAdded:
        IndexLocked(step.key, *step.new_object);
        items_.emplace(step.key, std::move(step.kept));
        changes.push_back({step.kind, nullptr, std::move(step.new_object)});
        break;
      case StoreChange::Kind::kUpdated:
        UnindexLocked(step.key, *step.old_object);
        IndexLocked(step.key, *step.new_object);
        items_[step.key] = std::move(step.kept);
        changes.push_back({step.kind, std::move(step.old_object), std::move(step.new_object)});
        break;
    }
  }
  return changes;
}

ObjectPtr Store::Get(const std::string& key) const {
  Item item;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = items_.find(key);
    if (it == items_.end()) return nullptr;
    item = it->second;
  }
  return Load(item);
}

std::vector<ObjectPtr> Store::List() const {
  std::vector<Item> items;
  {
    std::lock_guard<std::mutex> lock(mu_);
    items.reserve(items_.size());
    for (const auto& [key, item] : items_) items.push_back(item);
  }
  std::vector<ObjectPtr> out;
  out.reserve(items.size());
  for (const Item& item : items) out.push_back(Load(item));
  return out;
}

std::vector<std::string> Store::ListKeys() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const auto& [key, item] : items_) out.push_back(key);
  return out;
}

std::vector<std::string> Store::IndexKeys(const std::string& index,
                                          const std::string& value) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto idx = indices_.find(index);
  if (idx == indices_.end()) return {};
  auto keys = idx->second.find(value);
  if (keys == idx->second.end()) return {};
  return {keys->second.begin(), keys->second.end()};
}

std::vector<ObjectPtr> Store::ByIndex(const std::string& index, const std::string& value) const {
  std::vector<Item> items;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto idx = indices_.find(index);
    if (idx == indices_.end()) return {};
    auto keys = idx->second.find(value);
    if (keys == idx->second.end()) return {};
    items.reserve(keys->second.size());
    for (const auto& key : keys->second) {
      auto it = items_.find(key);
      if (it != items_.end()) items.push_back(it->second);
    }
  }
  std::vector<ObjectPtr> out;
  out.reserve(items.size());
  for (const Item& item : items) out.push_back(Load(item));
  return out;
}

size_t Store::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return items_.size();
}

}  // namespace sluice::kube
