#!/usr/bin/env bash
# node-smoke.sh [DIR]: proves the real node. Brings up node-up.sh DIR (default: a temp folder),
# runs sluice-server from the sluice-dataplane image as a Deployment (non-root, read-only root
# file system, the fraud model from a hostPath volume as file:///models/...), waits for it to be
# Ready, then checks predictions through its Service's ClusterIP from the host and from another
# pod (kubectl exec) against the model's reference outputs, that a pod resolves the Service's name
# through the cluster DNS (CoreDNS on the node IP) and gets NXDOMAIN, without any traffic leaving
# the machine, for a name outside the cluster, and that `kubectl logs` shows the server's JSON log
# lines. With the sluice-e2e-models image (make images), a second sluice-server fetches its model
# over HTTP by Service name (http://models.sluice-models.svc.cluster.local/..., libcurl) and
# predicts as the reference says. Tears down with node-down.sh and checks the host is as it was.
# Prints the times it measured. Needs root and `make images`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/lib.sh"
source "$here/host-state.sh"
source "$repo/e2e/images/lib.sh"
source "$repo/e2e/scenario/lib.sh"

own_dir=0
if [[ $# -eq 0 ]]; then own_dir=1; fi
dir="${1:-$(mktemp -d /tmp/sluice-node.XXXXXX)}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
version="$(sluice_version)"
image="$SLUICE_IMAGE_REPO/sluice-dataplane:$version"

before="$(sluice_host_state "$dir")"
down_done=0
teardown() {
  ((down_done)) && return 0
  down_done=1
  sluice_node_down_checked "$dir" "$before"
}
ok=0
finish() {
  teardown || exit 1
  # A temp folder goes when all passed; otherwise its logs stay for a look.
  if ((ok && own_dir)); then rm -rf "$dir"; elif ((!ok)); then echo "logs: $dir/logs" >&2; fi
}
trap finish EXIT

start=$SECONDS
bash "$here/node-up.sh" "$dir"
up_s=$((SECONDS - start))
set -a
# shellcheck disable=SC1091
source "$dir/env"
# shellcheck disable=SC1091
source "$dir/node-env"
set +a
kubectl=("$SLUICE_K8S_BIN/kubectl" --kubeconfig "$dir/kubeconfig")

# The model where a user would put it: a volume, not the image.
mkdir -p "$dir/models/fraud"
cp "$repo/bench/fraud/model/fraud.json" "$dir/models/fraud/"
chmod 755 "$dir/models" "$dir/models/fraud"
chmod 644 "$dir/models/fraud/fraud.json"

"${kubectl[@]}" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: fraud-server, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: fraud-server}}
  template:
    metadata: {labels: {app: fraud-server}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532}
      containers:
      - name: server
        image: $image
        imagePullPolicy: Never
        command: [sluice-server]
        args: [--model-uri=file:///models/fraud/fraud.json, --model-name=fraud, --model-format=xgboost-json,
               --http-port=8080, --log-format=json]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /v2/health/ready, port: http}
          periodSeconds: 1
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        volumeMounts: [{name: models, mountPath: /models, readOnly: true}]
      volumes:
      - name: models
        hostPath: {path: $dir/models, type: Directory}
---
apiVersion: v1
kind: Service
metadata: {name: fraud-server, namespace: default}
spec:
  selector: {app: fraud-server}
  ports: [{name: http, port: 80, targetPort: http}]
YAML
start=$SECONDS
"${kubectl[@]}" rollout status deployment/fraud-server --timeout=180s
ready_s=$((SECONDS - start))
pod="$("${kubectl[@]}" get pods -l app=fraud-server -o jsonpath='{.items[0].metadata.name}')"
"${kubectl[@]}" get pods -o wide
created="$("${kubectl[@]}" get pod "$pod" -o jsonpath='{.metadata.creationTimestamp}')"
readyat="$("${kubectl[@]}" get pod "$pod" -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}')"
pod_ready_s=$(($(date -d "$readyat" +%s) - $(date -d "$created" +%s)))

# A request from reference rows without missing values, and the probabilities xgboost gave.
fraud_request "$dir/request.json" "$dir/expected.json"
check() { fraud_check "$dir/expected.json" "$1"; }

cluster_ip="$("${kubectl[@]}" get service fraud-server -o jsonpath='{.spec.clusterIP}')"
echo "prediction from the host through ClusterIP $cluster_ip:80"
start_ms=$(date +%s%3N)
for ((i = 0; i < 50; i++)); do
  curl -fsS --max-time 5 "http://$cluster_ip/v2/models/fraud/infer" -H 'Content-Type: application/json' \
    -d @"$dir/request.json" -o "$dir/host-response.json" && break
  sleep 0.2
done
echo "  first answer after $(($(date +%s%3N) - start_ms)) ms"
check "$dir/host-response.json"

echo "prediction from another pod (kubectl exec, bash /dev/tcp) through the Service's ClusterIP"
"${kubectl[@]}" run client --image="$image" --image-pull-policy=Never --restart=Never \
  --overrides='{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":65532}}}' \
  --command -- sleep 600 >/dev/null
"${kubectl[@]}" wait --for=condition=Ready pod/client --timeout=60s >/dev/null
len=$(stat -c %s "$dir/request.json")
"${kubectl[@]}" exec -i client -- bash -c "exec 3<>/dev/tcp/$cluster_ip/80
  printf 'POST /v2/models/fraud/infer HTTP/1.1\r\nHost: fraud-server\r\nContent-Type: application/json\r\nContent-Length: $len\r\nConnection: close\r\n\r\n' >&3
  cat >&3
  cat <&3" <"$dir/request.json" >"$dir/pod-response.txt"
