#pragma once

// Runs one parsed kubectl-sluice command against the API server and returns its exit code
// (cli.h). Reads go through the client's retrying reads; the control commands are one merge
// patch of the ModelDeployment's annotations, which the operator acts on (controllers/rollout).

#include <ostream>
#include <string>

#include "lib/kube/client.h"
#include "operator/kubectl-sluice/cli.h"

namespace sluice::kubectl_sluice {

struct RunContext {
  kube::Client& client;
  std::string default_namespace;  // the kubeconfig context's
  std::ostream& out;
  std::ostream& err;
  // --watch clears the screen between renders on a terminal; elsewhere renders are appended.
  bool terminal = false;
};

int Run(const Invocation& inv, RunContext& ctx);

}  // namespace sluice::kubectl_sluice
