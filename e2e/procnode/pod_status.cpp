#include "e2e/procnode/pod_status.h"

#include <fmt/format.h>

#include <ctime>

namespace sluice::procnode {

using nlohmann::json;

std::string FormatTime(Clock::Wall::time_point t) {
  const std::time_t secs = Clock::Wall::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

namespace {

json Condition(const char* type, bool status, Clock::Wall::time_point since) {
  return {{"type", type},
          {"status", status ? "True" : "False"},
          {"lastProbeTime", nullptr},
          {"lastTransitionTime", FormatTime(since)}};
}

json TerminatedJson(const Termination& t, const std::string& container_id) {
  json out = {{"exitCode", t.exit_code},
              {"reason", t.reason},
              {"startedAt", FormatTime(t.started_at)},
              {"finishedAt", FormatTime(t.finished_at)},
              {"containerID", container_id}};
  if (t.signal != 0) out["signal"] = t.signal;
  if (!t.message.empty()) out["message"] = t.message;
  return out;
}

}  // namespace

json BuildPodStatus(const PodState& s) {
  const std::string container_id = s.pid > 0 ? "proc://" + std::to_string(s.pid) : "";
  json state;
  switch (s.container) {
    case PodState::Container::kWaiting: {
      json waiting = {{"reason", s.waiting_reason}};
      if (!s.waiting_message.empty()) waiting["message"] = s.waiting_message;
      state["waiting"] = waiting;
      break;
    }
    case PodState::Container::kRunning:
      state["running"] = {{"startedAt", FormatTime(s.running_since)}};
      break;
    case PodState::Container::kTerminated:
      state["terminated"] = s.terminated ? TerminatedJson(*s.terminated, container_id)
                                         : json{{"exitCode", 0}, {"reason", "Unknown"}};
      break;
  }
  json last_state = json::object();
  if (s.last_termination) {
    last_state["terminated"] = TerminatedJson(*s.last_termination, "");
  }
  json container_status = {
      {"name", s.container_name},
      {"image", s.image},
      {"imageID", ""},
      {"ready", s.ready},
      {"started", s.container == PodState::Container::kRunning && s.started},
      {"restartCount", s.restart_count},
      {"state", state},
      {"lastState", last_state},
  };
  if (!container_id.empty() && s.container != PodState::Container::kWaiting) {
    container_status["containerID"] = container_id;
  }

  const bool sandbox = !s.pod_ip.empty();
  json status = {
      {"phase", s.phase},
      {"hostIP", s.host_ip},
      {"hostIPs", json::array({{{"ip", s.host_ip}}})},
      {"startTime", FormatTime(s.start_time)},
      {"conditions", json::array({Condition("PodReadyToStartContainers", sandbox, s.start_time),
                                  Condition("Initialized", true, s.start_time),
                                  Condition("Ready", s.ready, s.ready_changed_at),
                                  Condition("ContainersReady", s.ready, s.ready_changed_at),
                                  Condition("PodScheduled", true, s.start_time)})},
      {"containerStatuses", json::array({container_status})},
  };
  if (sandbox) {
    status["podIP"] = s.pod_ip;
    status["podIPs"] = json::array({{{"ip", s.pod_ip}}});
  }
  return status;
}

std::chrono::milliseconds RestartBackoff::Next(std::chrono::milliseconds last_run) {
  if (current_.count() == 0 || last_run >= reset_after_) {
    current_ = base_;
  } else {
    current_ = std::min(current_ * 2, max_);
  }
  return current_;
}

}  // namespace sluice::procnode
