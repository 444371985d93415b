#pragma once

// The command line of kubectl-sluice (`kubectl sluice ...`): the commands, their flags, their
// help texts and the exit codes scripts can rely on. Pure: no I/O, tested on argv alone.
//
// Flags follow kubectl's: --kubeconfig, --context, -n/--namespace, -A/--all-namespaces, and may
// appear before or after the command. `--flag value` and `--flag=value` are both accepted.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/status.h"

namespace sluice::kubectl_sluice {

// Exit codes. Stable: scripts test them.
enum ExitCode : int {
  kExitOk = 0,          // done; `status --wait`: Healthy
  kExitError = 1,       // the API server refused or could not be reached
  kExitUsage = 2,       // unknown command or flag, missing NAME
  kExitNotFound = 3,    // the ModelDeployment does not exist (or was deleted while watched)
  kExitDegraded = 4,    // `status --wait`: phase Degraded
  kExitRolledBack = 5,  // `status --wait`: phase RolledBack
  kExitTimeout = 6,     // `status --wait`: --timeout passed first
};

enum class Command {
  kNone,
  kGet,
  kStatus,
  kPromote,
  kAbort,
  kPause,
  kResume,
  kRetry,
  kHistory,
  kVersion
};

struct Invocation {
  Command command = Command::kNone;
  std::string name;  // the ModelDeployment; empty for get/version
  bool help = false;

  // Connection and scope.
  std::string kubeconfig;  // empty: $KUBECONFIG, in-cluster, ~/.kube/config
  std::string context;
  std::optional<std::string> namespace_;  // empty: the context's namespace
  bool all_namespaces = false;

  // status
  bool watch = false;
  bool wait = false;
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // --wait's deadline
  // promote
  bool full = false;
};

// Parses argv without the program name. InvalidArgument (exit kExitUsage) names the problem.
Result<Invocation> ParseCommandLine(const std::vector<std::string>& args);

// The help text: the overview with no command, else the command's own.
std::string HelpText(Command command);

std::string_view CommandName(Command command);

}  // namespace sluice::kubectl_sluice
