#pragma once

// sluice-procnode's runtime: one Node whose pods are local processes.
//
// Contract:
// - Start() registers the Node (created, or taken over when it exists) as Ready with the given
//   capacity, then renews its Lease in kube-node-lease every lease_renew_period and re-posts the
//   Node status every node_status_period, so the node lifecycle controller keeps it Ready.
// - Every pod with spec.nodeName=<node> gets a worker thread that owns the pod's process: it
//   allocates the pod IP, starts the container (launch.h), runs its probes, restarts it with
//   backoff according to restartPolicy, and writes the status subresource whenever what it would
//   report changes. Writes that fail are retried at the next tick; nothing else is retried.
// - A pod with a deletionTimestamp is drained: not ready, preStop (sleep or httpGet), SIGTERM,
//   the rest of the grace period, SIGKILL; then the pod is deleted with grace 0 (precondition:
//   its uid). A pod removed from the API (force delete) loses its process at once.
// - Stop() (idempotent) kills every pod process (SIGTERM, then SIGKILL after
//   shutdown_grace) and joins all threads; the Node and pods stay in the API.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lib/base/status.h"
#include "lib/kube/client.h"
#include "lib/kube/informer.h"
#include "e2e/procnode/launch.h"
#include "e2e/procnode/pod_network.h"

namespace sluice::procnode {

struct ProcNodeOptions {
  std::string node_name = "proc-0";
  Ipv4Cidr pod_cidr;
  // Pod logs go to <work_dir>/pods/<namespace>_<name>_<uid>/<container>.log.
  std::string work_dir;
  LaunchOptions launch;
  std::string kubelet_version = "v1.33.13";
  std::string cpu = "16";
  std::string memory = "64Gi";
  int max_pods = 110;
  std::chrono::seconds lease_duration{40};
  std::chrono::milliseconds lease_renew_period{10'000};
  std::chrono::milliseconds node_status_period{60'000};
  // Crash-loop backoff (the kubelet uses 10 s .. 5 min; tests want faster).
  std::chrono::milliseconds restart_backoff_base{1'000};
  std::chrono::milliseconds restart_backoff_max{30'000};
  // How often a pod worker looks at its process when nothing else wakes it.
  std::chrono::milliseconds tick{100};
  std::chrono::milliseconds shutdown_grace{2'000};
};

class PodWorker;

class ProcNode {
 public:
  // `client` must outlive the ProcNode.
  static Result<std::unique_ptr<ProcNode>> Create(kube::Client& client, ProcNodeOptions options);
  ~ProcNode();
  ProcNode(const ProcNode&) = delete;
  ProcNode& operator=(const ProcNode&) = delete;

  // Registers the Node and starts the heartbeat and the pod informer. Fails if the Node cannot
  // be registered.
  Status Start();
  void Stop();

  const ProcNodeOptions& options() const { return options_; }
  kube::Client& client() { return client_; }
  std::string node_ip() const { return FormatIpv4(allocator_.node_address()); }

  // Used by pod workers.
  Result<std::string> AllocateIp(const std::string& uid);
  void ReleaseIp(const std::string& uid);

 private:
  ProcNode(kube::Client& client, ProcNodeOptions options);

  Status RegisterNode();
  Status PostNodeStatus();
  Status RenewLease();
  void HeartbeatLoop();
  void OnPod(const kube::ObjectPtr& pod);
  void OnPodDeleted(const kube::ObjectPtr& pod);
  void ReapFinishedWorkers();

  kube::Client& client_;
  const ProcNodeOptions options_;
  const Clock::Wall::time_point started_at_;
  std::string node_uid_;

  std::mutex ip_mu_;
  IpAllocator allocator_;  // guarded by ip_mu_

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                                      // guarded by mu_
  std::map<std::string, std::unique_ptr<PodWorker>> workers_;  // by pod uid; guarded by mu_

  std::unique_ptr<kube::Informer> informer_;
  std::thread heartbeat_;
};

}  // namespace sluice::procnode
