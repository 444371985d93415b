#pragma once

// Kubernetes Events about the objects the operator manages (`kubectl describe md x` shows them).
//
// Contract: recording is best effort and never fails or slows a reconcile: Record() queues the
// Event and returns; one background thread writes them in order. An Event that cannot be written
// (or that finds the queue full) is logged and dropped. Repeats of the same (object, type,
// reason, message) within `aggregate_window` update one Event's count and lastTimestamp instead
// of creating new ones, the way kubectl and client-go's recorder present repeats. Thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "lib/base/clock.h"
#include "lib/kube/client.h"

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
  size_t max_queued = 4096;   // Events waiting to be written; beyond it new ones are dropped
};

// Writes core/v1 Events through the API (create, or merge-patch the count of a repeat).
class KubeEventRecorder final : public EventRecorder {
 public:
  KubeEventRecorder(kube::Client& client, Clock& clock, KubeEventRecorderOptions options = {});
  // Writes what is still queued, then stops the writer thread.
  ~KubeEventRecorder() override;

  void Record(const InvolvedObject& object, EventSeverity type, std::string_view reason,
              std::string_view message) override;

  // Blocks until every Event recorded so far has been written (or dropped).
  void Flush();

  // The core/v1 Event object for a first occurrence (exposed for tests).
  nlohmann::json BuildEvent(const InvolvedObject& object, EventSeverity type, std::string_view reason,
                            std::string_view message, const std::string& name,
                            Clock::Wall::time_point at) const;

 private:
  struct Pending {
    InvolvedObject object;
    EventSeverity type;
    std::string reason;
    std::string message;
    Clock::Wall::time_point wall;
    Clock::Steady::time_point steady;
  };
  void Run();
  void Send(const Pending& e);

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

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;  // queue_ grew, a send finished, or stopping_
  std::deque<Pending> queue_;         // guarded by queue_mu_
  bool sending_ = false;              // guarded by queue_mu_
  bool stopping_ = false;             // guarded by queue_mu_
  std::thread writer_;
};

}  // namespace sluice::controllers
