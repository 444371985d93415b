#!/usr/bin/env bash
# helm_chart_test.sh OPERATOR_BIN — the Helm chart against a real kube-apiserver:
#  - lint, and values the schema must refuse (each message names the value);
#  - `helm install` creates the CRDs (Established) and the operator's objects;
#  - the chart's RBAC is enough: sluice-operator runs with the chart ServiceAccount's token and
#    reconciles a ModelDeployment into its Deployments, Services and the router's Role, with no
#    Forbidden anywhere (creating that Role also proves the grant is not an escalation);
#  - `helm uninstall` removes what it installed.
set -euo pipefail
op_bin="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
source "$root/e2e/cluster/lib.sh"
bin="$(sluice_k8s_bin kube-apiserver etcd kubectl helm)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-helm.XXXXXX")"
op_pid=""
cleanup() {
  if [[ -n "$op_pid" ]]; then kill -TERM "$op_pid" 2>/dev/null || true; wait "$op_pid" 2>/dev/null || true; fi
  bash "$root/e2e/cluster/down.sh" "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# `grep -q` stops reading at the first match, which under pipefail fails the writer with SIGPIPE;
# contains() reads everything.
contains() { grep -- "$1" >/dev/null; }
fail() { echo "FAIL: $*" >&2; [[ -f "$work/operator.log" ]] && tail -40 "$work/operator.log" >&2; exit 1; }
helm() { "$bin/helm" "$@"; }
kubectl() { "$bin/kubectl" "$@"; }
chart="$root/charts/sluice"

# Waits up to $1 seconds for a command to succeed.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

echo "== lint"
helm lint "$chart" 2>&1 | grep -v "symbolic link" | tee "$work/lint.txt"
grep -q "0 chart(s) failed" "$work/lint.txt" || fail "helm lint"

echo "== values the chart refuses"
refuse() {  # expected-substring helm-template-args...
  local want="$1"; shift
  if out=$(helm template t "$chart" "$@" 2>&1); then fail "accepted: $*"; fi
  grep -q -- "$want" <<<"$out" || fail "refusing '$*' should name '$want', said: $out"
  echo "refused $* -> $(grep -m1 -- "$want" <<<"$out" | cut -c1-140)"
}
refuse logLevel --set operator.logLevel=loud
refuse resyncPeriod --set operator.resyncPeriod=ten
refuse leaderElection.enabled --set operator.replicas=2 --set operator.leaderElection.enabled=false
refuse port --set metrics.port=70000
refuse watchNamespaces --set 'operator.watchNamespaces={Bad_NS}'
refuse replicaz --set operator.replicaz=2

echo "== rendering"
helm template t "$chart" -n sluice-system --set 'operator.watchNamespaces={a,b}' \
  --set image.tag=9.9.9 >"$work/rendered.yaml"
grep -q -- "--namespaces=a,b" "$work/rendered.yaml" || fail "watchNamespaces not passed to the operator"
grep -q "image: ghcr.io/sluice-dev/sluice-operator:9.9.9" "$work/rendered.yaml" || fail "image tag not used"
grep -q -- "--server-image=ghcr.io/sluice-dev/sluice-dataplane:9.9.9" "$work/rendered.yaml" \
  || fail "the workloads do not default to the data-plane image of the same tag"

echo "== monitoring: PodMonitor, PrometheusRule and the Grafana dashboard"
monitoring=(--set metrics.podMonitor.enabled=true --set metrics.prometheusRule.enabled=true
  --set metrics.grafanaDashboard.enabled=true)
crds=(--api-versions monitoring.coreos.com/v1/PodMonitor --api-versions monitoring.coreos.com/v1/PrometheusRule)
kinds() { python3 -c 'import sys, yaml; print(" ".join(sorted(d["kind"] for d in yaml.safe_load_all(sys.stdin) if d)))'; }
# Enabled and the Prometheus Operator's CRDs served: all three, from the chart's own files.
helm template t "$chart" -n sluice-system "${monitoring[@]}" "${crds[@]}" \
  --set metrics.prometheusRule.labels.release=kps >"$work/monitoring.yaml"
python3 - "$work/monitoring.yaml" "$chart" <<'PY' || fail "monitoring objects"
import json, sys, yaml
docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
chart = sys.argv[2]
rule = docs["PrometheusRule"]
# The PrometheusRule is the rule file, byte for byte as YAML: the two cannot drift.
assert rule["spec"] == yaml.safe_load(open(chart + "/rules/sluice-alerts.yaml")), "rule spec differs"
assert rule["metadata"]["labels"]["release"] == "kps", rule["metadata"]["labels"]
alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
assert len(alerts) >= 7, alerts
pm = docs["PodMonitor"]["spec"]
assert pm["namespaceSelector"] == {"any": True}, pm["namespaceSelector"]
ports = sorted(e["port"] for e in pm["podMetricsEndpoints"])
assert ports == ["admin", "http"], ports  # the router's admin port, never its traffic port
for e in pm["podMetricsEndpoints"]:
    keep = [r for r in e["relabelings"] if r.get("action") == "keep"]
    assert keep and keep[0]["regex"] == {"http": "server", "admin": "router"}[e["port"]], e
cm = docs["ConfigMap"]
assert cm["metadata"]["labels"]["grafana_dashboard"] == "1", cm["metadata"]["labels"]
assert json.loads(cm["data"]["sluice.json"]) == json.load(open(chart + "/dashboards/sluice.json"))
print("PodMonitor ports", ports, "| PrometheusRule alerts", len(alerts), "| dashboard ConfigMap")
PY
# watchNamespaces narrows the PodMonitor to them.
helm template t "$chart" "${monitoring[@]}" "${crds[@]}" --set 'operator.watchNamespaces={ml,ads}' \
  | contains "matchNames" || fail "PodMonitor ignores watchNamespaces"
# Enabled, but no Prometheus Operator CRDs: no PodMonitor, no PrometheusRule (the dashboard
# ConfigMap needs none).
got=$(helm template t "$chart" "${monitoring[@]}" | kinds)
[[ "$got" != *PodMonitor* && "$got" != *PrometheusRule* && "$got" == *ConfigMap* ]] \
  || fail "without the CRDs: $got"
# Disabled (the default), CRDs or not: none of the three.
got=$(helm template t "$chart" "${crds[@]}" | kinds)
[[ "$got" != *PodMonitor* && "$got" != *PrometheusRule* && "$got" != *ConfigMap* ]] \
  || fail "disabled by default: $got"
refuse podMonitor --set metrics.podMonitor.enabeld=true
# The operator's per-ModelDeployment series keep the ModelDeployment's namespace label.
helm template t "$chart" --set metrics.serviceMonitor.enabled=true \
  --api-versions monitoring.coreos.com/v1/ServiceMonitor | contains "honorLabels: true" \
  || fail "the ServiceMonitor does not keep the operator's labels"

echo "== install into a real kube-apiserver"
bash "$root/e2e/cluster/up.sh" "$work/cluster" >"$work/up.log"
export KUBECONFIG="$work/cluster/kubeconfig"
kubectl get --raw /version | grep gitVersion
helm install sluice "$chart" -n sluice-system --create-namespace 2>&1 | grep -v "symbolic link"
kubectl wait --for=condition=Established --timeout=60s \
  crd/modeldeployments.sluice.dev crd/featureviews.sluice.dev
kubectl -n sluice-system get deployment sluice-sluice-operator -o jsonpath='{.spec.template.spec.containers[0].args}' \
  | contains "--leader-election-namespace=sluice-system" || fail "operator Deployment args"
helm status sluice -n sluice-system | contains "STATUS: deployed" || fail "release not deployed"

echo "== the operator runs with the chart's ServiceAccount and nothing more"
token="$(kubectl -n sluice-system create token sluice-sluice-operator --duration=1h)"
server="$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')"
kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$work/ca.crt"
sa_kubeconfig="$work/sa-kubeconfig"
KUBECONFIG="$sa_kubeconfig" kubectl config set-cluster c --server="$server" \
  --certificate-authority="$work/ca.crt" --embed-certs >/dev/null
KUBECONFIG="$sa_kubeconfig" kubectl config set-credentials sa --token="$token" >/dev/null
KUBECONFIG="$sa_kubeconfig" kubectl config set-context c --cluster=c --user=sa >/dev/null
KUBECONFIG="$sa_kubeconfig" kubectl config use-context c >/dev/null
for verb_resource in "create namespaces" "delete customresourcedefinitions" "create clusterroles" "create pods" \
    "delete jobs.batch" "update jobs.batch" "delete pods" "list secrets" "watch secrets" \
    "update deployments.apps" "get pods"; do
  if [[ "$(KUBECONFIG="$sa_kubeconfig" kubectl auth can-i $verb_resource 2>/dev/null)" == yes ]]; then
    fail "the chart's ServiceAccount can $verb_resource: it grants too much"
  fi
done
# Materialization: the CronJob and Jobs of FeatureViews, and the Pods whose termination message
# holds a run's result.
for verb_resource in "create jobs.batch" "patch jobs.batch" "watch jobs.batch" "patch cronjobs.batch" \
    "delete cronjobs.batch" "watch pods"; do
  if [[ "$(KUBECONFIG="$sa_kubeconfig" kubectl auth can-i $verb_resource 2>/dev/null)" != yes ]]; then
    fail "the chart's ServiceAccount cannot $verb_resource: materialization needs it"
  fi
done
"$op_bin" --kubeconfig "$sa_kubeconfig" --leader-elect=on --leader-election-namespace=sluice-system \
  --metrics-addr=127.0.0.1:0 --health-addr=127.0.0.1:0 --ports-file "$work/ports.json" \
  --log-format=text >"$work/operator.log" 2>&1 &
op_pid=$!
wait_for 60 test -s "$work/ports.json" || fail "operator did not start"
health_port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["health"])' "$work/ports.json")"
wait_for 60 curl -sf "http://127.0.0.1:$health_port/readyz" || fail "operator never ready"
kubectl create namespace models >/dev/null
kubectl -n models apply -f "$root/crds/samples/fraud-modeldeployment.yaml" >/dev/null
wait_for 60 kubectl -n models get deployment fraud-router || fail "router Deployment not created"
wait_for 60 kubectl -n models get role fraud-router || fail "router Role not created"
wait_for 60 kubectl -n models get rolebinding fraud-router || fail "router RoleBinding not created"
kubectl -n models apply -f "$root/crds/samples/fraud-featureviews.yaml" >/dev/null
wait_for 60 kubectl -n models get cronjob merchant-features-materialize \
  || fail "materialization CronJob not created"
