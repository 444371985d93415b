#!/usr/bin/env bash
# fraud.sh [--demo] OUT: Sluice as a platform team and an ML team use it, on any cluster whose
# nodes hold the images of e2e/images (the real node of e2e/cluster/node-up.sh, or kind through
# e2e/kind). KUBECONFIG names the cluster. Each step asserts what it shows; the first failure
# stops the run with a message (exit 1). Figures go to OUT/report.txt, logs to OUT/.
#
#   1. the model repository (e2e/models) and `helm install` of charts/sluice with the built images;
#      the operator becomes Ready and leader under the chart's ServiceAccount and RBAC
#   2. `kubectl apply -f crds/samples/fraud-modeldeployment.yaml`, `kubectl wait
#      --for=condition=Ready`; predictions through the router's Service from the host and from a
#      pod match XGBoost's reference outputs; `kubectl logs` of a server pod is JSON lines
#   3. with load running (sluice-load), version 2 walks 10 % → 50 % → 100 % on the analysis of the
#      router's metrics (noDataPolicy Pause, as the sample says) with no failed request
#   4. a faulty version 3 (20 % of its answers fail, SLUICE_FAULT_ERROR_PERCENT) is rolled back on
#      its own with no failed request (the router retries its failures on version 2 and its guard
#      trips); the time from its first weight to all traffic on version 2 is measured
#   5. crds/samples/rolling-modeldeployment.yaml replaced by a rolling update under load: no failed
#      request, never more pods than replicas + maxSurge nor fewer Ready than replicas - maxUnavailable
#   6. online features (features.sh): Redis, the two FeatureViews of
#      crds/samples/fraud-featureviews.yaml materialized by real Jobs, and
#      crds/samples/fraud-enriched-modeldeployment.yaml, whose predictions equal md/fraud's on the
#      rows its features complete, follow a value changed in Redis, come back when the view is
#      materialized again, and fall back to the declared defaults (200s) while Redis is down
#   7. the ModelDeployments and FeatureViews deleted, `helm uninstall`: no object of Sluice's is left
#
# --demo narrates: the `kubectl get md` columns and the load's split as they change, and Events;
# it leaves out step 5.
# Environment: KUBECTL, HELM (default: the cluster binaries, else PATH), SLUICE_LOAD (the
# sluice-load binary; default build/e2e/canary/sluice-load), SLUICE_REACH=clusterip (the host
# reaches Service IPs, as on the real node; default) or port-forward (kind).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SLUICE_REPO_ROOT/e2e/images/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/features.sh"

demo=0
if [[ "${1:-}" == "--demo" ]]; then
  demo=1
  shift
