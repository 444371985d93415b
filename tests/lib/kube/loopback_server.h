#pragma once

// A small HTTP/1.1 server on 127.0.0.1 (port 0) for exercising CurlTransport against real
// sockets: keep-alive, chunked streaming written by the test at its own pace, optional TLS with
// an optional client-certificate requirement. One thread per connection; every request goes to
// the handler, which writes the whole response itself.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lib/base/status.h"

namespace sluice::kube::testing {

struct ServedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string client_cert_subject;  // TLS with a client certificate: its subject, one line
};

class ServerConnection {
 public:
  virtual ~ServerConnection() = default;
  virtual bool Write(std::string_view data) = 0;
  // Waits until the peer closes the connection; false when `timeout` passes first.
  virtual bool WaitForPeerClose(std::chrono::milliseconds timeout) = 0;

  // A complete response with Content-Length.
  bool Respond(int status, std::string_view body,
               const std::vector<std::pair<std::string, std::string>>& headers = {});
  // The head of a chunked response; then Chunk() any number of times and EndChunks().
  bool StartChunked(int status);
  bool Chunk(std::string_view data);
  bool EndChunks();
};

struct LoopbackTls {
  std::string cert_pem;
  std::string key_pem;
  // When set, clients must present a certificate signed by this CA.
  std::string client_ca_pem;
};

class LoopbackServer {
 public:
  using Handler = std::function<void(const ServedRequest&, ServerConnection&)>;

  static Result<std::unique_ptr<LoopbackServer>> Start(Handler handler,
                                                       const LoopbackTls* tls = nullptr);
  ~LoopbackServer();  // stops accepting, closes connections, joins threads

  int port() const { return port_; }
  std::string url() const;
  int connections_accepted() const;

 private:
  struct Impl;
  explicit LoopbackServer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace sluice::kube::testing
