# Sourced by the e2e/cluster scripts: where the Go toolchain is, which binaries make a complete
# cluster, and the cache key that names the folder holding them.

SLUICE_CLUSTER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SLUICE_CLUSTER_MODULES=(kubernetes etcd kwok helm)
SLUICE_CLUSTER_BINARIES=(
  kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy pause
  etcd etcdctl
  kwok kwokctl
  helm
)
# Written last by build.sh; a folder without it is a build that did not finish.
SLUICE_CLUSTER_STAMP=.complete

sluice_cache_root() {
  echo "${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
}

# GO overrides; otherwise the toolchain under /usr/local/go (newer than Debian's) wins over PATH.
sluice_go() {
  if [[ -n "${GO:-}" ]]; then
    echo "$GO"
  elif [[ -x /usr/local/go/bin/go ]]; then
    echo /usr/local/go/bin/go
  elif command -v go >/dev/null 2>&1; then
    command -v go
  else
    echo "e2e/cluster: no Go toolchain found (install golang-go or set GO=/path/to/go)" >&2
    return 1
  fi
}

# The key changes when a pinned version (go.mod/go.sum) or the compiler changes, and nothing else,
# so an unchanged checkout never rebuilds.
sluice_cluster_key() {
  local go
  go="$(sluice_go)" || return 1
  {
    for m in "${SLUICE_CLUSTER_MODULES[@]}"; do
      echo "module $m"
      cat "$SLUICE_CLUSTER_ROOT/go/$m/go.mod" "$SLUICE_CLUSTER_ROOT/go/$m/go.sum"
    done
    "$go" env GOVERSION GOOS GOARCH
  } | sha256sum | cut -c1-16
}

sluice_cluster_dir() {
  local key
  key="$(sluice_cluster_key)" || return 1
  echo "$(sluice_cache_root)/cluster-$key"
}

# True when DIR/bin holds every binary and the stamp build.sh writes after the last one.
sluice_cluster_complete() {
  local dir="$1" b
  [[ -f "$dir/$SLUICE_CLUSTER_STAMP" ]] || return 1
  for b in "${SLUICE_CLUSTER_BINARIES[@]}"; do
    [[ -x "$dir/bin/$b" ]] || return 1
  done
}

# CoreDNS, the real node's cluster DNS, is its own module (go/coredns: our main.go and the plugins
# it links) with its own key and folder, so adding or bumping it never changes the key above (a
# cold build of the cluster binaries takes most of an hour). build-coredns.sh builds
# $SLUICE_CACHE/coredns-<key>/bin/coredns; build.sh runs it.
SLUICE_COREDNS_FILES=(go.mod go.sum main.go)

sluice_coredns_key() {
  local go f
  go="$(sluice_go)" || return 1
  {
    for f in "${SLUICE_COREDNS_FILES[@]}"; do
      echo "file $f"
      cat "$SLUICE_CLUSTER_ROOT/go/coredns/$f"
    done
    "$go" env GOVERSION GOOS GOARCH
  } | sha256sum | cut -c1-16
}

sluice_coredns_dir() {
  local key
  key="$(sluice_coredns_key)" || return 1
  echo "$(sluice_cache_root)/coredns-$key"
}

sluice_coredns_complete() {
  [[ -f "$1/$SLUICE_CLUSTER_STAMP" && -x "$1/bin/coredns" ]]
}

# The coredns binary: $SLUICE_COREDNS when set, else the one in the cache folder for the pinned
# module. Fails with the fix in the message when it is missing.
sluice_coredns_bin() {
  local bin="${SLUICE_COREDNS:-}"
  if [[ -z "$bin" ]]; then
    bin="$(sluice_coredns_dir)/bin/coredns" || return 1
  fi
  if [[ ! -x "$bin" ]]; then
    echo "e2e/cluster: $bin is missing; run 'make deps' (or bash e2e/cluster/build.sh)" >&2
    return 1
  fi
  echo "$bin"
}

