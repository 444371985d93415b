#!/usr/bin/env bash
# bench/features/run.sh BUILD_DIR RESULTS: online features, side by side with Feast in one run
# (part of `make bench`; bench/run.sh calls it after building in Release).
#
#  1. materialization: 1 M rows × 10 features of Parquet (make_big.py, 200,000 cards) into Redis by
#     sluice-materialize, then by `feast materialize` (Feast 0.67, e2e/scripts/feast-venv.sh) on the
#     same file into the same (flushed) Redis; rows/s of each, and the two stores compared byte for
#     byte on 2,000 random keys;
#  2. feature fetch in sluice-server (bench/features/enrich.sh): p50/p99 of a one-row infer request
#     whose 50 features come from 2 views, against the same request without features, and against
#     Feast's own feature server (`feast serve`, Python) serving the same 50 features from the same
#     Redis under the same load; a batch of 100 entities per request; and Redis killed under load.
# Everything binds to 127.0.0.1 and is stopped on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
build="$1"
results="$2"
work="$repo/bench/.work/features"
mkdir -p "$work"
say() { echo "$*" | tee -a "$results"; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

py="$(bash "$repo/e2e/scripts/feast-venv.sh")"
materialize="$build/dataplane/materializer/sluice-materialize"
[[ -x "$materialize" ]] || { echo "bench/features: $materialize is missing" >&2; exit 1; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
  >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.05; done
redis="127.0.0.1:$redis_port"

say ""
say "== online features: materialization, 1 M rows x 10 features (Parquet) into Redis"
source_file="$work/source-1m.parquet"
if [[ ! -f "$source_file" ]]; then
  "$py" "$repo/bench/features/make_big.py" "$source_file" 1000000 >/dev/null
fi
view=$(python3 - "$source_file" "$redis" <<'EOF'
import json, sys
features = [("velocity_last_24h", "INT32"), ("cardholder_age", "INT32"), ("txn_count_30d", "INT64"),
            ("avg_amount_30d", "DOUBLE"), ("max_amount_30d", "DOUBLE"), ("fraud_score", "FLOAT"),
            ("distance_km", "FLOAT"), ("is_premium", "BOOL"), ("home_country", "STRING"),
            ("merchant_category", "INT32")]
print(json.dumps({"name": "bench-cards", "project": "bench",
                  "entities": [{"name": "card", "joinKey": "card_id", "valueType": "STRING"}],
                  "features": [{"name": n, "type": t} for n, t in features],
                  "redisAddress": sys.argv[2],
                  "source": {"format": "parquet", "path": sys.argv[1], "timestampField": "event_timestamp"}}))
EOF
)
redis-cli -p "$redis_port" flushall >/dev/null
t0=$EPOCHREALTIME
"$materialize" --view="$view" --run-time=2026-12-07T00:00:00Z --result-file="$work/materialize-result.json" \
  --log-level=warn >"$work/materialize.log" 2>&1 || { cat "$work/materialize.log" >&2; exit 1; }
t1=$EPOCHREALTIME
sluice_s=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
entities=$(redis-cli -p "$redis_port" dbsize)
"$py" "$repo/bench/features/compare_redis.py" snapshot "$redis" "$work/sluice-snapshot.pickle" 2000 >/dev/null
say "sluice-materialize: $sluice_s s, $(python3 -c "print(f'{1e6 / $sluice_s:,.0f}')") rows/s, $entities entities ($(cat "$work/materialize-result.json"))"

redis-cli -p "$redis_port" flushall >/dev/null
rm -rf "$work/feast-repo"
feast_out=$("$py" "$repo/bench/features/feast_materialize.py" "$source_file" "$redis" "$work/feast-repo" 2>"$work/feast-materialize.log" | tail -n1)
feast_s=${feast_out#feast_materialize_seconds=}
say "feast materialize:  $feast_s s, $(python3 -c "print(f'{1e6 / $feast_s:,.0f}')") rows/s, $(redis-cli -p "$redis_port" dbsize) entities"
say "sluice-materialize is $(python3 -c "print(f'{$feast_s / $sluice_s:.1f}')")x feast materialize's rows/s"
say "stores: $("$py" "$repo/bench/features/compare_redis.py" compare "$redis" "$work/sluice-snapshot.pickle" || true)"

if [[ -f "$repo/bench/features/enrich.sh" ]]; then
  bash "$repo/bench/features/enrich.sh" "$build" "$results" "$redis"
fi
