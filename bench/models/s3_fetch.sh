#!/usr/bin/env bash
# bench/models/s3_fetch.sh BUILD_DIR [RESULTS]: model fetches from S3, side by side with curl in
# one run (part of `make bench`; bench/run.sh calls it after building in Release).
#
#  1. a BENCH_S3_MB (200) MB random object in moto's S3 server (PyPI, e2e/scripts/registry-venv.sh;
#     IAM auth on, so every GET is SigV4-checked), fetched BENCH_S3_ROUNDS (3) times by sluice's
#     FetchToFile (sluice-bench-fetch: streamed to disk, SHA-256 verified) and by
#     `curl --aws-sigv4` (to disk, no hashing) on the same object, alternating who goes first;
#     MB/s of each (median) and the ratio;
#  2. the fraud model from S3: sluice-server --model-dir from start to ready (fetch + load + warm
#     up), then a restart on the same directory (no fetch).
# moto is a Python server and may well be the bottleneck for both clients: the ratio, not the
# absolute MB/s, is the figure that says something about sluice. Everything binds to 127.0.0.1
# and is stopped on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
build="$1"
results="${2:-/dev/null}"
work="$repo/bench/.work/models"
mkdir -p "$work"
rounds=${BENCH_S3_ROUNDS:-3}
size_mb=${BENCH_S3_MB:-200}
say() { echo "$*" | tee -a "$results"; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

fetch="$build/bench/models/sluice-bench-fetch"
server_bin="$build/dataplane/server/sluice-server"
for b in "$fetch" "$server_bin"; do
  [[ -x "$b" ]] || { echo "bench/models: $b is missing" >&2; exit 1; }
done
py="$(bash "$repo/e2e/scripts/registry-venv.sh")"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

say "== models from S3 (moto $("$py" -c 'import moto; print(moto.__version__)'), $size_mb MB object, $rounds rounds)"
port=$(free_port)
endpoint="http://127.0.0.1:$port"
"$py" -m moto.server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
until curl -sf -o /dev/null "$endpoint/moto-api/data.json"; do sleep 0.1; done
admin() { "$py" "$repo/tests/support/s3_admin.py" --endpoint "$endpoint" "$@"; }
creds=$(admin setup)
key=$(json_field "$creds" access_key)
secret=$(json_field "$creds" secret_key)
# Authentication on from here: every request must be signed by the user's key.
curl -sf -o /dev/null -X POST -H 'Content-Type: text/plain' --data 0 "$endpoint/moto-api/reset-auth"
signed=(--access-key "$key" --secret-key "$secret")
admin "${signed[@]}" create-bucket bench
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/object.bin"
sha=$(sha256sum "$work/object.bin" | cut -d' ' -f1)
admin "${signed[@]}" put-object bench big/object.bin "$work/object.bin"
bytes=$(stat -c %s "$work/object.bin")
rm -f "$work/object.bin"

export AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_WEB_IDENTITY_TOKEN_FILE || true

run_sluice() {
  rm -f "$work/sluice.bin"
  local out
  out=$("$fetch" s3://bench/big/object.bin "$work/sluice.bin" --s3-endpoint="$endpoint" \
    --sha256="sha256:$sha")
  json_field "$out" mb_per_s
}
run_curl() {
  rm -f "$work/curl.bin"
  local t0 t1
  t0=$(date +%s.%N)
  curl -sf --noproxy "*" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "$work/curl.bin" "$endpoint/bench/big/object.bin"
  t1=$(date +%s.%N)
  [[ $(stat -c %s "$work/curl.bin") == "$bytes" ]] || { echo "curl: short download" >&2; exit 1; }
  python3 -c "import sys; print(round($bytes / 1e6 / ($t1 - $t0), 1))"
}
sluice_mbs=()
curl_mbs=()
for ((i = 1; i <= rounds; i++)); do
  if ((i % 2)); then s=$(run_sluice); c=$(run_curl); else c=$(run_curl); s=$(run_sluice); fi
  sluice_mbs+=("$s")
  curl_mbs+=("$c")
  say "round $i: sluice FetchToFile $s MB/s, curl --aws-sigv4 $c MB/s"
done
rm -f "$work/sluice.bin" "$work/curl.bin"
ms=$(median "${sluice_mbs[@]}")
mc=$(median "${curl_mbs[@]}")
say "median: sluice $ms MB/s, curl $mc MB/s, ratio $(python3 -c "print(f'{$ms / $mc * 100:.0f} %')") (goal >= 80 %)"

# The fraud model from S3 into --model-dir: start -> ready, then a restart that reuses the file.
model_dir="$repo/bench/fraud/model"
admin "${signed[@]}" put-object bench fraud/fraud.json "$model_dir/fraud.json"
admin "${signed[@]}" put-object bench fraud/fraud.reference.json "$model_dir/fraud.reference.json"
cache_dir="$work/model-dir"
rm -rf "$cache_dir"
start_server() {
  local log="$1" port_file="$work/port"
  rm -f "$port_file"
  local t0 t1
  t0=$(date +%s.%N)
  "$server_bin" --http-address 127.0.0.1 --http-port 0 --port-file "$port_file" --io-threads 1 \
    --model-uri s3://bench/fraud/fraud.json --s3-endpoint "$endpoint" --model-dir "$cache_dir" \
    --drain-grace-ms 0 >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  until [[ -s "$port_file" ]]; do kill -0 "$pid" || { cat "$log" >&2; exit 1; }; sleep 0.005; done
  until curl -sf -o /dev/null "http://127.0.0.1:$(cat "$port_file")/v2/health/ready"; do
    kill -0 "$pid" || { cat "$log" >&2; exit 1; }
    sleep 0.005
  done
  t1=$(date +%s.%N)
  kill "$pid"
  wait "$pid" || true
  python3 -c "print(round(($t1 - $t0) * 1000))"
}
first=$(start_server "$work/server-first.log")
say "fraud model ($(stat -c %s "$model_dir/fraud.json") bytes) from S3, start to ready: $first ms;" \
  "$(grep -o 'model: fetched[^;]*; loaded and warmed up in [0-9.]* ms' "$work/server-first.log" | head -1)"
again=$(start_server "$work/server-again.log")
say "restart on the same --model-dir, start to ready: $again ms;" \
  "$(grep -o 'model: reused[^;]*; loaded and warmed up in [0-9.]* ms' "$work/server-again.log" | head -1)"
