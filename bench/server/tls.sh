#!/usr/bin/env bash
# The cost of TLS on sluice-server: the same one-row V2 REST request on the fraud model, closed
# loop with wrk (keep-alive, so the handshake is paid once per connection), against the server in
# plain HTTP and with --tls-cert-file (a self-signed ECDSA P-256 certificate made here), one io
# thread each, bound to 127.0.0.1. Prints requests/s, wrk's p50/p99 and requests per server
# CPU-second (the figure that survives a busy machine: /proc/<pid>/stat ticks over the window).
#
#   bench/server/tls.sh [SERVER_BIN [BASELINE_BIN]]
#
# BASELINE_BIN (optional): another sluice-server build measured in plain HTTP too, e.g. one from
# before a change, to check that the plain path did not slow down.
# BENCH_SECONDS (default 10) and BENCH_CONNECTIONS (default 8) bound the run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
server=${1:-$repo/build/dataplane/server/sluice-server}
baseline=${2:-}
seconds=${BENCH_SECONDS:-10}
connections=${BENCH_CONNECTIONS:-8}
for tool in wrk openssl python3; do
  command -v "$tool" >/dev/null || { echo "tls.sh: $tool is needed" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
body=$repo/bench/server/request.json
ticks=$(getconf CLK_TCK)

start() {  # binary extra-args...; prints "pid port"
  local bin=$1
  shift
  local pf
  pf=$(mktemp -p "$work")
  rm -f "$pf"
  "$bin" --model-uri "file://$repo/bench/fraud/model/fraud.json" --http-address 127.0.0.1 \
    --http-port 0 --port-file "$pf" --io-threads 1 --log-level warn "$@" >"$work/server.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 600); do
    [[ -s "$pf" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "$pid $(cat "$pf")"
}

measure() {  # label scheme binary extra-args...
  local label=$1 scheme=$2 bin=$3
  shift 3
  local pid port out s0 s1 t0 t1
  read -r pid port < <(start "$bin" "$@")
  until curl -sk -o /dev/null -w '%{http_code}' "$scheme://127.0.0.1:$port/v2/health/ready" |
      grep -q 200; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
  done
  s0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  t0=$EPOCHREALTIME
  out=$(SLUICE_BENCH_BODY="$body" wrk -t1 -c"$connections" -d"${seconds}s" --timeout 10s \
        --latency -s "$repo/bench/server/post.lua" "$scheme://127.0.0.1:$port/v2/models/fraud/infer")
  t1=$EPOCHREALTIME
  s1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"
  python3 - "$label" "$out" "$s0" "$s1" "$t0" "$t1" "$ticks" <<'PY'
import re, sys
label, out, s0, s1, t0, t1, hz = sys.argv[1:]
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
p50 = re.search(r"50%\s+(\S+)", out).group(1)
p99 = re.search(r"99%\s+(\S+)", out).group(1)
cpu = (int(s1) - int(s0)) / float(hz)
errors = "; ".join(l.strip() for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l)
print(f"{label:<28} {rps:>9.0f} req/s  p50 {p50:>8}  p99 {p99:>8}  "
      f"{total / cpu if cpu else 0:>7.0f} req per server CPU-s  (server cpu {cpu:.1f}s)"
      + (f"  [{errors}]" if errors else ""))
PY
}

echo "wrk -t1 -c$connections -d${seconds}s, one io thread, fraud model, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
[[ -n "$baseline" ]] && measure "baseline plain HTTP" http "$baseline"
measure "plain HTTP" http "$server"
measure "HTTPS (TLS 1.3, P-256)" https "$server" --tls-cert-file "$work/tls.crt" \
  --tls-key-file "$work/tls.key"
[[ -n "$baseline" ]] && measure "baseline plain HTTP (again)" http "$baseline"
measure "plain HTTP (again)" http "$server"
