#include "lib/kube/request.h"

#include <utility>
#include <vector>

namespace sluice::kube {
namespace {

constexpr const char* kJson = "application/json";

bool Unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Object names are DNS subdomains, but anything reaching a path is escaped all the same so a
// bad name is a 404, never a different path.
std::string PathEscape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (Unreserved(c) || c == ':' || c == '@') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

class Query {
 public:
  void Add(std::string_view key, std::string_view value) {
    out_ += out_.empty() ? '?' : '&';
    out_ += key;
    out_ += '=';
    out_ += QueryEscape(value);
  }
  void AddIf(std::string_view key, const std::string& value) {
    if (!value.empty()) Add(key, value);
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

Request MakeRequest(std::string method, std::string path) {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers.emplace_back("Accept", kJson);
  return r;
}

std::string ObjectString(const Json& object, const char* field) {
  if (!object.is_object()) return "";
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return "";
  auto v = md->find(field);
  if (v == md->end() || !v->is_string()) return "";
  return v->get<std::string>();
}

std::string NamespaceFor(const GroupVersionResource& gvr, const std::string& ns,
                         const Json& object) {
  if (!gvr.namespaced) return "";
  return ns.empty() ? ObjectString(object, "namespace") : ns;
}

const char* PropagationName(PropagationPolicy p) {
  switch (p) {
    case PropagationPolicy::kForeground:
      return "Foreground";
    case PropagationPolicy::kBackground:
      return "Background";
    case PropagationPolicy::kOrphan:
      return "Orphan";
    case PropagationPolicy::kDefault:
      break;
  }
  return nullptr;
}

}  // namespace

std::string QueryEscape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (Unreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string GroupVersionPath(const std::string& group, const std::string& version) {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

Result<std::string> ResourcePath(const GroupVersionResource& gvr, const std::string& ns,
                                 const std::string& name, const std::string& subresource) {
  if (gvr.version.empty() || gvr.resource.empty()) {
    return InvalidArgument("resource has no version or plural name (group \"" + gvr.group + "\")");
  }
  if (!subresource.empty() && name.empty()) {
    return InvalidArgument("subresource " + subresource + " of " + gvr.resource + " needs a name");
  }
  std::string path = GroupVersionPath(gvr.group, gvr.version);
  if (gvr.namespaced) {
    if (!ns.empty()) {
      path += "/namespaces/" + PathEscape(ns);
    } else if (!name.empty()) {
      return InvalidArgument(gvr.resource + " \"" + name + "\" is namespaced: namespace missing");
    }
  }
  path += "/" + gvr.resource;
  if (!name.empty()) path += "/" + PathEscape(name);
  if (!subresource.empty()) path += "/" + subresource;
  return path;
}

std::string_view PatchContentType(PatchType type) {
  switch (type) {
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kJsonPatch:
      return "application/json-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kApply:
      return "application/apply-patch+yaml";
  }
  return "application/merge-patch+json";
}

Result<Request> BuildGet(const GroupVersionResource& gvr, const std::string& ns,
                         const std::string& name, const std::string& subresource) {
  if (name.empty()) return InvalidArgument("get " + gvr.resource + ": name missing");
  ASSIGN_OR_RETURN(std::string path, ResourcePath(gvr, ns, name, subresource));
  return MakeRequest("GET", std::move(path));
}

Result<Request> BuildList(const GroupVersionResource& gvr, const std::string& ns,
                          const ListOptions& options) {
  ASSIGN_OR_RETURN(std::string path, ResourcePath(gvr, ns));
  Query q;
  q.AddIf("labelSelector", options.label_selector);
  q.AddIf("fieldSelector", options.field_selector);
  if (options.limit > 0) q.Add("limit", std::to_string(options.limit));
  q.AddIf("continue", options.continue_token);
  q.AddIf("resourceVersion", options.resource_version);
  q.AddIf("resourceVersionMatch", options.resource_version_match);
  return MakeRequest("GET", path + q.str());
}

Result<Request> BuildWatch(const GroupVersionResource& gvr, const std::string& ns,
                           const WatchOptions& options) {
  ASSIGN_OR_RETURN(std::string path, ResourcePath(gvr, ns));
  Query q;
  q.Add("watch", "1");
  q.AddIf("labelSelector", options.label_selector);
  q.AddIf("fieldSelector", options.field_selector);
  q.AddIf("resourceVersion", options.resource_version);
  if (options.allow_bookmarks || options.send_initial_events) q.Add("allowWatchBookmarks", "true");
  if (options.timeout) q.Add("timeoutSeconds", std::to_string(options.timeout->count()));
  if (options.send_initial_events) {
    q.Add("sendInitialEvents", "true");
    q.Add("resourceVersionMatch", "NotOlderThan");
  }
  return MakeRequest("GET", path + q.str());
}

Result<Request> BuildCreate(const GroupVersionResource& gvr, const std::string& ns,
                            const Json& object, const WriteOptions& options) {
  if (!object.is_object()) return InvalidArgument("create " + gvr.resource + ": not a JSON object");
  std::string name;
  if (!options.subresource.empty()) {
    name = ObjectString(object, "name");
    if (name.empty()) {
      return InvalidArgument("create " + gvr.resource + "/" + options.subresource +
                             ": metadata.name names no parent object");
    }
  }
  ASSIGN_OR_RETURN(std::string path,
                   ResourcePath(gvr, NamespaceFor(gvr, ns, object), name, options.subresource));
  if (gvr.namespaced && NamespaceFor(gvr, ns, object).empty()) {
    return InvalidArgument("create " + gvr.resource + ": namespace missing");
  }
  Query q;
  q.AddIf("fieldManager", options.field_manager);
  if (options.dry_run) q.Add("dryRun", "All");
  Request r = MakeRequest("POST", path + q.str());
  r.headers.emplace_back("Content-Type", kJson);
  r.body = object.dump();
  return r;
}

Result<Request> BuildUpdate(const GroupVersionResource& gvr, const std::string& ns,
                            const Json& object, const WriteOptions& options) {
  if (!object.is_object()) return InvalidArgument("update " + gvr.resource + ": not a JSON object");
  const std::string name = ObjectString(object, "name");
  if (name.empty()) return InvalidArgument("update " + gvr.resource + ": metadata.name missing");
  ASSIGN_OR_RETURN(std::string path,
                   ResourcePath(gvr, NamespaceFor(gvr, ns, object), name, options.subresource));
  Query q;
  q.AddIf("fieldManager", options.field_manager);
  if (options.dry_run) q.Add("dryRun", "All");
  Request r = MakeRequest("PUT", path + q.str());
  r.headers.emplace_back("Content-Type", kJson);
  r.body = object.dump();
  return r;
}

Result<Request> BuildPatch(const GroupVersionResource& gvr, const std::string& ns,
                           const std::string& name, PatchType type, const std::string& body,
                           const PatchOptions& options) {
  if (name.empty()) return InvalidArgument("patch " + gvr.resource + ": name missing");
  if (type == PatchType::kApply && options.field_manager.empty()) {
    return InvalidArgument("apply " + gvr.resource + "/" + name + ": a field manager is required");
  }
  if (type != PatchType::kApply && options.force) {
    return InvalidArgument("patch " + gvr.resource + "/" + name +
                           ": force is only valid for server-side apply");
  }
  ASSIGN_OR_RETURN(std::string path, ResourcePath(gvr, ns, name, options.subresource));
  Query q;
  q.AddIf("fieldManager", options.field_manager);
  if (options.force) q.Add("force", "true");
  Request r = MakeRequest("PATCH", path + q.str());
  r.headers.emplace_back("Content-Type", std::string(PatchContentType(type)));
  r.body = body;
  return r;
}

Result<Request> BuildApply(const GroupVersionResource& gvr, const std::string& ns,
                           const Json& object, const std::string& field_manager, bool force,
                           const std::string& subresource) {
  if (!object.is_object() || !object.contains("apiVersion") || !object.contains("kind")) {
    return InvalidArgument("apply " + gvr.resource + ": the object needs apiVersion and kind");
  }
  const std::string name = ObjectString(object, "name");
  if (name.empty()) return InvalidArgument("apply " + gvr.resource + ": metadata.name missing");
  PatchOptions options;
  options.field_manager = field_manager;
  options.force = force;
  options.subresource = subresource;
  return BuildPatch(gvr, NamespaceFor(gvr, ns, object), name, PatchType::kApply, object.dump(),
                    options);
}

Result<Request> BuildDelete(const GroupVersionResource& gvr, const std::string& ns,
                            const std::string& name, const DeleteOptions& options) {
  if (name.empty()) return InvalidArgument("delete " + gvr.resource + ": name missing");
  ASSIGN_OR_RETURN(std::string path, ResourcePath(gvr, ns, name));
  Request r = MakeRequest("DELETE", std::move(path));
  Json body = Json::object();
  if (const char* p = PropagationName(options.propagation)) body["propagationPolicy"] = p;
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (options.precondition_uid) body["preconditions"]["uid"] = *options.precondition_uid;
  if (options.precondition_resource_version) {
    body["preconditions"]["resourceVersion"] = *options.precondition_resource_version;
  }
  if (!body.empty()) {
    body["kind"] = "DeleteOptions";
    body["apiVersion"] = "v1";
    r.headers.emplace_back("Content-Type", kJson);
    r.body = body.dump();
  }
  return r;
}

Request BuildDiscovery(const std::string& api_version) {
  size_t slash = api_version.find('/');
  if (slash == std::string::npos) return MakeRequest("GET", GroupVersionPath("", api_version));
  return MakeRequest("GET",
                     GroupVersionPath(api_version.substr(0, slash), api_version.substr(slash + 1)));
}

Result<WatchEvent> ParseWatchEvent(std::string_view line) {
  Json frame = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (frame.is_discarded() || !frame.is_object()) {
    return Internal("watch: undecodable event: " + std::string(line.substr(0, 200)));
  }
  auto type = frame.find("type");
  auto object = frame.find("object");
  if (type == frame.end() || !type->is_string() || object == frame.end()) {
    return Internal("watch: event without type or object: " + std::string(line.substr(0, 200)));
  }
  const std::string& t = type->get_ref<const std::string&>();
  WatchEvent ev;
  if (t == "ADDED") {
    ev.type = WatchEventType::kAdded;
  } else if (t == "MODIFIED") {
    ev.type = WatchEventType::kModified;
  } else if (t == "DELETED") {
    ev.type = WatchEventType::kDeleted;
  } else if (t == "BOOKMARK") {
    ev.type = WatchEventType::kBookmark;
  } else if (t == "ERROR") {
    ev.type = WatchEventType::kError;
  } else {
    return Internal("watch: unknown event type \"" + t + "\"");
  }
  ev.object = std::move(*object);
  return ev;
}

Status WatchDecoder::Deliver(std::string_view line, const Sink& sink) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return Status::Ok();
  ASSIGN_OR_RETURN(WatchEvent ev, ParseWatchEvent(line));
  if (!sink(std::move(ev))) stopped_ = true;
  return Status::Ok();
}

Status WatchDecoder::Feed(std::string_view chunk, const Sink& sink) {
  if (stopped_) return Status::Ok();
  buffer_.append(chunk);
  size_t start = 0;
  while (!stopped_) {
    size_t nl = buffer_.find('\n', std::max(start, scanned_));
    if (nl == std::string::npos) break;
    Status s = Deliver(std::string_view(buffer_).substr(start, nl - start), sink);
    start = nl + 1;
    if (!s.ok()) {
      buffer_.clear();
      scanned_ = 0;
      return s;
    }
  }
  if (stopped_) {
    buffer_.clear();
    scanned_ = 0;
    return Status::Ok();
  }
  buffer_.erase(0, start);
  scanned_ = buffer_.size();
  if (buffer_.size() > kMaxEventBytes) {
    return ResourceExhausted("watch: event larger than " + std::to_string(kMaxEventBytes) +
                             " bytes");
  }
  return Status::Ok();
}

Status WatchDecoder::Finish(const Sink& sink) {
  if (stopped_) return Status::Ok();
  std::string rest = std::move(buffer_);
  buffer_.clear();
  scanned_ = 0;
  return Deliver(rest, sink);
}

}  // namespace sluice::kube
