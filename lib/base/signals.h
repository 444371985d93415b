#pragma once

// The stop signals of every Sluice binary. SIGTERM (Kubernetes stopping the pod) and SIGINT
// (Ctrl-C) are blocked before any thread starts, so no worker thread is ever interrupted, and are
// taken on one thread with sigwait. SIGPIPE is ignored: a write to a closed socket is an error
// the writer handles, not the end of the process.

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace sluice {

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it starts afterwards,
// and ignores SIGPIPE. Call first thing in main.
void BlockStopSignals();

// Waits until SIGTERM or SIGINT arrives (blocked by BlockStopSignals) and returns it.
int WaitForStopSignal();

// "SIGTERM", "SIGINT" or the number.
const char* StopSignalName(int sig);

// Counts stop signals on a thread of its own, for mains that react in stages (the first signal
// starts a drain, a second one cuts it short). Started once and never destroyed: its thread may
// still sit in sigwait while the process exits.
class StopSignalWatch {
 public:
  // Starts the watching thread on the first call and returns the one watch; BlockStopSignals must
  // have run.
  static StopSignalWatch& Start();

  // Waits until `count` signals have arrived or `deadline` passes; true if they arrived.
  bool WaitFor(int count, std::chrono::steady_clock::time_point deadline);
  int count();
  // The most recent signal, 0 before the first.
  int last();

 private:
  StopSignalWatch() = default;
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  int signals_ = 0;  // guarded by mu_
  int last_ = 0;     // guarded by mu_
};

}  // namespace sluice