head -n1 "$dir/pod-response.txt"
check "$dir/pod-response.txt"

echo "cluster DNS from the client pod (resolv.conf from the kubelet's clusterDNS)"
"${kubectl[@]}" exec client -- cat /etc/resolv.conf | sed 's/^/  /'
# lookup NAME: prints "<address> <ms>" as the pod's resolver sees it (getent, glibc), or "none <ms>".
lookup() {
  # shellcheck disable=SC2016 # the script expands in the pod
  "${kubectl[@]}" exec client -- bash -c 's=$EPOCHREALTIME
    a="$(getent ahosts "$1" | awk "NR == 1 {print \$1}")"
    e=$EPOCHREALTIME
    echo "${a:-none} $(( (${e/./} - ${s/./}) / 1000 ))"' lookup "$1"
}
lookup_ms=""
for name in fraud-server.default.svc.cluster.local fraud-server; do
  read -r addr ms < <(lookup "$name")
  if [[ "$addr" != "$cluster_ip" ]]; then
    echo "FAIL: $name resolved to $addr in the pod, not the Service's ClusterIP $cluster_ip" >&2
    exit 1
  fi
  echo "  $name -> $addr in $ms ms"
  lookup_ms+="$name ${ms} ms; "
done
# A name outside the cluster: NXDOMAIN from CoreDNS (its log says so), and not one packet from the
# pod forwarded off the pod bridge (the DROP rule node-up.sh puts in FORWARD counts them).
drops() {
  iptables -L FORWARD -v -x -n 2>/dev/null | awk '/sluice-node/ && $3 == "DROP" {print $1}'
}
drops_before="$(drops)"
read -r addr ms < <(lookup example.com)
if [[ "$addr" != none ]]; then
  echo "FAIL: example.com resolved to $addr in the pod; the cluster DNS must not answer it" >&2
  exit 1
fi
if ! grep -qE '"A IN example\.com\. .*" NXDOMAIN ' "$dir/logs/coredns.log"; then
  echo "FAIL: coredns did not answer example.com with NXDOMAIN:" >&2
  grep example.com "$dir/logs/coredns.log" >&2 || true
  exit 1
fi
if [[ "$(drops)" != "$drops_before" ]]; then
  echo "FAIL: the pod sent packets off the pod bridge during the lookup ($drops_before -> $(drops))" >&2
  exit 1
fi
echo "  example.com -> NXDOMAIN from coredns in $ms ms; nothing left the pod bridge"
lookup_ms+="example.com (NXDOMAIN) ${ms} ms"
# By construction too: no plugin in the binary that sends a query (or asks) anywhere else.
if "$COREDNS_BIN" -plugins | grep -xE 'forward|grpc|etcd|secondary|route53|azure|clouddns'; then
  echo "FAIL: $COREDNS_BIN has the plugins above, which send queries elsewhere" >&2
  exit 1
fi

# What the cluster DNS is for: sluice-server fetching its model by Service name at start-up.
models_tar="${SLUICE_IMAGES_DIR:-$repo/${BUILD:-build}/images}/sluice-e2e-models.tar"
model_url=http://models.sluice-models.svc.cluster.local/fraud/1/fraud.json
if [[ -f "$models_tar" ]]; then
  echo "sluice-server with --model-uri=$model_url"
  "${kubectl[@]}" apply -f "$repo/e2e/models/models.yaml" >/dev/null
  "${kubectl[@]}" -n sluice-models rollout status deployment/models --timeout=120s >/dev/null
  "${kubectl[@]}" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: fraud-http, namespace: default}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532}
  containers:
  - name: server
    image: $image
    imagePullPolicy: Never
    command: [sluice-server]
    args: [--model-uri=$model_url, --model-name=fraud, --model-format=xgboost-json, --http-port=8080,
           --log-format=json]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /v2/health/ready, port: http}
      periodSeconds: 1
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
YAML
  start=$SECONDS
  if ! "${kubectl[@]}" wait --for=condition=Ready pod/fraud-http --timeout=90s >/dev/null; then
    echo "FAIL: sluice-server did not load $model_url:" >&2
    "${kubectl[@]}" logs fraud-http >&2 || true
    exit 1
  fi
  http_ready_s=$((SECONDS - start))
  pod_ip="$("${kubectl[@]}" get pod fraud-http -o jsonpath='{.status.podIP}')"
  curl -fsS --max-time 5 "http://$pod_ip:8080/v2/models/fraud/infer" -H 'Content-Type: application/json' \
    -d @"$dir/request.json" -o "$dir/http-response.json"
  check "$dir/http-response.json"
  echo "  Ready ${http_ready_s}s after it was applied"
  lookup_ms+="; http:// model pod applied -> Ready ${http_ready_s}s"
else
  echo "SKIP: sluice-server with an http:// model URI ($models_tar is missing; make images)"
fi

echo "kubectl logs $pod:"
"${kubectl[@]}" logs "$pod" >"$dir/server.log"
head -n 3 "$dir/server.log"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()] or sys.exit("no lines")' \
  "$dir/server.log" || { echo "FAIL: the server's log lines are not JSON" >&2; exit 1; }

echo "measured: node-up ${up_s}s; deployment applied -> rollout complete ${ready_s}s;" \
  "pod created -> Ready ${pod_ready_s}s; lookups in a pod: $lookup_ms"
ok=1
