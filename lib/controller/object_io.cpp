#include "lib/controller/object_io.h"

#include <algorithm>

namespace sluice::controllers {

using nlohmann::json;

namespace {

std::string IntentNamespace(const json& intent) {
  return intent.contains("metadata") ? MetaString(intent, "namespace") : std::string();
}

}  // namespace

Result<json> KubeObjectWriter::Apply(const kube::GroupVersionResource& gvr, const json& intent,
                                     bool force) {
  return client_.Apply(gvr, IntentNamespace(intent), intent, field_manager_, force);
}

Result<json> KubeObjectWriter::ApplyStatus(const kube::GroupVersionResource& gvr,
                                           const json& intent) {
  return client_.Apply(gvr, IntentNamespace(intent), intent, field_manager_, /*force=*/true,
                       "status");
}

Result<json> KubeObjectWriter::MergePatch(const kube::GroupVersionResource& gvr,
                                          const std::string& ns, const std::string& name,
                                          const json& patch) {
  kube::PatchOptions options;
  options.field_manager = field_manager_;
  return client_.Patch(gvr, ns, name, kube::PatchType::kMerge, patch.dump(), options);
}

Status KubeObjectWriter::Delete(const kube::GroupVersionResource& gvr, const std::string& ns,
                                const std::string& name, const std::string& uid) {
  kube::DeleteOptions options;
  options.propagation = kube::PropagationPolicy::kBackground;
  if (!uid.empty()) options.precondition_uid = uid;
  Status s = client_.Delete(gvr, ns, name, options);
  if (s.code() == StatusCode::kNotFound) return Status::Ok();
  // A uid precondition failing means the name now belongs to a newer object: not ours to delete.
  if (s.code() == StatusCode::kConflict && !uid.empty()) return Status::Ok();
  return s;
}

std::vector<ObjectPtr> ObjectReader::ListByLabel(const kube::GroupVersionResource& gvr,
                                                 const std::string& ns, const std::string& key,
                                                 const std::string& value) const {
  std::vector<ObjectPtr> out;
  for (ObjectPtr& object : List(gvr, ns)) {
    const json* label = JsonAt(*object, {"metadata", "labels", key.c_str()});
    if (label != nullptr && label->is_string() && label->get_ref<const std::string&>() == value) {
      out.push_back(std::move(object));
    }
  }
  return out;
}

ObjectIndex PredicateIndex(std::string name, std::function<bool(const json&)> holds) {
  return {std::move(name), [holds = std::move(holds)](const json& object) {
            return holds(object) ? std::vector<std::string>{"true"} : std::vector<std::string>{};
          }};
}

std::vector<ObjectPtr> ObjectReader::ListByIndex(const kube::GroupVersionResource& gvr,
                                                 const std::string& ns, const ObjectIndex& index,
                                                 const std::string& value) const {
  std::vector<ObjectPtr> out;
  for (ObjectPtr& object : List(gvr, ns)) {
    const std::vector<std::string> values = index.values(*object);
    if (std::find(values.begin(), values.end(), value) != values.end()) {
      out.push_back(std::move(object));
    }
  }
  return out;
}

std::string MetaString(const json& object, const char* field) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  auto it = meta->find(field);
  return it != meta->end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json* JsonAt(const json& object, std::initializer_list<const char*> path) {
  const json* cur = &object;
  for (const char* key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string StringAt(const json& object, std::initializer_list<const char*> path) {
  const json* v = JsonAt(object, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

int64_t MetaGeneration(const json& object) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return 0;
  auto it = meta->find("generation");
  return it != meta->end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

const json* Annotation(const json& object, const std::string& key) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return nullptr;
  auto annotations = meta->find("annotations");
  if (annotations == meta->end() || !annotations->is_object()) return nullptr;
  auto it = annotations->find(key);
  return it == annotations->end() ? nullptr : &*it;
}

const json* ControllerRef(const json& object) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return nullptr;
  auto refs = meta->find("ownerReferences");
  if (refs == meta->end() || !refs->is_array()) return nullptr;
  for (const auto& ref : *refs) {
    auto c = ref.find("controller");
    if (c != ref.end() && c->is_boolean() && c->get<bool>()) return &ref;
  }
  return nullptr;
}

bool IsSubset(const nlohmann::json& intent, const nlohmann::json& live) {
  if (intent.is_object()) {
    if (!live.is_object()) return false;
    for (auto it = intent.begin(); it != intent.end(); ++it) {
      auto found = live.find(it.key());
      if (found == live.end() || !IsSubset(it.value(), *found)) return false;
    }
    return true;
  }
  if (intent.is_array()) {
    if (!live.is_array() || live.size() != intent.size()) return false;
    for (size_t i = 0; i < intent.size(); ++i) {
      if (!IsSubset(intent[i], live[i])) return false;
    }
    return true;
  }
  if (intent.is_number() && live.is_number()) {
    // 1 and 1.0 are the same quantity to the API server.
    return intent.get<double>() == live.get<double>();
  }
  if (intent.is_number_integer() && live.is_string()) {
    // Quantities written as numbers come back as strings ("cpu: 1" -> "1").
    return std::to_string(intent.get<int64_t>()) == live.get<std::string>();
  }
  return intent == live;
}

}  // namespace sluice::controllers
