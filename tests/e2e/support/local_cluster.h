#pragma once

// A whole local control plane for real-process end-to-end tests: etcd and kube-apiserver
// (TestApiServer), kube-controller-manager (Deployments, ReplicaSets, EndpointSlices, garbage
// collection, node lifecycle) and kube-scheduler, all on 127.0.0.1, plus sluice-procnode as the
// one Node whose pods are local processes. Everything dies with the thread that started it.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "lib/kube/client.h"
#include "tests/support/api_server.h"
#include "tests/support/process.h"

namespace sluice::testing {

struct LocalClusterOptions {
  std::string bin_dir;  // empty: $SLUICE_K8S_BIN
  // sluice-procnode and where it finds container commands (sluice-server, sluice-router, ...).
  std::string procnode_bin;
  std::vector<std::string> pod_bin_dirs;
  std::string node_name = "proc-0";
  std::string pod_cidr = "10.244.0.0/16";
  std::vector<std::string> extra_procnode_flags;
};

// Not thread-safe; one test thread owns it.
class LocalCluster {
 public:
  // Must run inside a pod network (EnterPrivateNetwork, see private_network_main.cpp). Waits until
  // the controller manager has made the default ServiceAccount and the Node is Ready.
  static Result<std::unique_ptr<LocalCluster>> Start(const LocalClusterOptions& options);
  ~LocalCluster();

  TestApiServer& api() { return *api_; }
  kube::Client& client() { return *client_; }
  const std::string& kubeconfig_path() const { return api_->kubeconfig_path(); }
  const std::string& work_dir() const { return work_dir_; }
  // Where sluice-procnode keeps pod logs: <work_dir>/pods/<ns>_<name>_<uid>/<container>.log.
  std::string procnode_work_dir() const { return work_dir_ + "/procnode"; }
  const std::string& procnode_log() const { return procnode_log_; }
  // The last lines of every component's log, for failure messages.
  std::string LogTails(int lines = 30) const;

 private:
  LocalCluster() = default;

  std::unique_ptr<TestApiServer> api_;
  std::unique_ptr<kube::Client> client_;
  std::string work_dir_;
  std::string procnode_log_;
  std::unique_ptr<Subprocess> controller_manager_;
  std::unique_ptr<Subprocess> scheduler_;
  std::unique_ptr<Subprocess> procnode_;
};

// Polls `check` every `interval` until it returns true or `timeout` passes; false on timeout.
bool WaitFor(const std::function<bool()>& check, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval = std::chrono::milliseconds(100));

}  // namespace sluice::testing