fi
[[ $# -eq 1 ]] || { echo "usage: $0 [--demo] OUT" >&2; exit 2; }
[[ -n "${KUBECONFIG:-}" ]] || { echo "e2e/scenario: KUBECONFIG is not set" >&2; exit 2; }
mkdir -p "$1"
out="$(cd "$1" && pwd)"
report="$out/report.txt"
: >"$report"
k8s_bin="$(sluice_k8s_bin kubectl helm 2>/dev/null || true)"
KUBECTL="${KUBECTL:-$([[ -n "$k8s_bin" ]] && echo "$k8s_bin/kubectl" || echo kubectl)}"
HELM="${HELM:-$([[ -n "$k8s_bin" ]] && echo "$k8s_bin/helm" || echo helm)}"
SLUICE_LOAD="${SLUICE_LOAD:-$SLUICE_REPO_ROOT/${BUILD:-build}/e2e/canary/sluice-load}"
KUBECTL_SLUICE="${KUBECTL_SLUICE:-$SLUICE_REPO_ROOT/${BUILD:-build}/operator/kubectl-sluice/kubectl-sluice}"
reach="${SLUICE_REACH:-clusterip}"
[[ -x "$SLUICE_LOAD" ]] || { echo "e2e/scenario: $SLUICE_LOAD is missing (cmake --build build --target sluice-load)" >&2; exit 1; }
version="$(sluice_version)"
# The Feast SDK's python (generates the feature sources; writes Redis with Feast's encoders).
feast_python="$(bash "$SLUICE_REPO_ROOT/e2e/scripts/feast-venv.sh")"
kubectl() { "$KUBECTL" "$@"; }
helm() { "$HELM" "$@" 2> >(grep -v "found symbolic link" >&2); }

ns=sluice-demo
system_ns=sluice-system
started=$SECONDS
if [[ -t 1 ]]; then
  step() { printf '\n\033[1m== [%3ds] %s\033[0m\n' "$((SECONDS - started))" "$*"; }
else
  step() { printf '\n== [%3ds] %s\n' "$((SECONDS - started))" "$*"; }
fi
say() { ((demo)) && echo "$@" || true; }
measure() {
  echo "measured: $*"
  echo "$*" >>"$report"
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "${2:-$(now)}"; }

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
on_exit() {
  local rc=$?
  cleanup
  if ((rc != 0)); then
    echo "--- state at the failure (logs in $out) ---" >&2
    kubectl get md,deploy,pods -A -o wide >&2 2>/dev/null || true
    kubectl get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -n 40 >&2 || true
    kubectl logs -n "$system_ns" deploy/sluice-sluice-operator >"$out/operator.log" 2>&1 || true
    echo "operator log: $out/operator.log" >&2
    failure_summary "$rc"
  fi
}
trap on_exit EXIT

# service_url SERVICE NAMESPACE: sets svc_url to an address on the host for the Service's port 80:
# its ClusterIP, or a kubectl port-forward that runs until the scenario ends.
service_url() {
  local svc="$1" namespace="$2"
  if [[ "$reach" == clusterip ]]; then
    svc_url="http://$(kubectl get service "$svc" -n "$namespace" -o jsonpath='{.spec.clusterIP}'):80"
    return 0
  fi
  local port_file="$out/port-forward-$svc" i p
  kubectl port-forward -n "$namespace" "service/$svc" ":80" >"$port_file" 2>&1 &
  pids+=($!)
  for ((i = 0; i < 100; i++)); do
    p="$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\).*/\1/p' "$port_file" | head -n1)"
    if [[ -n "$p" ]]; then
      svc_url="http://127.0.0.1:$p"
      return 0
    fi
    sleep 0.1
  done
  fail "kubectl port-forward to service/$svc did not start: $(cat "$port_file")"
}

# watch_md NAME FILE: one line per change of the ModelDeployment NAME, "<unix time> phase
# canaryWeight stable canary ready", for as long as the scenario runs.
watch_md() {
  local name="$1" file="$2"
  : >"$file"
  (
    last=""
    kubectl get md "$name" -n "$ns" --watch -o \
      jsonpath='{.status.phase}|{.status.canaryWeight}|{.status.stableRevision}|{.status.canaryRevision}|{.status.readyReplicas}{"\n"}' |
      while IFS= read -r line; do
        IFS='|' read -r phase weight stable canary ready <<<"$line"
        echo "$(date +%s.%N) ${phase:--} ${weight:-0} ${stable:--} ${canary:--} ${ready:-0}" >>"$file"
        if ((demo)) && [[ "$line" != "$last" ]]; then
          last="$line"
          printf '  md/%s  %-12s stable=%-14s canary=%-14s weight=%-4s ready=%s\n' "$name" "$phase" \
            "${stable:--}" "${canary:--}" "${weight:-0}" "${ready:-0}"
        fi
      done
  ) &
  pids+=($!)
}

# start_load URL MODEL NAME RATE: sluice-load at RATE requests/s of a one-row fraud request to the
# V2 model MODEL (the ModelDeployment's name), status in OUT/NAME.json.
start_load() {
  "$SLUICE_LOAD" --url="$1/v2/models/$2/infer" --body-file="$out/request-1.json" --rate="$4" \
    --workers=8 --timeout-ms=5000 --status-file="$out/$3.json" >"$out/$3.log" 2>&1 &
  pids+=($!)
  load_pid=$!
}
stop_load() {
  kill -TERM "$load_pid"
  wait "$load_pid" || fail "sluice-load exited with $?"
}

fraud_request "$out/request.json" "$out/expected.json"
fraud_request "$out/request-1.json" "$out/expected-1.json" 1

# --- 1. the model repository and the operator ---------------------------------------------------
step "the model repository: e2e/models/models.yaml (an HTTP server in the cluster holding the fraud model)"
features_data
sed "s|sluice-e2e-models:[0-9][0-9.]*|sluice-e2e-models:$version|" "$SLUICE_REPO_ROOT/e2e/models/models.yaml" |
  kubectl apply -f -
kubectl rollout status -n sluice-models deployment/models --timeout=180s

step "helm install sluice charts/sluice -n $system_ns --create-namespace (image tag $version)"
t0="$(now)"
helm install sluice "$SLUICE_REPO_ROOT/charts/sluice" -n "$system_ns" --create-namespace \
  --set image.tag="$version" --set image.pullPolicy=IfNotPresent ${SLUICE_SCENARIO_HELM_ARGS:-}
kubectl rollout status -n "$system_ns" deployment/sluice-sluice-operator --timeout=180s
operator_ready_s="$(since "$t0")"
op_pod="$(kubectl get pods -n "$system_ns" -l app.kubernetes.io/component=operator \
  -o jsonpath='{.items[0].metadata.name}')"
sa="$(kubectl get pod -n "$system_ns" "$op_pod" -o jsonpath='{.spec.serviceAccountName}')"
[[ "$sa" == sluice-sluice-operator ]] || fail "the operator runs as ServiceAccount '$sa', not the chart's"
deadline=$((SECONDS + 60))
holder=""
until [[ "$holder" == "$op_pod"* ]]; do
  ((SECONDS < deadline)) || fail "the operator pod $op_pod did not become leader (Lease holder '$holder')"
  sleep 0.25
  holder="$(kubectl get lease sluice-operator -n "$system_ns" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)"
done
operator_leader_s="$(since "$t0")"
echo "operator pod $op_pod (ServiceAccount $sa) is Ready and holds the Lease as $holder"
measure "helm install -> operator Ready ${operator_ready_s}s, leader ${operator_leader_s}s"

# --- 2. the sample, unchanged -----------------------------------------------------------------
step "kubectl apply -f crds/samples/fraud-modeldeployment.yaml -n $ns"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
t0="$(now)"
kubectl apply -n "$ns" -f "$SLUICE_REPO_ROOT/crds/samples/fraud-modeldeployment.yaml"
watch_md fraud "$out/md-fraud.watch"
kubectl wait -n "$ns" --for=condition=Ready md/fraud --timeout=300s
measure "apply fraud sample -> Ready $(since "$t0")s"
kubectl get md -n "$ns" -o wide
pod="$(kubectl get pods -n "$ns" -l sluice.dev/modeldeployment=fraud,app.kubernetes.io/component=server \
  -o jsonpath='{.items[0].metadata.name}')"
created="$(kubectl get pod -n "$ns" "$pod" -o jsonpath='{.metadata.creationTimestamp}')"
readyat="$(kubectl get pod -n "$ns" "$pod" -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}')"
measure "server pod created -> Ready (model fetched over HTTP and loaded) $(($(date -d "$readyat" +%s) - $(date -d "$created" +%s)))s"

step "predictions through the router's Service, from the host ($reach)"
service_url fraud "$ns"
url="$svc_url"
echo "POST $url/v2/models/fraud/infer"
curl -fsS --max-time 10 --retry 20 --retry-delay 1 --retry-all-errors "$url/v2/models/fraud/infer" \
  -H 'Content-Type: application/json' -d @"$out/request.json" -o "$out/host-answer.json"
fraud_check "$out/expected.json" "$out/host-answer.json"

step "predictions from a pod, by the Service's DNS name fraud.$ns.svc.cluster.local"
kubectl run client -n "$ns" --image="$SLUICE_IMAGE_REPO/sluice-dataplane:$version" --image-pull-policy=IfNotPresent \
  --restart=Never --overrides='{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":65532}}}' \
  --command -- sleep 3600 >/dev/null
kubectl wait -n "$ns" --for=condition=Ready pod/client --timeout=120s >/dev/null
len=$(stat -c %s "$out/request.json")
kubectl exec -n "$ns" -i client -- bash -c "exec 3<>/dev/tcp/fraud.$ns.svc.cluster.local/80
  printf 'POST /v2/models/fraud/infer HTTP/1.1\r\nHost: fraud\r\nContent-Type: application/json\r\nContent-Length: $len\r\nConnection: close\r\n\r\n' >&3
  cat >&3
  cat <&3" <"$out/request.json" >"$out/pod-answer.txt"
head -n1 "$out/pod-answer.txt"
fraud_check "$out/expected.json" "$out/pod-answer.txt"

step "kubectl logs $pod (JSON lines)"
kubectl logs -n "$ns" "$pod" >"$out/server.log"
head -n 3 "$out/server.log"
python3 - "$out/server.log" <<'PY' || fail "the server's log lines are not JSON"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not lines or not all("msg" in l or "message" in l for l in lines):
    sys.exit("no JSON log lines with a message")
PY

# --- 2b. (SLUICE_SCENARIO_READY_N=N) apply -> Ready over N ModelDeployments at once -----------------
ready_n="${SLUICE_SCENARIO_READY_N:-0}"
if ((ready_n > 0)); then
  step "$ready_n ModelDeployments applied at once (1 replica each, Rolling): apply -> Ready"
  kubectl create namespace sluice-ready --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  for ((i = 0; i < ready_n; i++)); do
    cat <<YAML
apiVersion: sluice.dev/v1alpha1
kind: ModelDeployment
metadata: {name: fraud-$i, namespace: sluice-ready}
spec:
  model: {uri: "http://models.sluice-models.svc.cluster.local/fraud/1/fraud.json", version: "1"}
  replicas: 1
  rollout: {strategy: Rolling}
---
YAML
  done >"$out/ready-n.yaml"
  t0="$(now)"
  kubectl apply -f "$out/ready-n.yaml" >/dev/null
  python3 - "$KUBECTL" "$t0" "$ready_n" "$out/ready-n.txt" <<'PY' || fail "not all $ready_n ModelDeployments became Ready within 600 s"
import json, subprocess, sys, time
kubectl, t0, n, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ready = {}
deadline = time.time() + 600
while len(ready) < n and time.time() < deadline:
    items = json.loads(subprocess.check_output([kubectl, "get", "md", "-n", "sluice-ready", "-o", "json"]))["items"]
    now = time.time()
    for md in items:
        conds = md.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
            ready.setdefault(md["metadata"]["name"], now - t0)
    time.sleep(0.25)
xs = sorted(ready.values())
with open(out, "w") as f:
    f.write(" ".join(f"{x:.2f}" for x in xs) + "\n")
if len(xs) < n:
    sys.exit(1)
p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
print(f"apply -> Ready over {n} ModelDeployments: p50 {p(0.5):.2f}s p90 {p(0.9):.2f}s max {xs[-1]:.2f}s")
PY
  read -r -a xs <"$out/ready-n.txt"
  measure "apply -> Ready over $ready_n ModelDeployments at once: p50 ${xs[$((ready_n / 2))]}s, max ${xs[$((ready_n - 1))]}s"
  kubectl delete namespace sluice-ready --timeout=300s >/dev/null
fi

# --- 3. a canary promoted on live metrics -------------------------------------------------------
step "load: 100 requests/s through the router (sluice-load)"
start_load "$url" fraud load-canary 100
# A clean window first: the host's path to a new Service IP can take a moment to be programmed.
wait_for_load "$out/load-canary.json" 's["recent"]["total"] >= 150 and s["recent"]["failed"] == 0' 60 \
  "version 1 answers the load"
load_field "$out/load-canary.json" '"  load: " + str(s["ok"]) + " answers, by version " + str(s["by_version"]) + ", failed " + str(s["failed"])'

step "version 2: canary steps 10 % and 50 % for 20 s each, then 100 %, on the router's metrics"
failed_before="$(load_field "$out/load-canary.json" 's["failed"]')"
total_before="$(load_field "$out/load-canary.json" 's["total"]')"
t0="$(now)"
kubectl patch md fraud -n "$ns" --type=merge -p '{"spec":{"model":{"version":"2",
  "uri":"http://models.sluice-models.svc.cluster.local/fraud/2/fraud.json"},
  "rollout":{"canary":{"steps":[{"weight":10,"pause":"20s"},{"weight":50,"pause":"20s"},{"weight":100,"pause":"0s"}]}}}}'
