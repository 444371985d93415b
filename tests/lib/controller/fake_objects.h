#pragma once

// In-memory stand-ins for the reconcilers' I/O: FakeObjects is both the cache (ObjectReader) and
// the API (ObjectWriter) over one map, with the behaviour reconcilers rely on: uids and
// resourceVersions, status kept apart from the rest (status only through ApplyStatus), the
// resourceVersion precondition on status writes, and a forced/unforced apply distinction for
// objects the writer does not control. FakeEvents records Events.

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/controller/events.h"
#include "lib/controller/object_io.h"

namespace sluice::controllers::testing {

class FakeObjects final : public ObjectReader, public ObjectWriter {
 public:
  using json = nlohmann::json;

  // Puts `object` in as the API would hold it (uid, resourceVersion, generation filled in).
  json Put(const kube::GroupVersionResource& gvr, json object) {
    std::lock_guard<std::mutex> lock(mu_);
    return PutLocked(gvr, std::move(object));
  }

  // Changes the spec (or anything but status) of a stored object, bumping generation like the
  // API server does for a spec change.
  json UpdateSpec(const kube::GroupVersionResource& gvr, const std::string& ns,
                  const std::string& name, const json& spec) {
    std::lock_guard<std::mutex> lock(mu_);
    json& o = objects_.at(Key(gvr, ns, name));
    o["spec"] = spec;
    o["metadata"]["generation"] = o["metadata"].value("generation", 1) + 1;
    Bump(o);
    return o;
  }

  // Merges `patch` into the object (metadata changes such as annotations; no generation bump).
  void Merge(const kube::GroupVersionResource& gvr, const std::string& ns, const std::string& name,
             const json& patch) {
    std::lock_guard<std::mutex> lock(mu_);
    json& o = objects_.at(Key(gvr, ns, name));
    o.merge_patch(patch);
    Bump(o);
  }

  // Sets status fields directly (what kube-controller-manager does for a Deployment).
  void SetStatus(const kube::GroupVersionResource& gvr, const std::string& ns,
                 const std::string& name, const json& status) {
    std::lock_guard<std::mutex> lock(mu_);
    json& o = objects_.at(Key(gvr, ns, name));
    o["status"] = status;
    Bump(o);
  }

  std::optional<json> Find(const kube::GroupVersionResource& gvr, const std::string& ns,
                           const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(Key(gvr, ns, name));
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<json> All(const kube::GroupVersionResource& gvr) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<json> out;
    const std::string prefix = gvr.resource + "|";
    for (const auto& [k, o] : objects_) {
      if (k.rfind(prefix, 0) == 0) out.push_back(o);
    }
    return out;
  }

  // Fails the next `n` writes of any kind with `status`.
  void FailWrites(int n, Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_writes_ = n;
    fail_with_ = std::move(status);
  }

  int writes() const { return writes_.load(); }
  int status_writes() const { return status_writes_.load(); }

  // ObjectReader.
  ObjectPtr Get(const kube::GroupVersionResource& gvr, const std::string& ns,
                const std::string& name) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(Key(gvr, ns, name));
    return it == objects_.end() ? nullptr : std::make_shared<const json>(it->second);
  }
  std::vector<ObjectPtr> List(const kube::GroupVersionResource& gvr,
                              const std::string& ns) const override {
    std::vector<ObjectPtr> out;
    for (auto& o : All(gvr)) {
      if (ns.empty() || MetaString(o, "namespace") == ns) {
        out.push_back(std::make_shared<const json>(std::move(o)));
      }
    }
    return out;
  }
  std::vector<ObjectPtr> ListOwnedBy(const kube::GroupVersionResource& gvr, const std::string& ns,
                                     const std::string& owner_uid) const override {
    std::vector<ObjectPtr> out;
    for (auto& o : All(gvr)) {
      if (!ns.empty() && MetaString(o, "namespace") != ns) continue;
      for (const auto& ref : o["metadata"].value("ownerReferences", json::array())) {
        if (ref.value("uid", "") == owner_uid) {
          out.push_back(std::make_shared<const json>(o));
          break;
        }
      }
    }
    return out;
  }

