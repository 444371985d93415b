#pragma once

// What sluice-procnode reports for a pod: the container's state as the runtime tracks it, turned
// into a core/v1 PodStatus (pure, so the mapping is unit-tested), and the restart backoff.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "lib/base/clock.h"

namespace sluice::procnode {

struct Termination {
  int exit_code = 0;
  int signal = 0;      // non-zero: killed by this signal (exit_code is then 128 + signal)
  std::string reason;  // Completed, Error, OOMKilled-like names are not guessed: Completed|Error
  Clock::Wall::time_point started_at;
  Clock::Wall::time_point finished_at;
  // terminationMessagePolicy FallbackToLogsOnError: the tail of the log of a failed run.
  std::string message;
};

// The runtime's view of one single-container pod.
struct PodState {
  enum class Container { kWaiting, kRunning, kTerminated };

  std::string phase = "Pending";  // Pending | Running | Succeeded | Failed
  std::string pod_ip;
  std::string host_ip;
  Clock::Wall::time_point start_time;

  std::string container_name;
  std::string image;
  Container container = Container::kWaiting;
  std::string waiting_reason = "ContainerCreating";
  std::string waiting_message;
  int pid = 0;
  Clock::Wall::time_point running_since;
  bool started = false;  // the startup probe passed (or there is none)
  bool ready = false;
  Clock::Wall::time_point ready_changed_at;  // last flip of `ready` (condition transition time)
  int restart_count = 0;
  std::optional<Termination> terminated;        // current state when kTerminated
  std::optional<Termination> last_termination;  // lastState
};

// RFC 3339 in UTC with whole seconds, as metav1.Time is written.
std::string FormatTime(Clock::Wall::time_point t);

// The `status` object for a merge patch of the pod's status subresource: phase, podIP(s),
// hostIP(s), startTime, conditions (PodScheduled, PodReadyToStartContainers, Initialized,
// ContainersReady, Ready) and one containerStatus. Equal states give equal JSON, so the caller
// can skip writes that change nothing.
nlohmann::json BuildPodStatus(const PodState& state);

// The kubelet's crash-loop backoff: the first restart waits `base`, each further one twice as
// long up to `max`; a container that ran for `reset_after` without exiting starts over.
class RestartBackoff {
 public:
  RestartBackoff(std::chrono::milliseconds base, std::chrono::milliseconds max,
                 std::chrono::milliseconds reset_after)
      : base_(base), max_(max), reset_after_(reset_after) {}

  // The wait before the next start, given how long the last run lasted.
  std::chrono::milliseconds Next(std::chrono::milliseconds last_run);

 private:
  const std::chrono::milliseconds base_;
  const std::chrono::milliseconds max_;
  const std::chrono::milliseconds reset_after_;
  std::chrono::milliseconds current_{0};
};

}  // namespace sluice::procnode