deadline=$((SECONDS + 300))
while :; do
  ((SECONDS < deadline)) || fail "version 2 was not promoted within 300s"
  IFS='|' read -r p c og g <<<"$(kubectl get md fraud -n "$ns" \
    -o jsonpath='{.status.phase}|{.status.canaryRevision}|{.status.observedGeneration}|{.metadata.generation}')"
  [[ "$p" == RolledBack || "$p" == Degraded ]] && fail "version 2 went $p"
  [[ "$p" == Healthy && -z "$c" && "$og" == "$g" ]] &&
    [[ "$(kubectl get md fraud -n "$ns" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]] &&
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if list(s["recent"]["by_version"]) == ["2"] else 1)' \
      "$out/load-canary.json" && break
  # Once, at the 50 % step: the rollout as `kubectl sluice status` shows it, with live analysis.
  if [[ -z "${status_shown:-}" && -n "$c" &&
        "$(kubectl get md fraud -n "$ns" -o jsonpath='{.status.canaryWeight}')" == 50 ]]; then
    "$KUBECTL_SLUICE" status fraud -n "$ns" | tee "$out/kubectl-sluice-status.txt"
    grep -q "$c  canary  model 2  weight 50%" "$out/kubectl-sluice-status.txt" ||
      fail "kubectl sluice status does not show canary $c at 50 %"
    status_shown=1
  fi
  if ((demo)); then load_field "$out/load-canary.json" '"  load: last 2 s by version " + str(s["recent"]["by_version"]) + ", failed " + str(s["failed"])'; sleep 2; else sleep 0.5; fi
done
[[ -n "${status_shown:-}" ]] || fail "the canary was never seen at 50 % by kubectl sluice status"
promotion_s="$(since "$t0")"
weights="$(awk -v t="$t0" '$1 >= t && $3 ~ /^[0-9]+$/ && $3 > 0 {print $3}' "$out/md-fraud.watch" | uniq | paste -sd' ')"
echo "canary weights seen in status: $weights"
python3 - "$weights" <<'PY' || fail "the canary did not walk 10 -> 50 -> 100: $weights"
import sys
seen = [int(w) for w in sys.argv[1].split()]
it = iter(seen)
sys.exit(0 if all(any(w == x for x in it) for w in (10, 50)) else 1)
PY
failed="$(($(load_field "$out/load-canary.json" 's["failed"]') - failed_before))"
total="$(($(load_field "$out/load-canary.json" 's["total"]') - total_before))"
measure "canary promotion (patch -> version 2 takes all traffic) ${promotion_s}s; weights $weights; failed requests $failed of $total"
[[ "$failed" == 0 ]] || fail "$failed requests failed during a healthy canary"

# --- 4. a faulty version rolled back on its own -------------------------------------------------
step "version 3 fails 20 % of its answers (SLUICE_FAULT_ERROR_PERCENT=20): rolled back on the analysis"
# A fresh load, so its first failure is the faulty version's.
stop_load
start_load "$url" fraud load-fault 100
wait_for_load "$out/load-fault.json" 's["ok"] >= 100 and s["failed"] == 0' 60 "version 2 answers the load"
t0="$(now)"
kubectl patch md fraud -n "$ns" --type=merge -p '{"spec":{"model":{"version":"3"},
  "runtime":{"env":[{"name":"SLUICE_FAULT_ERROR_PERCENT","value":"20"}]}}}'
