#!/usr/bin/env bash
# node-down.sh DIR — stops what node-up.sh DIR started and puts the host back as DIR/host-state
# recorded it: pods are deleted first so the kubelet tears down their networks and volumes, then
# kube-proxy, kubelet, coredns, containerd (and its shims), the scheduler and controller-manager,
# then down.sh DIR (kube-apiserver, etcd), then the host clean-up. Afterwards: no KUBE-* or CNI-*
# iptables chains, no /kubepods cgroups, no mounts under DIR, no slnode0/slcni0 bridges, no CNI
# netns or cache files of this node, and the sysctls as they were. Keeps DIR's data; idempotent.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
[[ -d "$1" ]] || exit 0
dir="$(cd "$1" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_BRIDGE=slnode0
CNI_BRIDGE=slcni0
CNI_NETWORK=sluice-node
# shellcheck disable=SC1091
[[ -f "$dir/node-env" ]] && source "$dir/node-env"
# shellcheck disable=SC1091
[[ -f "$dir/env" ]] && source "$dir/env"
ctrd="$dir/node/containerd"
sock="${CONTAINERD_SOCK:-$ctrd/containerd.sock}"
ctr=(ctr --address "$sock" --namespace k8s.io)
problems=0

# Pods go through the kubelet so their sandboxes' CNI DEL and volume unmounts run.
if [[ -n "${KUBELET_PID:-}" && -d "/proc/$KUBELET_PID" && -f "$dir/kubeconfig" ]]; then
  kubectl=("${SLUICE_K8S_BIN:-$(sluice_k8s_bin kubectl)}/kubectl" --kubeconfig "$dir/kubeconfig")
  # Nothing recreates or reschedules them meanwhile.
  sluice_stop_pid "${KCM_PID:-}" "$dir" kube-controller-manager
  sluice_stop_pid "${SCHEDULER_PID:-}" "$dir" kube-scheduler
  "${kubectl[@]}" delete pods --all --all-namespaces --grace-period=2 --wait=false >/dev/null 2>&1
  # A pod object goes once the kubelet has stopped its containers and its sandbox (CNI DEL) and
  # unmounted its volumes; the stopped containers themselves are removed below.
  for ((i = 0; i < 300; i++)); do
    [[ -z "$("${kubectl[@]}" get pods -A --no-headers 2>/dev/null)" ]] && break
    sleep 0.2
  done
fi
sluice_stop_pid "${PROXY_PID:-}" "$dir" kube-proxy
sluice_stop_pid "${KUBELET_PID:-}" "$dir" kubelet
sluice_stop_pid "${COREDNS_PID:-}" "$dir" coredns
sluice_stop_pid "${KCM_PID:-}" "$dir" kube-controller-manager
sluice_stop_pid "${SCHEDULER_PID:-}" "$dir" kube-scheduler

# Whatever the kubelet left running: tasks killed and deleted through containerd, then
# containerd, then any shim still serving it (a shim outlives containerd by design).
if [[ -S "$sock" ]]; then
  for c in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks kill -s SIGKILL "$c" >/dev/null 2>&1
  done
  sleep 0.5
  for c in $("${ctr[@]}" containers ls -q 2>/dev/null); do
    "${ctr[@]}" tasks delete -f "$c" >/dev/null 2>&1
    "${ctr[@]}" containers delete "$c" >/dev/null 2>&1
  done
fi
# Pids (kubelet, containerd, ...) node-up.sh started before it failed (it writes them when it gives up).
if [[ -f "$dir/node-env.partial" ]]; then
  # shellcheck disable=SC1091
  source "$dir/node-env.partial"
  # Last started first: kube-apiserver goes after its clients.
  for pid in $(printf '%s\n' ${NODE_PIDS:-} | tac); do sluice_stop_pid "$pid" "$dir"; done
fi
sluice_stop_pid "${CONTAINERD_PID:-}" "$dir" containerd
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" 2>/dev/null); do
  sluice_stop_pid "$pid" "$sock" containerd-shim
done
# kube-apiserver and etcd, while the node IP kube-apiserver listens on still exists: without it
# its shutdown waits 20 s for removing its own endpoint through that address.
bash "$here/down.sh" "$dir" >/dev/null

