#pragma once

// The Kubernetes API client: typed errors, the verbs, subresources, patches, discovery and the raw
// watch stream. Objects are nlohmann::json as the server sends them; typed views are derived from
// the CRD schemas elsewhere. Request building is pure (request.h) and tested without I/O.
//
// Contract:
// - Every call is synchronous and thread-safe; the client holds no per-call error state.
// - Errors come back as Status with the code mapped from the server's Status object (NotFound,
//   AlreadyExists, Conflict, Invalid + causes, Forbidden, Unauthorized, Gone, TooManyRequests +
//   retry_after, Timeout, Internal) or from the transport (Unavailable, Timeout).
// - Retries: only idempotent reads (get, list, discovery) are retried, on transport failures,
//   429 and 5xx, a bounded number of times honouring Retry-After. Writes are never retried here:
//   the caller (a reconciler) decides, because a write may have landed.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lib/base/clock.h"
#include "lib/base/status.h"
#include "lib/kube/config.h"
#include "lib/kube/transport.h"

namespace sluice::kube {

using Json = nlohmann::json;

// Identifies a resource collection. For the core group, group is "".
struct GroupVersionResource {
  std::string group;
  std::string version;
  std::string resource;  // plural, lower case: "configmaps", "modeldeployments"
  bool namespaced = true;
  std::string kind;  // filled by discovery; informational

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  friend bool operator==(const GroupVersionResource& a, const GroupVersionResource& b) {
    return a.group == b.group && a.version == b.version && a.resource == b.resource;
  }
};

// Well-known resources, so callers need no discovery round trip for built-ins.
namespace resources {
extern const GroupVersionResource kConfigMaps;
extern const GroupVersionResource kSecrets;
extern const GroupVersionResource kServices;
extern const GroupVersionResource kPods;
extern const GroupVersionResource kEvents;  // core/v1 events
extern const GroupVersionResource kNamespaces;
extern const GroupVersionResource kServiceAccounts;
extern const GroupVersionResource kDeployments;
extern const GroupVersionResource kLeases;
extern const GroupVersionResource kCustomResourceDefinitions;
extern const GroupVersionResource kHorizontalPodAutoscalers;
}  // namespace resources

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;  // 0: no paging
  std::string continue_token;
  std::string resource_version;        // "" (most recent, quorum), "0" (any), or an exact version
  std::string resource_version_match;  // "", "NotOlderThan", "Exact"
};

enum class PropagationPolicy { kDefault, kForeground, kBackground, kOrphan };

struct DeleteOptions {
  PropagationPolicy propagation = PropagationPolicy::kDefault;
  std::optional<std::string> precondition_uid;
  std::optional<std::string> precondition_resource_version;
  std::optional<int64_t> grace_period_seconds;
};

enum class PatchType {
  kMerge,           // application/merge-patch+json
  kJsonPatch,       // application/json-patch+json
  kStrategicMerge,  // application/strategic-merge-patch+json (built-in types only)
  kApply,           // application/apply-patch+yaml (server-side apply)
};

struct PatchOptions {
  std::string field_manager;  // required for kApply
  bool force = false;         // kApply: take ownership of conflicting fields
  std::string subresource;    // "", "status", "scale"
};

