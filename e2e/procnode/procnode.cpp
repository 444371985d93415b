#include "e2e/procnode/procnode.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <optional>

#include "e2e/procnode/child.h"
#include "e2e/procnode/pod_status.h"
#include "e2e/procnode/pod_worker.h"
#include "e2e/procnode/probe.h"
#include "lib/kube/leader_election.h"

namespace sluice::procnode {

using kube::Json;
using Steady = Clock::Steady;

namespace {

const kube::GroupVersionResource kNodes{"", "v1", "nodes", false, "Node"};
constexpr char kLeaseNamespace[] = "kube-node-lease";

}  // namespace

ProcNode::ProcNode(kube::Client& client, ProcNodeOptions options)
    : client_(client),
      options_(std::move(options)),
      started_at_(Clock::Wall::now()),
      allocator_(options_.pod_cidr) {}

Result<std::unique_ptr<ProcNode>> ProcNode::Create(kube::Client& client, ProcNodeOptions options) {
  if (options.node_name.empty()) return InvalidArgument("node name is empty");
  if (options.work_dir.empty()) return InvalidArgument("work dir is empty");
  if (options.pod_cidr.prefix == 0) return InvalidArgument("pod CIDR is not set");
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir + "/pods", ec);
  if (ec) return Internal("cannot create " + options.work_dir + ": " + ec.message());
  RETURN_IF_ERROR(CheckBindable(options.pod_cidr.network + 1));
  return std::unique_ptr<ProcNode>(new ProcNode(client, std::move(options)));
}

ProcNode::~ProcNode() {
  Stop();
}

Result<std::string> ProcNode::AllocateIp(const std::string& uid) {
  std::lock_guard<std::mutex> lock(ip_mu_);
  ASSIGN_OR_RETURN(uint32_t address, allocator_.Allocate(uid));
  return FormatIpv4(address);
}

void ProcNode::ReleaseIp(const std::string& uid) {
  std::lock_guard<std::mutex> lock(ip_mu_);
  allocator_.Release(uid);
}

Status ProcNode::RegisterNode() {
  const Json node = {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       {{"name", options_.node_name},
        {"labels",
         {{"kubernetes.io/hostname", options_.node_name},
          {"kubernetes.io/os", "linux"},
          {"kubernetes.io/arch", "amd64"},
          {"sluice.dev/procnode", "true"}}}}},
      {"spec",
       {{"podCIDR", options_.pod_cidr.ToString()},
        {"podCIDRs", Json::array({options_.pod_cidr.ToString()})}}},
  };
  auto created = client_.Create(kNodes, "", node);
  if (created.ok()) {
    node_uid_ = (*created)["metadata"].value("uid", "");
  } else if (created.status().code() == StatusCode::kAlreadyExists) {
    ASSIGN_OR_RETURN(Json existing, client_.Get(kNodes, "", options_.node_name));
    node_uid_ = existing["metadata"].value("uid", "");
  } else {
    return created.status().Annotate("registering node " + options_.node_name);
  }
  return PostNodeStatus();
}

Status ProcNode::PostNodeStatus() {
  const std::string now = FormatTime(Clock::Wall::now());
  const std::string since = FormatTime(started_at_);
  auto condition = [&](const char* type, bool status, const char* reason, const char* message) {
    return Json{{"type", type},
                {"status", status ? "True" : "False"},
                {"reason", reason},
                {"message", message},
                {"lastHeartbeatTime", now},
                {"lastTransitionTime", since}};
  };
  const Json resources = {{"cpu", options_.cpu},
                          {"memory", options_.memory},
                          {"pods", std::to_string(options_.max_pods)},
                          {"ephemeral-storage", "100Gi"}};
  const Json status = {
      {"capacity", resources},
      {"allocatable", resources},
      {"conditions",
       Json::array(
           {condition("Ready", true, "KubeletReady", "sluice-procnode is posting ready status"),
            condition("MemoryPressure", false, "KubeletHasSufficientMemory", "ok"),
            condition("DiskPressure", false, "KubeletHasNoDiskPressure", "ok"),
            condition("PIDPressure", false, "KubeletHasSufficientPID", "ok")})},
      {"addresses", Json::array({{{"type", "InternalIP"}, {"address", node_ip()}},
                                 {{"type", "Hostname"}, {"address", options_.node_name}}})},
      {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 0}}}}},
      {"nodeInfo",
       {{"machineID", "procnode"},
        {"systemUUID", "procnode-" + options_.node_name},
        {"bootID", "procnode"},
        {"kernelVersion", ""},
        {"osImage", "sluice-procnode"},
        {"containerRuntimeVersion", "procnode://0.1"},
        {"kubeletVersion", options_.kubelet_version},
        {"kubeProxyVersion", ""},
        {"operatingSystem", "linux"},
        {"architecture", "amd64"}}},
  };
  kube::PatchOptions options;
  options.subresource = "status";
  auto r = client_.Patch(kNodes, "", options_.node_name, kube::PatchType::kStrategicMerge,
                         Json{{"status", status}}.dump(), options);
  if (!r.ok()) return r.status().Annotate("node status");
  return Status::Ok();
}

