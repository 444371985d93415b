// sluice-operator: reconciles ModelDeployments and FeatureViews. See operator/operator.h for
// the lifecycle and `sluice-operator --help` for the flags.

#include <malloc.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "lib/base/logging.h"
#include "lib/base/signals.h"
#include "lib/base/version.h"
#include "operator/operator.h"
#include "operator/options.h"

int main(int argc, char** argv) {
  // glibc gives each thread that allocates under contention an arena of its own (up to eight per
  // core) and hands little of it back; the operator's threads mostly wait on the network, so two
  // arenas cost no throughput and keep memory freed after a burst from staying resident.
  // MALLOC_ARENA_MAX in the environment still wins.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  // SIGTERM and SIGINT are taken by one thread through sigwait, so no other thread is ever
  // interrupted by them; they are blocked before any other thread exists.
  sluice::BlockStopSignals();

  auto options = sluice::app::ParseFlags(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "sluice-operator: %s\n\n%s", options.status().message().c_str(),
                 sluice::app::Usage().c_str());
    return 2;
  }
  if (options->help) {
    std::fputs(sluice::app::Usage().c_str(), stdout);
    return 0;
  }
  if (options->version) {
    std::puts(sluice::VersionLine("sluice-operator").c_str());
    return 0;
  }
  auto log_format = sluice::ParseLogFormat(options->log_format);
  if (!log_format.ok()) {
    std::fprintf(stderr, "sluice-operator: %s\n", log_format.status().message().c_str());
    return 2;
  }
  if (auto s = sluice::ConfigureLogging(*log_format, options->log_level); !s.ok()) {
    std::fprintf(stderr, "sluice-operator: %s\n", s.message().c_str());
    return 2;
  }

  auto op = sluice::app::Operator::Create(*std::move(options));
  if (!op.ok()) {
    spdlog::critical("sluice-operator cannot start: {}", op.status().ToString());
    return 1;
  }
  sluice::app::Operator* running = op->get();
  std::thread signal_thread([running] {
    const int sig = sluice::WaitForStopSignal();
    spdlog::info("received {}: shutting down", sluice::StopSignalName(sig));
    running->Stop();
  });

  sluice::Status result = running->Run();
  if (result.code() == sluice::StatusCode::kTimeout) {
    // A reconcile is still running on a thread that cannot be joined: leave without destructors.
    spdlog::critical("sluice-operator exiting: {}", result.ToString());
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }
  // Run() may also end without a signal (lost Lease); wake the signal thread so it can be joined.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  op->reset();
  if (!result.ok()) {
    spdlog::critical("sluice-operator exiting: {}", result.ToString());
    return 1;
  }
  return 0;
}
