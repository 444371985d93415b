// A leader-election candidate as its own process, for the leader election integration test:
// campaigns for one Lease through the real client and prints what happens, one line per event,
// "<CLOCK_MONOTONIC ns> <EVENT> <identity>", so the test (same machine, same monotonic clock)
// can measure takeover times exactly. SIGTERM or SIGINT stops it gracefully (the lease is
// released); SIGKILL is the crash case.
//
// Usage: leader_candidate KUBECONFIG NAMESPACE LEASE IDENTITY

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lib/kube/client.h"
#include "lib/kube/leader_election.h"

namespace {

std::mutex print_mu;

void Print(const std::string& event, const std::string& who) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
  std::lock_guard<std::mutex> lock(print_mu);
  std::printf("%lld %s %s\n", static_cast<long long>(ns), event.c_str(), who.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  using sluice::kube::Client;
  using sluice::kube::Config;
  using sluice::kube::KubeLeaseLock;
  using sluice::kube::LeaderElectionOptions;
  using sluice::kube::LeaderElector;

  if (argc != 5) {
    std::fprintf(stderr, "usage: %s KUBECONFIG NAMESPACE LEASE IDENTITY\n", argv[0]);
    return 2;
  }
  const std::string kubeconfig = argv[1];
  const std::string ns = argv[2];
  const std::string lease = argv[3];
  const std::string identity = argv[4];

  // Signals are taken by one thread with sigwait, so the elector is stopped outside a handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto config = Config::FromKubeconfig(kubeconfig);
  if (!config.ok()) {
    std::fprintf(stderr, "kubeconfig: %s\n", config.status().ToString().c_str());
    return 1;
  }
  auto client = Client::Create(*config);
  if (!client.ok()) {
    std::fprintf(stderr, "client: %s\n", client.status().ToString().c_str());
    return 1;
  }

  LeaderElectionOptions options;
  options.identity = identity;  // defaults: lease 15 s, renew deadline 10 s, retry 2 s
  options.callbacks.on_started_leading = [&] { Print("STARTED_LEADING", identity); };
  options.callbacks.on_stopped_leading = [&] { Print("STOPPED_LEADING", identity); };
  options.callbacks.on_new_leader = [&](const std::string& who) { Print("NEW_LEADER", who); };
  auto elector = LeaderElector::Create(std::make_unique<KubeLeaseLock>(**client, ns, lease),
                                       std::move(options));
  if (!elector.ok()) {
    std::fprintf(stderr, "elector: %s\n", elector.status().ToString().c_str());
    return 1;
  }

  std::thread stopper([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    Print("STOPPING", identity);
    (*elector)->Stop();
  });
  stopper.detach();

  Print("CAMPAIGNING", identity);
  (*elector)->Run();
  Print("EXITING", identity);
  return 0;
}
