#pragma once

// sluice-procnode's pod worker: one pod's process from first sight of the pod to its deletion —
// IP allocation, launch, probes, restarts with backoff, draining, and the status it reports
// (see procnode.h for the node's contract).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "e2e/procnode/child.h"
#include "e2e/procnode/pod_status.h"
#include "e2e/procnode/probe.h"
#include "e2e/procnode/procnode.h"
#include "lib/kube/leader_election.h"

namespace sluice::procnode {

// "namespace/name" of a pod object.
std::string PodRef(const kube::Json& pod);

// Owns one pod's process from first sight of the pod to its deletion. All process handling
// happens on the worker's own thread (so PR_SET_PDEATHSIG ties the process to it).
class PodWorker {
 public:
  // Starts the worker thread; `node` must outlive the worker.
  PodWorker(ProcNode& node, const kube::ObjectPtr& pod);

  ~PodWorker();
  void Update(const kube::ObjectPtr& pod);
  // The pod is gone from the API, or the node shuts down: end the process now.
  void Abort();
  bool finished() const { return finished_.load(); }

 private:
  kube::ObjectPtr Latest();
  bool aborted();
  bool Deleting() { return Latest()->at("metadata").contains("deletionTimestamp"); }
  // Sleeps until `deadline`, an update, or an abort; false when aborted.
  bool WaitUntil(Clock::Steady::time_point deadline);
  void Run();
  void RunPod();
  Status ParseProbes(const kube::Json& container);
  void StartProcess();
  void SetReady(bool ready);
  bool Probe(ProbeTracker& tracker);
  void RunProbes(Clock::Steady::time_point& next_start);
  std::chrono::seconds GracePeriod();
  // SIGTERM, wait up to `grace` (or an abort), SIGKILL; records the exit.
  std::optional<ExitInfo> StopProcess(std::chrono::milliseconds grace);
  void KillForRestart(Clock::Steady::time_point& next_start);
  Termination MakeTermination(const ExitInfo& exit);
  void OnExit(const ExitInfo& exit, Clock::Steady::time_point& next_start);
  void Terminate();
  void RunPreStop(Clock::Steady::time_point deadline);
  void DeletePod();
  void Fail(const std::string& reason, const std::string& message);
  void PushStatus();

  ProcNode& node_;
  const ProcNodeOptions& opts_;
  const std::string uid_;
  const std::string ref_;

  std::mutex mu_;
  std::condition_variable cv_;
  kube::ObjectPtr latest_;  // guarded by mu_
  bool aborted_ = false;    // guarded by mu_
  std::atomic<bool> finished_{false};

  // Owned by the worker thread.
  PodState state_;
  std::string restart_policy_;
  bool message_from_logs_ = false;  // terminationMessagePolicy: FallbackToLogsOnError
  std::string log_dir_;
  bool ip_allocated_ = false;
  Launch launch_;
  std::optional<ProbeSpec> startup_spec_, readiness_spec_, liveness_spec_;
  std::optional<ProbeTracker> startup_, readiness_, liveness_;
  std::unique_ptr<ChildProcess> child_;
  Clock::Steady::time_point started_steady_;
  RestartBackoff backoff_;
  kube::Json last_pushed_;

  std::thread thread_;
};

}  // namespace sluice::procnode
