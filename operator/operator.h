#pragma once

// The sluice-operator process, assembled: Kubernetes client, the shared informer cache, the
// ModelDeployment and FeatureView controllers, leader election, and the /metrics, /healthz and
// /readyz endpoints.
//
// Lifecycle (Run):
//   informers start at once on every replica (a standby keeps a warm cache and a warm queue);
//   /readyz answers 200 once every informer has synced;
//   workers start only while this replica leads (or at once with leader election off) and only
//   after the cache has synced, so no reconcile ever acts on a half-filled cache;
//   Stop() (SIGTERM): stop taking work, let in-flight reconciles finish (bounded by
//   shutdown_timeout), release the Lease so a standby takes over at once, stop the informers and
//   the HTTP servers; Run returns OK.
//   Losing the Lease without a Stop() ends Run with an error: the process exits non-zero and is
//   restarted, the way other operators step down.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "operator/options.h"
#include "lib/base/status.h"

namespace sluice::app {

class Operator {
 public:
  // Loads the kubeconfig, builds the client, the cache and the controllers, and binds the HTTP
  // endpoints (so their ports are known before Run).
  static Result<std::unique_ptr<Operator>> Create(OperatorOptions options);
  ~Operator();

  Operator(const Operator&) = delete;
  Operator& operator=(const Operator&) = delete;

  Status Run();
  // Thread-safe, idempotent; Run() returns soon after.
  void Stop();

  uint16_t metrics_port() const;
  uint16_t health_port() const;
  bool ready() const;
  bool leading() const;

 private:
  struct Parts;
  explicit Operator(OperatorOptions options);
  Status Build();
  void WriteObservabilityPorts();
  // Returns freed heap to the system every kTrimPeriod until StopTrimLoop().
  void TrimLoop();
  void StopTrimLoop();

  OperatorOptions options_;
  std::unique_ptr<Parts> p_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;   // guarded by mu_
  bool leading_ = false;          // guarded by mu_
  bool lost_leadership_ = false;  // guarded by mu_
  std::atomic<bool> synced_{false};
};

// The operator's namespace: $POD_NAMESPACE, the service account's namespace file, or
// `fallback`.
std::string OwnNamespace(const std::string& fallback);

}  // namespace sluice::app