# The router retries the canary's failures on version 2 (spec.traffic.retryOnStable, on by
# default), so callers see version 3 only by its good answers.
wait_for_load "$out/load-fault.json" 's["by_version"].get("3", 0) > 0' 180 "the faulty canary took traffic"
# The load's start on this clock (its status file is at most 250 ms old), to place its answers.
load_start="$(python3 -c 'import json,sys,time; s=json.load(open(sys.argv[1])); print(time.time() - s["elapsed_s"])' "$out/load-fault.json")"
# The fault's onset: status.traffic first gave version 3 a weight (it fails from its first request).
fault_at="$(awk -v t0="$t0" '$1 >= t0 && $3 > 0 {print $1; exit}' "$out/md-fraud.watch")"
[[ -n "$fault_at" ]] || fault_at="$t0"
deadline=$((SECONDS + 120))
while :; do
  ((SECONDS < deadline)) || fail "version 3 was not rolled back within 120s of its first failure"
  IFS='|' read -r p w <<<"$(kubectl get md fraud -n "$ns" -o jsonpath='{.status.phase}|{.status.canaryWeight}')"
  [[ "$p" == RolledBack && ( -z "$w" || "$w" == 0 ) ]] && break
  sleep 0.2
done
rolled_back_at="$(awk '$2 == "RolledBack" {print $1; exit}' "$out/md-fraud.watch")"
[[ -n "$rolled_back_at" ]] || rolled_back_at="$(now)"
rollback_s="$(since "$fault_at" "$rolled_back_at")"
# The router follows the status: wait until the last 2 s hold only version 2 and no failure.
wait_for_load "$out/load-fault.json" 'list(s["recent"]["by_version"]) == ["2"] and s["recent"]["failed"] == 0' 30 \
  "after the rollback only version 2 answers"
