// kubectl-sluice: `kubectl sluice COMMAND`, the rollout control of Sluice ModelDeployments.
// Installed on PATH as kubectl-sluice, kubectl finds it as a plugin.

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <iostream>

#include "lib/base/version.h"
#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "operator/kubectl-sluice/cli.h"
#include "operator/kubectl-sluice/commands.h"

using namespace sluice;
using namespace sluice::kubectl_sluice;

int main(int argc, char** argv) {
  // Output is for people and scripts: the client's own log lines (retries) go to stderr, and
  // only warnings.
  auto logger = spdlog::stderr_logger_mt("kubectl-sluice");
  logger->set_level(spdlog::level::warn);
  logger->set_pattern("%l: %v");
  spdlog::set_default_logger(logger);

  Result<Invocation> inv = ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  if (!inv.ok()) {
    std::cerr << "error: " << inv.status().message()
              << "\nRun 'kubectl sluice --help' for usage.\n";
    return kExitUsage;
  }
  if (inv->help) {
    std::cout << HelpText(inv->command);
    return kExitOk;
  }
  if (inv->command == Command::kVersion) {
    std::cout << VersionLine("kubectl-sluice") << "\n";
    return kExitOk;
  }

  Result<kube::Config> config = kube::Config::Load(inv->kubeconfig, inv->context);
  if (!config.ok()) {
    std::cerr << "error: loading the kubeconfig: " << config.status().message() << "\n";
    return kExitError;
  }
  config->user_agent = "kubectl-sluice/" + std::string(ProjectVersion());
  const std::string default_namespace = config->default_namespace;
  Result<std::unique_ptr<kube::Client>> client = kube::Client::Create(std::move(*config));
  if (!client.ok()) {
    std::cerr << "error: " << client.status().message() << "\n";
    return kExitError;
  }
  RunContext ctx{**client, default_namespace, std::cout, std::cerr, isatty(STDOUT_FILENO) == 1};
  return Run(*inv, ctx);
}
