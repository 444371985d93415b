#pragma once

// A small HTTP CONNECT proxy on 127.0.0.1 (port 0), for tests of clients that must reach a server
// through a proxy: it answers CONNECT host:port with 200, then relays bytes both ways, and
// records every target it was asked for. Anything but CONNECT gets 405. One thread per
// connection; the destructor closes every connection and joins the threads.

#include <memory>
#include <string>
#include <vector>

#include "lib/base/status.h"

namespace sluice::testing {

class ConnectProxy {
 public:
  static Result<std::unique_ptr<ConnectProxy>> Start();
  ~ConnectProxy();
  ConnectProxy(const ConnectProxy&) = delete;
  ConnectProxy& operator=(const ConnectProxy&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // "host:port" of each CONNECT so far, in order.
  std::vector<std::string> targets() const;

 private:
  struct Impl;
  explicit ConnectProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace sluice::testing
