# Sourced by the GitOps tests (tests/integration/gitops, e2e/scenario/gitops.sh): Argo CD run the
# way its core install runs it, as processes on this host: argocd-repo-server,
# argocd-application-controller and Redis (Debian), with a Git repository served by `git daemon`,
# all on 127.0.0.1. The binary comes from e2e/cluster/build-argocd.sh.
#
# The caller sets KUBECONFIG (the cluster Argo CD manages, which is also where its Applications
# live) and GITOPS_WORK (a folder for state and logs: GITOPS_WORK/*.log), and calls gitops_stop on
# exit. The Argo CD application controller's metrics server listens on 0.0.0.0 (upstream fixes
# the address); the integration test runs in a network namespace of its own for that reason.

source "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib.sh"

GITOPS_PIDS=()
# Ports and the repository's address, set by gitops_git_up and gitops_argocd_up.
GITOPS_REPO_URL=""
GITOPS_CHECKOUT=""

gitops_kubectl() { "${GITOPS_KUBECTL:-$(sluice_k8s_bin kubectl)/kubectl}" "$@"; }

# gitops_stop: stops everything gitops_*_up started (TERM, then wait).
gitops_stop() {
  local p
  for p in "${GITOPS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${GITOPS_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  GITOPS_PIDS=()
}

# gitops_wait SECONDS COMMAND...: until COMMAND succeeds (every 0.5 s); 1 when time ran out.
gitops_wait() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# gitops_git_up: an empty repository (branch main) served read-only by `git daemon` on
# 127.0.0.1, and a checkout of it (GITOPS_CHECKOUT) that gitops_commit pushes from.
gitops_git_up() {
  local base="$GITOPS_WORK/git" git_port
  mkdir -p "$base"
  git init -q --bare -b main "$base/sluice.git"
  GITOPS_CHECKOUT="$GITOPS_WORK/checkout"
  git init -q -b main "$GITOPS_CHECKOUT"
  git -C "$GITOPS_CHECKOUT" config user.email gitops@sluice.test
  git -C "$GITOPS_CHECKOUT" config user.name "Sluice GitOps test"
  sluice_free_port git_port || return 1
  git daemon --reuseaddr --listen=127.0.0.1 --port="$git_port" --base-path="$base" --export-all \
    "$base" >"$GITOPS_WORK/git-daemon.log" 2>&1 &
  GITOPS_PIDS+=($!)
  GITOPS_REPO_URL="git://127.0.0.1:$git_port/sluice.git"
}

# gitops_commit MESSAGE: commits all of GITOPS_CHECKOUT, pushes it, and prints the commit.
gitops_commit() {
  git -C "$GITOPS_CHECKOUT" add -A
  git -C "$GITOPS_CHECKOUT" commit -q -m "$1"
  git -C "$GITOPS_CHECKOUT" push -q "$GITOPS_WORK/git/sluice.git" main
  git -C "$GITOPS_CHECKOUT" rev-parse HEAD
}

