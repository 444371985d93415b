#pragma once

// Shared pieces of the client integration tests: an admin client for the shared test API server,
// fresh namespaces, a transport that counts what goes through it, and waiting on conditions.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/kube/client.h"
#include "lib/kube/curl_transport.h"
#include "tests/support/api_server.h"

namespace sluice::kube::it {

// Forwards to a real transport and records the requests.
class CountingTransport final : public Transport {
 public:
  explicit CountingTransport(std::unique_ptr<Transport> inner) : inner_(std::move(inner)) {}
  Result<Response> Send(const Request& request) override {
    Record(request);
    return inner_->Send(request);
  }
  Result<int> Stream(const Request& request,
                     const std::function<bool(int, const std::vector<Header>&)>& on_headers,
                     const std::function<bool(std::string_view)>& on_data,
                     const CancelFlag* cancel) override {
    Record(request);
    return inner_->Stream(request, on_headers, on_data, cancel);
  }
  std::vector<std::string> paths() const {
    std::lock_guard<std::mutex> lock(mu_);
    return paths_;
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    paths_.clear();
  }

 private:
  void Record(const Request& r) {
    std::lock_guard<std::mutex> lock(mu_);
    paths_.push_back(r.method + " " + r.path);
  }
  std::unique_ptr<Transport> inner_;
  mutable std::mutex mu_;
  std::vector<std::string> paths_;  // guarded by mu_
};

inline Config AdminConfig() {
  auto c = Config::FromKubeconfig(sluice::testing::SharedApiServer().kubeconfig_path());
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : Config{};
}

inline std::unique_ptr<Client> ClientFor(const Config& config,
                                         CountingTransport** counter = nullptr) {
  auto transport = CurlTransport::Create(config);
  EXPECT_TRUE(transport.ok()) << transport.status();
  if (!transport.ok()) return nullptr;
  auto counting = std::make_unique<CountingTransport>(std::move(*transport));
  if (counter != nullptr) *counter = counting.get();
  auto client = Client::Create(config, std::move(counting));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

inline std::unique_ptr<Client> AdminClient(CountingTransport** counter = nullptr) {
  return ClientFor(AdminConfig(), counter);
}

// A new namespace per call, so tests sharing one API server do not see each other's objects.
inline std::string FreshNamespace(Client& client, const std::string& prefix) {
  static std::atomic<int> counter{0};
  const std::string name = prefix + "-" + std::to_string(++counter);
  auto r = client.Create(
      resources::kNamespaces, "",
      Json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
  EXPECT_TRUE(r.ok()) << r.status();
  return name;
}

// Polls `condition` until it holds or `timeout` passes.
inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

inline Json ConfigMap(const std::string& name, Json data = Json::object(),
                      Json labels = Json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"data", data}};
}

}  // namespace sluice::kube::it
