#pragma once

// A scripted Transport for unit tests: requests are expected in order (Expect) or answered by
// matcher any number of times (On); every request is recorded. A request nobody expected gets a
// kInternal error and is listed by unexpected(), so a test can assert that none happened.

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lib/kube/transport.h"

namespace sluice::kube::testing {

struct ScriptedResponse {
  Result<Response> response = Response{200, {}, "{}"};
  // Stream(): the body in these chunks (response.body is ignored when chunks are given).
  std::vector<std::string> chunks;
  // Stream(): after the chunks, wait until the cancel flag is set instead of ending.
  bool hang_until_cancelled = false;
  // Stream(): after the chunks, the connection breaks with this error.
  std::optional<Status> stream_error;
};

inline Response JsonResponse(int status, const nlohmann::json& body,
                             std::vector<Header> headers = {}) {
  headers.emplace_back("content-type", "application/json");
  return Response{status, std::move(headers), body.dump()};
}

inline nlohmann::json StatusObject(int code, const std::string& reason,
                                   const std::string& message) {
  return {{"kind", "Status"},   {"apiVersion", "v1"}, {"status", "Failure"},
          {"message", message}, {"reason", reason},   {"code", code}};
}

inline ScriptedResponse Reply(int status, const nlohmann::json& body,
                              std::vector<Header> headers = {}) {
  ScriptedResponse r;
  r.response = JsonResponse(status, body, std::move(headers));
  return r;
}

inline ScriptedResponse Fail(Status status) {
  ScriptedResponse r;
  r.response = std::move(status);
  return r;
}

inline ScriptedResponse StreamOf(std::vector<std::string> chunks, int status = 200) {
  ScriptedResponse r;
  r.response = Response{status, {{"content-type", "application/json"}}, ""};
  r.chunks = std::move(chunks);
  return r;
}

class FakeTransport : public Transport {
 public:
  using Matcher = std::function<bool(const Request&)>;

  static Matcher Is(std::string method, std::string path) {
    return [method, path](const Request& r) { return r.method == method && r.path == path; };
  }
  static Matcher StartsWith(std::string method, std::string prefix) {
    return [method, prefix](const Request& r) {
      return r.method == method && r.path.compare(0, prefix.size(), prefix) == 0;
    };
  }

  // The next request must be exactly `method path` (query included).
  FakeTransport& Expect(const std::string& method, const std::string& path, ScriptedResponse r) {
    return Expect(Is(method, path), method + " " + path, std::move(r));
  }
  FakeTransport& Expect(Matcher m, std::string description, ScriptedResponse r) {
    std::lock_guard<std::mutex> lock(mu_);
    ordered_.push_back({std::move(m), std::move(description), std::move(r)});
    return *this;
  }
  // Answers every matching request that the ordered script does not take.
  FakeTransport& On(Matcher m, std::string description, ScriptedResponse r) {
    std::lock_guard<std::mutex> lock(mu_);
    standing_.push_back({std::move(m), std::move(description), std::move(r)});
    return *this;
  }

  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  std::vector<std::string> unexpected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return unexpected_;
  }
  // Ordered expectations not yet consumed.
  std::vector<std::string> pending() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& e : ordered_) out.push_back(e.description);
    return out;
  }

  Result<Response> Send(const Request& request) override {
    ScriptedResponse r;
    if (!Take(request, &r)) return Internal("fake transport: unexpected " + Describe(request));
    return r.response;
  }

  Result<int> Stream(const Request& request,
                     const std::function<bool(int, const std::vector<Header>&)>& on_headers,
                     const std::function<bool(std::string_view)>& on_data,
                     const CancelFlag* cancel) override {
    ScriptedResponse r;
    if (!Take(request, &r)) return Internal("fake transport: unexpected " + Describe(request));
    if (!r.response.ok()) return r.response.status();
    const Response& head = *r.response;
    if (!on_headers(head.status, head.headers)) return head.status;
    std::vector<std::string> chunks = r.chunks;
    if (chunks.empty() && !head.body.empty()) chunks.push_back(head.body);
    for (const auto& c : chunks) {
      if (cancel != nullptr && cancel->load()) return Cancelled("fake transport: cancelled");
      if (!on_data(c)) return head.status;
    }
    if (r.hang_until_cancelled) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (cancel == nullptr || !cancel->load()) {
        if (std::chrono::steady_clock::now() > deadline) {
          return Internal("fake transport: hung stream was never cancelled");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return Cancelled("fake transport: cancelled");
    }
    if (r.stream_error) return *r.stream_error;
    return head.status;
  }

 private:
  struct Expectation {
    Matcher matcher;
    std::string description;
    ScriptedResponse response;
  };

  static std::string Describe(const Request& r) { return r.method + " " + r.path; }

  bool Take(const Request& request, ScriptedResponse* out) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(request);
    if (!ordered_.empty() && ordered_.front().matcher(request)) {
      *out = std::move(ordered_.front().response);
      ordered_.pop_front();
      return true;
    }
    for (const auto& e : standing_) {
      if (e.matcher(request)) {
        *out = e.response;
        return true;
      }
    }
    unexpected_.push_back(
        Describe(request) +
        (ordered_.empty() ? "" : " (expected " + ordered_.front().description + ")"));
    return false;
  }

  mutable std::mutex mu_;
  std::deque<Expectation> ordered_;      // guarded by mu_
  std::vector<Expectation> standing_;    // guarded by mu_
  std::vector<Request> seen_;            // guarded by mu_
  std::vector<std::string> unexpected_;  // guarded by mu_
};

}  // namespace sluice::kube::testing
