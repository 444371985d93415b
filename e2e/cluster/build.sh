#!/usr/bin/env bash
# Builds the local test cluster's binaries (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kubelet, kube-proxy, etcd, etcdctl, kwok, kwokctl, helm, and the pause container's
# static binary) from the Go modules pinned under go/ into
# $SLUICE_CACHE/cluster-<key>/bin. Does nothing when that folder is already complete. Safe to run
# concurrently: one build per key at a time (flock), and the folder appears only when whole.
# Then build-coredns.sh (CoreDNS, the real node's cluster DNS) and build-argocd.sh (Argo CD, for
# the GitOps tests), each in its own folder with its own key.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GO_BIN="$(sluice_go)"
# The go.mod files use `tool` directives (Go 1.24); from Go 1.21 on, GOTOOLCHAIN=auto would fetch
# a newer toolchain through the module proxy by itself, but older releases cannot read them at all.
go_minor="$("$GO_BIN" env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
if [[ -z "$go_minor" || "$go_minor" -lt 21 ]]; then
  echo "e2e/cluster: $("$GO_BIN" version) is too old; Go 1.21 or newer is needed (GO=/path/to/go)" >&2
  exit 1
fi

# CoreDNS and Argo CD come after the cluster binaries, also when those are up to date, and outside
# their lock; their keys are not part of theirs, so a change to either never rebuilds them.
build_coredns() {
  exec 9>&-
  bash "$SLUICE_CLUSTER_ROOT/build-coredns.sh"
  bash "$SLUICE_CLUSTER_ROOT/build-argocd.sh"
}

dir="$(sluice_cluster_dir)"
if sluice_cluster_complete "$dir"; then
  echo "cluster binaries up to date: $dir/bin"
  build_coredns
  exit 0
fi

mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if sluice_cluster_complete "$dir"; then
  echo "cluster binaries up to date: $dir/bin"
  build_coredns
  exit 0
fi

tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"

export CGO_ENABLED=0
# go.sum is committed and complete; a build must never rewrite it behind our back.
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

# mod_field MODULE_DIR PATH TEMPLATE: `go list -m -f TEMPLATE` for a dependency, as the module
# graph resolves it.
mod_field() {
  (cd "$1" && "$GO_BIN" list -m -f "$3" "$2")
}

# The commit a module version was tagged at, when the proxy recorded it (empty otherwise).
mod_commit() {
  local info
  info="$(cd "$1" && "$GO_BIN" mod download -json "$2@$(mod_field "$1" "$2" "{{.Version}}")" |
    sed -n 's/.*"Info": *"\(.*\)".*/\1/p')"
  [[ -f "$info" ]] && sed -n 's/.*"Hash": *"\([0-9a-f]*\)".*/\1/p' "$info" | head -n1
  return 0
}

# gobuild MODULE OUT_PATH LDFLAGS PACKAGE...
gobuild() {
  local module="$1" out="$2" ldflags="$3"
  shift 3
  local start=$SECONDS
  echo "building $* ..."
  (cd "$SLUICE_CLUSTER_ROOT/go/$module" &&
    nice -n 10 "$GO_BIN" build -trimpath -ldflags "$ldflags" -o "$out" "$@")
  echo "  done in $((SECONDS - start))s"
}

total_start=$SECONDS
"$GO_BIN" version

# Kubernetes: /version must report the pinned release, so stamp it the way its release build does.
m="$SLUICE_CLUSTER_ROOT/go/kubernetes"
kver="$(mod_field "$m" k8s.io/kubernetes "{{.Version}}")"
kdate="$(mod_field "$m" k8s.io/kubernetes "{{.Time.UTC.Format \"2006-01-02T15:04:05Z\"}}")"
kmajor="${kver#v}"; kmajor="${kmajor%%.*}"
kminor="${kver#v*.}"; kminor="${kminor%%.*}"
kcommit="$(mod_commit "$m" k8s.io/kubernetes)"
kld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kld+=" -X $pkg.gitVersion=$kver -X $pkg.gitMajor=$kmajor -X $pkg.gitMinor=$kminor"
  kld+=" -X $pkg.gitCommit=$kcommit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$kdate"
done
gobuild kubernetes "$tmp/bin/" "$kld" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy

# The pod sandbox's pause binary, from the same Kubernetes release, built the way its Makefile
# does (static, -Os); e2e/images turns it into the sandbox image the real node's containerd uses.
kdir="$(mod_field "$m" k8s.io/kubernetes "{{.Dir}}")"
ptag="$(sed -n 's/^TAG ?= *//p' "$kdir/build/pause/Makefile")"
echo "building pause $ptag ..."
${CC:-cc} -Os -s -Wall -Werror -static -DVERSION="v$ptag" -o "$tmp/bin/pause" "$kdir/build/pause/linux/pause.c"
echo "$ptag" > "$tmp/bin/pause.version"

m="$SLUICE_CLUSTER_ROOT/go/etcd"
ever="$(mod_field "$m" go.etcd.io/etcd/server/v3 "{{.Version}}")"
ecommit="$(mod_commit "$m" go.etcd.io/etcd/server/v3)"
eld="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ecommit:-$ever}"
gobuild etcd "$tmp/bin/etcd" "$eld" go.etcd.io/etcd/server/v3
gobuild etcd "$tmp/bin/etcdctl" "$eld" go.etcd.io/etcd/etcdctl/v3

# kwokctl derives the flags it gives kube-apiserver from KubeVersion; make it the one we built.
m="$SLUICE_CLUSTER_ROOT/go/kwok"
wver="$(mod_field "$m" sigs.k8s.io/kwok "{{.Version}}")"
wld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${wver#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${kver#v}"
gobuild kwok "$tmp/bin/" "$wld" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl

# helm stamps its default Kubernetes capabilities from the client-go it is built with.
m="$SLUICE_CLUSTER_ROOT/go/helm"
hver="$(mod_field "$m" helm.sh/helm/v3 "{{.Version}}")"
hk8s="$(mod_field "$m" k8s.io/client-go "{{.Version}}")"
hk8s_minor="${hk8s#v0.}"; hk8s_minor="${hk8s_minor%%.*}"
hld="-s -w -X helm.sh/helm/v3/internal/version.version=$hver -X helm.sh/helm/v3/internal/version.metadata="
hld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  hld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$hk8s_minor"
done
gobuild helm "$tmp/bin/" "$hld" helm.sh/helm/v3/cmd/helm

{
  echo "kubernetes $kver"
  echo "pause $ptag"
  echo "etcd $ever"
  echo "kwok $wver"
  echo "helm $hver"
  "$GO_BIN" version
} > "$tmp/VERSIONS"

for b in "${SLUICE_CLUSTER_BINARIES[@]}"; do
  [[ -x "$tmp/bin/$b" ]] || { echo "e2e/cluster: $b was not built" >&2; exit 1; }
done
touch "$tmp/$SLUICE_CLUSTER_STAMP"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "cluster binaries built in $((SECONDS - total_start))s: $dir/bin"
build_coredns
