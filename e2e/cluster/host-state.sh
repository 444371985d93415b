# Sourced by the real-node scripts (after lib.sh): what a real node changes on the host, recorded
# before node-up.sh and compared after node-down.sh.

# sluice_host_state DIR: iptables chains, kubepods cgroups, mounts under DIR, the node's bridges,
# anything listening on the node IP, processes of the node in DIR, the sysctls the kubelet and
# the bridge plugin set, CNI and containerd state, netfilter tables.
sluice_host_state() {
  local dir="$1"
  {
    iptables-save 2>/dev/null | grep -E '^:(KUBE|CNI)-|sluice-node' || true
    ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null || true
    awk -v d="$dir/" 'index($2, d) == 1 {print "mount " $2}' /proc/self/mounts
    ip -br link show type bridge | awk '$1 ~ /^sl(node|cni)0/ {print "bridge " $1}'
    # Anything still listening on the node IP (kube-apiserver, kubelet, coredns).
    ss -Hlntu | awk '$5 ~ /^10\.245\.0\.1:/ {print "listen " $1 " " $5}'
    pgrep -af -- "$dir/" | sed 's/^[0-9]* /process /'
    sysctl vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward
    ls -d /run/netns /run/containerd /var/lib/cni /var/log/containers || true
    ls /run/netns || true
    if command -v nft >/dev/null; then nft list tables; fi
    cat /proc/net/ip_tables_names /proc/net/ip6_tables_names || true
  } 2>/dev/null
  return 0
}

# sluice_node_down_checked DIR BEFORE [LOG]: node-down.sh DIR (its output to LOG when given), then
# 1 with the difference printed if the host is not as BEFORE (sluice_host_state) says it was.
sluice_node_down_checked() {
  local dir="$1" before="$2" log="${3:-/dev/stdout}" start=$SECONDS after
  bash "$SLUICE_CLUSTER_ROOT/node-down.sh" "$dir" >>"$log" 2>&1 || echo "node-down.sh failed (log: $log)" >&2
  echo "node-down in $((SECONDS - start))s"
  after="$(sluice_host_state "$dir")"
  if [[ "$after" != "$before" ]]; then
    echo "FAIL: the host is not as it was:" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    return 1
  fi
  echo "host restored"
}
