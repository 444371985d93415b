# Sourced by the real-node scripts: what a real node changes on the host, to compare before
# node-up.sh and after node-down.sh.

# sluice_host_state DIR: iptables chains, kubepods cgroups, mounts under DIR, the node's bridges,
# the sysctls the kubelet and the bridge plugin set, CNI and containerd state, netfilter tables.
sluice_host_state() {
  local dir="$1"
  {
    iptables-save 2>/dev/null | grep -E '^:(KUBE|CNI)-|sluice-node' || true
    ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null || true
    awk -v d="$dir/" 'index($2, d) == 1 {print "mount " $2}' /proc/self/mounts
    ip -br link show type bridge | awk '$1 ~ /^sl(node|cni)0/ {print "bridge " $1}'
    sysctl vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward
    ls -d /run/netns /run/containerd /var/lib/cni /var/log/containers || true
    ls /run/netns || true
    if command -v nft >/dev/null; then nft list tables; fi
    cat /proc/net/ip_tables_names /proc/net/ip6_tables_names || true
    if pgrep -f "$dir/" >/dev/null; then echo "processes still run from $dir"; fi
  } 2>/dev/null
}
