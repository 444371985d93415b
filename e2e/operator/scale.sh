#!/usr/bin/env bash
# scale.sh [COUNT] [-- extra sluice-operator-bench flags]
# Measures sluice-operator at scale on a local kwok cluster (real kube-apiserver,
# kube-controller-manager and kube-scheduler; kwok makes pods Ready): apply -> Healthy p50/p99,
# time for COUNT (default 1000) ModelDeployments to all reach Healthy, operator RSS and CPU at
# rest, reconcile p99 from the operator's own histogram. Builds nothing: run `make build` (or
# point BUILD at a build folder) first. The cluster lives in e2e/.work/scale and is removed on exit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/${BUILD:-build}"
count="${1:-1000}"
shift || true
[[ "${1:-}" == "--" ]] && shift

for b in "$build/operator/sluice-operator" "$build/e2e/operator/sluice-operator-bench"; do
  [[ -x "$b" ]] || { echo "scale.sh: $b is missing; build it first (make build)" >&2; exit 1; }
done
work="$root/e2e/.work/scale"
bash "$root/e2e/cluster/kwok-down.sh" "$work" >/dev/null 2>&1 || true
rm -rf "$work"
mkdir -p "$work"
trap 'bash "$root/e2e/cluster/kwok-down.sh" "$work" >/dev/null 2>&1 || true' EXIT
# Enough fake nodes for COUNT x (server + router) pods at kwok's 110 pods per node.
nodes=$(( (count * 2 + 99) / 100 + 1 ))
echo "starting a kwok cluster with $nodes fake nodes in ${work#"$root"/} ..."
bash "$root/e2e/cluster/kwok-up.sh" "$work" "$nodes" >"$work/kwok-up.log"
"$build/e2e/operator/sluice-operator-bench" --kubeconfig "$work/kubeconfig" \
  --operator-bin "$build/operator/sluice-operator" --crd-dir "$root/crds" \
  --count "$count" --json "$work/report.json" --log "$work/operator.log" "$@"
echo "report: ${work#"$root"/}/report.json"
