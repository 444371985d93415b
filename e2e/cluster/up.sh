#!/usr/bin/env bash
# up.sh [--node-ip IP] DIR — starts etcd and kube-apiserver on free 127.0.0.1 ports, with data,
# certificates and logs under DIR, and writes DIR/kubeconfig (admin, client certificate) and DIR/env
# (ports, pids; `set -a; source DIR/env` exports KUBECONFIG). Certificates and etcd data are kept
# across down.sh/up.sh, so the same DIR comes back with its objects. down.sh DIR stops exactly what
# this started.
# --node-ip IP (node-up.sh uses it): kube-apiserver listens on IP instead of 127.0.0.1 (an address
# on an interface the caller created) and publishes it as the endpoint of the `kubernetes`
# Service, so pods reach it with in-cluster config; the ServiceAccount admission plugin is on, and
# kube-apiserver talks to kubelets (logs, exec) with a client certificate, by InternalIP.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

node_ip=""
if [[ "${1:-}" == "--node-ip" && $# -ge 2 ]]; then
  node_ip="$2"
  shift 2
fi
if [[ $# -ne 1 ]]; then
  echo "usage: $0 [--node-ip IP] DIR" >&2
  exit 2
fi
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
if [[ -f "$dir/env" ]]; then
  # shellcheck disable=SC1091
  pid="$(source "$dir/env" && echo "${APISERVER_PID:-}")"
  if [[ -n "$pid" && -d "/proc/$pid" ]]; then
    echo "e2e/cluster: a cluster is already running in $dir (kube-apiserver pid $pid); run down.sh first" >&2
    exit 1
  fi
fi
bin="$(sluice_k8s_bin etcd kube-apiserver kubectl)"
pki="$dir/pki"
logs="$dir/logs"
# A new cluster every time: etcd left over from an earlier run in the same DIR would bring back
# its objects (CRDs of an older schema among them, which helm install does not replace).
rm -rf "$dir/etcd"
mkdir -p "$pki" "$logs" "$dir/etcd"
chmod 700 "$pki" "$dir/etcd"

# sign NAME SUBJECT EXTENSIONS: a P-256 key and a certificate for it signed by the test CA.
sign() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$1.key" \
    -subj "$2" 2>/dev/null |
    openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 3650 -extfile <(printf '%b' "$3") -out "$pki/$1.crt" 2>/dev/null
}

if [[ ! -f "$pki/admin.crt" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=sluice-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  sign apiserver "/CN=kube-apiserver" \
    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign admin "/O=system:masters/CN=sluice-admin" \
    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
fi
api_ip=127.0.0.1
node_flags=(--disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none)
if [[ -n "$node_ip" ]]; then
  api_ip="$node_ip"
  if ! openssl x509 -in "$pki/apiserver.crt" -noout -ext subjectAltName | grep -q "IP Address:$node_ip\(,\|$\)"; then
    sign apiserver "/CN=kube-apiserver" \
      "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,IP:$node_ip,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  fi
  [[ -f "$pki/apiserver-kubelet-client.crt" ]] ||
    sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" \
      "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
  node_flags=(--endpoint-reconciler-type=lease
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt"
    --kubelet-client-key="$pki/apiserver-kubelet-client.key"
    --kubelet-certificate-authority="$pki/ca.crt"
    --kubelet-preferred-address-types=InternalIP)
fi

# Whatever this script started dies with it unless it gets to the end.
started=()
up_ok=0
cleanup_unless_up() {
  local p
  ((up_ok)) && return 0
  for p in "${started[@]}"; do sluice_stop_pid "$p" "$dir"; done
}
trap cleanup_unless_up EXIT
trap 'exit 130' INT TERM

# spawn VAR LOG CMD...: runs CMD detached from this shell's session, pid into VAR.
spawn() {
  local var="$1" log="$2"
  shift 2
  setsid "$@" >"$log" 2>&1 </dev/null &
  printf -v "$var" '%s' "$!"
  started+=("$!")
}

# wait_for NAME PID LOG CHECK...: polls CHECK until it succeeds (0), the process exits (1) or
# 90 s pass (1). Prints the log tail on failure.
wait_for() {
  local name="$1" pid="$2" log="$3" deadline=$((SECONDS + 90))
  shift 3
  until "$@" >/dev/null 2>&1; do
    if [[ ! -d "/proc/$pid" ]] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      echo "e2e/cluster: $name exited; last lines of $log:" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    if ((SECONDS > deadline)); then
      echo "e2e/cluster: $name not ready after 90s; last lines of $log:" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    sleep 0.2
  done
}

port_conflict() { grep -q "address already in use" "$1"; }

for attempt in 1 2 3; do
  sluice_free_port etcd_port
  sluice_free_port etcd_peer_port
  spawn etcd_pid "$logs/etcd.log" "$bin/etcd" \
    --name=sluice --data-dir="$dir/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="sluice=http://127.0.0.1:$etcd_peer_port" \
    --unsafe-no-fsync --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) --log-level=warn
  if wait_for etcd "$etcd_pid" "$logs/etcd.log" curl -fsS "http://127.0.0.1:$etcd_port/health"; then
    break
  fi
  port_conflict "$logs/etcd.log" && ((attempt < 3)) && continue
  exit 1
done

curl_admin=(curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key")
for attempt in 1 2 3; do
  sluice_free_port apiserver_port
  spawn apiserver_pid "$logs/kube-apiserver.log" "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address="$api_ip" --advertise-address="$api_ip" --secure-port="$apiserver_port" \
    --cert-dir="$pki" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/16 \
    --allow-privileged=true \
    "${node_flags[@]}" \
    --profiling=false
  if wait_for kube-apiserver "$apiserver_pid" "$logs/kube-apiserver.log" \
    "${curl_admin[@]}" "https://$api_ip:$apiserver_port/readyz"; then
    break
  fi
  port_conflict "$logs/kube-apiserver.log" && ((attempt < 3)) && continue
  exit 1
done

b64() { base64 -w0 <"$1"; }
cat >"$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: sluice-test
  cluster:
    server: https://$api_ip:$apiserver_port
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: sluice-admin
  user:
    client-certificate-data: $(b64 "$pki/admin.crt")
    client-key-data: $(b64 "$pki/admin.key")
contexts:
- name: sluice-test
  context:
    cluster: sluice-test
    user: sluice-admin
current-context: sluice-test
KUBECONFIG
chmod 600 "$dir/kubeconfig"

cat >"$dir/env" <<ENV
SLUICE_CLUSTER_DIR=$dir
SLUICE_K8S_BIN=$bin
ETCD_PORT=$etcd_port
ETCD_PEER_PORT=$etcd_peer_port
ETCD_PID=$etcd_pid
ETCD_URL=http://127.0.0.1:$etcd_port
APISERVER_PORT=$apiserver_port
APISERVER_PID=$apiserver_pid
APISERVER_URL=https://$api_ip:$apiserver_port
APISERVER_IP=$api_ip
CA_FILE=$pki/ca.crt
KUBECONFIG=$dir/kubeconfig
ENV
up_ok=1

echo "kube-apiserver https://$api_ip:$apiserver_port (pid $apiserver_pid), etcd http://127.0.0.1:$etcd_port (pid $etcd_pid)"
echo "kubeconfig: $dir/kubeconfig"
"$bin/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /version
echo