Status ProcNode::RenewLease() {
  const std::string now = kube::FormatMicroTime(Clock::Wall::now());
  const Json patch = {{"spec",
                       {{"holderIdentity", options_.node_name},
                        {"leaseDurationSeconds", options_.lease_duration.count()},
                        {"renewTime", now}}}};
  auto r = client_.Patch(kube::resources::kLeases, kLeaseNamespace, options_.node_name,
                         kube::PatchType::kMerge, patch.dump());
  if (r.ok()) return Status::Ok();
  if (r.status().code() != StatusCode::kNotFound) return r.status().Annotate("lease");
  Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata",
                 {{"name", options_.node_name},
                  {"namespace", kLeaseNamespace},
                  {"ownerReferences", Json::array({{{"apiVersion", "v1"},
                                                    {"kind", "Node"},
                                                    {"name", options_.node_name},
                                                    {"uid", node_uid_}}})}}},
                {"spec", patch["spec"]}};
  auto c = client_.Create(kube::resources::kLeases, kLeaseNamespace, lease);
  if (!c.ok()) return c.status().Annotate("lease");
  return Status::Ok();
}

// Renews the Lease and re-posts the Node status on their periods, and reaps the threads of pods
// that are done (often enough that a finished worker does not linger).
void ProcNode::HeartbeatLoop() {
  constexpr std::chrono::milliseconds kReapPeriod{2000};
  // Start() renewed the Lease a moment ago.
  auto next_lease = Steady::now() + options_.lease_renew_period;
  auto next_status = Steady::now() + options_.node_status_period;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    if (Steady::now() >= next_lease) {
      if (Status s = RenewLease(); !s.ok()) {
        spdlog::warn("node={} {}", options_.node_name, s.ToString());
      }
      next_lease = Steady::now() + options_.lease_renew_period;
    }
    if (Steady::now() >= next_status) {
      if (Status s = PostNodeStatus(); !s.ok()) {
        spdlog::warn("node={} {}", options_.node_name, s.ToString());
      }
      next_status = Steady::now() + options_.node_status_period;
    }
    lock.lock();
    ReapFinishedWorkers();
    const auto wake = std::min({next_lease, next_status, Steady::now() + kReapPeriod});
    cv_.wait_until(lock, wake, [&] { return stopping_; });
  }
}

Status ProcNode::Start() {
  RETURN_IF_ERROR(RegisterNode());
  RETURN_IF_ERROR(RenewLease());
  spdlog::info("node={} registered: ip={} pods from {}", options_.node_name, node_ip(),
               options_.pod_cidr.ToString());
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });

  kube::InformerOptions informer_options;
  informer_options.name = "pods@" + options_.node_name;
  informer_options.watcher.field_selector = "spec.nodeName=" + options_.node_name;
  informer_options.watcher.transform = kube::StripManagedFields;
  informer_ = kube::Informer::ForResource(client_, kube::resources::kPods, "", informer_options);
  auto handler = std::make_shared<kube::ResourceEventHandlerFuncs>();
  handler->on_add = [this](const kube::ObjectPtr& pod) { OnPod(pod); };
  handler->on_update = [this](const kube::ObjectPtr&, const kube::ObjectPtr& pod) { OnPod(pod); };
  handler->on_delete = [this](const kube::ObjectPtr& pod, bool) { OnPodDeleted(pod); };
  informer_->AddEventHandler(handler);
  informer_->Start();
  return Status::Ok();
}

void ProcNode::OnPod(const kube::ObjectPtr& pod) {
  const std::string uid = (*pod)["metadata"].value("uid", "");
  const std::string phase = pod->contains("status") ? (*pod)["status"].value("phase", "") : "";
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  auto it = workers_.find(uid);
  if (it != workers_.end()) {
    it->second->Update(pod);
    return;
  }
  // A pod that already ended is history, not work (unless it is being deleted: then it must go).
  const bool deleting = (*pod)["metadata"].contains("deletionTimestamp");
  if ((phase == "Succeeded" || phase == "Failed") && !deleting) return;
  workers_[uid] = std::make_unique<PodWorker>(*this, pod);
}

void ProcNode::OnPodDeleted(const kube::ObjectPtr& pod) {
  const std::string uid = (*pod)["metadata"].value("uid", "");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(uid);
  if (it != workers_.end()) it->second->Abort();
}

void ProcNode::ReapFinishedWorkers() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->second->finished()) {
      it = workers_.erase(it);  // joins a thread that has already returned
    } else {
      ++it;
    }
  }
}

void ProcNode::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (informer_) informer_->Stop();
  if (heartbeat_.joinable()) heartbeat_.join();
  std::map<std::string, std::unique_ptr<PodWorker>> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& [uid, worker] : workers) worker->Abort();
  workers.clear();  // each destructor joins after its process is gone
}

}  // namespace sluice::procnode