# iptables: kube-proxy removes its own rules; then any KUBE-*/CNI-* chain left (kubelet, CNI) in
# both backends.
if [[ -f "${PROXY_CONFIG:-$dir/node/kube-proxy.yaml}" && -n "${SLUICE_K8S_BIN:-}" ]]; then
  "$SLUICE_K8S_BIN/kube-proxy" --cleanup --config="${PROXY_CONFIG:-$dir/node/kube-proxy.yaml}" \
    >"$dir/logs/kube-proxy-cleanup.log" 2>&1
fi
sweep_chains() {
  local ipt="$1" table chain rule tables
  command -v "$ipt-save" >/dev/null || return 0
  # Only tables that exist and hold such a chain: naming a table to iptables-legacy creates it.
  tables="$("$ipt-save" 2>/dev/null | awk '/^\*/ {t = substr($1, 2)} /^:(KUBE|CNI)-/ {print t}' | sort -u)"
  for table in $tables; do
    # Rules in any chain that jump to ours, then our chains.
    "$ipt-save" -t "$table" 2>/dev/null | grep -E '^-A .* -j (KUBE-|CNI-)' | sed 's/^-A /-D /' |
      while read -r rule; do eval "$ipt -t $table $rule" 2>/dev/null; done
    for chain in $("$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p'); do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null
    done
    for chain in $("$ipt-save" -t "$table" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p'); do
      "$ipt" -t "$table" -X "$chain" 2>/dev/null
    done
  done
}
for ipt in iptables ip6tables iptables-legacy ip6tables-legacy; do sweep_chains "$ipt"; done
while iptables -D FORWARD -i "$CNI_BRIDGE" ! -o "$CNI_BRIDGE" -m comment --comment sluice-node -j DROP 2>/dev/null; do :; done

# Mounts under DIR (the kubelet's bind mount of its root dir, volumes, sandbox shm, rootfs),
# deepest first.
for ((i = 0; i < 5; i++)); do
  mounts="$(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)"
  [[ -z "$mounts" ]] && break
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done <<<"$mounts"
done

# cgroups the kubelet and runc created (cgroupfs driver), deepest first.
for root in /sys/fs/cgroup/*/; do
  [[ -d "$root/kubepods" ]] || continue
  find "$root/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
  [[ -d "$root/kubepods" ]] && { echo "e2e/cluster: could not remove $root/kubepods" >&2; problems=1; }
done

# Network: the bridges (veths went with their netns), CNI netns and cache files of this node.
ip link del "$CNI_BRIDGE" 2>/dev/null
ip link del "$NODE_BRIDGE" 2>/dev/null
if [[ -f "$dir/host-state" ]]; then
  for ns in $(ls /var/run/netns 2>/dev/null); do
    [[ "$ns" == cni-* ]] || continue
    grep -qx "netns $ns" "$dir/host-state" && continue
    umount "/var/run/netns/$ns" 2>/dev/null
    rm -f "/var/run/netns/$ns"
  done
fi
rm -f /var/lib/cni/results/"$CNI_NETWORK"-* 2>/dev/null
find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete 2>/dev/null
if [[ -f "$dir/host-state" ]]; then
  grep -qx "existed /var/lib/cni" "$dir/host-state" || rm -rf /var/lib/cni
  grep -qx "existed /var/log/containers" "$dir/host-state" || rmdir /var/log/containers 2>/dev/null
  grep -qx "existed /run/containerd" "$dir/host-state" || rm -rf /run/containerd 2>/dev/null
  grep -qx "existed /run/netns" "$dir/host-state" || rmdir /run/netns 2>/dev/null
  if command -v nft >/dev/null; then
    nft list tables 2>/dev/null | sed 's/^table //' | while read -r family table; do
      grep -qx "nft $family $table" "$dir/host-state" && continue
      [[ "$(nft -j list table "$family" "$table" 2>/dev/null | grep -o '"rule":' | wc -l)" == 0 ]] &&
        nft delete table "$family" "$table"
    done
  fi
  # sysctls as they were.
  sed -n 's/^sysctl //p' "$dir/host-state" | while read -r kv; do sysctl -q -w "$kv" >/dev/null; done
fi

rm -f "$dir/node-env" "$dir/node-env.partial"
if ((problems)); then
  echo "stopped the node in $dir, with the problems above" >&2
  exit 1
fi
echo "stopped the node and the cluster in $dir; host restored"
