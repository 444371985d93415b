#!/usr/bin/env bash
# The Sluice demo (`make demo` builds the binaries and the images first; this script builds
# nothing). A local cluster with a real node (etcd, kube-apiserver, controller-manager, scheduler,
# kubelet + containerd + runc, kube-proxy, CoreDNS; e2e/cluster/node-up.sh), and on it the fraud
# scenario narrated (e2e/scenario/fraud.sh --demo):
#   helm install of charts/sluice with the images just built; the operator Ready and leader;
#   the fraud sample applied unchanged, its pods fetching the model from an HTTP model repository
#   in the cluster, predictions checked against XGBoost's reference outputs;
#   version 2 promoted 10 % -> 50 % -> 100 % on the router's live metrics under load;
#   a faulty version 3 rolled back on its own; helm uninstall.
# The cluster is stopped on exit whatever happens, and the host checked to be as it was.
# State and logs: e2e/.work/demo. Needs root.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$root/e2e/.work/demo"
rm -rf "$work"
exec bash "$root/e2e/scenario/on-node.sh" --demo "$work"
