#include "lib/kube/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>

#include "lib/kube/curl_transport.h"
#include "lib/kube/errors.h"
#include "lib/kube/request.h"

namespace sluice::kube {

namespace resources {
const GroupVersionResource kConfigMaps{"", "v1", "configmaps", true, "ConfigMap"};
const GroupVersionResource kSecrets{"", "v1", "secrets", true, "Secret"};
const GroupVersionResource kServices{"", "v1", "services", true, "Service"};
const GroupVersionResource kPods{"", "v1", "pods", true, "Pod"};
const GroupVersionResource kEvents{"", "v1", "events", true, "Event"};
const GroupVersionResource kNamespaces{"", "v1", "namespaces", false, "Namespace"};
const GroupVersionResource kServiceAccounts{"", "v1", "serviceaccounts", true, "ServiceAccount"};
const GroupVersionResource kDeployments{"apps", "v1", "deployments", true, "Deployment"};
const GroupVersionResource kLeases{"coordination.k8s.io", "v1", "leases", true, "Lease"};
const GroupVersionResource kCustomResourceDefinitions{
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", false, "CustomResourceDefinition"};
const GroupVersionResource kHorizontalPodAutoscalers{
    "autoscaling", "v2", "horizontalpodautoscalers", true, "HorizontalPodAutoscaler"};
}  // namespace resources

namespace {

// How much of a failed watch response body is kept for the error message.
constexpr size_t kMaxErrorBody = 64 * 1024;

std::pair<std::string, std::string> SplitApiVersion(const std::string& api_version) {
  size_t slash = api_version.find('/');
  if (slash == std::string::npos) return {"", api_version};
  return {api_version.substr(0, slash), api_version.substr(slash + 1)};
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Create(Config config, std::unique_ptr<Transport> transport,
                                               ClientOptions options) {
  if (!transport) return InvalidArgument("kube client: no transport");
  if (options.max_read_retries < 0 || options.max_list_restarts < 0) {
    return InvalidArgument("kube client: negative retry count");
  }
  return std::unique_ptr<Client>(new Client(std::move(config), std::move(transport), options));
}

Result<std::unique_ptr<Client>> Client::Create(Config config,
                                               std::unique_ptr<Transport> transport) {
  return Create(std::move(config), std::move(transport), ClientOptions{});
}

Result<std::unique_ptr<Client>> Client::Create(Config config) {
  ASSIGN_OR_RETURN(std::unique_ptr<CurlTransport> transport, CurlTransport::Create(config));
  return Create(std::move(config), std::move(transport), ClientOptions{});
}

Client::Client(Config config, std::unique_ptr<Transport> transport, ClientOptions options)
    : config_(std::move(config)),
      transport_(std::move(transport)),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : Clock::Real()),
      rng_(std::random_device{}()) {}

Status Client::ExplainUnauthorized(const Status& s) const {
  return s.Annotate("the API server rejected the credentials (" + config_.DescribeCredentials() +
                    ")");
}

std::chrono::milliseconds Client::Backoff(int attempt) {
  auto base = options_.initial_backoff;
  for (int i = 0; i < attempt && base < options_.max_backoff; ++i) base *= 2;
  base = std::min(base, options_.max_backoff);
  std::lock_guard<std::mutex> lock(rng_mu_);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  return std::chrono::milliseconds(static_cast<int64_t>(base.count() * jitter(rng_)));
}

Result<Response> Client::Execute(Request request, bool idempotent) {
  if (request.timeout.count() == 0) request.timeout = options_.request_timeout;
  const int attempts = idempotent ? 1 + options_.max_read_retries : 1;
  for (int attempt = 0;; ++attempt) {
    Result<Response> response = transport_->Send(request);
    Status s = response.ok() ? StatusFromResponse(*response) : response.status();
    if (s.ok()) return response;
    if (response.ok() && s.code() == StatusCode::kUnauthorized) s = ExplainUnauthorized(s);
    if (attempt + 1 >= attempts || !IsRetryableRead(s)) return s;
    std::chrono::milliseconds wait = Backoff(attempt);
    if (auto after = s.retry_after()) {
      if (*after > options_.max_retry_after) return s;
      wait = std::max<std::chrono::milliseconds>(wait, *after);
    }
    spdlog::debug("kube: {} {} failed ({}), retry {} in {}ms", request.method, request.path,
                  s.ToString(), attempt + 1, wait.count());
    std::mutex mu;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lock(mu);
    const auto deadline = clock_.Now() + wait;
    while (clock_.Now() < deadline) clock_.WaitUntil(cv, lock, deadline);
  }
}

Result<Json> Client::ExecuteJson(Result<Request> request, bool idempotent) {
  if (!request.ok()) return request.status();
  const std::string what = request->method + " " + request->path;
  ASSIGN_OR_RETURN(Response response, Execute(std::move(*request), idempotent));
  if (response.body.empty()) return Json::object();
  Json body = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Internal("kube: undecodable JSON in the answer to " + what);
  return body;
}

Result<Json> Client::Get(const GroupVersionResource& gvr, const std::string& ns,
                         const std::string& name, const std::string& subresource) {
  return ExecuteJson(BuildGet(gvr, ns, name, subresource), true);
}

Result<Json> Client::List(const GroupVersionResource& gvr, const std::string& ns,
                          const ListOptions& options) {
  return ExecuteJson(BuildList(gvr, ns, options), true);
}

Result<Json> Client::ListAll(const GroupVersionResource& gvr, const std::string& ns,
                             ListOptions options) {
  for (int restarts = 0;; ++restarts) {
    ListOptions page = options;
    if (restarts > options_.max_list_restarts) page.limit = 0;  // last resort: one whole list
    Json result;
    Json items = Json::array();
    bool expired = false;
    while (true) {
      Result<Json> r = List(gvr, ns, page);
      if (!r.ok()) {
        if (r.status().code() == StatusCode::kGone && !page.continue_token.empty()) {
          spdlog::info("kube: list {} continue token expired, restarting ({})", gvr.resource,
                       r.status().message());
          expired = true;
          break;
        }
        return r.status();
      }
      Json& body = *r;
      if (auto it = body.find("items"); it != body.end() && it->is_array()) {
        for (auto& item : *it) items.push_back(std::move(item));
      }
      std::string next;
      if (auto md = body.find("metadata"); md != body.end() && md->is_object()) {
        next = md->value("continue", "");
      }
      if (result.is_null()) result = std::move(body);
      if (next.empty()) break;
      page.continue_token = std::move(next);
      // The continue token pins the snapshot; the server rejects a version beside it.
      page.resource_version.clear();
      page.resource_version_match.clear();
    }
    if (expired) continue;
    result["items"] = std::move(items);
    if (auto md = result.find("metadata"); md != result.end() && md->is_object()) {
      md->erase("continue");
      md->erase("remainingItemCount");
    }
    return result;
  }
}

Result<Json> Client::Create(const GroupVersionResource& gvr, const std::string& ns,
                            const Json& object, const WriteOptions& options) {
  return ExecuteJson(BuildCreate(gvr, ns, object, options), false);
}

Result<Json> Client::Update(const GroupVersionResource& gvr, const std::string& ns,
                            const Json& object, const WriteOptions& options) {
  return ExecuteJson(BuildUpdate(gvr, ns, object, options), false);
}

Result<Json> Client::Patch(const GroupVersionResource& gvr, const std::string& ns,
                           const std::string& name, PatchType type, const std::string& body,
                           const PatchOptions& options) {
  return ExecuteJson(BuildPatch(gvr, ns, name, type, body, options), false);
}

Result<Json> Client::Apply(const GroupVersionResource& gvr, const std::string& ns,
                           const Json& object, const std::string& field_manager, bool force,
                           const std::string& subresource) {
  return ExecuteJson(BuildApply(gvr, ns, object, field_manager, force, subresource), false);
}

Status Client::Delete(const GroupVersionResource& gvr, const std::string& ns,
                      const std::string& name, const DeleteOptions& options) {
  ASSIGN_OR_RETURN(Request request, BuildDelete(gvr, ns, name, options));
  return Execute(std::move(request), false).status();
}

Status Client::Watch(const GroupVersionResource& gvr, const std::string& ns,
                     const WatchOptions& options, const std::function<bool(WatchEvent&&)>& on_event,
                     const CancelFlag* cancel) {
  ASSIGN_OR_RETURN(Request request, BuildWatch(gvr, ns, options));
  if (options.timeout) {
    request.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        *options.timeout + options_.watch_idle_margin);
  }
  int http_status = 0;
  std::string error_body;
  Status stream_error;
  bool consumer_stopped = false;
  WatchDecoder decoder;
  const WatchDecoder::Sink sink = [&](WatchEvent&& ev) -> bool {
    if (ev.type == WatchEventType::kError) {
      stream_error = StatusFromStatusObject(ev.object, 0);
      return false;
    }
    if (!on_event(std::move(ev))) {
      consumer_stopped = true;
      return false;
    }
    return true;
  };
  Result<int> streamed = transport_->Stream(
      request,
      [&](int status, const std::vector<Header>&) {
        http_status = status;
        return true;
      },
      [&](std::string_view chunk) {
        if (http_status != 200) {
          if (error_body.size() < kMaxErrorBody) error_body.append(chunk);
          return true;
        }
        Status s = decoder.Feed(chunk, sink);
        if (!s.ok()) stream_error = s;
        return stream_error.ok() && !decoder.stopped();
      },
      cancel);
  if (!stream_error.ok()) return stream_error;
  if (consumer_stopped) return Status::Ok();
  if (!streamed.ok()) return streamed.status();
  if (*streamed != 200) {
    Response response;
    response.status = *streamed;
    response.body = std::move(error_body);
    Status s = StatusFromResponse(response);
    if (s.code() == StatusCode::kUnauthorized) s = ExplainUnauthorized(s);
    return s.ok() ? Internal("watch: unexpected HTTP " + std::to_string(*streamed)) : s;
  }
  RETURN_IF_ERROR(decoder.Finish(sink));
  if (!stream_error.ok()) return stream_error;
  return Status::Ok();
}

Result<std::map<std::string, GroupVersionResource>> Client::FetchResources(
    const std::string& api_version) {
  Result<Json> list = ExecuteJson(BuildDiscovery(api_version), true);
  if (!list.ok()) return list.status().Annotate("discovery of " + api_version);
  auto [group, version] = SplitApiVersion(api_version);
  std::map<std::string, GroupVersionResource> by_kind;
  auto it = list->find("resources");
  if (it == list->end() || !it->is_array()) return by_kind;
  for (const auto& r : *it) {
    if (!r.is_object()) continue;
    const std::string name = r.value("name", "");
    const std::string kind = r.value("kind", "");
    // "deployments/status", "pods/log": subresources share the kind of their parent.
    if (name.empty() || kind.empty() || name.find('/') != std::string::npos) continue;
    by_kind[kind] = GroupVersionResource{group, version, name, r.value("namespaced", false), kind};
  }
  return by_kind;
}

Result<GroupVersionResource> Client::Resolve(const std::string& api_version,
                                             const std::string& kind) {
  {
    std::lock_guard<std::mutex> lock(discovery_mu_);
    auto gv = discovery_.find(api_version);
    if (gv != discovery_.end()) {
      auto k = gv->second.find(kind);
      if (k != gv->second.end()) return k->second;
    }
  }
  // A miss may mean a CRD appeared since the cache was filled: look again.
  ASSIGN_OR_RETURN(auto by_kind, FetchResources(api_version));
  std::lock_guard<std::mutex> lock(discovery_mu_);
  auto& cached = discovery_[api_version];
  cached = std::move(by_kind);
  auto k = cached.find(kind);
  if (k == cached.end()) {
    return NotFound("discovery: no resource of kind " + kind + " in " + api_version);
  }
  return k->second;
}

void Client::InvalidateDiscovery() {
  std::lock_guard<std::mutex> lock(discovery_mu_);
  discovery_.clear();
}

Result<Json> Client::GetRaw(const std::string& path) {
  Request request;
  request.method = "GET";
  request.path = path;
  request.headers.emplace_back("Accept", "application/json, */*");
  ASSIGN_OR_RETURN(Response response, Execute(std::move(request), true));
  Json body = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Json(response.body);  // /readyz, /livez answer plain text
  return body;
}

}  // namespace sluice::kube
