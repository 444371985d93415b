#!/usr/bin/env bash
# The Sluice demo (`make demo`, which builds everything first; this script builds nothing).
# Starts a local kube-apiserver + etcd in e2e/.work/demo, shows the cluster, runs the operator
# demo, and stops the cluster on exit whatever happens.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/e2e/cluster/lib.sh"

work="$root/e2e/.work/demo"
bin="$(sluice_k8s_bin kube-apiserver etcd kubectl)"
export KUBECONFIG="$work/kubeconfig"
kubectl() { "$bin/kubectl" "$@"; }

if [[ -t 1 ]]; then
  step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  step() { printf '\n== %s\n' "$*"; }
fi

stop_cluster() {
  step "stopping the local cluster"
  bash "$root/e2e/cluster/down.sh" "$work"
}

# The operator part of the demo: install CRDs, start sluice-operator against $KUBECONFIG, apply a
# ModelDeployment and watch it roll out. Runs with the cluster up and KUBECONFIG set.
run_operator_demo() {
  local op_bin="$root/${BUILD:-build}/operator/sluice-operator"
  local ns=demo op_pid="" kubelet_pid=""
  if [[ ! -x "$op_bin" ]]; then
    echo "demo: $op_bin is missing; run 'make build' first" >&2
    return 1
  fi
  operator_demo_stop() {
    if [[ -n "$kubelet_pid" ]]; then kill "$kubelet_pid" 2>/dev/null || true; wait "$kubelet_pid" 2>/dev/null || true; fi
    if [[ -n "$op_pid" ]] && kill -0 "$op_pid" 2>/dev/null; then
      step "stopping sluice-operator (SIGTERM: finish in-flight reconciles, release the Lease)"
      kill -TERM "$op_pid"
      local rc=0
      wait "$op_pid" || rc=$?
      echo "sluice-operator exited with status $rc"
    fi
    op_pid="" kubelet_pid=""
  }
  trap 'operator_demo_stop; stop_cluster' EXIT

  step "installing the CRDs"
  kubectl apply --server-side -f "$root/crds/sluice.dev_modeldeployments.yaml" \
    -f "$root/crds/sluice.dev_featureviews.yaml"
  kubectl wait --for=condition=Established --timeout=60s \
    crd/modeldeployments.sluice.dev crd/featureviews.sluice.dev
  kubectl create namespace "$ns"

  step "starting sluice-operator (log: ${work#"$root"/}/operator.log)"
  "$op_bin" --kubeconfig "$KUBECONFIG" --leader-elect=on --leader-election-namespace="$ns" \
    --metrics-addr=127.0.0.1:0 --health-addr=127.0.0.1:0 --ports-file "$work/operator-ports.json" \
    --log-format=text >"$work/operator.log" 2>&1 &
  op_pid=$!
  local i health=""
  for ((i = 0; i < 300; i++)); do
    if [[ -s "$work/operator-ports.json" ]]; then
      health="$(sed -n 's/.*"health": *\([0-9]*\).*/\1/p' "$work/operator-ports.json")"
      curl -fsS "http://127.0.0.1:$health/readyz" >/dev/null 2>&1 && break
    fi
    kill -0 "$op_pid" 2>/dev/null || { cat "$work/operator.log" >&2; return 1; }
    sleep 0.1
  done
  echo "ready: GET http://127.0.0.1:$health/readyz -> $(curl -fsS "http://127.0.0.1:$health/readyz")"

  # This demo cluster is a bare kube-apiserver: no kube-controller-manager, no kubelet. This loop
  # stands in for them and reports every Deployment's pods Ready through the status subresource.
  (
    while true; do
      kubectl -n "$ns" get deployments -o jsonpath='{range .items[*]}{.metadata.name}|{.spec.replicas}|{.status.readyReplicas}|{.metadata.generation}|{.status.observedGeneration}{"\n"}{end}' 2>/dev/null |
        while IFS='|' read -r name want ready gen seen; do
          [[ -n "$name" ]] || continue
          if [[ "$want" != "${ready:-0}" || "$gen" != "${seen:-0}" ]]; then
            kubectl -n "$ns" patch deployment "$name" --subresource=status --type=merge -p \
              "{\"status\":{\"observedGeneration\":$gen,\"replicas\":$want,\"updatedReplicas\":$want,\"readyReplicas\":$want,\"availableReplicas\":$want}}" >/dev/null 2>&1 || true
          fi
        done
      sleep 0.3
    done
  ) &
  kubelet_pid=$!

  # Prints the ModelDeployment's rollout columns (as `kubectl get md -w` would) each time they
  # change, until `done_when` holds; then `kubectl get md` itself.
  watch_md() {
    local done_when="$1" last="" now t start=$SECONDS
    local phase weight step stable canary ready
    printf '%-5s %-12s %-18s %-18s %-7s %-5s %-5s\n' TIME PHASE STABLE CANARY WEIGHT STEP READY
    for ((t = 0; t < 1200; t++)); do
      now="$(kubectl -n "$ns" get md fraud -o jsonpath='{.status.phase}/{.status.canaryWeight}/{.status.currentStep}/{.status.stableRevision}/{.status.canaryRevision}/{.status.readyReplicas}')"
      if [[ "$now" != "$last" ]]; then
        IFS=/ read -r phase weight step stable canary ready <<<"$now"
        printf '%-5s %-12s %-18s %-18s %-7s %-5s %-5s\n' "$((SECONDS - start))s" "${phase:--}" \
          "${stable:--}" "${canary:--}" "${weight:--}" "${step:--}" "${ready:--}"
        last="$now"
      fi
      if eval "$done_when"; then
        echo "\$ kubectl get md fraud"
        kubectl -n "$ns" get md fraud
        return 0
      fi
      sleep 0.2
    done
    echo "demo: the rollout did not finish in time" >&2
    return 1
  }

  step "kubectl apply -f crds/samples/fraud-modeldeployment.yaml"
  kubectl -n "$ns" apply -f "$root/crds/samples/fraud-modeldeployment.yaml"
  # The sample pauses 1m and 2m per step and holds when analysis has no data; no analysis
  # provider runs in this demo, so make the pauses short and say explicitly that no data passes.
  kubectl -n "$ns" patch md fraud --type=merge -p '{"spec":{"rollout":{"scaleDownDelay":"5s","canary":{"steps":[{"weight":10,"pause":"5s"},{"weight":50,"pause":"5s"},{"weight":100,"pause":"0s"}],"analysis":{"interval":"1s","noDataPolicy":"Pass"}}}}}'
  watch_md '[[ "${now%%/*}" == Healthy ]]'
  local first
  first="$(kubectl -n "$ns" get md fraud -o jsonpath='{.status.stableRevision}')"
  echo
  kubectl -n "$ns" get deployments,services -l sluice.dev/modeldeployment=fraud

  step "a new model version: spec.model.version 1 -> 2 (canary 10% -> 50% -> 100%)"
  kubectl -n "$ns" patch md fraud --type=merge \
    -p '{"spec":{"model":{"version":"2","uri":"file:///models/fraud/fraud-v2.json"}}}'
  watch_md '[[ "${now%%/*}" == Healthy && "$now" != *"/$first/"* ]]'
  echo
  kubectl -n "$ns" get md fraud -o jsonpath='{range .status.traffic[*]}traffic: {.revision} {.weight}%{"\n"}{end}'
  step "events"
  kubectl -n "$ns" get events --field-selector involvedObject.name=fraud \
    --sort-by=.metadata.creationTimestamp -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message
  step "the old revision is scaled down after scaleDownDelay, then removed"
  for ((i = 0; i < 100; i++)); do
    kubectl -n "$ns" get deployment "$first" >/dev/null 2>&1 || break
    sleep 0.2
  done
  kubectl -n "$ns" get deployments -l sluice.dev/modeldeployment=fraud

  operator_demo_stop
  trap stop_cluster EXIT
}

# A previous run that was killed hard may have left its processes (down.sh stops only those);
# each demo then starts from an empty cluster.
bash "$root/e2e/cluster/down.sh" "$work" >/dev/null 2>&1 || true
rm -rf "$work"
step "starting kube-apiserver + etcd on 127.0.0.1 (data in ${work#"$root"/})"
bash "$root/e2e/cluster/up.sh" "$work" >/dev/null
trap stop_cluster EXIT

step "kubectl get --raw /version"
kubectl get --raw /version
echo
step "kubectl get namespaces"
kubectl get namespaces

run_operator_demo
