#include "tests/e2e/support/local_cluster.h"

#include <filesystem>
#include <thread>

namespace sluice::testing {

using kube::Json;

bool WaitFor(const std::function<bool()>& check, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (check()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

Result<std::unique_ptr<LocalCluster>> LocalCluster::Start(const LocalClusterOptions& options) {
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  ApiServerOptions api_options;
  api_options.bin_dir = options.bin_dir;
  ASSIGN_OR_RETURN(c->api_, TestApiServer::Start(api_options));
  c->work_dir_ = c->api_->temp_dir();
  const std::string bin = c->api_->bin_dir();
  const std::string logs = c->work_dir_ + "/logs";

  ASSIGN_OR_RETURN(kube::Config config, kube::Config::FromKubeconfig(c->kubeconfig_path()));
  ASSIGN_OR_RETURN(c->client_, kube::Client::Create(config));

  SpawnOptions kcm;
  kcm.argv = {bin + "/kube-controller-manager", "--kubeconfig=" + c->kubeconfig_path(),
              "--bind-address=127.0.0.1", "--secure-port=0", "--controllers=*",
              "--leader-elect=false", "--use-service-account-credentials=false",
              "--service-account-private-key-file=" + c->api_->service_account_key_file(),
              "--root-ca-file=" + c->api_->ca_file(),
              // Pods of a vanished node go quickly; the proc node renews its lease every 2 s.
              "--node-monitor-grace-period=20s", "--concurrent-deployment-syncs=10",
              "--concurrent-replicaset-syncs=10"};
  kcm.log_path = logs + "/kube-controller-manager.log";
  ASSIGN_OR_RETURN(c->controller_manager_, Subprocess::Spawn(kcm));

  SpawnOptions scheduler;
  scheduler.argv = {bin + "/kube-scheduler", "--kubeconfig=" + c->kubeconfig_path(),
                    "--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false"};
  scheduler.log_path = logs + "/kube-scheduler.log";
  ASSIGN_OR_RETURN(c->scheduler_, Subprocess::Spawn(scheduler));

  SpawnOptions procnode;
  c->procnode_log_ = logs + "/sluice-procnode.log";
  procnode.argv = {options.procnode_bin,
                   "--kubeconfig=" + c->kubeconfig_path(),
                   "--node-name=" + options.node_name,
                   "--work-dir=" + c->procnode_work_dir(),
                   "--pod-cidr=" + options.pod_cidr,
                   "--pod-kubeconfig=" + c->kubeconfig_path(),
                   "--lease-renew-ms=2000",
                   "--restart-backoff-ms=500",
                   "--max-restart-backoff-ms=5000"};
  for (const auto& dir : options.pod_bin_dirs) procnode.argv.push_back("--bin-dir=" + dir);
  for (const auto& f : options.extra_procnode_flags) procnode.argv.push_back(f);
  procnode.log_path = c->procnode_log_;
  ASSIGN_OR_RETURN(c->procnode_, Subprocess::Spawn(procnode));

  // The controller manager is working once the default ServiceAccount exists; the node once the
  // Node is Ready.
  kube::Client& client = *c->client_;
  Status last;
  const bool up = WaitFor(
      [&] {
        if (!c->controller_manager_->Running() || !c->scheduler_->Running() ||
            !c->procnode_->Running()) {
          last = Unavailable("a component exited");
          return true;
        }
        auto sa = client.Get(kube::resources::kServiceAccounts, "default", "default");
        if (!sa.ok()) {
          last = sa.status();
          return false;
        }
        auto node = client.Get({"", "v1", "nodes", false, "Node"}, "", options.node_name);
        if (!node.ok()) {
          last = node.status();
          return false;
        }
        for (const auto& cond : (*node)["status"].value("conditions", Json::array())) {
          if (cond.value("type", "") == "Ready" && cond.value("status", "") == "True") {
            last = Status::Ok();
            return true;
          }
        }
        last = Unavailable("node not Ready yet");
        return false;
      },
      std::chrono::seconds(120), std::chrono::milliseconds(250));
  if (!up || !last.ok()) {
    return Unavailable("local cluster did not come up (" + last.ToString() + "):\n" +
                       c->LogTails());
  }
  return c;
}

LocalCluster::~LocalCluster() {
  // The node first, so every pod process is stopped while the API is still there.
  if (procnode_) (void)procnode_->Stop(std::chrono::seconds(10));
  if (scheduler_) (void)scheduler_->Stop(std::chrono::seconds(5));
  if (controller_manager_) (void)controller_manager_->Stop(std::chrono::seconds(5));
}

std::string LocalCluster::LogTails(int lines) const {
  std::string out = api_ ? api_->LogTails(lines) : "";
  for (const auto* p : {controller_manager_.get(), scheduler_.get(), procnode_.get()}) {
    if (p) out += "\n--- " + p->log_path() + "\n" + TailFile(p->log_path(), lines);
  }
  return out;
}

}  // namespace sluice::testing
