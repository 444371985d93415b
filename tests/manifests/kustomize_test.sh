#!/usr/bin/env bash
# kustomize_test.sh — manifests/ (kustomize) against the Helm chart and a real kube-apiserver:
#  - manifests/generate.sh, re-run, reproduces every generated file (base and overlays): the
#    committed manifests cannot drift from the chart;
#  - `kubectl kustomize` of the base and of each overlay builds exactly the objects `helm template`
#    renders with the matching values (the overlays' hand-written patches included);
#  - each is applied (server-side, for real) to a kube-apiserver and its objects exist.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$root/e2e/cluster/lib.sh"
bin="$(sluice_k8s_bin kube-apiserver etcd kubectl helm)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-kustomize.XXXXXX")"
cleanup() {
  bash "$root/e2e/cluster/down.sh" "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
kubectl() { "$bin/kubectl" "$@"; }
m="$root/manifests"

echo "== generated files match the chart"
HELM="$bin/helm" bash "$m/generate.sh" "$work/gen"
diff -r "$m/base" "$work/gen/base" || fail "manifests/base differs from the chart: run manifests/generate.sh"
for f in overlays/namespaced/rbac.yaml overlays/monitoring/{servicemonitor,podmonitor,prometheusrule,dashboard}.yaml; do
  diff "$m/$f" "$work/gen/$f" || fail "manifests/$f differs from the chart: run manifests/generate.sh"
done

echo "== kustomize builds what helm renders"
# same KUSTOMIZE_DIR HELM_ARGS...: the objects of both, keyed by kind/namespace/name, must be equal
# (helm's managed-by label aside; the base adds the Namespace helm --create-namespace makes).
same() {
  local dir="$1"; shift
  kubectl kustomize "$m/$dir" >"$work/kustomize.yaml"
  "$bin/helm" template sluice "$root/charts/sluice" -n sluice-system --include-crds "$@" \
    >"$work/helm.yaml" 2>"$work/helm.err" || { cat "$work/helm.err" >&2; fail "helm template $*"; }
  python3 - "$work/kustomize.yaml" "$work/helm.yaml" "$dir" <<'PY' || fail "$dir differs from helm template $*"
import sys, yaml
# kustomize re-flows folded block scalars (blank lines appear in the CRDs' multi-line CEL
# rules, which CEL ignores): strings are compared with their whitespace runs collapsed.
def squash(x):
    if isinstance(x, str):
        return " ".join(x.split())
    if isinstance(x, dict):
        return {k: squash(v) for k, v in x.items()}
    if isinstance(x, list):
        return [squash(v) for v in x]
    return x
def load(path):
    out = {}
    for d in yaml.safe_load_all(open(path)):
        if not d:
            continue
        labels = d.get("metadata", {}).get("labels") or {}
        if labels.get("app.kubernetes.io/managed-by") in ("Helm", "kustomize"):
            labels["app.kubernetes.io/managed-by"] = "-"
        key = (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        if key in out:
            sys.exit(f"{path}: {key} twice")
        out[key] = squash(d)
    return out
k, h = load(sys.argv[1]), load(sys.argv[2])
k.pop(("Namespace", "", "sluice-system"), None)
bad = False
for key in sorted(set(k) | set(h)):
    if key not in h:
        print(f"{sys.argv[3]}: only kustomize builds {key}"); bad = True
    elif key not in k:
        print(f"{sys.argv[3]}: only helm renders {key}"); bad = True
    elif k[key] != h[key]:
        print(f"{sys.argv[3]}: {key} differs"); bad = True
print(f"{sys.argv[3]}: {len(k)} objects, the same as helm's" if not bad else "")
sys.exit(1 if bad else 0)
PY
}
same base
same overlays/namespaced --set 'operator.watchNamespaces={models}'
same overlays/monitoring --set metrics.serviceMonitor.enabled=true \
  --set metrics.podMonitor.enabled=true --set metrics.prometheusRule.enabled=true \
  --set metrics.grafanaDashboard.enabled=true \
  --api-versions monitoring.coreos.com/v1/ServiceMonitor \
  --api-versions monitoring.coreos.com/v1/PodMonitor \
  --api-versions monitoring.coreos.com/v1/PrometheusRule

echo "== applied to a real kube-apiserver"
bash "$root/e2e/cluster/up.sh" "$work/cluster" >"$work/up.log"
export KUBECONFIG="$work/cluster/kubeconfig"
# exists KIND/NAME [NAMESPACE]
exists() { kubectl get "$1" ${2:+-n "$2"} -o name >/dev/null || fail "$1 ${2:+in $2 }missing after $applying"; }

applying=base
kubectl apply --server-side -k "$m/base"
kubectl wait --for=condition=Established --timeout=60s \
  crd/modeldeployments.sluice.dev crd/featureviews.sluice.dev
exists namespace/sluice-system
for o in serviceaccount/sluice-sluice-operator role/sluice-sluice-operator-leader-election \
    rolebinding/sluice-sluice-operator-leader-election service/sluice-sluice-operator-metrics \
    deployment/sluice-sluice-operator lease/sluice-operator; do
  exists "$o" sluice-system
done
exists clusterrole/sluice-sluice-operator
exists clusterrolebinding/sluice-sluice-operator
# The operator's ServiceAccount holds what the ClusterRole grants, Secrets get only.
sa=system:serviceaccount:sluice-system:sluice-sluice-operator
[[ "$(kubectl auth can-i get secrets -n default --as "$sa")" == yes ]] || fail "base: no get on Secrets"
[[ "$(kubectl auth can-i list secrets -n default --as "$sa")" == no ]] || fail "base: list on Secrets"

applying=overlays/namespaced
kubectl create namespace models >/dev/null
kubectl apply --server-side -k "$m/overlays/namespaced"
exists role/sluice-sluice-operator models
exists rolebinding/sluice-sluice-operator models
kubectl -n sluice-system get deployment sluice-sluice-operator \
  -o jsonpath='{.spec.template.spec.containers[0].args[0]}' | grep -x -- --namespaces=models >/dev/null \
  || fail "overlays/namespaced: the operator does not watch models"

applying=overlays/monitoring
# The Prometheus Operator is not installed here: its kinds only, schemas left open.
for kind in ServiceMonitor PodMonitor PrometheusRule; do
  plural="$(tr '[:upper:]' '[:lower:]' <<<"$kind")s"
  kubectl apply --server-side -f - <<CRD
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: $plural.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: $kind, listKind: ${kind}List, plural: $plural, singular: ${plural%s}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
CRD
  kubectl wait --for=condition=Established --timeout=60s "crd/$plural.monitoring.coreos.com"
done
kubectl apply --server-side -k "$m/overlays/monitoring"
exists servicemonitor/sluice-sluice-operator sluice-system
exists podmonitor/sluice-sluice-operator-workloads sluice-system
exists prometheusrule/sluice-sluice-operator-alerts sluice-system
exists configmap/sluice-sluice-operator-dashboard sluice-system
echo "PASS"
