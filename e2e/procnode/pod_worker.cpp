#include "e2e/procnode/pod_worker.h"

#include "lib/base/base64.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace sluice::procnode {

using kube::Json;
using Steady = Clock::Steady;

std::string PodRef(const Json& pod) {
  return pod["metadata"].value("namespace", "") + "/" + pod["metadata"].value("name", "");
}

PodWorker::PodWorker(ProcNode& node, const kube::ObjectPtr& pod)
    : node_(node),
      opts_(node.options()),
      uid_((*pod)["metadata"].value("uid", "")),
      ref_(PodRef(*pod)),
      latest_(pod),
      backoff_(opts_.restart_backoff_base, opts_.restart_backoff_max, std::chrono::minutes(10)) {
  thread_ = std::thread([this] { Run(); });
}

PodWorker::~PodWorker() {
  Abort();
  if (thread_.joinable()) thread_.join();
}

void PodWorker::Update(const kube::ObjectPtr& pod) {
  std::lock_guard<std::mutex> lock(mu_);
  latest_ = pod;
  cv_.notify_all();
}

void PodWorker::Abort() {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_ = true;
  cv_.notify_all();
}

kube::ObjectPtr PodWorker::Latest() {
  std::lock_guard<std::mutex> lock(mu_);
  return latest_;
}

bool PodWorker::aborted() {
  std::lock_guard<std::mutex> lock(mu_);
  return aborted_;
}

bool PodWorker::WaitUntil(Steady::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  auto seen = latest_;
  cv_.wait_until(lock, deadline, [&] { return aborted_ || latest_ != seen; });
  return !aborted_;
}

void PodWorker::Run() {
  RunPod();
  if (ip_allocated_) node_.ReleaseIp(uid_);
  finished_ = true;
}

void PodWorker::RunPod() {
  const Json pod = *Latest();
  const Json& container = pod["spec"]["containers"][0];
  state_.container_name = container.value("name", "");
  state_.image = container.value("image", "");
  state_.host_ip = node_.node_ip();
  state_.start_time = Clock::Wall::now();
  state_.ready_changed_at = state_.start_time;
  restart_policy_ = pod["spec"].value("restartPolicy", "Always");
  message_from_logs_ = container.value("terminationMessagePolicy", "") == "FallbackToLogsOnError";

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

  LaunchOptions launch_options = opts_.launch;
  launch_options.volumes_dir = log_dir_ + "/volumes";
  const std::string ns = pod["metadata"].value("namespace", "");
  launch_options.secret_value = [this, ns](const std::string& name,
                                           const std::string& key) -> Result<std::string> {
    ASSIGN_OR_RETURN(kube::Json secret, node_.client().Get(kube::resources::kSecrets, ns, name));
    auto data = secret.value("data", kube::Json::object());
    auto it = data.find(key);
    if (it == data.end() || !it->is_string()) {
      return NotFound("Secret " + name + " has no key " + key);
    }
    std::optional<std::string> value = DecodeBase64(it->get<std::string>());
    if (!value) return InvalidArgument("Secret " + name + " key " + key + " is not base64");
    return *value;
  };
  auto launch = BuildLaunch(pod, state_.pod_ip, state_.host_ip, launch_options);
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

Status PodWorker::ParseProbes(const Json& container) {
  ASSIGN_OR_RETURN(startup_spec_, ParseProbe(container, ProbeKind::kStartup));
  ASSIGN_OR_RETURN(readiness_spec_, ParseProbe(container, ProbeKind::kReadiness));
  ASSIGN_OR_RETURN(liveness_spec_, ParseProbe(container, ProbeKind::kLiveness));
  return Status::Ok();
}

void PodWorker::StartProcess() {
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

void PodWorker::SetReady(bool ready) {
  if (state_.ready == ready) return;
  state_.ready = ready;
  state_.ready_changed_at = Clock::Wall::now();
  spdlog::info("pod={} ready={}", ref_, ready);
}

bool PodWorker::Probe(ProbeTracker& tracker) {
  const auto& spec = tracker.spec();
  auto code = HttpGet(state_.pod_ip, spec.port, spec.path,
                      std::chrono::duration_cast<std::chrono::milliseconds>(spec.timeout));
  return code.ok() && *code >= 200 && *code < 400;
}

void PodWorker::RunProbes(Steady::time_point& next_start) {
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

std::chrono::seconds PodWorker::GracePeriod() {
  const Json pod = *Latest();
  if (pod["metadata"].contains("deletionGracePeriodSeconds")) {
    return std::chrono::seconds(pod["metadata"]["deletionGracePeriodSeconds"].get<int64_t>());
  }
  return std::chrono::seconds(pod["spec"].value("terminationGracePeriodSeconds", 30));
}

std::optional<ExitInfo> PodWorker::StopProcess(std::chrono::milliseconds grace) {
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

void PodWorker::KillForRestart(Steady::time_point& next_start) {
  auto exit = StopProcess(GracePeriod());
  if (exit) OnExit(*exit, next_start);
}

Termination PodWorker::MakeTermination(const ExitInfo& exit) {
  Termination t;
  t.exit_code = exit.exit_code;
  t.signal = exit.signal;
  t.reason = exit.exit_code == 0 ? "Completed" : "Error";
  t.started_at = state_.running_since;
  t.finished_at = Clock::Wall::now();
  return t;
}

void PodWorker::OnExit(const ExitInfo& exit, Steady::time_point& next_start) {
  const auto ran =
      std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - started_steady_);
  spdlog::warn("pod={} pid={} exited code={} signal={} after {} ms", ref_, state_.pid,
               exit.exit_code, exit.signal, ran.count());
  child_.reset();
  SetReady(false);
  state_.started = false;
  Termination t = MakeTermination(exit);
  if (message_from_logs_ && exit.exit_code != 0) {
    // As the kubelet does: the last 2048 bytes (at most 80 lines) of the container's log.
    std::ifstream in(log_dir_ + "/" + state_.container_name + ".log", std::ios::binary);
    std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (log.size() > 2048) log = log.substr(log.size() - 2048);
    size_t start = 0, lines = 0;
    for (size_t i = log.size(); i-- > 0;) {
      if (log[i] == '\n' && i + 1 < log.size() && ++lines == 80) {
        start = i + 1;
        break;
      }
    }
    t.message = log.substr(start);
  }
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

void PodWorker::Terminate() {
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

void PodWorker::RunPreStop(Steady::time_point deadline) {
  const Json pod = *Latest();
  const Json& c = pod["spec"]["containers"][0];
  if (!c.contains("lifecycle") || !c["lifecycle"].contains("preStop")) return;
  const Json& hook = c["lifecycle"]["preStop"];
  if (hook.contains("sleep")) {
    const auto until =
        std::min(deadline, Steady::now() + std::chrono::seconds(hook["sleep"].value("seconds", 0)));
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

void PodWorker::DeletePod() {
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

void PodWorker::Fail(const std::string& reason, const std::string& message) {
  spdlog::error("pod={} {}: {}", ref_, reason, message);
  state_.phase = "Failed";
  state_.waiting_reason = reason;
  state_.waiting_message = message;
  PushStatus();
}

void PodWorker::PushStatus() {
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

}  // namespace sluice::procnode
