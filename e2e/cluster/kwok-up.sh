#!/usr/bin/env bash
# kwok-up.sh DIR [NODES] — a kwokctl cluster (runtime "binary": etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok-controller as local processes, all bound to
# 127.0.0.1) with NODES fake nodes (default 2). Every binary comes from the local cache; every
# download prefix points at a path that does not exist, so kwokctl fails instead of reaching out.
# Writes DIR/kubeconfig; kwokctl's own state lives in DIR/kwok. kwok-down.sh DIR undoes it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 DIR [NODES]" >&2
  exit 2
fi
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
nodes="${2:-2}"
bin="$(sluice_k8s_bin etcd etcdctl kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwokctl)"
export KWOK_WORKDIR="$dir/kwok"
name=sluice
nodl="$dir/kwok/no-downloads"
mkdir -p "$KWOK_WORKDIR"

kube_version="$("$bin/kube-apiserver" --version | awk '{print $2}')"
etcd_version="$("$bin/etcd" --version | awk '/etcd Version/{print $3}')"

cat >"$dir/kwokctl.yaml" <<YAML
kind: KwokctlConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: $kube_version
  etcdVersion: $etcd_version
  kubeAuthorization: true
  quietPull: true
  cacheDir: $dir/kwok/cache
  kubeBinaryPrefix: $nodl
  etcdBinaryPrefix: $nodl
  kwokBinaryPrefix: $nodl
  prometheusBinaryPrefix: $nodl
  jaegerBinaryPrefix: $nodl
  metricsServerBinaryPrefix: $nodl
  kindBinaryPrefix: $nodl
  kubeApiserverBinary: $bin/kube-apiserver
  kubeControllerManagerBinary: $bin/kube-controller-manager
  kubeSchedulerBinary: $bin/kube-scheduler
  kubectlBinary: $bin/kubectl
  kwokControllerBinary: $bin/kwok
  etcdBinary: $bin/etcd
  etcdctlBinary: $bin/etcdctl
# kube-apiserver's default Service range is a /24 (256 addresses); every ModelDeployment takes
# one virtual IP (its router's Service), so scale runs need room. kube-controller-manager's
# client is held to 20 requests a second by default, which caps how fast it turns Deployments
# into ReplicaSets, Pods and EndpointSlices (some twenty requests per ModelDeployment):
# clusters that run thousands of workloads raise it, and so do these.
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - key: service-cluster-ip-range
    value: 10.96.0.0/16
- name: kube-controller-manager
  extraArgs:
  - key: kube-api-qps
    value: "200"
  - key: kube-api-burst
    value: "400"
YAML

kwokctl=("$bin/kwokctl" --name "$name")
if ! "${kwokctl[@]}" create cluster --config "$dir/kwokctl.yaml" --kubeconfig "$dir/kubeconfig" \
  --wait 120s >"$dir/kwokctl-create.log" 2>&1; then
  echo "e2e/cluster: kwokctl create cluster failed:" >&2
  cat "$dir/kwokctl-create.log" >&2
  "${kwokctl[@]}" delete cluster --kubeconfig "$dir/kubeconfig" >/dev/null 2>&1 || true
  exit 1
fi
if grep -qi 'download' "$dir/kwokctl-create.log"; then
  echo "e2e/cluster: kwokctl tried to download something:" >&2
  cat "$dir/kwokctl-create.log" >&2
  "${kwokctl[@]}" delete cluster --kubeconfig "$dir/kubeconfig" >/dev/null 2>&1 || true
  exit 1
fi
"${kwokctl[@]}" scale node --replicas "$nodes" >"$dir/kwokctl-scale.log" 2>&1

kubectl=("$bin/kubectl" --kubeconfig "$dir/kubeconfig")
"${kubectl[@]}" wait --for=condition=Ready node --all --timeout=120s >/dev/null
echo "kwok cluster '$name' up: $("${kubectl[@]}" config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
echo "kubeconfig: $dir/kubeconfig"
"${kubectl[@]}" get nodes
