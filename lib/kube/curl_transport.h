#pragma once

// The production Transport: libcurl with connection reuse, TLS from in-memory PEM, bearer tokens
// that follow a rotating token file or come from an exec credential plugin, an optional proxy,
// and streams that can be cancelled from another thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/kube/config.h"
#include "lib/kube/exec_credential.h"
#include "lib/kube/transport.h"

namespace sluice::kube {

namespace curl_internal {
struct Handle;
struct Call;
}  // namespace curl_internal

struct CurlTransportOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  // How often a waiting exchange wakes to look at its cancel flag and idle deadline; bounds how
  // late a cancel is noticed.
  std::chrono::milliseconds poll_interval{50};
  // Idle handles kept for reuse; each keeps its own open connection.
  size_t max_idle_handles = 8;
  bool http2 = true;        // negotiated through ALPN on https; plain http stays HTTP/1.1
  bool compression = true;  // Accept-Encoding: gzip (the API server compresses large lists)
  std::chrono::seconds tcp_keepalive_idle{30};
  // Send() fails with kResourceExhausted past this many body bytes.
  size_t max_response_bytes = size_t{1} << 30;
  // For the exec credential plugin, when the config has one.
  ExecCredentialOptions exec;
};

// Thread-safe. Each call borrows a curl handle from a small pool and returns it afterwards, so
// keep-alive connections (and TLS sessions, shared across handles) are reused. Nothing is retried
// here except one resend after a 401 when the token file has rotated or the exec plugin, run
// again, gave a different credential (a 401 means the request was not processed). When the exec
// plugin fails, Send() and Stream() fail with its kUnauthorized error.
class CurlTransport final : public Transport {
 public:
  static Result<std::unique_ptr<CurlTransport>> Create(const Config& config,
                                                       CurlTransportOptions options = {});
  ~CurlTransport() override;

  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  Result<Response> Send(const Request& request) override;
  Result<int> Stream(const Request& request,
                     const std::function<bool(int, const std::vector<Header>&)>& on_headers,
                     const std::function<bool(std::string_view)>& on_data,
                     const CancelFlag* cancel) override;

  // TCP connections opened so far (a measure of reuse).
  uint64_t connections_opened() const { return connections_opened_.load(); }
  // The exec credential plugin's provider, or nullptr when the config has none.
  ExecCredentialProvider* exec_provider() { return exec_.get(); }

 private:
  using Handle = curl_internal::Handle;
  using Call = curl_internal::Call;

  CurlTransport(const Config& config, CurlTransportOptions options);
  Status Init();
  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> handle);
  // `credential` is the exec plugin's (nullptr without one).
  Status Perform(Handle& handle, const Request& request, Call& call,
                 const ExecCredential* credential);
  // The exec credential for the next request; nullptr when there is no plugin or a static token
  // or client certificate takes precedence.
  Result<std::shared_ptr<const ExecCredential>> ExecCredentialForRequest();
  // After a 401 to a request sent with `used`: whether the exec plugin now gives a different
  // credential worth one resend.
  bool RefreshAfterUnauthorized(const ExecCredential* used);
  // The bearer token to send; re-reads token_file when its identity or mtime changed, or when
  // `force` is set. Returns whether the token changed.
  std::string CurrentToken(bool force, bool* changed);

  const Config config_;
  const CurlTransportOptions options_;
  std::string url_base_;    // scheme://host:port[/prefix], host replaced by tls_server_name
  std::string connect_to_;  // CURLOPT_CONNECT_TO entry when tls_server_name is set
  std::string proxy_;       // CURLOPT_PROXY when the config names a proxy
  std::unique_ptr<ExecCredentialProvider> exec_;
  void* share_ = nullptr;   // CURLSH*: DNS cache and TLS sessions shared by all handles
  std::mutex share_mu_[8];  // one per curl_lock_data kind

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Handle>> pool_;  // guarded by pool_mu_

  std::mutex token_mu_;
  std::string token_;        // guarded by token_mu_
  std::string token_stamp_;  // guarded by token_mu_; inode, size and mtime of token_file

  std::atomic<uint64_t> connections_opened_{0};
};

}  // namespace sluice::kube