stop_load
failed="$(load_field "$out/load-fault.json" 's["failed"]')"
total="$(load_field "$out/load-fault.json" 's["total"]')"
last_bad="$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(round(float(sys.argv[2]) + s["last_ok_s_by_version"].get("3", 0) - float(sys.argv[3]), 2))' "$out/load-fault.json" "$load_start" "$fault_at")"
measure "rollback: version 3 weighted -> status 100 % on version 2 ${rollback_s}s; -> last answer from version 3 ${last_bad}s; failed requests $failed of $total"
[[ "$failed" == 0 ]] || fail "$failed requests failed while the faulty canary was rolled back (its failures are retried on the stable revision)"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 30 else 1)' "$rollback_s" ||
  fail "the rollback took ${rollback_s}s (more than 30 s)"
kubectl get md fraud -n "$ns" -o wide
# What a deploy pipeline sees: `status --wait` exits 5 on a rollback, and the history says why.
rc=0
"$KUBECTL_SLUICE" status fraud -n "$ns" --wait --timeout 30s >"$out/kubectl-sluice-wait.txt" || rc=$?
[[ "$rc" == 5 ]] || fail "kubectl sluice status --wait exited $rc after the rollback, not 5 (RolledBack)"
"$KUBECTL_SLUICE" history fraud -n "$ns" | tee "$out/kubectl-sluice-history.txt"
grep -E "^[0-9]+ +[a-z0-9-]+ +3 +RolledBack +(AnalysisFailed|RouterGuardTripped)" "$out/kubectl-sluice-history.txt" >/dev/null ||
  fail "kubectl sluice history does not show version 3 rolled back on the analysis"
