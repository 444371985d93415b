#pragma once

// Fault injection for tests and chaos experiments: a share of inference requests fails with
// Internal("injected fault") (HTTP 500 {"error":"injected fault"}, gRPC INTERNAL), and every
// inference request can be held back by a fixed delay. Off unless configured.
//
// The failures are spread deterministically, not drawn at random: with P percent, request n (from
// 0) fails when floor((n+1)*P/100) > floor(n*P/100), so any run of 100 consecutive requests holds
// exactly P failures and 20 % is one in five. Canary analysis in tests can then rely on the
// measured error rate instead of a probability.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lib/base/clock.h"
#include "lib/base/status.h"

namespace sluice::dataplane {

inline constexpr char kFaultErrorPercentEnv[] = "SLUICE_FAULT_ERROR_PERCENT";
inline constexpr char kFaultDelayMsEnv[] = "SLUICE_FAULT_DELAY_MS";
// When set, faults apply only to a server whose model version is this one: every revision of a
// ModelDeployment gets the same environment, so a chaos experiment on a registry-driven rollout
// names the version that is to misbehave.
inline constexpr char kFaultOnlyVersionEnv[] = "SLUICE_FAULT_ONLY_VERSION";
inline constexpr char kInjectedFaultMessage[] = "injected fault";

struct FaultOptions {
  int error_percent = 0;  // 0..100
  std::chrono::milliseconds delay{0};
  std::string only_version;  // empty: any version

  bool enabled() const { return error_percent > 0 || delay.count() > 0; }
  // "error 20%, delay 5 ms", for the start-up log.
  std::string ToString() const;
};

// Reads SLUICE_FAULT_ERROR_PERCENT, SLUICE_FAULT_DELAY_MS and SLUICE_FAULT_ONLY_VERSION through
// `getenv` (unset or empty: off). InvalidArgument names the variable when a value is not an integer in range (0..100, and
// 0..600000 ms), so a typo in a chaos experiment fails the start instead of silently testing
// nothing.
Result<FaultOptions> FaultOptionsFromEnv(const std::function<const char*(const char*)>& getenv);

// Decides which requests fail and runs delayed work. Thread-safe. The delay thread exists only
// when a delay is configured; Stop (and the destructor) runs whatever is still waiting at once,
// so no callback is lost, then joins it.
class FaultInjector {
 public:
  static Result<std::unique_ptr<FaultInjector>> Create(const FaultOptions& options, Clock& clock);
  ~FaultInjector();

  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  const FaultOptions& options() const { return options_; }

  // Takes the next request's ticket: true when this request is to fail. Lock-free.
  bool NextFails();

  // Runs `fn` once the configured delay has passed, on the delay thread; at once on this thread
  // when there is no delay or after Stop.
  void AfterDelay(std::function<void()> fn);

  void Stop();

 private:
  FaultInjector(const FaultOptions& options, Clock& clock);
  void Loop();

  const FaultOptions options_;
  Clock& clock_;
  std::atomic<uint64_t> next_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  // Due time -> work, in arrival order for equal times (the delay is fixed, so that is FIFO).
  std::multimap<Clock::Steady::time_point, std::function<void()>> waiting_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice::dataplane
