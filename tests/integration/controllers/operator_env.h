#pragma once

// What the operator's integration and end-to-end tests share: installing the CRDs, namespaces,
// loading samples, waiting on conditions with a deadline, reading a ModelDeployment's status,
// a stand-in for the kubelet on a bare API server, and plain HTTP GETs of the operator's
// endpoints.

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/lib/api/yaml_json.h"
#include "lib/kube/client.h"
#include "lib/kube/informer.h"

namespace sluice::controllers::it {

using nlohmann::json;

inline const kube::GroupVersionResource kMdGvr{"sluice.dev", "v1alpha1", "modeldeployments", true,
                                               "ModelDeployment"};
inline const kube::GroupVersionResource kFvGvr{"sluice.dev", "v1alpha1", "featureviews", true,
                                               "FeatureView"};
inline const kube::GroupVersionResource kRolesGvr{"rbac.authorization.k8s.io", "v1", "roles",
                                                  true, "Role"};
inline const kube::GroupVersionResource kRoleBindingsGvr{"rbac.authorization.k8s.io", "v1",
                                                         "rolebindings", true, "RoleBinding"};

// Polls `pred` every `every` until it holds or `timeout` passes; returns its last value.
inline bool Eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60),
                       std::chrono::milliseconds every = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(every);
  }
  return pred();
}

// Applies the CRDs in `crd_dir` (server-side) and waits until both are Established.
inline Status InstallCrds(kube::Client& client, const std::string& crd_dir) {
  for (const char* file : {"sluice.dev_modeldeployments.yaml", "sluice.dev_featureviews.yaml"}) {
    for (const json& crd : testing::LoadYamlDocuments(crd_dir + "/" + file)) {
      auto applied = client.Apply(kube::resources::kCustomResourceDefinitions, "", crd,
                                  "sluice-tests", /*force=*/true);
      if (!applied.ok()) return applied.status().Annotate(std::string("applying ") + file);
    }
  }
  for (const char* name : {"modeldeployments.sluice.dev", "featureviews.sluice.dev"}) {
    const bool established = Eventually([&] {
      auto crd = client.Get(kube::resources::kCustomResourceDefinitions, "", name);
      if (!crd.ok()) return false;
      for (const auto& c : (*crd)["status"].value("conditions", json::array())) {
        if (c.value("type", "") == "Established" && c.value("status", "") == "True") return true;
      }
      return false;
    });
    if (!established) return Timeout(std::string("CRD ") + name + " did not become Established");
  }
  // Discovery of the new group lags Established slightly; list once so the first informer list
  // does not race it.
  const bool served = Eventually([&] { return client.List(kMdGvr, "", {}).ok(); });
  if (!served) return Timeout("modeldeployments are not served");
  return Status::Ok();
}

inline Status CreateNamespace(kube::Client& client, const std::string& ns) {
  auto created = client.Create(kube::resources::kNamespaces, "",
                               {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                {"metadata", {{"name", ns}}}});
  if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
    return created.status();
  }
  return Status::Ok();
}

// The first document of a sample YAML, moved to `ns`.
inline json LoadSample(const std::string& path, const std::string& ns) {
  json doc = testing::LoadYamlDocuments(path).at(0);
  doc["metadata"]["namespace"] = ns;
  return doc;
}

inline std::map<std::string, int> TrafficOf(const json& md) {
  std::map<std::string, int> out;
  if (!md.contains("status")) return out;
  for (const auto& t : md["status"].value("traffic", json::array())) {
    out[t.value("revision", "")] = t.value("weight", 0);
  }
  return out;
}

inline std::string ConditionReason(const json& object, const std::string& type) {
  if (!object.contains("status")) return "";
  for (const auto& c : object["status"].value("conditions", json::array())) {
    if (c.value("type", "") == type) return c.value("status", "") + "/" + c.value("reason", "");
  }
  return "";
}

// The status stanza, or an empty object before the controller first writes one.
inline json StatusOf(const json& object) { return object.value("status", json::object()); }

inline std::string Phase(const json& md) {
  return md.contains("status") ? md["status"].value("phase", "") : "";
}

// Stands in for kube-controller-manager and the kubelet on a bare API server: while enabled,
// every Deployment in `ns` reports all of its replicas Ready (through the status subresource).
class FakeKubelet {
 public:
  FakeKubelet(kube::Client& client, const std::string& ns) : client_(client), ns_(ns) {
    informer_ = kube::Informer::ForResource(client, kube::resources::kDeployments, ns);
    auto handler = std::make_shared<kube::ResourceEventHandlerFuncs>();
    handler->on_add = [this](const kube::ObjectPtr& d) { MaybeReady(*d); };
    handler->on_update = [this](const kube::ObjectPtr&, const kube::ObjectPtr& d) {
      MaybeReady(*d);
    };
    informer_->AddEventHandler(handler);
    informer_->Start();
  }
  ~FakeKubelet() { informer_->Stop(); }

  void set_enabled(bool on) {
    enabled_ = on;
    if (on) {
      for (const auto& d : informer_->store()->List()) MaybeReady(*d);
    }
  }
  // Deployments whose name starts with `prefix` are left not Ready.
  void Hold(const std::string& prefix) {
    std::lock_guard<std::mutex> lock(mu_);
    held_.push_back(prefix);
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_.clear();
    }
    for (const auto& d : informer_->store()->List()) MaybeReady(*d);
  }

 private:
  void MaybeReady(const json& d) {
    if (!enabled_) return;
    const std::string name = d["metadata"].value("name", "");
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& p : held_) {
        if (name.rfind(p, 0) == 0) return;
      }
    }
    const int replicas = d["spec"].value("replicas", 1);
    const json status = d.value("status", json::object());
    const int64_t generation = d["metadata"].value("generation", 1);
    if (status.value("readyReplicas", 0) == replicas && status.value("replicas", 0) == replicas &&
        status.value("observedGeneration", int64_t{0}) == generation) {
      return;
    }
    json patch = {{"status",
                   {{"observedGeneration", generation},
                    {"replicas", replicas},
                    {"updatedReplicas", replicas},
                    {"readyReplicas", replicas},
                    {"availableReplicas", replicas}}}};
    kube::PatchOptions options;
    options.subresource = "status";
    auto r = client_.Patch(kube::resources::kDeployments, ns_, name, kube::PatchType::kMerge,
                           patch.dump(), options);
    (void)r;  // a conflict or a deleted Deployment is seen again through the informer
  }

  kube::Client& client_;
  const std::string ns_;
  std::atomic<bool> enabled_{false};
  std::mutex mu_;
  std::vector<std::string> held_;  // guarded by mu_
  std::unique_ptr<kube::Informer> informer_;
};

// GET http://127.0.0.1:<port><path>: the status code and body (code 0 when unreachable).
inline std::pair<long, std::string> HttpGet(int port, const std::string& path) {
  std::string body;
  CURL* curl = curl_easy_init();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION,
                   +[](char* p, size_t size, size_t n, void* out) -> size_t {
                     static_cast<std::string*>(out)->append(p, size * n);
                     return size * n;
                   });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  long code = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  return {code, body};
}

}  // namespace sluice::controllers::it
