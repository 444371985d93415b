#include "e2e/procnode/procnode.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <optional>

#include "lib/kube/leader_election.h"
#include "e2e/procnode/child.h"
#include "e2e/procnode/pod_status.h"
#include "e2e/procnode/probe.h"

namespace sluice::procnode {

using kube::Json;
using Steady = Clock::Steady;

namespace {

const kube::GroupVersionResource kNodes{"", "v1", "nodes", false, "Node"};
constexpr char kLeaseNamespace[] = "kube-node-lease";

std::string PodRef(const Json& pod) {
  return pod["metadata"].value("namespace", "") + "/" + pod["metadata"].value("name", "");
}

}  // namespace

// Owns one pod's process from first sight of the pod to its deletion. All process handling
// happens on the worker's own thread (so PR_SET_PDEATHSIG ties the process to it).
class PodWorker {
 public:
  PodWorker(ProcNode& node, const kube::ObjectPtr& pod)
      : node_(node),
        opts_(node.options()),
        uid_((*pod)["metadata"].value("uid", "")),
        ref_(PodRef(*pod)),
        latest_(pod),
        backoff_(opts_.restart_backoff_base, opts_.restart_backoff_max, std::chrono::minutes(10)) {
    thread_ = std::thread([this] { Run(); });
  }

  ~PodWorker() {
    Abort();
    if (thread_.joinable()) thread_.join();
  }

  void Update(const kube::ObjectPtr& pod) {
    std::lock_guard<std::mutex> lock(mu_);
    latest_ = pod;
    cv_.notify_all();
  }
  // The pod is gone from the API, or the node shuts down: end the process now.
  void Abort() {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
    cv_.notify_all();
  }
  bool finished() const { return finished_.load(); }

 private:
  kube::ObjectPtr Latest() {
    std::lock_guard<std::mutex> lock(mu_);
    return latest_;
  }
  bool aborted() {
    std::lock_guard<std::mutex> lock(mu_);
    return aborted_;
  }
  bool Deleting() { return Latest()->at("metadata").contains("deletionTimestamp"); }
  // Sleeps until `deadline`, an update, or an abort; false when aborted.
  bool WaitUntil(Steady::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    auto seen = latest_;
    cv_.wait_until(lock, deadline, [&] { return aborted_ || latest_ != seen; });
    return !aborted_;
  }

  void Run() {
    RunPod();
    if (ip_allocated_) node_.ReleaseIp(uid_);
    finished_ = true;
  }

  void RunPod() {
    const Json pod = *Latest();
    const Json& container = pod["spec"]["containers"][0];
    state_.container_name = container.value("name", "");
    state_.image = container.value("image", "");
    state_.host_ip = node_.node_ip();
    state_.start_time = Clock::Wall::now();
    state_.ready_changed_at = state_.start_time;
    restart_policy_ = pod["spec"].value("restartPolicy", "Always");

    if (Deleting()) {
      // Never started here (e.g. deleted before this node saw it): nothing to drain.
      DeletePod();
      return;
    }
    auto ip = node_.AllocateIp(uid_);
    if (!ip.ok()) {
      Fail("PodIPExhausted", ip.status().message());
      return;
    }
    ip_allocated_ = true;
    state_.pod_ip = *ip;

    log_dir_ = opts_.work_dir + "/pods/" + pod["metadata"].value("namespace", "") + "_" +
               pod["metadata"].value("name", "") + "_" + uid_;
    std::error_code ec;
    std::filesystem::create_directories(log_dir_, ec);

    auto launch = BuildLaunch(pod, state_.pod_ip, state_.host_ip, opts_.launch);
    Status probes = ParseProbes(container);
    if (!launch.ok() || !probes.ok()) {
      const Status& why = launch.ok() ? probes : launch.status();
      spdlog::error("pod={} cannot run: {}", ref_, why.ToString());
      state_.waiting_reason = "CreateContainerConfigError";
      state_.waiting_message = why.message();
      while (!aborted() && !Deleting()) {
        PushStatus();
        WaitUntil(Steady::now() + std::chrono::seconds(5));
      }
      if (Deleting() && !aborted()) DeletePod();
      return;
    }
    launch_ = std::move(*launch);
    spdlog::info("pod={} uid={} ip={} cmd={}", ref_, uid_, state_.pod_ip, launch_.binary);

    Steady::time_point next_start = Steady::now();
    while (true) {
      if (aborted()) {
        StopProcess(opts_.shutdown_grace);
        return;
      }
      if (Deleting()) {
        Terminate();
        return;
      }
      const auto now = Steady::now();
      if (!child_ && state_.phase != "Succeeded" && state_.phase != "Failed" && now >= next_start) {
        StartProcess();
      }
      if (child_) {
        if (auto exit = child_->Poll()) {
          OnExit(*exit, next_start);
        } else {
          RunProbes(next_start);
        }
      }
      PushStatus();
      auto wake = Steady::now() + opts_.tick;
      if (!child_ && next_start > Steady::now()) wake = std::min(wake, next_start);
      WaitUntil(wake);
    }
  }

