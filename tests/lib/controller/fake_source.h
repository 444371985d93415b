#pragma once

// An in-memory API for informers: FakeSource holds the objects of several resources and
// hands out ListerWatchers over them; Upsert/Remove deliver watch events to every open watch of
// that resource, so a controller built on InformerCache runs without a server.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/kube/watcher.h"

namespace sluice::controllers::testing {

class FakeSource {
 public:
  using json = nlohmann::json;

  void Upsert(const std::string& resource, json object) {
    std::lock_guard<std::mutex> lock(mu_);
    object["metadata"]["resourceVersion"] = std::to_string(++rv_);
    const std::string key = Key(object);
    auto& objects = objects_[resource];
    const bool existed = objects.count(key) > 0;
    objects[key] = object;
    events_[resource].push_back(
        {existed ? kube::WatchEventType::kModified : kube::WatchEventType::kAdded, object});
    cv_.notify_all();
  }

  void Remove(const std::string& resource, const std::string& ns, const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& objects = objects_[resource];
    auto it = objects.find(ns + "/" + name);
    if (it == objects.end()) return;
    json object = it->second;
    object["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects.erase(it);
    events_[resource].push_back({kube::WatchEventType::kDeleted, object});
    cv_.notify_all();
  }

  std::unique_ptr<kube::ListerWatcher> For(const std::string& resource) {
    return std::make_unique<LW>(*this, resource);
  }

 private:
  static std::string Key(const json& o) {
    return o["metadata"].value("namespace", "") + "/" + o["metadata"].value("name", "");
  }

  class LW final : public kube::ListerWatcher {
   public:
    LW(FakeSource& source, std::string resource) : s_(source), resource_(std::move(resource)) {}

    Result<kube::Json> List(const kube::ListOptions&) override {
      std::lock_guard<std::mutex> lock(s_.mu_);
      json items = json::array();
      for (const auto& [k, o] : s_.objects_[resource_]) items.push_back(o);
      // Everything up to now is in the list; the watch continues after it.
      cursor_ = s_.events_[resource_].size();
      return json{{"metadata", {{"resourceVersion", std::to_string(s_.rv_)}}}, {"items", items}};
    }

    Status Watch(const kube::WatchOptions&, const std::function<bool(kube::WatchEvent&&)>& on_event,
                 const kube::CancelFlag* cancel) override {
      std::unique_lock<std::mutex> lock(s_.mu_);
      while (true) {
        if (cancel != nullptr && cancel->load()) return Cancelled("watch cancelled");
        auto& events = s_.events_[resource_];
        while (cursor_ < events.size()) {
          kube::WatchEvent e = events[cursor_++];
          lock.unlock();
          if (!on_event(std::move(e))) return Status::Ok();
          lock.lock();
        }
        // The cancel flag cannot be waited on; look at it every few milliseconds.
        s_.cv_.wait_for(lock, std::chrono::milliseconds(5));
      }
    }

   private:
    FakeSource& s_;
    const std::string resource_;
    size_t cursor_ = 0;
  };

  std::mutex mu_;
  std::condition_variable cv_;
  int64_t rv_ = 1;                                            // guarded by mu_
  std::map<std::string, std::map<std::string, json>> objects_;  // guarded by mu_
  std::map<std::string, std::vector<kube::WatchEvent>> events_;  // guarded by mu_
};

}  // namespace sluice::controllers::testing
