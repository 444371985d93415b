#pragma once

// Request building and watch-stream decoding for the Kubernetes API: pure functions, no I/O, so
// every path, query, header and body the client sends is unit-tested byte for byte.
//
// Paths: core group "/api/v1/...", named groups "/apis/<group>/<version>/...", namespaced
// resources under "namespaces/<ns>/". A namespaced collection with an empty namespace means all
// namespaces (list, watch); naming one object of a namespaced resource requires a namespace.

#include <functional>
#include <string>
#include <string_view>

#include "lib/kube/client.h"
#include "lib/kube/transport.h"

namespace sluice::kube {

// Percent-encodes everything but RFC 3986 unreserved characters ("a=b,c!=d" -> "a%3Db%2Cc%21%3Dd").
std::string QueryEscape(std::string_view s);

// "/api/v1" or "/apis/<group>/<version>".
std::string GroupVersionPath(const std::string& group, const std::string& version);

// The path of a collection (name empty), an object, or an object's subresource.
Result<std::string> ResourcePath(const GroupVersionResource& gvr, const std::string& ns,
                                 const std::string& name = "", const std::string& subresource = "");

std::string_view PatchContentType(PatchType type);

Result<Request> BuildGet(const GroupVersionResource& gvr, const std::string& ns,
                         const std::string& name, const std::string& subresource = "");
Result<Request> BuildList(const GroupVersionResource& gvr, const std::string& ns,
                          const ListOptions& options);
Result<Request> BuildWatch(const GroupVersionResource& gvr, const std::string& ns,
                           const WatchOptions& options);
// The namespace is `ns`, or the object's metadata.namespace when `ns` is empty. With a
// subresource, POSTs to <object name>/<subresource> (serviceaccounts/x/token, pods/x/eviction).
Result<Request> BuildCreate(const GroupVersionResource& gvr, const std::string& ns,
                            const Json& object, const WriteOptions& options);
// PUT to the object's metadata.name (and subresource), namespace as for BuildCreate.
Result<Request> BuildUpdate(const GroupVersionResource& gvr, const std::string& ns,
                            const Json& object, const WriteOptions& options);
// kApply requires a field manager; `force` is only valid with kApply.
Result<Request> BuildPatch(const GroupVersionResource& gvr, const std::string& ns,
                           const std::string& name, PatchType type, const std::string& body,
                           const PatchOptions& options);
// Server-side apply of an intent object; it must carry apiVersion, kind and metadata.name.
Result<Request> BuildApply(const GroupVersionResource& gvr, const std::string& ns,
                           const Json& object, const std::string& field_manager, bool force,
                           const std::string& subresource);
// The DeleteOptions body is sent only when some option is set.
Result<Request> BuildDelete(const GroupVersionResource& gvr, const std::string& ns,
                            const std::string& name, const DeleteOptions& options);
// The resource list of one group version ("v1", "apps/v1", "sluice.dev/v1alpha1").
Request BuildDiscovery(const std::string& api_version);

// One line of a watch stream ({"type":"ADDED","object":{...}}) as an event.
Result<WatchEvent> ParseWatchEvent(std::string_view line);

// Splits a watch response body into events as chunks arrive. Chunks may end anywhere, inside a
// line or a UTF-8 sequence, and may hold several events. Not thread-safe: one per stream.
class WatchDecoder {
 public:
  using Sink = std::function<bool(WatchEvent&&)>;

  // Delivers every complete event in the data so far. When `sink` returns false the decoder
  // stops: the rest is dropped and stopped() turns true. Errors on a line that is not an event.
  Status Feed(std::string_view chunk, const Sink& sink);
  // End of the stream: a last event without a trailing newline is delivered; a partial one is
  // an error.
  Status Finish(const Sink& sink);

  bool stopped() const { return stopped_; }
  size_t buffered() const { return buffer_.size(); }

  static constexpr size_t kMaxEventBytes = size_t{128} << 20;

 private:
  Status Deliver(std::string_view line, const Sink& sink);

  std::string buffer_;
  size_t scanned_ = 0;  // prefix of buffer_ known to hold no newline
  bool stopped_ = false;
};

}  // namespace sluice::kube