  Status ParseProbes(const Json& container) {
    ASSIGN_OR_RETURN(startup_spec_, ParseProbe(container, ProbeKind::kStartup));
    ASSIGN_OR_RETURN(readiness_spec_, ParseProbe(container, ProbeKind::kReadiness));
    ASSIGN_OR_RETURN(liveness_spec_, ParseProbe(container, ProbeKind::kLiveness));
    return Status::Ok();
  }

  void StartProcess() {
    const std::string log = log_dir_ + "/" + state_.container_name + ".log";
    auto child = ChildProcess::Start(launch_, log, log_dir_);
    if (!child.ok()) {
      spdlog::error("pod={} start failed: {}", ref_, child.status().ToString());
      state_.container = PodState::Container::kWaiting;
      state_.waiting_reason = "RunContainerError";
      state_.waiting_message = child.status().message();
      return;
    }
    child_ = std::move(*child);
    const auto now = Steady::now();
    started_steady_ = now;
    state_.pid = child_->pid();
    state_.container = PodState::Container::kRunning;
    state_.running_since = Clock::Wall::now();
    state_.waiting_reason.clear();
    state_.waiting_message.clear();
    state_.terminated.reset();
    state_.phase = "Running";
    state_.started = !startup_spec_.has_value();
    SetReady(!readiness_spec_.has_value() && state_.started);
    startup_.reset();
    readiness_.reset();
    liveness_.reset();
    if (startup_spec_) startup_.emplace(*startup_spec_, now);
    if (readiness_spec_) readiness_.emplace(*readiness_spec_, now);
    if (liveness_spec_) liveness_.emplace(*liveness_spec_, now);
    spdlog::info("pod={} started pid={} restarts={}", ref_, state_.pid, state_.restart_count);
  }

  void SetReady(bool ready) {
    if (state_.ready == ready) return;
    state_.ready = ready;
    state_.ready_changed_at = Clock::Wall::now();
    spdlog::info("pod={} ready={}", ref_, ready);
  }

  bool Probe(ProbeTracker& tracker) {
    const auto& spec = tracker.spec();
    auto code = HttpGet(state_.pod_ip, spec.port, spec.path,
                        std::chrono::duration_cast<std::chrono::milliseconds>(spec.timeout));
    return code.ok() && *code >= 200 && *code < 400;
  }

