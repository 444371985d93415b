#!/usr/bin/env bash
# Native XGBoost evaluator against libxgboost's XGBoosterPredictFromDense on the committed fraud
# model: nanoseconds per row for single rows and batches of 32, and how many times faster the
# native one is. Both run on one core (libxgboost with nthread=1); the binary refuses to time
# anything unless both give the same outputs (within 1e-6) on 4,096 rows.
#
#   bench/evaluator.sh [google-benchmark flags]     BUILD=<build dir> REPS=<repetitions>
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-build}"
[[ "$build" = /* ]] || build="$root/$build"
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  cmake -S "$root" -B "$build" "${generator[@]}"
fi
cmake --build "$build" --target sluice-bench-evaluator -j "${JOBS:-2}"
bin="$(find "$build" -name sluice-bench-evaluator -type f -perm -u+x | head -n 1)"
[ -n "$bin" ] || { echo "evaluator.sh: sluice-bench-evaluator was not built" >&2; exit 1; }

mkdir -p "$root/bench/.work"
out="$root/bench/.work/evaluator.json"
"$bin" --benchmark_repetitions="${REPS:-5}" --benchmark_report_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json "$@"

python3 - "$out" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
med = {r["run_name"]: r["ns_per_row"] for r in runs if r.get("aggregate_name") == "median"}
print()
print("%-14s %16s %16s %8s" % ("", "native ns/row", "libxgboost ns/row", "speed-up"))
for label, suffix in (("single row", "SingleRow"), ("batch of 32", "Batch32")):
    n, x = med["BM_Native" + suffix], med["BM_Libxgboost" + suffix]
    print("%-14s %16.0f %16.0f %7.1fx" % (label, n, x, x / n))
PY
