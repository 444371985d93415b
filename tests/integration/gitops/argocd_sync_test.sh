#!/usr/bin/env bash
# argocd_sync_test.sh OPERATOR_BIN — Sluice installed by Argo CD from Git, against a real
# kube-apiserver (no node, so no pod ever runs):
#  - Argo CD's application controller and repo server (e2e/cluster/build-argocd.sh), Redis, and
#    a Git repository served by `git daemon` (e2e/scenario/argocd.sh), argocd-cm patched with
#    manifests/argocd/argocd-cm-health.yaml as manifests/README.md says;
#  - the Application of manifests/argocd/sluice.yaml, pointed at that repository, installs the
#    chart (CRDs, the operator's Deployment and RBAC, valuesObject applied): Synced, its
#    operation Succeeded, every resource Synced, and still no drift after a hard refresh;
#  - the Application of manifests/argocd/models.yaml syncs a ModelDeployment; sluice-operator
#    (a process here, with the admin kubeconfig) writes its status, and Argo CD reports the health
#    our Lua computes from it: Progressing with the operator's Ready reason (no pod becomes Ready
#    without a node). The Application stays Synced after a hard refresh: the status the operator
#    writes is no drift;
#  - a commit bumping spec.model.version is synced (automated sync): the Application is Synced at
#    the new commit, the ModelDeployment's spec follows and the operator observes it;
#  - a commit naming a FeatureView that does not exist: the operator sets Degraded=True
#    (FeatureViewNotFound) and Argo CD reports the ModelDeployment, and so the Application,
#    Degraded with that reason, still Synced.
# Runs in a network namespace of its own (unshare --net, loopback only; needs root): the
# application controller's metrics server listens on 0.0.0.0, which there is that loopback.
set -euo pipefail
op_bin="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"

if [[ "${SLUICE_GITOPS_NETNS:-}" != 1 ]]; then
  SLUICE_GITOPS_NETNS=1 exec unshare --net -- bash "${BASH_SOURCE[0]}" "$@"
fi
ip link set lo up

source "$root/e2e/scenario/argocd.sh"
bin="$(sluice_k8s_bin kube-apiserver etcd kubectl helm)"
sluice_argocd_bin >/dev/null
GITOPS_WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-argocd.XXXXXX")"
GITOPS_KUBECTL="$bin/kubectl"
GITOPS_APP_RESYNC=30
op_pid=""
cleanup() {
  local rc=$?
  if [[ -n "$op_pid" ]]; then kill -TERM "$op_pid" 2>/dev/null || true; wait "$op_pid" 2>/dev/null || true; fi
  gitops_stop
  bash "$root/e2e/cluster/down.sh" "$GITOPS_WORK/cluster" >/dev/null 2>&1 || true
  if ((rc == 0)); then rm -rf "$GITOPS_WORK"; else echo "state and logs: $GITOPS_WORK" >&2; fi
}
trap cleanup EXIT
kubectl() { "$bin/kubectl" "$@"; }
fail() {
  echo "FAIL: $*" >&2
  gitops_logs_tail >&2
  [[ -f "$GITOPS_WORK/operator.log" ]] && { echo "--- operator.log (last lines)"; tail -n 20 "$GITOPS_WORK/operator.log"; } >&2
  kubectl -n argocd get applications -o yaml >"$GITOPS_WORK/applications.yaml" 2>/dev/null || true
  exit 1
}
# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds, or fail naming WHAT.
wait_for() {
  local seconds="$1" what="$2"
  shift 2
  gitops_wait "$seconds" "$@" || fail "$what (not within $seconds s)"
}
model_file() { echo "$GITOPS_CHECKOUT/models/fraud-modeldeployment.yaml"; }

echo "== a kube-apiserver; the Git repository on 127.0.0.1"
bash "$root/e2e/cluster/up.sh" "$GITOPS_WORK/cluster" >"$GITOPS_WORK/up.log"
export KUBECONFIG="$GITOPS_WORK/cluster/kubeconfig"
gitops_git_up
# The repository: the chart (its crds/ links into crds/, as in this repository) and a folder of
# ModelDeployments, as an ML team keeps them (one replica: no pod runs here anyway).
mkdir -p "$GITOPS_CHECKOUT/charts" "$GITOPS_CHECKOUT/models"
cp -a "$root/charts/sluice" "$GITOPS_CHECKOUT/charts/"
cp -a "$root/crds" "$GITOPS_CHECKOUT/"
sed 's/^  replicas: 2$/  replicas: 1/' "$root/crds/samples/fraud-modeldeployment.yaml" >"$(model_file)"
grep -q '^  replicas: 1$' "$(model_file)" || fail "the sample has no 'replicas: 2' to change"
rev1="$(gitops_commit "the chart and the fraud model, version 1")"
wait_for 30 "git daemon serving $GITOPS_REPO_URL" git ls-remote "$GITOPS_REPO_URL" main

echo "== Argo CD: argocd-repo-server, argocd-application-controller, Redis"
gitops_argocd_up || fail "Argo CD did not start"
"$(sluice_argocd_bin)/argocd" version

