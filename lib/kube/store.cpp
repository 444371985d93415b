#include "lib/kube/store.h"

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

Store::Store(Indexers indexers) : indexers_(std::move(indexers)) {
  for (const auto& [name, fn] : indexers_) indices_[name];
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

StoreChange Store::Upsert(ObjectPtr object) {
  std::string key = KeyOf(*object);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(key);
  if (it == items_.end()) {
    IndexLocked(key, *object);
    items_.emplace(std::move(key), object);
    return {StoreChange::Kind::kAdded, nullptr, std::move(object)};
  }
  ObjectPtr old = std::move(it->second);
  UnindexLocked(key, *old);
  IndexLocked(key, *object);
  it->second = object;
  return {StoreChange::Kind::kUpdated, std::move(old), std::move(object)};
}

StoreChange Store::Remove(ObjectPtr final_object) {
  const std::string key = KeyOf(*final_object);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(key);
  ObjectPtr old;
  if (it != items_.end()) {
    old = std::move(it->second);
    UnindexLocked(key, *old);
    items_.erase(it);
  }
  return {StoreChange::Kind::kDeleted, old != nullptr ? std::move(old) : final_object,
          std::move(final_object)};
}

std::vector<StoreChange> Store::Replace(std::vector<ObjectPtr> objects) {
  std::map<std::string, ObjectPtr> fresh;
  for (auto& object : objects) {
    std::string key = KeyOf(*object);
    fresh[std::move(key)] = std::move(object);
  }
  std::vector<StoreChange> changes;
  std::lock_guard<std::mutex> lock(mu_);
  // Both maps are ordered by key: one merge pass finds deletes, adds and updates.
  auto old_it = items_.begin();
  auto new_it = fresh.begin();
  while (old_it != items_.end() || new_it != fresh.end()) {
    if (new_it == fresh.end() || (old_it != items_.end() && old_it->first < new_it->first)) {
      UnindexLocked(old_it->first, *old_it->second);
      changes.push_back({StoreChange::Kind::kDeleted, old_it->second, old_it->second, true});
      old_it = items_.erase(old_it);
      continue;
    }
    if (old_it == items_.end() || new_it->first < old_it->first) {
      IndexLocked(new_it->first, *new_it->second);
      changes.push_back({StoreChange::Kind::kAdded, nullptr, new_it->second});
      old_it = std::next(items_.emplace_hint(old_it, new_it->first, new_it->second));
      ++new_it;
      continue;
    }
    if (ResourceVersionOf(*old_it->second) != ResourceVersionOf(*new_it->second) ||
        ResourceVersionOf(*new_it->second).empty()) {
      UnindexLocked(old_it->first, *old_it->second);
      IndexLocked(new_it->first, *new_it->second);
      changes.push_back({StoreChange::Kind::kUpdated, old_it->second, new_it->second});
      old_it->second = new_it->second;
    }
    ++old_it;
    ++new_it;
  }
  return changes;
}

ObjectPtr Store::Get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(key);
  return it == items_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Store::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(items_.size());
  for (const auto& [key, object] : items_) out.push_back(object);
  return out;
}

std::vector<std::string> Store::ListKeys() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const auto& [key, object] : items_) out.push_back(key);
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
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  auto idx = indices_.find(index);
  if (idx == indices_.end()) return out;
  auto keys = idx->second.find(value);
  if (keys == idx->second.end()) return out;
  out.reserve(keys->second.size());
  for (const auto& key : keys->second) {
    auto it = items_.find(key);
    if (it != items_.end()) out.push_back(it->second);
  }
  return out;
}

size_t Store::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return items_.size();
}

}  // namespace sluice::kube
