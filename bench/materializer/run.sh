#!/usr/bin/env bash
# sluice-materialize against `feast materialize` (Feast 0.67, Redis online store) on the same
# Parquet source and the same redis-server: wall time and peak RSS of each, and the written hashes
# of a random sample of keys compared byte for byte. Target: >= 10x Feast's speed.
#
# usage: bench/materializer/run.sh [ROWS] [ENTITIES]      (default 1000000 rows, 100000 entities)
# Environment: MATERIALIZE_BIN (default build/dataplane/materializer/sluice-materialize).
# Needs redis-server and the Feast venv (e2e/scripts/feast-venv.sh, installed on first use).
# Everything binds to 127.0.0.1 and is stopped on exit; results: bench/.work/materializer-results.txt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
rows=${1:-1000000}
entities=${2:-100000}
bin=${MATERIALIZE_BIN:-$repo/build/dataplane/materializer/sluice-materialize}
[[ -x "$bin" ]] || { echo "bench/materializer: $bin is missing; build sluice-materialize first" >&2; exit 1; }
mkdir -p "$repo/bench/.work"
results="$repo/bench/.work/materializer-results.txt"
py=$(bash "$repo/e2e/scripts/feast-venv.sh" | tail -n1)
feast="$(dirname "$py")/feast"
work=$(mktemp -d)
redis_pid=
cleanup() {
  [[ -n "$redis_pid" ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A port nobody holds: redis-server exits if the bind fails, and we check that it answers.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
kill -0 "$redis_pid" || { cat "$work/redis.log" >&2; exit 1; }

source="$work/source.parquet"
"$py" "$repo/bench/materializer/make_source.py" "$source" "$rows" "$entities"

mkdir -p "$work/repo"
cat >"$work/repo/feature_store.yaml" <<YAML
project: bench
registry: $work/repo/registry.db
provider: local
online_store:
  type: redis
  connection_string: "127.0.0.1:$port"
offline_store:
  type: file
entity_key_serialization_version: 3
YAML
cat >"$work/repo/defs.py" <<PY
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float32, Float64, Int32, Int64, String
from feast.value_type import ValueType
driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
schema = ([Field(name=f"f_float_{i}", dtype=Float32) for i in range(3)]
          + [Field(name=f"f_double_{i}", dtype=Float64) for i in range(3)]
          + [Field(name=f"f_int64_{i}", dtype=Int64) for i in range(2)]
          + [Field(name="f_int32_0", dtype=Int32), Field(name="f_string_0", dtype=String)])
driver_hourly = FeatureView(name="driver_hourly", entities=[driver], ttl=timedelta(0), schema=schema,
                            source=FileSource(path="$source", timestamp_field="event_timestamp"))
PY
(cd "$work/repo" && "$feast" apply >/dev/null 2>&1)

features='[{"name":"f_float_0","type":"FLOAT"},{"name":"f_float_1","type":"FLOAT"},{"name":"f_float_2","type":"FLOAT"},
 {"name":"f_double_0","type":"DOUBLE"},{"name":"f_double_1","type":"DOUBLE"},{"name":"f_double_2","type":"DOUBLE"},
 {"name":"f_int64_0","type":"INT64"},{"name":"f_int64_1","type":"INT64"},{"name":"f_int32_0","type":"INT32"},
 {"name":"f_string_0","type":"STRING"}]'
view=$(printf '{"name":"driver_hourly","project":"bench","entities":[{"name":"driver","joinKey":"driver_id","valueType":"INT64"}],"features":%s,"redisAddress":"127.0.0.1:%s","source":{"format":"parquet","path":"%s","timestampField":"event_timestamp"}}' \
  "$(tr -d '\n' <<<"$features")" "$port" "$source")

measure() {  # measure NAME COMMAND...: prints "NAME: <wall> s, <rss> MB"
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/$name.out" 2>&1 || { cat "$work/$name.out" >&2; exit 1; }
  read -r wall rss <"$work/time"
  echo "$name: $wall s, $((rss / 1024)) MB peak RSS"
}

{
  echo "source: $rows rows x 10 features, $entities entity values drawn ($(date -u +%FT%TZ), $(nproc) cores)"
  redis-cli -p "$port" flushall >/dev/null
  (cd "$work/repo" && measure "feast materialize" "$feast" materialize 2026-12-05T00:00:00 2026-12-07T00:00:00)
  echo "  entities in Redis: $(redis-cli -p "$port" dbsize)"
  "$py" "$repo/bench/materializer/compare.py" save "127.0.0.1:$port" "$work/sample.pkl" | sed 's/^/  /'
  redis-cli -p "$port" flushall >/dev/null
  measure "sluice-materialize" "$bin" --view="$view" --run-time=2026-12-07T00:00:00Z \
    --result-file="$work/result.json" --log-level=warn
  echo "  result: $(cat "$work/result.json")"
  "$py" "$repo/bench/materializer/compare.py" compare "127.0.0.1:$port" "$work/sample.pkl" | sed 's/^/  /'
  measure "sluice-materialize again (writes nothing)" "$bin" --view="$view" \
    --run-time=2026-12-07T00:00:00Z --result-file="$work/result.json" --log-level=warn
} | tee "$results"
