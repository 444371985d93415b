#!/usr/bin/env bash
# The layering check must fail on a tree that breaks each rule, and pass on one that does not.
set -euo pipefail
check="$(dirname "$0")/check_layers.py"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{lib/base,controllers/rollout,dataplane/router,dataplane/server,operator}
echo '#include "lib/base/status.h"' >"$tmp/controllers/rollout/engine.cpp"
echo '#include "lib/base/status.h"' >"$tmp/dataplane/router/proxy.cpp"
python3 "$check" "$tmp" >/dev/null || { echo "a clean tree was refused"; exit 1; }

expect_refused() {  # FILE INCLUDE
  local saved
  saved="$(cat "$tmp/$1" 2>/dev/null || true)"
  echo "#include \"$2\"" >>"$tmp/$1"
  if python3 "$check" "$tmp" >/dev/null; then
    echo "not refused: $1 including $2"; exit 1
  fi
  printf '%s\n' "$saved" >"$tmp/$1"
}
expect_refused lib/base/x.h controllers/rollout/engine.h
expect_refused lib/base/x.h dataplane/server/batcher.h
expect_refused dataplane/router/proxy.cpp controllers/rollout/engine.h
expect_refused dataplane/router/proxy.cpp operator/options.h
expect_refused dataplane/router/proxy.cpp dataplane/server/logging.h
expect_refused controllers/rollout/engine.cpp dataplane/server/batcher.h
# Links, from a build tree's ninja file: the version library only in the binaries.
ninja_link() {  # PROGRAM LIBS
  printf 'build bin/%s: CXX_EXECUTABLE_LINKER__%s_RelWithDebInfo main.o | %s\n  FLAGS = -O2\n' \
    "$1" "$1" "$2"
}
mkdir -p "$tmp/build"
{
  ninja_link sluice-router "lib/libsluice_base.a lib/libsluice_version.a"
  ninja_link sluice-server "lib/libsluice_base.a lib/libsluice_version.a"
  ninja_link some_test "lib/libsluice_base.a"
} >"$tmp/build/build.ninja"
python3 "$check" "$tmp" "$tmp/build" >/dev/null || { echo "a clean build tree was refused"; exit 1; }
ninja_link some_test "lib/libsluice_version.a" >>"$tmp/build/build.ninja"
if python3 "$check" "$tmp" "$tmp/build" >/dev/null; then
  echo "not refused: a test linking libsluice_version.a"; exit 1
fi
echo "layering check: refuses every broken rule"
