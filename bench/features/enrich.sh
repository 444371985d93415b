#!/usr/bin/env bash
# What online feature enrichment adds to one inference: sluice-server on a 50-feature model with
# two feature views (25 features each, one entity, a real redis-server on loopback), sent
#   enriched: {"inputs":[card_id]}                  50 features read from Redis, 2 HMGETs pipelined
#   plain:    {"inputs":[input-0 [1,50] FP32]}      the same row, no feature fetch
# alternately at the same open-loop rate with sluice-loadgen; p50/p99 of each. Both requests go
# to the same server, so the difference is the enrichment (parse of the columns, the Redis round
# trip, decoding, assembly).
#
# The model: bench/fraud/model/fraud.json with num_feature raised to 50 and 38 more names (its
# trees read only the first 12; the runtime still takes and checks 50-wide rows).
#
# Then: a batch of 100 entities per request against the same 100 rows plain; Feast's feature
# server (`feast serve`, Python, one worker) serving the same 50 features from the same Redis at the
# same open-loop rate; and Redis killed (SIGKILL) under load: failed requests and p99 over the window.
#
# Environment: BENCH_BATCH_BUDGET (10ms, the batch's server), BENCH_BUILD (a configured build tree to use; default a Release build in
# bench/.work/build-release, as bench/run.sh), BENCH_RATE (requests/s, 2000), BENCH_SECONDS (10),
# BENCH_ROUNDS (2: plain, enriched, plain, enriched ...), BENCH_BUDGET (--feature-budget, 2ms),
# BENCH_BATCH_RATE (50), BENCH_FEAST_RATE (200), BENCH_KILL_RATE (1000), BENCH_SKIP_FEAST=1,
# BENCH_PIN=0 for no CPU pinning (default: server on the last CPU, loadgen and Redis on the others).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work="$repo/bench/.work/features"
mkdir -p "$work"
rate=${BENCH_RATE:-2000}
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-2}
budget=${BENCH_BUDGET:-2ms}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

for tool in redis-server curl python3 taskset; do
  command -v "$tool" >/dev/null || { echo "enrich: $tool is required (make deps)" >&2; exit 1; }
done

if [ -n "${BENCH_BUILD:-}" ]; then
  build=$BENCH_BUILD
else
  build="$repo/bench/.work/build-release"
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSLUICE_FUZZ=OFF \
    >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
fi
nice -n 10 cmake --build "$build" --target sluice-server sluice-loadgen sluice-bench-feature-writer \
  -j 2 >>"$work/build.log" 2>&1 || { grep -E -A8 "error|FAILED" "$work/build.log" | head -60 >&2; exit 1; }
server_bin="$build/dataplane/server/sluice-server"
loadgen="$build/bench/loadgen/sluice-loadgen"
writer="$build/bench/features/sluice-bench-feature-writer"

ncpu=$(nproc)
server_pin=()
load_pin=()
if [ "${BENCH_PIN:-1}" != 0 ] && ((ncpu >= 2)); then
  server_pin=(taskset -c "$((ncpu - 1))")
  load_pin=(taskset -c "$( ((ncpu == 2)) && echo 0 || echo "0-$((ncpu - 2))")")
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # command..., up to 30 s
  local deadline=$((SECONDS + 30))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "enrich: timed out waiting for: $*" >&2; exit 1; }
    sleep 0.05
  done
}

