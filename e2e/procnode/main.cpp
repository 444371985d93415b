// sluice-procnode: a minimal kubelet for local end-to-end tests; see README.md and procnode.h.

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lib/kube/client.h"
#include "lib/kube/config.h"
#include "e2e/procnode/procnode.h"

extern char** environ;

namespace {

using sluice::Status;

constexpr char kUsage[] = R"(usage: sluice-procnode [flags]
Registers a Node and runs the pods scheduled to it as local processes.

  --kubeconfig=PATH          API access (default: $KUBECONFIG, in-cluster, ~/.kube/config)
  --node-name=NAME           the Node to register (default proc-0)
  --bin-dir=DIR[:DIR...]     where container commands are looked up by base name; repeatable
  --work-dir=DIR             pod logs under DIR/pods (default ./procnode-work)
  --pod-cidr=CIDR            pod addresses; must be local here (default 10.244.0.0/16)
  --pod-kubeconfig=PATH      set KUBECONFIG=PATH in every pod's environment
  --restart-backoff-ms=N     first crash-loop wait (default 1000), doubling up to
  --max-restart-backoff-ms=N (default 30000)
  --lease-renew-ms=N         Lease renewal period (default 10000)
  --cpu=Q --memory=Q --max-pods=N   the Node's capacity (default 16, 64Gi, 110)
  --log-level=LEVEL          trace|debug|info|warn|error (default info)
)";

bool ParseFlag(const std::string& arg, std::string& name, std::string& value) {
  if (arg.rfind("--", 0) != 0) return false;
  const auto eq = arg.find('=');
  if (eq == std::string::npos) return false;
  name = arg.substr(2, eq - 2);
  value = arg.substr(eq + 1);
  return true;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "sluice-procnode: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  sluice::procnode::ProcNodeOptions options;
  options.work_dir = "procnode-work";
  std::string kubeconfig, cidr = "10.244.0.0/16", log_level = "info";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::string name, value;
    if (!ParseFlag(arg, name, value))
      return Fail("bad argument '" + arg + "' (flags are --name=value)");
    try {
      if (name == "kubeconfig") {
        kubeconfig = value;
      } else if (name == "node-name") {
        options.node_name = value;
      } else if (name == "bin-dir") {
        size_t start = 0;
        while (start <= value.size()) {
          const size_t colon = value.find(':', start);
          const std::string dir = value.substr(start, colon - start);
          if (!dir.empty()) options.launch.bin_dirs.push_back(dir);
          if (colon == std::string::npos) break;
          start = colon + 1;
        }
      } else if (name == "work-dir") {
        options.work_dir = value;
      } else if (name == "pod-cidr") {
        cidr = value;
      } else if (name == "pod-kubeconfig") {
        options.launch.pod_kubeconfig = std::filesystem::absolute(value).string();
      } else if (name == "restart-backoff-ms") {
        options.restart_backoff_base = std::chrono::milliseconds(std::stoll(value));
      } else if (name == "max-restart-backoff-ms") {
        options.restart_backoff_max = std::chrono::milliseconds(std::stoll(value));
      } else if (name == "lease-renew-ms") {
        options.lease_renew_period = std::chrono::milliseconds(std::stoll(value));
      } else if (name == "cpu") {
        options.cpu = value;
      } else if (name == "memory") {
        options.memory = value;
      } else if (name == "max-pods") {
        options.max_pods = std::stoi(value);
      } else if (name == "log-level") {
        log_level = value;
      } else {
        return Fail("unknown flag --" + name + "\n" + kUsage);
      }
    } catch (const std::exception&) {
      return Fail("bad value for --" + name + ": '" + value + "'");
    }
  }
  if (options.launch.bin_dirs.empty()) return Fail("--bin-dir is required");
  auto parsed = sluice::procnode::ParseCidr(cidr);
  if (!parsed.ok()) return Fail(parsed.status().message());
  options.pod_cidr = *parsed;
  options.work_dir = std::filesystem::absolute(options.work_dir).string();
  for (char** e = environ; e && *e; ++e) options.launch.base_env.emplace_back(*e);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ procnode %v");

  // Termination signals are taken by sigwait below; every thread inherits the mask (children
  // reset it).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = sluice::kube::Config::Load(kubeconfig);
  if (!config.ok()) return Fail(config.status().ToString());
  config->user_agent = "sluice-procnode/" + options.node_name;
  auto client = sluice::kube::Client::Create(*config);
  if (!client.ok()) return Fail(client.status().ToString());
  auto node = sluice::procnode::ProcNode::Create(**client, options);
  if (!node.ok()) return Fail(node.status().ToString());
  if (Status s = (*node)->Start(); !s.ok()) return Fail(s.ToString());
  spdlog::info("running; pod logs in {}/pods", options.work_dir);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: stopping every pod process", sig);
  (*node)->Stop();
  return 0;
}
