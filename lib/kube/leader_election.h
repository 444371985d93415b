#pragma once

// Leader election on a coordination.k8s.io/v1 Lease, so that of several operator replicas only
// one reconciles at a time.
//
// Rules (client-go's):
// - A candidate takes the lease only when it is free (no holder) or expired, and expiry is judged
//   by the candidate's own clock: leaseDurationSeconds after the moment this candidate last saw
//   the lease record change, never by comparing the remote renewTime with the local time (the
//   clocks of two machines need not agree).
// - Every write is conditional on the resourceVersion last read (optimistic concurrency): of
//   two candidates racing for an expired lease, one gets a Conflict and stays a follower.
// - The leader renews every retry period; when it has not managed to renew for renew_deadline
//   (which is shorter than the lease duration, so it steps down before anyone may take over),
//   or it sees another holder, it stops leading.
// - On Stop() a leader releases the lease (clears the holder), so a waiting candidate takes over
//   at its next retry instead of waiting for expiry.
// Callbacks run on the thread that called Run(); they must return quickly (start or stop
// worker threads). A process should exit, or at least stop reconciling, after
// on_stopped_leading.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "lib/base/clock.h"
#include "lib/base/status.h"
#include "lib/kube/client.h"

namespace sluice::kube {

// The election state kept in Lease.spec.
struct LeaderElectionRecord {
  std::string holder_identity;
  int lease_duration_seconds = 0;
  Clock::Wall::time_point acquire_time;
  Clock::Wall::time_point renew_time;
  int lease_transitions = 0;

  friend bool operator==(const LeaderElectionRecord& a, const LeaderElectionRecord& b) {
    return a.holder_identity == b.holder_identity &&
           a.lease_duration_seconds == b.lease_duration_seconds &&
           a.acquire_time == b.acquire_time && a.renew_time == b.renew_time &&
           a.lease_transitions == b.lease_transitions;
  }
};

// Kubernetes MicroTime: RFC 3339 in UTC with microseconds, "2024-01-02T03:04:05.123456Z".
std::string FormatMicroTime(Clock::Wall::time_point t);
// Accepts RFC 3339 with or without fractional seconds, with "Z" or a numeric offset.
Result<Clock::Wall::time_point> ParseMicroTime(const std::string& text);

// The lock object: where the record lives. Not thread-safe; one elector owns it.
class LeaseLock {
 public:
  virtual ~LeaseLock() = default;
  // Reads the record (NotFound when the lease does not exist) and remembers its version for the
  // next Update.
  virtual Result<LeaderElectionRecord> Get() = 0;
  // Creates the lease with `record` (AlreadyExists when someone was faster).
  virtual Status Create(const LeaderElectionRecord& record) = 0;
  // Writes `record` conditionally on the version last read or written (Conflict when the lease
  // changed since). Fields of the lease it does not own are kept.
  virtual Status Update(const LeaderElectionRecord& record) = 0;
  // "namespace/name", for logs.
  virtual std::string Describe() const = 0;
};

// A Lease in the API server through `client` (which must outlive the lock).
class KubeLeaseLock final : public LeaseLock {
 public:
  KubeLeaseLock(Client& client, std::string ns, std::string name)
      : client_(client), ns_(std::move(ns)), name_(std::move(name)) {}

  Result<LeaderElectionRecord> Get() override;
  Status Create(const LeaderElectionRecord& record) override;
  Status Update(const LeaderElectionRecord& record) override;
  std::string Describe() const override { return ns_ + "/" + name_; }

  // Lease.spec <-> record; exposed for tests.
  static Json SpecFromRecord(const LeaderElectionRecord& record);
  static Result<LeaderElectionRecord> RecordFromLease(const Json& lease);

 private:
  Client& client_;
  const std::string ns_;
  const std::string name_;
  std::optional<Json> last_;  // the lease as last read or written
};

struct LeaderCallbacks {
  std::function<void()> on_started_leading;
  std::function<void()> on_stopped_leading;
  // The holder this candidate observes changed (to someone else or to itself).
  std::function<void(const std::string& identity)> on_new_leader;
};

struct LeaderElectionOptions {
  std::string identity;  // unique per candidate, e.g. the pod name
  std::chrono::nanoseconds lease_duration = std::chrono::seconds(15);
  std::chrono::nanoseconds renew_deadline = std::chrono::seconds(10);
  std::chrono::nanoseconds retry_period = std::chrono::seconds(2);
  // A follower waits retry_period * (1 + jitter * U[0,1)) between attempts.
  double retry_jitter = 0.2;
  bool release_on_stop = true;
  LeaderCallbacks callbacks;
  Clock* clock = nullptr;  // nullptr: Clock::Real(); must outlive the elector
  uint64_t seed = 0;       // jitter seed; 0 seeds from std::random_device
};

class LeaderElector {
 public:
  // InvalidArgument unless identity is set and lease_duration > renew_deadline >
  // retry_period * (1 + retry_jitter) > 0.
  static Result<std::unique_ptr<LeaderElector>> Create(std::unique_ptr<LeaseLock> lock,
                                                       LeaderElectionOptions options);

  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Campaigns until leading, then renews until leadership is lost or Stop() is called; calls
  // on_stopped_leading (if it led) and returns. Call at most once.
  void Run();
  // Thread-safe and idempotent; Run() releases the lease (if leading and release_on_stop) and
  // returns promptly.
  void Stop();

  bool IsLeader() const;
  // The holder last observed ("" when none).
  std::string GetLeader() const;

 private:
  LeaderElector(std::unique_ptr<LeaseLock> lock, LeaderElectionOptions options);

  enum class Attempt { kAcquired, kHeldByOther, kFailed };
  Attempt TryAcquireOrRenew();
  void Release();
  // Records what was read; the observation time moves only when the record changed. A changed
  // record is dated at its renewTime (mapped onto the local clock) when that lies between the
  // previous read and now: the renewal certainly happened in that interval, so the lease is
  // never judged expired before its holder's own renew deadline (lease_duration - renew_deadline
  // >= retry period of margin), yet a follower takes over within lease_duration of the holder's
  // last renewal instead of up to a retry period later.
  void Observe(const LeaderElectionRecord& record);
  // When the lease last observed expires for a follower.
  Clock::Steady::time_point ObservedExpiry() const;
  // Waits on the clock until `deadline` or Stop(); false when stopped.
  bool SleepUntil(Clock::Steady::time_point deadline);

  std::unique_ptr<LeaseLock> lock_;
  LeaderElectionOptions options_;
  Clock& clock_;
  std::mt19937_64 rng_;

  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable wake_;  // Stop()
  bool leading_ = false;          // guarded by mu_
  std::string observed_holder_;   // guarded by mu_

  // Run() thread only.
  std::optional<LeaderElectionRecord> observed_record_;
  Clock::Steady::time_point observed_time_;
  std::optional<Clock::Steady::time_point> last_read_time_;  // the read before the current one
  std::string reported_leader_;
};

}  // namespace sluice::kube
