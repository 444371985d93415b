#!/usr/bin/env bash
# on-node.sh [--demo] [OUT]: the fraud scenario (fraud.sh) on a local cluster with a real node.
# SLUICE_SCENARIO=gitops runs gitops.sh instead (Sluice installed and rolled out by Argo CD from Git).
# Brings the node up with e2e/cluster/node-up.sh (the images of `make images` imported into its
# containerd), runs the scenario with the host reaching Service IPs through kube-proxy, tears the
# node down whatever happened, and checks the host is as it was. One real node per machine: a
# second run waits for the first (flock). OUT (default: a temporary folder, removed when all
# passed) keeps the node's state and logs and the scenario's report. Needs root.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$repo/e2e/cluster/lib.sh"
source "$repo/e2e/cluster/host-state.sh"

demo=()
if [[ "${1:-}" == "--demo" ]]; then
  demo=(--demo)
  shift
fi
[[ "$(id -u)" -eq 0 ]] || { echo "e2e/scenario: the real node needs root (kubelet, containerd, iptables)" >&2; exit 1; }
own_dir=0
if [[ $# -eq 0 ]]; then own_dir=1; fi
dir="${1:-$(mktemp -d /tmp/sluice-scenario.XXXXXX)}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
node="$dir/node"

exec 8>/tmp/sluice-node.lock
flock 8

before="$(sluice_host_state "$node")"
down_done=0
ok=0
finish() {
  local rc=$?
  if ((!down_done)); then
    down_done=1
    sluice_node_down_checked "$node" "$before" "$dir/node-down.log" || rc=1
  fi
  if ((rc == 0 && ok && own_dir)); then
    rm -rf "$dir"
  elif ((rc != 0 || !ok)); then
    echo "state and logs: $dir" >&2
  fi
  exit "$rc"
}
trap finish EXIT

start=$SECONDS
bash "$repo/e2e/cluster/node-up.sh" "$node" >"$dir/node-up.log" 2>&1 || { tail -n 40 "$dir/node-up.log" >&2; exit 1; }
up_s=$((SECONDS - start))
echo "local cluster with a real node up in ${up_s}s (log: $dir/node-up.log)"
set -a
# shellcheck disable=SC1091
source "$node/env"
set +a
export KUBECONFIG="$node/kubeconfig"
export KUBECTL="$SLUICE_K8S_BIN/kubectl" HELM="$SLUICE_K8S_BIN/helm" SLUICE_REACH=clusterip
"$KUBECTL" get nodes -o wide

case "${SLUICE_SCENARIO:-fraud}" in
  fraud) bash "$here/fraud.sh" "${demo[@]}" "$dir/scenario" ;;
  gitops) bash "$here/gitops.sh" "$dir/scenario" ;;
  *) echo "e2e/scenario: SLUICE_SCENARIO is fraud or gitops, not '$SLUICE_SCENARIO'" >&2; exit 2 ;;
esac
echo "node up ${up_s}s" >>"$dir/scenario/report.txt"
echo
echo "== figures ($dir/scenario/report.txt)"
cat "$dir/scenario/report.txt"
ok=1
