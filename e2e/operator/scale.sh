#!/usr/bin/env bash
# scale.sh [COUNT] [-- extra sluice-operator-bench flags]
# Measures sluice-operator at scale: apply -> Healthy p50/p99, the time for COUNT (default 1000)
# ModelDeployments to all reach Healthy, operator RSS and CPU at rest, and the reconcile p99 from
# the operator's own histogram.
#   SCALE_CLUSTER=kwok (default): a kwok cluster (real kube-apiserver, kube-controller-manager and
#     kube-scheduler; kwok makes pods Ready), so apply -> Healthy includes the ReplicaSets and pods
#     the controller manager creates.
#   SCALE_CLUSTER=bare: kube-apiserver + etcd only; the bench reports Deployments Ready itself
#     (--fake-kubelet), which isolates the operator from the controller manager's pace.
# `-- --baseline` runs no operator: the bench creates what the first reconciles would and times the
# cluster alone on those objects (the floor the operator's figures compare with; README.md).
# Builds nothing: run `make build` first (BUILD names another build folder). The cluster lives in
# e2e/.work/scale and is stopped on exit; the report stays in e2e/.work/scale/report.json, the API server's
# metrics at the end in e2e/.work/scale/apiserver-metrics.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/${BUILD:-build}"
count="${1:-1000}"
shift || true
[[ "${1:-}" == "--" ]] && shift
cluster="${SCALE_CLUSTER:-kwok}"

for b in "$build/operator/sluice-operator" "$build/e2e/operator/sluice-operator-bench"; do
  [[ -x "$b" ]] || { echo "scale.sh: $b is missing; build it first (make build)" >&2; exit 1; }
done
work="$root/e2e/.work/scale"
stop() {
  bash "$root/e2e/cluster/kwok-down.sh" "$work" >/dev/null 2>&1 || true
  bash "$root/e2e/cluster/down.sh" "$work" >/dev/null 2>&1 || true
}
stop
rm -rf "$work"
mkdir -p "$work"
trap stop EXIT
extra=()
case "$cluster" in
  kwok)
    # Enough fake nodes for COUNT x (server + router) pods at kwok's 110 pods per node.
    nodes=$(( (count * 2 + 99) / 100 + 1 ))
    echo "starting a kwok cluster with $nodes fake nodes in ${work#"$root"/} ..."
    bash "$root/e2e/cluster/kwok-up.sh" "$work" "$nodes" >"$work/cluster-up.log"
    ;;
  bare)
    echo "starting kube-apiserver + etcd in ${work#"$root"/} ..."
    bash "$root/e2e/cluster/up.sh" "$work" >"$work/cluster-up.log"
    extra+=(--fake-kubelet)
    ;;
  *)
    echo "scale.sh: SCALE_CLUSTER must be kwok or bare" >&2
    exit 2
    ;;
esac
# cpu_seconds: "name seconds" for every process of the cluster (their command lines name $work).
cpu_seconds() {
  local tck pid comm
  tck=$(getconf CLK_TCK)
  for pid in $(pgrep -f -- "$work/" || true); do
    [[ -r "/proc/$pid/stat" ]] || continue
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    awk -v c="$comm" -v t="$tck" '{sub(/^.*\) /, ""); printf "%s %.1f\n", c, ($12 + $13) / t}' \
      "/proc/$pid/stat" 2>/dev/null || true
  done
}
cpu_seconds >"$work/cpu-before.txt"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$build/e2e/operator/sluice-operator-bench" --kubeconfig "$work/kubeconfig" \
  --operator-bin "$build/operator/sluice-operator" --crd-dir "$root/crds" \
  --count "$count" --json "$work/report.json" --log "$work/operator.log" "${extra[@]}" "$@"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
cpu_seconds >"$work/cpu-after.txt"
# The API server's own counters (requests by resource and verb, their durations) for a closer look.
kubectl --kubeconfig "$work/kubeconfig" get --raw /metrics >"$work/apiserver-metrics.txt" 2>/dev/null || true
echo "CPU seconds the cluster's processes used during the run (the operator's are in the report):"
awk 'NR == FNR { before[$1] += $2; next } { after[$1] += $2 }
     END { for (c in after) printf "  %-24s %7.1f\n", c, after[c] - before[c] }' \
  "$work/cpu-before.txt" "$work/cpu-after.txt" | sort -k2 -nr
echo "report: ${work#"$root"/}/report.json"
