#!/usr/bin/env bash
# gitops.sh OUT: Sluice run by GitOps on a cluster whose node(s) hold the images of e2e/images (the
# real node of e2e/cluster/node-up.sh: `SLUICE_SCENARIO=gitops e2e/scenario/on-node.sh`). Argo CD's
# application controller and repo server, Redis and a Git repository (`git daemon`) run on this
# host on 127.0.0.1 (e2e/scenario/argocd.sh); KUBECONFIG names the cluster. Each step asserts what
# it shows; the first failure stops the run (exit 1). Figures go to OUT/report.txt, logs to OUT/.
#
#   1. the model repository (e2e/models), then the Application of manifests/argocd/sluice.yaml
#      (the chart from Git, with the built images): Synced, and Healthy once the operator is Ready
#   2. the Application of manifests/argocd/models.yaml: md/fraud from Git, Healthy in Argo CD
#      (our health check, argocd-cm-health.yaml) once the operator reports it Ready
#   3. with load running (sluice-load, 100 requests/s through the router), a commit bumping the
#      model to version 2: Argo CD syncs it, reports md/fraud Progressing during the canary and
#      Healthy after it, with no failed request; the Application stays Synced at that commit
#   4. a commit of a faulty version 3 (SLUICE_FAULT_ERROR_PERCENT=20): the operator rolls it back on
#      its own and Argo CD reports md/fraud Degraded with the rollback's reason, while the
#      Application stays Synced at that commit (Git says version 3; the cluster runs version 2
#      on purpose, and says why in status, which is no drift)
#   5. the Applications deleted with Argo CD's resources finalizer: nothing they made is left
#
# Environment: KUBECTL (default: the cluster's), SLUICE_LOAD (default build/e2e/canary/sluice-load).
# The host must reach Service IPs (kube-proxy, as on the real node).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SLUICE_REPO_ROOT/e2e/images/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/argocd.sh"

