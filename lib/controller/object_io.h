#pragma once

// The two halves of the API a reconciler touches, as small interfaces so reconcilers are unit
// tested against an in-memory fake (tests/lib/controller/fake_objects.h) and run against the
// informer cache and the real client in production.
//
// Reads come from the cache (an informer's store): cheap, possibly a little behind the server.
// Writes go to the API server; anything derived from a cached object that must not overwrite a
// newer version carries that object's metadata.resourceVersion as a precondition.

#include <functional>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "lib/kube/client.h"

namespace sluice::controllers {

using ObjectPtr = std::shared_ptr<const nlohmann::json>;

// Contract: never blocks on the network; results are snapshots that stay valid after the cache
// moves on (objects are immutable and shared). Thread-safe.
// A named index of objects: the values an object is filed under (none, one or several). A reader
// that keeps the index answers ListByIndex from it; any other filters every object through
// `values`, with the same answer.
struct ObjectIndex {
  std::string name;
  std::function<std::vector<std::string>(const nlohmann::json& object)> values;
};

// The index that files every object for which `holds` is true under "true".
ObjectIndex PredicateIndex(std::string name, std::function<bool(const nlohmann::json&)> holds);

class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // nullptr when the cache does not hold the object.
  virtual ObjectPtr Get(const kube::GroupVersionResource& gvr, const std::string& ns,
                        const std::string& name) const = 0;
  // Every cached object of `gvr` in `ns` ("" = all namespaces).
  virtual std::vector<ObjectPtr> List(const kube::GroupVersionResource& gvr,
                                      const std::string& ns) const = 0;
  // Cached objects of `gvr` in `ns` with an ownerReference to `owner_uid`.
  virtual std::vector<ObjectPtr> ListOwnedBy(const kube::GroupVersionResource& gvr,
                                             const std::string& ns,
                                             const std::string& owner_uid) const = 0;
  // Cached objects of `gvr` in `ns` ("" = all namespaces) whose label `key` is `value`, in the
  // order List() gives them. This default filters List(); the informer cache answers from an
  // index for the labels it indexes.
  virtual std::vector<ObjectPtr> ListByLabel(const kube::GroupVersionResource& gvr,
                                             const std::string& ns, const std::string& key,
                                             const std::string& value) const;
  // Cached objects of `gvr` in `ns` ("" = all namespaces) that `index` files under `value`, in
  // the order List() gives them. This default filters List(); the informer cache answers from
  // the index when the resource was registered with it, reading only the objects it names.
  virtual std::vector<ObjectPtr> ListByIndex(const kube::GroupVersionResource& gvr,
                                             const std::string& ns, const ObjectIndex& index,
                                             const std::string& value) const;
};

// Contract: every call is one API request, never retried here (the controller retries the whole
// reconcile with backoff). Apply and ApplyStatus are server-side apply with the writer's single
// field manager, so they are idempotent: applying the same intent twice changes nothing.
// Thread-safe.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  // Server-side apply of a full intent (apiVersion, kind, metadata.name/namespace, the fields we
  // own). Fields this manager applied before and left out now are removed. With `force`, fields
  // another manager set are taken over; without it they are a kConflict.
  virtual Result<nlohmann::json> Apply(const kube::GroupVersionResource& gvr,
                                       const nlohmann::json& intent, bool force) = 0;
  // The same (forced) on the status subresource. When the intent carries
  // metadata.resourceVersion the server refuses (kConflict) to apply over a newer object.
  virtual Result<nlohmann::json> ApplyStatus(const kube::GroupVersionResource& gvr,
                                             const nlohmann::json& intent) = 0;
  // JSON merge patch (RFC 7386) of the main resource, e.g. removing an annotation.
  virtual Result<nlohmann::json> MergePatch(const kube::GroupVersionResource& gvr,
                                            const std::string& ns, const std::string& name,
                                            const nlohmann::json& patch) = 0;
  // Deletes the object if its uid is still `uid` (empty: any). NotFound counts as success.
  virtual Status Delete(const kube::GroupVersionResource& gvr, const std::string& ns,
                        const std::string& name, const std::string& uid) = 0;
};

// ObjectWriter over the real client.
class KubeObjectWriter final : public ObjectWriter {
 public:
  KubeObjectWriter(kube::Client& client, std::string field_manager)
      : client_(client), field_manager_(std::move(field_manager)) {}

  Result<nlohmann::json> Apply(const kube::GroupVersionResource& gvr, const nlohmann::json& intent,
                               bool force) override;
  Result<nlohmann::json> ApplyStatus(const kube::GroupVersionResource& gvr,
                                     const nlohmann::json& intent) override;
  Result<nlohmann::json> MergePatch(const kube::GroupVersionResource& gvr, const std::string& ns,
                                    const std::string& name, const nlohmann::json& patch) override;
  Status Delete(const kube::GroupVersionResource& gvr, const std::string& ns,
                const std::string& name, const std::string& uid) override;

 private:
  kube::Client& client_;
  const std::string field_manager_;
};

// The one field manager every write of the operator uses.
inline constexpr char kFieldManager[] = "sluice-operator";

// Small readers of object JSON that tolerate missing fields.
std::string MetaString(const nlohmann::json& object, const char* field);  // metadata.<field>
int64_t MetaGeneration(const nlohmann::json& object);
// metadata.annotations[key], or nullptr when absent.
const nlohmann::json* Annotation(const nlohmann::json& object, const std::string& key);
// The ownerReference with controller=true, or nullptr.
const nlohmann::json* ControllerRef(const nlohmann::json& object);
// The value at a path of object keys ({"spec", "online", "redis"}), or nullptr when a key is
// missing or a step is not an object.
const nlohmann::json* JsonAt(const nlohmann::json& object, std::initializer_list<const char*> path);
// The string at `path`, or "" when absent or not a string.
std::string StringAt(const nlohmann::json& object, std::initializer_list<const char*> path);

// True when every field of `intent` has the same value in `live` (objects compared key by key,
// arrays element by element with equal length). Fields the server added or defaults are
// ignored, so an applied intent is a subset of what the cache holds until something drifts.
bool IsSubset(const nlohmann::json& intent, const nlohmann::json& live);

}  // namespace sluice::controllers
