#!/usr/bin/env bash
# The model evaluator on its own, on the committed fraud model (150 trees, depth 6, 12 features):
# nanoseconds per row at batches of 1, 8, 64 and 1,024 rows for
#   sluice     the native evaluator (dataplane/runtime/forest.*), through XGBoostRuntime::Predict;
#   tl2cgen    the same trees compiled to C by treelite 4.8.1 + tl2cgen 1.0.0
#              (PyPI), built with `gcc -O3 -march=native` into a shared object and called in
#              process through the `predict` function tl2cgen generates, one call per row; built
#              twice, with tl2cgen's defaults and with quantize=1 (integer bin comparisons);
#   libxgboost Debian's libxgboost, XGBoosterPredictFromDense, nthread=1.
# All three run in one process (bench/evaluator/evaluator_bench.cpp) pinned to one CPU (taskset),
# on the same rows, and the binary refuses to time anything unless every output agrees with
# sluice's within 1e-6 on 4,096 rows (it prints the largest difference and how many are bitwise
# equal). Repetitions are interleaved at random so that the three see the same machine.
#
# The venv (treelite, tl2cgen) is built once under $SLUICE_CACHE (~/.cache/sluice), keyed by
# their versions; the generated C is cached there by the model's sha256 and the versions; the
# shared object is built into bench/.work/tl2cgen/ (-march=native is this machine's). Nothing of
# this is needed at serving time or by the tests.
#
# Results: bench/.work/evaluator.txt (also printed), one line per batch size:
#   batch  sluice  tl2cgen  tl2cgen-quantized  libxgboost  best-tl2cgen/sluice  libxgboost/sluice
# each figure ns per row, the median of REPS repetitions (CPU time) with [min-max] over the
# repetitions; the ratios are of the medians, the better of the two tl2cgen builds against
# sluice (above 1 means sluice is faster), and a last line saying whether sluice's median is at
# most tl2cgen's at every batch size. Raw: bench/.work/evaluator.json.
#
#   bench/evaluator.sh [google-benchmark flags]
#   BUILD=<build dir> REPS=<repetitions, 5> EVALUATOR_CPU=<cpu, the last one> BENCH_PIN=0
#   BENCH_SKIP_TL2CGEN=1 (sluice and libxgboost only)
# Run heavy measurements under the shared lock: flock /tmp/sluice-heavy.lock bench/evaluator.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-build}"
[[ "$build" = /* ]] || build="$root/$build"
work="$root/bench/.work"
model="$root/bench/fraud/model/fraud.json"
treelite_version=4.8.1
tl2cgen_version=1.0.0
cache="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
mkdir -p "$work"

if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  cmake -S "$root" -B "$build" "${generator[@]}"
fi
cmake --build "$build" --target sluice-bench-evaluator -j "${JOBS:-2}"
bin="$(find "$build" -name sluice-bench-evaluator -type f -perm -u+x | head -n 1)"
[ -n "$bin" ] || { echo "evaluator.sh: sluice-bench-evaluator was not built" >&2; exit 1; }

tl_lib=""
tl_qlib=""
if [ "${BENCH_SKIP_TL2CGEN:-0}" != 1 ]; then
  py="py$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  # A venv is not relocatable, so it is built in place; the marker says the install finished.
  venv="$cache/tl2cgen-$tl2cgen_version-treelite-$treelite_version-$py"
  if [ ! -f "$venv/.installed" ]; then
    echo "== installing treelite 4.8.1 + tl2cgen 1.0.0 into $venv (first run only)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "treelite==$treelite_version" "tl2cgen==$tl2cgen_version"
    touch "$venv/.installed"
  fi
  key="$(sha256sum "$model" | cut -c1-16)-tl2cgen-$tl2cgen_version-treelite-$treelite_version"
  src="$cache/tl2cgen-c/$key"
  if [ ! -f "$src/.generated" ]; then
    echo "== generating C from $model with tl2cgen"
    rm -rf "$src"
    mkdir -p "$src"
    "$venv/bin/python" - "$model" "$src" <<'PY'
import sys
import tl2cgen
import treelite

model = treelite.frontend.load_xgboost_model(sys.argv[1])
tl2cgen.generate_c_code(model, dirpath=sys.argv[2] + "/default", params={})
tl2cgen.generate_c_code(model, dirpath=sys.argv[2] + "/quantized", params={"quantize": 1})
PY
    touch "$src/.generated"
  fi
  for variant in default quantized; do
    so="$work/tl2cgen/$key/$variant/libfraud.so"
    if [ ! -f "$so" ] || [ "$src/.generated" -nt "$so" ]; then
      echo "== gcc -O3 -march=native: tl2cgen's C for the fraud model ($variant)"
      mkdir -p "$(dirname "$so")"
      gcc -O3 -march=native -fPIC -shared -o "$so.tmp" "$src/$variant"/*.c -lm
      mv "$so.tmp" "$so"
    fi
  done
  tl_lib="$work/tl2cgen/$key/default/libfraud.so"
  tl_qlib="$work/tl2cgen/$key/quantized/libfraud.so"
fi

pin=()
if [ "${BENCH_PIN:-1}" != 0 ]; then
  pin=(taskset -c "${EVALUATOR_CPU:-$(($(nproc) - 1))}")
fi
out="$work/evaluator.json"
echo "== sluice-bench-evaluator (${pin[*]:-unpinned}), load average $(cut -d' ' -f1-3 /proc/loadavg)"
SLUICE_TL2CGEN_LIB="$tl_lib" SLUICE_TL2CGEN_QUANTIZED_LIB="$tl_qlib" "${pin[@]}" "$bin" --benchmark_repetitions="${REPS:-5}" \
  --benchmark_enable_random_interleaving=true --benchmark_display_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json "$@"

python3 - "$out" "$work/evaluator.txt" <<'PY'
import collections, json, statistics, sys

runs = json.load(open(sys.argv[1]))["benchmarks"]
rows = collections.defaultdict(list)
for r in runs:
    if r.get("run_type") == "iteration" and not r.get("error_occurred"):
        rows[r["run_name"]].append(r["ns_per_row"])

def cell(name, batch):
    v = rows.get("BM_%s/%d" % (name, batch))
    if not v:
        return None, "%22s" % "-"
    med = statistics.median(v)
    return med, "%6.0f [%6.0f-%6.0f]" % (med, min(v), max(v))

w = 22
lines = [("%-5s" + " %*s" * 4 + " %9s %9s") % ("batch", w, "sluice", w, "tl2cgen", w,
         "tl2cgen quantized", w, "libxgboost", "tl2c/sl", "xgb/sl")]
verdicts = []
for batch in (1, 8, 64, 1024):
    s, sc = cell("Sluice", batch)
    t, tc = cell("Tl2cgen", batch)
    q, qc = cell("Tl2cgenQuantized", batch)
    x, xc = cell("Libxgboost", batch)
    best = min([v for v in (t, q) if v] or [0])
    if best and s:
        verdicts.append(s <= best)
    ratio = lambda o: "%8.2fx" % (o / s) if o and s else "%9s" % "-"
    lines.append("%-5d %s %s %s %s %s %s" % (batch, sc, tc, qc, xc, ratio(best), ratio(x)))
lines.append("ns per row, median [min-max] of %d repetitions; ratios of medians, the better "
             "tl2cgen build against sluice" % max(len(v) for v in rows.values()))
if verdicts:
    lines.append("target sluice ns/row <= tl2cgen's at every batch: %s"
                 % ("met" if all(verdicts) else "MISSED"))
text = "\n".join(lines) + "\n"
open(sys.argv[2], "w").write(text)
print()
print(text, end="")
PY
