#include "tests/support/tls_files.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdio>
#include <filesystem>

namespace sluice::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

Status MountedTlsSecret::Write(const CertifiedKey& leaf, const std::string& ca_pem) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Internal("mkdir " + dir_ + ": " + ec.message());
  const std::string version = "..v" + std::to_string(++version_);
  const std::string vdir = dir_ + "/" + version;
  fs::create_directories(vdir, ec);
  if (ec) return Internal("mkdir " + vdir + ": " + ec.message());
  RETURN_IF_ERROR(WriteFile(vdir + "/tls.crt", leaf.cert_pem));
  RETURN_IF_ERROR(WriteFile(vdir + "/tls.key", leaf.key_pem, 0600));
  RETURN_IF_ERROR(WriteFile(vdir + "/ca.crt", ca_pem));
  const std::string tmp = dir_ + "/..data_tmp";
  fs::remove(tmp, ec);
  fs::create_directory_symlink(version, tmp, ec);
  if (ec) return Internal("symlink " + tmp + ": " + ec.message());
  if (std::rename(tmp.c_str(), (dir_ + "/..data").c_str()) != 0) {
    return Internal("rename ..data_tmp: " + std::string(strerror(errno)));
  }
  for (const char* name : {"tls.crt", "tls.key", "ca.crt"}) {
    const std::string link = dir_ + "/" + name;
    if (!fs::is_symlink(fs::symlink_status(link))) {
      fs::create_symlink(std::string("..data/") + name, link, ec);
      if (ec) return Internal("symlink " + link + ": " + ec.message());
    }
  }
  return Status::Ok();
}

TlsTestClient::TlsTestClient() : ctx_(asio::ssl::context::tls_client) {}

Result<std::unique_ptr<TlsTestClient>> TlsTestClient::Connect(uint16_t port,
                                                              const std::string& ca_file,
                                                              const std::string& server_name) {
  std::unique_ptr<TlsTestClient> c(new TlsTestClient());
  beast::error_code ec;
  c->ctx_.load_verify_file(ca_file, ec);
  if (ec) return Internal("load " + ca_file + ": " + ec.message());
  c->ctx_.set_verify_mode(asio::ssl::verify_peer);
  c->stream_ = std::make_unique<asio::ssl::stream<tcp::socket>>(c->ioc_, c->ctx_);
  if (!server_name.empty()) {
    c->stream_->set_verify_callback(asio::ssl::host_name_verification(server_name));
    SSL_set_tlsext_host_name(c->stream_->native_handle(), server_name.c_str());
  }
  auto& sock = c->stream_->next_layer();
  sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return Unavailable("connect: " + ec.message());
  timeval tv{30, 0};
  ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  c->stream_->handshake(asio::ssl::stream_base::client, ec);
  if (ec) return Unavailable("TLS handshake: " + ec.message());
  X509* peer = SSL_get_peer_certificate(c->stream_->native_handle());
  if (peer == nullptr) return Internal("no peer certificate");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(peer, EVP_sha256(), md, &n);
  X509_free(peer);
  static const char* kHex = "0123456789abcdef";
  for (unsigned i = 0; i < n; ++i) {
    c->fingerprint_ += kHex[md[i] >> 4];
    c->fingerprint_ += kHex[md[i] & 15];
  }
  return c;
}

Result<TlsAnswer> TlsTestClient::Request(http::verb method, const std::string& target,
                                         const std::string& body, const std::string& content_type) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!body.empty()) {
    req.set(http::field::content_type, content_type);
    req.body() = body;
  }
  req.prepare_payload();
  beast::error_code ec;
  http::write(*stream_, req, ec);
  if (ec) return Unavailable("write: " + ec.message());
  http::response<http::string_body> res;
  http::read(*stream_, buffer_, res, ec);
  if (ec) return Unavailable("read: " + ec.message());
  return TlsAnswer{static_cast<int>(res.result_int()), res.body()};
}

std::string PlainHttpExchange(uint16_t port) {
  asio::io_context ioc;
  tcp::socket sock(ioc);
  beast::error_code ec;
  sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return "";
  timeval tv{5, 0};
  ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(sock, asio::buffer(req), ec);
  std::string out;
  char buf[4096];
  while (true) {
    const size_t n = sock.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
    if (out.find("\r\n\r\n") != std::string::npos) break;
  }
  return out;
}

}  // namespace sluice::testing