if ((demo)); then
  step "Events of md/fraud"
  kubectl get events -n "$ns" --field-selector involvedObject.kind=ModelDeployment,involvedObject.name=fraud \
    --sort-by=.lastTimestamp -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message | tail -n 25
fi

# --- 5. a rolling update with no failed request ---------------------------------------------------
if ((!demo)); then
step "kubectl apply -f crds/samples/rolling-modeldeployment.yaml -n $ns"
kubectl apply -n "$ns" -f "$SLUICE_REPO_ROOT/crds/samples/rolling-modeldeployment.yaml"
watch_md fraud-rolling "$out/md-rolling.watch"
kubectl wait -n "$ns" --for=condition=Ready md/fraud-rolling --timeout=300s
read -r replicas surge unavailable <<<"$(kubectl get md fraud-rolling -n "$ns" \
  -o jsonpath='{.spec.replicas} {.spec.rollout.rolling.maxSurge} {.spec.rollout.rolling.maxUnavailable}')"
service_url fraud-rolling "$ns"
rolling_url="$svc_url"
start_load "$rolling_url" fraud-rolling load-rolling 50
wait_for_load "$out/load-rolling.json" 's["recent"]["total"] >= 75 and s["recent"]["failed"] == 0' 60 \
  "fraud-rolling answers the load"
# Pods of the ModelDeployment every 250 ms: all that are not terminating, and the Ready ones.
(
  while :; do
    kubectl get pods -n "$ns" -l sluice.dev/modeldeployment=fraud-rolling,app.kubernetes.io/component=server -o json |
      python3 -c '
import json, sys
pods = [p for p in json.load(sys.stdin)["items"] if not p["metadata"].get("deletionTimestamp")]
ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
names = " ".join(p["metadata"]["name"][-11:] + ("+" if p in ready else "-") for p in pods)
print(len(pods), len(ready), names)' >>"$out/rolling-pods.txt" 2>/dev/null || true
    sleep 0.25
  done
) &
pids+=($!)
step "version 3 of fraud-rolling: maxSurge $surge, maxUnavailable $unavailable, under load"
failed_before="$(load_field "$out/load-rolling.json" 's["failed"]')"
total_before="$(load_field "$out/load-rolling.json" 's["total"]')"
t0="$(now)"
kubectl patch md fraud-rolling -n "$ns" --type=merge -p '{"spec":{"model":{"version":"3",
  "uri":"http://models.sluice-models.svc.cluster.local/fraud/2/fraud.json","format":"xgboost-json"}}}'
