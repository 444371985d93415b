#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (see fuzz/CMakeLists.txt).
#   fuzz/run.sh build BUILD_DIR [CLANGXX]                 configure + build with clang
#   fuzz/run.sh run BUILD_DIR TARGET SECONDS SEED_CORPUS  fuzz TARGET for SECONDS
# A crash, a sanitizer report, a leak or a broken round trip makes `run` exit non-zero; the
# reproducer is left in BUILD_DIR/artifacts. The seed corpus is copied, never written.
#
# FUZZ_SEED and FUZZ_RUNS make a run reproducible: with a fixed seed and a bounded number of
# inputs, the same build explores the same inputs on every machine (SECONDS stays as a cap), so a
# test gate fails on a regression, not on the luck of the draw. Unset, the seed is random and the
# run lasts SECONDS: exploration, whose findings go into the seed corpus.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?build or run}
build=${2:?build dir}

case "$cmd" in
  build)
    cxx=${3:-clang++}
    cc=${cxx/clang++/clang}
    generator=()
    command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
    cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    nice -n 10 cmake --build "$build" -j 2
    ;;
  run)
    target=${3:?target}
    seconds=${4:?seconds}
    seeds=${5:?seed corpus dir}
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/corpus" "$build/artifacts"
    cp "$seeds"/* "$work/corpus/"
    bounds=(-max_total_time="$seconds")
    [[ -n ${FUZZ_SEED:-} ]] && bounds+=(-seed="$FUZZ_SEED")
    [[ -n ${FUZZ_RUNS:-} ]] && bounds+=(-runs="$FUZZ_RUNS")
    echo "fuzzing $target (${bounds[*]}) from $(ls "$seeds" | wc -l) seeds"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$build/$target" "${bounds[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" "$work/corpus"
    ;;
  *)
    echo "usage: $0 build|run ..." >&2
    exit 2
    ;;
esac