# gitops_argocd_up: Argo CD's CRDs, its namespace argocd with argocd-cm (patched with
# manifests/argocd/argocd-cm-health.yaml, the step manifests/README.md documents), argocd-secret
# and the default AppProject; then Redis, argocd-repo-server and argocd-application-controller,
# each answering before this returns.
gitops_argocd_up() {
  local argocd crds k8s_bin redis_port repo_port repo_metrics controller_metrics
  argocd="$(sluice_argocd_bin)" || return 1
  crds="$(dirname "$argocd")/crds"
  k8s_bin="$(sluice_k8s_bin helm)" || return 1
  gitops_kubectl apply --server-side -f "$crds/application-crd.yaml" -f "$crds/appproject-crd.yaml" >/dev/null
  gitops_kubectl wait --for=condition=Established --timeout=60s \
    crd/applications.argoproj.io crd/appprojects.argoproj.io >/dev/null
  gitops_kubectl create namespace argocd >/dev/null
  # Argo CD reads only settings objects labelled part-of=argocd.
  gitops_kubectl -n argocd create configmap argocd-cm >/dev/null
  gitops_kubectl -n argocd create secret generic argocd-secret >/dev/null
  gitops_kubectl -n argocd label configmap/argocd-cm secret/argocd-secret \
    app.kubernetes.io/part-of=argocd >/dev/null
  gitops_kubectl -n argocd patch configmap argocd-cm \
    --patch-file "$SLUICE_CLUSTER_ROOT/../../manifests/argocd/argocd-cm-health.yaml" >/dev/null
  gitops_kubectl apply -f - >/dev/null <<'YAML'
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: default, namespace: argocd}
spec:
  sourceRepos: ["*"]
  destinations: [{namespace: "*", server: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
YAML

  # TMPDIR: the repo server clones into $TMPDIR/_argocd-repo and leaves the clones there.
  mkdir -p "$GITOPS_WORK/argocd/tls" "$GITOPS_WORK/argocd/ssh" "$GITOPS_WORK/argocd/gpg" \
    "$GITOPS_WORK/argocd/home" "$GITOPS_WORK/argocd/tmp"
  sluice_free_port redis_port || return 1
  sluice_free_port repo_port || return 1
  sluice_free_port repo_metrics || return 1
  sluice_free_port controller_metrics || return 1
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    >"$GITOPS_WORK/redis.log" 2>&1 &
  GITOPS_PIDS+=($!)
  # The repo server runs git, Argo CD's git-verify-wrapper.sh, and the cluster's helm (the one
  # the chart is tested with).
  HOME="$GITOPS_WORK/argocd/home" TMPDIR="$GITOPS_WORK/argocd/tmp" PATH="$argocd:$k8s_bin:$PATH" \
    ARGOCD_GPG_ENABLED=false \
    ARGOCD_TLS_DATA_PATH="$GITOPS_WORK/argocd/tls" ARGOCD_SSH_DATA_PATH="$GITOPS_WORK/argocd/ssh" \
    ARGOCD_GNUPGHOME="$GITOPS_WORK/argocd/gpg" \
    "$argocd/argocd-repo-server" --address 127.0.0.1 --port "$repo_port" \
    --metrics-address 127.0.0.1 --metrics-port "$repo_metrics" --disable-tls --client-ca-path= \
    --redis "127.0.0.1:$redis_port" --loglevel info >"$GITOPS_WORK/repo-server.log" 2>&1 &
  GITOPS_PIDS+=($!)
  gitops_wait 60 curl -sf "http://127.0.0.1:$repo_metrics/metrics" || {
    echo "argocd-repo-server did not answer within 60 s" >&2
    return 1
  }
  # ARGOCD_FAKE_IN_CLUSTER: the in-cluster destination https://kubernetes.default.svc is the
  # cluster of $KUBECONFIG, as when the controller runs in a pod of that cluster.
  # --persist-resource-health: each resource's health in the Application's status.resources, as
  # before v3 (since then it is kept in the resource tree that argocd-server serves, which these
  # tests do not run); the Application's own health is in its status either way.
  HOME="$GITOPS_WORK/argocd/home" TMPDIR="$GITOPS_WORK/argocd/tmp" ARGOCD_FAKE_IN_CLUSTER=true \
    ARGOCD_TLS_DATA_PATH="$GITOPS_WORK/argocd/tls" ARGOCD_SSH_DATA_PATH="$GITOPS_WORK/argocd/ssh" \
    "$argocd/argocd-application-controller" --kubeconfig "$KUBECONFIG" --namespace argocd \
    --redis "127.0.0.1:$redis_port" --repo-server "127.0.0.1:$repo_port" --repo-server-plaintext \
    --metrics-port "$controller_metrics" --app-resync "${GITOPS_APP_RESYNC:-60}" \
    --persist-resource-health --loglevel info \
    >"$GITOPS_WORK/controller.log" 2>&1 &
  GITOPS_PIDS+=($!)
  gitops_wait 60 curl -sf "http://127.0.0.1:$controller_metrics/metrics" || {
    echo "argocd-application-controller did not answer within 60 s" >&2
    return 1
  }
}

# gitops_apply_app FILE [SED_EXPR...]: applies an Application of manifests/argocd/ with its
# source pointed at the local repository (and the extra sed expressions applied).
gitops_apply_app() {
  local file="$1" args=() e
  shift
  for e in "$@"; do args+=(-e "$e"); done
  sed -e "s|repoURL: .*|repoURL: $GITOPS_REPO_URL|" "${args[@]}" \
    "$SLUICE_CLUSTER_ROOT/../../manifests/argocd/$file" | gitops_kubectl apply -f - >/dev/null
}

# gitops_app APP JSONPATH: a field of an Application.
gitops_app() { gitops_kubectl -n argocd get application "$1" -o jsonpath="{$2}" 2>/dev/null; }
gitops_app_is() { [[ "$(gitops_app "$1" "$2")" == "$3" ]]; }

# gitops_health APP KIND NAME: "<health status>|<health message>" that Argo CD reports for one
# of APP's resources (empty when it reports none).
gitops_health() {
  gitops_kubectl -n argocd get application "$1" -o json 2>/dev/null | python3 -c '
import json, sys
app = json.load(sys.stdin)
for r in app.get("status", {}).get("resources", []):
    if r.get("kind") == sys.argv[1] and r.get("name") == sys.argv[2]:
        h = r.get("health") or {}
        print((h.get("status") or "") + "|" + (h.get("message") or ""))
' "$2" "$3"
}
gitops_health_is() { [[ "$(gitops_health "$1" "$2" "$3")" == "$4"* ]]; }

# gitops_synced_at APP SHA: APP is Synced to commit SHA, its last sync operation Succeeded at
# SHA, and every one of its resources is Synced.
gitops_synced_at() {
  gitops_app_is "$1" .status.sync.status Synced && gitops_app_is "$1" .status.sync.revision "$2" &&
    gitops_app_is "$1" .status.operationState.phase Succeeded &&
    gitops_app_is "$1" .status.operationState.syncResult.revision "$2" &&
    [[ -z "$(gitops_app "$1" '.status.resources[?(@.status!="Synced")].name')" ]]
}

# gitops_refresh APP normal|hard: asks Argo CD to compare APP with Git again now (what a Git
# webhook does); hard also drops the repo server's cached manifests.
gitops_refresh() {
  gitops_kubectl -n argocd annotate application "$1" "argocd.argoproj.io/refresh=$2" --overwrite >/dev/null
}
# gitops_refreshed APP: Argo CD has handled the last gitops_refresh (it removes the annotation).
gitops_refreshed() {
  [[ -z "$(gitops_app "$1" '.metadata.annotations.argocd\.argoproj\.io/refresh')" ]]
}

# gitops_logs_tail: the last lines of each component's log, for a failure message.
gitops_logs_tail() {
  local f
  for f in controller repo-server git-daemon redis; do
    [[ -s "$GITOPS_WORK/$f.log" ]] || continue
    echo "--- $GITOPS_WORK/$f.log (last lines)"
    tail -n 20 "$GITOPS_WORK/$f.log"
  done
}
