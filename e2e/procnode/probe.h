#pragma once

// Container probes as the kubelet runs them: the spec parsed from a container, and a pure state
// machine that says when the next attempt is due and what the result is after each attempt.
// The HTTP attempt itself is elsewhere (http_get.h), so the machine is tested with a fake clock.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "lib/base/clock.h"
#include "lib/base/status.h"

namespace sluice::procnode {

enum class ProbeKind { kStartup, kReadiness, kLiveness };

// An httpGet probe with the kubelet's defaults. Other handlers (exec, tcpSocket, grpc) are not
// supported and make ParseProbe fail.
struct ProbeSpec {
  std::string path = "/";
  int port = 0;  // resolved: a named port is looked up in the container's ports
  std::string scheme = "HTTP";
  std::chrono::seconds initial_delay{0};
  std::chrono::seconds period{10};
  std::chrono::seconds timeout{1};
  int success_threshold = 1;
  int failure_threshold = 3;
};

// The probe of `kind` in `container` (JSON of a core/v1 Container), or nullopt when it has none.
Result<std::optional<ProbeSpec>> ParseProbe(const nlohmann::json& container, ProbeKind kind);

// Resolves a port (number or name) against container.ports[].name.
Result<int> ResolvePort(const nlohmann::json& container, const nlohmann::json& port);

// The result of a probe over time. Starts kUnknown (readiness: not ready; liveness and startup:
// not yet decided); `success_threshold` consecutive successes make it kSuccess,
// `failure_threshold` consecutive failures kFailure, and it stays there until the opposite run
// of results. Not thread-safe.
class ProbeTracker {
 public:
  enum class Result { kUnknown, kSuccess, kFailure };

  // `started` is when the container started; the first attempt is due initial_delay later.
  ProbeTracker(ProbeSpec spec, Clock::Steady::time_point started);

  const ProbeSpec& spec() const { return spec_; }
  bool Due(Clock::Steady::time_point now) const { return now >= next_; }
  Clock::Steady::time_point next_attempt() const { return next_; }
  // Records an attempt made at `now` and schedules the next one a period later.
  Result Record(Clock::Steady::time_point now, bool success);
  Result result() const { return result_; }
  int consecutive_failures() const { return failures_; }

 private:
  ProbeSpec spec_;
  Clock::Steady::time_point next_;
  Result result_ = Result::kUnknown;
  int successes_ = 0;
  int failures_ = 0;
};

}  // namespace sluice::procnode
