#include "controllers/scrape/http_fetcher.h"

#include <curl/curl.h>

#include <mutex>

namespace sluice::controllers {
namespace {

struct Body {
  std::string data;
  size_t limit = 0;
  bool overflow = false;
};

size_t OnData(char* ptr, size_t size, size_t nmemb, void* user) {
  auto* body = static_cast<Body*>(user);
  const size_t n = size * nmemb;
  if (body->data.size() + n > body->limit) {
    body->overflow = true;
    return 0;  // aborts the transfer
  }
  body->data.append(ptr, n);
  return n;
}

class CurlFetcher final : public HttpFetcher {
 public:
  explicit CurlFetcher(CurlFetcherOptions options) : options_(options) {}

  Result<FetchResponse> Get(const std::string& url, std::chrono::milliseconds timeout) override {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> handle(curl_easy_init(),
                                                               &curl_easy_cleanup);
    if (!handle) return Internal("curl_easy_init failed");
    CURL* h = handle.get();
    Body body;
    body.limit = options_.max_body_bytes;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnData);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    // Pod IPs are reached directly; a proxy from the environment would not know them.
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    const CURLcode rc = curl_easy_perform(h);
    if (body.overflow) {
      return ResourceExhausted("GET " + url + ": answer larger than " +
                               std::to_string(options_.max_body_bytes) + " bytes");
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return Timeout("GET " + url + ": no answer within " + std::to_string(timeout.count()) + "ms");
    }
    if (rc != CURLE_OK) return Unavailable("GET " + url + ": " + curl_easy_strerror(rc));
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return FetchResponse{static_cast<int>(code), std::move(body.data)};
  }

 private:
  const CurlFetcherOptions options_;
};

}  // namespace

Result<std::unique_ptr<HttpFetcher>> NewCurlFetcher(CurlFetcherOptions options) {
  static std::once_flag once;
  static CURLcode init = CURLE_OK;
  std::call_once(once, [] { init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init != CURLE_OK)
    return Internal(std::string("curl_global_init: ") + curl_easy_strerror(init));
  return std::unique_ptr<HttpFetcher>(new CurlFetcher(options));
}

}  // namespace sluice::controllers