wait_for 60 bash -c "$bin/kubectl -n models get deployments -l sluice.dev/revision -o name | grep -q ." \
  || fail "revision Deployment not created"
wait_for 60 bash -c "$bin/kubectl -n models get md fraud -o jsonpath='{.status.observedGeneration}' | grep -q 1" \
  || fail "status not written"
wait_for 30 bash -c "$bin/kubectl -n models get events -o name | grep -q ." || fail "no Events written"
kubectl -n sluice-system get lease sluice-operator -o jsonpath='{.spec.holderIdentity}' | contains . \
  || fail "the operator holds no Lease"
if grep -qi "forbidden" "$work/operator.log"; then fail "the operator was refused something"; fi
kubectl -n models get md
kill -TERM "$op_pid"; wait "$op_pid" || fail "operator exited with $?"; op_pid=""

echo "== uninstall"
helm uninstall sluice -n sluice-system --wait 2>&1 | grep -v "symbolic link"
if kubectl -n sluice-system get deployment sluice-sluice-operator >/dev/null 2>&1; then
  fail "the operator Deployment outlived the release"
fi
kubectl get clusterrole sluice-sluice-operator >/dev/null 2>&1 && fail "the ClusterRole outlived the release"
kubectl -n sluice-system get lease sluice-operator >/dev/null 2>&1 && fail "the operator's Lease outlived the release"
echo "PASS"
