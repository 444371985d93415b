#pragma once

// The contract between a controller and the business logic it runs. A reconciler is level-based:
// it gets a key (namespace/name), never the event that caused it, reads the current state from
// the cache, makes the world match the spec and says what should happen next. What the controller
// does with that answer (forget the backoff, requeue, retry with backoff, give up) is decided in
// one place, the controller (lib/controller/controller.h), never here.

#include <chrono>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace sluice::controllers {

// namespace/name of an object; namespace empty for cluster-scoped objects.
struct ObjectKey {
  std::string ns;
  std::string name;

  // "ns/name", or "name" when cluster-scoped: the work-queue key.
  std::string String() const { return ns.empty() ? name : ns + "/" + name; }
  // Parses "ns/name" or "name". An empty name is InvalidArgument.
  static Result<ObjectKey> Parse(std::string_view key);

  friend bool operator==(const ObjectKey& a, const ObjectKey& b) {
    return a.ns == b.ns && a.name == b.name;
  }
  friend bool operator<(const ObjectKey& a, const ObjectKey& b) {
    return a.ns != b.ns ? a.ns < b.ns : a.name < b.name;
  }
};

// What a successful reconcile asks for next: nothing until something changes, or another look
// after a delay (a rollout pause ending, an analysis interval, a scale-down delay).
class Action {
 public:
  static Action WaitForChange() { return Action(std::chrono::milliseconds::zero()); }
  static Action RequeueAfter(std::chrono::milliseconds after) {
    return Action(after > std::chrono::milliseconds::zero() ? after
                                                            : std::chrono::milliseconds(1));
  }

  bool requeue() const { return after_ > std::chrono::milliseconds::zero(); }
  std::chrono::milliseconds requeue_after() const { return after_; }

  // The sooner of two actions: used when one reconcile combines several sub-decisions.
  static Action Sooner(const Action& a, const Action& b);

  friend bool operator==(const Action& a, const Action& b) { return a.after_ == b.after_; }

 private:
  explicit Action(std::chrono::milliseconds after) : after_(after) {}
  std::chrono::milliseconds after_;
};

// Marks an error as terminal: retrying the same object cannot help (a spec the API server
// accepted but that cannot be realised, a reference that is not allowed). The controller does not
// requeue it; the next change of the object (or of something mapped to it) reconciles it again.
// Keeps the code and the message; replaces Status.reason with kTerminalReason.
inline constexpr std::string_view kTerminalReason = "sluice.dev/Terminal";
Status TerminalError(Status status);
bool IsTerminal(const Status& status);

// Runs the business logic for one key. Called by the controller's workers; the controller
// guarantees that one key is never reconciled by two workers at once, but different keys are
// reconciled concurrently, so implementations must be thread-safe across keys.
// A reconcile must be idempotent: it may run any number of times for the same state.
class Reconciler {
 public:
  virtual ~Reconciler() = default;
  virtual Result<Action> Reconcile(const ObjectKey& key) = 0;
};

}  // namespace sluice::controllers
