#pragma once

// TLS for the data plane's listeners and its client side, on OpenSSL through Asio.
//
// A serving certificate comes from files (a mounted kubernetes.io/tls Secret: tls.crt, tls.key,
// optional ca.crt). The kubelet updates such a mount by an atomic symlink swap (`..data`), so the
// files are watched by identity (device, inode, size, mtime, following symlinks), and a change
// builds a new context. Connections keep the context they started with; new connections get the
// new one. A new certificate that does not load (unreadable, key not matching) leaves the old one
// in place and is reported, never served half-made.

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lib/base/status.h"

namespace prometheus {
class Registry;
}

namespace sluice {

struct TlsServerFiles {
  std::string cert_file;       // PEM chain, leaf first
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // when set, clients must present a certificate issued by it (mTLS)
};

// Builds a server context: TLS 1.2 or later, the chain and key (checked to match), and client
// verification when client_ca_file is set. InvalidArgument naming the file that failed.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const TlsServerFiles& files);

// Builds a client context that verifies the peer's chain against `ca_file` (empty: the system
// store). The host name is checked per connection by whoever knows it
// (boost::asio::ssl::host_name_verification).
Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientTlsContext(const std::string& ca_file);

// Where an HttpServer gets the context for each new connection. Implementations are thread-safe.
class TlsContextSource {
 public:
  virtual ~TlsContextSource() = default;
  virtual std::shared_ptr<boost::asio::ssl::context> Current() const = 0;
};

struct ReloadingTlsOptions {
  TlsServerFiles files;
  // How often the files are checked for a change; 0: never by itself (CheckNow only).
  std::chrono::milliseconds poll_period{2'000};
  // Called after each attempted reload, from the polling thread (or CheckNow's caller): OK when a
  // new certificate is now served, the error when the old one stays. For logs and metrics.
  std::function<void(const Status&)> on_reload;
};

// A TlsContextSource that follows its files. Create loads them once (and fails when they do not
// load); Start begins polling on a thread of its own, stopped by the destructor.
class ReloadingTlsContext final : public TlsContextSource {
 public:
  static Result<std::unique_ptr<ReloadingTlsContext>> Create(ReloadingTlsOptions options);
  ~ReloadingTlsContext() override;

  ReloadingTlsContext(const ReloadingTlsContext&) = delete;
  ReloadingTlsContext& operator=(const ReloadingTlsContext&) = delete;

  std::shared_ptr<boost::asio::ssl::context> Current() const override;

  void Start();
  void Stop();

  // Reloads when the files' identity changed since the last attempt. Returns OK when nothing
  // changed or the reload succeeded; the error (the old context kept) otherwise. A failed change
  // is not retried until the files change again.
  Status CheckNow();

  uint64_t reloads() const { return reloads_.load(); }
  uint64_t failures() const { return failures_.load(); }

 private:
  explicit ReloadingTlsContext(ReloadingTlsOptions options);
  std::string Fingerprint() const;

  const ReloadingTlsOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;  // guarded by mu_
  std::string fingerprint_;                             // guarded by check_mu_
  std::mutex check_mu_;                                 // one check at a time
  std::atomic<uint64_t> reloads_{0};
  std::atomic<uint64_t> failures_{0};

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stopping_ = false;  // guarded by run_mu_
  std::thread thread_;
};

// What the binaries run: loads `files` (the error when they do not load), polls them every
// `poll_period`, logs each reload with `identity` and counts it in `registry` as
// `metric_name`{result="reloaded"|"error"}.
Result<std::shared_ptr<ReloadingTlsContext>> StartServingTls(const TlsServerFiles& files,
                                                             std::chrono::milliseconds poll_period,
                                                             prometheus::Registry& registry,
                                                             const std::string& metric_name,
                                                             const std::string& identity);

// The SHA-256 fingerprint of a PEM certificate (the first one in `pem`), as lower-case hex.
Result<std::string> CertificateFingerprint(const std::string& pem);

}  // namespace sluice
