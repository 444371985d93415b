#!/usr/bin/env bash
# The Feast SDK (PyPI feast with its Redis online store) in a venv cached by version under
# $SLUICE_CACHE (~/.cache/sluice); the Feast compatibility tests and `make bench` use it.
# Prints the venv's python. Idempotent: installs only on the first run on a machine.
set -euo pipefail
FEAST_VERSION=0.67.0
cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
py="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
venv="$cache/feast-$FEAST_VERSION-py$py"
mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.installed" ]; then
  echo "feast: installing feast[redis]==$FEAST_VERSION into $venv (first run only)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q "feast[redis]==$FEAST_VERSION" >&2
  touch "$venv/.installed"
fi
echo "$venv/bin/python"
