#include "lib/controller/events.h"

#include <spdlog/spdlog.h>

#include "lib/api/time.h"

namespace sluice::controllers {

using nlohmann::json;

std::string_view EventSeverityName(EventSeverity type) {
  return type == EventSeverity::kWarning ? "Warning" : "Normal";
}

InvolvedObject InvolvedObject::From(const json& object) {
  InvolvedObject out;
  out.api_version = object.value("apiVersion", "");
  out.kind = object.value("kind", "");
  if (auto it = object.find("metadata"); it != object.end() && it->is_object()) {
    out.ns = it->value("namespace", "");
    out.name = it->value("name", "");
    out.uid = it->value("uid", "");
    out.resource_version = it->value("resourceVersion", "");
  }
  return out;
}

KubeEventRecorder::KubeEventRecorder(kube::Client& client, Clock& clock,
                                     KubeEventRecorderOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {
  writer_ = std::thread([this] { Run(); });
}

KubeEventRecorder::~KubeEventRecorder() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  writer_.join();
}

void KubeEventRecorder::Record(const InvolvedObject& object, EventSeverity type,
                               std::string_view reason, std::string_view message) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (queue_.size() >= options_.max_queued) {
      spdlog::warn("event {} {} for {}/{} dropped: {} Events are waiting to be written",
                   EventSeverityName(type), reason, object.ns, object.name, queue_.size());
      return;
    }
    queue_.push_back(Pending{object, type, std::string(reason), std::string(message),
                             clock_.WallNow(), clock_.Now()});
  }
  queue_cv_.notify_all();
}

void KubeEventRecorder::Flush() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  queue_cv_.wait(lock, [&] { return queue_.empty() && !sending_; });
}

void KubeEventRecorder::Run() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  while (true) {
    queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    // On stop, what is queued is still written: the last phase change is worth the wait.
    if (queue_.empty()) return;
    Pending e = std::move(queue_.front());
    queue_.pop_front();
    sending_ = true;
    lock.unlock();
    Send(e);
    lock.lock();
    sending_ = false;
    queue_cv_.notify_all();
  }
}

std::string KubeEventRecorder::NewEventName(const InvolvedObject& object) {
  // Unique per occurrence, sortable by time, like the names other recorders choose.
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         clock_.WallNow().time_since_epoch())
                         .count();
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = ++sequence_;
  }
  char buf[40];
  std::snprintf(buf, sizeof(buf), ".%llx%04llx", static_cast<unsigned long long>(nanos),
                static_cast<unsigned long long>(seq & 0xffff));
  std::string name = object.name.substr(0, 253 - 22) + buf;
  return name;
}

json KubeEventRecorder::BuildEvent(const InvolvedObject& object, EventSeverity type,
                                   std::string_view reason, std::string_view message,
                                   const std::string& name, Clock::Wall::time_point at) const {
  const std::string now = FormatTime(at);
  json involved = {{"apiVersion", object.api_version}, {"kind", object.kind},
                   {"name", object.name}};
  if (!object.ns.empty()) involved["namespace"] = object.ns;
  if (!object.uid.empty()) involved["uid"] = object.uid;
  if (!object.resource_version.empty()) involved["resourceVersion"] = object.resource_version;
  json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"name", name}, {"namespace", object.ns.empty() ? "default" : object.ns}}},
      {"involvedObject", std::move(involved)},
      {"reason", std::string(reason)},
      {"message", std::string(message)},
      {"type", std::string(EventSeverityName(type))},
      {"source", {{"component", options_.component}}},
      {"reportingComponent", options_.component},
      {"count", 1},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
  };
  if (!options_.instance.empty()) {
    event["source"]["host"] = options_.instance;
    event["reportingInstance"] = options_.instance;
  }
  return event;
}

void KubeEventRecorder::Forget(const std::string& key) {
  auto it = series_.find(key);
  if (it == series_.end()) return;
  lru_.erase(it->second.lru);
  series_.erase(it);
}

void KubeEventRecorder::Send(const Pending& e) {
  const InvolvedObject& object = e.object;
  const EventSeverity type = e.type;
  const std::string& reason = e.reason;
  const std::string& message = e.message;
  const std::string key = object.uid + '\x1f' + object.ns + '\x1f' + object.name + '\x1f' +
                          std::string(EventSeverityName(type)) + '\x1f' + std::string(reason) +
                          '\x1f' + std::string(message);
  const auto now = e.steady;
  std::string existing_name, ns;
  int64_t count = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = series_.find(key);
    if (it != series_.end() && now - it->second.last_seen < options_.aggregate_window) {
      existing_name = it->second.event_name;
      ns = it->second.ns;
      count = ++it->second.count;
      it->second.last_seen = now;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
    } else if (it != series_.end()) {
      Forget(key);
    }
  }

  if (!existing_name.empty()) {
    json patch = {{"count", count}, {"lastTimestamp", FormatTime(e.wall)}};
    auto patched = client_.Patch(kube::resources::kEvents, ns, existing_name,
                                 kube::PatchType::kMerge, patch.dump());
    if (patched.ok()) return;
    if (patched.status().code() != StatusCode::kNotFound) {
      spdlog::warn("event {}/{} not updated: {}", ns, existing_name, patched.status().ToString());
      return;
    }
    // The Event expired (the API server keeps them for about an hour): start a new series.
    std::lock_guard<std::mutex> lock(mu_);
    Forget(key);
  }

  const std::string name = NewEventName(object);
  json event = BuildEvent(object, type, reason, message, name, e.wall);
  const std::string event_ns = event["metadata"]["namespace"].get<std::string>();
  auto created = client_.Create(kube::resources::kEvents, event_ns, event);
  if (!created.ok()) {
    spdlog::warn("event {} {} for {}/{} not recorded: {}", EventSeverityName(type), reason,
                 object.ns, object.name, created.status().ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  Forget(key);
  lru_.push_front(key);
  Series s;
  s.event_name = name;
  s.ns = event_ns;
  s.count = 1;
  s.last_seen = now;
  s.lru = lru_.begin();
  series_.emplace(key, std::move(s));
  while (series_.size() > options_.max_tracked && !lru_.empty()) {
    const std::string victim = lru_.back();
    Forget(victim);
  }
}

}  // namespace sluice::controllers
