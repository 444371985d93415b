#include "lib/base/signals.h"

#include <pthread.h>
#include <signal.h>

#include <thread>

namespace sluice {
namespace {

sigset_t StopSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockStopSignals() {
  const sigset_t set = StopSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForStopSignal() {
  const sigset_t set = StopSet();
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) == 0) return sig;
  }
}

const char* StopSignalName(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "signal";
  }
}

StopSignalWatch& StopSignalWatch::Start() {
  // Never destroyed (see the header); held by a static so it stays reachable, not leaked.
  static StopSignalWatch* const watch = [] {
    auto* w = new StopSignalWatch;
    std::thread([w] { w->Run(); }).detach();
    return w;
  }();
  return *watch;
}

void StopSignalWatch::Run() {
  while (true) {
    const int sig = WaitForStopSignal();
    std::lock_guard<std::mutex> lock(mu_);
    ++signals_;
    last_ = sig;
    cv_.notify_all();
    // Nobody waits for more than two.
    if (signals_ >= 2) return;
  }
}

bool StopSignalWatch::WaitFor(int count, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, deadline, [&] { return signals_ >= count; });
}

int StopSignalWatch::count() {
  std::lock_guard<std::mutex> lock(mu_);
  return signals_;
}

int StopSignalWatch::last() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

}  // namespace sluice