# The 50-feature model, the views, the feature values and both request bodies.
python3 - "$repo/bench/fraud/model/fraud.json" "$work" <<'EOF'
import json, sys
model = json.load(open(sys.argv[1]))
work = sys.argv[2]
learner = model["learner"]
names = learner["feature_names"] + ["extra_%d" % i for i in range(12, 50)]
learner["feature_names"] = names
learner["feature_types"] = ["float"] * 50
learner["learner_model_param"]["num_feature"] = "50"
json.dump(model, open(work + "/model50.json", "w"))
open(work + "/features_a.txt", "w").write(" ".join(names[:25]))
open(work + "/features_b.txt", "w").write(" ".join(names[25:]))
# The writer stores first, first+1, ...: view a from 1.0, view b from 101.0.
row = [1.0 + i for i in range(25)] + [101.0 + i for i in range(25)]
json.dump({"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 50], "data": row}]},
          open(work + "/plain.json", "w"))
json.dump({"inputs": [{"name": "card_id", "datatype": "BYTES", "shape": [1], "data": ["c-1"]}]},
          open(work + "/enriched.json", "w"))
EOF

redis_port=$(free_port)
"${load_pin[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=($redis_pid)
wait_for redis-cli -p "$redis_port" ping
# shellcheck disable=SC2046
"$writer" "127.0.0.1:$redis_port" bench card_stats card_id=c-1 1 $(cat "$work/features_a.txt")
# shellcheck disable=SC2046
"$writer" "127.0.0.1:$redis_port" bench card_risk card_id=c-1 101 $(cat "$work/features_b.txt")

views=$(python3 - "$work" "$redis_port" <<'EOF'
import json, sys
work, port = sys.argv[1], sys.argv[2]
def view(name, path):
    feats = open(work + "/" + path).read().split()
    return {"name": name, "project": "bench",
            "entities": [{"name": "card", "joinKey": "card_id", "valueType": "STRING"}],
            "features": [{"name": f, "type": "DOUBLE", "default": "0"} for f in feats],
            "ttl": "1h", "redisAddress": "127.0.0.1:" + port}
print(json.dumps([view("card_stats", "features_a.txt"), view("card_risk", "features_b.txt")],
                 separators=(",", ":")))
EOF
)

# start_server BUDGET: sluice-server on the 50-feature model with both views and that budget;
# batching off, so that a request's latency holds no wait for a batch to fill, only its own work.
start_server() {
  http_port=$(free_port)
  "${server_pin[@]}" "$server_bin" --model-uri "$work/model50.json" --model-name m50 \
    --http-address 127.0.0.1 --http-port "$http_port" --io-threads 1 --batching=false \
    --feature-views "$views" --feature-budget "$1" >"$work/server.log" 2>&1 &
  server_pid=$!
  pids+=($server_pid)
  url="http://127.0.0.1:$http_port"
  wait_for curl -sf "$url/v2/health/ready"
}
start_server "$budget"

# Both bodies must give the same prediction, and the enriched one must have read Redis.
a=$(curl -sf "$url/v2/models/m50/infer" -d @"$work/plain.json")
b=$(curl -sf "$url/v2/models/m50/infer" -d @"$work/enriched.json")
python3 - "$a" "$b" <<'EOF'
import json, sys
a, b = (json.loads(x)["outputs"][0]["data"] for x in sys.argv[1:3])
if a != b:
    sys.exit("enrich: the enriched request predicts %s, the plain one %s" % (b, a))
EOF
hits=$(curl -sf "$url/metrics" | awk '/^sluice_server_feature_values_total\{.*result="hit"/ {s += $2} END {print s + 0}')
[ "$hits" = 50 ] || { echo "enrich: expected 50 feature hits, the server counted $hits" >&2; exit 1; }

echo "== sluice-server, 50-feature model, 2 views x 25 features, 1 entity, budget $budget;" \
     "open loop $rate req/s, $seconds s per window; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= rounds; i++)); do
  for kind in plain enriched; do
    line=$("${load_pin[@]}" "$loadgen" --port "$http_port" --path /v2/models/m50/infer \
      --body-file "$work/$kind.json" --content-type application/json --rate "$rate" \
      --connections 8 --duration "$seconds" --warmup 2)
    printf '%-8s %s\n' "$kind" "$line"
  done
done
curl -sf "$url/metrics" | grep -E '^sluice_server_feature_(values_total|redis_errors_total)' \
  | grep -v ' 0$' || true
# The server's own account of the fetch (immune to the loadgen's slip): bucket bounds that hold
# the median and the 99th percentile, and the mean.
curl -sf "$url/metrics" | python3 -c '
import re, sys
buckets, total, count = [], 0.0, 0
for line in sys.stdin:
    m = re.match(r"sluice_server_feature_fetch_duration_seconds_bucket\{.*le=\"([^\"]+)\".*\} (\S+)", line)
    if m:
        buckets.append((float(m.group(1)), float(m.group(2))))
    elif line.startswith("sluice_server_feature_fetch_duration_seconds_sum"):
        total = float(line.split()[-1])
    elif line.startswith("sluice_server_feature_fetch_duration_seconds_count"):
        count = int(float(line.split()[-1]))
def q(p):
    for le, n in buckets:
        if n >= p * count:
            return "<= %g us" % (le * 1e6)
    return "?"
print("fetch (server side, %d fetches): mean %.0f us, p50 %s, p99 %s" %
      (count, 1e6 * total / max(count, 1), q(0.5), q(0.99)))
'

# --- a batch of 100 entities per request ----------------------------------------------------------
batch_rate=${BENCH_BATCH_RATE:-50}
batch_budget=${BENCH_BATCH_BUDGET:-10ms}
for ((i = 2; i <= 100; i++)); do
  # shellcheck disable=SC2046
  "$writer" "127.0.0.1:$redis_port" bench card_stats "card_id=c-$i" 1 $(cat "$work/features_a.txt") >/dev/null
  # shellcheck disable=SC2046
  "$writer" "127.0.0.1:$redis_port" bench card_risk "card_id=c-$i" 101 $(cat "$work/features_b.txt") >/dev/null
done
python3 - "$work" <<'EOF2'
import json, sys
work = sys.argv[1]
row = [1.0 + i for i in range(25)] + [101.0 + i for i in range(25)]
json.dump({"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [100, 50], "data": row * 100}]},
          open(work + "/plain-100.json", "w"))
json.dump({"inputs": [{"name": "card_id", "datatype": "BYTES", "shape": [100],
                       "data": ["c-%d" % i for i in range(1, 101)]}]}, open(work + "/enriched-100.json", "w"))
EOF2
# 200 HMGETs of 26 fields take Redis alone about 1.4 ms: more than the default budget, so the
# batch runs on a server with a budget that fits it (spec.runtime.featureBudget).
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
start_server "$batch_budget"
a=$(curl -sf "$url/v2/models/m50/infer" -d @"$work/plain-100.json")
b=$(curl -sf "$url/v2/models/m50/infer" -d @"$work/enriched-100.json")
python3 - "$a" "$b" <<'EOF2'
import json, sys
a, b = (json.loads(x)["outputs"][0]["data"] for x in sys.argv[1:3])
if a != b:
    bad = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    sys.exit("enrich: the 100-entity request predicts differently from the plain 100 rows at rows %s: %s vs %s"
             % (bad[:5], [b[i] for i in bad[:3]], [a[i] for i in bad[:3]]))
EOF2
echo "== batch: 100 entities per request (200 HMGETs pipelined), budget $batch_budget, open loop $batch_rate req/s"
for kind in plain-100 enriched-100; do
  line=$("${load_pin[@]}" "$loadgen" --port "$http_port" --path /v2/models/m50/infer \
    --body-file "$work/$kind.json" --content-type application/json --rate "$batch_rate" \
    --connections 8 --duration "$seconds" --warmup 2)
  printf '%-12s %s\n' "$kind" "$line"
done
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
start_server "$budget"

# --- Feast's feature server on the same Redis and the same 50 features ------------------------------
if [ "${BENCH_SKIP_FEAST:-0}" != 1 ]; then
  py="$(bash "$repo/e2e/scripts/feast-venv.sh")"
  feast_repo="$work/feast-serve"
  rm -rf "$feast_repo"
  mkdir -p "$feast_repo"
  cat >"$feast_repo/feature_store.yaml" <<EOF2
project: bench
registry: $feast_repo/registry.db
provider: local
online_store:
  type: redis
  connection_string: "127.0.0.1:$redis_port"
offline_store:
  type: file
entity_key_serialization_version: 3
EOF2
  "$py" - "$feast_repo" "$work" <<'EOF2'
import datetime as dt, json, sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType, types
repo, work = sys.argv[1:3]
pd.DataFrame({"card_id": ["c-1"], "event_timestamp": [pd.Timestamp.now(tz="UTC")]}).to_parquet(work + "/empty.parquet")
fs = FeatureStore(repo_path=repo)
card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING)
views, feats = [], []
for name, path in (("card_stats", "features_a.txt"), ("card_risk", "features_b.txt")):
    names = open(work + "/" + path).read().split()
    views.append(FeatureView(name=name, entities=[card], ttl=dt.timedelta(hours=1),
                             schema=[Field(name=n, dtype=types.Float64) for n in names],
                             source=FileSource(path=work + "/empty.parquet", timestamp_field="event_timestamp")))
    feats += [f"{name}:{n}" for n in names]
fs.apply([card] + views)
json.dump({"features": feats, "entities": {"card_id": ["c-1"]}}, open(work + "/feast-request.json", "w"))
got = fs.get_online_features(features=feats, entity_rows=[{"card_id": "c-1"}]).to_dict()
want = dict(zip(open(work + "/features_a.txt").read().split() + open(work + "/features_b.txt").read().split(),
                [1.0 + i for i in range(25)] + [101.0 + i for i in range(25)]))
bad = [k for k, v in want.items() if got[k][0] != v]
if bad:
    sys.exit("feast reads different values for " + ", ".join(bad[:5]))
EOF2
  feast_port=$(free_port)
  # One worker, as sluice-server has one io thread here; no worker restarts mid-run.
  (cd "$feast_repo" && exec "${server_pin[@]}" "$(dirname "$py")/feast" serve -h 127.0.0.1 -p "$feast_port" \
    --no-access-log --workers 1 --max-requests 100000000 >"$work/feast-serve.log" 2>&1) &
  pids+=($!)
  deadline=$((SECONDS + 120))
  until curl -sf -o /dev/null "http://127.0.0.1:$feast_port/health"; do
    ((SECONDS < deadline)) || { tail -20 "$work/feast-serve.log" >&2; echo "enrich: feast serve did not start" >&2; exit 1; }
    sleep 0.2
  done
  curl -sf -H "content-type: application/json" "http://127.0.0.1:$feast_port/get-online-features" -d @"$work/feast-request.json" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); v=[x["values"][0] for x in r["results"][1:]]; sys.exit(0 if len(v)==50 and None not in v else "feast serve did not return the 50 values: %s" % r)'
  feast_rate=${BENCH_FEAST_RATE:-200}
  echo "== the same 50 features, 1 entity: Feast's feature server (feast serve, Python) vs sluice-server; open loop $feast_rate req/s"
  for kind in feast sluice-enriched sluice-plain; do
    case $kind in
      feast) args=(--port "$feast_port" --path /get-online-features --body-file "$work/feast-request.json") ;;
      sluice-enriched) args=(--port "$http_port" --path /v2/models/m50/infer --body-file "$work/enriched.json") ;;
      sluice-plain) args=(--port "$http_port" --path /v2/models/m50/infer --body-file "$work/plain.json") ;;
    esac
    line=$("${load_pin[@]}" "$loadgen" "${args[@]}" --content-type application/json --rate "$feast_rate" \
      --connections 8 --duration "$seconds" --warmup 2)
    printf '%-16s %s\n' "$kind" "$line"
  done
fi

# --- Redis killed under load ----------------------------------------------------------------------
kill_rate=${BENCH_KILL_RATE:-1000}
echo "== Redis killed (SIGKILL) 3 s into $seconds s of enriched requests at $kill_rate req/s"
(sleep 3; kill -KILL "$redis_pid" 2>/dev/null) &
line=$("${load_pin[@]}" "$loadgen" --port "$http_port" --path /v2/models/m50/infer \
  --body-file "$work/enriched.json" --content-type application/json --rate "$kill_rate" \
  --connections 8 --duration "$seconds" --warmup 0)
printf '%-16s %s\n' "redis-killed" "$line"
curl -sf "$url/metrics" | grep -E '^sluice_server_feature_(values_total|redis_errors_total)' | grep -v ' 0$' || true
