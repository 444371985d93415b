#pragma once

// Shared by the watcher and informer unit tests: a real Client over the scripted FakeTransport,
// ConfigMap builders, the watch-stream wire format, and a recorder the tests wait on.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/kube/client.h"
#include "lib/kube/watcher.h"
#include "tests/lib/base/fake_clock.h"
#include "tests/lib/kube/fake_transport.h"

namespace sluice::kube::testing {

inline const std::string kConfigMaps = "/api/v1/namespaces/ns/configmaps";

inline Json ConfigMap(const std::string& name, const std::string& rv,
                      const std::string& value = "v") {
  return {{"metadata", {{"name", name}, {"namespace", "ns"}, {"resourceVersion", rv}}},
          {"data", {{"k", value}}}};
}

inline Json ConfigMapList(std::vector<Json> items, const std::string& rv,
                          const std::string& continue_token = "") {
  Json meta = {{"resourceVersion", rv}};
  if (!continue_token.empty()) meta["continue"] = continue_token;
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMapList"},
          {"metadata", meta},
          {"items", std::move(items)}};
}

inline std::string ListPath(const std::string& continue_token = "", int64_t limit = 500) {
  std::string path = kConfigMaps + "?limit=" + std::to_string(limit);
  if (!continue_token.empty()) path += "&continue=" + continue_token;
  return path;
}

inline std::string WatchPath(const std::string& rv) {
  return kConfigMaps + "?watch=1&resourceVersion=" + rv + "&allowWatchBookmarks=true";
}

inline std::string EventLine(const std::string& type, Json object) {
  if (type != "ERROR" && type != "BOOKMARK") {
    object["apiVersion"] = "v1";
    object["kind"] = "ConfigMap";
  }
  return Json{{"type", type}, {"object", std::move(object)}}.dump() + "\n";
}

inline std::string BookmarkLine(const std::string& rv) {
  return EventLine(
      "BOOKMARK",
      {{"kind", "ConfigMap"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", rv}}}});
}

inline ScriptedResponse Hang(std::vector<std::string> chunks = {}) {
  ScriptedResponse r = StreamOf(std::move(chunks));
  r.hang_until_cancelled = true;
  return r;
}

inline ScriptedResponse BreakAfter(std::vector<std::string> chunks, Status error) {
  ScriptedResponse r = StreamOf(std::move(chunks));
  r.stream_error = std::move(error);
  return r;
}

// Polls `condition` until it holds or 30 s pass; for state that offers nothing to wait on (the
// fake transport's request log). Returns the last evaluation.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A Client whose transport is the returned FakeTransport; reads are not retried inside the
// client so the watcher's own handling is what the tests see.
struct FakeApi {
  FakeTransport* transport = nullptr;
  std::unique_ptr<Client> client;
};

inline FakeApi MakeFakeApi(Clock& clock) {
  auto transport = std::make_unique<FakeTransport>();
  FakeApi api;
  api.transport = transport.get();
  Config config;
  config.server = "https://127.0.0.1:6443";
  ClientOptions options;
  options.max_read_retries = 0;
  options.clock = &clock;
  auto client = Client::Create(config, std::move(transport), options);
  EXPECT_TRUE(client.ok()) << client.status();
  api.client = std::move(client).value();
  return api;
}

// Collects watcher events and transitions; tests wait for counts (with a real-time guard).
class Recorder {
 public:
  void OnEvent(WatcherEvent&& event) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
    cv_.notify_all();
  }
  void OnTransition(const WatcherTransition& t) {
    std::lock_guard<std::mutex> lock(mu_);
    transitions_.push_back(t);
    cv_.notify_all();
  }

  bool WaitForEvents(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return events_.size() >= n; });
  }
  bool WaitForTransitions(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return transitions_.size() >= n; });
  }

  std::vector<WatcherEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<WatcherTransition> transitions() const {
    std::lock_guard<std::mutex> lock(mu_);
    return transitions_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatcherEvent> events_;            // guarded by mu_
  std::vector<WatcherTransition> transitions_;  // guarded by mu_
};

}  // namespace sluice::kube::testing
