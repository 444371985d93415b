# Online features on the cluster, sourced by fraud.sh (its helpers: step, measure, fail, kubectl,
# service_url, now/since; $ns, $out, $version, $feast_python). Two functions:
#
# features_data: before the model repository starts, generates the FeatureViews' batch sources
#   (e2e/features/generate.py, timestamps just before now) into the ConfigMap fraud-feature-data
#   that the repository serves under /features/.
# features_scenario: Redis (e2e/features/redis.yaml), the Secret fraud-redis, the two FeatureViews
#   of crds/samples/fraud-featureviews.yaml materialized by real Jobs, then
#   crds/samples/fraud-enriched-modeldeployment.yaml, whose predictions must equal md/fraud's on
#   the rows the features complete, change when a value in Redis changes, come back when the view
#   is materialized again (sluice.dev/materialize=now), and fall back to the declared defaults,
#   still answering 200, while Redis is down.

features_data() {
  "$feast_python" "$SLUICE_REPO_ROOT/e2e/features/generate.py" "$out/feature-data" >/dev/null ||
    fail "e2e/features/generate.py failed"
  kubectl create namespace sluice-models --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl create configmap fraud-feature-data -n sluice-models \
    --from-file="$out/feature-data/card_features.parquet" \
    --from-file="$out/feature-data/merchant_features.csv" --dry-run=client -o yaml |
    kubectl apply -f - >/dev/null
}

# enriched_request CARD MERCHANT FILE: a one-row request to fraud-enriched (entity keys and the
# nine model inputs the features do not fill, from the first reference row without missing values).
# plain_row VELOCITY AGE CATEGORY FILE: the same row as md/fraud takes it, all 12 inputs.
features_rows() {
  python3 - "$SLUICE_REPO_ROOT/bench/fraud/model" "$@" <<'PY'
import json, sys
model_dir, mode, *args = sys.argv[1:]
names = json.load(open(f"{model_dir}/fraud.json"))["learner"]["feature_names"]
ref = json.load(open(f"{model_dir}/fraud.reference.json"))
row = next(r for r in ref["inputs"] if None not in r)
fetched = {"velocity_last_24h", "cardholder_age", "merchant_category"}
if mode == "enriched":
    card, merchant, path = args
    inputs = [{"name": "card_id", "shape": [1], "datatype": "BYTES", "data": [card]},
              {"name": "merchant_id", "shape": [1], "datatype": "INT64", "data": [int(merchant)]}]
    inputs += [{"name": n, "shape": [1], "datatype": "FP32", "data": [v]}
               for n, v in zip(names, row) if n not in fetched]
    json.dump({"inputs": inputs}, open(path, "w"))
else:
    velocity, age, category, path = args
    values = dict(zip(names, row))
    values.update(velocity_last_24h=float(velocity), cardholder_age=float(age),
                  merchant_category=float(category))
    json.dump({"inputs": [{"name": "input-0", "shape": [1, len(names)], "datatype": "FP32",
                           "data": [values[n] for n in names]}]}, open(path, "w"))
PY
}

# predict URL MODEL BODY: prints the first output of a 200 answer; fails otherwise.
predict() {
  local code
  # A new Service's first connection may be refused until kube-proxy has written its rules.
  code="$(curl -sS --retry 10 --retry-connrefused --retry-delay 1 -o "$out/answer.json" \
    -w '%{http_code}' -H 'content-type: application/json' \
    --data-binary @"$3" "$1/v2/models/$2/infer")" || fail "POST $1/v2/models/$2/infer failed"
  [[ "$code" == 200 ]] || fail "POST $1/v2/models/$2/infer: HTTP $code: $(cat "$out/answer.json")"
  python3 -c 'import json,sys; print("%.7f" % json.load(open(sys.argv[1]))["outputs"][0]["data"][0])' "$out/answer.json"
}

same() { python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) <= 1e-6 else 1)' "$1" "$2"; }

# wait_materialized FV AFTER TIMEOUT: waits until FV's last materialization completed after AFTER
# (an RFC 3339 time or "") and Ready is True.
wait_materialized() {
  local fv="$1" after="$2" deadline=$((SECONDS + $3)) done ready
  while ((SECONDS < deadline)); do
    done="$(kubectl get fv "$fv" -n "$ns" -o jsonpath='{.status.lastMaterialized.completionTime}' 2>/dev/null || true)"
    ready="$(kubectl get fv "$fv" -n "$ns" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
    if [[ -n "$done" && "$done" > "$after" && "$ready" == True ]]; then return 0; fi
    sleep 0.5
  done
  kubectl get fv,jobs,pods -n "$ns" >&2 || true
  kubectl describe fv "$fv" -n "$ns" >&2 || true
  fail "FeatureView $fv was not materialized within $3s"
}

