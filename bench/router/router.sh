#!/usr/bin/env bash
# What sluice-router adds to a request: p50/p99 latency of the fraud model's V2 infer call at a
# fixed open-loop rate, straight to sluice-server and through sluice-router in front of the same
# server, alternating so that drift on a shared machine hits both alike. Target: <= 100 us added
# at p50.
#
# The router runs with --static-traffic (no API server; the request path is the same one the
# cluster's routing table feeds). Builds Release into bench/.work/build-release (shared with
# bench/run.sh). Everything binds to 127.0.0.1 and is stopped on exit.
#
# Environment: ROUTER_BENCH_RATE (2000 requests/s), ROUTER_BENCH_SECONDS (15 per run),
# ROUTER_BENCH_ROUNDS (2), ROUTER_BENCH_CONNECTIONS (16), ROUTER_BENCH_IO_THREADS (1, for both).
# Results: bench/.work/router-results.txt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work="$repo/bench/.work"
build="${BUILD:-$work/build-release}"
mkdir -p "$work"
rate=${ROUTER_BENCH_RATE:-2000}
seconds=${ROUTER_BENCH_SECONDS:-15}
rounds=${ROUTER_BENCH_ROUNDS:-2}
connections=${ROUTER_BENCH_CONNECTIONS:-16}
io_threads=${ROUTER_BENCH_IO_THREADS:-1}
body="$repo/bench/server/request.json"
model_dir="$repo/bench/fraud/model"
results="$work/router-results.txt"
: >"$results"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
say() { echo "$*" | tee -a "$results"; }

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "router bench: $tool is required" >&2; exit 1; }
done

echo "== building sluice-server, sluice-router and sluice-loadgen (Release) in $build" >&2
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSLUICE_FUZZ=OFF \
  >"$work/router-build.log" 2>&1 || { tail -40 "$work/router-build.log" >&2; exit 1; }
nice -n 10 cmake --build "$build" --target sluice-server sluice-router sluice-loadgen -j 2 \
  >>"$work/router-build.log" 2>&1 ||
  { grep -E -A8 "error|FAILED" "$work/router-build.log" | head -60 >&2; exit 1; }
server_bin="$build/dataplane/server/sluice-server"
router_bin="$build/dataplane/router/sluice-router"
loadgen="$build/bench/loadgen/sluice-loadgen"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_ready() {  # url, seconds
  local deadline=$((SECONDS + $2))
  until curl -sf -o /dev/null "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
# The value of key $1 in a key=value line (the whole key: p99_us is not some_p99_us).
field() { sed -n "s/\(.* \|^\)$1=\([0-9.]*\).*/\2/p" <<<"$2"; }

server_port=$(free_port)
"$server_bin" --http-address 127.0.0.1 --http-port "$server_port" --io-threads "$io_threads" \
  --model-uri "$model_dir/fraud.json" --model-name fraud --log-level warn --drain-grace-ms 0 \
  --max-queue-delay 0s \
  >"$work/router-bench-server.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$server_port/v2/health/ready" 60 ||
  { cat "$work/router-bench-server.log"; exit 1; }

router_port=$(free_port)
"$router_bin" --static-traffic "fraud-v1=100@127.0.0.1:$server_port" --http-address 127.0.0.1 \
  --http-port "$router_port" --admin-port 0 --io-threads "$io_threads" --log-level warn --drain-grace-ms 0 \
  >"$work/router-bench-router.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$router_port/readyz" 30 || { cat "$work/router-bench-router.log"; exit 1; }

path=/v2/models/fraud/infer
direct=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$body" \
  "http://127.0.0.1:$server_port$path")
routed=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$body" \
  "http://127.0.0.1:$router_port$path")
[ "$direct" = "$routed" ] || { echo "router bench: the router's answer differs from the server's" >&2; exit 1; }

run() {  # port
  "$loadgen" --port "$1" --path "$path" --body-file "$body" --rate "$rate" \
    --connections "$connections" --duration "$seconds" --warmup 2
}

say "router bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
say "sluice-loadgen open loop at $rate req/s, $connections connections, ${seconds}s per run, $rounds rounds; io threads $io_threads"
d50=(); d99=(); r50=(); r99=()
for ((i = 1; i <= rounds; i++)); do
  d=$(run "$server_port")
  say "round $i direct:        $d"
  r=$(run "$router_port")
  say "round $i through router: $r"
  d50+=("$(field p50_us "$d")"); d99+=("$(field p99_us "$d")")
  r50+=("$(field p50_us "$r")"); r99+=("$(field p99_us "$r")")
  for line in "$d" "$r"; do
    errors=$(field errors "$line")
    if [ "${errors:-0}" != 0 ]; then say "round $i: $errors errors"; fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
dp50=$(median "${d50[@]}"); dp99=$(median "${d99[@]}")
rp50=$(median "${r50[@]}"); rp99=$(median "${r99[@]}")
add50=$(python3 -c "print(round($rp50 - $dp50, 1))")
add99=$(python3 -c "print(round($rp99 - $dp99, 1))")
say "median over rounds: direct p50 ${dp50} us p99 ${dp99} us; through router p50 ${rp50} us p99 ${rp99} us"
say "router adds ${add50} us at p50, ${add99} us at p99 (target <= 100 us at p50: $(python3 -c "print('met' if $add50 <= 100 else 'MISSED')"))"
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
