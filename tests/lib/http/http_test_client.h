#pragma once

// Blocking HTTP/1.1 clients for tests: a keep-alive client on Beast, and a raw socket for tests
// that must write malformed, partial or pipelined bytes. Every read has a deadline so a broken
// server fails the test instead of hanging it.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace sluice::testing {

struct HttpReply {
  int status = 0;
  std::string body;
  boost::beast::http::fields headers;
  bool keep_alive = true;
  std::string header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : std::string(it->value());
  }
};

// One keep-alive connection. Errors are returned, never thrown.
class HttpTestClient {
 public:
  explicit HttpTestClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : port_(port), timeout_(timeout), stream_(ioc_) {}

  bool Connect() {
    boost::beast::error_code ec;
    stream_.expires_after(timeout_);
    stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_), ec);
    connected_ = !ec;
    return connected_;
  }

  // Sends one request and reads the reply; nullopt when the connection fails. `error` says why.
  std::optional<HttpReply> Request(boost::beast::http::verb method, std::string target,
                                   std::string body = {},
                                   std::vector<std::pair<std::string, std::string>> headers = {},
                                   std::string* error = nullptr) {
    namespace http = boost::beast::http;
    if (!connected_ && !Connect()) {
      if (error) *error = "connect failed";
      return std::nullopt;
    }
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == http::verb::post) {
      if (req[http::field::content_type].empty()) req.set(http::field::content_type, "application/json");
      req.body() = std::move(body);
      req.prepare_payload();
    }
    boost::beast::error_code ec;
    stream_.expires_after(timeout_);
    http::write(stream_, req, ec);
    if (ec) {
      if (error) *error = "write: " + ec.message();
      connected_ = false;
      return std::nullopt;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(1u << 30);
    stream_.expires_after(timeout_);
    http::read(stream_, buffer_, parser, ec);
    if (ec) {
      if (error) *error = "read: " + ec.message();
      connected_ = false;
      return std::nullopt;
    }
    auto res = parser.release();
    HttpReply reply;
    reply.status = res.result_int();
    reply.keep_alive = res.keep_alive();
    reply.headers = res.base();
    reply.body = std::move(res.body());
    if (!reply.keep_alive) Close();
    return reply;
  }

  std::optional<HttpReply> Get(std::string target) {
    return Request(boost::beast::http::verb::get, std::move(target));
  }
  std::optional<HttpReply> Post(std::string target, std::string body,
                                std::vector<std::pair<std::string, std::string>> headers = {}) {
    return Request(boost::beast::http::verb::post, std::move(target), std::move(body),
                   std::move(headers));
  }

  void Close() {
    boost::beast::error_code ec;
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    stream_.close();
    connected_ = false;
  }
  bool connected() const { return connected_; }

 private:
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  bool connected_ = false;
};

// Raw bytes over TCP, for malformed and partial requests.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : stream_(ioc_) {
    boost::beast::error_code ec;
    stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
    ok_ = !ec;
  }
  bool ok() const { return ok_; }

  bool Write(std::string_view bytes) {
    boost::beast::error_code ec;
    stream_.expires_after(std::chrono::seconds(10));
    boost::asio::write(stream_, boost::asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  // Reads one HTTP response; nullopt on EOF, reset or `timeout`.
  std::optional<HttpReply> ReadReply(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> parser;
    boost::beast::error_code ec;
    stream_.expires_after(timeout);
    http::read(stream_, buffer_, parser, ec);
    if (ec) {
      last_error_ = ec;
      return std::nullopt;
    }
    auto res = parser.release();
    HttpReply reply;
    reply.status = res.result_int();
    reply.keep_alive = res.keep_alive();
    reply.headers = res.base();
    reply.body = std::move(res.body());
    return reply;
  }

  // True when the server closes the connection (EOF or reset) within `timeout` without sending
  // anything more.
  bool WaitClosed(std::chrono::milliseconds timeout) {
    char c;
    boost::beast::error_code ec;
    stream_.expires_after(timeout);
    if (buffer_.size() > 0) return false;
    size_t n = stream_.read_some(boost::asio::buffer(&c, 1), ec);
    return n == 0 && ec && ec != boost::beast::error::timeout;
  }

  boost::beast::error_code last_error() const { return last_error_; }

  // The socket's descriptor, for a second thread that only writes (with ::send) while this
  // object reads: the stream's timer is not shared with it.
  int native_fd() { return stream_.socket().native_handle(); }

 private:
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  boost::beast::error_code last_error_;
  bool ok_ = false;
};

}  // namespace sluice::testing