  // ObjectWriter.
  Result<json> Apply(const kube::GroupVersionResource& gvr, const json& intent,
                     bool force) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (Status s = MaybeFail(); !s.ok()) return s;
    ++writes_;
    const std::string key = Key(gvr, MetaString(intent, "namespace"), MetaString(intent, "name"));
    auto it = objects_.find(key);
    if (it == objects_.end()) return PutLocked(gvr, intent);
    json& live = it->second;
    if (!force && ControllerRef(live) == nullptr) {
      return Status(StatusCode::kConflict, "Apply failed with 1 conflict: conflict with "
                                           "\"kubectl\": .spec.selector");
    }
    const json* live_ref = ControllerRef(live);
    const json* intent_ref = ControllerRef(intent);
    if (live_ref != nullptr && intent_ref != nullptr &&
        live_ref->value("uid", "") != intent_ref->value("uid", "")) {
      return Status(StatusCode::kInvalid,
                    "metadata.ownerReferences: Only one reference can have Controller set to true");
    }
    json updated = intent;
    updated["metadata"]["uid"] = live["metadata"]["uid"];
    updated["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"];
    int64_t generation = live["metadata"].value("generation", 1);
    json old_spec = live.contains("spec") ? live["spec"] : json();
    if (intent.contains("spec") && intent["spec"] != old_spec) ++generation;
    updated["metadata"]["generation"] = generation;
    if (live.contains("status")) updated["status"] = live["status"];
    live = std::move(updated);
    Bump(live);
    return live;
  }

  Result<json> ApplyStatus(const kube::GroupVersionResource& gvr, const json& intent) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (Status s = MaybeFail(); !s.ok()) return s;
    ++status_writes_;
    auto it = objects_.find(Key(gvr, MetaString(intent, "namespace"), MetaString(intent, "name")));
    if (it == objects_.end()) return NotFound("not found");
    json& live = it->second;
    const std::string rv = MetaString(intent, "resourceVersion");
    if (!rv.empty() && rv != MetaString(live, "resourceVersion")) {
      return Status(StatusCode::kConflict, "the object has been modified");
    }
    live["status"] = intent.value("status", json::object());
    Bump(live);
    return live;
  }

  Result<json> MergePatch(const kube::GroupVersionResource& gvr, const std::string& ns,
                          const std::string& name, const json& patch) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (Status s = MaybeFail(); !s.ok()) return s;
    ++writes_;
    auto it = objects_.find(Key(gvr, ns, name));
    if (it == objects_.end()) return NotFound("not found");
    it->second.merge_patch(patch);
    Bump(it->second);
    return it->second;
  }

  Status Delete(const kube::GroupVersionResource& gvr, const std::string& ns,
                const std::string& name, const std::string& uid) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (Status s = MaybeFail(); !s.ok()) return s;
    ++writes_;
    auto it = objects_.find(Key(gvr, ns, name));
    if (it == objects_.end()) return Status::Ok();
    if (!uid.empty() && MetaString(it->second, "uid") != uid) return Status::Ok();
    objects_.erase(it);
    return Status::Ok();
  }

 private:
  static std::string Key(const kube::GroupVersionResource& gvr, const std::string& ns,
                         const std::string& name) {
    return gvr.resource + "|" + ns + "/" + name;
  }
  void Bump(json& o) { o["metadata"]["resourceVersion"] = std::to_string(++rv_); }
  Status MaybeFail() {
    if (fail_writes_ <= 0) return Status::Ok();
    --fail_writes_;
    return fail_with_;
  }
  json PutLocked(const kube::GroupVersionResource& gvr, json o) {
    auto& meta = o["metadata"];
    if (!meta.contains("uid")) meta["uid"] = "uid-" + std::to_string(++uid_);
    if (!meta.contains("generation")) meta["generation"] = 1;
    if (!meta.contains("creationTimestamp")) meta["creationTimestamp"] = "2024-01-01T00:00:00Z";
    Bump(o);
    objects_[Key(gvr, MetaString(o, "namespace"), MetaString(o, "name"))] = o;
    return o;
  }

  mutable std::mutex mu_;
  std::map<std::string, json> objects_;  // guarded by mu_
  int64_t rv_ = 100;                     // guarded by mu_
  int64_t uid_ = 0;                      // guarded by mu_
  int fail_writes_ = 0;                  // guarded by mu_
  Status fail_with_;                     // guarded by mu_
  std::atomic<int> writes_{0};
  std::atomic<int> status_writes_{0};
};

struct RecordedEvent {
  std::string object;  // ns/name
  EventSeverity type;
  std::string reason;
  std::string message;
};

class FakeEvents final : public EventRecorder {
 public:
  void Record(const InvolvedObject& object, EventSeverity type, std::string_view reason,
              std::string_view message) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({object.ns + "/" + object.name, type, std::string(reason),
                       std::string(message)});
  }
  std::vector<RecordedEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  bool Has(std::string_view reason) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : events_) {
      if (e.reason == reason) return true;
    }
    return false;
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    events_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<RecordedEvent> events_;  // guarded by mu_
};

}  // namespace sluice::controllers::testing