struct WriteOptions {
  std::string field_manager;
  // Update: "", "status", "scale". Create: a subresource of the object named by the body's
  // metadata.name ("token" on a ServiceAccount, "eviction" on a Pod).
  std::string subresource;
  bool dry_run = false;
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  bool allow_bookmarks = true;
  // Server-side timeout; the server ends the stream cleanly after it (the watcher then resumes).
  std::optional<std::chrono::seconds> timeout;
  bool send_initial_events = false;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

struct WatchEvent {
  WatchEventType type;
  Json object;  // the object; for kError, the Status object
};

// Maps an API server answer (status code + body) to a Status. Exposed for tests and for callers
// that talk to the API with their own transport.
Status StatusFromResponse(const Response& response);

struct ClientOptions {
  // Per request, watches excepted.
  std::chrono::milliseconds request_timeout{30'000};
  // Extra attempts for idempotent reads; the wait doubles from initial_backoff up to max_backoff,
  // jittered by +-50%, and is at least the server's Retry-After.
  int max_read_retries = 4;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5'000};
  // A Retry-After longer than this is handed back to the caller instead of being waited out.
  std::chrono::seconds max_retry_after{30};
  // ListAll restarts from the first page this many times when a continue token expires (410).
  int max_list_restarts = 3;
  // Watches with a server-side timeout are presumed dead when nothing (not even a bookmark)
  // arrived for timeout + this margin.
  std::chrono::seconds watch_idle_margin{30};
  // Retry waits are taken on this clock (nullptr: the real one).
  Clock* clock = nullptr;
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Create(Config config, std::unique_ptr<Transport> transport,
                                                ClientOptions options);
  static Result<std::unique_ptr<Client>> Create(Config config,
                                                std::unique_ptr<Transport> transport);
  // Production wiring: a CurlTransport built from the config.
  static Result<std::unique_ptr<Client>> Create(Config config);

  Result<Json> Get(const GroupVersionResource& gvr, const std::string& ns, const std::string& name,
                   const std::string& subresource = "");
  // One page; follow `metadata.continue` for the next.
  Result<Json> List(const GroupVersionResource& gvr, const std::string& ns,
                    const ListOptions& options = {});
  // All pages, concatenated into one List object whose metadata.resourceVersion is the first
  // page's (the snapshot the pages are consistent with). A 410 on a continue token restarts.
  Result<Json> ListAll(const GroupVersionResource& gvr, const std::string& ns,
                       ListOptions options = {});
  Result<Json> Create(const GroupVersionResource& gvr, const std::string& ns, const Json& object,
                      const WriteOptions& options = {});
  // PUT; the object's metadata.resourceVersion makes it conditional (409 Conflict if stale).
  Result<Json> Update(const GroupVersionResource& gvr, const std::string& ns, const Json& object,
                      const WriteOptions& options = {});
  Result<Json> Patch(const GroupVersionResource& gvr, const std::string& ns,
                     const std::string& name, PatchType type, const std::string& body,
                     const PatchOptions& options = {});
  // Server-side apply of a full intent object (serialised as JSON, which is valid YAML).
  Result<Json> Apply(const GroupVersionResource& gvr, const std::string& ns, const Json& object,
                     const std::string& field_manager, bool force = true,
                     const std::string& subresource = "");
  Status Delete(const GroupVersionResource& gvr, const std::string& ns, const std::string& name,
                const DeleteOptions& options = {});

  // Opens a watch and feeds each event to `on_event` as it is parsed from the stream (incremental
  // parsing, no buffering of the whole body). Returns OK when the server closes the stream
  // normally, kCancelled when `cancel` is set, kGone when the server reports 410 (in the HTTP
  // status or as an ERROR event), and other errors as mapped. Returning false from on_event
  // stops the stream with OK. ERROR events are not delivered: they end the stream with their
  // mapped Status. Never retried; resuming is the watcher's job.
  Status Watch(const GroupVersionResource& gvr, const std::string& ns, const WatchOptions& options,
               const std::function<bool(WatchEvent&&)>& on_event, const CancelFlag* cancel);

  // Discovery: the resource for an apiVersion and kind ("sluice.dev/v1alpha1", "ModelDeployment").
  // Cached per group version; Invalidate() after installing CRDs.
  Result<GroupVersionResource> Resolve(const std::string& api_version, const std::string& kind);
  void InvalidateDiscovery();

  // GET of an arbitrary path, e.g. "/version" or "/readyz"; a body that is not JSON comes back
  // as a JSON string.
  Result<Json> GetRaw(const std::string& path);

  const Config& config() const { return config_; }
  Transport& transport() { return *transport_; }

 private:
  Client(Config config, std::unique_ptr<Transport> transport, ClientOptions options);
  // A 401 says which credentials were refused (exec plugin, token file, certificate).
  Status ExplainUnauthorized(const Status& s) const;

  // Sends `request` (with the default timeout when it has none); idempotent requests are
  // retried as the class comment says. Non-2xx answers come back as errors.
  Result<Response> Execute(Request request, bool idempotent);
  Result<Json> ExecuteJson(Result<Request> request, bool idempotent);
  std::chrono::milliseconds Backoff(int attempt);
  Result<std::map<std::string, GroupVersionResource>> FetchResources(
      const std::string& api_version);

  Config config_;
  std::unique_ptr<Transport> transport_;
  const ClientOptions options_;
  Clock& clock_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // guarded by rng_mu_
  std::mutex discovery_mu_;
  // group version -> kind -> resource
  std::map<std::string, std::map<std::string, GroupVersionResource>>
      discovery_;  // guarded by discovery_mu_
};

}  // namespace sluice::kube
