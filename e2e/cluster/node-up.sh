#!/usr/bin/env bash
# node-up.sh DIR — a local cluster with one real node: etcd and kube-apiserver (up.sh --node-ip),
# kube-controller-manager, kube-scheduler, containerd + runc with the CNI bridge plugin, kubelet and
# kube-proxy (iptables), with the images of e2e/images (every OCI archive make images wrote)
# imported into containerd. Everything runs as root on this machine; all state is under DIR.
#
# Addresses live only on interfaces this script creates, and no route leads off the machine:
#   slnode0  bridge without ports, the node IP 10.245.0.1/32 (kube-apiserver, kubelet, InternalIP)
#   slcni0   the CNI bridge, pods 10.244.0.0/24 (gateway 10.244.0.1); Services 10.0.0.0/16
# Cluster DNS is CoreDNS (build-coredns.sh) on the node IP, port 53: it answers cluster.local from
# the API server and NXDOMAIN for every other name, and never forwards a query.
# Host state the node changes is recorded in DIR/host-state first and put back by node-down.sh DIR:
# sysctls (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops set by the kubelet;
# net.ipv4.ip_forward by the bridge plugin), iptables KUBE-* chains, /kubepods cgroups, the
# kubelet's bind mount of its root dir, the two bridges, CNI netns and cache files.
# Writes DIR/node-env (pids, ports, sockets) next to up.sh's DIR/env.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
[[ "$(id -u)" -eq 0 ]] || { echo "e2e/cluster: node-up.sh needs root" >&2; exit 1; }
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
images="${SLUICE_IMAGES_DIR:-$repo/${BUILD:-build}/images}"

NODE_NAME=sluice-node
NODE_IP=10.245.0.1
NODE_BRIDGE=slnode0
CNI_BRIDGE=slcni0
CNI_NETWORK=sluice-node
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.0.0.0/16

total_start=$SECONDS
for tool in containerd ctr runc iptables conntrack ip; do
  command -v "$tool" >/dev/null || { echo "e2e/cluster: $tool is missing (make deps)" >&2; exit 1; }
done
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
  { echo "e2e/cluster: the CNI plugins are missing (containernetworking-plugins; make deps)" >&2; exit 1; }
