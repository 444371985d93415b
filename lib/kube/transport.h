#pragma once

// The HTTP transport under the Kubernetes client. Production: CurlTransport (libcurl, connection
// reuse, TLS verified unless the kubeconfig says insecure-skip-tls-verify). Unit tests: a scripted
// fake (tests/lib/kube/fake_transport.h). A transport knows nothing about Kubernetes: it sends
// a request and returns what came back; mapping statuses to errors is the client's job.
//
// Contract: a non-OK Result means the exchange did not complete (connect failure, TLS failure,
// timeout, cancelled). Any HTTP answer, 4xx and 5xx included, is an OK Result with that status.
// Implementations are safe to call from several threads at once.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/status.h"

namespace sluice::kube {

using Header = std::pair<std::string, std::string>;

struct Request {
  std::string method = "GET";
  std::string path;  // path and query, e.g. "/api/v1/namespaces/ns/configmaps?limit=500"
  std::vector<Header> headers;
  std::string body;
  // Total time allowed for the exchange; zero means no limit (watches).
  std::chrono::milliseconds timeout{0};
  // Streams: give up (kTimeout) when no byte has arrived for this long, so a peer that vanished
  // without closing the connection is noticed. Zero means no limit.
  std::chrono::milliseconds idle_timeout{0};
};

struct Response {
  int status = 0;
  // Header pairs, names lower-cased (spelled out: the member function below is named Header).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // First header with this (lower-case) name, or empty.
  std::string_view Header(std::string_view name) const;
};

// Set from another thread to abandon a streaming request; the stream returns kCancelled promptly.
using CancelFlag = std::atomic<bool>;

class Transport {
 public:
  virtual ~Transport() = default;

  virtual Result<Response> Send(const Request& request) = 0;

  // A long-lived response delivered in chunks as they arrive (watch streams). `on_headers` gets
  // the status and headers once; then `on_data` gets each chunk; returning false from either
  // stops the stream. Returns the HTTP status when the server ends the stream (or the callback
  // stops it), kCancelled when `cancel` is set, and an error when the connection breaks.
  virtual Result<int> Stream(const Request& request,
                             const std::function<bool(int, const std::vector<Header>&)>& on_headers,
                             const std::function<bool(std::string_view)>& on_data,
                             const CancelFlag* cancel) = 0;
};

}  // namespace sluice::kube
