#pragma once

// A tiny HTTP/1.1 server on 127.0.0.1 (port chosen by the kernel) for fetch tests: fixed routes,
// one request per connection, answered from an Asio thread. Test-only.

#include <atomic>
#include <boost/asio.hpp>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::dataplane::testing {

class LoopbackHttpServer {
 public:
  struct Route {
    int status = 200;
    std::string body;
    bool content_length = true;  // false: the body ends when the connection closes
    bool hang = false;           // accept and read the request, never answer

    static Route Body(std::string body) {
      Route r;
      r.body = std::move(body);
      return r;
    }
    static Route Stream(std::string body) {
      Route r = Body(std::move(body));
      r.content_length = false;
      return r;
    }
    static Route Code(int status, std::string body = "") {
      Route r = Body(std::move(body));
      r.status = status;
      return r;
    }
    static Route Hang() {
      Route r;
      r.hang = true;
      return r;
    }
  };

  LoopbackHttpServer() : acceptor_(io_) {
    namespace ip = boost::asio::ip;
    ip::tcp::endpoint ep(ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~LoopbackHttpServer() { Stop(); }

  void Stop() {
    if (!thread_.joinable()) return;
    boost::asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      for (auto& s : held_) s->close(ec);
      io_.stop();
    });
    thread_.join();
  }

  void Set(const std::string& path, Route route) {
    std::lock_guard<std::mutex> lock(mu_);
    sequences_.erase(path);
    routes_[path] = std::move(route);
  }

  // Answers successive requests for `path` with `routes` in order; the last one repeats.
  void SetSequence(const std::string& path, std::vector<Route> routes) {
    std::lock_guard<std::mutex> lock(mu_);
    routes_[path] = routes.back();
    sequences_[path] = std::deque<Route>(routes.begin(), routes.end());
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port() const { return port_; }
  // The request line and headers of the last request for `path` ("" if none).
  std::string last_head(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = heads_.find(path);
    return it == heads_.end() ? "" : it->second;
  }
  int requests(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = hits_.find(path);
    return it == hits_.end() ? 0 : it->second;
  }

 private:
  using Socket = boost::asio::ip::tcp::socket;

  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, Socket socket) {
      if (ec) return;
      Serve(std::make_shared<Socket>(std::move(socket)));
      Accept();
    });
  }

  void Serve(std::shared_ptr<Socket> socket) {
    boost::asio::streambuf buf;
    boost::system::error_code ec;
    const size_t head_size = boost::asio::read_until(*socket, buf, "\r\n\r\n", ec);
    if (ec) return;
    const std::string request_head(boost::asio::buffers_begin(buf.data()),
                                   boost::asio::buffers_begin(buf.data()) + head_size);
    std::istream in(&buf);
    std::string method, target;
    in >> method >> target;
    Route route;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++hits_[target];
      heads_[target] = request_head;
      auto seq = sequences_.find(target);
      auto it = routes_.find(target);
      if (seq != sequences_.end() && !seq->second.empty()) {
        route = seq->second.front();
        if (seq->second.size() > 1) seq->second.pop_front();
      } else if (it == routes_.end()) {
        route.status = 404;
        route.body = "not found";
      } else {
        route = it->second;
      }
    }
    if (route.hang) {
      held_.push_back(socket);
      return;
    }
    std::string head = "HTTP/1.1 " + std::to_string(route.status) + " X\r\nConnection: close\r\n";
    if (route.content_length)
      head += "Content-Length: " + std::to_string(route.body.size()) + "\r\n";
    head += "\r\n";
    boost::asio::write(*socket, boost::asio::buffer(head), ec);
    if (!ec) boost::asio::write(*socket, boost::asio::buffer(route.body), ec);
    socket->shutdown(Socket::shutdown_both, ec);
    socket->close(ec);
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::thread thread_;
  std::vector<std::shared_ptr<Socket>> held_;  // touched only on the io thread
  mutable std::mutex mu_;
  std::map<std::string, Route> routes_;                 // guarded by mu_
  std::map<std::string, int> hits_;                     // guarded by mu_
  std::map<std::string, std::string> heads_;            // guarded by mu_
  std::map<std::string, std::deque<Route>> sequences_;  // guarded by mu_
};

}  // namespace sluice::dataplane::testing