coredns_bin="$(sluice_coredns_bin)"
bin="$(sluice_k8s_bin etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy pause)"
# Every image e2e/images built (pause, sluice-operator, sluice-dataplane, sluice-e2e-models).
image_files=()
for f in "$images"/*.tar; do
  [[ -f "$f" ]] && image_files+=("$(basename "$f" .tar)")
done
for f in pause sluice-operator sluice-dataplane; do
  [[ -f "$images/$f.tar" ]] || { echo "e2e/cluster: $images/$f.tar is missing (make images)" >&2; exit 1; }
done
if [[ -f "$dir/node-env" ]]; then
  echo "e2e/cluster: a node is already up in $dir; run node-down.sh first" >&2
  exit 1
fi
# One real node per machine: its bridges, chains and cgroups have fixed names.
if ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || ip link show "$CNI_BRIDGE" >/dev/null 2>&1 ||
  [[ -d /sys/fs/cgroup/cpu/kubepods || -d /sys/fs/cgroup/memory/kubepods ]] ||
  iptables-save 2>/dev/null | grep -q '^:KUBE-'; then
  echo "e2e/cluster: another real node is running on this machine (bridge $NODE_BRIDGE/$CNI_BRIDGE," \
    "/kubepods cgroups or KUBE-* iptables chains exist); node-down.sh its DIR first" >&2
  exit 1
fi
if ip route show | grep -qE '^(10\.244\.|10\.245\.|10\.0\.)'; then
  echo "e2e/cluster: this machine already routes 10.244/16, 10.245/16 or 10.0/16; the node needs them" >&2
  exit 1
fi

node="$dir/node"
logs="$dir/logs"
pki="$dir/pki"
mkdir -p "$node" "$logs"

# Host state to put back; written before anything changes it.
{
  for k in vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward; do
    echo "sysctl $k=$(sysctl -n "$k")"
  done
  [[ -d /var/log/containers ]] && echo "existed /var/log/containers"
  [[ -d /var/lib/cni ]] && echo "existed /var/lib/cni"
  [[ -d /run/containerd ]] && echo "existed /run/containerd"
  [[ -d /run/netns ]] && echo "existed /run/netns"
  # iptables-nft creates its tables on first use; node-down.sh deletes the ones it finds empty
  # that were not here before (needs nft).
  if command -v nft >/dev/null; then nft list tables 2>/dev/null | sed 's/^table /nft /'; fi
  { ls /var/run/netns 2>/dev/null || true; } | sed "s/^/netns /"
} >"$dir/host-state"

started=()
up_ok=0
cleanup_unless_up() {
  ((up_ok)) && return 0
  echo "e2e/cluster: node-up failed; tearing down (logs in $logs)" >&2
  printf 'NODE_PIDS="%s"\n' "${started[*]}" >"$dir/node-env.partial"
  bash "$here/node-down.sh" "$dir" >&2 || true
}
trap cleanup_unless_up EXIT
trap 'exit 130' INT TERM

spawn() {
  local var="$1" log="$2"
  shift 2
  setsid "$@" >"$log" 2>&1 </dev/null &
  printf -v "$var" '%s' "$!"
  started+=("$!")
}

# wait_for NAME PID LOG SECONDS CHECK...: polls CHECK until it succeeds or the process exits.
wait_for() {
  local name="$1" pid="$2" log="$3" deadline=$((SECONDS + $4))
  shift 4
  until "$@" >/dev/null 2>&1; do
    if [[ ! -d "/proc/$pid" ]] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      echo "e2e/cluster: $name exited; last lines of $log:" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    if ((SECONDS > deadline)); then
      echo "e2e/cluster: $name not ready in time; last lines of $log:" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# --- addresses ---------------------------------------------------------------------------------
ip link add "$NODE_BRIDGE" type bridge
ip addr add "$NODE_IP/32" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
# Service addresses the host connects to are routed onto the node bridge (source: the node IP),
# not to the default route, even before kube-proxy has rules for them.
ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
# Pods have a default route through the host, which forwards (the bridge plugin turns
# ip_forward on): nothing from a pod may be forwarded anywhere but back onto the pod bridge.
iptables -I FORWARD -i "$CNI_BRIDGE" ! -o "$CNI_BRIDGE" -m comment --comment sluice-node -j DROP

# --- control plane -----------------------------------------------------------------------------
bash "$here/up.sh" --node-ip "$NODE_IP" "$dir" >"$logs/up.log"
# shellcheck disable=SC1091
source "$dir/env"
# etcd first: node-down.sh stops these pids last-started first, so kube-apiserver goes before etcd.
started+=("$ETCD_PID" "$APISERVER_PID")
kubectl=("$bin/kubectl" --kubeconfig "$dir/kubeconfig")

sign() {
  [[ -f "$pki/$1.crt" ]] && return 0
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$1.key" \
    -subj "$2" 2>/dev/null |
    openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 3650 -extfile <(printf '%b' "$3") -out "$pki/$1.crt" 2>/dev/null
}
client="keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
sign kube-proxy "/CN=system:kube-proxy" "$client"
sign kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" \
  "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"

# kubeconfig NAME CERT: a kubeconfig for NAME with the client certificate CERT.
kubeconfig() {
  cat >"$node/$1.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: sluice-test
  cluster:
    server: $APISERVER_URL
    certificate-authority: $pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $pki/$2.crt
    client-key: $pki/$2.key
contexts:
- name: sluice-test
  context: {cluster: sluice-test, user: $1}
current-context: sluice-test
KUBECONFIG
  chmod 600 "$node/$1.kubeconfig"
}
kubeconfig kubelet kubelet-client
kubeconfig kube-proxy kube-proxy

start=$SECONDS
spawn kcm_pid "$logs/kube-controller-manager.log" "$bin/kube-controller-manager" \
  --kubeconfig="$dir/kubeconfig" --bind-address=127.0.0.1 --secure-port=0 --controllers='*' \
  --leader-elect=false --use-service-account-credentials=false \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-cidr="$CLUSTER_CIDR" --service-cluster-ip-range="$SERVICE_CIDR" --allocate-node-cidrs=false \
  --concurrent-deployment-syncs=10 --concurrent-replicaset-syncs=10
spawn scheduler_pid "$logs/kube-scheduler.log" "$bin/kube-scheduler" \
  --kubeconfig="$dir/kubeconfig" --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false

# --- cluster DNS -------------------------------------------------------------------------------
# CoreDNS as a host process, like kube-proxy: cluster.local and the reverse zones from the API
# server (admin kubeconfig), NXDOMAIN for every other name (template; the binary has no forward
# plugin, so no query leaves the machine). Only on the node IP: pods reach it through their
# gateway, the host directly. Waited for (ready: Services and EndpointSlices synced) before the
# node counts as up.
dns="$node/coredns"
mkdir -p "$dns"
sluice_free_port dns_health_port
sluice_free_port dns_ready_port
cat >"$dns/Corefile" <<COREFILE
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $NODE_IP
    errors
    log
    health 127.0.0.1:$dns_health_port
    ready 127.0.0.1:$dns_ready_port
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $dir/kubeconfig
        pods insecure
        ttl 5
    }
    cache 5
    loadbalance
}
.:53 {
    bind $NODE_IP
    errors
    log
    template ANY ANY {
        rcode NXDOMAIN
    }
}
COREFILE
dns_start=$SECONDS
spawn coredns_pid "$logs/coredns.log" "$coredns_bin" -conf "$dns/Corefile"

# --- containerd --------------------------------------------------------------------------------
ctrd="$node/containerd"
cni="$node/cni"
mkdir -p "$ctrd/root" "$ctrd/state" "$ctrd/runc" "$ctrd/opt" "$cni/net.d" "$cni/ipam"
sock="$ctrd/containerd.sock"
pause_ref="registry.k8s.io/pause:$(cat "$bin/pause.version")"
cat >"$ctrd/config.toml" <<TOML
version = 2
root = "$ctrd/root"
state = "$ctrd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = "$sock.debug"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$ctrd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  # This VM lacks CAP_SYS_RESOURCE: without it every sandbox fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$ctrd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$cni/net.d"
    max_conf_num = 1
TOML
cat >"$cni/net.d/10-$CNI_NETWORK.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$cni/ipam"
      }
    }
  ]
}
JSON
ctr=(ctr --address "$sock" --namespace k8s.io)
spawn containerd_pid "$logs/containerd.log" containerd --config "$ctrd/config.toml" --log-level info
wait_for containerd "$containerd_pid" "$logs/containerd.log" 30 "${ctr[@]}" version
echo "containerd up in $((SECONDS - start))s"

start=$SECONDS
for f in "${image_files[@]}"; do
  "${ctr[@]}" images import "$images/$f.tar" >"$logs/import-$f.log" 2>&1 ||
    { cat "$logs/import-$f.log" >&2; exit 1; }
done
"${ctr[@]}" images ls -q | grep -v '^sha256:' | sed 's/^/  image /'
echo "images imported in $((SECONDS - start))s"

# --- kubelet -----------------------------------------------------------------------------------
kl="$node/kubelet"
mkdir -p "$kl/root" "$kl/pod-logs" "$kl/volume-plugins"
sluice_free_port kubelet_port
sluice_free_port kubelet_healthz_port
# Pods get clusterDNS (CoreDNS); this file serves dnsPolicy Default and host-network pods. It names
# only CoreDNS, never the host's resolver, so no pod's lookup can leave the machine.
printf 'nameserver %s\n' "$NODE_IP" >"$kl/resolv.conf"
cat >"$kl/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz_port
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$sock
# cgroup v1 (hybrid) on this VM.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
failSwapOn: false
podCIDR: $POD_CIDR
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $kl/resolv.conf
podLogsDir: $kl/pod-logs
volumePluginDir: $kl/volume-plugins
makeIPTablesUtilChains: false
serializeImagePulls: false
registerNode: true
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
fileCheckFrequency: 10s
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
maxPods: 110
YAML
start=$SECONDS
spawn kubelet_pid "$logs/kubelet.log" "$bin/kubelet" \
  --config="$kl/config.yaml" --kubeconfig="$node/kubelet.kubeconfig" --root-dir="$kl/root" \
  --cert-dir="$kl/pki" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
node_ready() {
  [[ "$("${kubectl[@]}" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
wait_for kubelet "$kubelet_pid" "$logs/kubelet.log" 120 node_ready
echo "node $NODE_NAME Ready in $((SECONDS - start))s"

# --- kube-proxy --------------------------------------------------------------------------------
sluice_free_port proxy_healthz_port
sluice_free_port proxy_metrics_port
cat >"$node/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $node/kube-proxy.kubeconfig
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:$proxy_healthz_port
metricsBindAddress: 127.0.0.1:$proxy_metrics_port
nodePortAddresses: [$NODE_IP/32]
iptables:
  # Every Service connection is masqueraded, so replies between pods on the one bridge come back
  # through the host without br_netfilter; no route_localnet for NodePorts on 127.0.0.1.
  masqueradeAll: true
  localhostNodePorts: false
  minSyncPeriod: 0s
  syncPeriod: 30s
# Leave the host's conntrack settings alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML
start=$SECONDS
spawn proxy_pid "$logs/kube-proxy.log" "$bin/kube-proxy" --config="$node/kube-proxy.yaml" --v=1
wait_for kube-proxy "$proxy_pid" "$logs/kube-proxy.log" 60 \
  curl -fsS "http://127.0.0.1:$proxy_healthz_port/healthz"
echo "kube-proxy healthy in $((SECONDS - start))s"

wait_for coredns "$coredns_pid" "$logs/coredns.log" 60 curl -fsS "http://127.0.0.1:$dns_ready_port/ready"
echo "coredns ready on $NODE_IP:53 (started $((SECONDS - dns_start))s ago, alongside the rest)"

cat >"$dir/node-env" <<ENV
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
NODE_BRIDGE=$NODE_BRIDGE
CNI_BRIDGE=$CNI_BRIDGE
CNI_NETWORK=$CNI_NETWORK
POD_CIDR=$POD_CIDR
KCM_PID=$kcm_pid
SCHEDULER_PID=$scheduler_pid
CONTAINERD_PID=$containerd_pid
CONTAINERD_SOCK=$sock
KUBELET_PID=$kubelet_pid
KUBELET_PORT=$kubelet_port
KUBELET_ROOT=$kl/root
PROXY_PID=$proxy_pid
PROXY_CONFIG=$node/kube-proxy.yaml
COREDNS_PID=$coredns_pid
COREDNS_BIN=$coredns_bin
COREDNS_CONF=$dns/Corefile
COREDNS_HEALTH_PORT=$dns_health_port
COREDNS_READY_PORT=$dns_ready_port
CLUSTER_DNS=$NODE_IP
ENV
rm -f "$dir/node-env.partial"
up_ok=1
echo "real node up in $((SECONDS - total_start))s: $("${kubectl[@]}" get node "$NODE_NAME" --no-headers)"
echo "kubeconfig: $dir/kubeconfig; node-down.sh $dir stops it and restores the host"
