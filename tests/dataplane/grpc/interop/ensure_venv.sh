#!/usr/bin/env bash
# Makes sure a Python venv at $1 holds the packages of requirements file $2, installing them from
# PyPI only when the venv is missing or was built from other requirements. Safe to run from
# several test processes at once (flock), and a half-built venv is never left at $1.
set -euo pipefail

venv=$1
requirements=$2
want=$(sha256sum "$requirements" | cut -d' ' -f1)

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

if [[ -x "$venv/bin/python" && "$(cat "$venv/.requirements-sha256" 2>/dev/null)" == "$want" ]]; then
  exit 0
fi

python=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "ensure_venv: no python3 with the venv and ensurepip modules (Debian: apt-get install python3-venv)" >&2
  exit 1
fi

tmp="$venv.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp"
"$tmp/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" >"$tmp/.requirements-sha256"
rm -rf "$venv"
mv "$tmp" "$venv"
trap - EXIT
echo "ensure_venv: installed $requirements into $venv"
