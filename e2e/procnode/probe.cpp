#include "e2e/procnode/probe.h"

namespace sluice::procnode {

namespace {

const char* ProbeField(ProbeKind kind) {
  switch (kind) {
    case ProbeKind::kStartup:
      return "startupProbe";
    case ProbeKind::kReadiness:
      return "readinessProbe";
    case ProbeKind::kLiveness:
      return "livenessProbe";
  }
  return "";
}

Status ReadInt(const nlohmann::json& probe, const char* field, int min, int& out) {
  if (!probe.contains(field)) return Status::Ok();
  const auto& v = probe[field];
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > 1'000'000) {
    return InvalidArgument(std::string(field) + " must be an integer >= " + std::to_string(min));
  }
  out = v.get<int>();
  return Status::Ok();
}

}  // namespace

Result<int> ResolvePort(const nlohmann::json& container, const nlohmann::json& port) {
  if (port.is_number_integer()) {
    const int p = port.get<int>();
    if (p < 1 || p > 65535) return InvalidArgument("port out of range: " + port.dump());
    return p;
  }
  if (port.is_string()) {
    const std::string name = port.get<std::string>();
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
      return ResolvePort(container, nlohmann::json(std::stoi(name)));
    }
    for (const auto& p : container.value("ports", nlohmann::json::array())) {
      if (p.value("name", "") == name && p.contains("containerPort")) {
        return ResolvePort(container, p["containerPort"]);
      }
    }
    return InvalidArgument("container has no port named '" + name + "'");
  }
  return InvalidArgument("bad port: " + port.dump());
}

Result<std::optional<ProbeSpec>> ParseProbe(const nlohmann::json& container, ProbeKind kind) {
  const char* field = ProbeField(kind);
  if (!container.contains(field) || container[field].is_null()) {
    return std::optional<ProbeSpec>();
  }
  const auto& probe = container[field];
  if (!probe.contains("httpGet")) {
    return Unimplemented(std::string(field) + ": only httpGet probes are supported");
  }
  const auto& get = probe["httpGet"];
  ProbeSpec spec;
  spec.path = get.value("path", "/");
  if (spec.path.empty() || spec.path[0] != '/') spec.path = "/" + spec.path;
  spec.scheme = get.value("scheme", "HTTP");
  if (spec.scheme != "HTTP") {
    return Unimplemented(std::string(field) + ": scheme " + spec.scheme + " is not supported");
  }
  if (!get.contains("port")) return InvalidArgument(std::string(field) + ": httpGet needs a port");
  auto port = ResolvePort(container, get["port"]);
  if (!port.ok()) return port.status().Annotate(field);
  spec.port = *port;
  int initial_delay = 0, period = 10, timeout = 1;
  RETURN_IF_ERROR(ReadInt(probe, "initialDelaySeconds", 0, initial_delay));
  RETURN_IF_ERROR(ReadInt(probe, "periodSeconds", 1, period));
  RETURN_IF_ERROR(ReadInt(probe, "timeoutSeconds", 1, timeout));
  RETURN_IF_ERROR(ReadInt(probe, "successThreshold", 1, spec.success_threshold));
  RETURN_IF_ERROR(ReadInt(probe, "failureThreshold", 1, spec.failure_threshold));
  // The API server insists on 1 for liveness and startup; be as strict for hand-made objects.
  if (kind != ProbeKind::kReadiness) spec.success_threshold = 1;
  spec.initial_delay = std::chrono::seconds(initial_delay);
  spec.period = std::chrono::seconds(period);
  spec.timeout = std::chrono::seconds(timeout);
  return std::optional<ProbeSpec>(spec);
}

ProbeTracker::ProbeTracker(ProbeSpec spec, Clock::Steady::time_point started)
    : spec_(std::move(spec)), next_(started + spec_.initial_delay) {}

ProbeTracker::Result ProbeTracker::Record(Clock::Steady::time_point now, bool success) {
  next_ = now + spec_.period;
  if (success) {
    failures_ = 0;
    if (++successes_ >= spec_.success_threshold) result_ = Result::kSuccess;
  } else {
    successes_ = 0;
    if (++failures_ >= spec_.failure_threshold) result_ = Result::kFailure;
  }
  return result_;
}

}  // namespace sluice::procnode
