#pragma once

// TLS fixtures for data-plane tests: a CA with serving certificates written the way the kubelet
// mounts a kubernetes.io/tls Secret (tls.crt and tls.key are symlinks through `..data` to a
// timestamped directory, replaced by an atomic rename), and a blocking HTTPS client that reports
// which certificate the server presented.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/verb.hpp>
#include <memory>
#include <string>

#include "lib/base/status.h"
#include "tests/support/pki.h"

namespace sluice::testing {

// A Secret volume in `dir`: dir/tls.crt, dir/tls.key, dir/ca.crt -> ..data/<file>.
class MountedTlsSecret {
 public:
  explicit MountedTlsSecret(std::string dir) : dir_(std::move(dir)) {}
  // Writes a new version and swaps `..data` to it atomically, like the kubelet.
  Status Write(const CertifiedKey& leaf, const std::string& ca_pem);
  std::string cert_file() const { return dir_ + "/tls.crt"; }
  std::string key_file() const { return dir_ + "/tls.key"; }
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int version_ = 0;
};

struct TlsAnswer {
  int status = 0;
  std::string body;
};

// One keep-alive HTTPS connection to 127.0.0.1:port, verified against `ca_file` (and, when set,
// the name `server_name`). Reads and writes time out after 30 s.
class TlsTestClient {
 public:
  static Result<std::unique_ptr<TlsTestClient>> Connect(uint16_t port, const std::string& ca_file,
                                                        const std::string& server_name = "");
  Result<TlsAnswer> Request(boost::beast::http::verb method, const std::string& target,
                            const std::string& body = "",
                            const std::string& content_type = "application/json");
  // SHA-256 of the certificate the server presented, lower-case hex.
  const std::string& peer_fingerprint() const { return fingerprint_; }

 private:
  TlsTestClient();
  boost::asio::io_context ioc_;
  boost::asio::ssl::context ctx_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> stream_;
  boost::beast::flat_buffer buffer_;
  std::string fingerprint_;
};

// Sends a plain-HTTP GET to 127.0.0.1:port and returns whatever comes back before the server
// closes (or 5 s pass): empty when the port does not speak plain HTTP.
std::string PlainHttpExchange(uint16_t port);

}  // namespace sluice::testing
