#pragma once

// How a pod's container becomes a process: which binary, which argv, which environment. Pure
// (the binary lookup asks the file system only), so it is unit-tested without a cluster.

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/base/status.h"

namespace sluice::procnode {

struct LaunchOptions {
  // Folders searched, in order, for the file named by the base name of command[0].
  std::vector<std::string> bin_dirs;
  // When set, the process gets KUBECONFIG=<this> (it replaces in-cluster credentials).
  std::string pod_kubeconfig;
  // Variables every process inherits (PATH, HOME, ...), "NAME=value"; the pod's env wins.
  std::vector<std::string> base_env;
  // The value of key `key` of Secret `name` in the pod's namespace (valueFrom.secretKeyRef);
  // NotFound when the Secret or the key is absent. Unset: secretKeyRef is refused.
  std::function<Result<std::string>(const std::string& name, const std::string& key)> secret_value;
  // Where the pod's emptyDir volumes live (one folder per volume, kept across container
  // restarts). Processes share the host's file system, so a container path under a volume's
  // mountPath, in args and env values, is rewritten to the volume's folder. Empty: emptyDir
  // mounts are left as they are.
  std::string volumes_dir;
};

struct Launch {
  std::string binary;             // absolute path
  std::vector<std::string> argv;  // argv[0] is the binary
  std::vector<std::string> env;   // "NAME=value", complete
};

// Finds `command` (a name or a path; only the base name counts) in `bin_dirs`. NotFound names
// every folder looked in.
Result<std::string> ResolveBinary(const std::string& command,
                                  const std::vector<std::string>& bin_dirs);

// The launch for the pod's only container: command[0] mapped to a binary, the rest of command
// and then args, plus --http-address=<pod_ip>; env entries with literal values and fieldRef
// (metadata.name, metadata.namespace, metadata.uid, spec.nodeName, spec.serviceAccountName,
// status.podIP, status.hostIP) and secretKeyRef (through options.secret_value; an optional
// reference to a missing Secret or key is left out); $(NAME) references in args and env values
// expand as the kubelet expands them; emptyDir mount paths map to options.volumes_dir. Fails
// with InvalidArgument/Unimplemented on what cannot run here (no command, several containers,
// configMapKeyRef, ...), and with NotFound for a required Secret key that is missing.
Result<Launch> BuildLaunch(const nlohmann::json& pod, const std::string& pod_ip,
                           const std::string& host_ip, const LaunchOptions& options);

// $(NAME) expansion with the kubelet's rules: $$ escapes, unknown references stay as written.
std::string ExpandReferences(const std::string& text,
                             const std::vector<std::pair<std::string, std::string>>& vars);

}  // namespace sluice::procnode
