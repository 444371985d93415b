#include "operator/kubectl-sluice/cli.h"

#include <map>

#include "lib/base/duration.h"

namespace sluice::kubectl_sluice {
namespace {

struct CommandInfo {
  Command command;
  const char* name;
  bool needs_name;
  const char* summary;
  const char* usage;  // the command's own help, after the summary
};

const std::vector<CommandInfo>& Commands() {
  static const std::vector<CommandInfo> kCommands = {
      {Command::kGet, "get", false, "List ModelDeployments with their rollout state.",
       "Usage: kubectl sluice get [-n NAMESPACE | -A]\n"
       "\n"
       "Columns: NAME, PHASE, STABLE and CANARY revision (model version in parentheses),\n"
       "TRAFFIC (stable/canary percent), STEP (current/total canary steps), ANALYSIS (the\n"
       "last check's verdict) and AGE.\n"},
      {Command::kStatus, "status", true,
       "Show a ModelDeployment's rollout as a tree; optionally watch or wait for it.",
       "Usage: kubectl sluice status NAME [-n NAMESPACE] [--watch] [--wait [--timeout D]]\n"
       "\n"
       "Shows the revisions with their Deployments, ReplicaSets and Pods, the traffic weights,\n"
       "the current step and its pause, the last analysis against its thresholds, the\n"
       "conditions and the recent Events.\n"
       "\n"
       "  -w, --watch     print the tree again whenever the ModelDeployment changes\n"
       "      --wait      block until the rollout settles; the exit code says how:\n"
       "                    0 Healthy, 4 Degraded, 5 RolledBack, 6 timed out,\n"
       "                    3 the ModelDeployment does not exist or was deleted\n"
       "      --timeout D how long --wait waits (Go duration, e.g. 90s, 5m; default 10m)\n"
       "\n"
       "A phase counts only once the operator has observed the latest spec\n"
       "(status.observedGeneration = metadata.generation).\n"},
      {Command::kPromote, "promote", true,
       "End the current canary step now (--full: skip the remaining steps and analysis).",
       "Usage: kubectl sluice promote NAME [-n NAMESPACE] [--full]\n"
       "\n"
       "Sets the annotation sluice.dev/promote=true (or =full); the operator acts on it once\n"
       "and removes it.\n"},
      {Command::kAbort, "abort", true, "Roll the canary back to the stable revision now.",
       "Usage: kubectl sluice abort NAME [-n NAMESPACE]\n"
       "\n"
       "Sets sluice.dev/abort=true; the operator moves all traffic to the stable revision,\n"
       "marks the ModelDeployment RolledBack and removes the annotation. `retry` or a new\n"
       "spec starts again.\n"},
      {Command::kPause, "pause", true, "Hold the rollout at its current step.",
       "Usage: kubectl sluice pause NAME [-n NAMESPACE]\n"
       "\n"
       "Sets sluice.dev/pause=true; the rollout stays at its step (phase Paused) until\n"
       "`resume`.\n"},
      {Command::kResume, "resume", true, "Let a paused rollout continue.",
       "Usage: kubectl sluice resume NAME [-n NAMESPACE]\n"
       "\n"
       "Removes sluice.dev/pause.\n"},
      {Command::kRetry, "retry", true, "Roll a rolled-back revision out again from the first step.",
       "Usage: kubectl sluice retry NAME [-n NAMESPACE]\n"
       "\n"
       "Sets sluice.dev/retry=true; the operator acts on it once and removes it.\n"},
      {Command::kHistory, "history", true, "List how the latest rollouts ended.",
       "Usage: kubectl sluice history NAME [-n NAMESPACE]\n"
       "\n"
       "From status.history (the last 10): the revision, its model version, the result\n"
       "(Deployed, Promoted, RolledBack, Aborted, Superseded, Reverted), the reason and when.\n"},
      {Command::kVersion, "version", false, "Print the version.",
       "Usage: kubectl sluice version\n"},
  };
  return kCommands;
}

const CommandInfo* FindCommand(const std::string& name) {
  for (const CommandInfo& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

const CommandInfo* FindCommand(Command command) {
  for (const CommandInfo& c : Commands()) {
    if (command == c.command) return &c;
  }
  return nullptr;
}

constexpr char kGlobalFlags[] =
    "Flags (any command):\n"
    "      --kubeconfig PATH   the kubeconfig file (default: $KUBECONFIG, else in-cluster,\n"
    "                          else ~/.kube/config)\n"
    "      --context NAME      the kubeconfig context (default: its current-context)\n"
    "  -n, --namespace NS      the namespace (default: the context's)\n"
    "  -A, --all-namespaces    get: every namespace\n"
    "  -h, --help              help for a command\n";

constexpr char kExitCodes[] =
    "Exit codes:\n"
    "  0  done (status --wait: Healthy)\n"
    "  1  the API server refused the request or could not be reached\n"
    "  2  usage error: unknown command or flag, missing NAME\n"
    "  3  the ModelDeployment does not exist\n"
    "  4  status --wait: Degraded\n"
    "  5  status --wait: RolledBack\n"
    "  6  status --wait: timed out\n";

}  // namespace

std::string_view CommandName(Command command) {
  const CommandInfo* c = FindCommand(command);
  return c ? c->name : "";
}

std::string HelpText(Command command) {
  std::string out;
  if (const CommandInfo* c = FindCommand(command)) {
    out += std::string(c->summary) + "\n\n" + c->usage + "\n" + kGlobalFlags + "\n" + kExitCodes;
    return out;
  }
  out +=
      "kubectl sluice: rollouts of Sluice ModelDeployments.\n"
      "\n"
      "Usage: kubectl sluice COMMAND [NAME] [flags]\n"
      "\n"
      "Commands:\n";
  for (const CommandInfo& c : Commands()) {
    std::string name = c.name;
    name.resize(10, ' ');
    out += "  " + name + c.summary + "\n";
  }
  out += "\n";
  out += kGlobalFlags;
  out += "\n";
  out += kExitCodes;
  out += "\nRun `kubectl sluice COMMAND --help` for a command's flags.\n";
  return out;
}

Result<Invocation> ParseCommandLine(const std::vector<std::string>& args) {
  Invocation inv;
  std::vector<std::string> positional;
  bool flags_done = false;
  // Flags that take a value, by every spelling.
  enum class Valued { kKubeconfig, kContext, kNamespace, kTimeout };
  const std::map<std::string, Valued> valued = {{"--kubeconfig", Valued::kKubeconfig},
                                                {"--context", Valued::kContext},
                                                {"--namespace", Valued::kNamespace},
                                                {"-n", Valued::kNamespace},
                                                {"--timeout", Valued::kTimeout}};
  bool saw_full = false, saw_watch = false, saw_wait = false, saw_timeout = false, saw_all = false;

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.empty() || arg[0] != '-' || arg == "-") {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    std::string flag = arg;
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (arg.size() > 2 && arg[0] == '-' && arg[1] == 'n') {
      flag = "-n";  // -nNAMESPACE
      value = arg.substr(2);
    }
    if (auto it = valued.find(flag); it != valued.end()) {
      if (!value) {
        if (i + 1 >= args.size()) return InvalidArgument(flag + " needs a value");
        value = args[++i];
      }
      switch (it->second) {
        case Valued::kKubeconfig:
          inv.kubeconfig = *value;
          break;
        case Valued::kContext:
          inv.context = *value;
          break;
        case Valued::kNamespace:
          if (value->empty()) return InvalidArgument(flag + " needs a value");
          inv.namespace_ = *value;
          break;
        case Valued::kTimeout: {
          auto d = ParseGoDuration(*value);
          if (!d.ok()) return InvalidArgument("--timeout: " + d.status().message());
          if (d->count() <= 0) return InvalidArgument("--timeout must be positive");
          inv.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
          saw_timeout = true;
          break;
        }
      }
      continue;
    }
    if (value) return InvalidArgument(flag + " takes no value");
    if (flag == "-h" || flag == "--help") {
      inv.help = true;
    } else if (flag == "-A" || flag == "--all-namespaces") {
      inv.all_namespaces = saw_all = true;
    } else if (flag == "-w" || flag == "--watch") {
      inv.watch = saw_watch = true;
    } else if (flag == "--wait") {
      inv.wait = saw_wait = true;
    } else if (flag == "--full") {
      inv.full = saw_full = true;
    } else if (flag == "--version") {
      positional.insert(positional.begin(), "version");
    } else {
      return InvalidArgument("unknown flag " + flag);
    }
  }

  if (positional.empty()) {
    if (inv.help) return inv;
    return InvalidArgument("no command given");
  }
  const CommandInfo* info = FindCommand(positional[0]);
  if (info == nullptr) return InvalidArgument("unknown command \"" + positional[0] + "\"");
  inv.command = info->command;
  if (inv.help) return inv;  // `kubectl sluice status --help` needs no NAME

  const size_t want = info->needs_name ? 2 : 1;
  if (positional.size() < want) {
    return InvalidArgument(std::string(info->name) + " needs the ModelDeployment's NAME");
  }
  if (positional.size() > want) {
    return InvalidArgument("unexpected argument \"" + positional[want] + "\"");
  }
  if (info->needs_name) inv.name = positional[1];

  // Flags that belong to one command only.
  if (saw_full && inv.command != Command::kPromote) {
    return InvalidArgument("--full applies to promote only");
  }
  if ((saw_watch || saw_wait) && inv.command != Command::kStatus) {
    return InvalidArgument("--watch and --wait apply to status only");
  }
  if (saw_timeout && !saw_wait) return InvalidArgument("--timeout applies to status --wait only");
  if (saw_all && inv.command != Command::kGet) {
    return InvalidArgument("-A/--all-namespaces applies to get only");
  }
  if (saw_all && inv.namespace_) {
    return InvalidArgument("-n and -A cannot be used together");
  }
  return inv;
}

}  // namespace sluice::kubectl_sluice