echo "== Application sluice (manifests/argocd/sluice.yaml): the chart from Git"
t0=$SECONDS
gitops_apply_app sluice.yaml
wait_for 300 "Application sluice Synced at $rev1, operation Succeeded" gitops_synced_at sluice "$rev1"
echo "synced in $((SECONDS - t0)) s:" \
  "$(gitops_app sluice '.status.resources[*].kind' | tr ' ' '\n' | sort | uniq -c | tr -s ' \n' ' ')"
kubectl wait --for=condition=Established --timeout=60s \
  crd/modeldeployments.sluice.dev crd/featureviews.sluice.dev >/dev/null
[[ "$(kubectl -n sluice-system get deployment sluice-sluice-operator -o jsonpath='{.spec.replicas}')" == 2 ]] ||
  fail "the operator Deployment is missing or valuesObject operator.replicas=2 was not applied"
for kind in CustomResourceDefinition Deployment ServiceAccount ClusterRole ClusterRoleBinding; do
  [[ -n "$(gitops_app sluice ".status.resources[?(@.kind==\"$kind\")].name")" ]] ||
    fail "Application sluice manages no $kind"
done
echo "== no drift: a hard refresh compares the cluster with Git again"
gitops_refresh sluice hard
wait_for 120 "hard refresh of Application sluice" gitops_refreshed sluice
gitops_synced_at sluice "$rev1" || fail "Application sluice drifted: $(gitops_app sluice .status.sync.status);" \
  "out of sync: $(gitops_app sluice '.status.resources[?(@.status!="Synced")].name')"

echo "== sluice-operator (a process with the admin kubeconfig: no node here for its pod)"
"$op_bin" --kubeconfig "$KUBECONFIG" --leader-elect=off --metrics-addr=127.0.0.1:0 \
  --health-addr=127.0.0.1:0 --log-format=text >"$GITOPS_WORK/operator.log" 2>&1 &
op_pid=$!

echo "== Application fraud-models (manifests/argocd/models.yaml): a ModelDeployment from Git"
gitops_apply_app models.yaml "s|path: crds/samples|path: models|"
wait_for 180 "Application fraud-models Synced at $rev1" gitops_synced_at fraud-models "$rev1"
wait_for 60 "md/fraud status written by the operator" \
  bash -c "[[ -n \"\$('$bin/kubectl' -n fraud get md fraud -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}')\" ]]"
ready_reason="$(kubectl -n fraud get md fraud -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}')"
wait_for 120 "md/fraud health Progressing ($ready_reason) in Application fraud-models; it is" \
  gitops_health_is fraud-models ModelDeployment fraud "Progressing|$ready_reason"
echo "md/fraud in Argo CD: $(gitops_health fraud-models ModelDeployment fraud)"
gitops_refresh fraud-models hard
wait_for 120 "hard refresh of Application fraud-models" gitops_refreshed fraud-models
gitops_synced_at fraud-models "$rev1" ||
  fail "the operator's status is drift to Argo CD: $(gitops_app fraud-models .status.sync.status)"

echo "== a commit: model version 2"
sed -i -e 's|/fraud/1/fraud.json|/fraud/2/fraud.json|' -e 's|^  version: "1"$|  version: "2"|' \
  -e 's|^    version: "1"$|    version: "2"|' "$(model_file)"
grep -q 'version: "2"' "$(model_file)" || fail "the version was not bumped in $(model_file)"
rev2="$(gitops_commit "fraud model version 2")"
t0=$SECONDS
gitops_refresh fraud-models normal  # what Git's webhook does
wait_for 180 "Application fraud-models Synced at $rev2" gitops_synced_at fraud-models "$rev2"
echo "version 2 synced $((SECONDS - t0)) s after the commit"
[[ "$(kubectl -n fraud get md fraud -o jsonpath='{.spec.model.version}')" == 2 ]] ||
  fail "md/fraud spec.model.version is not 2"
generation="$(kubectl -n fraud get md fraud -o jsonpath='{.metadata.generation}')"
wait_for 60 "the operator observed generation $generation" \
  bash -c "[[ \"\$('$bin/kubectl' -n fraud get md fraud -o jsonpath='{.status.observedGeneration}')\" == $generation ]]"
wait_for 120 "md/fraud health Progressing at version 2" \
  gitops_health_is fraud-models ModelDeployment fraud "Progressing|"

echo "== a commit naming a FeatureView that does not exist"
python3 - "$(model_file)" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
anchor = "  replicas: 1\n"
assert anchor in text, "no replicas line"
text = text.replace(anchor, "  features:\n  - name: no-such-features\n    features: [velocity_last_24h]\n" + anchor)
open(path, "w").write(text)
PY
rev3="$(gitops_commit "fraud model reads features of a view not created yet")"
gitops_refresh fraud-models normal
wait_for 180 "Application fraud-models Synced at $rev3" gitops_synced_at fraud-models "$rev3"
wait_for 120 "md/fraud health Degraded (FeatureViewNotFound)" \
  gitops_health_is fraud-models ModelDeployment fraud "Degraded|FeatureViewNotFound"
wait_for 120 "Application fraud-models health Degraded" gitops_app_is fraud-models .status.health.status Degraded
echo "md/fraud in Argo CD: $(gitops_health fraud-models ModelDeployment fraud)"
gitops_app_is fraud-models .status.sync.status Synced || fail "Application fraud-models is no longer Synced"
echo "PASS"
