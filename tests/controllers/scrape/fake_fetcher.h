#pragma once

// An HttpFetcher answering from a table of URLs, for scrapers under test: each URL serves a body
// (or fails) as the test sets it, and every call is counted.

#include <map>
#include <mutex>
#include <string>

#include "controllers/scrape/http_fetcher.h"

namespace sluice::controllers::testing {

class FakeFetcher final : public HttpFetcher {
 public:
  void Serve(const std::string& url, std::string body, int status = 200) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.insert_or_assign(url, Result<FetchResponse>(FetchResponse{status, std::move(body)}));
  }
  void Fail(const std::string& url, Status why) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.insert_or_assign(url, Result<FetchResponse>(std::move(why)));
  }
  int calls(const std::string& url) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(url);
    return it == calls_.end() ? 0 : it->second;
  }
  std::string last_url() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_url_;
  }

  Result<FetchResponse> Get(const std::string& url, std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_[url];
    last_url_ = url;
    auto it = answers_.find(url);
    if (it == answers_.end()) return Unavailable("connection refused: " + url);
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Result<FetchResponse>> answers_;
  std::map<std::string, int> calls_;
  std::string last_url_;
};

}  // namespace sluice::controllers::testing