deadline=$((SECONDS + 300))
until python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if list(s["recent"]["by_version"]) == ["3"] else 1)' \
  "$out/load-rolling.json" 2>/dev/null &&
  [[ "$(kubectl get md fraud-rolling -n "$ns" -o jsonpath='{.status.phase} {.status.readyReplicas}')" == "Healthy $replicas" ]]; do
  ((SECONDS < deadline)) || fail "the rolling update did not complete within 300s"
  sleep 0.5
done
rolling_s="$(since "$t0")"
stop_load
read -r max_pods min_ready <<<"$(awk 'NR == 1 {max = $1; min = $2} {if ($1 > max) max = $1; if ($2 < min) min = $2} END {print max, min}' "$out/rolling-pods.txt")"
failed="$(($(load_field "$out/load-rolling.json" 's["failed"]') - failed_before))"
total="$(($(load_field "$out/load-rolling.json" 's["total"]') - total_before))"
measure "rolling update of $replicas pods ${rolling_s}s; at most $max_pods pods, at least $min_ready Ready; failed requests $failed of $total"
[[ "$failed" == 0 ]] || fail "$failed requests failed during the rolling update"
((max_pods <= replicas + surge)) || fail "$max_pods pods at once, more than replicas + maxSurge = $((replicas + surge))"
((min_ready >= replicas - unavailable)) || fail "$min_ready Ready pods at one point, fewer than replicas - maxUnavailable"
fi
cleanup

# --- 6. online features -------------------------------------------------------------------------
features_scenario

# --- 7. uninstall ------------------------------------------------------------------------------
step "kubectl delete md,fv --all; helm uninstall sluice: nothing of Sluice's is left"
kubectl delete pod client -n "$ns" --grace-period=1 --wait=false >/dev/null
kubectl logs -n "$system_ns" deployment/sluice-sluice-operator >"$out/operator.log" 2>&1 || true
kubectl delete md,fv --all -n "$ns" --timeout=120s
kubectl delete secret fraud-redis -n "$ns"
helm uninstall sluice -n "$system_ns" --wait --timeout 120s
# What is left of Sluice: objects the operator made (and the pods and ReplicaSets under them, which
# the garbage collector removes after their owners), the release's objects, and anything in the
# two namespaces the scenario used but their defaults.
leftovers() {
  kubectl get deployments,replicasets,pods,services,serviceaccounts,configmaps,roles,rolebindings,horizontalpodautoscalers,poddisruptionbudgets,endpointslices,jobs,cronjobs \
    -A -l app.kubernetes.io/managed-by=sluice-operator -o name 2>/dev/null
  kubectl get all,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,leases,configmaps,secrets \
    -A -l app.kubernetes.io/instance=sluice -o name 2>/dev/null
  kubectl get all,serviceaccounts,leases,configmaps,secrets,roles,rolebindings,endpointslices -n "$ns" -o name 2>/dev/null |
    grep -v -e '^serviceaccount/default$' -e '^configmap/kube-root-ca.crt$'
  kubectl get all,serviceaccounts,leases,configmaps,secrets,roles,rolebindings -n "$system_ns" -o name 2>/dev/null |
    grep -v -e '^serviceaccount/default$' -e '^configmap/kube-root-ca.crt$'
  return 0
}
t0="$(now)"
deadline=$((SECONDS + 180))
until [[ -z "$(leftovers)" ]]; do
  if ((SECONDS >= deadline)); then
    leftovers >&2
    fail "objects left 180 s after helm uninstall"
  fi
  sleep 1
done
measure "helm uninstall -> nothing left $(since "$t0")s"
kubectl delete namespace "$ns" sluice-models sluice-features --wait=false >/dev/null
echo "nothing left but the CRDs (Helm never deletes CRDs; kubectl delete -f crds/ removes them)"
measure "scenario total $((SECONDS - started))s"