[[ $# -eq 1 ]] || { echo "usage: $0 OUT" >&2; exit 2; }
[[ -n "${KUBECONFIG:-}" ]] || { echo "e2e/scenario: KUBECONFIG is not set" >&2; exit 2; }
mkdir -p "$1"
out="$(cd "$1" && pwd)"
report="$out/report.txt"
: >"$report"
KUBECTL="${KUBECTL:-$(sluice_k8s_bin kubectl)/kubectl}"
GITOPS_KUBECTL="$KUBECTL"
GITOPS_WORK="$out/argocd"
mkdir -p "$GITOPS_WORK"
SLUICE_LOAD="${SLUICE_LOAD:-$SLUICE_REPO_ROOT/${BUILD:-build}/e2e/canary/sluice-load}"
[[ -x "$SLUICE_LOAD" ]] || { echo "e2e/scenario: $SLUICE_LOAD is missing (cmake --build build --target sluice-load)" >&2; exit 1; }
sluice_argocd_bin >/dev/null
version="$(sluice_version)"
kubectl() { "$KUBECTL" "$@"; }

ns=fraud  # manifests/argocd/models.yaml's destination
started=$SECONDS
step() { printf '\n== [%3ds] %s\n' "$((SECONDS - started))" "$*"; }
measure() {
  echo "measured: $*"
  echo "$*" >>"$report"
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "${2:-$(now)}"; }
wait_for() {
  local seconds="$1" what="$2"
  shift 2
  gitops_wait "$seconds" "$@" || fail "$what (not within $seconds s)"
}

pids=()
on_exit() {
  local rc=$? p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if ((rc != 0)); then
    echo "--- state at the failure (logs in $out) ---" >&2
    kubectl -n argocd get applications -o yaml >"$out/applications.yaml" 2>/dev/null || true
    kubectl get md,deploy,pods -A -o wide >&2 2>/dev/null || true
    gitops_logs_tail >&2
    kubectl logs -n sluice-system deploy/sluice-sluice-operator >"$out/operator.log" 2>&1 || true
    failure_summary "$rc"
  fi
  gitops_stop
}
trap on_exit EXIT

# watch_health FILE: every 0.5 s, "<unix time> <health>|<message>" of md/fraud as Argo CD reports
# it, for as long as the scenario runs.
watch_health() {
  (
    while :; do
      echo "$(now) $(gitops_health fraud-models ModelDeployment fraud)" >>"$1"
      sleep 0.5
    done
  ) &
  pids+=($!)
  health_pid=$!
}
stop_watch() { kill "$health_pid" 2>/dev/null || true; wait "$health_pid" 2>/dev/null || true; }
start_load() {
  "$SLUICE_LOAD" --url="$1/v2/models/fraud/infer" --body-file="$out/request-1.json" --rate=100 \
    --workers=8 --timeout-ms=5000 --status-file="$out/$2.json" >"$out/$2.log" 2>&1 &
  pids+=($!)
  load_pid=$!
}
stop_load() {
  kill -TERM "$load_pid"
  wait "$load_pid" || fail "sluice-load exited with $?"
}
fraud_request "$out/request-1.json" "$out/expected-1.json" 1
model() { echo "$GITOPS_CHECKOUT/models/fraud-modeldeployment.yaml"; }

# --- 1. the model repository; Argo CD; the chart from Git ----------------------------------------
step "the model repository: e2e/models/models.yaml"
sed "s|sluice-e2e-models:[0-9][0-9.]*|sluice-e2e-models:$version|" "$SLUICE_REPO_ROOT/e2e/models/models.yaml" |
  kubectl apply -f -
kubectl rollout status -n sluice-models deployment/models --timeout=180s

step "a Git repository (git daemon on 127.0.0.1): charts/sluice, crds/, models/ with md/fraud"
gitops_git_up
mkdir -p "$GITOPS_CHECKOUT/charts" "$GITOPS_CHECKOUT/models"
cp -a "$SLUICE_REPO_ROOT/charts/sluice" "$GITOPS_CHECKOUT/charts/"
cp -a "$SLUICE_REPO_ROOT/crds" "$GITOPS_CHECKOUT/"
# The sample with 20 s canary steps, as fraud.sh patches it for version 2.
python3 - "$SLUICE_REPO_ROOT/crds/samples/fraud-modeldeployment.yaml" "$(model)" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
steps = ("      steps:\n      - weight: 10\n        pause: 20s\n      - weight: 50\n        pause: 20s\n"
         "      - weight: 100\n        pause: 0s\n")
text, n = re.subn(r"      steps:\n(      - weight: \d+\n        pause: \w+\n)+", steps, text)
assert n == 1, "no canary steps in the sample"
open(sys.argv[2], "w").write(text)
PY
rev1="$(gitops_commit "the chart, and the fraud model at version 1")"
wait_for 30 "git daemon serving $GITOPS_REPO_URL" git ls-remote "$GITOPS_REPO_URL" main

step "Argo CD: argocd-repo-server, argocd-application-controller, Redis (argocd-cm with Sluice's health checks)"
gitops_argocd_up || fail "Argo CD did not start"

step "Application sluice (manifests/argocd/sluice.yaml) from Git, image tag $version"
t0="$(now)"
gitops_apply_app sluice.yaml \
  "s|^      valuesObject:$|      valuesObject:\n        image:\n          tag: \"$version\"\n          pullPolicy: IfNotPresent|"
wait_for 300 "Application sluice Synced at $rev1" gitops_synced_at sluice "$rev1"
wait_for 300 "Application sluice Healthy (the operator Ready)" gitops_app_is sluice .status.health.status Healthy
measure "Application sluice applied -> Synced and Healthy $(since "$t0")s"

# --- 2. md/fraud from Git --------------------------------------------------------------------------
step "Application fraud-models (manifests/argocd/models.yaml): md/fraud from Git"
t0="$(now)"
gitops_apply_app models.yaml "s|path: crds/samples|path: models|"
wait_for 180 "Application fraud-models Synced at $rev1" gitops_synced_at fraud-models "$rev1"
wait_for 300 "md/fraud Healthy in Argo CD" gitops_health_is fraud-models ModelDeployment fraud "Healthy|"
wait_for 60 "Application fraud-models Healthy" gitops_app_is fraud-models .status.health.status Healthy
measure "Application fraud-models applied -> md/fraud Healthy in Argo CD $(since "$t0")s"
echo "md/fraud in Argo CD: $(gitops_health fraud-models ModelDeployment fraud)"

# --- 3. a commit: version 2 ------------------------------------------------------------------------
url="http://$(kubectl get service fraud -n "$ns" -o jsonpath='{.spec.clusterIP}'):80"
step "load: 100 requests/s through the router ($url)"
start_load "$url" load-canary
wait_for_load "$out/load-canary.json" 's["recent"]["total"] >= 150 and s["recent"]["failed"] == 0' 60 \
  "version 1 answers the load" || exit 1

step "a commit: model version 2"
sed -i -e 's|/fraud/1/fraud.json|/fraud/2/fraud.json|' -e 's|^    version: "1"$|    version: "2"|' "$(model)"
grep -q '^    version: "2"$' "$(model)" || fail "the version was not bumped"
rev2="$(gitops_commit "fraud model version 2")"
watch_health "$out/health-v2.txt"
t0="$(now)"
gitops_refresh fraud-models normal  # what Git's webhook does
wait_for 120 "Application fraud-models Synced at $rev2" gitops_synced_at fraud-models "$rev2"
measure "commit version 2 -> Synced $(since "$t0")s"
# The canary promoted: phase Healthy of the current generation, no canary, only version 2 answering.
promoted() {
  local p c og g
  IFS='|' read -r p c og g <<<"$(kubectl -n "$ns" get md fraud \
    -o jsonpath='{.status.phase}|{.status.canaryRevision}|{.status.observedGeneration}|{.metadata.generation}')"
  [[ "$p" == Healthy && -z "$c" && "$og" == "$g" ]] &&
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if list(s["recent"]["by_version"]) == ["2"] else 1)' \
      "$out/load-canary.json"
}
wait_for 300 "version 2 promoted (phase Healthy, only version 2 answering)" promoted
wait_for 60 "md/fraud Healthy in Argo CD" gitops_health_is fraud-models ModelDeployment fraud "Healthy|"
stop_watch
measure "commit version 2 -> md/fraud Healthy in Argo CD $(since "$t0")s"
python3 - "$out/health-v2.txt" <<'PY' || fail "Argo CD did not report Progressing then Healthy: $(cut -d' ' -f2- "$out/health-v2.txt" | uniq | tr '\n' ';')"
import sys
seen = []
for line in open(sys.argv[1]):
    status = line.split(" ", 1)[1].split("|", 1)[0] if " " in line else ""
    if status and (not seen or seen[-1] != status):
        seen.append(status)
print("md/fraud health in Argo CD after the commit:", " -> ".join(seen))
sys.exit(0 if "Progressing" in seen and seen[-1] == "Healthy" and seen.index("Progressing") < len(seen) - 1 else 1)
PY
failed="$(load_field "$out/load-canary.json" 's["failed"]')"
measure "failed requests during the canary of version 2: $failed"
[[ "$failed" == 0 ]] || fail "$failed requests failed during a healthy canary"
gitops_synced_at fraud-models "$rev2" || fail "Application fraud-models is not Synced at $rev2 after the rollout"
stop_load

# --- 4. a commit: a faulty version 3 ---------------------------------------------------------------
step "a commit: version 3, which fails 20 % of its answers (SLUICE_FAULT_ERROR_PERCENT=20)"
start_load "$url" load-fault
wait_for_load "$out/load-fault.json" 's["ok"] >= 100 and s["failed"] == 0' 60 "version 2 answers the load" || exit 1
python3 - "$(model)" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
assert '    version: "2"\n' in text and "  runtime:\n" in text
text = text.replace('    version: "2"\n', '    version: "3"\n')
text = text.replace("  runtime:\n", "  runtime:\n    env:\n    - name: SLUICE_FAULT_ERROR_PERCENT\n      value: \"20\"\n", 1)
open(path, "w").write(text)
PY
rev3="$(gitops_commit "fraud model version 3")"
watch_health "$out/health-v3.txt"
t0="$(now)"
gitops_refresh fraud-models normal
wait_for 120 "Application fraud-models Synced at $rev3" gitops_synced_at fraud-models "$rev3"
wait_for 300 "md/fraud Degraded in Argo CD after the rollback" \
  gitops_health_is fraud-models ModelDeployment fraud "Degraded|"
stop_watch
measure "commit version 3 -> md/fraud Degraded in Argo CD $(since "$t0")s"
echo "md/fraud in Argo CD: $(gitops_health fraud-models ModelDeployment fraud)"
[[ "$(kubectl -n "$ns" get md fraud -o jsonpath='{.status.phase}')" == RolledBack ]] ||
  fail "md/fraud is Degraded in Argo CD but its phase is not RolledBack"
gitops_health_is fraud-models ModelDeployment fraud "Degraded|AnalysisFailed" ||
  gitops_health_is fraud-models ModelDeployment fraud "Degraded|RouterGuardTripped" ||
  gitops_health_is fraud-models ModelDeployment fraud "Degraded|RolledBack" ||
  fail "Argo CD's message does not say why: $(gitops_health fraud-models ModelDeployment fraud)"
wait_for_load "$out/load-fault.json" 'list(s["recent"]["by_version"]) == ["2"] and s["recent"]["failed"] == 0' 60 \
  "after the rollback only version 2 answers" || exit 1
stop_load
wait_for 60 "Application fraud-models health Degraded" gitops_app_is fraud-models .status.health.status Degraded
gitops_refresh fraud-models hard
wait_for 120 "hard refresh of Application fraud-models" gitops_refreshed fraud-models
gitops_synced_at fraud-models "$rev3" || fail "Application fraud-models is not Synced at $rev3 after the rollback"
echo "Application fraud-models: $(gitops_app fraud-models .status.sync.status) at $rev3," \
  "health $(gitops_app fraud-models .status.health.status)"

# --- 5. the Applications deleted with their resources ----------------------------------------------
step "the Applications deleted with Argo CD's resources finalizer"
t0="$(now)"
for app in fraud-models sluice; do
  kubectl -n argocd patch application "$app" --type=merge \
    -p '{"metadata":{"finalizers":["resources-finalizer.argocd.argoproj.io"]}}' >/dev/null
  kubectl -n argocd delete application "$app" --timeout=300s
done
[[ -z "$(kubectl get md -A -o name 2>/dev/null)" ]] || fail "ModelDeployments left: $(kubectl get md -A -o name)"
[[ -z "$(kubectl -n sluice-system get deployments -o name 2>/dev/null)" ]] || fail "the operator Deployment is left"
measure "Applications deleted -> nothing of theirs left $(since "$t0")s"
kubectl delete namespace "$ns" sluice-models --wait=false >/dev/null
measure "scenario total $((SECONDS - started))s"
