#pragma once

// The informer's cache: the objects of one resource, keyed "namespace/name" ("name" for
// cluster-scoped objects), with secondary indexes.
//
// Contract:
// - Thread-safe. The writer half (Upsert, Remove, Replace) is used by one informer; the reader
//   half is the const interface, handed to controllers as std::shared_ptr<const Store>.
// - Objects are immutable: readers get ObjectPtr snapshots that stay valid after later writes, and
//   every index holds keys, not copies.
// - Holding::kParsed keeps each object as the parsed tree it was given, so readers share it.
//   Holding::kPacked keeps each object as MessagePack bytes, a fifth or less of the tree's heap
//   (every JSON value of a tree is its own allocation: map node, key string, value), and parses
//   a fresh copy for each read: for a cache that holds many objects for ever and reads a few at
//   a time. The objects read back are equal to those written in both.
// - Indexes are fixed at construction, so a reader never sees one half-built.

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "lib/kube/client.h"

namespace sluice::kube {

using ObjectPtr = std::shared_ptr<const Json>;

// "namespace/name", or "name" when the object has no namespace.
std::string KeyOf(const Json& object);
// metadata.resourceVersion, or empty.
std::string ResourceVersionOf(const Json& object);

// Values an object is filed under in one index; an object may have none or several.
using IndexFunc = std::function<std::vector<std::string>(const Json& object)>;
using Indexers = std::map<std::string, IndexFunc>;

inline constexpr char kNamespaceIndex[] = "namespace";
inline constexpr char kOwnerUidIndex[] = "owner-uid";
// metadata.namespace.
std::vector<std::string> NamespaceIndexFunc(const Json& object);
// The uid of every metadata.ownerReferences entry: who owns this object.
std::vector<std::string> OwnerUidIndexFunc(const Json& object);
// Both of the above.
Indexers DefaultIndexers();

// What one write did to the store, for event handlers.
struct StoreChange {
  enum class Kind { kAdded, kUpdated, kDeleted };
  Kind kind;
  ObjectPtr old_object;  // kUpdated: the previous version; kDeleted: the last stored version
  ObjectPtr new_object;  // kAdded/kUpdated: the new version; kDeleted: the final version
  // kDeleted from a Replace(): the object vanished between two lists, so its final state is
  // unknown and new_object is the last version this store saw.
  bool final_state_unknown = false;
};

class Store {
 public:
  enum class Holding { kParsed, kPacked };

  explicit Store(Indexers indexers = DefaultIndexers(), Holding holding = Holding::kParsed);

  // Writer half.
  // Inserts or replaces the object under its key.
  StoreChange Upsert(ObjectPtr object);
  // Removes the object under the key of `final_object` (a delete event's object).
  StoreChange Remove(ObjectPtr final_object);
  // Makes the store hold exactly `objects` (a fresh list) and returns the difference: adds, updates
  // for objects whose resourceVersion changed, and deletes for objects that are gone. Objects
  // whose resourceVersion is unchanged are kept as they are and not reported.
  std::vector<StoreChange> Replace(std::vector<ObjectPtr> objects);

  // Reader half.
  ObjectPtr Get(const std::string& key) const;
  // All objects, ordered by key.
  std::vector<ObjectPtr> List() const;
  std::vector<std::string> ListKeys() const;
  // Objects filed under `value` in index `index`, ordered by key; empty for an unknown index.
  std::vector<ObjectPtr> ByIndex(const std::string& index, const std::string& value) const;
  // Keys filed under `value` in index `index`.
  std::vector<std::string> IndexKeys(const std::string& index, const std::string& value) const;
  size_t Size() const;

 private:
  // One stored object: the tree (kParsed) or its bytes (kPacked), and its resourceVersion, which
  // Replace() compares without reading the object back.
  struct Item {
    ObjectPtr object;
    std::shared_ptr<const std::string> packed;
    std::string resource_version;
  };
  Item Keep(const ObjectPtr& object) const;
  static ObjectPtr Load(const Item& item);
  void IndexLocked(const std::string& key, const Json& object);
  void UnindexLocked(const std::string& key, const Json& object);

  const Indexers indexers_;
  const Holding holding_;
  // A plain mutex rather than a reader-writer lock: reads only copy pointers, so holds are
  // short, and glibc's rwlock prefers readers, which lets busy readers starve the one writer
  // that keeps the cache current.
  mutable std::mutex mu_;
  std::map<std::string, Item> items_;  // guarded by mu_
  // index name -> value -> keys
  std::unordered_map<std::string, std::unordered_map<std::string, std::set<std::string>>>
      indices_;  // guarded by mu_
};

}  // namespace sluice::kube
