#!/usr/bin/env bash
# Regenerates bench/fraud/model/ in a virtualenv under bench/.work (gitignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.work/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$here/requirements.txt"
"$venv/bin/python" "$here/generate.py" "$@"
