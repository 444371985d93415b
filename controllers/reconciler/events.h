#pragma once

// Kubernetes Events about the objects the operator manages (`kubectl describe md x` shows them).
//
// Contract: recording is best effort and never fails a reconcile: an Event that cannot be written
// is logged and dropped. Repeats of the same (object, type, reason, message) within
// `aggregate_window` update one Event's count and lastTimestamp instead of creating new ones, the
// way kubectl and client-go's recorder present repeats. Thread-safe.

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "kube/client.h"

namespace sluice::controllers {

enum class EventSeverity { kNormal, kWarning };
std::string_view EventSeverityName(EventSeverity type);  // "Normal" | "Warning"

// Who an Event is about: the fields of core/v1 ObjectReference the API needs.
struct InvolvedObject {
  std::string api_version;
  std::string kind;
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;

  // From an object as the API returns it (apiVersion, kind, metadata.*).
  static InvolvedObject From(const nlohmann::json& object);
};

class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  virtual void Record(const InvolvedObject& object, EventSeverity type, std::string_view reason,
                      std::string_view message) = 0;
};

struct KubeEventRecorderOptions {
  std::string component = "sluice-operator";  // source.component and reportingController
  std::string instance;                       // reportingInstance (the pod or host name)
  std::chrono::seconds aggregate_window{600};
  size_t max_tracked = 4096;  // series remembered for aggregation (least recently used go first)
};

// Writes core/v1 Events through the API (create, or merge-patch the count of a repeat).
class KubeEventRecorder final : public EventRecorder {
 public:
  KubeEventRecorder(kube::Client& client, Clock& clock, KubeEventRecorderOptions options = {});

  void Record(const InvolvedObject& object, EventSeverity type, std::string_view reason,
              std::string_view message) override;

  // The core/v1 Event object for a first occurrence (exposed for tests).
  nlohmann::json BuildEvent(const InvolvedObject& object, EventSeverity type, std::string_view reason,
                            std::string_view message, const std::string& name) const;

 private:
  struct Series {
    std::string event_name;
    std::string ns;
    int64_t count = 0;
    Clock::Steady::time_point last_seen;
    std::list<std::string>::iterator lru;
  };

  std::string NewEventName(const InvolvedObject& object);
  void Forget(const std::string& key);  // requires mu_

  kube::Client& client_;
  Clock& clock_;
  const KubeEventRecorderOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, Series> series_;  // guarded by mu_
  std::list<std::string> lru_;                      // guarded by mu_; most recent first
  uint64_t sequence_ = 0;                           // guarded by mu_
};

}  // namespace sluice::controllers