# The folder with the cluster binaries: $SLUICE_K8S_BIN when set, else the cache folder for the
# pinned versions. Fails with the fix in the message when a binary is missing.
sluice_k8s_bin() {
  local bin="${SLUICE_K8S_BIN:-}" b
  if [[ -z "$bin" ]]; then
    bin="$(sluice_cluster_dir)/bin" || return 1
  fi
  for b in "$@"; do
    if [[ ! -x "$bin/$b" ]]; then
      echo "e2e/cluster: $bin/$b is missing; run 'make deps' (or bash e2e/cluster/build.sh)" >&2
      return 1
    fi
  done
  echo "$bin"
}

# Sets variable $1 to a TCP port nothing listens on right now and that this shell has not handed
# out before. Ports come from below the ephemeral range so outgoing connections do not take them in
# the meantime. Racy by nature: callers retry on "address in use".
sluice_free_port() {
  local used port i
  used="$(ss -Htan 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}' | sort -u)"
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 12000))
    if ! grep -qx "$port" <<<"$used" && ! grep -qx "$port" <<<"${SLUICE_PORTS_TAKEN:-}"; then
      SLUICE_PORTS_TAKEN+="$port"$'\n'
      printf -v "$1" '%s' "$port"
      return 0
    fi
  done
  echo "e2e/cluster: no free port found" >&2
  return 1
}

# Stops PID if it is still the process we started (its command line names MARK), TERM then KILL.
sluice_stop_pid() {
  local pid="$1" mark="$2" name="${3:-process}" i
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$mark" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 150; i++)); do
    [[ -d "/proc/$pid" ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "e2e/cluster: $name (pid $pid) ignored SIGTERM for 15s; killing" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# Argo CD (application controller, repo server: one binary, go/argocd/main.go) for the GitOps
# tests, in its own folder with its own key like CoreDNS. Argo CD v3.6 needs Go 1.27: its
# build runs under this toolchain, which the go command takes from the module proxy.
# build-argocd.sh builds $SLUICE_CACHE/argocd-<key>/bin/argocd; build.sh runs it.
SLUICE_ARGOCD_TOOLCHAIN=go1.27.3
SLUICE_ARGOCD_FILES=(go.mod go.sum main.go)
# What bin/ holds besides argocd: links to it named for the commands it runs (it reads argv[0]),
# and the release's scripts the repo server runs by name.
SLUICE_ARGOCD_LINKS=(argocd-application-controller argocd-repo-server)
SLUICE_ARGOCD_SCRIPTS=(git-verify-wrapper.sh gpg-wrapper.sh)

sluice_argocd_key() {
  local go f
  go="$(sluice_go)" || return 1
  {
    for f in "${SLUICE_ARGOCD_FILES[@]}"; do
      echo "file $f"
      cat "$SLUICE_CLUSTER_ROOT/go/argocd/$f"
    done
    echo "toolchain $SLUICE_ARGOCD_TOOLCHAIN"
    GOTOOLCHAIN=local "$go" env GOOS GOARCH
  } | sha256sum | cut -c1-16
}

sluice_argocd_dir() {
  local key
  key="$(sluice_argocd_key)" || return 1
  echo "$(sluice_cache_root)/argocd-$key"
}

sluice_argocd_complete() {
  local c
  [[ -f "$1/$SLUICE_CLUSTER_STAMP" && -x "$1/bin/argocd" && -f "$1/crds/application-crd.yaml" ]] || return 1
  for c in "${SLUICE_ARGOCD_LINKS[@]}" "${SLUICE_ARGOCD_SCRIPTS[@]}"; do
    [[ -x "$1/bin/$c" ]] || return 1
  done
}

# The folder with argocd and its command links: $SLUICE_ARGOCD_BIN when set, else the cache
# folder for the pinned module. Fails with the fix in the message when it is incomplete.
sluice_argocd_bin() {
  local bin="${SLUICE_ARGOCD_BIN:-}" c
  if [[ -z "$bin" ]]; then
    bin="$(sluice_argocd_dir)/bin" || return 1
  fi
  for c in argocd "${SLUICE_ARGOCD_LINKS[@]}" "${SLUICE_ARGOCD_SCRIPTS[@]}"; do
    if [[ ! -x "$bin/$c" ]]; then
      echo "e2e/cluster: $bin/$c is missing; run 'make deps' (or bash e2e/cluster/build-argocd.sh)" >&2
      return 1
    fi
  done
  echo "$bin"
}