  void RunProbes(Steady::time_point& next_start) {
    const auto now = Steady::now();
    if (!state_.started) {
      if (startup_ && startup_->Due(now)) {
        const auto r = startup_->Record(now, Probe(*startup_));
        if (r == ProbeTracker::Result::kSuccess) {
          state_.started = true;
          // Readiness and liveness begin once startup has passed.
          const auto after = Steady::now();
          if (readiness_spec_) readiness_.emplace(*readiness_spec_, after);
          if (liveness_spec_) liveness_.emplace(*liveness_spec_, after);
          if (!readiness_spec_) SetReady(true);
        } else if (r == ProbeTracker::Result::kFailure) {
          spdlog::warn("pod={} startup probe failed {} times; restarting", ref_,
                       startup_->consecutive_failures());
          KillForRestart(next_start);
        }
      }
      return;
    }
    if (liveness_ && liveness_->Due(now)) {
      if (liveness_->Record(now, Probe(*liveness_)) == ProbeTracker::Result::kFailure) {
        spdlog::warn("pod={} liveness probe failed {} times; restarting", ref_,
                     liveness_->consecutive_failures());
        KillForRestart(next_start);
        return;
      }
    }
    if (readiness_ && readiness_->Due(now)) {
      readiness_->Record(now, Probe(*readiness_));
      SetReady(readiness_->result() == ProbeTracker::Result::kSuccess);
    }
  }

  std::chrono::seconds GracePeriod() {
    const Json pod = *Latest();
    if (pod["metadata"].contains("deletionGracePeriodSeconds")) {
      return std::chrono::seconds(pod["metadata"]["deletionGracePeriodSeconds"].get<int64_t>());
    }
    return std::chrono::seconds(pod["spec"].value("terminationGracePeriodSeconds", 30));
  }

  // SIGTERM, wait up to `grace` (or an abort), SIGKILL; records the exit.
  std::optional<ExitInfo> StopProcess(std::chrono::milliseconds grace) {
    if (!child_) return std::nullopt;
    child_->Signal(SIGTERM);
    const auto deadline = Steady::now() + grace;
    std::optional<ExitInfo> exit;
    while (!(exit = child_->Poll()) && Steady::now() < deadline) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
    if (!exit) {
      spdlog::warn("pod={} pid={} did not stop in time; SIGKILL", ref_, child_->pid());
      child_->Signal(SIGKILL);
      child_.reset();  // the destructor reaps
      exit = ExitInfo{128 + SIGKILL, SIGKILL};
    }
    return exit;
  }

  void KillForRestart(Steady::time_point& next_start) {
    auto exit = StopProcess(GracePeriod());
    if (exit) OnExit(*exit, next_start);
  }

  Termination MakeTermination(const ExitInfo& exit) {
    Termination t;
    t.exit_code = exit.exit_code;
    t.signal = exit.signal;
    t.reason = exit.exit_code == 0 ? "Completed" : "Error";
    t.started_at = state_.running_since;
    t.finished_at = Clock::Wall::now();
    return t;
  }

  void OnExit(const ExitInfo& exit, Steady::time_point& next_start) {
    const auto ran =
        std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - started_steady_);
    spdlog::warn("pod={} pid={} exited code={} signal={} after {} ms", ref_, state_.pid,
                 exit.exit_code, exit.signal, ran.count());
    child_.reset();
    SetReady(false);
    state_.started = false;
    const Termination t = MakeTermination(exit);
    const bool restart =
        restart_policy_ == "Always" || (restart_policy_ == "OnFailure" && exit.exit_code != 0);
    if (!restart) {
      state_.container = PodState::Container::kTerminated;
      state_.terminated = t;
      state_.phase = exit.exit_code == 0 ? "Succeeded" : "Failed";
      return;
    }
    state_.last_termination = t;
    state_.restart_count++;
    state_.container = PodState::Container::kWaiting;
    state_.waiting_reason = "CrashLoopBackOff";
    const auto wait = backoff_.Next(ran);
    state_.waiting_message =
        "back-off " + std::to_string(wait.count()) + "ms restarting failed container";
    next_start = Steady::now() + wait;
  }

