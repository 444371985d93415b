#pragma once

// Plain HTTP GETs for the operator's own reads of pods and monitoring systems (a router's or a
// server's /metrics, Prometheus' query API). Kubernetes API traffic goes through kube::Client,
// not here.

#include <chrono>
#include <memory>
#include <string>

#include "lib/base/status.h"

namespace sluice::controllers {

struct FetchResponse {
  int status = 0;
  std::string body;
};

// Contract: one request per call, never retried; a non-OK Result means no HTTP answer came
// (connect failure, timeout); any HTTP status is an OK Result. Thread-safe.
class HttpFetcher {
 public:
  virtual ~HttpFetcher() = default;
  virtual Result<FetchResponse> Get(const std::string& url, std::chrono::milliseconds timeout) = 0;
};

struct CurlFetcherOptions {
  // Answers larger than this are refused (kResourceExhausted): a /metrics page is kilobytes.
  size_t max_body_bytes = size_t{16} << 20;
};

// libcurl, one easy handle per call.
Result<std::unique_ptr<HttpFetcher>> NewCurlFetcher(CurlFetcherOptions options = {});

}  // namespace sluice::controllers
