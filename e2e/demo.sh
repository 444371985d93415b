#!/usr/bin/env bash
# The Sluice demo (`make demo`, which builds everything first; this script builds nothing).
# Starts a local kube-apiserver + etcd in e2e/.work/demo, shows the cluster, runs the operator
# demo, and stops the cluster on exit whatever happens.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/e2e/cluster/lib.sh"

work="$root/e2e/.work/demo"
bin="$(sluice_k8s_bin kube-apiserver etcd kubectl)"
export KUBECONFIG="$work/kubeconfig"
kubectl() { "$bin/kubectl" "$@"; }

if [[ -t 1 ]]; then
  step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  step() { printf '\n== %s\n' "$*"; }
fi

stop_cluster() {
  step "stopping the local cluster"
  bash "$root/e2e/cluster/down.sh" "$work"
}

# The operator part of the demo: install CRDs, start sluice-operator against $KUBECONFIG, apply a
# ModelDeployment and watch it roll out. Runs with the cluster up and KUBECONFIG set.
run_operator_demo() {
  step "operator demo"
  echo "(the operator is not part of this build yet; the cluster above is what it will run against)"
}

# A previous run that was killed hard may have left its processes (down.sh stops only those);
# each demo then starts from an empty cluster.
bash "$root/e2e/cluster/down.sh" "$work" >/dev/null 2>&1 || true
rm -rf "$work"
step "starting kube-apiserver + etcd on 127.0.0.1 (data in ${work#"$root"/})"
bash "$root/e2e/cluster/up.sh" "$work" >/dev/null
trap stop_cluster EXIT

step "kubectl get --raw /version"
kubectl get --raw /version
echo
step "kubectl get namespaces"
kubectl get namespaces

run_operator_demo