features_scenario() {
  step "online features: Redis (e2e/features/redis.yaml) and the Secret fraud-redis"
  sed "s|sluice-e2e-redis:[0-9][0-9.]*|sluice-e2e-redis:$version|" "$SLUICE_REPO_ROOT/e2e/features/redis.yaml" |
    kubectl apply -f -
  kubectl rollout status deploy/redis -n sluice-features --timeout=120s
  kubectl create secret generic fraud-redis -n "$ns" \
    --from-literal=connection=redis.sluice-features.svc.cluster.local:6379

  step "kubectl apply -f crds/samples/fraud-featureviews.yaml -n $ns: materialized by real Jobs"
  local t0 fv
  t0="$(now)"
  kubectl apply -f "$SLUICE_REPO_ROOT/crds/samples/fraud-featureviews.yaml" -n "$ns"
  wait_materialized card-features "" 180
  wait_materialized merchant-features "" 180
  measure "featureviews apply -> both materialized and Ready: $(since "$t0") s"
  kubectl get fv -n "$ns"
  for fv in card-features:400:200 merchant-features:100:50; do
    IFS=: read -r name rows entities <<<"$fv"
    local got_rows got_entities
    got_rows="$(kubectl get fv "$name" -n "$ns" -o jsonpath='{.status.lastMaterialized.rows}')"
    got_entities="$(kubectl get fv "$name" -n "$ns" -o jsonpath='{.status.lastMaterialized.entitiesWritten}')"
    [[ "$got_rows" == "$rows" && "$got_entities" == "$entities" ]] ||
      fail "fv/$name: read $got_rows rows and wrote $got_entities entities; want $rows and $entities"
  done
  kubectl get events -n "$ns" --field-selector involvedObject.kind=FeatureView | tail -n 4

  step "kubectl apply -f crds/samples/fraud-enriched-modeldeployment.yaml -n $ns"
  t0="$(now)"
  kubectl apply -f "$SLUICE_REPO_ROOT/crds/samples/fraud-enriched-modeldeployment.yaml" -n "$ns"
  kubectl wait --for=condition=Ready md/fraud-enriched -n "$ns" --timeout=180s
  measure "enriched modeldeployment apply -> Ready: $(since "$t0") s"

  step "predictions of fraud-enriched = md/fraud's on the rows its features complete"
  service_url fraud-enriched "$ns"
  local enriched_url="$svc_url" plain_url
  service_url fraud "$ns"
  plain_url="$svc_url"
  # card-0007: velocity 7 % 23 = 7, age 18 + 7 = 25; merchant 1003: category 3 (generate.py).
  features_rows enriched card-0007 1003 "$out/enriched.json"
  features_rows plain 7 25 3 "$out/plain-materialized.json"
  features_rows plain 40 25 3 "$out/plain-changed.json"
  features_rows plain 0 40 0 "$out/plain-defaults.json"
  local got want
  got="$(predict "$enriched_url" fraud-enriched "$out/enriched.json")"
  want="$(predict "$plain_url" fraud "$out/plain-materialized.json")"
  same "$got" "$want" || fail "fraud-enriched answered $got; md/fraud on the completed row $want"
  echo "  card-0007 at merchant 1003: $got (md/fraud on the same 12 inputs: $want)"

  step "a value changes in Redis (written with Feast's own encoders): the prediction follows"
  local redis_ip
  redis_ip="$(kubectl get service redis -n sluice-features -o jsonpath='{.spec.clusterIP}')"
  if [[ "$reach" != clusterip ]]; then
    kubectl port-forward -n sluice-features service/redis :6379 >"$out/port-forward-redis" 2>&1 &
    pids+=($!)
    local i
    for ((i = 0; i < 100; i++)); do
      redis_ip="127.0.0.1:$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\).*/\1/p' "$out/port-forward-redis" | head -n1)"
      [[ "$redis_ip" != "127.0.0.1:" ]] && break
      sleep 0.1
    done
  else
    redis_ip="$redis_ip:6379"
  fi
  "$feast_python" "$SLUICE_REPO_ROOT/e2e/features/set_feature.py" --redis "$redis_ip" --project fraud \
    --view card-features --join-key card_id --entity card-0007 --feature velocity_last_24h \
    --type INT32 --value 40
  got="$(predict "$enriched_url" fraud-enriched "$out/enriched.json")"
  want="$(predict "$plain_url" fraud "$out/plain-changed.json")"
  same "$got" "$want" || fail "after the change fraud-enriched answered $got; want $want"
  echo "  velocity_last_24h 7 -> 40: $got"

  step "kubectl annotate fv card-features sluice.dev/materialize=now: the source's value is back"
  local before
  before="$(kubectl get fv card-features -n "$ns" -o jsonpath='{.status.lastMaterialized.completionTime}')"
  t0="$(now)"
  kubectl annotate fv card-features -n "$ns" sluice.dev/materialize=now --overwrite
  wait_materialized card-features "$before" 120
  measure "materialize=now -> materialized again: $(since "$t0") s"
  [[ -z "$(kubectl get fv card-features -n "$ns" -o jsonpath='{.metadata.annotations.sluice\.dev/materialize}')" ]] ||
    fail "the operator left the annotation sluice.dev/materialize on fv/card-features"
  got="$(predict "$enriched_url" fraud-enriched "$out/enriched.json")"
  want="$(predict "$plain_url" fraud "$out/plain-materialized.json")"
  same "$got" "$want" || fail "after materializing again fraud-enriched answered $got; want $want"
  echo "  velocity_last_24h back to 7: $got"

  step "Redis goes away: fraud-enriched still answers 200, with the declared defaults"
  kubectl scale deploy/redis -n sluice-features --replicas=0
  kubectl wait --for=delete pod -l app.kubernetes.io/name=sluice-e2e-redis -n sluice-features --timeout=60s
  want="$(predict "$plain_url" fraud "$out/plain-defaults.json")"
  local k
  for k in 1 2 3 4 5; do
    got="$(predict "$enriched_url" fraud-enriched "$out/enriched.json")"
    same "$got" "$want" || fail "with Redis down fraud-enriched answered $got; with the defaults $want"
  done
  echo "  5 of 5 answered 200 with the defaults (velocity 0, age 40, category 0): $got"
}
