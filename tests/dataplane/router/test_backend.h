#pragma once

// In-process HTTP backends for the router's unit tests: real HttpServers on 127.0.0.1 port 0 that
// record what reached them and answer as told (echo, a fixed answer, a delay).

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/http/http_server.h"

namespace sluice::dataplane::testing {

struct SeenRequest {
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (boost::beast::iequals(k, name)) return v;
    }
    return "";
  }
  bool has_header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (boost::beast::iequals(k, name)) return true;
    }
    return false;
  }
};

class TestBackend {
 public:
  // Answers 200 with the body "<name>:<request body>" and header X-Backend: <name>, unless a
  // responder is set. `delay` holds every answer back that long (on a timer, not a thread).
  explicit TestBackend(std::string name, int io_threads = 1,
                       std::chrono::milliseconds idle_timeout = std::chrono::seconds(120),
                       std::string address = "127.0.0.1")
      : name_(std::move(name)) {
    auto router = std::make_shared<HttpRouter>();
    for (HttpVerb v :
         {HttpVerb::get, HttpVerb::post, HttpVerb::put, HttpVerb::head, HttpVerb::delete_}) {
      router->HandlePrefix(
          v, "/", [this](const HttpRequest& req, Responder r) { Handle(req, std::move(r)); });
    }
    HttpServerOptions o;
    o.io_threads = io_threads;
    o.idle_timeout = idle_timeout;
    o.address = std::move(address);
    auto s = HttpServer::Create(o, router);
    if (s.ok()) server_ = std::move(s).value();
  }
  ~TestBackend() {
    if (server_) server_->Shutdown();
  }

  bool ok() const { return server_ != nullptr; }
  uint16_t port() const { return server_->port(); }
  HttpServer& server() { return *server_; }
  const std::string& name() const { return name_; }

  void set_delay(std::chrono::milliseconds d) { delay_ms_.store(d.count()); }
  // Replaces the default answer.
  void set_answer(std::function<HttpResponse(const HttpRequest&)> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    answer_ = std::move(answer);
  }

  int count() const { return count_.load(); }
  std::vector<SeenRequest> seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  // Waits until `n` requests arrived or the timeout passed.
  bool WaitCount(int n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return count_.load() >= n; });
  }

 private:
  void Handle(const HttpRequest& req, Responder r) {
    SeenRequest s;
    s.method = std::string(req.method_string());
    s.target = std::string(req.target());
    s.body = req.body();
    for (const auto& f : req)
      s.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    HttpResponse res{HttpStatus::ok, 11};
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(std::move(s));
      if (answer_) {
        res = answer_(req);
      } else {
        res.set("X-Backend", name_);
        res.set(boost::beast::http::field::content_type, "text/plain");
        res.body() = name_ + ":" + req.body();
      }
      count_.fetch_add(1);
    }
    cv_.notify_all();
    const auto delay = std::chrono::milliseconds(delay_ms_.load());
    if (delay.count() == 0) {
      r.Send(std::move(res));
      return;
    }
    auto timer = std::make_shared<boost::asio::steady_timer>(r.executor(), delay);
    auto responder = std::make_shared<Responder>(std::move(r));
    auto answer = std::make_shared<HttpResponse>(std::move(res));
    timer->async_wait([timer, responder, answer](boost::system::error_code) {
      responder->Send(std::move(*answer));
    });
  }

  const std::string name_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int64_t> delay_ms_{0};
  std::atomic<int> count_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<SeenRequest> seen_;                           // guarded by mu_
  std::function<HttpResponse(const HttpRequest&)> answer_;  // guarded by mu_
};

}  // namespace sluice::dataplane::testing