  void Terminate() {
    const auto grace = GracePeriod();
    const auto deadline = Steady::now() + grace;
    spdlog::info("pod={} terminating (grace {} s)", ref_, grace.count());
    SetReady(false);
    PushStatus();
    if (child_) {
      RunPreStop(deadline);
      const auto left = std::max(Steady::duration::zero(), deadline - Steady::now());
      auto exit = StopProcess(std::chrono::duration_cast<std::chrono::milliseconds>(left));
      if (exit) {
        state_.container = PodState::Container::kTerminated;
        state_.terminated = MakeTermination(*exit);
        spdlog::info("pod={} stopped code={} signal={}", ref_, exit->exit_code, exit->signal);
      }
      child_.reset();
    }
    if (!aborted()) {
      PushStatus();
      DeletePod();
    }
  }

  void RunPreStop(Steady::time_point deadline) {
    const Json pod = *Latest();
    const Json& c = pod["spec"]["containers"][0];
    if (!c.contains("lifecycle") || !c["lifecycle"].contains("preStop")) return;
    const Json& hook = c["lifecycle"]["preStop"];
    if (hook.contains("sleep")) {
      const auto until = std::min(
          deadline, Steady::now() + std::chrono::seconds(hook["sleep"].value("seconds", 0)));
      spdlog::info("pod={} preStop sleep", ref_);
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, until, [&] { return aborted_; });
    } else if (hook.contains("httpGet")) {
      const Json& get = hook["httpGet"];
      auto port = ResolvePort(c, get.value("port", Json(80)));
      if (!port.ok()) {
        spdlog::warn("pod={} preStop: {}", ref_, port.status().ToString());
        return;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
      auto code = HttpGet(state_.pod_ip, *port, get.value("path", "/"),
                          std::max(left, std::chrono::milliseconds(1)));
      spdlog::info("pod={} preStop httpGet {} -> {}", ref_, get.value("path", "/"),
                   code.ok() ? std::to_string(*code) : code.status().ToString());
    } else {
      spdlog::warn("pod={} preStop handler not supported; skipped", ref_);
    }
  }

  void DeletePod() {
    kube::DeleteOptions options;
    options.grace_period_seconds = 0;
    options.precondition_uid = uid_;
    const Json pod = *Latest();
    Status s = node_.client().Delete(kube::resources::kPods, pod["metadata"].value("namespace", ""),
                                     pod["metadata"].value("name", ""), options);
    if (!s.ok() && s.code() != StatusCode::kNotFound && s.code() != StatusCode::kConflict) {
      spdlog::warn("pod={} delete failed: {}", ref_, s.ToString());
      return;
    }
    spdlog::info("pod={} deleted", ref_);
  }

  void Fail(const std::string& reason, const std::string& message) {
    spdlog::error("pod={} {}: {}", ref_, reason, message);
    state_.phase = "Failed";
    state_.waiting_reason = reason;
    state_.waiting_message = message;
    PushStatus();
  }

  void PushStatus() {
    Json status = BuildPodStatus(state_);
    if (status == last_pushed_) return;
    const Json pod = *Latest();
    kube::PatchOptions options;
    options.subresource = "status";
    auto r = node_.client().Patch(kube::resources::kPods, pod["metadata"].value("namespace", ""),
                                  pod["metadata"].value("name", ""), kube::PatchType::kMerge,
                                  Json{{"status", status}}.dump(), options);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kNotFound) {
        Abort();
      } else {
        spdlog::warn("pod={} status write failed: {}", ref_, r.status().ToString());
      }
      return;
    }
    last_pushed_ = std::move(status);
  }

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
  std::string log_dir_;
  bool ip_allocated_ = false;
  Launch launch_;
  std::optional<ProbeSpec> startup_spec_, readiness_spec_, liveness_spec_;
  std::optional<ProbeTracker> startup_, readiness_, liveness_;
  std::unique_ptr<ChildProcess> child_;
  Steady::time_point started_steady_;
  RestartBackoff backoff_;
  Json last_pushed_;

  std::thread thread_;
};

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
